"""Measure the instruction costs the patch planner ranks plans by, one table per core.

On QEMU with -icount (exact, repeatable instruction counts), with the device's default
DSP kernels, for a few models run layer by layer and with several patch plans (tiles and
streamed row bands, different splits, grids and strips):
  - per op (profile hook; a stage op's entry sums its tiles): instructions against the op's
    MACs, calls and output rows, fitted per op kind (1x1 conv, other conv, depthwise,
    pool, elementwise, other) by non-negative least squares;
  - what is outside the ops (total of an unprofiled run less the ops): fitted against the
    calls of layer-by-layer ops, the per-tile calls of stage ops, bytes copied by the patch
    executor, tiles and (tile, region) visits.
The fit is written to host/tinyadapt/plan/costs/<core>.json, with how well it predicts
the measured totals.

    .venv/bin/python benchmarks/patch_costs.py [--core cortex-m4|cortex-m7|all] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))
sys.path.insert(0, str(REPO / "models" / "mobilenetv2"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.plan.estimate import COSTS_DIR, KINDS, layer_work, plan_work  # noqa: E402

BOARDS = {"cortex-m4": "qemu-an386", "cortex-m7": "qemu-an500"}
OP_FEATURES = ("per_mac", "per_call", "per_row")
EXEC_FEATURES = ("dispatch", "stage_call", "copy_per_byte", "per_tile", "per_tile_region")


def workloads() -> list[tuple[str, bytes, list[tuple]]]:
    """(name, model, patch specs): the specs vary splits, grids, bands and strips."""
    from synth import build_mobilenetv2

    mbv2 = (REPO / "models/mobilenetv2/mobilenetv2_96.tflite").read_bytes()
    return [
        ("mobilenetv2_96", mbv2, [None, (6, 2), (6, 4), (6, 8), (10, 3), (6, 24, "stream", 1),
                                  (6, 4, "stream", 1), (6, 12, "stream", 3), (10, 12, "stream", 2)]),
        ("mobilenetv2_0.35_112", build_mobilenetv2(0.35, 112, classes=10),
         [None, (5, 5), (5, 28, "stream", 1), (5, 28, "stream", 4)]),
    ] + [(p.stem, p.read_bytes(), [None, (7, 4), (7, 12, "stream", 1), (7, 6, "stream", 3), (12, 4, "stream", 2)])
         for p in [REPO / "models/exports/mnv3s_min_96.tflite"] if p.is_file()] + [
        # Narrow bands, out-of-place depthwise (outputs that keep rows), in-place pointwise convs.
        (p.stem, p.read_bytes(), [None, (8, 12, "stream", 2), (8, 7, "stream", 2, 1), (8, 7, "stream", 3, 1),
                                  (8, 5, "stream", 4, 1), (8, 6, "stream", 1)])
        for p in [REPO / "models/exports/person_mnv1_025_96.tflite"] if p.is_file()]


def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with coefficients >= 0 (active set: drop the most negative, refit)."""
    keep = list(range(a.shape[1]))
    while True:
        x = np.zeros(a.shape[1])
        if keep:
            x[keep] = np.linalg.lstsq(a[:, keep], b, rcond=None)[0]
        neg = [k for k in keep if x[k] < 0]
        if not neg:
            return x
        keep.remove(min(neg, key=lambda k: x[k]))


def measure(board: str, name: str, model_bytes: bytes, spec) -> dict:
    from tinyadapt.session.device import DeviceOptions, open_device

    model = convert(model_bytes, name=name, patch=spec)
    shape = model.input_tensors()[0].shape
    x = np.random.default_rng(0).integers(-128, 128, size=shape, dtype=np.int8)
    with open_device(model.blob, DeviceOptions(board=board, timeout=300.0)) as dev:
        _, plain = dev.run_sample([x])
        _, profiled = dev.run_sample([x], profile=True)
    if model.patch is None:
        work, copied, visits, tiles, stage_calls = layer_work(model.tensors, model.ops), 0.0, 0, 0, 0
        lbl_calls = len(model.ops)
    else:
        work, copied, visits = plan_work(model.tensors, model.ops, model.patch)
        tiles = len(model.patch.tiles)
        n = model.patch.stage.n_ops
        stage_calls = sum(w.calls for w in work[:n])
        lbl_calls = len(model.ops) - n
    per_op = [0] * len(model.ops)
    for e in profiled.profile:
        per_op[e.index] += e.instructions
    return {"model": name, "spec": spec, "total": plain.instructions, "ops": [
        {"kind": w.kind, "macs": w.macs, "calls": w.calls, "rows": w.rows, "instructions": i}
        for w, i in zip(work, per_op)],
        "outside": plain.instructions - sum(per_op),
        "exec": [lbl_calls, stage_calls, copied, tiles, visits]}


