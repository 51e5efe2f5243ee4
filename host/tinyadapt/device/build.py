"""Building firmware images with firmware/ports/Makefile and sizing them against a board.

    result = build_image(load_board("qemu-an386"))                        # generic image
    result = build_image(board, blob=model.blob, name="digits")           # model compiled in (slot 0)
    result = build_image(load_board("stm32f746g-disco"), emulate=True)    # QEMU image, F746 budget

Before make runs, a model that cannot fit (blob larger than flash, arena larger than the
RAM left) fails with one BuildError line; the linker script then enforces the exact
budget, and its message becomes the BuildError. Images are cached under build/device/ and
make rebuilds only what changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyadapt.device.boards import REPO_ROOT, Board, emulation_host
from tinyadapt.device.elf import ImageSize, image_size, read_elf
from tinyadapt.errors import BuildError

log = logging.getLogger(__name__)

PORTS_MAKEFILE_DIR = Path(os.environ.get("TINYADAPT_FIRMWARE", REPO_ROOT / "firmware")) / "ports"
DEVICE_BUILD_DIR = Path(os.environ.get("TINYADAPT_BUILD", REPO_ROOT / "build")) / "device"
APP_OVERHEAD_GUESS = 24 * 1024     # code of app + engine + kernels, for the early flash check only


@dataclass
class BuildResult:
    board: Board              # whose budget the image was linked with
    built_for: Board          # the board whose port and core were compiled (a QEMU board when emulating)
    elf: Path
    size: ImageSize
    sections: dict[str, int]
    symbols: dict[str, int]
    model_blob_bytes: int = 0
    model_arena_bytes: int = 0

    @property
    def ram_slot(self) -> tuple[int, int]:
        start = self.symbols.get("__ram_slot_start", 0)
        return start, self.symbols.get("__ram_slot_end", start) - start

    @property
    def arena_bytes(self) -> int:
        return self.sections.get(".arena", 0)

    @property
    def flash_used(self) -> int:
        return self.size.flash

    @property
    def ram_static(self) -> int:
        """.data + .bss: the RAM the app itself takes, arena, slot and stack aside."""
        return self.sections.get(".data", 0) + self.sections.get(".bss", 0)

    @property
    def ram_used(self) -> int:
        """RAM the running image needs: static data, the RAM slot, the stack and the model's arena."""
        return self.ram_static + self.ram_slot[1] + self.board.stack_size + self.model_arena_bytes

    def report(self) -> dict:
        flash_budget, ram_budget = self.board.flash_size, self.board.ram_size
        return {
            "board": self.board.name,
            "built_for": self.built_for.name,
            "core": self.built_for.core,
            "elf": str(self.elf),
            "flash": {"used_bytes": self.flash_used, "budget_bytes": flash_budget,
                      "percent": round(100.0 * self.flash_used / flash_budget, 2),
                      "text_bytes": self.size.text, "data_bytes": self.size.data},
            "ram": {"used_bytes": self.ram_used, "budget_bytes": ram_budget,
                    "percent": round(100.0 * self.ram_used / ram_budget, 2),
                    "static_bytes": self.ram_static, "ram_slot_bytes": self.ram_slot[1],
                    "stack_bytes": self.board.stack_size, "model_arena_bytes": self.model_arena_bytes,
                    "arena_available_bytes": self.arena_bytes},
            "compiled_in_model": {"blob_bytes": self.model_blob_bytes, "arena_bytes": self.model_arena_bytes}
            if self.model_blob_bytes else None,
        }


def _blob_arena(blob: bytes) -> int:
    from tinyadapt.convert.blob import read_blob

    return read_blob(blob).arena_size


def check_fits(board: Board, blob: bytes, compiled_in: bool = True) -> None:
    """Quick budget check before building anything: one line naming what overflows."""
    arena = _blob_arena(blob)
    if compiled_in and len(blob) + APP_OVERHEAD_GUESS > board.flash_size:
        raise BuildError(f"the model does not fit {board.name}: its blob is {len(blob):,} bytes and the app needs "
                         f"about {APP_OVERHEAD_GUESS // 1024} KiB, flash is {board.flash_size:,} bytes")
    if not compiled_in and len(blob) > board.ram_slot_size:
        raise BuildError(f"the model does not fit {board.name}'s RAM slot: blob of {len(blob):,} bytes, "
                         f"slot of {board.ram_slot_size:,} bytes")
    room = board.ram_size - board.ram_slot_size - board.stack_size
    if arena > room:
        raise BuildError(f"the model does not fit {board.name}: it needs a {arena:,}-byte arena, the RAM leaves at "
                         f"most {room:,} bytes after the {board.ram_slot_size:,}-byte slot and "
                         f"{board.stack_size:,}-byte stack")


