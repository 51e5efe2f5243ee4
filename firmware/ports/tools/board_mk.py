#!/usr/bin/env python3
"""Print a board description (boards/<name>.toml) as make variables: BOARD_<KEY> := value.

The build reads boards/*.toml through this script so that the TOML is the one place a
board's memory map, core and UART are written down (schema: boards/README.md).
Usage: board_mk.py boards/qemu-an386.toml > build/.../board.mk
"""

from __future__ import annotations

import re
import sys

REQUIRED = ("name", "port", "core", "fpu", "clock_hz", "flash_origin", "flash_size", "ram_origin",
            "ram_size", "ram_slot_size", "stack_size")


def parse_toml(text: str) -> dict:
    """tomllib when available (Python >= 3.11); else the flat key = value subset the board files use."""
    try:
        import tomllib
        return tomllib.loads(text)
    except ImportError:
        pass
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([A-Za-z0-9_]+)\s*=\s*("(?:[^"\\]|\\.)*"|[-+0-9A-Fa-fxob_]+)\s*(#.*)?$', line)
        if not m:
            raise ValueError(f"line {n}: not a flat 'key = value' line: {line}")
        key, value = m.group(1), m.group(2)
        out[key] = value[1:-1] if value.startswith('"') else int(value.replace("_", ""), 0)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: board_mk.py BOARD.toml", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            board = parse_toml(f.read())
    except (OSError, ValueError) as e:
        print(f"board_mk.py: {argv[1]}: {e}", file=sys.stderr)
        return 1
    missing = [k for k in REQUIRED if k not in board]
    if missing:
        print(f"board_mk.py: {argv[1]}: missing keys: {', '.join(missing)}", file=sys.stderr)
        return 1
    board.setdefault("frame_origin", 0)  # optional: external frame memory (0 = none)
    board.setdefault("frame_size", 0)
    for key in ("nvm_origin", "nvm_size", "nvm_page_size", "nvm_prog_unit"):  # optional: NVM (0 = none)
        board.setdefault(key, 0)
    for key, value in board.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            value = f"0x{value:08X}" if key.endswith(("_origin", "_size", "_base")) else str(value)
        if isinstance(value, str) and re.fullmatch(r"[^\n$#\\]*", value):
            print(f"BOARD_{key.upper()} := {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
