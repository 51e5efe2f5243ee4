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
                   help="force patch-based execution of the first N ops on a PxP grid")
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
        try:
            n, p = (int(v) for v in args.patch.split(","))
        except ValueError:
            raise PlanError(f"--patch takes N,P (e.g. 13,4), got '{args.patch}'") from None
        kwargs["patch"] = (n, p)
    elif getattr(args, "budget", None) is not None:
        kwargs["budget"] = args.budget
    elif getattr(args, "budget_board", None) or board:
        name = getattr(args, "budget_board", None) or board
        kwargs["budget"] = board_budget(name, args.reserve)
        kwargs["budget_name"] = name
    return kwargs
