"""tinyadapt flash: write a firmware image to a board (pyOCD), or start a QEMU board to talk to."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from tinyadapt.cli.device_args import add_board_argument
from tinyadapt.cli.plan_args import add_plan_arguments

log = logging.getLogger(__name__)

NAME = "flash"
HELP = "flash a firmware image to a board through a debug probe (or start a QEMU board)"
DESCRIPTION = """\
Write the firmware image for --board to the board through a debug probe with pyOCD
(pip install pyocd). Without --image, the image is built first (with --model compiled in);
a model that does not fit the board fails before anything is flashed.

For a QEMU board there is nothing to flash: the emulator is started with the image as a
managed device, its serial port is printed (a socket:// URL for --port), and it runs
until Ctrl-C (SIGINT), SIGTERM or SIGHUP (or --seconds), then it is stopped."""
EPILOG = """\
examples:
  tinyadapt flash --board stm32f746g-disco --model model.tflite
  tinyadapt flash --board nucleo-h743zi --image build/device/nucleo-h743zi/tinyadapt.elf --probe 0670FF51
  tinyadapt flash --board qemu-an386            (then: tinyadapt metrics --port socket://127.0.0.1:PORT)"""


def add_arguments(p) -> None:
    add_board_argument(p, required=True)
    p.add_argument("--image", metavar="ELF", help="firmware image to flash (default: build it)")
    p.add_argument("--model", "-m", metavar="MODEL", help="model to compile into the image when building it")
    p.add_argument("--probe", metavar="ID", help="debug probe unique ID (default: the only probe connected)")
    p.add_argument("--seconds", type=float, metavar="S", help="QEMU boards: stop the emulator after S seconds")
    add_plan_arguments(p)


def _image(args, board) -> Path:
    if args.image:
        return Path(args.image)
    from tinyadapt.cli.run_cmd import load_model_blob
    from tinyadapt.device.build import build_image

    from tinyadapt.report.activity import TerminalActivity

    with TerminalActivity(not args.quiet) as activity:
        blob = load_model_blob(args.model, args, activity)[0] if args.model else None
        return build_image(board, blob=blob, name=Path(args.model).stem if args.model else "model",
                           activity=activity).elf


def run(args) -> int:
    from tinyadapt.device.boards import load_board

    board = load_board(args.board)
    if board.emulated:
        return _run_qemu(args, board)
    from tinyadapt.device.backends.pyocd import NOT_INSTALLED, PyOcdBackend, pyocd_api_available, pyocd_cli
    from tinyadapt.errors import FlashError

    if not (pyocd_api_available() or pyocd_cli()):   # say so before spending a build
        raise FlashError(NOT_INSTALLED)
    if not board.pyocd_target:
        raise FlashError(f"boards/{board.name}.toml names no pyocd_target: add one to flash it with pyOCD")
    image = _image(args, board)
    with PyOcdBackend(board.pyocd_target, probe_id=args.probe) as probe:
        probe.flash(image)
    if not args.quiet:
        print(f"flashed {image} to {board.name}")
    return 0


def _run_qemu(args, board) -> int:
    from tinyadapt.device.backends.qemu import QemuBackend

    image = _image(args, board)
    backend = QemuBackend(board.qemu_machine, image)
    with backend:
        # QEMU holds the CPU until a client connects (wait=on); we were that client. Letting go
        # of the connection makes QEMU listen again, for `--port socket://...`.
        backend.open_port().close()
        url = f"socket://127.0.0.1:{backend.tcp_port}"
        if not args.quiet:
            # a shell without job control starts `cmd &` with SIGINT ignored, and so it stays
            stop = "Ctrl-C stops the emulator" if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else \
                f"SIGINT is ignored here (started in the background?): kill {os.getpid()} (SIGTERM) stops the emulator"
            print(f"QEMU {board.qemu_machine} (pid {backend.pid}) runs {image}; its serial port is {url}\n"
                  f"  try: tinyadapt metrics --port {url}\n"
                  f"  {stop}", flush=True)
        end = None if args.seconds is None else time.monotonic() + args.seconds
        while backend.alive() and (end is None or time.monotonic() < end):
            time.sleep(0.2)
        if not backend.alive():
            from tinyadapt.errors import DeviceError

            raise DeviceError(f"QEMU exited with status {backend.proc.returncode}")
    return 0
