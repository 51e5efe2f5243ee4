"""tta-prepare: cut an int8 backbone into submodules, train and quantize an exit head after
each, calibrate the exit thresholds, and write the prepared model folder (model.py).

Cut points are op boundaries where exactly one int8 4-D activation is live (so a head needs
nothing else, and the runner can read it before the backbone goes on). The deepest cut is the
last exit, which always answers; the early exits are the candidates that save the most MACs
while the early-exit policy stays within `max_drop` of the backbone's accuracy on held-out
source data, and whose head arena fits the board next to the backbone's.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyadapt.convert import ConvertedModel, convert
from tinyadapt.convert import blob_format as bf
from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import InputError, PlanError
from tinyadapt.tta import heads as H
from tinyadapt.tta.model import FORMAT, VERSION, to_model_input
from tinyadapt.tta.quant import calibrate, dequant_params, head_tflite
from tinyadapt.tta.runner import entropy_int8


@dataclass
class Cut:
    op: int          # backbone ops [0, op) run before the head
    tensor: int      # blob tensor index
    shape: tuple     # [1, H, W, C]
    quant: tuple[float, int]


def cut_candidates(m: ConvertedModel) -> list[Cut]:
    produced = {}
    for i, op in enumerate(m.ops):
        for t in op.outputs:
            produced[t] = i
    last_use = {}
    for i, op in enumerate(m.ops):
        for t in op.inputs:
            last_use[t] = i
    cuts = []
    weighted = False     # a cut needs a convolution before it (else the head would be the model)
    for i, op in enumerate(m.ops[:-1]):
        weighted |= getattr(op.source, "kind", "") in ("CONV_2D", "DEPTHWISE_CONV_2D")
        t = op.outputs[0]
        if not weighted:
            continue
        rec = m.tensors[t]
        if len(op.outputs) != 1 or rec.kind != bf.KIND_ACTIVATION or np.dtype(rec.dtype) != np.int8:
            continue
        if len(rec.shape) != 4 or rec.shape[0] != 1 or rec.shape[1] * rec.shape[2] < 1:
            continue
        live = [u for u, j in last_use.items() if j > i and m.tensors[u].kind != bf.KIND_CONST
                and (produced.get(u, -1) <= i)]
        if live != [t]:
            continue
        if op.alias_input is not None and cuts and cuts[-1].op == i:
            cuts.pop()                      # a reshape of the previous cut: keep the later name
        cuts.append(Cut(i + 1, t, tuple(rec.shape), (rec.scale, rec.zero_point)))
    return cuts


def backbone_features(m: ConvertedModel, x: np.ndarray, cuts: list[Cut]) -> tuple[list[np.ndarray], np.ndarray]:
    """int8 activations at every cut and the backbone's own prediction, per sample."""
    eng = HostEngine(m.blob)
    feats = [np.empty((len(x),) + c.shape[1:], np.int8) for c in cuts]
    preds = np.empty(len(x), np.int64)
    out = m.outputs[0]
    for n, xi in enumerate(x):
        eng.write_tensor(m.inputs[0], xi)
        first = 0
        for k, c in enumerate(cuts):
            eng.invoke_ops(first, c.op)
            first = c.op
            feats[k][n] = eng.tensor(c.tensor)[0]
        eng.invoke_ops(first, len(m.ops))
        preds[n] = int(np.argmax(eng.tensor(out)))
    return feats, preds


def _deq(q: np.ndarray, quant: tuple[float, int]) -> np.ndarray:
    return ((q.astype(np.float64) - quant[1]) * quant[0]).reshape(len(q), -1, q.shape[-1])


@dataclass
class HeadResult:
    cut: Cut
    params: H.HeadParams
    quant: object
    tflite: bytes
    model: ConvertedModel
    macs: int
    entropy: np.ndarray      # on the calibration split, from the int8 head
    pred: np.ndarray
    index: int = 0           # which cut candidate


def _run_head(model: ConvertedModel, feats: np.ndarray, quant) -> tuple[np.ndarray, np.ndarray]:
    eng = HostEngine(model.blob)
    hs, ps = np.empty(len(feats)), np.empty(len(feats), np.int64)
    for n, f in enumerate(feats):
        logits = eng.invoke([f[None]])[0]
        hs[n], ps[n] = entropy_int8(logits, quant.logits[0], quant.logits[1])
    return hs, ps


