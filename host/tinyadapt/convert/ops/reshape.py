"""RESHAPE -> a view: the output is planned onto the input's bytes (firmware ta_reshape.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers


@lowers("RESHAPE")
def lower_reshape(ctx, op):
    ctx.require(op, 1 <= len(op.inputs) <= 2, f"expected 1 or 2 inputs, got {len(op.inputs)}")
    x = ctx.tensor(op.inputs[0])
    y = ctx.tensor(op.outputs[0])
    ctx.require(op, x is not None, "a required input is missing")
    ctx.require(op, not isinstance(x.dtype, str) and np.dtype(x.dtype) in bf.DTYPES,
                f"{x.describe()} has type {x.dtype}, which tinyadapt does not support")
    ctx.require_dtype(op, y.index, x.dtype)
    # The shape operand (constant or not) is not needed: the output's shape is static.
    ctx.require(op, x.nbytes == y.nbytes,
                f"input {list(x.shape)} and output {list(y.shape)} differ in element count")
    return Lowered(
        opcode=bf.OPCODES["RESHAPE"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=b"",
        alias_input=0,
    )
