"""ADD / SUB / MUL -> ta_add_s8 / ta_sub_s8 / ta_mul_s8 (firmware/include/tinyadapt/ops/ta_add.h, ta_mul.h).

int8 with NumPy broadcasting over up to 6 dimensions. The multipliers are computed like
TFLite Micro's Prepare:

* ADD and SUB (CalculateOpDataAdd / CalculateOpDataSub): in double, from the float32
  scales: twice_max = 2 * max(s1, s2); s1 / twice_max, s2 / twice_max and
  twice_max / (2^20 * s_out), each through QuantizeMultiplierSmallerThanOneExp.
  Some tflite-micro source revisions compute SUB's quotients in float32 instead; the
  interpreter we are tested against (and tflite-runtime) uses double, which
  tests/test_ops_elementwise.py pins with a case where the two differ by one LSB.
* MUL (CalculateOpDataMul): double(s1) * double(s2) / double(s_out), QuantizeMultiplier.
"""

from __future__ import annotations

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import activation_range, quantize_multiplier

MAX_RANK = 6      # TA_BCAST_DIMS
LEFT_SHIFT = 20   # CalculateOpDataAdd/Sub: 20 for int8 (15 is int16's)


def _strip(shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _operands(ctx, op):
    ctx.require(op, len(op.inputs) == 2 and len(op.outputs) == 1,
                f"expects 2 inputs and 1 output, got {len(op.inputs)} and {len(op.outputs)}")
    a = ctx.require_dtype(op, op.inputs[0], np.int8)
    b = ctx.require_dtype(op, op.inputs[1], np.int8)
    y = ctx.require_dtype(op, op.outputs[0], np.int8)
    for t in (a, b, y):
        ctx.require_per_tensor(op, t)
        ctx.require(op, len(t.shape) <= MAX_RANK,
                    f"{t.describe()} has rank {len(t.shape)}; tinyadapt broadcasts up to {MAX_RANK} dimensions")
        ctx.require(op, all(d > 0 for d in t.shape), f"{t.describe()} is empty")
    try:
        shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    except ValueError:
        raise ctx.unsupported(op, f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    # Leading 1s do not change the layout (and scalars are sometimes stored as [1]).
    ctx.require(op, _strip(y.shape) == _strip(shape),
                f"output shape {list(y.shape)} is not {list(shape)}, the broadcast of the input shapes "
                f"{list(a.shape)} and {list(b.shape)}")
    return a, b, y


def _activation(ctx, op, y) -> tuple[int, int]:
    act = op.options.get("activation", "NONE")
    try:
        return activation_range(act, y.scale0, y.zp0)
    except ValueError:
        raise ctx.unsupported(op, f"fused activation {act} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)") from None


def _inplace(a, b, y) -> int | None:
    """An input that holds every output element at the output's index (same element count,
    hence same shape up to leading 1s) may be overwritten by the output."""
    n = int(np.prod(y.shape, dtype=np.int64))
    for pos, t in enumerate((a, b)):
        if not t.is_const and int(np.prod(t.shape, dtype=np.int64)) == n:
            return pos
    return None


def _smaller_than_one(ctx, op, real: float, what: str) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp; TFLM aborts (TFLITE_CHECK) outside (0, 1)."""
    q, s = quantize_multiplier(real) if 0.0 < real < 1.0 else (0, 1)
    if s > 0:  # out of (0, 1), or so close to 1 that the Q31 mantissa rounds up to 2^31
        raise ctx.unsupported(op, f"{what} multiplier {real:.6g} is not in (0, 1) "
                                  "(TFLite Micro cannot run this either: the output scale is too small "
                                  "for the input scales)")
    return q, s


def _add_sub_multipliers(ctx, op, a, b, y):
    twice_max = 2 * max(float(a.scale0), float(b.scale0))
    m1, s1 = _smaller_than_one(ctx, op, float(a.scale0) / twice_max, "input 1")
    m2, s2 = _smaller_than_one(ctx, op, float(b.scale0) / twice_max, "input 2")
    mo, so = _smaller_than_one(ctx, op, twice_max / ((1 << LEFT_SHIFT) * float(y.scale0)), "output")
    return m1, s1, m2, s2, mo, so


def _lower_add_sub(ctx, op, opcode: str) -> Lowered:
    a, b, y = _operands(ctx, op)
    m1, s1, m2, s2, mo, so = _add_sub_multipliers(ctx, op, a, b, y)
    act_min, act_max = _activation(ctx, op, y)
    return Lowered(
        opcode=bf.OPCODES[opcode],
        inputs=[ctx.ref(a.index), ctx.ref(b.index)],
        outputs=[ctx.ref(y.index)],
        # ta_add_params_t field order
        params=pack_i32(-a.zp0, -b.zp0, y.zp0, LEFT_SHIFT, m1, s1, m2, s2, mo, so, act_min, act_max),
        macs=int(np.prod(y.shape, dtype=np.int64)),
        inplace_input=_inplace(a, b, y),
    )


@lowers("ADD")
def lower_add(ctx, op):
    return _lower_add_sub(ctx, op, "ADD")


@lowers("SUB")
def lower_sub(ctx, op):
    return _lower_add_sub(ctx, op, "SUB")


@lowers("MUL")
def lower_mul(ctx, op):
    a, b, y = _operands(ctx, op)
    real = float(a.scale0) * float(b.scale0) / float(y.scale0)
    mult, shift = quantize_multiplier(real)
    ctx.require(op, shift <= 31,
                f"output multiplier {real:.6g} is too large (input scales {float(a.scale0):g} * "
                f"{float(b.scale0):g} against output scale {float(y.scale0):g})")
    act_min, act_max = _activation(ctx, op, y)
    return Lowered(
        opcode=bf.OPCODES["MUL"],
        inputs=[ctx.ref(a.index), ctx.ref(b.index)],
        outputs=[ctx.ref(y.index)],
        # ta_mul_params_t field order
        params=pack_i32(-a.zp0, -b.zp0, y.zp0, mult, shift, act_min, act_max),
        macs=int(np.prod(y.shape, dtype=np.int64)),
        inplace_input=_inplace(a, b, y),
    )