def build_head(cut: Cut, f_fit: np.ndarray, y_fit: np.ndarray, f_cal: np.ndarray, n_classes: int,
               cfg: H.TrainConfig) -> HeadResult:
    x = _deq(f_fit, cut.quant)
    params = H.train_head(x, y_fit, n_classes, cfg)
    quant = calibrate(params, x, cut.quant)
    params = dequant_params(params, quant)      # the float master starts at what int8 holds
    tfl = head_tflite(params, quant, cut.shape[1:3])
    model = convert(tfl, name=f"exit head at op {cut.op}")
    hs, ps = _run_head(model, f_cal, quant)
    return HeadResult(cut, params, quant, tfl, model, sum(op.macs for op in model.ops), hs, ps)


def policy(heads: list[HeadResult], thresholds: list[float], macs_bb: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, exit index, MACs) per calibration sample for these thresholds."""
    n = len(heads[0].pred)
    pred, ex, macs = np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(n)
    done = np.zeros(n, bool)
    spent = 0
    for k, h in enumerate(heads):
        spent += macs_bb[k] + h.macs
        take = ~done & ((h.entropy < thresholds[k]) | (k == len(heads) - 1))
        pred[take], ex[take], macs[take] = h.pred[take], k, spent
        done |= take
    return pred, ex, macs


def calibrate_thresholds(heads: list[HeadResult], y: np.ndarray, target_acc: float, macs_bb: list[int]) -> list[float]:
    """Greedy, exit by exit: the largest threshold whose policy accuracy stays >= target_acc."""
    th = [-1.0] * (len(heads) - 1) + [np.inf]
    for k in range(len(heads) - 1):
        for cand in sorted(set(np.round(heads[k].entropy, 6)), reverse=True):
            trial = th.copy()
            trial[k] = float(cand) + 1e-6
            pred, _, _ = policy(heads, trial, macs_bb)
            if (pred == y).mean() >= target_acc:
                th = trial
                break
    return th


def _split(y: np.ndarray, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cal = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cal[idx[:max(1, int(round(frac * len(idx))))]] = True
    return np.flatnonzero(~cal), np.flatnonzero(cal)


def prepare(model_path: str, x: np.ndarray, y: np.ndarray, *, exits: int = 2, budget: int | None = None,
            max_drop: float = 0.01, seed: int = 0, epochs: int = 60, augment_rolls: int = 0, log=print) -> dict:
    """Build everything; returns the manifest (with `_files`: name -> bytes, written by write())."""
    if not 1 <= exits <= 4:
        raise InputError(f"--exits must be 1..4, got {exits}")
    m = convert(model_path)
    t_in = m.tensors[m.inputs[0]]
    x = np.asarray(x)
    if x.shape[1:] != tuple(t_in.shape[1:]) and x.shape[1:] != tuple(t_in.shape):
        raise InputError(f"--data samples have shape {x.shape[1:]}, the model takes {tuple(t_in.shape[1:])}")
    x = x.reshape((len(x),) + tuple(t_in.shape))
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if len(y) != len(x):
        raise InputError(f"--labels has {len(y)} labels for {len(x)} samples")
    n_classes = int(np.prod(m.tensors[m.outputs[0]].shape))
    if y.min() < 0 or y.max() >= n_classes:
        raise InputError(f"--labels must be class indices 0..{n_classes - 1}")
    xq = to_model_input(x, t_in.dtype, t_in.scale, t_in.zero_point)
    xf = xq.astype(np.float64) if xq.dtype != np.int8 else (xq.astype(np.float64) - t_in.zero_point) * t_in.scale
    cuts = cut_candidates(m)
    if not cuts:
        raise PlanError(f"{model_path}: no op boundary with a single int8 4-D activation to attach an exit head to")
    rng = np.random.default_rng(seed)
    fit, cal = _split(y, 0.25, rng)
    if augment_rolls:
        # small sets (BasicMotions: 40 series): circular shifts along the time axis (axis 1 of
        # [N, T, C] / axis 2 of [N, 1, T, C]) of the fitting split only
        axis = 2 if xq.ndim == 4 and xq.shape[1] == 1 else 1
        extra = [np.roll(xq[fit], int(s), axis=axis) for s in rng.integers(1, xq.shape[axis], augment_rolls)]
        x_fit = np.concatenate([xq[fit]] + extra)
        y_fit = np.concatenate([y[fit]] * (augment_rolls + 1))
    else:
        x_fit, y_fit = xq[fit], y[fit]
    log(f"backbone: {len(m.ops)} ops, {sum(o.macs for o in m.ops):,} MACs, {len(cuts)} cut candidates "
        f"(after ops {', '.join(str(c.op - 1) for c in cuts)})")
    f_fit, _ = backbone_features(m, x_fit, cuts)
    f_cal, bb_pred = backbone_features(m, xq[cal], cuts)
    bb_acc = float((bb_pred == y[cal]).mean())
    cfg = H.TrainConfig(seed=seed, epochs=epochs)
    results = []
    limit = budget
    for k, c in enumerate(cuts):
        r = build_head(c, f_fit[k], y_fit, f_cal[k], n_classes, cfg)
        r.index = k
        fits = limit is None or m.peak_sram_bytes + r.model.peak_sram_bytes <= limit
        log(f"  head at op {c.op - 1} {list(c.shape[1:])}: {r.macs:,} MACs, arena {r.model.peak_sram_bytes:,} B, "
            f"held-out accuracy {(r.pred == y[cal]).mean():.3f}{'' if fits else ' (does not fit the budget)'}")
        if fits:
            results.append(r)
    if not results:
        raise PlanError("no exit head fits next to the backbone within the budget")
    macs_op = [o.macs for o in m.ops]
    macs_full = int(sum(macs_op))
    last = results[-1]
    best = None
    # The reference is the prepared model answering at its last exit only: what early exits
    # cost is measured against it (the backbone's figure is reported beside it; on its own
    # training data it is optimistic).
    ref_acc = float((last.pred == y[cal]).mean())
    for early in itertools.combinations(results[:-1], min(exits - 1, len(results) - 1)):
        chosen = list(early) + [last]
        bounds = [0] + [h.cut.op for h in chosen]
        mbb = [int(sum(macs_op[bounds[i]:bounds[i + 1]])) for i in range(len(chosen))]
        th = calibrate_thresholds(chosen, y[cal], ref_acc - max_drop / 2, mbb)
        pred, ex, macs = policy(chosen, th, mbb)
        score = (1 - macs.mean() / macs_full, (pred == y[cal]).mean())
        if best is None or score > best[0]:
            best = (score, chosen, th, mbb, pred, ex)
    (saved, acc), chosen, th, mbb, pred, ex = best
    no_exit_pred, _, _ = policy(chosen, [-1.0] * (len(chosen) - 1) + [np.inf], mbb)
    log(f"exits after ops {[h.cut.op - 1 for h in chosen]}, thresholds {[round(t, 4) for t in th[:-1]]}: "
        f"held-out accuracy {acc:.3f} (backbone {bb_acc:.3f}, last exit only {(no_exit_pred == y[cal]).mean():.3f}), "
        f"MACs saved {saved:.1%}")

    files = {"backbone.tflite": Path(model_path).read_bytes()}
    arrays = {}
    exit_recs = []
    for k, h in enumerate(chosen):
        files[f"head_{k}.tflite"] = h.tflite
        f = H.forward(h.params, _deq(f_fit[h.index], h.cut.quant))
        for name in ("conv", "gamma", "beta", "fc_w", "fc_b"):
            arrays[f"h{k}_{name}"] = getattr(h.params, name)
        arrays[f"h{k}_z_mean"] = f.z.mean((0, 1))
        arrays[f"h{k}_z_var"] = f.z.var((0, 1))
        exit_recs.append({"cut_op": h.cut.op, "cut_tensor": h.cut.tensor, "cut_shape": list(h.cut.shape),
                          "threshold": float(th[k]) if np.isfinite(th[k]) else 1e30, "head": f"head_{k}.tflite",
                          "macs_backbone": mbb[k], "macs_head": h.macs, "head_arena_bytes": h.model.peak_sram_bytes,
                          "quant": h.quant.to_json(),
                          "calibration_exit_rate": float((ex == k).mean())})
    manifest = {"format": FORMAT, "version": VERSION, "backbone": "backbone.tflite", "source_model": str(model_path),
                "n_classes": n_classes, "macs_full": macs_full, "backbone_arena_bytes": m.peak_sram_bytes,
                "exits": exit_recs,
                # per input channel, over every sample and position: what "input" adaptation
                # standardises the stream back to
                "input_mean": xf.reshape(-1, xf.shape[-1]).mean(0).tolist(),
                "input_var": xf.reshape(-1, xf.shape[-1]).var(0).tolist(),
                "calibration": {"samples": int(len(cal)), "backbone_accuracy": bb_acc, "early_exit_accuracy": float(acc),
                                "last_exit_accuracy": float((no_exit_pred == y[cal]).mean()), "macs_saved": float(saved)},
                "_files": files, "_arrays": arrays}
    return manifest


def write(manifest: dict, out: str | Path) -> None:
    """Write the folder atomically: built beside `out`, then renamed over it."""
    import io

    out = Path(out)
    files, arrays = manifest.pop("_files"), manifest.pop("_arrays")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (tmp / "heads.npz").write_bytes(buf.getvalue())
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if out.exists():
            if not (out / "manifest.json").is_file():
                raise InputError(f"{out} exists and is not a prepared TTA model: not overwriting it")
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
