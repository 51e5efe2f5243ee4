"""COBS (Consistent Overhead Byte Stuffing): frames without 0x00, so 0x00 can delimit them.

The same algorithm as firmware/app/ta_cobs.c: each block starts with a code byte c
(1..255) followed by c-1 non-zero bytes; a code below 255 stands for an implied zero after
its block, except at the very end of the frame.
"""

from __future__ import annotations

from tinyadapt.errors import ProtocolError


class CobsError(ProtocolError):
    """An encoded block is malformed (a zero byte, or a block that runs past the end)."""


def max_encoded_size(n: int) -> int:
    """Worst-case encoded size of n bytes, without the delimiter (TA_COBS_MAX_ENCODED)."""
    return n + n // 254 + 1


def encode(data: bytes) -> bytes:
    """Encode `data`; the result holds no 0x00 (the caller appends the delimiter).

    Byte for byte what ta_cobs_encode writes: a full 254-byte block at the very end is not
    followed by an empty block.
    """
    data = bytes(data)
    out = bytearray(b"\0")
    code_at, code = 0, 1
    n = len(data)
    for i, b in enumerate(data):
        if b == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            continue
        out.append(b)
        code += 1
        if code == 0xFF:
            out[code_at] = code
            code = 1
            if i + 1 < n:
                code_at = len(out)
                out.append(0)
            else:
                return bytes(out)
    out[code_at] = code
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Decode one frame (without its delimiter); raises CobsError when malformed."""
    out = bytearray()
    i, n = 0, len(data)
    if n == 0:
        raise CobsError("empty COBS frame")
    while i < n:
        code = data[i]
        if code == 0:
            raise CobsError(f"zero byte inside a COBS frame at offset {i}")
        end = i + code
        if end > n:
            raise CobsError(f"COBS block at offset {i} runs past the end of the frame")
        block = data[i + 1:end]
        if 0 in block:
            raise CobsError(f"zero byte inside a COBS frame at offset {i + 1 + block.index(0)}")
        out += block
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)
