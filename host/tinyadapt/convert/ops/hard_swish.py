"""HARD_SWISH -> ta_hard_swish_s8 (firmware/include/tinyadapt/ops/ta_hard_swish.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import quantize_multiplier


def downscale_multiplier_to_int16(m32: int) -> int:
    """TFLM DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15, saturating."""
    if m32 >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m32 + (1 << 15)) >> 16


def hard_swish_params(input_scale: np.float32, output_scale: np.float32) -> tuple[int, int, int, int]:
    """TFLM HardSwishPrepare: (reluish_m16, reluish_exp, output_m16, output_exp).

    Every scale ratio is a float32 expression in TFLM, widened to double only for
    QuantizeMultiplier, so numpy float32 arithmetic reproduces it.
    """
    with np.errstate(all="ignore"):
        hires_input_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
        reluish_scale = np.float32(3.0) / np.float32(32768.0)
        output_multiplier = float(np.float32(hires_input_scale / np.float32(output_scale)))
        reluish_multiplier = float(np.float32(hires_input_scale / reluish_scale))
    out_m, out_e = quantize_multiplier(output_multiplier)
    rel_m, rel_e = quantize_multiplier(reluish_multiplier)
    return downscale_multiplier_to_int16(rel_m), rel_e, downscale_multiplier_to_int16(out_m), out_e


@lowers("HARD_SWISH")
def lower_hard_swish(ctx, op):
    x, y = ctx.require_int8_quantized(op, op.inputs[0], op.outputs[0])
    ctx.require_same_shape(op, x, y)
    rel_m, rel_e, out_m, out_e = hard_swish_params(x.scale0, y.scale0)
    ctx.require(op, out_e <= 0,
                f"output scale {float(y.scale0):g} is too small for input scale {float(x.scale0):g}: "
                f"TFLite Micro needs input_scale / (128 * output_scale) < 1")
    ctx.require(op, rel_e <= 31, f"input scale {float(x.scale0):g} is too large")
    elems = int(np.prod(x.shape, dtype=np.int64))
    return Lowered(
        opcode=bf.OPCODES["HARD_SWISH"],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(-x.zp0, y.zp0, rel_m, rel_e, out_m, out_e),
        macs=elems,
        inplace_input=0,
    )
