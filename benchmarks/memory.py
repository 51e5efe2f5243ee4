"""Peak SRAM: tinyadapt's planned arena next to TensorFlow Lite Micro's, measured in one run.

For every example model and every supported model in ../shared/models: our peak SRAM
(all activation memory the engine needs at run time: inputs, outputs, scratch) and the
"head" of TFLite Micro's arena (its non-persistent activation memory, from
print_allocations), for the same .tflite file.

    .venv/bin/python benchmarks/memory.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.errors import TinyAdaptError  # noqa: E402
from tinyadapt.reference import tflm_arena_allocations  # noqa: E402


def model_paths() -> list[Path]:
    return sorted((REPO / "models").glob("*/*.tflite")) + sorted((REPO.parent / "shared/models").glob("*.tflite"))


def measure(path: Path) -> dict:
    try:
        model = convert(path)
    except TinyAdaptError as exc:
        return {"model": path.name, "error": str(exc).split(": ", 1)[-1]}
    tflm = tflm_arena_allocations(path.read_bytes())
    ours = model.peak_sram_bytes
    return {"model": path.name, "ops": len(model.ops), "macs": sum(op.macs for op in model.ops),
            "peak_sram_bytes": ours, "tflm_head_bytes": tflm["head"], "tflm_total_bytes": tflm["total"],
            "ratio": round(tflm["head"] / ours, 3) if ours else None}


def main() -> int:
    ap = argparse.ArgumentParser(description="peak SRAM vs TFLite Micro's arena")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [measure(p) for p in model_paths()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    stdout = Console(width=160)

    table = Table(title="peak activation SRAM, bytes (same .tflite, same run)")
    for col in ("model", "ops", "MACs", "tinyadapt peak", "TFLM arena head", "TFLM / tinyadapt"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        if "error" in r:
            table.add_row(r["model"], "", "", "unsupported", "", r["error"].split(" by tinyadapt")[0])
            continue
        table.add_row(r["model"], str(r["ops"]), f"{r['macs']:,}", f"{r['peak_sram_bytes']:,}",
                      f"{r['tflm_head_bytes']:,}", f"{r['ratio']:.2f}x")
    stdout.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
