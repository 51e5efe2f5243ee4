"""The real TFLiteConverter exports in models/exports (Keras MobileNetV2 / V3, PyTorch-layout
graphs): layer by layer bit-exact against TensorFlow Lite Micro on two inputs, and patch plans
spread over the splits the planner offers (first, last and evenly between; grids from 2 to 8,
tiles and streamed row bands)
and under several budgets equal to layer by layer. tests/test_patch_graph_ops.py covers every
split and grid of smaller flatbuffer-built models with the same ops."""

from __future__ import annotations

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import write_blob
from tinyadapt.engine.host import HostEngine
from tinyadapt.plan.patch import find_stages, plan_patch
from tests.support.arena_check import check_blob
from tests.support.paths import REPO
from tests.support.reference import run_tflm

EXPORTS = REPO / "models" / "exports"
NAMES = sorted(p.stem for p in EXPORTS.glob("*.tflite"))
SPLITS = {"torch_mnv2_100_224": 3}  # 300 M MACs on the host engine per run
MAX_SPLITS = 6
OPNAME = {v: k for k, v in bf.OPCODES.items()}


def _inputs(m, n=2) -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    shape = m.input_tensors()[0].shape
    return [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(n)]


def _run(blob: bytes, xs) -> list[np.ndarray]:
    engine = HostEngine(blob)
    return [engine.invoke([x])[0] for x in xs]


@pytest.fixture(scope="module", params=NAMES)
def export(request):
    data = (EXPORTS / f"{request.param}.tflite").read_bytes()
    m = convert(data, name=request.param)
    xs = _inputs(m)
    expected = _run(m.blob, xs)
    return request.param, data, m, xs, expected


def test_exports_exist():
    assert {"mnv2_035_128", "mnv3s_min_96", "torch_mnv2_100_224", "torch_mix_64"} <= set(NAMES), NAMES


def test_layer_by_layer_bit_exact_with_tflm(export):
    name, data, m, xs, expected = export
    check_blob(m.blob)
    for x, e in zip(xs, expected):
        ref = run_tflm(data, [x])[0]
        assert np.array_equal(e.reshape(ref.shape), ref), name
    assert not np.array_equal(expected[0], expected[1]), f"{name}: outputs do not depend on the input"
    # Converters' PADs before convs fold away (Keras before stride-2 depthwise, PyTorch everywhere).
    if not name.startswith("torch_mix"):
        assert "PAD" not in [OPNAME[op.opcode] for op in m.ops], name


def test_every_split_patched_equals_layer_by_layer(export):
    name, data, m, xs, expected = export
    stages = find_stages(m.tensors, m.ops, m.outputs)
    assert stages, f"{name}: no prefix can run patch by patch"
    n = SPLITS.get(name, MAX_SPLITS)
    picks = [stages[round(k * (len(stages) - 1) / max(n - 1, 1))] for k in range(min(n, len(stages)))]
    for k, stage in enumerate(picks):
        out_h, out_w = m.tensors[stage.output].shape[1:3]
        grid = min(2 + (3 * k + len(stages)) % 7, out_h, out_w)
        # Odd picks stream row bands in two strips where the stage can (halo rows kept).
        plan = (k % 2 and plan_patch(m.tensors, m.ops, m.inputs, m.outputs, stage, grid, stream=True, strips=2)
                or plan_patch(m.tensors, m.ops, m.inputs, m.outputs, stage, grid))
        assert plan.peak_sram_bytes > 0
        blob = write_blob(m.tensors, m.ops, m.inputs, m.outputs, plan.memory, plan)
        check_blob(blob)
        got = _run(blob, xs[:1])[0]
        assert np.array_equal(got, expected[0]), f"{name}: split {stage.n_ops} grid {grid}"


@pytest.mark.parametrize("name", ["torch_mix_64", "mnv3s_min_96"])
def test_budgets_are_honoured_and_bit_exact(name):
    data = (EXPORTS / f"{name}.tflite").read_bytes()
    base = convert(data, name=name)
    xs = _inputs(base)
    expected = _run(base.blob, xs)
    peaks = sorted(p.peak_sram_bytes for p in base.patch_candidates() if p.peak_sram_bytes < base.peak_sram_bytes)
    assert peaks, f"{name}: no patch plan beats layer by layer"
    for budget in (base.peak_sram_bytes - 1, peaks[len(peaks) // 2], peaks[0]):
        m = convert(data, name=name, budget=budget)
        assert m.patch is not None and m.peak_sram_bytes <= budget, (name, budget)
        check_blob(m.blob)
        assert all(np.array_equal(g, e) for g, e in zip(_run(m.blob, xs), expected)), (name, budget)