def image_dir(board: Board, emulate: bool, model_key: str | None, kernels: str) -> Path:
    d = DEVICE_BUILD_DIR
    if emulate and not board.emulated:
        d = d / f"as-{board.name}"
    if kernels != "ref":
        d = d / f"kernels-{kernels}"
    if model_key:
        d = d / f"model-{model_key}"
    return d


def build_image(board: Board, *, blob: bytes | None = None, name: str = "model", emulate: bool = False,
                kernels: str = "dsp", extra_make_args: list[str] | None = None, activity=None) -> BuildResult:
    """Build (or reuse) the image for `board`; with `blob`, the model is compiled in (slot 0).

    `emulate`: build for the QEMU board with the same core, linked with `board`'s budget.
    `activity`: a tinyadapt.report.activity.Activity told what is being built.
    """
    from tinyadapt.convert.cheader import blob_to_c_header, c_identifier

    target = emulation_host(board) if emulate else board
    if not emulate and not board.emulated and board.port and not (PORTS_MAKEFILE_DIR / board.port).is_dir():
        raise BuildError(f"there is no firmware port '{board.port}' for {board.name} yet")
    model_key = hashlib.sha256(blob).hexdigest()[:12] if blob else None
    if blob:
        check_fits(board, blob)
    build_root = image_dir(board, emulate, model_key, kernels)
    build_root.mkdir(parents=True, exist_ok=True)
    args = ["make", "-s", "-C", str(PORTS_MAKEFILE_DIR), f"BOARD={target.name}", f"BUILD={build_root}",
            f"KERNELS={kernels}"]
    if target is not board:      # a real board's budget on the emulator
        args += [f"FLASH_SIZE=0x{board.flash_size:x}", f"RAM_SIZE=0x{board.ram_size:x}",
                 f"RAM_SLOT_SIZE=0x{board.ram_slot_size:x}", f"STACK_SIZE=0x{board.stack_size:x}"]
    if blob:
        header = build_root / "model.h"
        text = blob_to_c_header(blob, f"ta_model_{c_identifier(name)}", comment=f"{name}, {len(blob)} bytes")
        if not header.is_file() or header.read_text() != text:
            header.write_text(text)
        args.append(f"MODEL_HEADER={header}")
    args += list(extra_make_args or [])
    log.info("building %s: %s", board.name, " ".join(args))
    if activity is not None:
        activity.step(f"building the {target.name} firmware" + (f" with {name} compiled in" if blob else "")
                      + (f" ({board.name} budget)" if target is not board else ""))
    with open(build_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(_build_failure(board, proc.stdout + "\n" + proc.stderr))
    elf_path = build_root / target.name / "tinyadapt.elf"
    elf = read_elf(elf_path)
    sections = {s.name: s.size for s in elf.sections if s.alloc}
    result = BuildResult(board, target, elf_path, image_size(elf), sections, elf.symbols)
    if blob:
        result.model_blob_bytes = len(blob)
        result.model_arena_bytes = _blob_arena(blob)
    if result.flash_used > board.flash_size:
        raise BuildError(f"the image does not fit {board.name}: {result.flash_used:,} bytes of flash used, "
                         f"{board.flash_size:,} available")
    return result


def _build_failure(board: Board, output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    overflow = next((ln for ln in lines if re.search(r"region `?\w+'? overflowed by \d+ bytes", ln)), None)
    if overflow:
        m = re.search(r"region `?(\w+)'? overflowed by (\d+) bytes", overflow)
        return (f"the image does not fit {board.name}: {m.group(1)} overflowed by {int(m.group(2)):,} bytes "
                f"(flash {board.flash_size:,} B, RAM {board.ram_size:,} B)")
    asserted = next((ln for ln in lines if "tinyadapt:" in ln), None)
    if asserted:
        return f"the image does not fit {board.name}: {asserted.split('tinyadapt:', 1)[1].strip()}"
    causes = [ln for ln in lines if re.search(r"error:|undefined reference|multiple definition|No rule to make", ln)]
    others = [ln for ln in lines if not ln.startswith("make")]
    detail = (causes[:1] or others[-1:] or lines[-1:] or ["make failed"])[0]
    return f"building the {board.name} image failed: {detail}"
