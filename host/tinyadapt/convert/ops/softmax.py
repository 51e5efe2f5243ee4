"""SOFTMAX -> ta_softmax_s8 (firmware/include/tinyadapt/ops/ta_softmax.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import quantize_multiplier

# kScaledDiffIntegerBits in TFLM: x - max is rescaled into Q5.26.
SCALED_DIFF_INTEGER_BITS = 5


def softmax_params(beta: float, input_scale: np.float32) -> tuple[int, int, int] | None:
    """TFLM SoftmaxPrepare for int8: PreprocessSoftmaxScaling, then CalculateInputRadius.

    Returns (input_multiplier, input_left_shift, diff_min), or None when TFLM would abort
    (its QuantizeMultiplierGreaterThanOne needs a real multiplier above 1).
    """
    # std::min<double>(beta * input_scale * (1 << 26), 2^31 - 1), in double from the two floats.
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    if not real > 1.0:
        return None
    mult, shift = quantize_multiplier(real)
    # floor((2^5 - 1) * 2^26 / 2^shift) is exact in double: an integer shift.
    radius = (((1 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS)) >> shift
    return mult, shift, -radius


@lowers("SOFTMAX")
def lower_softmax(ctx, op):
    x, y = ctx.require_int8_quantized(op, op.inputs[0], op.outputs[0])
    ctx.require(op, len(x.shape) >= 1, "the input must have at least one dimension")
    ctx.require_same_shape(op, x, y)
    ctx.require(op, y.zp0 == -128 and y.scale0 == np.float32(1.0 / 256.0),
                f"int8 softmax output must have scale 1/256 and zero point -128 (TFLite Micro's requirement), "
                f"got scale {float(y.scale0):g} and zero point {y.zp0}")
    beta = float(np.float32(op.options.get("beta", 1.0)))
    params = softmax_params(beta, x.scale0)
    ctx.require(op, params is not None,
                f"beta * input scale = {beta:g} * {float(x.scale0):g} is too small or not positive "
                f"(TFLite Micro needs beta * input_scale * 2^26 > 1)")
    mult, shift, diff_min = params
    elems = int(np.prod(x.shape, dtype=np.int64))
    return Lowered(
        opcode=bf.OPCODES["SOFTMAX"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(mult, shift, diff_min),
        macs=2 * elems,
    )
