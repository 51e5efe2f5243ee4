"""CONV_2D and DEPTHWISE_CONV_2D: bit-exact with TFLite Micro and tflite-runtime (BUILTIN_REF).

Seeded randomized sweeps (each case's seed and parameters are in its id and in every
failure message) over batch, spatial sizes (odd and even), filter sizes, strides,
dilations, SAME/VALID padding (stride-2 SAME on even sizes pads asymmetrically), depth
multipliers, fused activations, per-tensor and per-channel weights, log-uniform scales
over several decades (including effective scales > 1, i.e. left shifts) and zero points;
then hand-picked edge cases, converter error paths, engine-side rejection of corrupt
parameters, a double-precision multiplier regression case, every conv layer of the
example models cut out as a one-op model, and the kernel's sub-region (patch) contract
called directly through ctypes.

Reference quirks (so only TFLM is checked there): tflite-runtime 2.14 refuses an int8
CONV_2D without bias ("has_bias was not true") and any CONV_2D whose bias index is -1;
TFLM crashes on a DEPTHWISE_CONV_2D whose bias index is -1 (2 inputs work), so no-bias
models here use 2 inputs.
"""

from __future__ import annotations

import ctypes
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.support import ModelBuilder
from tests.support.paths import SHARED_MODELS
from tests.support.check import assert_bit_exact
from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.ops.conv2d import out_size, pad_before
from tinyadapt.convert.tflite_reader import read_tflite
from tinyadapt.engine.host import HostEngine, library
from tinyadapt.errors import EngineError, UnsupportedModelError

N_CASES_CONV = 500
N_CASES_DEPTHWISE = 500
SEED_CONV = 20_000
SEED_DEPTHWISE = 40_000
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


# --------------------------------------------------------------------------- cases
def _log_uniform(rng, lo_exp: float, hi_exp: float, size=None):
    return np.asarray(10.0 ** rng.uniform(lo_exp, hi_exp, size)).astype(np.float32)


def random_case(seed: int, depthwise: bool) -> dict:
    """One random, valid op configuration (shapes, options, quantization)."""
    rng = np.random.default_rng(seed)
    while True:
        c = dict(depthwise=depthwise)
        c["n"] = int(rng.choice([1, 1, 1, 1, 1, 2, 3]))
        c["in_h"], c["in_w"] = (int(v) for v in rng.integers(1, 13, 2))
        if depthwise:
            c["in_c"] = int(rng.choice([1, 1, 2, 3, 4, 5, 8, 16]))
            c["dm"] = int(rng.choice([1, 1, 1, 2, 3, 4, 8]))
            c["out_c"] = c["in_c"] * c["dm"]
        else:
            c["in_c"] = int(rng.choice([1, 2, 3, 4, 5, 8, 12, 16]))
            c["dm"] = 1
            c["out_c"] = int(rng.choice([1, 2, 3, 4, 6, 8, 16]))
        c["k_h"], c["k_w"] = (int(v) for v in rng.integers(1, 6, 2))
        c["stride_h"], c["stride_w"] = (int(v) for v in rng.choice([1, 1, 2, 2, 3], 2))
        c["dil_h"], c["dil_w"] = (int(v) for v in rng.choice([1, 1, 1, 2, 3], 2))
        c["padding"] = str(rng.choice(["SAME", "VALID"]))
        c["out_h"] = out_size(c["padding"], c["in_h"], c["k_h"], c["stride_h"], c["dil_h"])
        c["out_w"] = out_size(c["padding"], c["in_w"], c["k_w"], c["stride_w"], c["dil_w"])
        if c["out_h"] >= 1 and c["out_w"] >= 1:
            break
    c["activation"] = act = str(rng.choice(ACTIVATIONS))
    c["per_channel"] = bool(rng.random() < 0.6) and c["out_c"] > 1
    c["bias"] = bool(rng.random() < 0.8)
    n_scales = c["out_c"] if c["per_channel"] else 1
    c["w_scales"] = [float(s) for s in _log_uniform(rng, -4, -0.5, n_scales)]
    # Output quantization: a scale whose int8 range suits the activation's clamp (so the
    # clamp is neither everything nor nothing), ReLU outputs usually at zero point -128.
    span = {"RELU6": 6.0 / 255, "RELU_N1_TO_1": 2.0 / 255}.get(act, float(_log_uniform(rng, -3, 0)))
    c["out_scale"] = float(np.float32(span * 10.0 ** rng.uniform(-0.5, 0.5)))
    relu_like = act in ("RELU", "RELU6") and rng.random() < 0.5
    c["out_zp"] = -128 if relu_like else int(rng.integers(-128, 128))
    c["in_zp"] = int(rng.integers(-128, 128))
    taps = c["k_h"] * c["k_w"] * (1 if depthwise else c["in_c"])
    w_typ = float(np.exp(np.mean(np.log(c["w_scales"]))))
    if rng.random() < 0.85:
        # Input scale making the accumulator (about 5000 * sqrt(taps) in int units) land
        # around +-50 output quanta, then +-1 decade.
        effective = 50 / (5000 * np.sqrt(taps)) * 10.0 ** rng.uniform(-1, 1)
    else:
        # Any effective multiplier from 1e-9 (right shifts near 31) to ~30 (left shifts).
        effective = 10.0 ** rng.uniform(-9, 1.5)
    c["in_scale"] = float(np.float32(effective * c["out_scale"] / w_typ))
    c["w_full_range"] = bool(rng.random() < 0.2)  # include -128 in the weights
    c["bias_std"] = float(rng.choice([1e2, 5e3 * np.sqrt(taps), 1e6], p=[0.3, 0.6, 0.1]))
    c["data_seed"] = int(rng.integers(2**31))
    return c


