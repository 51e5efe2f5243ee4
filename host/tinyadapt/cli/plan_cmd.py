"""tinyadapt plan: layer by layer or patch by patch, under a board's SRAM budget."""

from __future__ import annotations

import json

from tinyadapt.cli.plan_args import add_plan_arguments, board_budget
from tinyadapt.errors import PlanError

NAME = "plan"
HELP = "choose layer-by-layer or patch-based execution under an SRAM budget"
DESCRIPTION = """\
Plan a model's activation memory. Layer by layer, the largest early feature maps set the
peak SRAM. Patch-based inference (MCUNetV2) runs the first n ops tile by tile on a p x p
grid, so those maps never exist in full, at the price of recomputing the halos between
tiles. Streamed plans instead walk full-width row bands (or a few vertical strips of them)
and keep the rows the next band needs in small stream buffers, so halos are computed once.
This command evaluates every valid split, grid and mode exactly (regions, MACs and a full
arena plan), estimates each plan's instructions from costs measured on the core
(host/tinyadapt/plan/costs/<core>.json, from benchmarks/patch_costs.py), prints the
trade-off, and picks the plan with the fewest estimated instructions whose peak SRAM fits
the budget. If nothing fits, it says what would (the smallest achievable peak and the
split that reaches it). benchmarks/patch.py prints the estimate next to the overhead
measured on QEMU."""
EPILOG = """\
examples:
  tinyadapt plan models/mobilenetv2/mobilenetv2_96.tflite --budget 65536
  tinyadapt plan model.tflite --budget 256K
  tinyadapt plan model.tflite --budget-board stm32f746g-disco      (--board is the same)
  tinyadapt plan model.tflite --budget 200000 --json | jq .patch
  tinyadapt plan mobilenet_224.tflite --budget 200000 --external-input
  tinyadapt plan model.tflite --budget 60000 --core cortex-m7

The budget for --budget-board is the board's RAM less its model RAM slot, its stack and
--reserve bytes for the firmware's own static data. When nothing fits the budget, the
table is printed, the error goes to stderr as one line, and the exit status is 1."""

def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL.tflite")
    add_plan_arguments(p, patch=False, board_alias=True)
    p.add_argument("--core", help="estimate instructions on this core (default: the board's core, else cortex-m4)")
    p.add_argument("--all", action="store_true", help="list every candidate, not just the best per split")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (schema 1)")


def _grid(p) -> list[int]:
    """[rows, columns] of tiles: p x p tiles, or bands x strips."""
    return [p.grid, p.strips] if p.stream else [p.grid, p.grid]


def plan_report(model_path: str, budget: int | None, budget_name: str = "the",
                external_input: bool = False, core: str | None = None) -> tuple[dict, list]:
    from tinyadapt.convert import choose_patch, convert
    from tinyadapt.plan.estimate import load_costs

    table = load_costs(core)
    model = convert(model_path)
    plans = [p for p in model.patch_candidates(external_input=external_input, core=core)
             if p.external_inputs or not external_input]
    layer = model.layer_by_layer_peak_bytes
    chosen, error = None, None
    if budget is not None and layer > budget:
        try:
            chosen = choose_patch(model.source, layer, plans, budget, budget_name)
        except PlanError as exc:
            error = str(exc)
    rows = [{"split_ops": p.stage.n_ops, "split_after": model.ops[p.stage.n_ops - 1].source.kind,
             "mode": p.mode, "grid": _grid(p), "first_band_rows": p.first_rows, "peak_sram_bytes": p.peak_sram_bytes,
             "mac_overhead": round(p.mac_overhead, 4),
             "estimated_instruction_overhead": round(p.cost.overhead, 4),
             "fits": budget is None or p.peak_sram_bytes <= budget} for p in plans]
    report = {
        "schema": 1,
        "model": model.source,
        "budget_bytes": budget,
        "layer_by_layer_peak_bytes": layer,
        "peak_sram_bytes": chosen.peak_sram_bytes if chosen else layer,
        "patch": chosen.summary() if chosen else None,
        # bytes of model input kept outside the arena (in frame memory) by the chosen plan
        "external_input_bytes": sum(model.tensors[t].nbytes for t in chosen.external_inputs) if chosen else 0,
        "mac_overhead": round(chosen.mac_overhead, 4) if chosen else 0.0,
        # instructions estimated from the core's measured costs (layer by layer: overhead 0)
        "core": table.core,
        "estimated_instructions": round(chosen.cost.instructions if chosen else chosen_base(table, model)),
        "estimated_instruction_overhead": round(chosen.cost.overhead, 4) if chosen else 0.0,
        "macs": chosen.macs if chosen else sum(op.macs for op in model.ops),
        "fits": error is None and (budget is None or (chosen.peak_sram_bytes if chosen else layer) <= budget),
        "smallest_peak_bytes": min([layer] + [p.peak_sram_bytes for p in plans]),
        "candidates": rows,
    }
    if error:
        report["error"] = error
    return report, plans


