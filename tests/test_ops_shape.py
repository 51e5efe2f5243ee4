"""Pooling, PAD/PADV2, MEAN, RESHAPE, TRANSPOSE and CONCATENATION: bit-exact with TFLite
Micro and tflite-runtime (BUILTIN_REF).

Each op gets a seeded randomized sweep (the case's seed and parameters are in its id and
in every failure message): shapes of every supported rank, odd and even sizes, strides,
SAME/VALID padding, filters larger than the input, asymmetric paddings, axis sets with
negative and repeated axes, keep_dims, equal and different input/output quantization,
log-uniform scales over several decades and random zero points. Then converter error
paths (one clear UnsupportedModelError line each, and TFLM refusing the same models),
engine-side rejection of corrupt parameters (also fuzzed under ASan/UBSan), the RESHAPE
aliasing contract, and the kernels' argument checks called directly through ctypes.

Where TFLite Micro refuses something the engine supports, the case is checked against
tflite-runtime instead (it agrees with TFLM everywhere both run):
  * TRANSPOSE of rank 6 (TFLM: "only supports 1D-5D"),
  * CONCATENATION of 11..16 inputs (TFLM's kMaxInputNum is 10),
and against numpy where neither runs it (PAD of rank 6).
"""

from __future__ import annotations

import ctypes
import struct
import subprocess
import zlib

import numpy as np
import pytest

from tests.support import ModelBuilder
from tests.support.check import assert_bit_exact, describe_mismatch, run_ours
from tests.support.reference import run_tflite, run_tflm
from tests.support.tflite_builder import pack_model
from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import _HEADER, _OP
from tinyadapt.convert.ops.pool import out_size_and_padding
from tinyadapt.engine.host import BUILD_DIR, FIRMWARE_DIR, HostEngine, library
from tinyadapt.errors import EngineError, UnsupportedModelError

N_CASES_AVGPOOL = 300
N_CASES_MAXPOOL = 300
N_CASES_PAD = 300
N_CASES_MEAN = 450
N_CASES_RESHAPE = 200
N_CASES_TRANSPOSE = 250
N_CASES_CONCAT = 300
N_FUZZ_MODELS_PER_OP = 30   # sanitizer run: converted random cases ...
N_FUZZ_CORRUPTIONS = 15     # ... each with this many corrupted parameter fields
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


# --------------------------------------------------------------------------- helpers
def _scale(rng, lo_exp: float = -3.0, hi_exp: float = 0.0) -> float:
    return float(np.float32(10.0 ** rng.uniform(lo_exp, hi_exp)))


def _zp(rng) -> int:
    return int(rng.integers(-128, 128))


def _data(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=tuple(shape), dtype=np.int8)


def _check(model: bytes, inputs, context: str, refs=("tflm", "tflite"), expected=None):
    """Our engine against the given references (and/or an exact numpy expectation)."""
    if refs == ("tflm", "tflite"):
        assert_bit_exact(model, inputs, context)
        return
    ours = run_ours(model, inputs)[0]
    results = []
    if "tflm" in refs:
        results.append(("tflite-micro", run_tflm(model, inputs)[0]))
    if "tflite" in refs:
        results.append(("tflite-runtime", run_tflite(model, inputs)[0]))
    if expected is not None:
        results.append(("numpy", expected))
    for name, ref in results:
        ref = np.asarray(ref)
        o = ours.reshape(ref.shape) if ours.size == ref.size else ours
        if o.dtype != ref.dtype or not np.array_equal(o, ref):
            raise AssertionError(f"{context} [{name}]\n" + describe_mismatch(o, ref, "values"))


# --------------------------------------------------------------------------- pooling
def pool_case(seed: int, kind: str) -> tuple[bytes, list, str]:
    rng = np.random.default_rng(seed)
    while True:
        n = int(rng.choice([1, 1, 1, 2, 3]))
        h, w = (int(v) for v in rng.integers(1, 14, 2))
        c = int(rng.choice([1, 2, 3, 4, 5, 8, 16]))
        fh, fw = (int(v) for v in rng.integers(1, 7, 2))
        sh, sw = (int(v) for v in rng.choice([1, 1, 2, 2, 3, 4], 2))
        padding = str(rng.choice(["SAME", "VALID"]))
        oh, _ = out_size_and_padding(padding, h, fh, sh)
        ow, _ = out_size_and_padding(padding, w, fw, sw)
        if oh >= 1 and ow >= 1:
            break
    act = str(rng.choice(ACTIVATIONS))
    scale = {"RELU6": 6.0 / 255 * 10 ** rng.uniform(-0.3, 0.3),
             "RELU_N1_TO_1": 2.0 / 255 * 10 ** rng.uniform(-0.3, 0.3)}.get(act, _scale(rng))
    scale = float(np.float32(scale))
    zp = _zp(rng)
    label = (f"seed={seed} {kind} in={[n, h, w, c]} filter={fh}x{fw} stride={sh}x{sw} {padding} "
             f"act={act} scale={scale:g} zp={zp}")
    b = ModelBuilder()
    x = b.input([n, h, w, c], scale=scale, zero_point=zp)
    y = b.tensor([n, oh, ow, c], scale=scale, zero_point=zp)
    b.op(kind, [x], [y], filter_h=fh, filter_w=fw, stride_h=sh, stride_w=sw, padding=padding,
         activation=act)
    b.output(y)
    return b.build(), [_data(rng, [n, h, w, c])], label