def build_model(c: dict) -> tuple[bytes, list[np.ndarray]]:
    """The .tflite model for case `c` and one input."""
    rng = np.random.default_rng(c["data_seed"])
    b = ModelBuilder()
    x = b.input([c["n"], c["in_h"], c["in_w"], c["in_c"]], scale=c["in_scale"], zero_point=c["in_zp"])
    lo = -128 if c["w_full_range"] else -127
    if c["depthwise"]:
        w_shape, qdim = [1, c["k_h"], c["k_w"], c["out_c"]], 3
    else:
        w_shape, qdim = [c["out_c"], c["k_h"], c["k_w"], c["in_c"]], 0
    w_data = rng.integers(lo, 128, w_shape).astype(np.int8)
    w_scale = c["w_scales"] if c["per_channel"] else c["w_scales"][0]
    w = b.const(w_data, scale=w_scale, quantized_dimension=qdim)
    # Without bias the op gets 2 inputs: tflite-runtime rejects CONV_2D with bias index -1
    # ("Tensor at index 2 was optional but was expected") and TFLM crashes on
    # DEPTHWISE_CONV_2D with one (tests/support/reference.py refuses to run it).
    inputs = [x]
    if c["bias"]:
        bias_data = np.clip(rng.normal(0, c["bias_std"], c["out_c"]), -2**31, 2**31 - 1).astype(np.int32)
        bias_scale = [c["in_scale"] * s for s in c["w_scales"]] if c["per_channel"] else c["in_scale"] * c["w_scales"][0]
        inputs.append(b.const(bias_data, scale=bias_scale))
    y = b.tensor([c["n"], c["out_h"], c["out_w"], c["out_c"]], scale=c["out_scale"], zero_point=c["out_zp"])
    opts = dict(padding=c["padding"], stride_h=c["stride_h"], stride_w=c["stride_w"],
                dilation_h=c["dil_h"], dilation_w=c["dil_w"], activation=c["activation"])
    inputs.insert(1, w)
    if c["depthwise"]:
        b.op("DEPTHWISE_CONV_2D", inputs, [y], depth_multiplier=c["dm"], **opts)
    else:
        b.op("CONV_2D", inputs, [y], **opts)
    b.output(y)
    xin = rng.integers(-128, 128, [c["n"], c["in_h"], c["in_w"], c["in_c"]]).astype(np.int8)
    return b.build(), [xin]


def describe(c: dict) -> str:
    op = f"DW(dm={c['dm']})" if c["depthwise"] else "CONV"
    return (f"{op} in={[c['n'], c['in_h'], c['in_w'], c['in_c']]} k={c['k_h']}x{c['k_w']} "
            f"s={c['stride_h']}x{c['stride_w']} d={c['dil_h']}x{c['dil_w']} {c['padding']} "
            f"out={[c['n'], c['out_h'], c['out_w'], c['out_c']]} {c['activation']} "
            f"{'per-channel' if c['per_channel'] else 'per-tensor'} bias={c['bias']} "
            f"in_q=({c['in_scale']:.3g},{c['in_zp']}) out_q=({c['out_scale']:.3g},{c['out_zp']}) "
            f"w_scales[0]={c['w_scales'][0]:.3g}")


