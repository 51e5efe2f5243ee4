"""Self-test of tests/support: the flatbuffer model builder and the two
reference interpreters (tflite-runtime BUILTIN_REF and TFLM).

Besides "both agree", a few tests pin down where the two references differ
(or refuse a model) -- our engine has to behave like TFLM there.
"""

from pathlib import Path

import numpy as np
import pytest

from tests.support import (
    InterpreterRejected,
    ModelBuilder,
    run_tflite,
    run_tflm,
    tflm_arena_allocations,
    tflm_arena_head,
)
from tests.support.paths import shared_model
from tests.support.tflite_builder import schema



def r8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def both(model, inputs):
    """Run on both references, assert bit-exact agreement, return TFLM's outputs."""
    a = run_tflite(model, inputs)
    b = run_tflm(model, inputs)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y), f"max diff {np.abs(x.astype(np.int64) - y.astype(np.int64)).max()}"
    return b


def unary_model(op, in_shape, out_shape, iq=(0.05, -3), oq=(0.1, 2), **opts):
    b = ModelBuilder()
    x = b.input(in_shape, scale=iq[0], zero_point=iq[1])
    y = b.tensor(out_shape, scale=oq[0], zero_point=oq[1])
    b.op(op, [x], [y], **opts)
    b.output(y)
    return b.build()


# ------------------------------------------------------------------ builder
def test_builder_structure():
    b = ModelBuilder()
    x = b.input([1, 10], scale=0.05, zero_point=-3)
    w = b.const(np.ones((4, 10), np.int8), scale=[0.1, 0.2, 0.3, 0.4])
    y = b.tensor([1, 4], scale=0.1, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, -1], [y])
    y2 = b.tensor([1, 4], scale=0.1, zero_point=0)
    b.op(200, [y], [y2])  # raw builtin code > 127
    b.output(y2)
    data = b.build()
    assert data[4:8] == b"TFL3"
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    assert m.version == 3
    assert m.buffers[0].data is None and len(m.buffers) == 2
    sg = m.subgraphs[0]
    assert list(sg.inputs) == [x] and list(sg.outputs) == [y2]
    assert list(sg.operators[0].inputs) == [x, w, -1]
    assert sg.operators[0].builtinOptionsType == schema.BuiltinOptions.FullyConnectedOptions
    codes = [(c.deprecatedBuiltinCode, c.builtinCode) for c in m.operatorCodes]
    assert codes == [(9, 9), (127, 200)]
    wq = sg.tensors[w].quantization
    assert np.allclose(wq.scale, [0.1, 0.2, 0.3, 0.4]) and list(wq.zeroPoint) == [0] * 4
    assert sg.tensors[w].buffer == 1 and sg.tensors[x].buffer == 0
    assert sg.tensors[x].shape.dtype == np.int32


# ------------------------------------------------------- bit-exact agreement
@pytest.mark.parametrize("padding,stride,dilation,act", [
    ("SAME", 1, 1, "RELU"), ("VALID", 2, 1, "RELU6"), ("VALID", 1, 2, "NONE")])
