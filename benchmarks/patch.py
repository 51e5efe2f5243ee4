"""Patch-based inference (MCUNetV2, with StreamNet's computed-once halos) benchmark: peak SRAM
and compute, measured in one run.

For each model: TensorFlow Lite Micro's arena ("head", print_allocations), tinyadapt's
peak SRAM layer by layer, and two patch plans chosen the way `tinyadapt plan` chooses
(fewest instructions estimated from the core's measured costs, plan/costs/cortex_m4.json):
  - "smallest": the smallest peak among plans whose estimated instruction overhead is at
    most --max-overhead (15 %);
  - "tight": the cheapest plan under a budget --tight times below TFLM's arena (2.5x, as
    TFLM's person_detect at 22,118 B against its 55,296 B arena).
For each: the split, mode (tiles that recompute halos, or streamed row bands that keep
them) and tiles, the MAC overhead, the estimated instruction overhead, and on QEMU
(mps2-an386, Cortex-M4, -icount, DSP kernels) the measured instructions, the measured
overhead, the device's arena high-water mark and whether the outputs equal layer by layer.

    .venv/bin/python benchmarks/patch.py [--no-qemu] [--json] [--models NAME ...]

Models: the MobileNetV2-style model in models/, MobileNetV2 width 1.0 at 224x224 and
width 0.35 at 144x144 and 224x224 (synthetic weights, models/mobilenetv2/synth.py), the
exported models in models/exports/ (if present), and the public models in ../shared/models.
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
           ("MobileNetV2 0.35 144x144", build_mobilenetv2(0.35, 144, classes=1000)),
           ("MobileNetV2 0.35 224x224", build_mobilenetv2(0.35, 224, classes=1000))]
    for p in sorted((REPO / "models" / "exports").glob("*.tflite")):
        out.append((f"{p.stem} (exports/)", p.read_bytes()))
    for p in sorted(Path(os.environ.get("TINYADAPT_SHARED_MODELS", REPO.parent / "shared" / "models")).glob("*.tflite")):
        out.append((p.name, p.read_bytes()))
    return out


# Issue 13's targets for the real exports, input frame in SRAM: (model stem, at least this many
# times below TFLM's arena head, at most this many bytes or None). person_detect's targets apply to
# its architecture exported by Keras, int8 and uint8 input: 2.5x below TFLM's arena for the export
# (measured in the same run; its PADs make it larger than person_detect's 55,296 B), and under the
# issue's 22,118 B (2.5x below person_detect's arena, which equals the export's layer-by-layer peak
# once its PADs are folded). Each target is judged on the plan the planner chooses for the target's
# budget (what `tinyadapt plan --budget B` picks: the cheapest estimated plan that fits), measured.
TARGETS = [("mnv2_035_128", 4.0, 80 * 1024), ("torch_mnv2_100_224", 8.0, 320 * 1024), ("mnv3s_min_96", 2.0, None),
           ("person_mnv1_025_96", 2.5, 22_118), ("person_mnv1_025_96_u8", 2.5, 22_118)]


def target_of(name: str) -> tuple[float, int | None] | None:
    for stem, ratio, limit in TARGETS:
        if name.startswith(stem + " "):
            return ratio, limit
    return None


def qemu_run(blob: bytes, x: np.ndarray) -> dict:
    from tinyadapt.session.device import DeviceOptions, open_device

    with open_device(blob, DeviceOptions(board="qemu-an386", timeout=120.0)) as dev:
        outs, result = dev.run_sample([x])
        m = dev.metrics()
    return {"instructions": result.instructions, "arena_used": m.arena_used, "output": outs[0]}


def _plan_row(base, plan) -> dict:
    return {"split_ops": plan.stage.n_ops, "mode": plan.mode, "tiles": plan.grid_label, "spec": list(plan.spec),
            "peak_sram_bytes": plan.peak_sram_bytes, "mac_overhead": round(plan.mac_overhead, 4),
            "estimated_instruction_overhead": round(plan.cost.overhead, 4)}


def measure(name: str, model_bytes: bytes, max_overhead: float, tight: float, on_qemu: bool,
            external: bool = True) -> dict:
    from tinyadapt.convert import choose_patch

    row: dict = {"model": name}
    try:
        base = convert(model_bytes, name=name)
    except TinyAdaptError as exc:
        row["error"] = str(exc).split(": ", 1)[-1]
        return row
    row["macs"] = sum(op.macs for op in base.ops)
    row["tflm_head_bytes"] = tflm_arena_allocations(model_bytes)["head"]
    row["layer_by_layer_bytes"] = base.peak_sram_bytes
    plans = base.patch_candidates()
    picks = {}
    # The smallest peak within the overhead allowed: arenas are planned cheapest first, and
    # only while they can still beat the best peak found.
    cheap = sorted((p for p in plans if p.cost.overhead <= max_overhead), key=lambda p: p.cost.instructions)
    best = None
    for p in cheap:
        if best is None or p.peak_sram_bytes < best.peak_sram_bytes:
            best = p
    if best is not None and best.peak_sram_bytes < base.peak_sram_bytes:
        picks["smallest"] = best
    budget = int(row["tflm_head_bytes"] / tight)
    row["tight_budget_bytes"] = budget
    if base.peak_sram_bytes > budget:
        try:
            picks["tight"] = choose_patch(name, base.peak_sram_bytes, plans, budget)
        except TinyAdaptError as exc:
            row["tight_error"] = str(exc).split(": ", 2)[-1]
    else:
        row["tight_layer_by_layer"] = True
    goal = target_of(name)
    if goal is not None:
        ratio, limit = goal
        row["target"] = {"ratio": ratio, "limit_bytes": limit}
        goal = row["target_budget_bytes"] = min(int(row["tflm_head_bytes"] / ratio), limit or row["tflm_head_bytes"])
        try:
            picks["target"] = choose_patch(name, base.peak_sram_bytes, plans, goal)
        except TinyAdaptError as exc:
            row["target_error"] = str(exc).split(": ", 2)[-1]
    row["plans"] = {k: _plan_row(base, p) for k, p in picks.items()}
    # MCUNetV2's accounting: the input frame sits outside SRAM (external memory the camera
    # writes) and the stage reads each tile's window from it.
    ext_plans = [p for p in base.patch_candidates(external_input=True) if p.external_inputs] if external else []
    ext = None
    for p in sorted((p for p in ext_plans if p.cost.overhead <= max_overhead), key=lambda p: p.cost.instructions):
        if ext is None or p.peak_sram_bytes < ext.peak_sram_bytes:
            ext = p
    if ext is not None:
        row["external"] = {**_plan_row(base, ext),
                           "input_bytes": sum(base.tensors[t].nbytes for t in ext.external_inputs),
                           "ratio_vs_tflm": round(row["tflm_head_bytes"] / ext.peak_sram_bytes, 2)}
    if on_qemu:
        spec = base.input_tensors()[0]
        rng = np.random.default_rng(0)
        if np.dtype(spec.dtype) in (np.dtype(np.int8), np.dtype(np.uint8)):
            info = np.iinfo(spec.dtype)
            x = rng.integers(info.min, info.max + 1, size=spec.shape, dtype=spec.dtype)
        else:
            x = rng.standard_normal(spec.shape).astype(np.float32)
        t0 = time.time()
        lbl = qemu_run(base.blob, x)
        row["qemu_layer_by_layer_instructions"] = lbl["instructions"]
        row["qemu_layer_by_layer_arena_used"] = lbl["arena_used"]
        runs, done = [], {}
        for k, p in picks.items():  # a plan picked twice runs once
            if p.spec in done:
                row["plans"][k] = row["plans"][done[p.spec]]
                continue
            done[p.spec] = k
            runs.append((row["plans"][k], convert(model_bytes, name=name, patch=p.spec)))
        if ext is not None:
            runs.append((row["external"], convert(model_bytes, name=name, patch=ext.spec, external_input=True)))
        for target, patched in runs:
            pr = qemu_run(patched.blob, x)
            target.update(qemu_instructions=pr["instructions"], qemu_arena_used=pr["arena_used"],
                          qemu_instruction_overhead=round(pr["instructions"] / lbl["instructions"] - 1, 4),
                          outputs_identical=bool(np.array_equal(pr["output"], lbl["output"])))
        row["qemu_seconds"] = round(time.time() - t0, 1)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description="patch-based inference: peak SRAM and overhead vs TFLite Micro")
    ap.add_argument("--no-qemu", action="store_true", help="skip the instruction counts on QEMU")
    ap.add_argument("--max-overhead", type=float, default=0.15,
                    help="estimated instruction overhead allowed for the smallest-peak plan (default 0.15)")
    ap.add_argument("--tight", type=float, default=2.5, help="the tight budget: TFLM's arena / this (default 2.5)")
    ap.add_argument("--models", nargs="*", help="only models whose name contains one of these")
    ap.add_argument("--no-external", action="store_true", help="skip the input-frame-outside-SRAM plans")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rows", metavar="FILE.json", help="print the tables of rows saved by --json instead")
    args = ap.parse_args()
    if args.rows:
        return print_tables(json.loads(Path(args.rows).read_text()), args)
    chosen = [(n, d) for n, d in models() if not args.models or any(m in n for m in args.models)]
    rows = [measure(name, data, args.max_overhead, args.tight, not args.no_qemu, not args.no_external)
            for name, data in chosen]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    return print_tables(rows, args)


def print_tables(rows: list[dict], args) -> int:
    from rich.console import Console
    from rich.table import Table

    stdout = Console(width=240)  # a wide table: do not fold it to a narrow terminal

    def pct(v) -> str:
        return f"{100 * v:.1f} %" if v is not None else "-"

    t = Table(title="peak SRAM (bytes) and patching overhead, input frame in SRAM. smallest = smallest peak with "
                    f"estimated instruction overhead <= {args.max_overhead:.0%}; tight = cheapest plan under "
                    f"TFLM's arena / {args.tight}; instructions measured on QEMU mps2-an386 (-icount)")
    for col in ("model", "TFLM arena", "layer by layer", "plan", "peak", "TFLM / peak", "split, tiles",
                "MAC ovh.", "instr. ovh. estimated", "instr. ovh. measured", "device arena", "outputs"):
        t.add_column(col, justify="left" if col in ("model", "plan", "split, tiles") else "right")
    for r in rows:
        if "error" in r:
            t.add_row(r["model"], "", "", "", "", "", r["error"].split(" (supported")[0])
            continue
        for kind in ("smallest", "tight", "target"):
            p = r["plans"].get(kind)
            if p is None:
                if kind == "target" and "target_budget_bytes" not in r:
                    continue
                why = ("fits layer by layer" if r.get("tight_layer_by_layer") else
                       r.get("tight_error", "no plan")) if kind == "tight" else r.get(f"{kind}_error", "no plan")
                t.add_row(r["model"], f"{r['tflm_head_bytes']:,}", f"{r['layer_by_layer_bytes']:,}", kind,
                          "", "", why[:60])
                continue
            same = {True: "identical", False: "DIFFER"}.get(p.get("outputs_identical"), "-")
            t.add_row(r["model"], f"{r['tflm_head_bytes']:,}", f"{r['layer_by_layer_bytes']:,}",
                      kind + (f" ({r[kind + '_budget_bytes']:,})" if kind in ("tight", "target") else ""),
                      f"{p['peak_sram_bytes']:,}", f"{r['tflm_head_bytes'] / p['peak_sram_bytes']:.2f}x",
                      f"{p['split_ops']}, {p['tiles']}", pct(p["mac_overhead"]),
                      pct(p["estimated_instruction_overhead"]), pct(p.get("qemu_instruction_overhead")),
                      f"{p['qemu_arena_used']:,}" if "qemu_arena_used" in p else "-", same)
    stdout.print(t)
    t = Table(title="the same, with the input frame outside SRAM (external memory; MCUNetV2's accounting): "
                    "the patch stage reads each tile's window from it")
    for col in ("model", "TFLM arena", "input frame", "ours patched", "TFLM / patched", "split, tiles",
                "MAC ovh.", "instr. ovh. estimated", "instr. ovh. measured", "device arena", "outputs"):
        t.add_column(col, justify="left" if col in ("model", "split, tiles") else "right")
    for r in rows:
        e = r.get("external")
        if e is None:
            continue
        same = {True: "identical", False: "DIFFER"}.get(e.get("outputs_identical"), "-")
        t.add_row(r["model"], f"{r['tflm_head_bytes']:,}", f"{e['input_bytes']:,}", f"{e['peak_sram_bytes']:,}",
                  f"{e['ratio_vs_tflm']:.2f}x", f"{e['split_ops']}, {e['tiles']}", pct(e["mac_overhead"]),
                  pct(e["estimated_instruction_overhead"]), pct(e.get("qemu_instruction_overhead")),
                  f"{e['qemu_arena_used']:,}" if "qemu_arena_used" in e else "-", same)
    stdout.print(t)
    t = Table(title="targets for the real exports (input frame in SRAM; ours = the 'target' plan above, the one "
                    "`tinyadapt plan --budget B` chooses for the target's budget B; "
                    f"measured instruction overhead <= {args.max_overhead:.0%} where measured)")
    for col in ("model", "TFLM arena", "ours", "TFLM / ours", "target", "instr. ovh. measured", "met"):
        t.add_column(col, justify="left" if col in ("model", "target") else "right")
    for stem, ratio, limit in TARGETS:
        r = next((r for r in rows if r["model"].startswith(stem + " ") and "plans" in r), None)
        p = r and r["plans"].get("target")
        if p is None:
            if r is not None:
                t.add_row(stem, f"{r['tflm_head_bytes']:,}", "-", "-", f">= {ratio:g}x", "-",
                          "NO: " + r.get("target_error", "no plan")[:60])
            continue
        got = r["tflm_head_bytes"] / p["peak_sram_bytes"]
        measured = p.get("qemu_instruction_overhead")
        met = got >= ratio and (limit is None or p["peak_sram_bytes"] <= limit) and \
            (measured is None or measured <= args.max_overhead)
        t.add_row(stem, f"{r['tflm_head_bytes']:,}", f"{p['peak_sram_bytes']:,}", f"{got:.2f}x",
                  f">= {ratio:g}x" + (f", <= {limit:,} B" if limit else ""), pct(measured), "yes" if met else "NO")
    stdout.print(t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
