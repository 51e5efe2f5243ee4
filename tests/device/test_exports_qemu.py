"""The Keras MobileNetV2-0.35 128x128 export (TFLiteConverter, explicit PADs) on an emulated
Cortex-M7 linked with the STM32F746G-DISCO's budgets, patch by patch at a fifth of TFLite Micro's
arena: bit-exact with the host target (which tests/test_exports.py checks against TFLM), and
the device's arena high-water mark is the plan's peak."""

from __future__ import annotations

import numpy as np

from tests.support.tools import need_tool
from tests.support.paths import REPO

MODEL = REPO / "models/exports/mnv2_035_128.tflite"
BOARD = "stm32f746g-disco"


def test_keras_mobilenetv2_patched_on_the_f746_budget_equals_host():
    need_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from tinyadapt.cli.plan_args import board_budget
    from tinyadapt.convert import convert
    from tinyadapt.engine.host import HostEngine
    from tinyadapt.reference import tflm_arena_head
    from tinyadapt.session.device import DeviceOptions, open_device

    budget = board_budget(BOARD)
    fifth = tflm_arena_head(MODEL.read_bytes()) // 5
    model = convert(MODEL, budget=min(budget, fifth), budget_name=BOARD)
    assert model.patch is not None and model.peak_sram_bytes <= fifth < budget
    x = np.random.default_rng(5).integers(-128, 128, size=model.input_tensors()[0].shape, dtype=np.int8)
    host = HostEngine(model.blob).invoke([x])[0]
    with open_device(model.blob, DeviceOptions(board=BOARD, model_name="mnv2_035_128", timeout=300.0)) as dev:
        outs, _ = dev.run_sample([x])
        assert np.array_equal(outs[0], host)
        assert dev.metrics().arena_used == model.peak_sram_bytes


def test_uint8_person_detect_class_export_patched_on_qemu_equals_host():
    """The MobileNetV1-0.25 96x96 grayscale export with a uint8 input (QUANTIZE uint8 -> int8
    first) on an emulated Cortex-M4, patched under 2.5x below TFLite Micro's arena: the uint8
    frame travels as one byte per pixel, is requantized window by window, the outputs equal
    the host target (which tests/test_exports.py checks against TFLM) and the device's arena
    high-water mark is the plan's peak."""
    need_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from tinyadapt.convert import convert
    from tinyadapt.engine.host import HostEngine
    from tinyadapt.reference import tflm_arena_head
    from tinyadapt.session.device import DeviceOptions, open_device

    path = REPO / "models/exports/person_mnv1_025_96_u8.tflite"
    budget = int(tflm_arena_head(path.read_bytes()) / 2.5)
    model = convert(path, budget=budget)
    assert model.patch is not None and model.peak_sram_bytes <= budget
    x = np.random.default_rng(6).integers(0, 256, size=model.input_tensors()[0].shape, dtype=np.uint8)
    host = HostEngine(model.blob).invoke([x])[0]
    with open_device(model.blob, DeviceOptions(board="qemu-an386", model_name="person_u8", timeout=120.0)) as dev:
        outs, _ = dev.run_sample([x])
        assert np.array_equal(outs[0], host)
        assert dev.metrics().arena_used == model.peak_sram_bytes


def test_person_detect_class_export_under_issue_13_budget_on_qemu():
    """Issue 13's target: the MobileNetV1-0.25 96x96 export (TFLM's person_detect arena: 55,296 B)
    with its frame in SRAM under 22,118 B, 2.5x below. The plan `tinyadapt plan --budget 22118`
    chooses (a short first band, bands of two rows in two strips, conv_pw_1 in place over its
    input's region) runs on an emulated Cortex-M4 with the DSP kernels: outputs equal layer by
    layer, the device's arena high-water mark is the plan's peak, and it costs at most 15 % more
    instructions than layer by layer (QEMU -icount: exact counts)."""
    need_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from tinyadapt.convert import convert
    from tinyadapt.session.device import DeviceOptions, open_device

    path = REPO / "models/exports/person_mnv1_025_96.tflite"
    base = convert(path)
    model = convert(path, budget=22_118)
    assert model.patch is not None and model.peak_sram_bytes <= 22_118
    x = np.random.default_rng(11).integers(-128, 128, size=model.input_tensors()[0].shape, dtype=np.int8)
    runs = {}
    for name, m in (("base", base), ("patched", model)):
        with open_device(m.blob, DeviceOptions(board="qemu-an386", model_name=f"person_{name}", timeout=120.0)) as dev:
            outs, result = dev.run_sample([x])
            runs[name] = (outs[0], result.instructions, dev.metrics().arena_used)
    assert np.array_equal(runs["patched"][0], runs["base"][0])
    assert runs["patched"][2] == model.peak_sram_bytes
    assert runs["patched"][1] <= 1.15 * runs["base"][1], runs