def test_conv2d_per_channel(padding, stride, dilation, act):
    rng = np.random.default_rng(1)
    cin, cout, n = 3, 5, 9
    ws = rng.uniform(0.005, 0.02, cout).astype(np.float32)
    b = ModelBuilder()
    x = b.input([1, n, n, cin], scale=0.05, zero_point=-3)
    w = b.const(r8(rng, (cout, 3, 3, cin)), scale=ws, quantized_dimension=0)
    bias = b.const(rng.integers(-2000, 2000, cout).astype(np.int32), scale=0.05 * ws)
    eff = 1 + 2 * dilation
    h = -(-n // stride) if padding == "SAME" else (n - eff) // stride + 1
    y = b.tensor([1, h, h, cout], scale=0.12, zero_point=4)
    b.op("CONV_2D", [x, w, bias], [y], padding=padding, stride_h=stride, stride_w=stride,
         dilation_h=dilation, dilation_w=dilation, activation=act)
    b.output(y)
    out = both(b.build(), [r8(rng, (2, n, n, cin))])[0]  # batch of 2, run one at a time
    assert out.shape == (2, h, h, cout)
    assert len(np.unique(out)) > 10  # not saturated / degenerate


@pytest.mark.parametrize("with_bias", [True, False])
def test_depthwise_depth_multiplier_2(with_bias):
    rng = np.random.default_rng(2)
    cin, dm = 3, 2
    ws = rng.uniform(0.005, 0.03, cin * dm).astype(np.float32)
    b = ModelBuilder()
    x = b.input([1, 7, 7, cin], scale=0.05, zero_point=-3)
    w = b.const(r8(rng, (1, 3, 3, cin * dm)), scale=ws, quantized_dimension=3)
    ins = [x, w]
    if with_bias:
        ins.append(b.const(rng.integers(-2000, 2000, cin * dm).astype(np.int32), scale=0.05 * ws))
    # (no-bias must be a 2-input op: bias index -1 segfaults TFLM, see below)
    y = b.tensor([1, 4, 4, cin * dm], scale=0.1, zero_point=-2)
    b.op("DEPTHWISE_CONV_2D", ins, [y], padding="SAME", stride_h=2, stride_w=2,
         depth_multiplier=dm, activation="RELU")
    b.output(y)
    both(b.build(), [r8(rng, (2, 7, 7, cin))])


def test_depthwise_bias_minus_one_is_refused_not_crashing():
    b = ModelBuilder()
    x = b.input([1, 4, 4, 3], scale=0.05, zero_point=-3)
    w = b.const(np.ones((1, 1, 1, 3), np.int8), scale=0.01)
    y = b.tensor([1, 4, 4, 3], scale=0.1, zero_point=0)
    b.op("DEPTHWISE_CONV_2D", [x, w, -1], [y])
    b.output(y)
    with pytest.raises(InterpreterRejected, match="segfaults"):
        run_tflm(b.build(), [np.zeros((1, 4, 4, 3), np.int8)])


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fully_connected(per_channel, with_bias):
    rng = np.random.default_rng(3)
    # Widely spread per-channel scales: using only scale[0] would be caught.
    ws = (np.float32(0.001) * 2.0 ** np.arange(6)).astype(np.float32) if per_channel else np.float32(0.01)
    wq = r8(rng, (6, 10))
    b = ModelBuilder()
    x = b.input([1, 10], scale=0.05, zero_point=-3)
    w = b.const(wq, scale=ws, quantized_dimension=0)
    bias = b.const(rng.integers(-500, 500, 6).astype(np.int32), scale=np.float32(0.05) * ws) if with_bias else -1
    y = b.tensor([1, 6], scale=0.1, zero_point=-1)
    b.op("FULLY_CONNECTED", [x, w, bias], [y])
    b.output(y)
    xs = r8(rng, (4, 10))
    out = both(b.build(), [xs])[0]
    if per_channel and not with_bias:
        acc = (xs.astype(np.int64) + 3) @ wq.T.astype(np.int64)
        expect = np.clip(np.round(acc * 0.05 * ws / 0.1) - 1, -128, 127)
        assert np.abs(out - expect).max() <= 1


def test_fully_connected_keep_num_dims():
    rng = np.random.default_rng(4)
    for keep, oshape in ((True, [1, 4, 6]), (False, [4, 6])):
        b = ModelBuilder()
        x = b.input([1, 4, 10], scale=0.05, zero_point=-3)
        w = b.const(r8(rng, (6, 10)), scale=0.01)
        y = b.tensor(oshape, scale=0.1, zero_point=-1)
        b.op("FULLY_CONNECTED", [x, w, -1], [y], keep_num_dims=keep)
        b.output(y)
        assert both(b.build(), [r8(rng, (1, 4, 10))])[0].shape == tuple(oshape)


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_binary_broadcast(op):
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x1 = b.input([1, 4, 1, 3], scale=0.05, zero_point=-3)
    x2 = b.input([1, 1, 5, 3], scale=0.03, zero_point=7)
    y = b.tensor([1, 4, 5, 3], scale=0.07, zero_point=-5)
    b.op(op, [x1, x2], [y], activation="RELU")
    b.output(y)
    both(b.build(), [r8(rng, (3, 4, 1, 3)), r8(rng, (3, 1, 5, 3))])


def test_softmax():
    rng = np.random.default_rng(6)
    m = unary_model("SOFTMAX", [1, 2, 10], [1, 2, 10], iq=(0.1, 3), oq=(1 / 256, -128), beta=0.7)
    out = both(m, [r8(rng, (1, 2, 10))])[0]
    assert abs(int(out.astype(np.int64).sum(-1).max()) + 10 * 128 - 256) <= 10


def test_quantize_conv_dequantize_float_io():
    rng = np.random.default_rng(7)
    b = ModelBuilder()
    x = b.input([1, 6, 6, 2], dtype=np.float32)
    q = b.tensor([1, 6, 6, 2], scale=0.02, zero_point=-1)
    b.op("QUANTIZE", [x], [q])
    w = b.const(r8(rng, (1, 3, 3, 2)), scale=[0.01, 0.02], quantized_dimension=3)
    c = b.tensor([1, 6, 6, 2], scale=0.05, zero_point=0)
    b.op("DEPTHWISE_CONV_2D", [q, w], [c], padding="SAME")
    y = b.tensor([1, 6, 6, 2], dtype=np.float32)
    b.op("DEQUANTIZE", [c], [y])
    b.output(y)
    out = both(b.build(), [rng.normal(0, 1, (2, 6, 6, 2)).astype(np.float32)])[0]
    assert out.dtype == np.float32


@pytest.mark.parametrize("keep_dims", [True, False])
@pytest.mark.parametrize("oq", [(0.05, -3), (0.02, 6)])
def test_mean_over_hw(keep_dims, oq):
    rng = np.random.default_rng(8)
    m = unary_model("MEAN", [1, 5, 5, 8], [1, 1, 1, 8] if keep_dims else [1, 8],
                    iq=(0.05, -3), oq=oq, axis=[1, 2], keep_dims=keep_dims)
    xs = r8(rng, (2, 5, 5, 8))
    out = both(m, [xs])[0]
    ref = np.clip(np.round(((xs + 3.0) * 0.05).mean(axis=(1, 2)) / oq[0]) + oq[1], -128, 127)
    assert np.abs(out.reshape(2, 8) - ref).max() <= 1


@pytest.mark.parametrize("op,in_shape,out_shape,iq,oq,opts", [
    ("AVERAGE_POOL_2D", [1, 8, 8, 3], [1, 4, 4, 3], (0.05, -3), (0.05, -3),
     dict(filter_h=3, filter_w=3, stride_h=2, stride_w=2, padding="SAME")),
    ("MAX_POOL_2D", [1, 8, 8, 3], [1, 4, 4, 3], (0.05, -3), (0.05, -3),
     dict(filter_h=2, filter_w=2, activation="RELU")),
    ("PAD", [1, 4, 4, 3], [1, 6, 7, 3], (0.05, -3), (0.05, -3),
     dict(paddings=[[0, 0], [1, 1], [2, 1], [0, 0]])),
    ("PADV2", [1, 4, 4, 3], [1, 6, 7, 3], (0.05, -3), (0.05, -3),
     dict(paddings=[[0, 0], [1, 1], [2, 1], [0, 0]], constant_value=-128)),
    ("RESHAPE", [1, 4, 4, 3], [1, 48], (0.05, -3), (0.05, -3), dict(new_shape=[1, -1])),
    ("TRANSPOSE", [1, 4, 5, 3], [1, 3, 4, 5], (0.05, -3), (0.05, -3), dict(perm=[0, 3, 1, 2])),
    ("LOGISTIC", [1, 10], [1, 10], (0.1, 3), (1 / 256, -128), {}),
    ("HARD_SWISH", [1, 4, 4, 3], [1, 4, 4, 3], (0.05, -3), (0.03, -50), {}),
    ("RELU", [1, 4, 4, 3], [1, 4, 4, 3], (0.05, -3), (0.1, 2), {}),
    ("RELU6", [1, 4, 4, 3], [1, 4, 4, 3], (0.05, -3), (0.05, -3), {}),
    ("QUANTIZE", [1, 10], [1, 10], (0.05, -3), (0.03, 4), {}),  # int8 -> int8 requantize
])
def test_other_ops_agree(op, in_shape, out_shape, iq, oq, opts):
    rng = np.random.default_rng(9)
    both(unary_model(op, in_shape, out_shape, iq, oq, **opts), [r8(rng, [2] + in_shape[1:])])


def test_multiple_inputs_and_outputs_with_batch():
    rng = np.random.default_rng(10)
    b = ModelBuilder()
    x1 = b.input([1, 8], scale=0.05, zero_point=-3)
    x2 = b.input([1, 4], scale=0.05, zero_point=-3)
    y1 = b.tensor([1, 12], scale=0.05, zero_point=-3)
    b.op("CONCATENATION", [x1, x2], [y1], axis=1)
    y2 = b.tensor([1, 8], scale=0.07, zero_point=1)
    b.op("QUANTIZE", [x1], [y2])
    b.output(y2, y1)
    i1, i2 = r8(rng, (3, 8)), r8(rng, (3, 4))
    o2, o1 = both(b.build(), [i1, i2])
    assert o1.shape == (3, 12) and np.array_equal(o1, np.concatenate([i1, i2], 1))
    assert o2.shape == (3, 8)


# ------------------------------------------- where the references differ
def concat_model(in_q, out_q):
    b = ModelBuilder()
    xs = [b.input([1, 2, 2, 3], scale=s, zero_point=z) for s, z in in_q]
    y = b.tensor([1, 2, 2, 3 * len(in_q)], scale=out_q[0], zero_point=out_q[1])
    b.op("CONCATENATION", xs, [y], axis=3)
    b.output(y)
    return b.build(), [np.zeros((1, 2, 2, 3), np.int8)] * len(in_q)


@pytest.mark.parametrize("in_q,out_q", [
    ([(0.05, -3), (0.02, 5)], (0.07, -1)),   # all different
    ([(0.05, -3), (0.05, -3)], (0.07, -1)),  # inputs agree, output differs
    ([(0.05, -3), (0.05, 4)], (0.05, -3)),   # same scale, one zero point differs
])
def test_concatenation_requantizing_is_refused_by_both(in_q, out_q):
    model, xs = concat_model(in_q, out_q)
    for run in (run_tflite, run_tflm):
        with pytest.raises(InterpreterRejected, match="CONCATENATION"):
            run(model, xs)


def test_concatenation_with_activation_is_refused_by_both():
    b = ModelBuilder()
    xs = [b.input([1, 4], scale=0.05, zero_point=-3) for _ in range(2)]
    y = b.tensor([1, 8], scale=0.05, zero_point=-3)
    b.op("CONCATENATION", xs, [y], axis=1, activation="RELU")
    b.output(y)
    for run in (run_tflite, run_tflm):
        with pytest.raises(InterpreterRejected, match="activation"):
            run(b.build(), [np.zeros((1, 4), np.int8)] * 2)


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("oq", [(0.1, 2), (0.05, 5)])
def test_pool_with_requantization_tflm_refuses(op, oq):
    m = unary_model(op, [1, 4, 4, 3], [1, 2, 2, 3], iq=(0.05, -3), oq=oq, filter_h=2, filter_w=2)
    x = [np.zeros((1, 4, 4, 3), np.int8)]
    run_tflite(m, x)  # tflite-runtime accepts (ignores the output quantization)
    with pytest.raises(InterpreterRejected, match="pooling_common"):
        run_tflm(m, x)


def test_relu6_tflm_ignores_output_quantization():
    iq, oq = (0.05, -3), (0.1, 2)
    m = unary_model("RELU6", [1, 256], [1, 256], iq=iq, oq=oq)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    tflm = run_tflm(m, [x])[0].astype(np.int64)
    tfl = run_tflite(m, [x])[0].astype(np.int64)
    # TFLM clamps in the *input* domain to [zp_in, zp_in + round(6/s_in)], output params unused.
    assert np.array_equal(tflm[0], np.clip(x[0].astype(np.int64), iq[1], iq[1] + round(6 / iq[0])))
    # tflite-runtime requantizes to the output params: they disagree.
    assert not np.array_equal(tflm, tfl)


def test_conv_without_bias_only_tflm_accepts():
    rng = np.random.default_rng(11)
    for with_minus_one in (True, False):
        b = ModelBuilder()
        x = b.input([1, 4, 4, 3], scale=0.05, zero_point=-3)
        w = b.const(r8(rng, (2, 1, 1, 3)), scale=[0.01, 0.02])
        y = b.tensor([1, 4, 4, 2], scale=0.1, zero_point=0)
        b.op("CONV_2D", [x, w, -1] if with_minus_one else [x, w], [y])
        b.output(y)
        run_tflm(b.build(), [r8(rng, (1, 4, 4, 3))])
        with pytest.raises(InterpreterRejected):
            run_tflite(b.build(), [r8(rng, (1, 4, 4, 3))])


def test_unknown_builtin_code_is_refused():
    b = ModelBuilder()
    x = b.input([1, 10], scale=0.05, zero_point=-3)
    y = b.tensor([1, 10], scale=0.05, zero_point=-3)
    b.op(200, [x], [y])
    b.output(y)
    x0 = [np.zeros((1, 10), np.int8)]
    with pytest.raises(InterpreterRejected, match="out of range"):
        run_tflite(b.build(), x0)
    with pytest.raises(InterpreterRejected, match="Didn't find op"):
        run_tflm(b.build(), x0)


def test_input_checks():
    m = unary_model("RELU", [1, 10], [1, 10])
    with pytest.raises(TypeError):
        run_tflm(m, [np.zeros((1, 10), np.float32)])
    with pytest.raises(ValueError):
        run_tflite(m, [np.zeros((1, 11), np.int8)])
    with pytest.raises(ValueError):
        run_tflm(m, [])


# ------------------------------------------------------------------- arena
def test_tflm_arena_micro_speech():
    data = shared_model("micro_speech_quantized.tflite").read_bytes()
    head = tflm_arena_head(data)
    assert isinstance(head, int) and head > 0
    alloc = tflm_arena_allocations(data)
    assert alloc["head"] == head and alloc["total"] == alloc["head"] + alloc["tail"]
    x = np.random.default_rng(12).integers(-128, 128, (2, 1960)).astype(np.int8)
    # "total" is exactly the smallest arena TFLM accepts.
    out = run_tflm(data, [x], arena_size=alloc["total"])
    assert np.array_equal(out[0], run_tflite(data, [x])[0])
    with pytest.raises(InterpreterRejected, match="allocate"):
        run_tflm(data, [x], arena_size=alloc["total"] - 1)


def test_tflm_arena_grows_automatically():
    # 256 KiB activations in and out: more than the initial 64 KiB guess.
    m = unary_model("RELU", [1, 128, 128, 16], [1, 128, 128, 16], oq=(0.05, -3))
    assert tflm_arena_head(m) == 2 * 128 * 128 * 16
    out = run_tflm(m, [np.zeros((1, 128, 128, 16), np.int8)])[0]
    assert out.shape == (1, 128, 128, 16)
