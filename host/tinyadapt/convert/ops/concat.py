"""CONCATENATION -> ta_concat_s8 (firmware/include/tinyadapt/ops/ta_concat.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32


@lowers("CONCATENATION")
def lower_concat(ctx, op):
    n = len(op.inputs)
    ctx.require(op, 1 <= n <= bf.MAX_OP_INPUTS, f"{n} inputs, at most {bf.MAX_OP_INPUTS} are supported")
    y = ctx.require_dtype(op, op.outputs[0], np.int8)
    xs = [ctx.require_dtype(op, i, np.int8) for i in op.inputs]
    activation = op.options.get("activation", "NONE")
    # ConcatenationPrepare rejects fused activations and per-input requantization.
    ctx.require(op, activation == "NONE", f"fused activation {activation} is not supported (TFLite Micro "
                                          "accepts only NONE)")
    for x in xs:
        ctx.require(op, float(x.scale0) == float(y.scale0) and x.zp0 == y.zp0,
                    f"{x.describe()} has scale {float(x.scale0):g} / zero point {x.zp0} but the output has "
                    f"{float(y.scale0):g} / {y.zp0}; TFLite Micro requires every input to match the output")
    rank = len(y.shape)
    ctx.require(op, rank >= 1, "the output must have rank >= 1")
    axis = int(op.options.get("axis", 0))
    ctx.require(op, -rank <= axis < rank, f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    total = 0
    for x in xs:
        ok = len(x.shape) == rank and all(a == b for d, (a, b) in enumerate(zip(x.shape, y.shape)) if d != axis)
        ctx.require(op, ok, f"{x.describe()} does not fit output {list(y.shape)} along axis {axis}")
        total += x.shape[axis]
    ctx.require(op, total == y.shape[axis],
                f"inputs add up to {total} along axis {axis}, the output has {y.shape[axis]}")
    return Lowered(
        opcode=bf.OPCODES["CONCATENATION"],
        inputs=[ctx.ref(x.index) for x in xs],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(axis),
    )
