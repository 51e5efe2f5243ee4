"""Board descriptions: boards/<name>.toml (schema in boards/README.md, written with the firmware).

A board is either emulated (it names a `qemu_machine`) or real. A real board's budget can
be emulated on the QEMU board with the same core: `emulation_host(board)` finds it, and the
image is then linked with the real board's flash, RAM, slot and stack sizes.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tinyadapt.errors import DeviceError

REPO_ROOT = Path(__file__).resolve().parents[3]
BOARDS_DIR = Path(os.environ.get("TINYADAPT_BOARDS", REPO_ROOT / "boards"))
DEFAULT_QEMU_BOARD = "qemu-an386"


@dataclass
class Board:
    name: str
    description: str
    core: str
    port: str
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    ram_slot_size: int
    stack_size: int
    counter: str = ""
    clock_hz: int = 0
    baud: int = 115200
    qemu_machine: str = ""
    pyocd_target: str = ""
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def emulated(self) -> bool:
        return bool(self.qemu_machine)

    def budget(self) -> dict:
        return {"flash_bytes": self.flash_size, "ram_bytes": self.ram_size, "ram_slot_bytes": self.ram_slot_size,
                "stack_bytes": self.stack_size}


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def load_board(name: str) -> Board:
    path = BOARDS_DIR / f"{name}.toml"
    if not path.is_file():
        names = board_names()
        raise DeviceError(f"unknown board '{name}' (boards: {', '.join(names) if names else f'none in {BOARDS_DIR}'})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeviceError(f"cannot read board file {path}: {exc}") from None
    try:
        return Board(name=raw.get("name", name), description=raw.get("description", ""), core=raw["core"],
                     port=raw["port"], flash_origin=raw["flash_origin"], flash_size=raw["flash_size"],
                     ram_origin=raw["ram_origin"], ram_size=raw["ram_size"], ram_slot_size=raw["ram_slot_size"],
                     stack_size=raw["stack_size"], counter=raw.get("counter", ""), clock_hz=raw.get("clock_hz", 0),
                     baud=raw.get("baud", 115200), qemu_machine=raw.get("qemu_machine", ""),
                     pyocd_target=raw.get("pyocd_target", ""), raw=raw)
    except KeyError as exc:
        raise DeviceError(f"board file {path} lacks the key {exc}") from None


def emulation_host(board: Board) -> Board:
    """The QEMU board that runs `board`'s images: itself, or the emulated board with its core."""
    if board.emulated:
        return board
    for name in board_names():
        other = load_board(name)
        if other.emulated and other.core == board.core:
            return other
    raise DeviceError(f"no QEMU board emulates a {board.core} (needed for --board {board.name} --target qemu)")
