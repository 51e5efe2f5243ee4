"""The tinyadapt demo: a real int8 model on the tinyadapt engine, checked against TFLite Micro.

Converts the digits CNN (models/digits), runs its held-out test split on the host target
(the C engine in-process), runs the same samples on TensorFlow Lite Micro, and prints
accuracy, peak SRAM next to TFLM's arena, and whether every output is bit-identical.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.engine.host import HostEngine  # noqa: E402
from tinyadapt.reference import run_tflm, tflm_arena_head  # noqa: E402
from tinyadapt.report.console import human_bytes, print_layers, stdout  # noqa: E402
from tinyadapt.report.layers import convert_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "models/digits/digits_cnn.tflite"))
    ap.add_argument("--data", default=str(REPO / "models/digits/digits_test.npz"))
    args = ap.parse_args()

    model_path = Path(args.model)
    data = np.load(args.data)
    x, y = data["x"], data["y"]
    stdout.rule(f"tinyadapt demo: {model_path.name} on {len(x)} held-out samples")

    model = convert(model_path)
    print_layers(convert_report(model))

    engine = HostEngine(model.blob)
    t0 = time.perf_counter()
    ours = np.stack([engine.invoke([x[i:i + 1]])[0][0] for i in range(len(x))])
    t_ours = time.perf_counter() - t0
    model_bytes = model_path.read_bytes()
    t0 = time.perf_counter()
    ref = np.stack([run_tflm(model_bytes, [x[i:i + 1]])[0][0] for i in range(len(x))])
    t_ref = time.perf_counter() - t0

    mismatches = int(np.sum(np.any(ours.reshape(len(x), -1) != ref.reshape(len(x), -1), axis=1)))
    acc_ours = float(np.mean(np.argmax(ours.reshape(len(x), -1), axis=1) == y))
    acc_ref = float(np.mean(np.argmax(ref.reshape(len(x), -1), axis=1) == y))
    head = tflm_arena_head(model_bytes)

    stdout.print()
    stdout.print(f"accuracy   tinyadapt {acc_ours:.2%}   TFLite Micro {acc_ref:.2%}")
    stdout.print(f"peak SRAM  tinyadapt {human_bytes(model.peak_sram_bytes)} ({model.peak_sram_bytes} B)   "
                 f"TFLite Micro arena head {human_bytes(head)} ({head} B)")
    stdout.print(f"host time  tinyadapt {t_ours * 1e3:.0f} ms   TFLite Micro {t_ref * 1e3:.0f} ms (Python interpreter)")
    if mismatches == 0:
        stdout.print(f"[bold green]bit-exact[/]: all {len(x)} outputs identical to TensorFlow Lite Micro")
        return 0
    stdout.print(f"[bold red]NOT bit-exact[/]: {mismatches} of {len(x)} outputs differ from TensorFlow Lite Micro")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