def fit(runs: list[dict], core: str) -> dict:
    table = {"core": core, "board": BOARDS[core], "kernels": "dsp", "per_mac": {}, "per_call": {}, "per_row": {}}
    for kind in KINDS:
        rows = [(o["macs"], o["calls"], o["rows"], o["instructions"]) for r in runs for o in r["ops"]
                if o["kind"] == kind and o["calls"] > 0]
        if not rows:
            x = np.zeros(3)
        else:
            a = np.array([r[:3] for r in rows], dtype=float)
            x = nnls(a, np.array([r[3] for r in rows], dtype=float))
        for f, v in zip(OP_FEATURES, x):
            table[f][kind] = round(float(v), 4)
    a = np.array([r["exec"] for r in runs], dtype=float)
    x = nnls(a, np.array([r["outside"] for r in runs], dtype=float))
    for f, v in zip(EXEC_FEATURES, x):
        table[f] = round(float(v), 4)
    return table


def predict(table: dict, run: dict) -> float:
    ops = sum(table["per_mac"][o["kind"]] * o["macs"] + table["per_call"][o["kind"]] * o["calls"]
              + table["per_row"][o["kind"]] * o["rows"] for o in run["ops"])
    return ops + sum(table[f] * v for f, v in zip(EXEC_FEATURES, run["exec"]))


def main() -> int:
    ap = argparse.ArgumentParser(description="measure per-op-kind and patch-executor instruction costs on QEMU")
    ap.add_argument("--core", default="all", choices=[*BOARDS, "all"])
    ap.add_argument("--dry-run", action="store_true", help="print the table, do not write it")
    args = ap.parse_args()
    cores = list(BOARDS) if args.core == "all" else [args.core]
    loads = workloads()
    for core in cores:
        t0 = time.time()
        runs = [measure(BOARDS[core], name, data, spec) for name, data, specs in loads for spec in specs]
        table = fit(runs, core)
        check = []
        base = {r["model"]: r["total"] for r in runs if r["spec"] is None}
        base_pred = {r["model"]: predict(table, r) for r in runs if r["spec"] is None}
        for r in runs:
            est = predict(table, r)
            check.append({"model": r["model"], "spec": r["spec"], "measured": r["total"], "estimated": round(est),
                          "measured_overhead": round(r["total"] / base[r["model"]] - 1, 4),
                          "estimated_overhead": round(est / base_pred[r["model"]] - 1, 4)})
        table["source"] = (f"benchmarks/patch_costs.py on QEMU {BOARDS[core]} -icount shift=7, DSP kernels, "
                           f"{len(runs)} runs of {', '.join(n for n, _, _ in loads)}")
        table["fit_check"] = check
        print(f"{core} ({BOARDS[core]}), {time.time() - t0:.0f} s")
        print(f"  {'model':<22}{'plan':<22}{'measured':>12}{'estimated':>12}{'meas. ovh':>10}{'est. ovh':>10}")
        for c in check:
            spec = "layer by layer" if c["spec"] is None else str(tuple(c["spec"]))
            print(f"  {c['model']:<22}{spec:<22}{c['measured']:>12,}{c['estimated']:>12,}"
                  f"{100 * c['measured_overhead']:>9.1f}%{100 * c['estimated_overhead']:>9.1f}%")
        if not args.dry_run:
            path = COSTS_DIR / f"{core.replace('-', '_')}.json"
            path.write_text(json.dumps(table, indent=1) + "\n")
            print(f"  wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
