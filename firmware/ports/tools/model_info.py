#!/usr/bin/env python3
"""Read a model C header written by `tinyadapt convert` and print make variables.

    MODEL_SYMBOL := <array name>
    MODEL_BLOB_SIZE := <bytes>
    MODEL_ARENA_SIZE := <arena bytes from the blob header>

The build uses MODEL_ARENA_SIZE for a link-time check that the board's RAM leaves the
compiled-in model enough arena. Usage: model_info.py model.h
"""

from __future__ import annotations

import re
import struct
import sys

ARRAY = re.compile(r"static\s+const\s+uint8_t\s+([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*(\d*)\s*\][^=]*=\s*\{([^}]*)\}", re.S)
MAGIC = 0x424D4154  # "TAMB"
ARENA_OFFSET = 28   # ta_model_header_t.arena_size


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: model_info.py MODEL_HEADER.h", file=sys.stderr)
        return 2
    try:
        text = open(argv[1], encoding="utf-8").read()
    except OSError as e:
        print(f"model_info.py: {e}", file=sys.stderr)
        return 1
    m = ARRAY.search(text)
    if not m:
        print(f"model_info.py: {argv[1]}: no 'static const uint8_t name[] = {{...}}' array", file=sys.stderr)
        return 1
    symbol, body = m.group(1), m.group(3)
    head = []
    for tok in re.finditer(r"0[xX][0-9A-Fa-f]+|\d+", body):
        head.append(int(tok.group(0), 0))
        if len(head) == 32:
            break
    size = int(m.group(2)) if m.group(2) else body.count(",") + 1
    if len(head) < 32 or struct.unpack_from("<I", bytes(head))[0] != MAGIC:
        print(f"model_info.py: {argv[1]}: '{symbol}' is not a tinyadapt model blob (bad magic)", file=sys.stderr)
        return 1
    arena = struct.unpack_from("<I", bytes(head), ARENA_OFFSET)[0]
    print(f"MODEL_SYMBOL := {symbol}")
    print(f"MODEL_BLOB_SIZE := {size}")
    print(f"MODEL_ARENA_SIZE := {arena}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
