"""FULLY_CONNECTED -> ta_fully_connected_s8 (firmware/include/tinyadapt/ops/ta_fully_connected.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import activation_range, per_channel_multipliers, quantize_multiplier


@lowers("FULLY_CONNECTED")
def lower_fully_connected(ctx, op):
    ctx.require(op, op.options.get("weights_format", 0) == 0, "shuffled weights format is not supported")
    x, w, y = ctx.require_int8_quantized(op, op.inputs[0], op.inputs[1], op.outputs[0])
    ctx.require_const(op, w.index, "the weights")
    ctx.require(op, len(w.shape) == 2, f"weights must be 2-D, got {list(w.shape)}")
    out_depth, in_depth = w.shape
    ctx.require(op, x.nbytes % in_depth == 0, f"input {list(x.shape)} is not a multiple of depth {in_depth}")
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    if bias >= 0:
        ctx.require_dtype(op, bias, np.int32)

    if w.per_channel:
        mult, shift = per_channel_multipliers(x.scale0, w.scale, y.scale0, out_depth)
    else:
        # TFLM's GetQuantizedConvolutionMultipler multiplies the scales in double. (tflite-runtime
        # 2.14 multiplies them in float32 first and can differ by one LSB: TFLM is our spec.)
        m, s = quantize_multiplier(float(x.scale0) * float(w.scale0) / float(y.scale0))
        mult = np.full(out_depth, m, np.int32)
        shift = np.full(out_depth, s, np.int32)
    act_min, act_max = activation_range(op.options.get("activation", "NONE"), y.scale0, y.zp0)
    batches = x.nbytes // in_depth
    return Lowered(
        opcode=bf.OPCODES["FULLY_CONNECTED"],
        inputs=[ctx.ref(x.index), ctx.ref(w.index), ctx.ref(bias),
                ctx.const(mult, f"{w.name}/multiplier"), ctx.const(shift, f"{w.name}/shift")],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(-x.zp0, -w.zp0, y.zp0, act_min, act_max),
        macs=batches * in_depth * out_depth,
    )
