"""MEAN -> ta_mean_s8 (firmware/include/tinyadapt/ops/ta_mean.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import quantize_multiplier

MAX_DIMS = 6  # TA_MEAN_MAX_DIMS


def mean_multiplier(input_scale: np.float32, output_scale: np.float32, count: int) -> tuple[int, int]:
    """The requantization of reference_ops::QuantizedMeanOrSum: QuantizeMultiplier of the
    scale ratio (in double, as PrepareMeanOrSumHelper), then 1/count folded in with
    integer arithmetic, its shift clamped so the final exponent stays >= -31."""
    mult, shift = quantize_multiplier(float(input_scale) / float(output_scale))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    if extra < 0:
        raise ValueError("scale ratio out of range")
    return (mult << extra) // count, shift - extra


@lowers("MEAN")
def lower_mean(ctx, op):
    ctx.require(op, len(op.inputs) == 2, f"expected 2 inputs (data, axis), got {len(op.inputs)}")
    x, y = ctx.require_int8_quantized(op, op.inputs[0], op.outputs[0])
    axis_t = ctx.tensor(op.inputs[1])
    ctx.require(op, axis_t is not None, "the axis input is missing")
    ctx.require(op, not isinstance(axis_t.dtype, str) and np.dtype(axis_t.dtype) == np.int32,
                f"axis must be int32, got {axis_t.dtype}")
    # An empty axis list has no bytes, so the file cannot mark it constant.
    if int(np.prod(axis_t.shape, dtype=np.int64)) == 0:
        axes = []
    else:
        axes = ctx.require_const(op, axis_t.index, "the axis").data.reshape(-1).tolist()
    rank = len(x.shape)
    ctx.require(op, rank <= MAX_DIMS, f"input rank {rank} is more than the {MAX_DIMS} supported")

    mask = 0
    if rank > 0:  # TFLM ignores the axes of a scalar
        for a in axes:
            ctx.require(op, -rank <= a < rank, f"axis {a} is out of range for rank {rank}")
            mask |= 1 << (a % rank)
    kept = [d for i, d in enumerate(x.shape) if not mask >> i & 1]
    count = int(np.prod([d for i, d in enumerate(x.shape) if mask >> i & 1], dtype=np.int64))
    ctx.require(op, y.nbytes == int(np.prod(kept, dtype=np.int64)),
                f"output shape {list(y.shape)} does not hold the {kept} kept dimensions")
    try:
        mult, shift = mean_multiplier(x.scale0, y.scale0, count)
    except ValueError:
        mult, shift = 0, 99
    ctx.require(op, -31 <= shift <= 31,
                f"input/output scale ratio {float(x.scale0) / float(y.scale0):g} is out of range")
    return Lowered(
        opcode=bf.OPCODES["MEAN"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(rank, mask, x.zp0, y.zp0, mult, shift),
        macs=x.nbytes,
    )
