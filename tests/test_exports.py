"""The real TFLiteConverter exports in models/exports (Keras MobileNetV1 / V2 / V3, PyTorch-layout
graphs, a uint8-input variant): layer by layer bit-exact against TensorFlow Lite Micro on two inputs, and patch plans
spread over the splits the planner offers (first, last and evenly between; grids from 2 to 8,
tiles and streamed row bands)
and under several budgets equal to layer by layer. tests/test_patch_graph_ops.py covers every
split and grid of smaller flatbuffer-built models with the same ops."""

from __future__ import annotations

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import read_blob, write_blob
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
    """Random frames in the input's dtype (int8, or uint8 for the *_u8 exports)."""
    rng = np.random.default_rng(42)
    spec = m.input_tensors()[0]
    info = np.iinfo(spec.dtype)
    return [rng.integers(info.min, info.max + 1, size=spec.shape, dtype=spec.dtype) for _ in range(n)]


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
    assert {"mnv2_035_128", "mnv3s_min_96", "torch_mnv2_100_224", "torch_mix_64", "person_mnv1_025_96",
            "person_mnv1_025_96_u8"} <= set(NAMES), NAMES


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


def test_uint8_input_is_the_int8_model_shifted():
    """inference_input_type=tf.uint8 only prepends QUANTIZE uint8 -> int8 (same scale, zero point
    + 128): on frame u the uint8 export equals the int8 export on u - 128, layer by layer and
    patched, and equals TFLM."""
    u8 = (EXPORTS / "person_mnv1_025_96_u8.tflite").read_bytes()
    i8 = convert(EXPORTS / "person_mnv1_025_96.tflite")
    m = convert(u8)
    assert OPNAME[m.ops[0].opcode] == "REQUANTIZE" and m.input_tensors()[0].dtype == np.uint8
    assert m.tensors[m.inputs[0]].nbytes == 96 * 96  # one byte per uint8 element
    xs = _inputs(m, 3)
    got = _run(m.blob, xs)
    shifted = _run(i8.blob, [(x.astype(np.int16) - 128).astype(np.int8) for x in xs])
    for x, g, s in zip(xs, got, shifted):
        assert np.array_equal(g, s)
        assert np.array_equal(g.reshape(-1), run_tflm(u8, [x])[0].reshape(-1))


@pytest.mark.parametrize("external", [False, True])
def test_uint8_frame_is_requantized_window_by_window(external):
    """Patched, the stage starts at the uint8 frame: REQUANTIZE runs on each tile's window, so
    its int8 output is a patch tensor (no full-size int8 copy of the frame), the frame's
    region buffer holds uint8 bytes, and the outputs equal layer by layer."""
    u8 = (EXPORTS / "person_mnv1_025_96_u8.tflite").read_bytes()
    base = convert(u8)
    xs = _inputs(base)
    expected = _run(base.blob, xs)
    for stream in (False, True):
        stage = find_stages(base.tensors, base.ops, base.outputs)[8]
        plan = plan_patch(base.tensors, base.ops, base.inputs, base.outputs, stage, 6, stream=stream,
                          strips=2 if stream else 1, external_input=external)
        blob = write_blob(base.tensors, base.ops, base.inputs, base.outputs, plan.memory, plan)
        check_blob(blob)
        info = read_blob(blob).tensors
        frame, quantized = base.inputs[0], base.ops[0].outputs[0]
        assert info[quantized].kind == bf.KIND_PATCH and info[quantized].dtype == np.int8
        assert info[frame].dtype == np.uint8
        assert info[frame].kind == (bf.KIND_EXTERNAL if external else bf.KIND_ACTIVATION)
        assert plan.capacities[plan.region_tensors.index(frame)] <= info[frame].size
        got = _run(blob, xs)
        assert all(np.array_equal(g, e) for g, e in zip(got, expected)), (external, stream)


def test_run_and_stream_take_uint8_frames(tmp_path):
    """`tinyadapt run` takes a uint8 .npy for the uint8 export (patched under a budget) and
    equals TFLM; an int8 array is refused in one line naming the dtype; stream's loader keeps
    uint8 data and quantizes float data into uint8 with the input's scale and zero point."""
    import subprocess
    import sys

    from tinyadapt.session.stream import load_stream_data

    path = EXPORTS / "person_mnv1_025_96_u8.tflite"
    base = convert(path)
    xs = np.stack(_inputs(base, 2))[:, 0]                     # [2, 96, 96, 1] uint8
    np.save(tmp_path / "x.npy", xs)
    np.save(tmp_path / "bad.npy", xs.astype(np.int8))
    run = [sys.executable, "-m", "tinyadapt", "run", str(path), "-o", str(tmp_path / "y.npy"), "--budget", "30000"]
    proc = subprocess.run(run + ["-i", str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    for k in range(2):
        assert np.array_equal(y[k].reshape(-1), run_tflm(path.read_bytes(), [xs[k:k + 1]])[0].reshape(-1))
    proc = subprocess.run(run + ["-i", str(tmp_path / "bad.npy")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "takes uint8" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    info = read_blob(base.blob)
    assert np.array_equal(load_stream_data(str(tmp_path / "x.npy"), info).reshape(xs.shape), xs)
    t = base.input_tensors()[0]
    floats = (xs.astype(np.float32) - t.zero_point) * np.float32(t.scale)
    np.save(tmp_path / "f.npy", floats)
    got = load_stream_data(str(tmp_path / "f.npy"), info)
    assert got.dtype == np.uint8 and np.array_equal(got.reshape(xs.shape), xs)
