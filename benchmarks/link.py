"""The serial link, measured: INFER round trips, stream throughput on a clean link and
through 1 % injected faults, model loading over the UART, the POSIX port over a pty, and how
fast a dead or hung emulator is noticed.

Timings depend on the host (QEMU and this script share its cores, and other work may run
beside them): they are medians and rates of this run, not constants. Instruction counts and
"every sample answered once" do not depend on the host.

    .venv/bin/python benchmarks/link.py [--json] [--samples N]

Models: models/digits (its held-out split), and ../shared/models/hello_world_int8.tflite
when present. QEMU board qemu-an386 (mps2-an386, -icount shift=7), DSP kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.errors import DeviceError  # noqa: E402
from tinyadapt.session.device import DeviceOptions, open_device  # noqa: E402

BOARD = "qemu-an386"
SHARED = Path(os.environ.get("TINYADAPT_SHARED_MODELS", REPO.parent / "shared" / "models"))


def digits():
    d = np.load(REPO / "models" / "digits" / "digits_test.npz")
    model = convert(REPO / "models" / "digits" / "digits_cnn.tflite")
    return model, d["x"].reshape((-1,) + tuple(model.input_tensors()[0].shape))


def round_trips(name: str, model, xs: np.ndarray, n: int) -> dict:
    with open_device(model.blob, DeviceOptions(board=BOARD, model_name=name)) as dev:
        for x in xs[:5]:                       # warm up: the first INVOKE sets the timeout
            dev.run_sample([x])
        times, counts = [], set()
        for k in range(n):
            t0 = time.perf_counter()
            _, result = dev.run_sample([xs[k % len(xs)]])
            times.append(time.perf_counter() - t0)
            counts.add(result.instructions)
    t = model.input_tensors()[0]
    o = model.tensors[model.outputs[0]]
    return {"model": name, "input_bytes": int(t.nbytes), "output_bytes": int(o.nbytes), "requests": n,
            "instructions_min": min(counts), "instructions_max": max(counts),
            "median_ms": round(1e3 * statistics.median(times), 3),
            "p90_ms": round(1e3 * float(np.percentile(times, 90)), 3)}


def stream(model, xs: np.ndarray, faults=None) -> dict:
    opts = DeviceOptions(board=BOARD, model_name="digits", faults=faults)
    outs = []
    with open_device(model.blob, opts) as dev:
        t0 = time.perf_counter()
        for x in xs:
            o, _ = dev.run_sample([x])
            outs.append(o[0])
        seconds = time.perf_counter() - t0
        m = dev.metrics()
        proxy = getattr(dev.backend, "proxy", None)
        injected = proxy.stats.as_dict() if proxy is not None else None
        link = dev.link.stats.as_dict()
    return {"samples": len(xs), "seconds": round(seconds, 3), "samples_per_second": round(len(xs) / seconds, 1),
            "device_invokes": m.invokes, "device_metrics": m.as_dict(), "link": link, "injected": injected,
            "outputs": np.stack(outs)}


def load_speed(model, times: int = 3) -> dict:
    from tinyadapt.device.client import SLOT_RAM

    with open_device(model.blob, DeviceOptions(board=BOARD, model_name="digits")) as dev:
        t0 = time.perf_counter()
        for _ in range(times):
            dev.client.load_model(model.blob, SLOT_RAM)
        seconds = time.perf_counter() - t0
    total = times * len(model.blob)
    return {"bytes": total, "seconds": round(seconds, 3), "kib_per_second": round(total / 1024 / seconds, 1)}


def posix_pty(model, xs: np.ndarray) -> dict | None:
    from tinyadapt.device.build import DEVICE_BUILD_DIR, PORTS_MAKEFILE_DIR

    make = subprocess.run(["make", "-s", "-C", str(PORTS_MAKEFILE_DIR), "posix", f"BUILD={DEVICE_BUILD_DIR}"],
                          capture_output=True, text=True)
    if make.returncode != 0:
        return None
    proc = subprocess.Popen([str(DEVICE_BUILD_DIR / "posix" / "ta_posix"), "--pty"], stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        path = line.split()[1]
        with open_device(model.blob, DeviceOptions(port=path), target="device") as dev:
            t0 = time.perf_counter()
            for x in xs:
                dev.run_sample([x])
            seconds = time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()
    return {"samples": len(xs), "samples_per_second": round(len(xs) / seconds, 0)}


def dead_device(model, xs: np.ndarray, how: int) -> float:
    """Seconds from killing (SIGKILL) or freezing (SIGSTOP) the emulator to the DeviceError."""
    with open_device(model.blob, DeviceOptions(board=BOARD, model_name="digits")) as dev:
        for x in xs[:5]:
            dev.run_sample([x])
        os.kill(dev.backend.pid, how)
        t0 = time.perf_counter()
        try:
            for x in xs:
                dev.run_sample([x])
        except DeviceError:
            return round(time.perf_counter() - t0, 4)
        finally:
            if how == signal.SIGSTOP:
                os.kill(dev.backend.pid, signal.SIGCONT)
    raise SystemExit("the device kept answering after it was stopped")


def main() -> int:
    ap = argparse.ArgumentParser(description="the serial link measured on QEMU and on the POSIX port")
    ap.add_argument("--samples", type=int, default=200, help="INFER round trips per model (default 200)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model, xs = digits()
    rows = {"board": BOARD, "cpus": os.cpu_count(), "load_average_before": round(os.getloadavg()[0], 1),
            "round_trips": []}
    hello = SHARED / "hello_world_int8.tflite"
    if hello.exists():
        h = convert(hello)
        hx = np.arange(-128, 128, dtype=np.int8).reshape((-1,) + tuple(h.input_tensors()[0].shape))
        rows["round_trips"].append(round_trips("hello_world", h, hx, args.samples))
    rows["round_trips"].append(round_trips("digits CNN", model, xs, args.samples))
    from tinyadapt.device.faults import FaultConfig

    clean = stream(model, xs)
    noisy = stream(model, xs, FaultConfig(rate=0.01, seed=7))
    same = bool(np.array_equal(clean.pop("outputs"), noisy.pop("outputs")))
    rows["stream_clean"] = clean
    rows["stream_faults"] = {**noisy, "rate": 0.01, "outputs_identical": same,
                             "answered_once": noisy["device_invokes"] == len(xs)}
    rows["load"] = load_speed(model)
    rows["posix_pty"] = posix_pty(model, xs)
    rows["killed_seconds"] = dead_device(model, xs, signal.SIGKILL)
    rows["hung_seconds"] = dead_device(model, xs, signal.SIGSTOP)
    rows["load_average_after"] = round(os.getloadavg()[0], 1)
    ok = same and rows["stream_faults"]["answered_once"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0 if ok else 1
    for r in rows["round_trips"]:
        print(f"INFER round trip, {r['model']}: {r['median_ms']} ms median, {r['p90_ms']} ms p90, "
              f"{r['instructions_min']:,} instructions")
    print(f"stream, clean link: {clean['samples_per_second']} samples/s; 1 % faults: "
          f"{noisy['samples_per_second']} samples/s, outputs {'identical' if same else 'DIFFER'}, "
          f"{noisy['device_invokes']} invokes for {len(xs)} samples")
    print(f"LOAD_* over the UART: {rows['load']['kib_per_second']} KiB/s")
    if rows["posix_pty"]:
        print(f"POSIX port over a pty: {rows['posix_pty']['samples_per_second']:.0f} samples/s")
    print(f"killed emulator noticed in {rows['killed_seconds']} s, hung one in {rows['hung_seconds']} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
