"""CONV_2D -> ta_conv2d_s8 and DEPTHWISE_CONV_2D -> ta_depthwise_conv2d_s8
(firmware/include/tinyadapt/ops/ta_conv2d.h, ta_depthwise_conv2d.h).

Both ops share one parameter struct (ta_conv_params_t) and one blob input list:
[input, filter, bias or -1, multiplier int32[C_out], shift int32[C_out]].

Quantization follows TFLM's Prepare (PopulateConvolutionQuantizationParams): for int8
every output channel gets its own multiplier, computed in double from the float32
input/filter/output scales, whether the filter is per-tensor (one scale, repeated) or
per-channel. Padding follows ComputePaddingHeightWidth; only top/left is stored because
the kernel skips out-of-range taps, so the bottom/right padding follows from the
output size.
"""

from __future__ import annotations

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import Lowered, lowers, pack_i32
from tinyadapt.convert.quant import activation_range, per_channel_multipliers
from tinyadapt.plan import scratch

_INT8_ZP = (-128, 127)
_INT32_MAX = 2**31 - 1
# Scratch for an in-place pointwise conv: each chunk is one kernel call, whose per-call setup
# (filter sums) costs about 1/chunk-pixels of the op, so ~1 KiB keeps that to a few percent.
POINTWISE_CHUNK_BYTES = 1024


