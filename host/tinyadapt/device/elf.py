"""Just enough of ELF32 (little-endian, ARM) to size an image and find a symbol.

`read_elf(path)` gives the section headers and the symbol table, which is all `tinyadapt
build` needs to report flash and RAM use (the same numbers as arm-none-eabi-size's SysV
view) and all the QEMU backend needs to find the RAM slot's address.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from tinyadapt.errors import BuildError

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


@dataclass
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)


@dataclass
class Segment:
    type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


@dataclass
class Elf:
    path: Path
    machine: int
    entry: int
    sections: list[Section] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    symbols: dict[str, int] = field(default_factory=dict)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def symbol(self, name: str) -> int | None:
        return self.symbols.get(name)


def read_elf(path: str | Path) -> Elf:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BuildError(f"cannot read firmware image {path}: {exc.strerror}") from None
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise BuildError(f"{path} is not an ELF file")
    if data[4] != 1 or data[5] != 1:
        raise BuildError(f"{path} is not a 32-bit little-endian ELF (not a Cortex-M image)")
    (_type, machine, _ver, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum,
     shstrndx) = struct.unpack_from("<HHIIIIIHHHHHH", data, 16)
    elf = Elf(path, machine, entry)
    try:
        raw = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
        names = raw[shstrndx] if shnum else None
        for h in raw:
            name = _cstr(data, names[4] + h[0]) if names else ""
            elf.sections.append(Section(name, h[1], h[2], h[3], h[4], h[5]))
        for i in range(phnum):
            p = struct.unpack_from("<IIIIIIII", data, phoff + i * phentsize)
            elf.segments.append(Segment(p[0], p[1], p[2], p[3], p[4], p[5]))
        for h in raw:
            if h[1] != SHT_SYMTAB:
                continue
            strtab = raw[h[6]]
            for off in range(h[4], h[4] + h[5], 16):
                st_name, st_value, _size, _info, _other, _shndx = struct.unpack_from("<IIIBBH", data, off)
                if st_name:
                    elf.symbols[_cstr(data, strtab[4] + st_name)] = st_value
    except struct.error:
        raise BuildError(f"{path} is a truncated ELF file") from None
    return elf


def _cstr(data: bytes, off: int) -> str:
    end = data.index(b"\0", off)
    return data[off:end].decode(errors="replace")


@dataclass
class ImageSize:
    text: int      # code and constants (flash)
    data: int      # initialised data (flash for its initial values, and RAM)
    bss: int       # zeroed and NOLOAD RAM sections (RAM slot, .bss, arena, ...)

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


def image_size(elf: Elf) -> ImageSize:
    """Berkeley-style sizes (as arm-none-eabi-size prints them) from the allocated sections."""
    text = data = bss = 0
    for s in elf.sections:
        if not s.alloc or s.size == 0:
            continue
        if s.type == SHT_NOBITS:
            bss += s.size
        elif s.flags & SHF_WRITE:
            data += s.size
        else:
            text += s.size
    return ImageSize(text, data, bss)


PT_NULL = 0
PT_LOAD = 1


def drop_empty_segments(data: bytes, regions: list[tuple[int, int]]) -> bytes:
    """A copy of an ELF image whose LOAD segments without file bytes (NOLOAD RAM such as the
    model slot) no longer cover any of `regions` ((address, size) pairs).

    QEMU's ELF loader zero-fills such a segment as a ROM region, which then "overlaps" a blob
    placed at the same address with -device loader, and QEMU refuses to start. The firmware
    never relies on the loader for these (it zeroes .bss itself), so turning the segment into
    PT_NULL changes nothing but that.
    """
    out = bytearray(data)
    (phoff,) = struct.unpack_from("<I", data, 28)
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, _o, vaddr, paddr, filesz, memsz = struct.unpack_from("<IIIIII", data, off)
        if p_type != PT_LOAD or filesz != 0 or memsz == 0:
            continue
        for addr, size in regions:
            if any(base < addr + size and addr < base + memsz for base in (vaddr, paddr)):
                struct.pack_into("<I", out, off, PT_NULL)
                break
    return bytes(out)
