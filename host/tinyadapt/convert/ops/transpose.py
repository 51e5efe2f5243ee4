"""TRANSPOSE -> ta_transpose_s8 (firmware/include/tinyadapt/ops/ta_transpose.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32

MAX_DIMS = 6  # TA_TRANSPOSE_MAX_DIMS (TFLM itself stops at 5)


@lowers("TRANSPOSE")
def lower_transpose(ctx, op):
    ctx.require(op, len(op.inputs) == 2, f"expected 2 inputs (data, perm), got {len(op.inputs)}")
    x = ctx.require_dtype(op, op.inputs[0], np.int8)
    y = ctx.require_dtype(op, op.outputs[0], np.int8)
    perm_t = ctx.require_const(op, op.inputs[1], "the permutation")
    ctx.require(op, np.dtype(perm_t.dtype) == np.int32, f"perm must be int32, got {perm_t.dtype}")
    rank = len(x.shape)
    ctx.require(op, 1 <= rank <= MAX_DIMS, f"rank {rank} is outside the supported 1..{MAX_DIMS}")
    perm = [int(p) for p in perm_t.data.reshape(-1)]
    ctx.require(op, sorted(perm) == list(range(rank)), f"perm {perm} is not a permutation of 0..{rank - 1}")
    expected = [x.shape[p] for p in perm]
    ctx.require(op, list(y.shape) == expected,
                f"output shape {list(y.shape)} != input {list(x.shape)} permuted by {perm}")
    return Lowered(
        opcode=bf.OPCODES["TRANSPOSE"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(rank, *(perm + [0] * (MAX_DIMS - rank))),
    )