def check_case(c: dict, label: str) -> None:
    model, inputs = build_model(c)
    # tflite-runtime 2.14 refuses an int8 CONV_2D without bias (conv.cc: "has_bias was not
    # true"); TFLM runs it, and TFLM is the reference we must match.
    check_tflite = c["bias"] or c["depthwise"]
    assert_bit_exact(model, inputs, f"{label}: {describe(c)}", check_tflite=check_tflite)


# --------------------------------------------------------------------------- sweeps
@pytest.mark.parametrize("i", range(N_CASES_CONV))
def test_conv2d_random(i):
    seed = SEED_CONV + i
    check_case(random_case(seed, depthwise=False), f"CONV_2D seed={seed}")


@pytest.mark.parametrize("i", range(N_CASES_DEPTHWISE))
def test_depthwise_conv2d_random(i):
    seed = SEED_DEPTHWISE + i
    check_case(random_case(seed, depthwise=True), f"DEPTHWISE_CONV_2D seed={seed}")


def _edge(depthwise=False, **kw) -> dict:
    """A hand-made case: defaults overridden by kw; output size from TFLM's formula."""
    c = dict(depthwise=depthwise, n=1, in_h=8, in_w=8, in_c=3, dm=1, out_c=4, k_h=3, k_w=3,
             stride_h=1, stride_w=1, dil_h=1, dil_w=1, padding="SAME", activation="NONE",
             per_channel=True, bias=True, in_scale=0.02, in_zp=-5, out_zp=3,
             w_full_range=False, bias_std=3000.0, data_seed=7)
    c.update(kw)
    if depthwise:
        c["out_c"] = c["in_c"] * c["dm"]
    c["out_h"] = out_size(c["padding"], c["in_h"], c["k_h"], c["stride_h"], c["dil_h"])
    c["out_w"] = out_size(c["padding"], c["in_w"], c["k_w"], c["stride_w"], c["dil_w"])
    rng = np.random.default_rng(c["data_seed"])
    n_scales = c["out_c"] if c["per_channel"] else 1
    c.setdefault("w_scales", [float(s) for s in _log_uniform(rng, -3, -1.5, n_scales)])
    taps = c["k_h"] * c["k_w"] * (1 if depthwise else c["in_c"])
    c.setdefault("out_scale", float(np.float32(c["in_scale"] * c["w_scales"][0] * 100 * np.sqrt(taps))))
    return c