def chosen_base(table, model) -> float:
    from tinyadapt.plan.estimate import estimate_layer_by_layer

    return estimate_layer_by_layer(table, model.tensors, model.ops)


def run(args) -> int:
    from tinyadapt.cli.plan_args import board_core

    budget = board_budget(args.budget_board, args.reserve) if args.budget_board else args.budget
    core = args.core or (board_core(args.budget_board) if args.budget_board else None)
    report, _ = plan_report(args.model, budget, args.budget_board or "the", args.external_input, core)
    if args.json:
        print(json.dumps(report, indent=2))
        if "error" in report:
            raise PlanError(report["error"])
        return 0 if report["fits"] else 1
    from rich.table import Table

    from tinyadapt.report.console import human_bytes, stdout

    rows = report["candidates"]
    chosen = report["patch"]

    def is_chosen(r) -> bool:
        return bool(chosen) and (r["split_ops"], r["mode"], r["grid"], r["first_band_rows"]) == (
            chosen["split_ops"], chosen["mode"], chosen["grid"], chosen["first_band_rows"])
    if not args.all:  # the smallest peak of each split and mode, and the chosen plan
        best = {}
        for r in rows:
            key = (r["split_ops"], r["mode"])
            if key not in best or r["peak_sram_bytes"] < best[key]["peak_sram_bytes"]:
                best[key] = r
        rows = sorted([*best.values(), *(r for r in rows if is_chosen(r) and r not in best.values())],
                      key=lambda r: (r["split_ops"], r["mode"], r["peak_sram_bytes"]))
    table = Table(title=f"{report['model']}: layer by layer {human_bytes(report['layer_by_layer_peak_bytes'])}"
                        + (f", budget {human_bytes(budget)}" if budget is not None else "")
                        + f"; instructions estimated for {report['core']}", title_justify="left")
    for col in ("split (ops)", "after", "mode", "tiles", "peak SRAM", "MAC overhead", "est. instr. overhead", "fits"):
        table.add_column(col, justify="left" if col in ("after", "mode") else "right")
    for r in rows:
        table.add_row(str(r["split_ops"]), r["split_after"], r["mode"], _tiles_label(r["mode"], r["grid"]),
                      human_bytes(r["peak_sram_bytes"]), f"{100 * r['mac_overhead']:.1f} %",
                      f"{100 * r['estimated_instruction_overhead']:.1f} %", "yes" if r["fits"] else "no",
                      style="bold green" if is_chosen(r) else None)
    stdout.print(table)
    if "error" in report:
        raise PlanError(report["error"])
    if chosen:
        stdout.print(f"chosen: patch stage of {chosen['split_ops']} ops, {_tiles_label(chosen['mode'], chosen['grid'])}"
                     f", peak SRAM {human_bytes(report['peak_sram_bytes'])} ({report['peak_sram_bytes']:,} B), "
                     f"MAC overhead {100 * report['mac_overhead']:.1f} %, estimated instruction overhead "
                     f"{100 * report['estimated_instruction_overhead']:.1f} % on {report['core']}"
                     + (f", input ({report['external_input_bytes']:,} B) in frame memory"
                        if report["external_input_bytes"] else ""))
    else:
        stdout.print(f"chosen: layer by layer, peak SRAM {human_bytes(report['peak_sram_bytes'])} "
                     f"({report['peak_sram_bytes']:,} B)")
    return 0


def _tiles_label(mode: str, grid: list[int]) -> str:
    if mode == "stream":
        return f"{grid[0]} bands" + (f" x {grid[1]} strips" if grid[1] > 1 else "")
    return f"{grid[0]}x{grid[1]}"
