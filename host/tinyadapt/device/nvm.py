"""The device's NVM on the host: the file behind an emulated board's NVM region, and an
independent reader of the parameter store's format (firmware/include/tinyadapt/ta_param_store.h).

    path = nvm_file("qemu-an386")                 # .tinyadapt/nvm/qemu-an386.bin, created 0xFF-filled
    slots = read_store(path.read_bytes(), offset=0, size=len // 2, page_size=4096)
    newest(slots)                                 # the record a booting device applies, or None

Each slot is classified the way a power cut can leave it: "valid" (header and data pass the
CRC), "erased" (all 0xFF), or "torn" (anything else: a save cut in the middle).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from tinyadapt.errors import DeviceError

MAGIC = 0x31504154
VERSION = 1
HEADER = struct.Struct("<IHHIIIII")      # magic, version, tag, revision, model_crc, len, 0, 0 (+ u32 crc)
HEADER_SIZE = 32
TAG_TRAIN = 1
TAG_TTA = 2          # TTA heads only (the first image format): no longer written, refused
TAG_TTA_STATS = 3    # TTA: the input's and every head's running statistics
DEFAULT_DIR = Path(".tinyadapt") / "nvm"


@dataclass
class Slot:
    index: int
    state: str                # "valid", "erased" or "torn"
    tag: int = 0
    revision: int = 0
    model_crc: int = 0
    data: bytes = b""

    @property
    def length(self) -> int:
        return len(self.data)


def nvm_file(board: str, path: str | os.PathLike | None = None, size: int = 0) -> Path:
    """The NVM image for `board` (default .tinyadapt/nvm/<board>.bin under the current
    directory, or TINYADAPT_NVM_DIR): created erased (0xFF) when missing; a file of another
    size is refused, so an image of another board is never used."""
    p = Path(path) if path else Path(os.environ.get("TINYADAPT_NVM_DIR", DEFAULT_DIR)) / f"{board}.bin"
    p = p.resolve()
    if len(str(p)) > 400:
        raise DeviceError(f"NVM file path {p} is longer than the 400 characters the firmware reads: "
                          "choose a shorter --nvm path")
    if " " in str(p) or "," in str(p):
        raise DeviceError(f"NVM file path {p} contains a space or comma, which QEMU's semihosting "
                          "arguments cannot carry: choose another --nvm path")
    if p.exists():
        if size and p.stat().st_size != size:
            raise DeviceError(f"NVM file {p} is {p.stat().st_size:,} bytes, the board's NVM region is {size:,}: "
                              "it belongs to another board (delete it or choose another --nvm path)")
        return p
    if not size:
        raise DeviceError(f"{board} has no NVM region (boards/{board}.toml nvm_size)")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_bytes(b"\xff" * size)
    tmp.replace(p)
    return p


def read_slot(image: bytes, base: int, slot_size: int, index: int) -> Slot:
    raw = image[base:base + slot_size]
    if raw == b"\xff" * len(raw):
        return Slot(index, "erased")
    magic, version, tag, revision, model_crc, length, _r0, _r1 = HEADER.unpack_from(raw)
    (crc,) = struct.unpack_from("<I", raw, 28)
    if magic != MAGIC or version != VERSION or length > slot_size - HEADER_SIZE:
        return Slot(index, "torn")
    data = raw[HEADER_SIZE:HEADER_SIZE + length]
    if zlib.crc32(data, zlib.crc32(raw[:28])) & 0xFFFFFFFF != crc:
        return Slot(index, "torn")
    return Slot(index, "valid", tag, revision, model_crc, bytes(data))


def read_store(image: bytes, offset: int, size: int, page_size: int) -> list[Slot]:
    """Both slots of the store at [offset, offset + size) of an NVM image."""
    slot_size = (size // 2) & ~(page_size - 1)
    return [read_slot(image, offset + k * slot_size, slot_size, k) for k in (0, 1)]


def newest(slots: list[Slot]) -> Slot | None:
    """The valid slot with the highest revision (serial order, as the device picks it)."""
    valid = [s for s in slots if s.state == "valid"]
    if not valid:
        return None
    if len(valid) == 1:
        return valid[0]
    a, b = valid
    d = (b.revision - a.revision) & 0xFFFFFFFF
    return b if 0 < d < 0x80000000 else a


__all__ = ["Slot", "nvm_file", "read_slot", "read_store", "newest", "TAG_TRAIN", "TAG_TTA", "TAG_TTA_STATS"]
