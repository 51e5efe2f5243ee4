"""Cortex-M images for every board in boards/: they build, sit inside the board's real
flash and RAM, and an image that does not fit is refused at link time with a clear message."""

from __future__ import annotations

import struct
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.device.conftest import REPO, make

BOARDS = sorted(p.stem for p in (REPO / "boards").glob("*.toml"))
REQUIRED_KEYS = {"name", "description", "port", "core", "fpu", "clock_hz", "counter", "flash_origin", "flash_size",
                 "ram_origin", "ram_size", "ram_slot_size", "stack_size", "uart", "uart_base", "uart_tx_pin",
                 "uart_rx_pin", "baud", "qemu_machine", "platformio_env", "pyocd_target", "renode_platform"}


def board(name: str) -> dict:
    return tomllib.loads((REPO / "boards" / f"{name}.toml").read_text())


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (l.split() for l in out.splitlines()) if len(parts) == 3}


def fake_model_header(path: Path, symbol: str, blob_size: int, arena_size: int) -> Path:
    """A header shaped like `tinyadapt convert` output: a blob header (magic, arena) and padding."""
    blob = bytearray(blob_size)
    struct.pack_into("<IHHI", blob, 0, 0x424D4154, 1, 64, blob_size)
    struct.pack_into("<I", blob, 28, arena_size)
    rows = ",\n".join(", ".join(f"0x{b:02x}" for b in blob[i:i + 16]) for i in range(0, blob_size, 16))
    path.write_text(f"#include <stdint.h>\nstatic const uint8_t {symbol}[{blob_size}] __attribute__((aligned(16))) = "
                    f"{{\n{rows}\n}};\nstatic const uint32_t {symbol}_len = {blob_size}u;\n")
    return path


def test_the_five_boards_are_described():
    assert BOARDS == ["nrf52840-dk", "nucleo-h743zi", "qemu-an386", "qemu-an500", "stm32f746g-disco"]
    for name in BOARDS:
        b = board(name)
        assert REQUIRED_KEYS <= set(b), f"{name}: missing {REQUIRED_KEYS - set(b)}"
        assert b["name"] == name
        assert (REPO / "firmware" / "ports" / b["port"]).is_dir()
        assert b["ram_slot_size"] + b["stack_size"] < b["ram_size"]
    assert board("nrf52840-dk")["pyocd_target"] == "nrf52840"
    assert board("stm32f746g-disco")["pyocd_target"] == "stm32f746xx"
    assert board("nucleo-h743zi")["pyocd_target"] == "stm32h743xx"


@pytest.mark.parametrize("name", BOARDS)
def test_every_board_builds_inside_its_memory(device_build, tiny_model, name):
    b = board(name)
    make(f"BOARD={name}", f"MODEL_HEADER={tiny_model[2]}", build=device_build)
    out = device_build / name
    elf, binary = out / "tinyadapt.elf", out / "tinyadapt.bin"
    assert elf.is_file() and binary.is_file() and (out / "tinyadapt.map").is_file()
    sym = symbols(elf)
    ram_end = b["ram_origin"] + b["ram_size"]
    # Vector table first in flash: initial SP at the top of RAM, reset handler in flash (Thumb).
    sp, reset = struct.unpack_from("<II", binary.read_bytes())
    assert sp == sym["__stack_hi"] == ram_end
    assert b["flash_origin"] < reset < b["flash_origin"] + b["flash_size"] and reset & 1
    assert sym["ta_vectors"] == b["flash_origin"]
    assert binary.stat().st_size <= b["flash_size"]
    # RAM: slot 1 at the RAM origin, then data/bss, the arena, the stack at the top.
    assert sym["__ram_slot_start"] == b["ram_origin"]
    assert sym["__ram_slot_end"] - sym["__ram_slot_start"] == b["ram_slot_size"]
    assert sym["__ram_slot_end"] <= sym["__arena_start"] < sym["__arena_end"] <= sym["__stack_lo"]
    assert sym["__stack_hi"] - sym["__stack_lo"] == b["stack_size"]
    assert sym["__arena_start"] % 16 == 0
    # The compiled-in model is in flash.
    assert b["flash_origin"] <= sym["tiny_fc_model"] < b["flash_origin"] + b["flash_size"]


def test_an_oversized_model_fails_to_link(device_build, tmp_path):
    # 1 MiB + 64 KiB of model for the nRF52840's 1 MiB of flash.
    header = fake_model_header(tmp_path / "huge.h", "huge_model", (1 << 20) + (64 << 10), 1024)
    proc = make("BOARD=nrf52840-dk", f"MODEL_HEADER={header}", build=device_build / "oversized", check=False)
    assert proc.returncode != 0
    assert "tinyadapt: flash overflow" in proc.stderr
    assert "region `FLASH' overflowed" in proc.stderr


def test_a_model_whose_arena_does_not_fit_fails_to_link(device_build, tmp_path):
    # A small blob that needs 300 KiB of arena: more than the nRF52840's 256 KiB of RAM.
    header = fake_model_header(tmp_path / "hog.h", "arena_hog", 256, 300 << 10)
    proc = make("BOARD=nrf52840-dk", f"MODEL_HEADER={header}", build=device_build / "arena-hog", check=False)
    assert proc.returncode != 0
    assert "tinyadapt: the compiled-in model needs a larger arena" in proc.stderr


def test_ram_overrides_that_leave_no_arena_fail_to_link(device_build):
    proc = make("BOARD=stm32f746g-disco", "RAM_SLOT_SIZE=300K", "STACK_SIZE=32K", build=device_build / "no-arena",
                check=False)
    assert proc.returncode != 0
    assert "tinyadapt: RAM overflow" in proc.stderr


def test_unknown_board_and_kernel_backend_are_named(device_build):
    proc = make("BOARD=nosuchboard", build=device_build, check=False)
    assert proc.returncode != 0 and "no boards/nosuchboard.toml" in proc.stderr
    proc = make("BOARD=qemu-an386", "KERNELS=nosuch", build=device_build, check=False)
    assert proc.returncode != 0 and "firmware/kernels/nosuch" in proc.stderr
