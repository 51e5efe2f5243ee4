"""Patch-based inference (MCUNetV2) benchmark: peak SRAM and compute, measured in one run.

For each model: TensorFlow Lite Micro's arena ("head", print_allocations), tinyadapt's
peak SRAM layer by layer, and patch by patch (the plan with the smallest peak whose MAC
overhead is at most --max-overhead), the ratio, the MAC overhead, and, on QEMU
(mps2-an386, Cortex-M4, -icount), the instructions per inference of both plans, the
measured instruction overhead, the device's arena high-water mark, and whether the two
plans' outputs are identical.

    .venv/bin/python benchmarks/patch.py [--no-qemu] [--json]

Models: the MobileNetV2-style model in models/, MobileNetV2 width 1.0 at 224x224 and
width 0.35 at 144x144 (synthetic weights, models/mobilenetv2/synth.py), and the public
models in ../shared/models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))
sys.path.insert(0, str(REPO / "models" / "mobilenetv2"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.errors import TinyAdaptError  # noqa: E402
from tinyadapt.reference import tflm_arena_allocations  # noqa: E402


def models() -> list[tuple[str, bytes]]:
    from synth import build_mobilenetv2

    out = [("mobilenetv2_96 (models/)", (REPO / "models/mobilenetv2/mobilenetv2_96.tflite").read_bytes()),
           ("MobileNetV2 1.0 224x224", build_mobilenetv2(1.0, 224, classes=1000)),
           ("MobileNetV2 0.35 144x144", build_mobilenetv2(0.35, 144, classes=1000))]
    for p in sorted(Path(os.environ.get("TINYADAPT_SHARED_MODELS", REPO.parent / "shared" / "models")).glob("*.tflite")):
        out.append((p.name, p.read_bytes()))
    return out


def qemu_run(blob: bytes, x: np.ndarray) -> dict:
    from tinyadapt.session.device import DeviceOptions, open_device

    with open_device(blob, DeviceOptions(board="qemu-an386", timeout=120.0)) as dev:
        outs, result = dev.run_sample([x])
        m = dev.metrics()
    return {"instructions": result.instructions, "arena_used": m.arena_used, "output": outs[0]}


def measure(name: str, model_bytes: bytes, max_overhead: float, on_qemu: bool) -> dict:
    row: dict = {"model": name}
    try:
        base = convert(model_bytes, name=name)
    except TinyAdaptError as exc:
        row["error"] = str(exc).split(": ", 1)[-1]
        return row
    row["macs"] = sum(op.macs for op in base.ops)
    row["tflm_head_bytes"] = tflm_arena_allocations(model_bytes)["head"]
    row["layer_by_layer_bytes"] = base.peak_sram_bytes
    best = _best(base.patch_candidates(), max_overhead, base.peak_sram_bytes)
    if best is None:
        row["patch"] = None
        row["patched_bytes"] = base.peak_sram_bytes
        row["mac_overhead"] = 0.0
    else:
        row["patch"] = {"split_ops": best.stage.n_ops, "grid": best.grid}
        row["patched_bytes"] = best.peak_sram_bytes
        row["mac_overhead"] = round(best.mac_overhead, 4)
        row["stage_input_bytes"] = sum(base.tensors[t].nbytes for t in best.stage.inputs)
    row["ratio_vs_tflm"] = round(row["tflm_head_bytes"] / row["patched_bytes"], 2)
    # MCUNetV2's accounting: the input frame sits outside SRAM (external memory the camera
    # writes) and the stage reads each tile's window from it.
    ext = _best([p for p in base.patch_candidates(external_input=True) if p.external_inputs], max_overhead,
                base.peak_sram_bytes)
    if ext is not None:
        row["external"] = {"split_ops": ext.stage.n_ops, "grid": ext.grid, "peak_sram_bytes": ext.peak_sram_bytes,
                           "mac_overhead": round(ext.mac_overhead, 4),
                           "input_bytes": sum(base.tensors[t].nbytes for t in ext.external_inputs),
                           "ratio_vs_tflm": round(row["tflm_head_bytes"] / ext.peak_sram_bytes, 2)}
    if on_qemu:
        x = np.random.default_rng(0).integers(-128, 128, size=base.input_tensors()[0].shape, dtype=np.int8)
        if base.input_tensors()[0].dtype != np.int8:
            x = np.random.default_rng(0).standard_normal(base.input_tensors()[0].shape).astype(np.float32)
        t0 = time.time()
        lbl = qemu_run(base.blob, x)
        row["qemu_layer_by_layer_instructions"] = lbl["instructions"]
        row["qemu_layer_by_layer_arena_used"] = lbl["arena_used"]
        if row["patch"]:
            patched = convert(model_bytes, name=name, patch=(best.stage.n_ops, best.grid))
            pr = qemu_run(patched.blob, x)
            row["qemu_patched_instructions"] = pr["instructions"]
            row["qemu_patched_arena_used"] = pr["arena_used"]
            row["qemu_instruction_overhead"] = round(pr["instructions"] / lbl["instructions"] - 1, 4)
            row["outputs_identical"] = bool(np.array_equal(pr["output"], lbl["output"]))
        if ext is not None:
            patched = convert(model_bytes, name=name, patch=(ext.stage.n_ops, ext.grid), external_input=True)
            er = qemu_run(patched.blob, x)
            row["external"].update(
                qemu_instructions=er["instructions"], qemu_arena_used=er["arena_used"],
                qemu_instruction_overhead=round(er["instructions"] / lbl["instructions"] - 1, 4),
                outputs_identical=bool(np.array_equal(er["output"], lbl["output"])))
        row["qemu_seconds"] = round(time.time() - t0, 1)
    return row


def _best(plans, max_overhead: float, layer_peak: int):
    """The smallest peak among plans within the MAC overhead allowed, if it beats layer by layer."""
    plans = [p for p in plans if p.mac_overhead <= max_overhead]
    best = min(plans, key=lambda p: (p.peak_sram_bytes, p.mac_overhead)) if plans else None
    return best if best is not None and best.peak_sram_bytes < layer_peak else None


def main() -> int:
    ap = argparse.ArgumentParser(description="patch-based inference: peak SRAM and overhead vs TFLite Micro")
    ap.add_argument("--no-qemu", action="store_true", help="skip the instruction counts on QEMU")
    ap.add_argument("--max-overhead", type=float, default=0.15, help="MAC overhead allowed (default 0.15)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [measure(name, data, args.max_overhead, not args.no_qemu) for name, data in models()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    stdout = Console(width=200)  # a wide table: do not fold it to a narrow terminal

    t = Table(title=f"peak SRAM (bytes) and patching overhead; patch plan = smallest peak with MAC overhead <= "
                    f"{args.max_overhead:.0%}")
    for col in ("model", "MACs", "TFLM arena", "ours layer-by-layer", "ours patched", "TFLM / patched",
                "split, grid", "MAC overhead", "QEMU instr. overhead", "device arena"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        if "error" in r:
            t.add_row(r["model"], "", "", "", "", "", "", "", "", r["error"].split(" (supported")[0])
            continue
        patch = f"{r['patch']['split_ops']}, {r['patch']['grid']}x{r['patch']['grid']}" if r["patch"] else "none"
        qo = f"{100 * r['qemu_instruction_overhead']:.1f} %" if "qemu_instruction_overhead" in r else "-"
        arena = r.get("qemu_patched_arena_used", r.get("qemu_layer_by_layer_arena_used", "-"))
        t.add_row(r["model"], f"{r['macs']:,}", f"{r['tflm_head_bytes']:,}", f"{r['layer_by_layer_bytes']:,}",
                  f"{r['patched_bytes']:,}", f"{r['ratio_vs_tflm']:.2f}x", patch, f"{100 * r['mac_overhead']:.1f} %",
                  qo, f"{arena:,}" if isinstance(arena, int) else arena)
    stdout.print(t)
    t = Table(title="the same, with the input frame outside SRAM (external memory; MCUNetV2's accounting): "
                    "the patch stage reads each tile's window from it")
    for col in ("model", "TFLM arena", "input frame", "ours patched", "TFLM / patched", "split, grid",
                "MAC overhead", "QEMU instr. overhead", "device arena", "outputs"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        e = r.get("external")
        if e is None:
            continue
        qo = f"{100 * e['qemu_instruction_overhead']:.1f} %" if "qemu_instruction_overhead" in e else "-"
        same = {True: "identical", False: "DIFFER"}.get(e.get("outputs_identical"), "-")
        t.add_row(r["model"], f"{r['tflm_head_bytes']:,}", f"{e['input_bytes']:,}", f"{e['peak_sram_bytes']:,}",
                  f"{e['ratio_vs_tflm']:.2f}x", f"{e['split_ops']}, {e['grid']}x{e['grid']}",
                  f"{100 * e['mac_overhead']:.1f} %", qo,
                  f"{e['qemu_arena_used']:,}" if "qemu_arena_used" in e else "-", same)
    stdout.print(t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
