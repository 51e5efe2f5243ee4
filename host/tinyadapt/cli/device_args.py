"""Arguments shared by the commands that talk to a device (run, stream, metrics, flash, build)."""

from __future__ import annotations

from tinyadapt.errors import InputError


def add_board_argument(p, required: bool = False) -> None:
    from tinyadapt.device.boards import DEFAULT_QEMU_BOARD, board_names

    names = board_names()
    p.add_argument("--board", "-b", required=required, metavar="BOARD",
                   help=f"board from boards/*.toml ({', '.join(names) if names else 'none found'})"
                        + ("" if required else f"; default {DEFAULT_QEMU_BOARD} for --target qemu"))


def add_device_arguments(p, *, target: bool = True, faults: bool = False) -> None:
    """--target qemu|device, --board, --port, --baud, link tuning and (optionally) fault injection."""
    if target:
        p.add_argument("--target", default=None, choices=["qemu", "device"],
                       help="qemu: build and start the firmware on an emulated board (default); "
                            "device: a flashed board on --port")
    add_board_argument(p)
    p.add_argument("--port", "-p", metavar="PORT",
                   help="serial port of a flashed board (/dev/ttyACM0, a pty, or a pyserial URL); implies --target device")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for --port (default 115200)")
    p.add_argument("--timeout", type=float, default=0.5, metavar="S",
                   help="seconds to wait for an answer before retransmitting (default 0.5)")
    p.add_argument("--retries", type=int, default=3, metavar="N",
                   help="silent retransmissions before the device is declared dead (default 3)")
    p.add_argument("--kernels", default="dsp", metavar="DIR",
                   help="kernel backend of the QEMU image: dsp (Cortex-M DSP extension, default) or ref")
    if faults:
        p.add_argument("--inject-faults", type=float, default=0.0, metavar="RATE",
                       help="QEMU only: put a fault-injecting proxy on the link that drops, corrupts or "
                            "duplicates each byte with probability RATE (e.g. 0.01) and duplicates frames")
        p.add_argument("--fault-seed", type=int, default=0, metavar="N", help="seed of the fault injector (default 0)")


def device_target(args, default: str = "qemu") -> str:
    target = getattr(args, "target", None)
    if args.port:
        if target not in (None, "device"):
            raise InputError(f"--port is for a flashed board (--target device), not --target {target}")
        return "device"
    if target == "device":
        raise InputError("--target device needs --port (the serial port of the flashed board)")
    return target or default


def device_options(args, model_name: str = "model"):
    from tinyadapt.session.device import DeviceOptions

    faults = None
    rate = getattr(args, "inject_faults", 0.0) or 0.0
    if rate:
        if args.port:
            raise InputError("--inject-faults works with --target qemu only")
        from tinyadapt.device.faults import FaultConfig

        try:
            faults = FaultConfig(rate=rate, seed=args.fault_seed)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if args.timeout <= 0 or args.retries < 0:
        raise InputError("--timeout must be positive and --retries at least 0")
    return DeviceOptions(board=args.board, port=args.port, baudrate=args.baud, timeout=args.timeout,
                         retries=args.retries, faults=faults, kernels=args.kernels, model_name=model_name)
