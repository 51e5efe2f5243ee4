"""Small models the device, protocol, build and fuzz tests run, generated here so the tests
need only the repo.

`tiny_fc(seed)` has hello_world's shape (one int8 in, FULLY_CONNECTED 1 -> 16 -> 16 -> 1, one
int8 out) with weights drawn from `seed`: two seeds give two models that differ only in their
weights, which is what the model-identity tests need.

`tiny_cnn(seed)` is an 8x8x2 CNN with one op of each kind the trainer differentiates (conv,
depthwise, PAD, residual ADD, average pool, RESHAPE, FC, softmax): the training tests' model,
and small enough that the protocol fuzzer can LOAD it as a training blob and as a prepared
TTA model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.tflite_builder import ModelBuilder


def tiny_fc(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder(f"tinyadapt tiny_fc seed {seed}")
    x = b.input((1, 1), np.int8, scale=0.025, zero_point=-3)
    scale_in, prev, widths = 0.025, x, [(16, "RELU"), (16, "RELU"), (1, "NONE")]
    for k, (width, act) in enumerate(widths):
        in_depth = b.shape(prev)[1]
        w_scale = float(rng.uniform(0.004, 0.02))
        w = b.const(rng.integers(-127, 128, size=(width, in_depth), dtype=np.int8), scale=w_scale)
        bias = b.const(rng.integers(-2000, 2000, size=width).astype(np.int32), scale=scale_in * w_scale)
        out_scale = float(rng.uniform(0.02, 0.08))
        y = b.tensor((1, width), np.int8, scale=out_scale, zero_point=-128 if act == "RELU" else 4)
        b.op("FULLY_CONNECTED", [prev, w, bias], [y], activation=act)
        prev, scale_in = y, out_scale
    b.output(prev)
    return b.build()


def tiny_cnn(seed: int = 0) -> bytes:
    """conv 3x3 /2 SAME relu -> depthwise 3x3 relu6 -> pad -> conv 3x3 VALID -> add (residual)
    -> avgpool 2x2 -> reshape -> FC -> softmax: every backward op but MEAN (digits has it)."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input([1, 8, 8, 2], scale=0.05, zero_point=-3)

    def conv(inp, out_c, k, stride, padding, act, depthwise=False, out_hw=None, out_scale=0.08, out_zp=-10):
        in_c = b.shape(inp)[3]
        shape = [1, k, k, out_c] if depthwise else [out_c, k, k, in_c]
        scales = rng.uniform(0.005, 0.02, out_c)
        w = b.const(rng.integers(-127, 128, shape).astype(np.int8), scale=list(scales),
                    quantized_dimension=3 if depthwise else 0)
        in_s = b.quant(inp)[0]
        bias = b.const(rng.integers(-300, 300, out_c).astype(np.int32), scale=[in_s * s for s in scales])
        y = b.tensor([1, *out_hw, out_c], scale=out_scale, zero_point=out_zp)
        if depthwise:
            b.op("DEPTHWISE_CONV_2D", [inp, w, bias], [y], padding=padding, stride_h=stride, stride_w=stride,
                 depth_multiplier=out_c // in_c, activation=act)
        else:
            b.op("CONV_2D", [inp, w, bias], [y], padding=padding, stride_h=stride, stride_w=stride, activation=act)
        return y

    a = conv(x, 4, 3, 2, "SAME", "RELU", out_hw=(4, 4), out_zp=-128)
    d = conv(a, 4, 3, 1, "SAME", "RELU6", depthwise=True, out_hw=(4, 4), out_zp=-128, out_scale=0.03)
    p = b.tensor([1, 6, 6, 4], scale=0.03, zero_point=-128)
    b.op("PAD", [d], [p], paddings=[[0, 0], [1, 1], [1, 1], [0, 0]])
    c = conv(p, 4, 3, 1, "VALID", "NONE", out_hw=(4, 4), out_zp=0, out_scale=0.1)
    s = b.tensor([1, 4, 4, 4], scale=0.12, zero_point=2)
    b.op("ADD", [c, d], [s])
    q = b.tensor([1, 2, 2, 4], scale=0.12, zero_point=2)
    b.op("AVERAGE_POOL_2D", [s], [q], filter_h=2, filter_w=2, stride_h=2, stride_w=2)
    r = b.tensor([1, 16], scale=0.12, zero_point=2)
    b.op("RESHAPE", [q], [r], new_shape=[1, 16])
    w = b.const(rng.integers(-127, 128, (5, 16)).astype(np.int8), scale=0.01)
    bias = b.const(rng.integers(-500, 500, 5).astype(np.int32), scale=0.12 * 0.01)
    z = b.tensor([1, 5], scale=0.15, zero_point=-5)
    b.op("FULLY_CONNECTED", [r, w, bias], [z])
    o = b.tensor([1, 5], scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [z], [o], beta=1.0)
    b.output(o)
    return b.build()


def write_tiny_fc(directory: Path, seed: int = 0) -> Path:
    path = Path(directory) / f"tiny_fc_{seed}.tflite"
    path.write_bytes(tiny_fc(seed))
    return path
