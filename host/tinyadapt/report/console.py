"""Human-readable output: tables and progress bars on the terminal (rich)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def print_layers(report: dict) -> None:
    table = Table(title=f"{report['model']}", title_justify="left")
    for col, just in (("#", "right"), ("op", "left"), ("output", "left"), ("MACs", "right"),
                      ("weights", "right"), ("activations", "right"), ("live", "right")):
        table.add_column(col, justify=just)
    for r in report["layers"]:
        table.add_row(str(r["index"]), r["op"], "x".join(map(str, r["output_shapes"][0])) if r["output_shapes"] else "",
                      f"{r['macs']:,}", human_bytes(r["weight_bytes"]), human_bytes(r["activation_bytes"]),
                      human_bytes(r["live_bytes"]))
    stdout.print(table)
    stdout.print(f"total: {report['ops']} ops, {report['macs']:,} MACs, weights {human_bytes(report['weights_bytes'])}, "
                 f"blob {human_bytes(report['blob_bytes'])}, peak SRAM {human_bytes(report['peak_sram_bytes'])} "
                 f"({report['peak_sram_bytes']:,} bytes)")


def terminal_columns() -> int:
    """Width of the terminal stderr writes to (COLUMNS wins, as for every terminal program)."""
    import os
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size().columns


def progress_enabled(json_mode: bool) -> bool:
    return not json_mode and sys.stderr.isatty()
