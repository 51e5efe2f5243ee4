"""A QEMU board linked with a real board's flash and RAM sizes runs within that budget."""

from __future__ import annotations

import struct

from tests.device.conftest import make, start_qemu
from tests.device.test_build import board, symbols
from tests.device.test_protocol import host_outputs


def test_qemu_with_the_nrf52840_budget(device_build, tiny_model):
    nrf = board("nrf52840-dk")
    build = device_build / "nrf-budget"
    make("BOARD=qemu-an386", f"MODEL_HEADER={tiny_model[2]}", f"FLASH_SIZE={nrf['flash_size']}",
         f"RAM_SIZE={nrf['ram_size']}", f"RAM_SLOT_SIZE={nrf['ram_slot_size']}", f"STACK_SIZE={nrf['stack_size']}",
         build=build)
    elf = build / "qemu-an386" / "tinyadapt.elf"
    sym = symbols(elf)
    assert sym["__stack_hi"] == nrf["ram_origin"] + nrf["ram_size"]
    dev = start_qemu(elf, "qemu-an386")
    try:
        info = dev.client.hello()
        assert info["ram_slot_size"] == nrf["ram_slot_size"]
        assert info["arena_size"] == sym["__arena_end"] - sym["__arena_start"] < nrf["ram_size"]
        assert dev.client.infer(struct.pack("<b", 5))[1] == host_outputs(tiny_model[0], [5])[0]
        m = dev.client.metrics()
        assert m["stack_size"] == nrf["stack_size"] and 0 < m["stack_used"] < m["stack_size"]
    finally:
        dev.stop()