def out_size(padding: str, image: int, kernel: int, stride: int, dilation: int) -> int:
    """TFLM ComputeOutSize (GetWindowedOutputSize in TensorFlow)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (image + stride - 1) // stride
    return (image + stride - effective) // stride


def pad_before(image: int, kernel: int, stride: int, dilation: int, out: int) -> int:
    """TFLM ComputePaddingWithOffset: the top/left half of the total padding (the odd
    pixel goes to the bottom/right, which the kernel gets for free)."""
    effective = (kernel - 1) * dilation + 1
    return max(0, (out - 1) * stride + effective - image) // 2


def _check_activation_range(ctx, op, activation: str, scale: np.float32) -> None:
    """TFLM's CalculateActivationRangeQuantized fails Prepare when round(limit / scale)
    does not fit in int32 (a float32 division, like TFLM)."""
    limits = {"RELU": (0.0,), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}.get(activation, ())
    for f in limits:
        q = np.float32(f) / np.float32(scale)
        if not np.isfinite(q) or abs(float(q)) >= 2.0**31:
            raise ctx.unsupported(op, f"output scale {float(scale):g} is too small for fused {activation}: "
                                      f"{f} / scale overflows int32")


def _lower(ctx, op, depthwise: bool) -> Lowered:
    kind = op.kind
    opts = op.options
    ctx.require(op, len(op.inputs) in (2, 3), f"expected 2 or 3 inputs, got {len(op.inputs)}")
    ctx.require(op, len(op.outputs) == 1, f"expected 1 output, got {len(op.outputs)}")
    x, w, y = ctx.require_int8_quantized(op, op.inputs[0], op.inputs[1], op.outputs[0])
    ctx.require_const(op, w.index, "the filter")
    for t, what in ((x, "input"), (w, "filter"), (y, "output")):
        ctx.require(op, len(t.shape) == 4, f"{what} {t.describe()} must be 4-D (NHWC), got rank {len(t.shape)}")
        ctx.require(op, all(d > 0 for d in t.shape), f"{what} {t.describe()} has an empty dimension")

    n, in_h, in_w, in_c = (int(d) for d in x.shape)
    if depthwise:
        one, k_h, k_w, out_c = (int(d) for d in w.shape)
        ctx.require(op, one == 1, f"depthwise filter must be [1, KH, KW, C_out], got {list(w.shape)}")
        ctx.require(op, out_c % in_c == 0,
                    f"filter channels {out_c} are not a multiple of input channels {in_c}")
        depth_multiplier = out_c // in_c
        opt_dm = int(opts.get("depth_multiplier", depth_multiplier))
        ctx.require(op, opt_dm == depth_multiplier,
                    f"depth_multiplier option {opt_dm} does not match filter channels {out_c} / "
                    f"input channels {in_c} = {depth_multiplier}")
        quant_dim = 3
    else:
        out_c, k_h, k_w, f_c = (int(d) for d in w.shape)
        if f_c != in_c and f_c > 0 and in_c % f_c == 0:
            raise ctx.unsupported(op, f"grouped convolution ({in_c // f_c} groups: filter depth {f_c}, "
                                      f"input depth {in_c}) is not supported")
        ctx.require(op, f_c == in_c, f"filter depth {f_c} does not match input depth {in_c}")
        depth_multiplier = 1
        quant_dim = 0

    stride_h, stride_w = int(opts.get("stride_h", 1)), int(opts.get("stride_w", 1))
    dil_h, dil_w = int(opts.get("dilation_hfactor", 1)), int(opts.get("dilation_wfactor", 1))
    ctx.require(op, stride_h >= 1 and stride_w >= 1, f"strides must be >= 1, got {stride_h}x{stride_w}")
    ctx.require(op, dil_h >= 1 and dil_w >= 1, f"dilations must be >= 1, got {dil_h}x{dil_w}")
    padding = opts.get("padding", "UNKNOWN")
    ctx.require(op, padding in ("SAME", "VALID"), f"padding {padding} is not SAME or VALID")
    activation = opts.get("activation", "NONE")
    ctx.require(op, activation in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"),
                f"fused activation {activation} is not supported")

    out_h = out_size(padding, in_h, k_h, stride_h, dil_h)
    out_w = out_size(padding, in_w, k_w, stride_w, dil_w)
    ctx.require(op, out_h >= 1 and out_w >= 1,
                f"VALID padding: the dilated {k_h}x{k_w} filter does not fit the {in_h}x{in_w} input")
    expected = [n, out_h, out_w, out_c]
    ctx.require(op, list(y.shape) == expected,
                f"output shape {list(y.shape)} does not match {expected} implied by input {list(x.shape)}, "
                f"filter {k_h}x{k_w}, stride {stride_h}x{stride_w}, dilation {dil_h}x{dil_w}, {padding} padding")
    pad_top = pad_before(in_h, k_h, stride_h, dil_h, out_h)
    pad_left = pad_before(in_w, k_w, stride_w, dil_w, out_w)
    # The C side (ta_conv_args_ok) refuses input coordinates that overflow int32.
    reach = max((out_h - 1) * stride_h + (k_h - 1) * dil_h + pad_top,
                (out_w - 1) * stride_w + (k_w - 1) * dil_w + pad_left)
    ctx.require(op, reach <= _INT32_MAX, "stride/dilation too large: input coordinates overflow int32")

    # Quantization: TFLM ignores the filter zero point for int8 (symmetric weights by spec).
    n_scales = len(w.scale)
    ctx.require(op, n_scales in (1, out_c),
                f"filter has {n_scales} scales, expected 1 (per-tensor) or {out_c} (per-channel)")
    if n_scales > 1:
        ctx.require(op, w.quantized_dimension == quant_dim,
                    f"per-channel filter must be quantized along dimension {quant_dim}, "
                    f"got {w.quantized_dimension}")
    ctx.require(op, not np.any(w.zero_point),
                "int8 filter zero points must be 0 (symmetric weights); "
                f"got {sorted(set(int(z) for z in w.zero_point))[:4]}")
    for t, what in ((x, "input"), (y, "output")):
        ctx.require(op, _INT8_ZP[0] <= t.zp0 <= _INT8_ZP[1], f"{what} zero point {t.zp0} is outside int8 range")
        ctx.require(op, np.isfinite(t.scale0) and t.scale0 > 0, f"{what} scale {float(t.scale0)} must be positive")
    ctx.require(op, bool(np.all(np.isfinite(w.scale))) and bool(np.all(w.scale >= 0)),
                "filter scales must be finite and non-negative")

    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    if bias >= 0:
        b = ctx.require_dtype(op, bias, np.int32)
        ctx.require_const(op, bias, "the bias")
        ctx.require(op, int(np.prod(b.shape)) == out_c,
                    f"bias {b.describe()} must have {out_c} elements (one per output channel)")

    mult, shift = per_channel_multipliers(x.scale0, w.scale, y.scale0, out_c)
    ctx.require(op, int(shift.max()) <= 31,
                f"effective output scale input*filter/output = {float(x.scale0) * float(w.scale.max()) / float(y.scale0):g} "
                "is too large (needs a left shift over 31)")
    _check_activation_range(ctx, op, activation, y.scale0)
    act_min, act_max = activation_range(activation, y.scale0, y.zp0)

    macs = n * out_h * out_w * out_c * k_h * k_w * (1 if depthwise else in_c)
    # The kernels' working memory (im2col patches, padded copies) is arena scratch, sized as
    # the firmware sizes it (plan/scratch.py). Depthwise with multiplier 1 can overwrite its
    # input one channel plane at a time (ta_depthwise_conv2d_inplace_s8), needing one input
    # plane of scratch besides the fast kernel's copies. A pointwise conv
    # that narrows the channels (an inverted residual's projection) can overwrite its input
    # a chunk of pixels at a time (ta_op_conv2d.c), for a scratch of one chunk of output.
    pointwise = (not depthwise and k_h == k_w == 1 and stride_h == stride_w == 1
                 and (out_h, out_w) == (in_h, in_w) and out_c <= in_c)
    in_place = (depthwise and depth_multiplier == 1 and n == 1) or pointwise
    geometry = scratch.ConvParams(stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, depth_multiplier)
    in_d, f_d, out_d = (n, in_h, in_w, in_c), tuple(int(d) for d in w.shape), (n, out_h, out_w, out_c)
    kernel_scratch = (scratch.depthwise if depthwise else scratch.conv2d)(geometry, in_d, f_d, out_d)
    if depthwise:
        in_place_scratch = scratch.depthwise_inplace(geometry, in_d, f_d, out_d)
    else:
        in_place_scratch = min(n * in_h * in_w, max(1, POINTWISE_CHUNK_BYTES // out_c)) * out_c
    return Lowered(
        opcode=bf.OPCODES[kind],
        inputs=[ctx.ref(x.index), ctx.ref(w.index), ctx.ref(bias),
                ctx.const(mult, f"{w.name}/multiplier"), ctx.const(shift, f"{w.name}/shift")],
        outputs=[ctx.ref(y.index)],
        params=pack_i32(stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, depth_multiplier,
                        -x.zp0, y.zp0, act_min, act_max),
        macs=macs,
        scratch_bytes=kernel_scratch,
        inplace_input=0 if in_place else None,
        inplace_smaller=in_place,
        inplace_scratch=in_place_scratch if in_place else 0,
        inplace_optional=pointwise,
    )


@lowers("CONV_2D")
def lower_conv2d(ctx, op):
    return _lower(ctx, op, depthwise=False)


@lowers("DEPTHWISE_CONV_2D")
def lower_depthwise_conv2d(ctx, op):
    return _lower(ctx, op, depthwise=True)
