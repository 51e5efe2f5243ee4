"""Options shared by commands that plan memory (convert, run, build): a budget from bytes
or a board, or an explicit patch split."""

from __future__ import annotations

from tinyadapt.errors import PlanError

DEFAULT_RESERVE = 16 * 1024


def add_plan_arguments(p, with_board: bool = True) -> None:
    g = p.add_argument_group("memory plan (default: layer by layer)")
    g.add_argument("--budget", type=int, metavar="BYTES",
                   help="peak SRAM allowed; patch-based execution is chosen when layer by layer needs more")
    if with_board:
        g.add_argument("--budget-board", metavar="BOARD", dest="budget_board",
                       help="take the budget from boards/BOARD.toml (its RAM less slot, stack and --reserve)")
    g.add_argument("--reserve", type=int, default=DEFAULT_RESERVE, metavar="BYTES",
                   help=f"RAM kept for the firmware's static data with a board budget (default {DEFAULT_RESERVE})")
    g.add_argument("--patch", metavar="N,P",
                   help="force patch-based execution of the first N ops on a PxP grid, or N,B,stream[,S]: "
                        "B row bands (in S vertical strips) that keep halo rows instead of recomputing them")
    g.add_argument("--external-input", action="store_true", dest="external_input",
                   help="with a patch plan, keep the model input outside the arena, in the board's "
                        "frame memory (a camera frame buffer), read tile by tile")


def board_budget(board_name: str, reserve: int = DEFAULT_RESERVE) -> int:
    from tinyadapt.device.boards import load_board

    b = load_board(board_name)
    return b.ram_size - b.ram_slot_size - b.stack_size - reserve


def plan_kwargs(args, board: str | None = None) -> dict:
    """convert() keyword arguments from parsed options (`board`: a command's own --board)."""
    kwargs = {"external_input": True} if getattr(args, "external_input", False) else {}
    if getattr(args, "patch", None):
        kwargs["patch"] = parse_patch(args.patch)
    elif getattr(args, "budget", None) is not None:
        kwargs["budget"] = args.budget
    elif getattr(args, "budget_board", None) or board:
        name = getattr(args, "budget_board", None) or board
        kwargs["budget"] = board_budget(name, args.reserve)
        kwargs["budget_name"] = name
        kwargs["core"] = board_core(name)
    return kwargs


def board_core(board_name: str) -> str:
    from tinyadapt.device.boards import load_board

    return load_board(board_name).core


def parse_patch(text: str) -> tuple:
    """N,P (tiles) or N,B,stream[,S] (streamed row bands in S strips) -> convert(patch=...)."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
        if len(parts) in (3, 4) and parts[2] == "stream":
            return int(parts[0]), int(parts[1]), "stream", int(parts[3]) if len(parts) == 4 else 1
    except ValueError:
        pass
    raise PlanError(f"--patch takes N,P or N,B,stream[,S] (e.g. 13,4 or 6,24,stream,3), got '{text}'")
