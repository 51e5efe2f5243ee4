"""`tinyadapt` command line: one module per subcommand (cli/<name>_cmd.py)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
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


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every `with` block releases what it
    holds (a QEMU backend kills its emulator) before the command exits 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _termination_signals():
    """SIGTERM/SIGHUP raise Terminated while a command runs; the previous handlers come back
    after. Only this entry point touches signals: the library leaves them to its caller."""
    previous = {}

    def handler(signum, frame):
        raise Terminated(signum)

    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            old = signal.getsignal(sig)
            if old is signal.SIG_IGN:      # e.g. under nohup: the caller asked for it to be ignored
                continue
            previous[sig] = old
            signal.signal(sig, handler)
    except ValueError:                    # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tinyadapt",
        description="Run, fine-tune and adapt int8 neural networks on microcontrollers. "
                    "Converts .tflite models into a compact blob for the tinyadapt C engine, plans their "
                    "memory, runs them in-process or on an (emulated) board, fine-tunes them on the device "
                    "(plan-update, train) and adapts them to shifted data without labels (tta-prepare, adapt).",
        epilog="Run 'tinyadapt COMMAND --help' for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tinyadapt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
        with _termination_signals():
            return int(args.func(args) or 0)
    except TinyAdaptError as exc:
        if args.verbose >= 2:
            log.exception("traceback")
        print(f"tinyadapt {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tinyadapt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # the reader went away (`| head`): nothing left to tell anyone
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so the exit flush is quiet too
        return 128 + signal.SIGPIPE
    except Terminated as exc:
        print(f"tinyadapt {args.command}: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # a bug of ours: still one line, traceback on request
        if args.verbose >= 2:
            log.exception("traceback")
        print(f"tinyadapt {args.command}: internal error: {type(exc).__name__}: {one_line(exc)} "
              "(rerun with -vv for a traceback)", file=sys.stderr)
        return 2
