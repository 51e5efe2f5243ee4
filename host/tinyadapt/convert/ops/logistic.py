"""LOGISTIC -> ta_logistic_s8 (firmware/include/tinyadapt/ops/ta_logistic.h)."""

import math

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import round_half_away

# kInputIntegerBits in TFLM: the input is rescaled into Q4.27.
INPUT_INTEGER_BITS = 4


def logistic_params(input_scale: np.float32) -> tuple[int, int, int] | None:
    """TFLM CalculateArithmeticOpDataLogistic for int8: (multiplier, left_shift, range_radius).

    TFLM takes frexp of input_scale * 2^27 itself (not QuantizeMultiplier) and the radius
    from CalculateInputRadius(4, shift, 31). Returns None for scales whose shift leaves the
    range TFLM handles without undefined behaviour.
    """
    real = float(np.float32(input_scale)) * float(1 << (31 - INPUT_INTEGER_BITS))
    q, shift = math.frexp(real)
    mult = round_half_away(q * (1 << 31))
    if shift < 0 or shift > 62:
        return None
    # floor(15 * 2^27 / 2^shift): an exact integer shift.
    radius = (((1 << INPUT_INTEGER_BITS) - 1) << (31 - INPUT_INTEGER_BITS)) >> shift
    if shift > 31:
        # radius is 0: every input saturates and the multiplier is never used; keep the
        # stored shift in the engine's [-31, 31] range.
        shift = 31
    return mult, shift, radius


@lowers("LOGISTIC")
def lower_logistic(ctx, op):
    x, y = ctx.require_int8_quantized(op, op.inputs[0], op.outputs[0])
    ctx.require_same_shape(op, x, y)
    # TFLM checks only the zero point; it computes the output on a 1/256 scale whatever scale
    # the model declares (tflite-runtime also requires 1/256), and so does tinyadapt.
    ctx.require(op, y.zp0 == -128,
                f"int8 logistic output must have zero point -128 (TFLite Micro's requirement), got {y.zp0}")
    params = logistic_params(x.scale0)
    ctx.require(op, params is not None,
                f"input scale {float(x.scale0):g} is outside the range TFLite Micro's int8 logistic handles "
                f"(2^-28 <= scale < 2^35)")
    mult, shift, radius = params
    elems = int(np.prod(x.shape, dtype=np.int64))
    return Lowered(
        opcode=bf.OPCODES["LOGISTIC"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(-x.zp0, radius, mult, shift),
        macs=elems,
        inplace_input=0,
    )
