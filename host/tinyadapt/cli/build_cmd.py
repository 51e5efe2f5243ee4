"""tinyadapt build: a firmware image for a board, optionally with a model compiled in."""

from __future__ import annotations

import json
from pathlib import Path

from tinyadapt.cli.device_args import add_board_argument
from tinyadapt.cli.plan_args import add_plan_arguments

NAME = "build"
HELP = "build the firmware image for a board (with a model compiled in) and check it fits"
DESCRIPTION = """\
Build the tinyadapt firmware for --board with firmware/ports/Makefile (arm-none-eabi-gcc).
With --model, the model is converted and compiled into the image (slot 0, read in place from
flash). The report gives flash and RAM use read from the ELF against the board's budget
(boards/<board>.toml). A model that does not fit fails here, with one line naming what
overflows, before anything is flashed. --emulate builds the QEMU image for the board's core
linked with the board's own flash and RAM sizes (what 'run --target qemu --board B' runs)."""
EPILOG = """\
examples:
  tinyadapt build --board qemu-an386 --model models/digits/digits_cnn.tflite
  tinyadapt build --board stm32f746g-disco --model model.tflite --json
  tinyadapt build --board nucleo-h743zi --model model.tflite --budget 256K   (plan for less than the board has)
  tinyadapt build --board stm32f746g-disco --model model.tflite --emulate   (F746 budget, QEMU M7 image)"""


def add_arguments(p) -> None:
    add_board_argument(p, required=True)
    p.add_argument("--model", "-m", metavar="MODEL", help=".tflite model or .tamb blob to compile into the image")
    p.add_argument("--emulate", action="store_true",
                   help="build for the QEMU board with the same core, with this board's memory budget")
    p.add_argument("--kernels", default="dsp", metavar="DIR", help="kernel backend: dsp (Cortex-M DSP extension, default) or ref (portable reference)")
    p.add_argument("--json", action="store_true", help="print the size report as JSON (schema 1)")
    add_plan_arguments(p)


def run(args) -> int:
    from tinyadapt.cli.run_cmd import load_model_blob
    from tinyadapt.device.boards import load_board
    from tinyadapt.device.build import build_image
    from tinyadapt.report.activity import TerminalActivity
    from tinyadapt.report.console import human_bytes, progress_enabled, stdout

    board = load_board(args.board)
    blob = None
    with TerminalActivity(progress_enabled(args.json) and not args.quiet) as activity:
        if args.model:
            blob, _ = load_model_blob(args.model, args, activity)
        result = build_image(board, blob=blob, name=Path(args.model).stem if args.model else "model",
                             emulate=args.emulate or board.emulated, kernels=args.kernels, activity=activity)
    report = {"schema": 1, "model": args.model, **result.report()}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if args.quiet:
        return 0
    from rich.table import Table

    f, r = report["flash"], report["ram"]
    via = f" (QEMU {result.built_for.name} image)" if result.built_for is not board else ""
    table = Table(title=f"{board.name}{via}: {result.elf}", title_justify="left")
    for col in ("memory", "used", "budget", "%"):
        table.add_column(col, justify="left" if col == "memory" else "right")
    table.add_row("flash", f"{f['used_bytes']:,}", f"{f['budget_bytes']:,}", f"{f['percent']:.1f}")
    table.add_row("RAM", f"{r['used_bytes']:,}", f"{r['budget_bytes']:,}", f"{r['percent']:.1f}")
    stdout.print(table)
    stdout.print(f"flash: code+constants {human_bytes(f['text_bytes'])}, initialised data {human_bytes(f['data_bytes'])}; "
                 f"RAM: static {human_bytes(r['static_bytes'])}, model slot {human_bytes(r['ram_slot_bytes'])}, "
                 f"stack {human_bytes(r['stack_bytes'])}, model arena {human_bytes(r['model_arena_bytes'])} "
                 f"(arena available {human_bytes(r['arena_available_bytes'])})")
    return 0
