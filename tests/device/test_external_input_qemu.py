"""An input kept outside the arena on an emulated board: the app binds it to the board's frame
memory (the MPS2's PSRAM, standing in for a camera's frame buffer), INPUT_WRITE lands there,
and the patch stage reads it tile by tile. Outputs equal the host target; the arena's measured
high-water mark equals the plan, which leaves the frame out."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.paths import REPO
from tests.support.tools import need_tool

MBV2 = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"


@pytest.mark.parametrize("board", ["qemu-an386", "qemu-an500"])
def test_external_input_on_qemu_equals_host_and_the_plan(board):
    need_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from tinyadapt.convert import convert
    from tinyadapt.engine.host import HostEngine
    from tinyadapt.session.device import DeviceOptions, open_device

    resident = convert(MBV2, patch=(5, 6))
    model = convert(MBV2, patch=(5, 6), external_input=True)
    assert model.peak_sram_bytes < resident.peak_sram_bytes
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:2]
    host = HostEngine(model.blob)
    with open_device(model.blob, DeviceOptions(board=board, timeout=120.0)) as dev:
        for xi in x:
            outs, result = dev.run_sample([xi[None]], profile=True)
            assert np.array_equal(outs[0], host.invoke([xi[None]])[0])
            # Stage ops run once per tile; their profile entries sum the tiles, so the ops
            # account for the invoke (less the window copies between them).
            profiled = sum(e.instructions for e in result.profile)
            assert 0.9 * result.instructions < profiled <= result.instructions
        assert dev.metrics().arena_used == model.peak_sram_bytes
