"""AVERAGE_POOL_2D / MAX_POOL_2D -> ta_avgpool_s8 / ta_maxpool_s8
(firmware/include/tinyadapt/ops/ta_avgpool.h, ta_maxpool.h)."""

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import activation_range

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def out_size_and_padding(padding: str, in_size: int, filter_size: int, stride: int) -> tuple[int, int]:
    """TFLM ComputeOutSize + ComputePaddingWithOffset (dilation 1): the output size and the
    padding before the input; an odd total puts the extra row/column after it."""
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - filter_size) // stride if in_size >= filter_size else 0
    total = (out - 1) * stride + filter_size - in_size
    return out, max(total, 0) // 2


@lowers("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(ctx, op):
    x = ctx.require_dtype(op, op.inputs[0], np.int8)
    y = ctx.require_dtype(op, op.outputs[0], np.int8)
    ctx.require(op, len(x.shape) == 4, f"input must be 4-D NHWC, got {list(x.shape)}")
    ctx.require(op, len(y.shape) == 4, f"output must be 4-D NHWC, got {list(y.shape)}")
    # PoolingPrepare: pooling never requantizes, so the quantization must match.
    ctx.require(op, abs(float(x.scale0) - float(y.scale0)) <= 1e-6 and x.zp0 == y.zp0,
                f"input and output quantization differ (scale {float(x.scale0):g} vs {float(y.scale0):g}, "
                f"zero point {x.zp0} vs {y.zp0}); TFLite Micro requires them equal")
    o = op.options
    padding = o.get("padding", "VALID")
    ctx.require(op, padding in ("SAME", "VALID"), f"unknown padding {padding}")
    sh, sw = int(o.get("stride_h", 0)), int(o.get("stride_w", 0))
    fh, fw = int(o.get("filter_height", 0)), int(o.get("filter_width", 0))
    ctx.require(op, sh >= 1 and sw >= 1, f"strides must be >= 1, got {sh}x{sw}")
    ctx.require(op, fh >= 1 and fw >= 1, f"filter size must be >= 1, got {fh}x{fw}")
    activation = o.get("activation", "NONE")
    ctx.require(op, activation in _ACTIVATIONS, f"fused activation {activation} is not supported")

    n, h, w, c = x.shape
    oh, pad_h = out_size_and_padding(padding, h, fh, sh)
    ow, pad_w = out_size_and_padding(padding, w, fw, sw)
    ctx.require(op, oh >= 1 and ow >= 1,
                f"a {fh}x{fw} {padding} window does not fit the {h}x{w} input")
    ctx.require(op, tuple(y.shape) == (n, oh, ow, c),
                f"output shape {list(y.shape)} does not match the computed {[n, oh, ow, c]}")
    act_min, act_max = activation_range(activation, y.scale0, y.zp0)
    return Lowered(
        opcode=bf.OPCODES[op.kind],
        inputs=[ctx.ref(x.index)],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(sh, sw, fh, fw, pad_h, pad_w, act_min, act_max),
        macs=n * oh * ow * c * fh * fw,
    )
