"""Options shared by plan-update and train: the budget and the training data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyadapt.cli.plan_args import DEFAULT_RESERVE, board_budget
from tinyadapt.errors import InputError


def add_budget_arguments(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--budget", type=int, metavar="BYTES", help="SRAM allowed for the training step "
                   "(arena + parameter RAM)")
    g.add_argument("--board", help="take the budget from boards/BOARD.toml (its RAM less model slot, stack "
                                   "and --reserve)")
    p.add_argument("--reserve", type=int, default=DEFAULT_RESERVE, metavar="BYTES",
                   help=f"RAM kept for the firmware's static data with --board (default {DEFAULT_RESERVE})")


def budget_of(args) -> int | None:
    if getattr(args, "board", None):
        return board_budget(args.board, args.reserve)
    if args.budget is not None and args.budget <= 0:
        raise InputError(f"--budget must be positive, got {args.budget}")
    return args.budget


def load_npy(path: str | None, what: str) -> np.ndarray | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {path} not found")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{what} file {path} is not a .npy array: {exc}") from None
