"""QUANTIZE / DEQUANTIZE -> ta_quantize_f32_s8, ta_requantize_s8, ta_dequantize_s8_f32
(firmware/include/tinyadapt/ops/ta_quantize.h, ta_requantize.h, ta_dequantize.h).

TFLite's QUANTIZE covers two engine ops: float32 -> int8 (TA_OP_QUANTIZE, AffineQuantize)
and int8 or uint8 -> int8 with a new scale / zero point (TA_OP_REQUANTIZE, Requantize with
input_scale / output_scale quantized in double, as TFLM's PrepareQuantizeReference; a uint8
input is what TFLiteConverter's inference_input_type=tf.uint8 puts first).
Float scales travel in the params struct as the int32 bit pattern of the float32, so the
device divides / multiplies by exactly the scale TFLM uses.
"""

from __future__ import annotations

import struct

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, dtype_name, lowers, pack_i32
from tinyadapt.convert.quant import quantize_multiplier


def f32_bits(x) -> int:
    """The IEEE-754 binary32 bit pattern of x as a signed int32 (a *_params_t scale_bits field)."""
    return struct.unpack("<i", struct.pack("<f", float(np.float32(x))))[0]


def _io(ctx, op):
    ctx.require(op, len(op.inputs) == 1 and len(op.outputs) == 1,
                f"expects 1 input and 1 output, got {len(op.inputs)} and {len(op.outputs)}")
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    ctx.require(op, x is not None and y is not None, "a required tensor is missing")
    ctx.require(op, tuple(x.shape) == tuple(y.shape),
                f"input shape {list(x.shape)} and output shape {list(y.shape)} differ")
    ctx.require(op, all(d > 0 for d in x.shape), f"{x.describe()} is empty")
    return x, y


@lowers("QUANTIZE")
def lower_quantize(ctx, op):
    x, y = _io(ctx, op)
    src, dst = dtype_name(x), dtype_name(y)
    why = "tinyadapt quantizes float32 -> int8 and requantizes int8 or uint8 -> int8"
    ctx.require(op, dst == "int8", f"QUANTIZE to {dst} ({y.describe()}) is not supported: {why}")
    ctx.require(op, src in ("float32", "int8", "uint8"), f"QUANTIZE from {src} ({x.describe()}) is not supported: {why}")
    ctx.require_per_tensor(op, y)
    n = int(np.prod(y.shape, dtype=np.int64))
    if src == "float32":
        return Lowered(
            opcode=bf.OPCODES["QUANTIZE"],
            inputs=[ctx.ref(x.index)],
            outputs=[ctx.ref(y.index)],
            params=pack_i32(y.zp0, f32_bits(y.scale0)),  # ta_quantize_params_t
            macs=n,
        )
    ctx.require_per_tensor(op, x)
    real = float(x.scale0) / float(y.scale0)
    mult, shift = quantize_multiplier(real)
    ctx.require(op, shift <= 31, f"requantization multiplier {real:.6g} (input scale / output scale) is too large")
    return Lowered(
        opcode=bf.OPCODES["REQUANTIZE"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(x.zp0, y.zp0, mult, shift),  # ta_requantize_params_t
        macs=n,
        inplace_input=None if x.is_const else 0,
    )


@lowers("DEQUANTIZE")
def lower_dequantize(ctx, op):
    x, y = _io(ctx, op)
    src, dst = dtype_name(x), dtype_name(y)
    ctx.require(op, src == "int8",
                f"DEQUANTIZE from {src} ({x.describe()}) is not supported: tinyadapt dequantizes int8 -> float32")
    ctx.require(op, dst == "float32",
                f"DEQUANTIZE to {dst} ({y.describe()}) is not supported: tinyadapt dequantizes int8 -> float32")
    ctx.require_per_tensor(op, x)
    return Lowered(
        opcode=bf.OPCODES["DEQUANTIZE"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(x.zp0, f32_bits(x.scale0)),  # ta_dequantize_params_t
        macs=int(np.prod(y.shape, dtype=np.int64)),
    )
