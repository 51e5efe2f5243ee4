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
tiles. This command evaluates every valid split n and grid p exactly (regions, MACs and a
full arena plan), prints the trade-off, and picks the plan with the least MAC overhead
whose peak SRAM fits the budget. If nothing fits, it says what would (the smallest
achievable peak and the split that reaches it)."""
EPILOG = """\
examples:
  tinyadapt plan models/mobilenetv2/mobilenetv2_96.tflite --budget 65536
  tinyadapt plan model.tflite --budget 256K
  tinyadapt plan model.tflite --budget-board stm32f746g-disco      (--board is the same)
  tinyadapt plan model.tflite --budget 200000 --json | jq .patch
  tinyadapt plan mobilenet_224.tflite --budget 200000 --external-input

The budget for --budget-board is the board's RAM less its model RAM slot, its stack and
--reserve bytes for the firmware's own static data. When nothing fits the budget, the
table is printed, the error goes to stderr as one line, and the exit status is 1."""

def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL.tflite")
    add_plan_arguments(p, patch=False, board_alias=True)
    p.add_argument("--all", action="store_true", help="list every candidate, not just the best per split")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (schema 1)")


def plan_report(model_path: str, budget: int | None, budget_name: str = "the",
                external_input: bool = False) -> tuple[dict, list]:
    from tinyadapt.convert import choose_patch, convert

    model = convert(model_path)
    plans = [p for p in model.patch_candidates(external_input=external_input)
             if p.external_inputs or not external_input]
    layer = model.layer_by_layer_peak_bytes
    chosen, error = None, None
    if budget is not None and layer > budget:
        try:
            chosen = choose_patch(model.source, layer, plans, budget, budget_name)
        except PlanError as exc:
            error = str(exc)
    rows = [{"split_ops": p.stage.n_ops, "split_after": model.ops[p.stage.n_ops - 1].source.kind,
             "grid": p.grid, "peak_sram_bytes": p.peak_sram_bytes, "mac_overhead": round(p.mac_overhead, 4),
             "fits": budget is None or p.peak_sram_bytes <= budget} for p in plans]
    report = {
        "schema": 1,
        "model": model.source,
        "budget_bytes": budget,
        "layer_by_layer_peak_bytes": layer,
        "peak_sram_bytes": chosen.peak_sram_bytes if chosen else layer,
        "patch": {"split_ops": chosen.stage.n_ops, "grid": [chosen.grid, chosen.grid]} if chosen else None,
        # bytes of model input kept outside the arena (in frame memory) by the chosen plan
        "external_input_bytes": sum(model.tensors[t].nbytes for t in chosen.external_inputs) if chosen else 0,
        "mac_overhead": round(chosen.mac_overhead, 4) if chosen else 0.0,
        "macs": chosen.macs if chosen else sum(op.macs for op in model.ops),
        "fits": error is None and (budget is None or (chosen.peak_sram_bytes if chosen else layer) <= budget),
        "smallest_peak_bytes": min([layer] + [p.peak_sram_bytes for p in plans]),
        "candidates": rows,
    }
    if error:
        report["error"] = error
    return report, plans


def run(args) -> int:
    budget = board_budget(args.budget_board, args.reserve) if args.budget_board else args.budget
    report, _ = plan_report(args.model, budget, args.budget_board or "the", args.external_input)
    if args.json:
        print(json.dumps(report, indent=2))
        if "error" in report:
            raise PlanError(report["error"])
        return 0 if report["fits"] else 1
    from rich.table import Table

    from tinyadapt.report.console import human_bytes, stdout

    rows = report["candidates"]
    if not args.all:  # the best grid of each split, by peak
        best = {}
        for r in rows:
            if r["split_ops"] not in best or r["peak_sram_bytes"] < best[r["split_ops"]]["peak_sram_bytes"]:
                best[r["split_ops"]] = r
        rows = sorted(best.values(), key=lambda r: r["split_ops"])
    table = Table(title=f"{report['model']}: layer by layer {human_bytes(report['layer_by_layer_peak_bytes'])}"
                        + (f", budget {human_bytes(budget)}" if budget is not None else ""), title_justify="left")
    for col in ("split (ops)", "after", "grid", "peak SRAM", "MAC overhead", "fits"):
        table.add_column(col, justify="left" if col == "after" else "right")
    chosen = report["patch"]
    for r in rows:
        mark = chosen and r["split_ops"] == chosen["split_ops"] and r["grid"] == chosen["grid"][0]
        style = "bold green" if mark else None
        table.add_row(str(r["split_ops"]), r["split_after"], f"{r['grid']}x{r['grid']}",
                      human_bytes(r["peak_sram_bytes"]), f"{100 * r['mac_overhead']:.1f} %",
                      "yes" if r["fits"] else "no", style=style)
    stdout.print(table)
    if "error" in report:
        raise PlanError(report["error"])
    if chosen:
        stdout.print(f"chosen: patch stage of {chosen['split_ops']} ops, {chosen['grid'][0]}x{chosen['grid'][1]} tiles, "
                     f"peak SRAM {human_bytes(report['peak_sram_bytes'])} ({report['peak_sram_bytes']:,} B), "
                     f"MAC overhead {100 * report['mac_overhead']:.1f} %"
                     + (f", input ({report['external_input_bytes']:,} B) in frame memory"
                        if report["external_input_bytes"] else ""))
    else:
        stdout.print(f"chosen: layer by layer, peak SRAM {human_bytes(report['peak_sram_bytes'])} "
                     f"({report['peak_sram_bytes']:,} B)")
    return 0