@pytest.mark.parametrize("i", range(N_CASES_AVGPOOL))
def test_avgpool_random(i):
    model, inputs, label = pool_case(100_000 + i, "AVERAGE_POOL_2D")
    _check(model, inputs, label)


@pytest.mark.parametrize("i", range(N_CASES_MAXPOOL))
def test_maxpool_random(i):
    model, inputs, label = pool_case(110_000 + i, "MAX_POOL_2D")
    _check(model, inputs, label)


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_rounding_extremes(kind):
    """All -128 / all 127 / alternating inputs: sums at the int8 limits, ties in the rounding."""
    b = ModelBuilder()
    x = b.input([1, 6, 6, 3], scale=0.02, zero_point=-1)
    y = b.tensor([1, 3, 3, 3], scale=0.02, zero_point=-1)
    b.op(kind, [x], [y], filter_h=3, filter_w=3, stride_h=2, stride_w=2, padding="SAME")
    b.output(y)
    model = b.build()
    alt = np.where(np.indices((1, 6, 6, 3)).sum(0) % 2 == 0, -3, 2).astype(np.int8)
    for data in (np.full((1, 6, 6, 3), -128, np.int8), np.full((1, 6, 6, 3), 127, np.int8), alt):
        _check(model, [data], f"{kind} extremes {data.ravel()[:2]}")