EDGE_CASES = {
    "conv stride-2 SAME even 8x8 (asymmetric pad)": _edge(stride_h=2, stride_w=2),
    "conv stride-2 SAME even 6x10, 4x4 filter": _edge(in_h=6, in_w=10, k_h=4, k_w=4, stride_h=2, stride_w=2),
    "conv 1x1": _edge(k_h=1, k_w=1, in_c=16, out_c=8),
    "conv filter larger than input (SAME)": _edge(in_h=2, in_w=3, k_h=5, k_w=5),
    "conv VALID exact fit": _edge(in_h=3, in_w=5, k_h=3, k_w=5, padding="VALID"),
    "conv dilation 2 SAME": _edge(dil_h=2, dil_w=2, in_h=9, in_w=7),
    "conv dilation + stride VALID": _edge(dil_h=2, dil_w=3, stride_h=2, stride_w=3, in_h=11, in_w=12,
                                         padding="VALID"),
    "conv batch 4": _edge(n=4, in_h=5, in_w=5),
    "conv per-tensor RELU6": _edge(per_channel=False, activation="RELU6"),
    "conv RELU_N1_TO_1 no bias": _edge(activation="RELU_N1_TO_1", bias=False),
    "conv 1-pixel image": _edge(in_h=1, in_w=1, k_h=3, k_w=3, in_c=5),
    "conv left shift (effective scale 7.5)": _edge(out_scale=float(np.float32(0.02 * 0.01 / 7.5)),
                                                  w_scales=[0.01] * 4),
    "conv deep 7x7x64 accumulation": _edge(in_c=64, k_h=7, k_w=7, in_h=7, in_w=7, out_c=2),
    "conv zero points at the extremes": _edge(in_zp=-128, out_zp=127, activation="RELU"),
    "dw 1 channel -> 8 (dm 8)": _edge(True, in_c=1, dm=8),
    "dw 1 channel -> 8 stride 2 VALID": _edge(True, in_c=1, dm=8, stride_h=2, stride_w=2, padding="VALID",
                                              in_h=9, in_w=9),
    "dw dm 1, 32 channels": _edge(True, in_c=32, dm=1),
    "dw dm 3 per-tensor": _edge(True, in_c=3, dm=3, per_channel=False),
    "dw per-tensor dm 1 many channels": _edge(True, in_c=12, dm=1, per_channel=False),
    "dw stride-2 SAME even (asymmetric pad)": _edge(True, in_c=4, dm=2, stride_h=2, stride_w=2),
    "dw dilation 3 SAME": _edge(True, in_c=2, dm=2, dil_h=3, dil_w=3, in_h=10, in_w=10),
    "dw filter larger than input": _edge(True, in_c=2, dm=1, in_h=2, in_w=2, k_h=5, k_w=5),
    "dw batch 3 RELU6": _edge(True, n=3, in_c=3, dm=2, activation="RELU6"),
    "dw 1x1": _edge(True, in_c=5, dm=2, k_h=1, k_w=1),
    "dw non-square 1x5 stride 1x2": _edge(True, in_c=3, dm=1, k_h=1, k_w=5, stride_w=2, in_h=4, in_w=11),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases(name):
    check_case(EDGE_CASES[name], name)


# A pointwise conv that keeps or narrows the channels writes over its input a chunk of pixels
# at a time, when that lowers the peak: chunks that do not divide the image, one channel,
# C_out == C_in, batches (pixels run on across images), and a fused clamp.
POINTWISE_IN_PLACE = {
    "narrowing 48 -> 7, 23x21 (last chunk partial)": _edge(in_h=23, in_w=21, in_c=48, out_c=7, k_h=1, k_w=1),
    "to one channel, 41x39": _edge(in_h=41, in_w=39, in_c=12, out_c=1, k_h=1, k_w=1, activation="RELU"),
    "C_out == C_in, 16x16x24, per-tensor": _edge(in_h=16, in_w=16, in_c=24, out_c=24, k_h=1, k_w=1,
                                                  per_channel=False),
    "batch 3, 96 -> 24, RELU6": _edge(n=3, in_h=9, in_w=10, in_c=96, out_c=24, k_h=1, k_w=1, activation="RELU6"),
    "VALID 1x1, 40 -> 33, 31x7": _edge(in_h=31, in_w=7, in_c=40, out_c=33, k_h=1, k_w=1, padding="VALID"),
}


@pytest.mark.parametrize("name", list(POINTWISE_IN_PLACE))
def test_pointwise_conv_in_place(name):
    c = POINTWISE_IN_PLACE[name]
    model_bytes, inputs = build_model(c)
    model = convert(model_bytes)
    assert 0 in model.plan.in_place, f"{name}: the planner did not put the output over the input"
    pixels = c["n"] * c["in_h"] * c["in_w"]
    assert model.peak_sram_bytes < pixels * (c["in_c"] + c["out_c"])  # less than input + output
    check_case(c, name)


def test_pointwise_conv_stays_out_of_place_when_that_is_no_larger():
    """In place costs a kernel call per chunk: it is taken only where it lowers the peak."""
    c = _edge(in_h=4, in_w=4, in_c=16, out_c=8, k_h=1, k_w=1)  # 128 B of output, <= a chunk of scratch
    model = convert(build_model(c)[0])
    assert 0 not in model.plan.in_place


def test_conv_with_absent_bias_index():
    """CONV_2D with inputs [x, w, -1]: TFLM runs it (tflite-runtime refuses it, and TFLM
    crashes on the same form of DEPTHWISE_CONV_2D, so only this one is checked)."""
    b = ModelBuilder()
    x = b.input([2, 5, 5, 2], scale=0.05, zero_point=3)
    w = b.const(np.arange(-20, 16, dtype=np.int8).reshape(2, 3, 3, 2), scale=[0.01, 0.02])
    y = b.tensor([2, 3, 3, 2], scale=0.05, zero_point=-2)
    b.op("CONV_2D", [x, w, -1], [y], padding="SAME", stride_h=2, stride_w=2, activation="RELU")
    b.output(y)
    xin = np.random.default_rng(0).integers(-128, 128, (2, 5, 5, 2)).astype(np.int8)
    assert_bit_exact(b.build(), [xin], "CONV_2D bias index -1", check_tflite=False)


def test_macs_and_params():
    """MACs = output elements * KH * KW * (C_in for CONV_2D, 1 for DEPTHWISE_CONV_2D), and
    the packed ta_conv_params_t for a stride-2 SAME conv on an even input (pad 0 top/left,
    the odd padding row/column falls at the bottom/right)."""
    conv = convert(_model(in_shape=(1, 6, 6, 4), out_shape=(1, 3, 3, 5), stride_h=2, stride_w=2,
                          activation="RELU"))
    assert conv.ops[0].macs == 1 * 3 * 3 * 5 * 3 * 3 * 4
    p = dict(zip(PARAM_FIELDS, struct.unpack("<11i", conv.ops[0].params)))
    assert p == dict(stride_h=2, stride_w=2, dilation_h=1, dilation_w=1, pad_top=0, pad_left=0,
                     depth_multiplier=1, input_offset=0, output_offset=0, act_min=0, act_max=127)
    dw = convert(_model("DEPTHWISE_CONV_2D", in_shape=(2, 7, 7, 1), w_shape=(1, 3, 3, 8),
                        out_shape=(2, 7, 7, 8), depth_multiplier=8, dilation_h=2))
    assert dw.ops[0].macs == 2 * 7 * 7 * 8 * 3 * 3
    p = dict(zip(PARAM_FIELDS, struct.unpack("<11i", dw.ops[0].params)))
    assert (p["pad_top"], p["pad_left"], p["depth_multiplier"], p["dilation_h"]) == (2, 1, 8, 2)


# --------------------------------------------------------------------------- real-model layers
REPO = Path(__file__).resolve().parents[1]
MODEL_FILES = sorted(REPO.glob("models/*/*.tflite")) + sorted(SHARED_MODELS.glob("*.tflite"))


def _real_conv_layers() -> list[tuple[str, Path, int]]:
    layers = []
    for path in MODEL_FILES:
        try:
            graph = read_tflite(path)
        except Exception:
            continue
        for op in graph.ops:
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                layers.append((f"{path.stem}-op{op.index}-{op.kind}", path, op.index))
    return layers


REAL_LAYERS = _real_conv_layers()


def _single_op_model(path: Path, op_index: int) -> tuple[bytes, list[np.ndarray], bool]:
    """One conv layer of a real model as a one-op model with its exact quantization."""
    graph = read_tflite(path)
    op = graph.ops[op_index]
    b = ModelBuilder()

    def quant(t):
        if t.scale is None:
            return dict(scale=None)
        per = len(t.scale) > 1
        return dict(scale=[float(v) for v in t.scale] if per else float(t.scale[0]),
                    zero_point=[int(v) for v in t.zero_point] if per else int(t.zero_point[0]))

    tx, tw, ty = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    x = b.input(list(tx.shape), **quant(tx))
    ins = [x, b.const(tw.data, quantized_dimension=tw.quantized_dimension, **quant(tw))]
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    if has_bias:
        tb = graph.tensors[op.inputs[2]]
        ins.append(b.const(tb.data, quantized_dimension=tb.quantized_dimension, **quant(tb)))
    y = b.tensor(list(ty.shape), **quant(ty))
    o = op.options
    opts = dict(padding=o["padding"], stride_h=o["stride_h"], stride_w=o["stride_w"],
                dilation_h=o.get("dilation_hfactor", 1), dilation_w=o.get("dilation_wfactor", 1),
                activation=o["activation"])
    if op.kind == "DEPTHWISE_CONV_2D":
        opts["depth_multiplier"] = o["depth_multiplier"]
    b.op(op.kind, ins, [y], **opts)
    b.output(y)
    xin = np.random.default_rng(op_index).integers(-128, 128, tx.shape).astype(np.int8)
    return b.build(), [xin], has_bias or op.kind == "DEPTHWISE_CONV_2D"


@pytest.mark.skipif(not REAL_LAYERS, reason="no example models in the repository")
@pytest.mark.parametrize("name,path,op_index", REAL_LAYERS, ids=[name for name, _, _ in REAL_LAYERS])
def test_real_model_layer(name, path, op_index):
    """Every CONV_2D / DEPTHWISE_CONV_2D of the example models, cut out with its exact
    quantization (e.g. micro_speech's 1-channel -> 8-channel depthwise), on random input."""
    model, inputs, check_tflite = _single_op_model(path, op_index)
    assert_bit_exact(model, inputs, name, check_tflite=check_tflite)


# --------------------------------------------------------------------------- converter errors
def _model(kind="CONV_2D", in_shape=(1, 6, 6, 4), w_shape=(5, 3, 3, 4), out_shape=(1, 6, 6, 5),
           w_scale=0.01, w_zp=None, qdim=None, w_const=True, in_dtype=np.int8, bias=True,
           **opts) -> bytes:
    b = ModelBuilder()
    x = b.input(list(in_shape), dtype=in_dtype, scale=0.05, zero_point=0)
    w_data = np.ones(w_shape, np.int8)
    if qdim is None:
        qdim = 3 if kind == "DEPTHWISE_CONV_2D" else 0
    if w_const:
        w = b.const(w_data, scale=w_scale, zero_point=w_zp, quantized_dimension=qdim)
    else:
        w = b.input(list(w_shape), scale=w_scale, zero_point=0 if w_zp is None else w_zp)
    out_c = w_shape[3] if kind == "DEPTHWISE_CONV_2D" else w_shape[0]
    bi = b.const(np.zeros(out_c, np.int32), scale=0.0005) if bias else -1
    y = b.tensor(list(out_shape), dtype=in_dtype, scale=0.1, zero_point=0)
    opts.setdefault("padding", "SAME")
    b.op(kind, [x, w, bi], [y], **opts)
    b.output(y)
    return b.build()


ERROR_CASES = {
    "grouped conv": (_model(w_shape=(5, 3, 3, 2)), "grouped convolution"),
    "filter depth mismatch": (_model(w_shape=(5, 3, 3, 3)), "does not match input depth"),
    "output shape mismatch": (_model(out_shape=(1, 5, 6, 5)), "does not match [1, 6, 6, 5]"),
    "VALID filter too large": (_model(in_shape=(1, 2, 2, 4), out_shape=(1, 1, 1, 5), padding="VALID"),
                               "does not fit"),
    "nonzero filter zero point": (_model(w_zp=3), "zero points must be 0"),
    "non-constant filter": (_model(w_const=False), "filter must be a constant"),
    "int16 activations": (_model(in_dtype=np.int16), "int16"),
    "wrong number of filter scales": (_model(w_scale=[0.01, 0.02]), "expected 1 (per-tensor) or 5"),
    "per-channel along the wrong axis": (_model(w_shape=(4, 3, 3, 4), out_shape=(1, 6, 6, 4),
                                                w_scale=[0.01] * 4, qdim=3),
                                         "quantized along dimension 0"),
    "dw depth_multiplier option mismatch": (_model("DEPTHWISE_CONV_2D", w_shape=(1, 3, 3, 8),
                                                   out_shape=(1, 6, 6, 8), depth_multiplier=3),
                                            "depth_multiplier option 3 does not match"),
    "dw filter channels not a multiple": (_model("DEPTHWISE_CONV_2D", w_shape=(1, 3, 3, 6),
                                                 out_shape=(1, 6, 6, 6), depth_multiplier=1),
                                          "not a multiple of input channels"),
    "dw filter not [1, KH, KW, C]": (_model("DEPTHWISE_CONV_2D", w_shape=(2, 3, 3, 4),
                                            out_shape=(1, 6, 6, 4)), "must be [1, KH, KW, C_out]"),
    "3-D input": (_model(in_shape=(6, 6, 4)), "must be 4-D"),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_converter_rejects(name):
    model, message = ERROR_CASES[name]
    with pytest.raises(UnsupportedModelError) as e:
        convert(model)
    text = str(e.value)
    assert message in text, text
    assert "\n" not in text
    assert "CONV_2D" in text or name == "int16 activations", text  # int16 is caught at the model input


def test_effective_scale_too_large_is_rejected():
    b = ModelBuilder()
    x = b.input([1, 4, 4, 1], scale=1e3, zero_point=0)
    w = b.const(np.ones((1, 1, 1, 1), np.int8), scale=1e3)
    y = b.tensor([1, 4, 4, 1], scale=1e-6, zero_point=0)
    b.op("CONV_2D", [x, w, -1], [y])
    b.output(y)
    with pytest.raises(UnsupportedModelError, match="too large"):
        convert(b.build())


# --------------------------------------------------------------------------- engine-side checks
PARAM_FIELDS = ["stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left",
                "depth_multiplier", "input_offset", "output_offset", "act_min", "act_max"]


def _tamper(blob: bytes, field: str, value: int) -> bytes:
    """The blob with one ta_conv_params_t field of its (only) conv op replaced, CRC fixed."""
    m_params = HostEngine(blob).info.ops[0].params
    at = blob.find(m_params)
    assert at > 0 and blob.find(m_params, at + 1) < 0
    out = bytearray(blob)
    struct.pack_into("<i", out, at + 4 * PARAM_FIELDS.index(field), value)
    struct.pack_into("<I", out, 12, zlib.crc32(bytes(out[bf.CRC_START:])) & 0xFFFFFFFF)
    return bytes(out)


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("field,value", [
    ("stride_h", 0), ("stride_w", -1), ("dilation_h", 0), ("pad_top", -1), ("pad_left", 1000),
    ("depth_multiplier", 2), ("input_offset", 1000), ("output_offset", -129), ("act_min", 100),
    ("act_max", 128), ("stride_w", 2**30),
])
def test_engine_rejects_corrupt_params(kind, field, value):
    if kind == "DEPTHWISE_CONV_2D":
        blob = convert(_model(kind, w_shape=(1, 3, 3, 4), out_shape=(1, 6, 6, 4), depth_multiplier=1)).blob
    else:
        blob = convert(_model()).blob
    HostEngine(blob)  # the untouched blob loads
    if field == "act_min":
        blob = _tamper(blob, "act_max", 50)  # so act_min = 100 > act_max
    with pytest.raises(EngineError, match="TA_ERR_(CORRUPT|SHAPE)"):
        HostEngine(_tamper(blob, field, value))


N_FUZZ = 300


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_engine_survives_random_params(kind):
    """Random values in random parameter fields: the engine either refuses the blob or runs
    it (never reads out of bounds; run under ASan/UBSan to check that part)."""
    if kind == "DEPTHWISE_CONV_2D":
        blob = convert(_model(kind, w_shape=(1, 3, 3, 4), out_shape=(1, 6, 6, 4), depth_multiplier=1)).blob
    else:
        blob = convert(_model()).blob
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)
    ran = 0
    for _ in range(N_FUZZ):
        field = PARAM_FIELDS[int(rng.integers(len(PARAM_FIELDS)))]
        value = int(rng.choice([rng.integers(-4, 8), rng.integers(-300, 300), rng.integers(-2**31, 2**31)]))
        try:
            engine = HostEngine(_tamper(blob, field, value))
        except EngineError:
            continue
        engine.invoke([x])
        ran += 1
    assert 0 < ran < N_FUZZ


# --------------------------------------------------------------------------- kernel (ctypes)
class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class Params(ctypes.Structure):
    _fields_ = [(f, ctypes.c_int32) for f in PARAM_FIELDS]


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _kernel(depthwise: bool, p: Params, x: np.ndarray, w: np.ndarray, bias, mult, shift,
            out: np.ndarray) -> int:
    fn = library().ta_depthwise_conv2d_s8 if depthwise else library().ta_conv2d_s8
    fn.restype = ctypes.c_int
    return fn(ctypes.byref(p), ctypes.byref(Dims(*x.shape)), _ptr(x), ctypes.byref(Dims(*w.shape)), _ptr(w),
              None if bias is None else _ptr(bias), _ptr(mult), _ptr(shift), ctypes.byref(Dims(*out.shape)),
              _ptr(out), None, 0)


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_kernel_on_sub_regions_matches_full_run(depthwise, seed):
    """Running the kernel on row band [r0, r1) of the output with just the input rows it
    reads (and pad_top shifted accordingly, possibly negative) gives the same bytes as the
    full run: the property a patch-based executor relies on."""
    rng = np.random.default_rng(seed)
    in_h, in_w, in_c = int(rng.integers(5, 14)), int(rng.integers(3, 9)), int(rng.integers(1, 5))
    k_h, k_w = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    s_h, d_h = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dm = int(rng.integers(1, 4)) if depthwise else 1
    out_c = in_c * dm if depthwise else int(rng.integers(1, 5))
    out_h = out_size("SAME", in_h, k_h, s_h, d_h)
    out_w = out_size("SAME", in_w, k_w, 1, 1)
    p = Params(s_h, 1, d_h, 1, pad_before(in_h, k_h, s_h, d_h, out_h), pad_before(in_w, k_w, 1, 1, out_w),
               dm, int(rng.integers(-127, 129)), int(rng.integers(-128, 128)), -128, 127)
    x = rng.integers(-128, 128, (2, in_h, in_w, in_c)).astype(np.int8)
    w_shape = (1, k_h, k_w, out_c) if depthwise else (out_c, k_h, k_w, in_c)
    w = rng.integers(-127, 128, w_shape).astype(np.int8)
    bias = rng.integers(-5000, 5000, out_c).astype(np.int32)
    mult = rng.integers(2**30, 2**31 - 1, out_c).astype(np.int32)
    shift = rng.integers(-12, -6, out_c).astype(np.int32)
    full = np.zeros((2, out_h, out_w, out_c), np.int8)
    assert _kernel(depthwise, p, x, w, bias, mult, shift, full) == 0
    for r0 in range(out_h):
        for r1 in range(r0 + 1, out_h + 1):
            # The rows the band reads, plus 0-2 spare rows on each side (a spare row above
            # makes the band's pad_top negative).
            first = max(0, r0 * s_h - p.pad_top - int(rng.integers(0, 3)))
            last = min(in_h, (r1 - 1) * s_h - p.pad_top + (k_h - 1) * d_h + 1 + int(rng.integers(0, 3)))
            band = np.ascontiguousarray(x[:, first:max(last, first + 1)])
            q = Params(*[getattr(p, f) for f in PARAM_FIELDS])
            # Local row oy' reads global row (oy' + r0) * s - pad + ky * d, i.e. band row
            # oy' * s - (pad - r0 * s + first): negative when the band starts inside the image.
            q.pad_top = p.pad_top - r0 * s_h + first
            part = np.zeros((2, r1 - r0, out_w, out_c), np.int8)
            assert _kernel(depthwise, q, band, w, bias, mult, shift, part) == 0
            np.testing.assert_array_equal(part, full[:, r0:r1], err_msg=f"seed={seed} rows [{r0},{r1})")


def test_kernel_rejects_bad_arguments():
    p = Params(1, 1, 1, 1, 0, 0, 1, 0, 0, -128, 127)
    x = np.zeros((1, 3, 3, 2), np.int8)
    w = np.zeros((4, 1, 1, 2), np.int8)
    mult = np.full(4, 2**30, np.int32)
    shift = np.zeros(4, np.int32)
    out = np.zeros((1, 3, 3, 4), np.int8)
    assert _kernel(False, p, x, w, None, mult, shift, out) == 0
    lib = library()
    assert lib.ta_conv2d_s8(None, ctypes.byref(Dims(*x.shape)), _ptr(x), ctypes.byref(Dims(*w.shape)), _ptr(w),
                            None, _ptr(mult), _ptr(shift), ctypes.byref(Dims(*out.shape)), _ptr(out), None,
                            0) == -1
    bad_shift = np.full(4, 32, np.int32)
    assert _kernel(False, p, x, w, None, mult, bad_shift, out) == -1
    assert _kernel(False, p, x, np.zeros((4, 1, 1, 3), np.int8), None, mult, shift, out) == -1  # grouped
    assert _kernel(True, p, x, np.zeros((1, 1, 1, 4), np.int8), None, mult, shift, out) == -1  # dm 1 != 4/2
    p.depth_multiplier = 2
    assert _kernel(True, p, x, np.zeros((1, 1, 1, 4), np.int8), None, mult, shift, out) == 0


def test_multiplier_is_computed_in_double_like_tflm():
    """TFLM computes input_scale * filter_scale / output_scale in double. For these float32
    scales the float32 product gives a multiplier 9 ulps lower (1228531968 vs 1228531977,
    shift -19), which turns accumulator -133344869 into -145 instead of -146: found by
    search, so a float32 shortcut in the converter fails here (the random sweep is too
    coarse to notice one ulp)."""
    in_scale, w_scale, out_scale = 0.03431348875164986, 0.07102170586585999, 2233.414306640625
    acc = -133344869
    b = ModelBuilder()
    x = b.input([1, 1, 3, 1], scale=in_scale, zero_point=-7)
    w = b.const(np.ones((1, 1, 1, 1), np.int8), scale=w_scale)
    bias = b.const(np.array([acc], np.int32), scale=in_scale * w_scale)
    y = b.tensor([1, 1, 3, 1], scale=out_scale, zero_point=100)
    b.op("CONV_2D", [x, w, bias], [y])
    b.output(y)
    xin = np.array([-7, -6, -8], np.int8).reshape(1, 1, 3, 1)  # accumulators acc, acc + 1, acc - 1
    out = assert_bit_exact(b.build(), [xin], "double-precision multiplier")[0]
    assert out.reshape(-1)[0] == -146 + 100
