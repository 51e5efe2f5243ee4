"""`tinyadapt` command line: one module per subcommand (cli/<name>_cmd.py)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from tinyadapt import __version__
from tinyadapt.errors import TinyAdaptError

log = logging.getLogger("tinyadapt")

# Subcommand modules, in the order `--help` lists them. Each defines NAME, HELP, DESCRIPTION,
# EPILOG, add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = ["convert", "plan", "run", "plan_update", "train"]

_OPTIONAL_SUBCOMMANDS = ["build", "flash", "stream", "metrics", "report", "tta_prepare", "adapt"]


def _modules():
    mods = []
    for name in SUBCOMMANDS + _OPTIONAL_SUBCOMMANDS:
        try:
            mods.append(importlib.import_module(f"tinyadapt.cli.{name}_cmd"))
        except ModuleNotFoundError as exc:
            if exc.name != f"tinyadapt.cli.{name}_cmd":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyadapt",
        description="Run, fine-tune and adapt int8 neural networks on microcontrollers. "
                    "Converts .tflite models into a compact blob for the tinyadapt C engine, plans their "
                    "memory, and runs them in-process or on an (emulated) board.",
        epilog="Run 'tinyadapt COMMAND --help' for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tinyadapt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug, tracebacks)")
    common.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    for mod in _modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.DESCRIPTION, epilog=mod.EPILOG,
                           parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * args.verbose + 10 * args.quiet
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except TinyAdaptError as exc:
        if args.verbose >= 2:
            log.exception("traceback")
        print(f"tinyadapt {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tinyadapt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: still one line, traceback on request
        if args.verbose >= 2:
            log.exception("traceback")
        print(f"tinyadapt {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(rerun with -vv for a traceback)", file=sys.stderr)
        return 2