# --------------------------------------------------------------------------- pad
def pad_case(seed: int) -> tuple[bytes, list, str, tuple, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    rank = int(rng.choice([1, 2, 3, 4, 4, 4, 5, 6]))
    shape = [int(v) for v in rng.integers(1, 6, rank)]
    pads = rng.integers(0, 4, (rank, 2))
    pads[rng.random((rank, 2)) < 0.35] = 0  # plenty of one-sided (0, k) / (k, 0) paddings
    kind = str(rng.choice(["PAD", "PADV2", "PADV2_DYNAMIC"]))
    in_s, in_zp = _scale(rng), _zp(rng)
    out_s, out_zp = (in_s, in_zp) if rng.random() < 0.6 else (_scale(rng), _zp(rng))
    out_shape = [int(d + p.sum()) for d, p in zip(shape, pads)]
    value = _zp(rng)
    label = f"seed={seed} {kind} in={shape} paddings={pads.tolist()} out_zp={out_zp} value={value}"
    b = ModelBuilder()
    x = b.input(shape, scale=in_s, zero_point=in_zp)
    y = b.tensor(out_shape, scale=out_s, zero_point=out_zp)
    data = [_data(rng, shape)]
    if kind == "PAD":
        b.op("PAD", [x], [y], paddings=pads)
        fill = out_zp
    elif kind == "PADV2":
        cv = b.const(np.array([value], np.int8), scale=out_s, zero_point=out_zp)
        b.op("PADV2", [x, cv], [y], paddings=pads)
        fill = value
    else:  # the pad value arrives at run time, as a second model input
        cv = b.input([1], scale=out_s, zero_point=out_zp)
        b.op("PADV2", [x, cv], [y], paddings=pads)
        data.append(np.array([value], np.int8))
        fill = value
    b.output(y)
    expected = np.pad(data[0], pads, constant_values=fill)
    refs = ("tflm", "tflite") if rank <= 5 else ()
    return b.build(), data, label, refs, expected


@pytest.mark.parametrize("i", range(N_CASES_PAD))
def test_pad_random(i):
    model, inputs, label, refs, expected = pad_case(200_000 + i)
    _check(model, inputs, label, refs=refs, expected=expected)


# --------------------------------------------------------------------------- mean
def mean_case(seed: int) -> tuple[bytes, list, str]:
    rng = np.random.default_rng(seed)
    style = seed % 3
    if style == 0:  # the global-average-pool pattern: 4-D over H and W
        shape = [int(rng.choice([1, 1, 2])), int(rng.integers(1, 17)), int(rng.integers(1, 17)),
                 int(rng.integers(1, 9))]
        axes = [int(v) for v in rng.choice([[1, 2], [2, 1], [-3, -2], [1, -2]])]
    else:
        rank = int(rng.integers(1, 7))
        shape = [int(v) for v in rng.integers(1, 7 if rank <= 4 else 4, rank)]
        k = int(rng.integers(0, rank + 1))
        axes = [int(a) for a in rng.choice(rank, size=k, replace=False)]
        axes = [a - rank if rng.random() < 0.3 else a for a in axes]
        if axes and rng.random() < 0.2:
            axes.append(axes[0])  # a repeated axis counts once
    keep = bool(rng.random() < 0.5)
    in_s, in_zp = _scale(rng), _zp(rng)
    if rng.random() < 0.4:  # equal quantization (TFLM's former plain-Mean path)
        out_s, out_zp = in_s, in_zp
    else:
        out_s, out_zp = float(np.float32(in_s * 10 ** rng.uniform(-1.5, 1.0))), _zp(rng)
    rank = len(shape)
    red = {a % rank for a in axes}
    out_shape = ([1 if d in red else s for d, s in enumerate(shape)] if keep
                 else [s for d, s in enumerate(shape) if d not in red])
    label = (f"seed={seed} MEAN in={shape} axes={axes} keep_dims={keep} in=({in_s:g},{in_zp}) "
             f"out=({out_s:g},{out_zp})")
    b = ModelBuilder()
    x = b.input(shape, scale=in_s, zero_point=in_zp)
    y = b.tensor(out_shape, scale=out_s, zero_point=out_zp)
    b.op("MEAN", [x], [y], axis=np.array(axes, np.int32), keep_dims=keep)
    b.output(y)
    return b.build(), [_data(rng, shape)], label


@pytest.mark.parametrize("i", range(N_CASES_MEAN))
def test_mean_random(i):
    model, inputs, label = mean_case(300_000 + i)
    _check(model, inputs, label)


@pytest.mark.parametrize("hw,c,same", [((32, 32), 4, True), ((32, 32), 4, False), ((61, 67), 2, False),
                                       ((1, 1), 8, True), ((128, 128), 1, True)])
def test_mean_large_counts(hw, c, same):
    """Large element counts: the 1/count folding clamps its shift and loses precision
    exactly as TFLM does; extreme inputs push the int32 sum."""
    rng = np.random.default_rng(hw[0] * 1000 + c)
    in_s, in_zp = 0.05, -7
    out_s, out_zp = (in_s, in_zp) if same else (0.011, 9)
    b = ModelBuilder()
    x = b.input([1, *hw, c], scale=in_s, zero_point=in_zp)
    y = b.tensor([1, c], scale=out_s, zero_point=out_zp)
    b.op("MEAN", [x], [y], axis=[1, 2], keep_dims=False)
    b.output(y)
    model = b.build()
    for data in (_data(rng, [1, *hw, c]), np.full((1, *hw, c), 127, np.int8),
                 np.full((1, *hw, c), -128, np.int8)):
        _check(model, [data], f"MEAN {hw}x{c} same={same}")


# --------------------------------------------------------------------------- reshape
def _factor_shape(rng, count: int) -> list[int]:
    """A random shape (rank 1..5) whose element count is `count`."""
    dims = []
    rest = count
    for _ in range(int(rng.integers(0, 4))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = int(rng.choice(divisors))
        dims.append(d)
        rest //= d
    dims.append(rest)
    rng.shuffle(dims)
    return dims


def reshape_case(seed: int) -> tuple[bytes, list, str]:
    """RESHAPE alone (model input to model output) or between other ops, with or without
    its shape operand, sometimes on a constant."""
    rng = np.random.default_rng(seed)
    count = int(rng.choice([1, 6, 12, 24, 30, 48, 60, 64, 90]))
    in_shape = _factor_shape(rng, count)
    out_shape = _factor_shape(rng, count)
    s, zp = _scale(rng), _zp(rng)
    style = str(rng.choice(["alone", "between", "const", "twice"]))
    no_shape_operand = bool(rng.random() < 0.3)
    label = f"seed={seed} RESHAPE {in_shape}->{out_shape} {style} shape_operand={not no_shape_operand}"
    b = ModelBuilder()
    inputs = []
    if style == "const":
        x = b.const(_data(rng, in_shape), scale=s, zero_point=zp)
        other = b.input(out_shape, scale=s, zero_point=zp)
        inputs.append(_data(rng, out_shape))
    else:
        x = b.input(in_shape, scale=s, zero_point=zp)
        inputs.append(_data(rng, in_shape))
    src = x
    if style == "between":  # PAD -> RESHAPE -> TRANSPOSE: the reshape's bytes live mid-arena
        padded = [in_shape[0] + 1] + in_shape[1:]
        src = b.tensor(padded, scale=s, zero_point=zp)
        b.op("PAD", [x], [src], paddings=[[1, 0]] + [[0, 0]] * (len(in_shape) - 1))
        out_shape = _factor_shape(rng, int(np.prod(padded)))
        label += f" padded={padded}->{out_shape}"
    y = b.tensor(out_shape, scale=s, zero_point=zp)
    b.op("RESHAPE", [src], [y], new_shape=out_shape)
    final = y
    if style == "between":
        perm = [int(p) for p in rng.permutation(len(out_shape))]
        final = b.tensor([out_shape[p] for p in perm], scale=s, zero_point=zp)
        b.op("TRANSPOSE", [y], [final], perm=perm)
    elif style == "const":
        final = b.tensor([2 * out_shape[0]] + out_shape[1:], scale=s, zero_point=zp)
        b.op("CONCATENATION", [y, other], [final], axis=0)
    elif style == "twice":  # the input feeds a reshape that is an output and one more op
        flat = b.tensor([count], scale=s, zero_point=zp)
        b.op("RESHAPE", [x], [flat], new_shape=[count])
        final = b.tensor([count + 2], scale=s, zero_point=zp)
        b.op("PAD", [flat], [final], paddings=[[1, 1]])
        b.output(y)
    b.output(final)
    model_t = b.to_model_t()
    if no_shape_operand:
        for op in model_t.subgraphs[0].operators:
            if model_t.operatorCodes[op.opcodeIndex].builtinCode == 22:  # RESHAPE
                op.inputs = op.inputs[:1]
    return pack_model(model_t), inputs, label


@pytest.mark.parametrize("i", range(N_CASES_RESHAPE))
def test_reshape_random(i):
    model, inputs, label = reshape_case(400_000 + i)
    ours = run_ours(model, inputs)
    for name, fn in (("tflite-micro", run_tflm), ("tflite-runtime", run_tflite)):
        refs = fn(model, inputs)
        assert len(refs) == len(ours), label
        for k, (o, r) in enumerate(zip(ours, refs)):
            assert o.dtype == r.dtype and np.array_equal(o.reshape(r.shape), r), \
                f"{label} [{name} output {k}]\n" + describe_mismatch(o.reshape(r.shape), r, "values")


def test_reshape_output_aliases_input():
    """The planner puts RESHAPE's output on its input's bytes; the op then copies nothing."""
    b = ModelBuilder()
    x = b.input([1, 4, 4, 2], scale=0.1, zero_point=3)
    p = b.tensor([1, 6, 4, 2], scale=0.1, zero_point=3)
    b.op("PAD", [x], [p], paddings=[[0, 0], [1, 1], [0, 0], [0, 0]])
    r = b.tensor([6, 8], scale=0.1, zero_point=3)
    b.op("RESHAPE", [p], [r], new_shape=[6, 8])
    y = b.tensor([8, 6], scale=0.1, zero_point=3)
    b.op("TRANSPOSE", [r], [y], perm=[1, 0])
    b.output(y)
    m = convert(b.build())
    reshape = next(op for op in m.ops if op.opcode == bf.OPCODES["RESHAPE"])
    assert reshape.alias_input == 0 and reshape.params == b""
    assert m.plan.tensor_offsets[reshape.inputs[0]] == m.plan.tensor_offsets[reshape.outputs[0]]
    rng = np.random.default_rng(7)
    _check(b.build(), [_data(rng, [1, 4, 4, 2])], "aliased reshape chain")


# --------------------------------------------------------------------------- transpose
def transpose_case(seed: int) -> tuple[bytes, list, str, tuple, np.ndarray]:
    rng = np.random.default_rng(seed)
    if seed % 4 == 0:  # what PyTorch exports produce around convolutions
        shape = [int(rng.integers(1, 3))] + [int(v) for v in rng.integers(1, 9, 3)]
        perm = [[0, 2, 3, 1], [0, 3, 1, 2]][seed % 8 // 4]
    else:
        rank = int(rng.choice([1, 2, 3, 4, 5, 5, 6]))
        shape = [int(v) for v in rng.integers(1, 6, rank)]
        perm = [int(p) for p in rng.permutation(rank)]
    s, zp = _scale(rng), _zp(rng)
    label = f"seed={seed} TRANSPOSE in={shape} perm={perm}"
    b = ModelBuilder()
    x = b.input(shape, scale=s, zero_point=zp)
    y = b.tensor([shape[p] for p in perm], scale=s, zero_point=zp)
    b.op("TRANSPOSE", [x], [y], perm=perm)
    b.output(y)
    refs = ("tflm", "tflite") if len(shape) <= 5 else ("tflite",)
    data = _data(rng, shape)
    return b.build(), [data], label, refs, np.transpose(data, perm)


@pytest.mark.parametrize("i", range(N_CASES_TRANSPOSE))
def test_transpose_random(i):
    model, inputs, label, refs, expected = transpose_case(500_000 + i)
    _check(model, inputs, label, refs=refs, expected=expected)


# --------------------------------------------------------------------------- concatenation
def concat_case(seed: int) -> tuple[bytes, list, str, tuple]:
    rng = np.random.default_rng(seed)
    rank = int(rng.choice([1, 2, 3, 4, 4, 4, 5, 6]))
    shape = [int(v) for v in rng.integers(1, 5, rank)]
    n = int(rng.choice([2, 2, 3, 4, 5, 7, 10])) if rng.random() < 0.85 else int(rng.integers(11, 17))
    axis = int(rng.integers(-rank, rank))
    a = axis % rank
    s, zp = _scale(rng), _zp(rng)
    sizes = [int(v) for v in rng.integers(1, 4, n)]
    label = f"seed={seed} CONCATENATION n={n} base={shape} axis={axis} sizes={sizes}"
    b = ModelBuilder()
    ins, data = [], []
    for k, size in enumerate(sizes):
        sh = list(shape)
        sh[a] = size
        if k > 0 and rng.random() < 0.15:  # a constant operand
            ins.append(b.const(_data(rng, sh), scale=s, zero_point=zp))
        else:
            ins.append(b.input(sh, scale=s, zero_point=zp))
            data.append(_data(rng, sh))
    out_shape = list(shape)
    out_shape[a] = sum(sizes)
    y = b.tensor(out_shape, scale=s, zero_point=zp)
    b.op("CONCATENATION", ins, [y], axis=axis)
    b.output(y)
    refs = ("tflm", "tflite") if n <= 10 else ("tflite",)
    return b.build(), data, label, refs


@pytest.mark.parametrize("i", range(N_CASES_CONCAT))
def test_concat_random(i):
    model, inputs, label, refs = concat_case(600_000 + i)
    _check(model, inputs, label, refs=refs)


# --------------------------------------------------------------------------- converter errors
def _single(kind, in_shape, out_shape, in_q=(0.1, 0), out_q=(0.1, 0), extra_inputs=(), **opts):
    b = ModelBuilder()
    x = b.input(in_shape, scale=in_q[0], zero_point=in_q[1])
    y = b.tensor(out_shape, scale=out_q[0], zero_point=out_q[1])
    extra = extra_inputs(b) if callable(extra_inputs) else list(extra_inputs)
    b.op(kind, [x, *extra], [y], **opts)
    b.output(y)
    return b.build()


ERROR_CASES = {
    "pool_quant_differs": (lambda: _single("AVERAGE_POOL_2D", [1, 4, 4, 1], [1, 2, 2, 1], out_q=(0.2, 0),
                                           filter_h=2, filter_w=2), "quantization differ"),
    "pool_zero_point_differs": (lambda: _single("MAX_POOL_2D", [1, 4, 4, 1], [1, 2, 2, 1], out_q=(0.1, 3),
                                                filter_h=2, filter_w=2), "quantization differ"),
    "pool_bad_output_shape": (lambda: _single("MAX_POOL_2D", [1, 4, 4, 1], [1, 3, 3, 1],
                                              filter_h=2, filter_w=2), "does not match the computed"),
    "pool_window_too_big": (lambda: _single("AVERAGE_POOL_2D", [1, 2, 2, 1], [1, 1, 1, 1],
                                            filter_h=3, filter_w=3), "does not fit"),
    "pool_not_4d": (lambda: _single("MAX_POOL_2D", [4, 4, 1], [2, 2, 1], filter_h=2, filter_w=2), "4-D"),
    "pool_tanh": (lambda: _single("MAX_POOL_2D", [1, 4, 4, 1], [1, 2, 2, 1], filter_h=2, filter_w=2,
                                  activation=4), "fused activation"),
    "pad_negative": (lambda: _single("PAD", [1, 4, 4, 1], [1, 3, 4, 1], paddings=[[0, 0], [-1, 0], [0, 0], [0, 0]]),
                     "negative paddings"),
    "pad_shape_mismatch": (lambda: _single("PAD", [1, 4, 4, 1], [1, 5, 5, 1], paddings=[[0, 0], [1, 0], [0, 0], [0, 0]]),
                           "output shape"),
    "pad_dynamic_paddings": (lambda: _single("PAD", [1, 4], [1, 6], extra_inputs=lambda b: [b.tensor([2, 2], np.int32)]),
                             "paddings must be a constant"),
    "padv2_value_quant": (lambda: _single("PADV2", [1, 4], [1, 6], paddings=[[0, 0], [1, 1]],
                                          extra_inputs=lambda b: [b.const(np.array([3], np.int8), scale=0.5, zero_point=0)]),
                          "constant value quantization"),
    "mean_axis_range": (lambda: _single("MEAN", [1, 4, 4, 2], [1, 2], axis=[1, 4]), "out of range"),
    "mean_dynamic_axis": (lambda: _single("MEAN", [1, 4, 4, 2], [1, 2], extra_inputs=lambda b: [b.tensor([2], np.int32)]),
                          "axis must be a constant"),
    "mean_bad_output": (lambda: _single("MEAN", [1, 4, 4, 2], [1, 4], axis=[1, 2]), "kept dimensions"),
    "mean_unquantized": (lambda: _single("MEAN", [1, 4], [1], in_q=(None, 0), out_q=(None, 0), axis=[1]),
                         "no quantization parameters"),
    "transpose_not_perm": (lambda: _single("TRANSPOSE", [2, 3, 4], [2, 3, 3], perm=[0, 1, 1]), "not a permutation"),
    "transpose_bad_output": (lambda: _single("TRANSPOSE", [2, 3, 4], [2, 3, 4], perm=[0, 2, 1]), "output shape"),
    "transpose_dynamic_perm": (lambda: _single("TRANSPOSE", [2, 3], [3, 2], extra_inputs=lambda b: [b.tensor([2], np.int32)]),
                               "permutation must be a constant"),
    "reshape_count": (lambda: _single("RESHAPE", [2, 3], [7], new_shape=[7]), "element count"),
}


def _concat_model(scales=(0.1, 0.1), zps=(0, 0), out=(0.1, 0), activation="NONE", shapes=([1, 2], [1, 3]),
                  out_shape=(1, 5), axis=1):
    b = ModelBuilder()
    xs = [b.input(sh, scale=s, zero_point=z) for sh, s, z in zip(shapes, scales, zps)]
    y = b.tensor(list(out_shape), scale=out[0], zero_point=out[1])
    b.op("CONCATENATION", xs, [y], axis=axis, activation=activation)
    b.output(y)
    return b.build()


ERROR_CASES.update({
    "concat_scale_differs": (lambda: _concat_model(scales=(0.1, 0.2)), "requires every input to match"),
    "concat_zp_differs": (lambda: _concat_model(zps=(0, 4)), "requires every input to match"),
    "concat_relu": (lambda: _concat_model(activation="RELU"), "fused activation RELU"),
    "concat_shape": (lambda: _concat_model(shapes=([1, 2], [2, 3])), "does not fit output"),
    "concat_sum": (lambda: _concat_model(out_shape=(1, 6)), "add up to 5"),
    "concat_axis": (lambda: _concat_model(axis=2), "out of range"),
})


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_converter_rejects(name):
    make, message = ERROR_CASES[name]
    with pytest.raises(UnsupportedModelError, match=message) as info:
        convert(make())
    assert "\n" not in str(info.value)


def _zeros_for(model: bytes) -> list[np.ndarray]:
    from tinyadapt.convert.tflite_reader import read_tflite
    g = read_tflite(model)
    return [np.zeros(g.tensors[i].shape, np.int8) for i in g.inputs]


@pytest.mark.parametrize("name", ["pool_quant_differs", "pool_zero_point_differs", "concat_scale_differs",
                                  "concat_zp_differs", "concat_relu", "padv2_value_quant"])
def test_tflm_rejects_these_too(name):
    """The quantization/activation rules the converter enforces are TFLM's own."""
    model = ERROR_CASES[name][0]()
    with pytest.raises(RuntimeError, match="rejected the model"):
        run_tflm(model, _zeros_for(model))


# --------------------------------------------------------------------------- engine-side checks
def _tamper(blob: bytes, field_index: int, value: int, op_index: int = 0) -> bytes:
    """The blob with int32 field `field_index` of op `op_index`'s params replaced, CRC fixed."""
    header = _HEADER.unpack_from(blob, 0)
    ops_off, data_off = header[12], header[14]
    p_off = _OP.unpack_from(blob, ops_off + op_index * bf.OP_REC_SIZE)[4]
    out = bytearray(blob)
    struct.pack_into("<i", out, data_off + p_off + 4 * field_index, value)
    struct.pack_into("<I", out, 12, zlib.crc32(bytes(out[bf.CRC_START:])) & 0xFFFFFFFF)
    return bytes(out)


def _pool_blob(kind="AVERAGE_POOL_2D"):
    return convert(_single(kind, [1, 5, 5, 2], [1, 3, 3, 2], filter_h=3, filter_w=3, stride_h=2, stride_w=2,
                           padding="SAME")).blob


# Pool params: stride_h, stride_w, filter_h, filter_w, pad_h, pad_w, act_min, act_max.
CORRUPT = {
    "pool_stride0": (_pool_blob, 0, 0),
    "pool_filter0": (_pool_blob, 3, 0),
    "pool_pad_ge_filter": (_pool_blob, 4, 3),
    "pool_pad_negative": (_pool_blob, 5, -1),
    "pool_window_off_input": (_pool_blob, 1, 5),
    "pool_huge_filter": (_pool_blob, 2, 2**31 - 1),
    "pool_act_max": (_pool_blob, 7, 128),
    "maxpool_stride0": (lambda: _pool_blob("MAX_POOL_2D"), 1, 0),
    # Pad params: ndim, pad_value, before[6], after[6].
    "pad_ndim": (lambda: convert(_single("PAD", [2, 3], [4, 3], paddings=[[1, 1], [0, 0]])).blob, 0, 3),
    "pad_negative": (lambda: convert(_single("PAD", [2, 3], [4, 3], paddings=[[1, 1], [0, 0]])).blob, 2, -1),
    "pad_mismatch": (lambda: convert(_single("PAD", [2, 3], [4, 3], paddings=[[1, 1], [0, 0]])).blob, 3, 1),
    "pad_value": (lambda: convert(_single("PAD", [2, 3], [4, 3], paddings=[[1, 1], [0, 0]])).blob, 1, 300),
    # Mean params: ndim, axis_mask, input_zp, output_zp, multiplier, shift.
    "mean_mask": (lambda: convert(_single("MEAN", [2, 3, 4], [2], axis=[1, 2])).blob, 1, 0b1000),
    "mean_shift": (lambda: convert(_single("MEAN", [2, 3, 4], [2], axis=[1, 2])).blob, 5, 40),
    "mean_output": (lambda: convert(_single("MEAN", [2, 3, 4], [2], axis=[1, 2])).blob, 1, 0b100),
    # Transpose params: ndim, perm[6].
    "transpose_dup": (lambda: convert(_single("TRANSPOSE", [2, 3, 4], [4, 3, 2], perm=[2, 1, 0])).blob, 1, 1),
    "transpose_range": (lambda: convert(_single("TRANSPOSE", [2, 3, 4], [4, 3, 2], perm=[2, 1, 0])).blob, 3, 3),
    # Concat params: axis.
    "concat_axis": (lambda: convert(_concat_model()).blob, 0, 2),
    "concat_axis_shape": (lambda: convert(_concat_model()).blob, 0, 0),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_engine_rejects_corrupt_params(name):
    make, field, value = CORRUPT[name]
    blob = make()
    HostEngine(blob)  # the untouched blob loads
    with pytest.raises(EngineError, match="TA_ERR_(CORRUPT|SHAPE)"):
        HostEngine(_tamper(blob, field, value))


# --------------------------------------------------------------------------- sanitizers
def _random_blobs():
    gens = [lambda i: pool_case(100_000 + i, "AVERAGE_POOL_2D")[0],
            lambda i: pool_case(110_000 + i, "MAX_POOL_2D")[0],
            lambda i: pad_case(200_000 + i)[0], lambda i: mean_case(300_000 + i)[0],
            lambda i: reshape_case(400_000 + i)[0], lambda i: transpose_case(500_000 + i)[0],
            lambda i: concat_case(600_000 + i)[0]]
    for g in gens:
        for i in range(N_FUZZ_MODELS_PER_OP):
            yield convert(g(i)).blob


def test_corrupt_params_give_status_codes_under_sanitizers(tmp_path):
    """Random parameter fields of these ops set to hostile values: prepare must reject
    whatever eval cannot run safely (ASan/UBSan build of the loader + engine)."""
    out = BUILD_DIR / "firmware-sanitize"
    proc = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "blob-check", f"BUILD={out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rng = np.random.default_rng(77)
    hostile = [0, -1, 1, 2, 3, 5, 6, 7, 31, 32, 127, 128, -128, -129, 2**31 - 1, -2**31]
    good, paths = [], []
    for m, blob in enumerate(_random_blobs()):
        p = tmp_path / f"m{m}.bin"
        p.write_bytes(blob)
        good.append(str(p))
        paths.append(p)
        header = _HEADER.unpack_from(blob, 0)
        ops_off, data_off, n_ops = header[12], header[14], header[7]
        for k in range(N_FUZZ_CORRUPTIONS):
            op = int(rng.integers(n_ops))
            p_off, p_size = _OP.unpack_from(blob, ops_off + op * bf.OP_REC_SIZE)[4:6]
            if p_size == 0:
                continue
            value = int(rng.choice(hostile)) if rng.random() < 0.8 else int(rng.integers(-2**31, 2**31))
            bad = bytearray(blob)
            struct.pack_into("<i", bad, data_off + p_off + 4 * int(rng.integers(p_size // 4)), value)
            struct.pack_into("<I", bad, 12, zlib.crc32(bytes(bad[bf.CRC_START:])) & 0xFFFFFFFF)
            q = tmp_path / f"m{m}_{k}.bin"
            q.write_bytes(bytes(bad))
            paths.append(q)
    results = {}
    for start in range(0, len(paths), 500):
        proc = subprocess.run([str(out / "sanitize" / "ta_blob_check")] + [str(p) for p in paths[start:start + 500]],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"sanitizer or crash:\n{proc.stderr[-3000:]}"
        for line in proc.stdout.splitlines():
            path, status = line.rsplit(" ", 1)
            results[path] = status
    assert len(results) == len(paths)
    assert all(results[p] == "TA_OK" for p in good)
    statuses = set(results.values())
    assert statuses <= {"TA_OK", "TA_ERR_CORRUPT", "TA_ERR_SHAPE"}, statuses
    assert {"TA_ERR_CORRUPT", "TA_ERR_SHAPE"} <= statuses


# --------------------------------------------------------------------------- kernels (ctypes)
class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def _i32(*v):
    return (ctypes.c_int32 * len(v))(*v)


def _buf(n):
    return (ctypes.c_int8 * max(n, 1))()


TA_OK, TA_ERR_ARG = 0, -1


def test_kernels_validate_arguments():
    lib = library()
    pool = _i32(1, 1, 2, 2, 0, 0, -128, 127)  # stride, filter, pad, act
    d_in, d_out = Dims(1, 2, 2, 1), Dims(1, 1, 1, 1)
    for fn in (lib.ta_avgpool_s8, lib.ta_maxpool_s8):
        assert fn(pool, ctypes.byref(d_in), _buf(4), ctypes.byref(d_out), _buf(1)) == TA_OK
        assert fn(None, ctypes.byref(d_in), _buf(4), ctypes.byref(d_out), _buf(1)) == TA_ERR_ARG
        assert fn(pool, ctypes.byref(d_in), _buf(4), ctypes.byref(Dims(1, 1, 1, 2)), _buf(2)) == TA_ERR_ARG
        assert fn(_i32(0, 1, 2, 2, 0, 0, -128, 127), ctypes.byref(d_in), _buf(4), ctypes.byref(d_out),
                  _buf(1)) == TA_ERR_ARG
    # A window wholly outside the input: nothing to average (TFLM fails the same way).
    assert lib.ta_avgpool_s8(_i32(1, 1, 1, 1, 5, 0, -128, 127), ctypes.byref(d_in), _buf(4),
                             ctypes.byref(d_out), _buf(1)) == TA_ERR_ARG

    dims, lo, hi = _i32(2, 3), _i32(1, 0), _i32(0, 2)
    assert lib.ta_pad_s8(2, dims, lo, hi, _buf(6), ctypes.c_int8(5), _buf(15)) == TA_OK
    assert lib.ta_pad_s8(2, dims, _i32(-1, 0), hi, _buf(6), ctypes.c_int8(5), _buf(15)) == TA_ERR_ARG
    assert lib.ta_pad_s8(7, dims, lo, hi, _buf(6), ctypes.c_int8(5), _buf(15)) == TA_ERR_ARG
    assert lib.ta_pad_s8(2, dims, lo, hi, None, ctypes.c_int8(5), _buf(15)) == TA_ERR_ARG

    assert lib.ta_transpose_s8(2, dims, _i32(1, 0), _buf(6), _buf(6)) == TA_OK
    assert lib.ta_transpose_s8(2, dims, _i32(1, 1), _buf(6), _buf(6)) == TA_ERR_ARG
    assert lib.ta_transpose_s8(2, dims, _i32(0, 2), _buf(6), _buf(6)) == TA_ERR_ARG
    assert lib.ta_transpose_s8(0, dims, _i32(0, 1), _buf(6), _buf(6)) == TA_ERR_ARG

    mean = _i32(2, 0b10, 0, 0, 1 << 30, 1)  # ndim, mask, zps, multiplier, shift
    assert lib.ta_mean_s8(mean, dims, _buf(6), _buf(2)) == TA_OK
    assert lib.ta_mean_s8(_i32(2, 0b100, 0, 0, 1 << 30, 1), dims, _buf(6), _buf(2)) == TA_ERR_ARG
    assert lib.ta_mean_s8(_i32(2, 0b10, 0, 0, 1 << 30, 32), dims, _buf(6), _buf(2)) == TA_ERR_ARG
    assert lib.ta_mean_s8(mean, None, _buf(6), _buf(2)) == TA_ERR_ARG

    a, b_ = _buf(2), _buf(4)
    ptrs = (ctypes.c_void_p * 2)(ctypes.addressof(a), ctypes.addressof(b_))
    assert lib.ta_concat_s8(2, ptrs, _i32(1, 2), 2, _buf(6)) == TA_OK
    assert lib.ta_concat_s8(2, ptrs, _i32(1, 0), 2, _buf(6)) == TA_ERR_ARG
    assert lib.ta_concat_s8(2, (ctypes.c_void_p * 2)(ctypes.addressof(a), None), _i32(1, 2), 2,
                            _buf(6)) == TA_ERR_ARG
    assert lib.ta_concat_s8(0, ptrs, _i32(1, 2), 2, _buf(6)) == TA_ERR_ARG


def test_kernel_values_small():
    """Hand-checked values through the kernels directly."""
    lib = library()
    # Average of {1, 2} is 1.5 -> 2; of {-1, -2} is -1.5 -> -2 (half away from zero).
    out = _buf(2)
    inp = (ctypes.c_int8 * 4)(1, -1, 2, -2)  # [1, 1, 2, 2] NHWC: two pixels, two channels
    assert lib.ta_avgpool_s8(_i32(1, 1, 1, 2, 0, 0, -128, 127), ctypes.byref(Dims(1, 1, 2, 2)), inp,
                             ctypes.byref(Dims(1, 1, 1, 2)), out) == TA_OK
    assert list(out) == [2, -2]
    # PAD [2, 3] by ((1, 0), (0, 2)) with 5.
    src = (ctypes.c_int8 * 6)(*range(1, 7))
    dst = _buf(15)
    assert lib.ta_pad_s8(2, _i32(2, 3), _i32(1, 0), _i32(0, 2), src, ctypes.c_int8(5), dst) == TA_OK
    assert list(dst) == [5, 5, 5, 5, 5, 1, 2, 3, 5, 5, 4, 5, 6, 5, 5]
