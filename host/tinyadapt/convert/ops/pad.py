"""PAD / PADV2 -> ta_pad_s8 (firmware/include/tinyadapt/ops/ta_pad.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32

MAX_DIMS = 6  # TA_PAD_MAX_DIMS (TFLM itself stops at 5)


@lowers("PAD", "PADV2")
def lower_pad(ctx, op):
    ctx.require(op, len(op.inputs) in (2, 3), f"expected 2 or 3 inputs, got {len(op.inputs)}")
    x = ctx.require_dtype(op, op.inputs[0], np.int8)
    y = ctx.require_dtype(op, op.outputs[0], np.int8)
    rank = len(y.shape)
    ctx.require(op, len(x.shape) == rank, f"input rank {len(x.shape)} != output rank {rank}")
    ctx.require(op, rank <= MAX_DIMS, f"rank {rank} is more than the {MAX_DIMS} supported")
    pads_t = ctx.require_const(op, op.inputs[1], "the paddings")
    ctx.require(op, np.dtype(pads_t.dtype) == np.int32, f"paddings must be int32, got {pads_t.dtype}")
    ctx.require(op, pads_t.data.size == 2 * rank,
                f"paddings {list(pads_t.shape)} must hold a (before, after) pair per dimension ({rank})")
    pads = pads_t.data.reshape(rank, 2).astype(np.int64)
    ctx.require(op, bool((pads >= 0).all()), f"negative paddings are not supported: {pads.tolist()}")
    expected = [int(d) + int(b) + int(a) for d, (b, a) in zip(x.shape, pads)]
    ctx.require(op, list(y.shape) == expected,
                f"output shape {list(y.shape)} != input {list(x.shape)} + paddings {pads.tolist()}")

    inputs = [ctx.ref(x.index)]
    cv_index = op.inputs[2] if len(op.inputs) == 3 else -1
    if cv_index < 0:
        pad_value = y.zp0
        ctx.require(op, -128 <= pad_value <= 127, f"output zero point {pad_value} is outside int8")
    else:
        cv = ctx.require_dtype(op, cv_index, np.int8)
        ctx.require(op, int(np.prod(cv.shape, dtype=np.int64)) == 1,
                    f"the constant value must be a scalar, got {list(cv.shape)}")
        # PadPrepare: the pad value is written raw, so it must be in the output's quantization.
        ctx.require(op, cv.zp0 == y.zp0 and float(cv.scale0) == float(y.scale0),
                    f"constant value quantization (scale {float(cv.scale0):g}, zero point {cv.zp0}) "
                    f"differs from the output's ({float(y.scale0):g}, {y.zp0}); TFLite Micro requires them equal")
        if cv.is_const:
            pad_value = int(cv.data.reshape(-1)[0])
        else:
            pad_value = 0
            inputs.append(ctx.ref(cv_index))

    before = [int(b) for b in pads[:, 0]] + [0] * (MAX_DIMS - rank)
    after = [int(a) for a in pads[:, 1]] + [0] * (MAX_DIMS - rank)
    return Lowered(
        opcode=bf.OPCODES["PAD"],
        inputs=inputs,
        outputs=[ctx.ref(y.index)],
        params=pack_i32(rank, pad_value, *before, *after),
    )
