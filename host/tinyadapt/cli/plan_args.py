"""Options shared by every command that plans memory (convert, plan, run, stream, metrics,
build): a budget from bytes or a board, or an explicit patch split. One helper, so the
options are the same everywhere."""

from __future__ import annotations

import argparse
import re

from tinyadapt.errors import PlanError

DEFAULT_RESERVE = 16 * 1024

_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024 * 1024, "mib": 1024 * 1024,
          "kb": 1000, "mb": 1000 * 1000}


def parse_bytes(text: str, *, allow_zero: bool = False) -> int:
    """A byte count: 65536, 64K, 64KiB, 1.5M (K/KiB and M/MiB are powers of 1024; kB and MB
    powers of 1000)."""
    m = re.fullmatch(r"\s*([-+]?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a byte count (e.g. 65536, 64K, 320KiB, 1M)")
    value = float(m.group(1)) * _UNITS[unit]
    if value != int(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of bytes")
    if value <= 0 and not (allow_zero and value == 0):
        raise argparse.ArgumentTypeError(f"'{text}': must be {'at least 0' if allow_zero else 'more than 0'} bytes")
    return int(value)


def budget_bytes(text: str) -> int:
    return parse_bytes(text)


def reserve_bytes(text: str) -> int:
    return parse_bytes(text, allow_zero=True)


def add_plan_arguments(p, with_board: bool = True, *, patch: bool = True, board_alias: bool = False) -> None:
    """--budget, --budget-board, --reserve, --patch, --external-input.

    `with_board` is kept for callers written before every command took --budget-board (it
    always does now). `board_alias`: also accept --board for --budget-board (the plan
    command, whose only board is the budget's). `patch`: offer --patch N,P."""
    g = p.add_argument_group("memory plan (default: layer by layer)")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=budget_bytes, metavar="BYTES",
                        help="peak SRAM allowed (65536, 64K, 320KiB); patch-based execution is chosen "
                             "when layer by layer needs more")
    names = ["--budget-board"] + (["--board"] if board_alias else [])
    default = "" if board_alias or not _has_option(p, "--board") else " (default: --board's budget)"
    budget.add_argument(*names, metavar="BOARD", dest="budget_board",
                        help=f"take the budget from boards/BOARD.toml: its RAM less slot, stack and --reserve{default}")
    g.add_argument("--reserve", type=reserve_bytes, default=DEFAULT_RESERVE, metavar="BYTES",
                   help=f"RAM kept for the firmware's static data with a board budget (default {DEFAULT_RESERVE})")
    if patch:
        g.add_argument("--patch", metavar="N,P",
                       help="force patch-based execution of the first N ops on a PxP grid, or N,B,stream[,S[,F]]: "
                            "B row bands (in S vertical strips, the first of F rows) that keep halo rows instead "
                            "of recomputing them")
    g.add_argument("--external-input", action="store_true", dest="external_input",
                   help="with a patch plan, keep the model input outside the arena, in the board's "
                        "frame memory (a camera frame buffer), read tile by tile")


def _has_option(p, name: str) -> bool:
    return name in getattr(p, "_option_string_actions", {})


def board_budget(board_name: str, reserve: int = DEFAULT_RESERVE) -> int:
    from tinyadapt.device.boards import load_board

    b = load_board(board_name)
    budget = b.ram_size - b.ram_slot_size - b.stack_size - reserve
    if budget <= 0:
        raise PlanError(f"{board_name} leaves no RAM for activations: {b.ram_size:,} B of RAM less the "
                        f"{b.ram_slot_size:,} B slot, {b.stack_size:,} B stack and {reserve:,} B --reserve")
    return budget


def plan_kwargs(args, board: str | None = None) -> dict:
    """convert() keyword arguments from parsed options (`board`: a command's own --board,
    whose budget applies unless --budget or --budget-board says otherwise)."""
    kwargs = {"external_input": True} if getattr(args, "external_input", False) else {}
    if getattr(args, "patch", None):
        kwargs["patch"] = parse_patch(args.patch)
    elif getattr(args, "budget", None) is not None:
        kwargs["budget"] = args.budget
    elif getattr(args, "budget_board", None) or board:
        name = getattr(args, "budget_board", None) or board
        kwargs["budget"] = board_budget(name, getattr(args, "reserve", DEFAULT_RESERVE))
        kwargs["budget_name"] = name
        kwargs["core"] = board_core(name)
    return kwargs


def board_core(board_name: str) -> str:
    from tinyadapt.device.boards import load_board

    return load_board(board_name).core


def parse_patch(text: str) -> tuple:
    """N,P (tiles) or N,B,stream[,S[,F]] (streamed row bands in S strips, the first of F rows)
    -> convert(patch=...)."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            spec = int(parts[0]), int(parts[1])
        elif len(parts) in (3, 4, 5) and parts[2] == "stream":
            spec = int(parts[0]), int(parts[1]), "stream", int(parts[3]) if len(parts) >= 4 else 1
            spec += (int(parts[4]),) if len(parts) == 5 else ()
        else:
            spec = None
        if spec and all(v >= 1 for v in spec if isinstance(v, int)):
            return spec
    except ValueError:
        pass
    raise PlanError(f"--patch takes N,P or N,B,stream[,S[,F]] (e.g. 13,4 or 6,24,stream,3), got '{text}'")
