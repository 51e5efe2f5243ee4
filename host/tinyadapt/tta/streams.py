"""Shifted test streams: the held-out split in a seeded order, clean at first, with a shift
that starts part way (`shift_at`), and unshifted control streams (shift "none").

Digits (images in [0, 1]): noise, blur, contrast, rotation. BasicMotions (applied in raw
sensor units, before the standardisation the model expects, as a drifting sensor would):
gain (a gain drift ramping in), offset (an offset drift ramping in), noise, swap (x and y
axes of both sensors swapped). Each stream is deterministic for its (data set, shift, seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyadapt.tta.datasets import DataSet, load

SHIFTS = {
    "digits": ("none", "noise", "blur", "contrast", "rotation"),
    "basicmotions": ("none", "gain", "offset", "noise", "swap"),
}


@dataclass(frozen=True)
class Stream:
    x: np.ndarray        # float32 samples in the model's float input domain, in stream order
    y: np.ndarray        # labels (for scoring only)
    shifted: np.ndarray  # bool per sample: the shift is applied
    name: str


def _order(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    reps = -(-length // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:length]


# -- digits -------------------------------------------------------------------------------

def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    r = np.arange(-2, 3)
    k = np.exp(-0.5 * (r / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    h = sum(k[i] * p[:, :, i:i + img.shape[2]] for i in range(5))
    return sum(k[i] * h[:, i:i + img.shape[1]] for i in range(5))


def _rotate(img: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    n, hh, ww, _ = img.shape
    cy, cx = (hh - 1) / 2, (ww - 1) / 2
    yy, xx = np.meshgrid(np.arange(hh) - cy, np.arange(ww) - cx, indexing="ij")
    out = np.empty_like(img)
    for i in range(n):
        t = np.deg2rad(degrees[i])
        sy = np.cos(t) * yy - np.sin(t) * xx + cy      # inverse map: where each output pixel comes from
        sx = np.sin(t) * yy + np.cos(t) * xx + cx
        y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
        fy, fx = sy - y0, sx - x0
        acc = np.zeros((hh, ww), np.float64)
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yi, xi = y0 + dy, x0 + dx
                ok = (yi >= 0) & (yi < hh) & (xi >= 0) & (xi < ww)
                acc += np.where(ok, img[i, np.clip(yi, 0, hh - 1), np.clip(xi, 0, ww - 1), 0], 0.0) * wy * wx
        out[i, ..., 0] = acc
    return out


def _shift_digits(x: np.ndarray, shift: str, rng: np.random.Generator) -> np.ndarray:
    if shift == "noise":
        x = x + rng.normal(0.0, 0.35, x.shape)
    elif shift == "blur":
        x = _blur(x, 1.2)
    elif shift == "contrast":
        x = 0.3 * x + 0.45
    elif shift == "rotation":
        x = _rotate(x, rng.choice([-1.0, 1.0], len(x)) * rng.uniform(30, 45, len(x)))
    return np.clip(x, 0.0, 1.0).astype(np.float32)


# -- BasicMotions ---------------------------------------------------------------------------

def _shift_imu(raw: np.ndarray, shift: str, ramp: np.ndarray, rng: np.random.Generator, ds: DataSet) -> np.ndarray:
    r = ramp[:, None, None]
    if shift == "gain":
        raw = raw * (1.0 + r * np.array([1.5, -0.6, 1.2, -0.6, 1.5, -0.5], np.float32))  # per-sensor gain drift
    elif shift == "offset":
        raw = raw + r * 1.5 * ds.std * np.array([1, -1, 1, -1, 1, -1], np.float32)
    elif shift == "noise":
        raw = raw + rng.normal(0.0, 1.0, raw.shape) * 0.8 * ds.std
    elif shift == "swap":
        raw = raw[..., [1, 0, 2, 4, 3, 5]]
    return raw.astype(np.float32)


def make_stream(dataset: str, shift: str, *, length: int | None = None, shift_at: float = 0.2,
                seed: int = 0) -> Stream:
    """The held-out split of `dataset` as a stream of `length` samples (default: twice the
    split; BasicMotions samples are also circularly shifted in time so repeats differ), the
    shift applied from sample int(shift_at * length) on."""
    ds = load(dataset)
    if shift not in SHIFTS[dataset]:
        raise ValueError(f"unknown shift {shift!r} for {dataset} (known: {', '.join(SHIFTS[dataset])})")
    rng = np.random.default_rng([seed, SHIFTS[dataset].index(shift), len(dataset)])
    n = len(ds.test.y)
    length = length or (2 * n if dataset == "digits" else 10 * n)
    idx = _order(n, length, rng)
    x, y = ds.test.x[idx].copy(), ds.test.y[idx]
    start = int(shift_at * length) if shift != "none" else length
    shifted = np.arange(length) >= start
    if dataset == "basicmotions":
        rolls = rng.integers(0, x.shape[1], length)
        rolls[:n] = 0
        x = np.stack([np.roll(s, k, axis=0) for s, k in zip(x, rolls)])
        if shifted.any():
            # the drift ramps in over the first quarter of the shifted part, then holds
            ramp = np.clip((np.arange(length) - start + 1) / max(1, (length - start) // 4), 0, 1)[shifted]
            raw = _shift_imu(ds.to_raw(x[shifted]), shift, ramp, rng, ds)
            x[shifted] = ds.from_raw(raw)
    elif shifted.any():
        x[shifted] = _shift_digits(x[shifted], shift, rng)
    return Stream(x.astype(np.float32), y, shifted, f"{dataset}-{shift}")


def main(argv: list[str] | None = None) -> int:
    """Write a stream (or the source training split, --source) as .npy files for the CLI."""
    import argparse

    from tinyadapt.cli.files import atomic_save_npy

    p = argparse.ArgumentParser(prog="python -m tinyadapt.tta.streams",
                                description="Write a shifted test stream, or the source training data, "
                                            "from the data sets that ship with tinyadapt.")
    p.add_argument("dataset", choices=sorted(SHIFTS))
    p.add_argument("shift", nargs="?", default="none", help="a shift of the data set, or none (the control stream)")
    p.add_argument("--source", action="store_true", help="write the training split instead (for tta-prepare)")
    p.add_argument("--length", type=int, help="stream length (default: 2x / 10x the held-out split)")
    p.add_argument("--shift-at", type=float, default=0.2, help="where the shift starts (fraction, default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, metavar="X.npy")
    p.add_argument("--labels", required=True, metavar="Y.npy")
    a = p.parse_args(argv)
    if a.source:
        ds = load(a.dataset)
        x, y = ds.train.x, ds.train.y
    else:
        if a.shift not in SHIFTS[a.dataset]:
            p.error(f"shift must be one of {', '.join(SHIFTS[a.dataset])}")
        s = make_stream(a.dataset, a.shift, length=a.length, shift_at=a.shift_at, seed=a.seed)
        x, y = s.x, s.y
    atomic_save_npy(a.output, x)
    atomic_save_npy(a.labels, y)
    print(f"wrote {len(x)} samples to {a.output}, labels to {a.labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
