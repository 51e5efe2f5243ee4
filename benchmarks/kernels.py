"""Kernel backends: instructions per inference and per multiply-accumulate, reference
kernels (KERNELS=ref) vs the Cortex-M DSP kernels (KERNELS=dsp), measured on QEMU
mps2-an386 (Cortex-M4F) with -icount shift=7, where instruction counts are exact and
repeat run to run. Outputs of the two images are compared too (they must be identical).

Next to them, the TensorFlow Lite Micro + CMSIS-NN figures quoted in ../shared/ENVIRONMENT.md
(measured on the same emulated core with TFLM's release build); they are NOT measured by
this script.

    .venv/bin/python benchmarks/kernels.py [--json]

Models: models/digits (digits CNN), ../shared/models/micro_speech_quantized.tflite,
models/mobilenetv2/mobilenetv2_96.tflite; one sample each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.convert import convert  # noqa: E402

CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED = 1, 2, 3

# Quoted from ../shared/ENVIRONMENT.md ("The speed to beat"), not measured here.
QUOTED_MODELS = {
    "micro_speech": "1,495,420 instr (4.45/MAC) with CMSIS-NN; 9,310,330 with TFLM reference kernels",
    "mobilenetv2_96": "whole MobileNet-style models: 2.65-4.28/MAC with CMSIS-NN; TFLM reference kernels 12-18/MAC",
    "digits": "n/a",
}
QUOTED_LAYERS = {
    "conv 1x1": "1.5-3.1 (small layers up to 6.6)",
    "conv other": "first 3x3 stride-2 conv: 4.1-4.8",
    "depthwise": "3x3: 6.9-11.3, typically 8-9 (micro_speech's: 4.57)",
    "fully connected": "1.9",
}


def models() -> list[tuple[str, Path, np.ndarray]]:
    digits = np.load(REPO / "models" / "digits" / "digits_test.npz")["x"][:1]
    mnv2 = np.load(REPO / "models" / "mobilenetv2" / "mobilenetv2_96_sample.npz")["x"][:1]
    speech = np.random.default_rng(0).integers(-128, 128, (1, 1960), dtype=np.int8)
    return [("digits", REPO / "models" / "digits" / "digits_cnn.tflite", digits),
            ("micro_speech", Path(os.environ.get("TINYADAPT_SHARED_MODELS", REPO.parent / "shared" / "models"))
             / "micro_speech_quantized.tflite", speech),
            ("mobilenetv2_96", REPO / "models" / "mobilenetv2" / "mobilenetv2_96.tflite", mnv2)]


def layer_kind(model, op) -> str | None:
    if op.opcode == CONV_2D:
        f = model.tensors[op.inputs[1]].shape        # [C_out, KH, KW, C_in]
        return "conv 1x1" if f[1] == 1 and f[2] == 1 else "conv other"
    return {DEPTHWISE_CONV_2D: "depthwise", FULLY_CONNECTED: "fully connected"}.get(op.opcode)


def run(blob: bytes, x: np.ndarray, kernels: str):
    from tinyadapt.session.device import DeviceOptions, open_device

    with open_device(blob, DeviceOptions(board="qemu-an386", kernels=kernels, timeout=300.0)) as dev:
        outs, result = dev.run_sample([x], profile=True)
        metrics = dev.metrics()
    return b"".join(o.tobytes() for o in outs), result, metrics


def measure(name: str, path: Path, x: np.ndarray) -> dict:
    model = convert(path, name=name)
    row = {"model": name, "macs": sum(op.macs for op in model.ops), "layers": {}}
    outputs = {}
    for kernels in ("ref", "dsp"):
        out, result, metrics = run(model.blob, x, kernels)
        outputs[kernels] = out
        row[kernels] = result.instructions
        row[f"{kernels}_stack_used"] = metrics.stack_used
        for op, prof in zip(model.ops, result.profile):
            kind = layer_kind(model, op)
            if kind is None:
                continue
            layer = row["layers"].setdefault(kind, {"macs": 0, "ref": 0, "dsp": 0})
            layer[kernels] += prof.instructions
            if kernels == "ref":
                layer["macs"] += op.macs
    row["outputs_identical"] = outputs["ref"] == outputs["dsp"]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description="instructions per inference and per MAC, ref vs dsp kernels (QEMU M4)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [measure(name, path, x) for name, path, x in models()]
    if args.json:
        print(json.dumps({"machine": "mps2-an386", "icount": "shift=7", "models": rows,
                          "quoted_tflm_cmsis_nn": {"models": QUOTED_MODELS, "layers": QUOTED_LAYERS,
                                                   "source": "../shared/ENVIRONMENT.md"}}, indent=2))
        return 0 if all(r["outputs_identical"] for r in rows) else 1

    print("Instructions per inference on QEMU mps2-an386 (Cortex-M4F), -icount shift=7 (measured in this run;\n"
          "stack = the device's stack high-water mark after the inference)")
    print(f"{'model':<16}{'MACs':>12}{'ref instr':>14}{'ref/MAC':>9}{'dsp instr':>14}{'dsp/MAC':>9}"
          f"{'speed-up':>10}  {'stack ref/dsp':>14}  outputs")
    for r in rows:
        stack = f"{r['ref_stack_used']:,}/{r['dsp_stack_used']:,} B"
        print(f"{r['model']:<16}{r['macs']:>12,}{r['ref']:>14,}{r['ref'] / r['macs']:>9.2f}{r['dsp']:>14,}"
              f"{r['dsp'] / r['macs']:>9.2f}{r['ref'] / r['dsp']:>9.2f}x  {stack:>14}  "
              f"{'identical' if r['outputs_identical'] else 'DIFFER'}")
    print("\nBy layer type (instructions inside the ops / their MACs; measured in this run)")
    print(f"{'model':<16}{'layer':<17}{'MACs':>11}{'ref/MAC':>9}{'dsp/MAC':>9}   TFLM+CMSIS-NN, quoted")
    for r in rows:
        for kind in ("conv 1x1", "conv other", "depthwise", "fully connected"):
            layer = r["layers"].get(kind)
            if layer and layer["macs"]:
                print(f"{r['model']:<16}{kind:<17}{layer['macs']:>11,}{layer['ref'] / layer['macs']:>9.2f}"
                      f"{layer['dsp'] / layer['macs']:>9.2f}   {QUOTED_LAYERS[kind]}")
    print("\nTensorFlow Lite Micro + CMSIS-NN on the same emulated core, quoted from ../shared/ENVIRONMENT.md "
          "(not measured in this run):")
    for name, text in QUOTED_MODELS.items():
        if text != "n/a":
            print(f"  {name:<16}{text}")
    return 0 if all(r["outputs_identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
