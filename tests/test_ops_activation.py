"""SOFTMAX, LOGISTIC and HARD_SWISH (int8): bit-exact against TFLite Micro and tflite-runtime.

LOGISTIC and HARD_SWISH are elementwise functions of one int8 value, so every case sweeps
all 256 input values (exhaustive over the input domain) for one random quantization
(input scale / zero point, output scale / zero point). SOFTMAX cases draw random shapes
(depth 1..1000), input scales over several decades, beta values, and mix random rows with
adversarial ones (all equal, one hot maximum, values at the diff_min cut-off).

TFLite Micro facts these tests pin down:
  * LOGISTIC int8 in TFLM is the gemmlowp fixed-point logistic on Q4.27 with a saturation
    radius; tflite-runtime's BUILTIN_REF kernel is a float lookup table instead, and the two
    differ (by 1 LSB at some scales, and by up to 128 for input scales >= 16, where TFLM's
    radius is 0 and an input equal to the zero point gives -128 instead of 0). LOGISTIC is
    therefore checked against TFLM only. TFLM checks only the output zero point (-128) and
    computes as if the output scale were 1/256, whatever the model says (tflite-runtime
    rejects other scales); tinyadapt does the same.
  * SOFTMAX int8 needs output scale exactly 1/256 and zero point -128. TFLM aborts the
    process (TFLITE_CHECK) when a row's sum of exps reaches 512 (e.g. 512 equal maxima):
    never generated here; tinyadapt returns -128 for such a row (test_softmax_sum_overflow).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from tests.support.check import assert_bit_exact, run_ours
from tests.support.tflite_builder import ModelBuilder
from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import read_blob
from tinyadapt.convert.ops.hard_swish import hard_swish_params
from tinyadapt.convert.ops.logistic import logistic_params
from tinyadapt.convert.ops.softmax import softmax_params
from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import EngineError, UnsupportedModelError

N_CASES_LOGISTIC = 400
N_CASES_HARD_SWISH = 400
N_CASES_SOFTMAX = 300

SEED_LOGISTIC = 0x10615
SEED_HARD_SWISH = 0x4a5d
SEED_SOFTMAX = 0x50f7

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)
# Shapes holding exactly 256 elements, so one input holds every int8 value once.
SHAPES_256 = [(256,), (1, 256), (2, 128), (16, 16), (4, 8, 8), (1, 4, 8, 8), (2, 2, 8, 8), (1, 1, 1, 256),
              (2, 2, 2, 4, 8), (1, 2, 2, 2, 4, 8)]


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def unary_model(kind: str, shape, in_scale, in_zp, out_scale, out_zp, **options) -> bytes:
    b = ModelBuilder()
    x = b.input(list(shape), scale=in_scale, zero_point=in_zp)
    y = b.tensor(list(shape), scale=out_scale, zero_point=out_zp)
    b.op(kind, [x], [y], **options)
    b.output(y)
    return b.build()


def all_values(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.permutation(ALL_INT8).reshape(shape)


# ------------------------------------------------------------------------------ LOGISTIC
def logistic_case(seed: int):
    rng = np.random.default_rng([SEED_LOGISTIC, seed])
    kind = rng.uniform()
    if kind < 0.75:
        in_scale = log_uniform(rng, 1e-3, 1.0)       # typical
    elif kind < 0.85:
        in_scale = log_uniform(rng, 2 ** -28, 1e-3)  # tiny: nothing saturates
    elif kind < 0.95:
        in_scale = log_uniform(rng, 1.0, 40.0)       # huge: small or zero saturation radius
    else:
        in_scale = 2.0 ** int(rng.integers(-20, 6))  # exact powers of two: radius boundaries
    in_zp = int(rng.integers(-128, 128))
    # TFLM ignores the output scale (tflite-runtime insists on 1/256).
    out_scale = 1.0 / 256.0 if rng.uniform() < 0.85 else log_uniform(rng, 1e-4, 1.0)
    shape = SHAPES_256[int(rng.integers(len(SHAPES_256)))]
    return shape, in_scale, in_zp, out_scale, all_values(rng, shape)


@pytest.mark.parametrize("seed", range(N_CASES_LOGISTIC))
def test_logistic_random(seed):
    shape, in_scale, in_zp, out_scale, x = logistic_case(seed)
    model = unary_model("LOGISTIC", shape, in_scale, in_zp, out_scale, -128)
    assert_bit_exact(model, [x], f"LOGISTIC seed={seed} shape={shape} in_scale={in_scale!r} in_zp={in_zp} "
                                 f"out_scale={out_scale!r} params={logistic_params(np.float32(in_scale))}",
                     check_tflite=False)


@pytest.mark.parametrize("in_scale", [2.0 ** -28, 3e-8, 1e-5, 2.0 ** -7, 0.1, 15.99, 16.0, 17.0, 1000.0])
def test_logistic_scale_extremes(in_scale):
    for in_zp in (-128, 0, 127):
        model = unary_model("LOGISTIC", (256,), in_scale, in_zp, 1 / 256, -128)
        assert_bit_exact(model, [ALL_INT8], f"LOGISTIC in_scale={in_scale!r} in_zp={in_zp}", check_tflite=False)


def test_logistic_output_scale_ignored_like_tflm():
    """A non-1/256 output scale changes nothing in TFLM, and nothing in tinyadapt."""
    a = run_ours(unary_model("LOGISTIC", (256,), 0.05, 7, 1 / 256, -128), [ALL_INT8])[0]
    b = run_ours(unary_model("LOGISTIC", (256,), 0.05, 7, 0.01, -128), [ALL_INT8])[0]
    np.testing.assert_array_equal(a, b)


def test_logistic_runs_in_place():
    model = unary_model("LOGISTIC", (256,), 0.05, 7, 1 / 256, -128)
    info = read_blob(convert(model).blob)
    op = info.ops[0]
    assert info.tensors[op.inputs[0]].offset == info.tensors[op.outputs[0]].offset


# ---------------------------------------------------------------------------- HARD_SWISH
def hard_swish_case(seed: int):
    rng = np.random.default_rng([SEED_HARD_SWISH, seed])
    while True:
        kind = rng.uniform()
        in_scale = log_uniform(rng, 1e-3, 0.5) if kind < 0.8 else log_uniform(rng, 1e-5, 50.0)
        ratio_kind = rng.uniform()
        if ratio_kind < 0.75:
            ratio = log_uniform(rng, 0.05, 5.0)          # output range comparable to the input's
        elif ratio_kind < 0.87:
            ratio = log_uniform(rng, 1 / 128, 0.05)      # output multiplier near 1 (exponent 0)
        else:
            ratio = log_uniform(rng, 5.0, 1e5)           # deep right shifts (int16 shift >= 16 quirk)
        out_scale = in_scale * ratio
        _, rel_e, _, out_e = hard_swish_params(np.float32(in_scale), np.float32(out_scale))
        if out_e <= 0 and rel_e <= 31:
            break
    in_zp = int(rng.integers(-128, 128))
    out_zp = int(rng.integers(-128, 128))
    shape = SHAPES_256[int(rng.integers(len(SHAPES_256)))]
    return shape, in_scale, in_zp, out_scale, out_zp, all_values(rng, shape)


@pytest.mark.parametrize("seed", range(N_CASES_HARD_SWISH))
def test_hard_swish_random(seed):
    shape, in_scale, in_zp, out_scale, out_zp, x = hard_swish_case(seed)
    params = hard_swish_params(np.float32(in_scale), np.float32(out_scale))
    model = unary_model("HARD_SWISH", shape, in_scale, in_zp, out_scale, out_zp)
    assert_bit_exact(model, [x], f"HARD_SWISH seed={seed} shape={shape} in_scale={in_scale!r} in_zp={in_zp} "
                                 f"out_scale={out_scale!r} out_zp={out_zp} (rel_m, rel_e, out_m, out_e)={params}")


@pytest.mark.parametrize("in_scale,out_scale", [
    (0.02, 0.02 / 128 * 1.0001),  # output exponent 0, multiplier ~1
    (0.02, 0.02 * 2 ** 16),       # output right shift of 17 (int16 RoundingDivideByPOT quirk)
    (0.02, 0.02 * 2 ** 24),       # output right shift of 25
    (3 / 256, 0.02),              # reluish multiplier exactly 1
    (3 / 256 * 2 ** 20, 1e5),     # reluish left shift of 21
    (1e-6, 1e-6),                 # reluish right shift of 14
    (2e-9, 1e-8),                 # reluish right shift past 16
])
def test_hard_swish_extremes(in_scale, out_scale):
    for in_zp, out_zp in ((-128, -128), (0, 0), (127, 127), (-100, 90)):
        model = unary_model("HARD_SWISH", (256,), in_scale, in_zp, out_scale, out_zp)
        assert_bit_exact(model, [ALL_INT8], f"HARD_SWISH in_scale={in_scale!r} out_scale={out_scale!r} "
                                            f"in_zp={in_zp} out_zp={out_zp} "
                                            f"params={hard_swish_params(np.float32(in_scale), np.float32(out_scale))}")


# ------------------------------------------------------------------------------- SOFTMAX
def _exp_sum(row: np.ndarray, bs: float, diff_min: int) -> float:
    diff = row.astype(np.int64) - int(row.max())
    return float(np.exp(bs * diff[diff >= diff_min]).sum())


def _softmax_row(rng: np.random.Generator, depth: int, diff_min: int) -> np.ndarray:
    kind = int(rng.integers(7))
    if kind == 0:    # uniform over all of int8
        return rng.integers(-128, 128, depth).astype(np.int8)
    if kind == 1:    # clustered near a random centre: many near-maximal logits
        c, w = int(rng.integers(-128, 128)), int(rng.integers(1, 20))
        return np.clip(rng.integers(c - w, c + w + 1, depth), -128, 127).astype(np.int8)
    if kind == 2:    # all equal
        return np.full(depth, int(rng.integers(-128, 128)), np.int8)
    if kind == 3:    # one hot maximum
        lo = int(rng.integers(-128, 127))
        row = np.full(depth, lo, np.int8)
        row[int(rng.integers(depth))] = int(rng.integers(lo + 1, 128))
        return row
    if kind == 4 and -diff_min <= 255:  # around the diff_min cut-off
        m = int(rng.integers(-128 - diff_min, 128))
        cut = m + diff_min
        cands = [v for v in (cut - 1, cut, cut + 1) if -128 <= v <= 127]
        row = rng.choice(cands + [m], depth).astype(np.int8)
        row[int(rng.integers(depth))] = m
        return row
    if kind == 5:    # extremes only
        return rng.choice(np.array([-128, 127], np.int8), depth)
    # several tied maxima over random values
    row = rng.integers(-128, 128, depth).astype(np.int8)
    row[rng.integers(0, depth, int(rng.integers(1, 4)))] = row.max()
    return row


def softmax_case(seed: int):
    rng = np.random.default_rng([SEED_SOFTMAX, seed])
    u = rng.uniform()
    depth = int(rng.integers(1, 33) if u < 0.5 else rng.integers(33, 301) if u < 0.8 else rng.integers(301, 1001))
    rank = int(rng.integers(1, 5))
    rows_max = max(1, min(16, 20000 // depth))
    outer = [int(rng.integers(1, 4)) for _ in range(rank - 1)]
    while int(np.prod(outer)) > rows_max:
        outer[int(np.argmax(outer))] -= 1
    shape = tuple(outer) + (depth,)
    in_scale = log_uniform(rng, 1e-3, 60.0)
    beta = 1.0 if rng.uniform() < 0.5 else log_uniform(rng, 0.05, 10.0)
    bs = float(np.float32(beta)) * float(np.float32(in_scale))
    # TFLM aborts once a row's sum of exps reaches 512. With 512+ elements a safe row needs
    # logits spread enough to be possible at all; else use a depth below 512.
    if depth >= 512 and depth * math.exp(-255 * bs) > 100:
        depth = int(rng.integers(1, 512))
        shape = shape[:-1] + (depth,)
    _, _, diff_min = softmax_params(beta, np.float32(in_scale))
    rows = []
    for _ in range(int(np.prod(shape[:-1], dtype=np.int64))):
        row = _softmax_row(rng, depth, diff_min)
        if depth >= 512 and _exp_sum(row, bs, diff_min) > 400:
            k = min(255, math.ceil(math.log(depth / 50) / bs))
            row = rng.integers(-128, 128 - k, depth).astype(np.int8)
            row[int(rng.integers(depth))] = 127
        rows.append(row)
    x = np.stack(rows).reshape(shape)
    return shape, in_scale, beta, x


@pytest.mark.parametrize("seed", range(N_CASES_SOFTMAX))
def test_softmax_random(seed):
    shape, in_scale, beta, x = softmax_case(seed)
    model = unary_model("SOFTMAX", shape, in_scale, int(np.random.default_rng(seed).integers(-128, 128)),
                        1 / 256, -128, beta=beta)
    assert_bit_exact(model, [x], f"SOFTMAX seed={seed} shape={shape} in_scale={in_scale!r} beta={beta!r} "
                                 f"params={softmax_params(beta, np.float32(in_scale))}")


@pytest.mark.parametrize("in_scale,beta", [
    (1e-3, 1.0), (1 / 256, 1.0), (0.0625, 1.0), (0.1, 1.0), (1.0, 1.0),
    (32.0, 1.0),   # multiplier capped at 2^31 - 1, diff_min 0
    (50.0, 10.0),  # capped
    (2 ** -26 * 1.5, 1.0),  # smallest multipliers TFLM accepts
    (0.05, 0.5), (0.05, 3.7),
])
def test_softmax_extremes(in_scale, beta):
    rng = np.random.default_rng(7)
    _, _, diff_min = softmax_params(beta, np.float32(in_scale))
    rows = [_softmax_row(np.random.default_rng([11, k]), 300, diff_min) for k in range(16)]
    x = np.stack(rows).reshape(16, 300)
    x[0] = 5
    x[1] = np.arange(300) % 256 - 128
    model = unary_model("SOFTMAX", (16, 300), in_scale, int(rng.integers(-128, 128)), 1 / 256, -128, beta=beta)
    assert_bit_exact(model, [x], f"SOFTMAX in_scale={in_scale!r} beta={beta!r} "
                                 f"params={softmax_params(beta, np.float32(in_scale))}")


def test_softmax_sum_overflow():
    """512+ equal maxima: TFLM aborts (so it is not run here); tinyadapt returns -128."""
    model = unary_model("SOFTMAX", (2, 600), 0.05, 0, 1 / 256, -128)
    x = np.zeros((2, 600), np.int8)
    x[1, :300] = 3  # 300 maxima + 300 near-maxima: sum of exps > 512 as well
    out = run_ours(model, [x])[0].reshape(2, 600)
    assert (out == -128).all()


def test_softmax_depth_1_and_chain():
    """A softmax over a depth of 1 is 1.0 (127); and the three ops chained, the elementwise ones in place."""
    b = ModelBuilder()
    x = b.input([3, 40], scale=0.07, zero_point=-9)
    h = b.tensor([3, 40], scale=0.05, zero_point=-20)
    s = b.tensor([3, 40], scale=1 / 256, zero_point=-128)
    y = b.tensor([3, 40], scale=1 / 256, zero_point=-128)
    b.op("HARD_SWISH", [x], [h])
    b.op("SOFTMAX", [h], [s], beta=1.3)
    b.op("LOGISTIC", [s], [y])
    b.output(y)
    model = b.build()
    xs = np.random.default_rng(3).integers(-128, 128, (3, 40)).astype(np.int8)
    # LOGISTIC: TFLM only (see the module docstring).
    assert_bit_exact(model, [xs], "HARD_SWISH -> SOFTMAX -> LOGISTIC chain", check_tflite=False)
    info = read_blob(convert(model).blob)
    for op in info.ops:
        same = info.tensors[op.inputs[0]].offset == info.tensors[op.outputs[0]].offset
        assert same == (op.name != "SOFTMAX"), op.name

    m1 = unary_model("SOFTMAX", (5, 1), 0.1, 0, 1 / 256, -128)
    assert_bit_exact(m1, [np.arange(-2, 3, dtype=np.int8).reshape(5, 1)], "SOFTMAX depth 1")


def test_softmax_rank_5_and_6():
    rng = np.random.default_rng(5)
    for shape in ((2, 1, 3, 2, 37), (1, 2, 1, 2, 3, 17)):
        x = rng.integers(-128, 128, shape).astype(np.int8)
        assert_bit_exact(unary_model("SOFTMAX", shape, 0.08, 3, 1 / 256, -128, beta=0.7), [x], f"SOFTMAX {shape}")


# ---------------------------------------------------------------------------- error paths
def _rejects(model: bytes, *fragments: str):
    with pytest.raises(UnsupportedModelError) as e:
        convert(model)
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_softmax_rejects_other_output_quantization():
    _rejects(unary_model("SOFTMAX", (1, 10), 0.1, 0, 1 / 128, -128), "SOFTMAX", "1/256", "-128")
    _rejects(unary_model("SOFTMAX", (1, 10), 0.1, 0, 1 / 256, 0), "SOFTMAX", "zero point 0")
    _rejects(unary_model("SOFTMAX", (1, 10), 0.1, 0, 1 / 256 * 1.0001, -128), "scale 1/256")


def test_softmax_rejects_tiny_or_negative_beta():
    _rejects(unary_model("SOFTMAX", (1, 10), 1e-9, 0, 1 / 256, -128), "beta * input_scale * 2^26 > 1")
    _rejects(unary_model("SOFTMAX", (1, 10), 0.1, 0, 1 / 256, -128, beta=-1.0), "too small or not positive")


def test_softmax_rejects_int16_output():
    b = ModelBuilder()
    x = b.input([1, 10], scale=0.1, zero_point=0)
    y = b.tensor([1, 10], dtype=np.int16, scale=1 / 65536, zero_point=-32768)
    b.op("SOFTMAX", [x], [y])
    b.output(y)
    _rejects(b.build(), "int16")


def test_logistic_rejects():
    _rejects(unary_model("LOGISTIC", (4,), 0.1, 0, 1 / 256, 0), "LOGISTIC", "zero point -128", "got 0")
    _rejects(unary_model("LOGISTIC", (4,), 1e-9, 0, 1 / 256, -128), "LOGISTIC", "input scale")


def test_hard_swish_rejects_left_shifting_output():
    _rejects(unary_model("HARD_SWISH", (4,), 0.1, 0, 0.1 / 256, 0), "HARD_SWISH", "output scale", "< 1")


def test_float_models_rejected():
    for kind in ("SOFTMAX", "LOGISTIC", "HARD_SWISH"):
        b = ModelBuilder()
        x = b.input([1, 8], dtype=np.float32)
        y = b.tensor([1, 8], dtype=np.float32)
        b.op(kind, [x], [y])
        b.output(y)
        _rejects(b.build(), kind, "float32")


# ---------------------------------------------------------------------- engine-side checks
PARAM_FIELDS = {
    "SOFTMAX": ["input_multiplier", "input_left_shift", "diff_min"],
    "LOGISTIC": ["input_offset", "input_range_radius", "input_multiplier", "input_left_shift"],
    "HARD_SWISH": ["input_offset", "output_offset", "reluish_multiplier", "reluish_exponent",
                   "output_multiplier", "output_exponent"],
}


def _tamper(blob: bytes, kind: str, field: str, value: int) -> bytes:
    """The blob with one params field of its only op replaced, CRC fixed."""
    params = read_blob(blob).ops[0].params
    at = blob.find(params)
    assert at > 0 and blob.find(params, at + 1) < 0
    out = bytearray(blob)
    struct.pack_into("<i", out, at + 4 * PARAM_FIELDS[kind].index(field), value)
    struct.pack_into("<I", out, 12, zlib.crc32(bytes(out[bf.CRC_START:])) & 0xFFFFFFFF)
    return bytes(out)


@pytest.mark.parametrize("kind,field,value", [
    ("SOFTMAX", "input_multiplier", -5), ("SOFTMAX", "input_left_shift", 32), ("SOFTMAX", "input_left_shift", -1),
    ("SOFTMAX", "diff_min", 0), ("SOFTMAX", "diff_min", -(2 ** 31)),
    ("LOGISTIC", "input_offset", 200), ("LOGISTIC", "input_range_radius", -1),
    ("LOGISTIC", "input_multiplier", -1), ("LOGISTIC", "input_left_shift", 40),
    ("HARD_SWISH", "input_offset", 300), ("HARD_SWISH", "output_offset", 128),
    ("HARD_SWISH", "reluish_multiplier", 40000), ("HARD_SWISH", "reluish_exponent", 32),
    ("HARD_SWISH", "output_multiplier", -1), ("HARD_SWISH", "output_exponent", 1),
    ("HARD_SWISH", "output_exponent", -32),
])
def test_engine_rejects_corrupt_params(kind, field, value):
    out_scale, out_zp = (1 / 256, -128) if kind != "HARD_SWISH" else (0.05, 3)
    blob = convert(unary_model(kind, (2, 16), 0.1, 0, out_scale, out_zp)).blob
    HostEngine(blob)  # the untouched blob loads
    with pytest.raises(EngineError, match="TA_ERR_CORRUPT"):
        HostEngine(_tamper(blob, kind, field, value))
