"""Kernel scratch of the convolutions: the arena bytes each kernel works in beside its operands.

The firmware's fast kernels take their im2col patches, padded plane copies and packed
weights from the op's arena scratch, not the stack, so the arena plan is the whole working
memory. These functions are ta_conv2d_s8_scratch_size, ta_depthwise_conv2d_s8_scratch_size and
ta_depthwise_conv2d_inplace_s8_scratch_size (firmware/engine/ops/ta_conv_scratch.c, layouts in
firmware/include/tinyadapt/internal/ta_conv_scratch.h) line for line, so that converting a
model needs no C compiler; tests/test_kernel_scratch.py calls the C functions through the host
library and checks both give the same number for every convolution of every model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONV_PATCH_MAX = 256
CONV_OC_CHUNK = 32
DWR_ROW_MAX = 768
DWR_TAPS_MAX = 128
DWI_PAD_MAX = 1024
DWI_TAPS_MAX = 64


@dataclass(frozen=True)
class ConvParams:
    """ta_conv_params_t's geometry fields."""
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_top: int
    pad_left: int
    depth_multiplier: int

    @classmethod
    def unpack(cls, params: bytes) -> "ConvParams":
        return cls(*struct.unpack_from("<7i", params))

    def shifted(self, pad_top: int, pad_left: int) -> "ConvParams":
        return ConvParams(self.stride_h, self.stride_w, self.dilation_h, self.dilation_w, pad_top, pad_left,
                          self.depth_multiplier)


Dims = tuple[int, int, int, int]  # NHWC (a filter: {C_out, KH, KW, C_in} or {1, KH, KW, C})


def conv2d(p: ConvParams, in_d: Dims, f_d: Dims, out_d: Dims) -> int:
    """ta_conv2d_s8_scratch_size: start values of a chunk of channels + the patches of two pixels."""
    gemm = (f_d[1] == 1 and f_d[2] == 1 and p.stride_h == 1 and p.stride_w == 1 and p.pad_top == 0
            and p.pad_left == 0 and out_d[1] == in_d[1] and out_d[2] == in_d[2]
            and in_d[0] * in_d[1] * in_d[2] <= 2**31 - 1)
    fs = f_d[1] * f_d[2] * f_d[3]
    if gemm or fs > CONV_PATCH_MAX:
        return 0
    return 4 * min(out_d[3], CONV_OC_CHUNK) + 2 * fs


def depthwise(p: ConvParams, in_d: Dims, f_d: Dims, out_d: Dims) -> int:
    """ta_depthwise_conv2d_s8_scratch_size: packed weights + padded rows (multiplier >= 2)."""
    kp = (f_d[2] + 3) & ~3
    wp = (out_d[2] - 1) * p.stride_w + kp
    dm = p.depth_multiplier
    if (dm < 2 or (dm == 2 and in_d[3] >= 2) or p.dilation_w != 1 or f_d[1] * kp > DWR_TAPS_MAX
            or f_d[1] * wp > DWR_ROW_MAX):
        return 0
    lanes = 4 if dm >= 4 else 2
    return 2 * lanes * f_d[1] * kp + f_d[1] * wp


def _pad_geometry(p: ConvParams, in_h: int, in_w: int, out_h: int, out_w: int) -> tuple[int, int] | None:
    last_y = (out_h - 1) * p.stride_h - p.pad_top + 2
    last_x = (out_w - 1) * p.stride_w - p.pad_left + 3
    row0 = -p.pad_top if p.pad_top > 0 else 0
    col0 = -p.pad_left if p.pad_left > 0 else 0
    rows = max(last_y, in_h - 1) - row0 + 1
    cols = max(last_x, in_w - 1) - col0 + 1
    return None if rows * cols > DWI_PAD_MAX else (rows, cols)


def _group_geometry(p: ConvParams, in_h: int, in_w: int, ch: int, k_h: int, k_w: int, out_h: int,
                    out_w: int) -> tuple[int, int, int] | None:
    last_y = (out_h - 1) * p.stride_h - p.pad_top + (k_h - 1) * p.dilation_h
    last_x = (out_w - 1) * p.stride_w - p.pad_left + (k_w - 1) * p.dilation_w
    row0 = -p.pad_top if p.pad_top > 0 else 0
    col0 = -p.pad_left if p.pad_left > 0 else 0
    rows = max(last_y, in_h - 1) - row0 + 1
    cols = max(last_x, in_w - 1) - col0 + 1
    if ch < 4 or k_h * k_w > DWI_TAPS_MAX or rows * cols * 4 > DWI_PAD_MAX:
        return None
    group = (DWI_PAD_MAX // (rows * cols)) & ~3
    return rows, cols, min(group, ch & ~3)


def depthwise_inplace(p: ConvParams, in_d: Dims, f_d: Dims, out_d: Dims) -> int:
    """ta_depthwise_conv2d_inplace_s8_scratch_size: one plane, then the fast kernel's copy and packed taps."""
    k_h, k_w = f_d[1], f_d[2]
    dil1 = p.dilation_h == 1 and p.dilation_w == 1
    padded = _pad_geometry(p, in_d[1], in_d[2], out_d[1], out_d[2]) if k_h == 3 and k_w == 3 and dil1 else None
    wants_group = not (k_h == 3 and k_w == 3 and dil1 and p.stride_h == 1 and p.stride_w == 1
                       and out_d[1] * out_d[2] > 64)
    grouped = (_group_geometry(p, in_d[1], in_d[2], in_d[3], k_h, k_w, out_d[1], out_d[2])
               if wants_group else None)
    copy = max(padded[0] * padded[1] if padded else 0, grouped[0] * grouped[1] * grouped[2] if grouped else 0)
    plane = in_d[1] * in_d[2]
    copy_at = (plane + 3) & ~3
    taps_at = (copy_at + copy + 3) & ~3
    return taps_at + 8 * k_h * k_w if grouped else (copy_at + copy if copy else plane)
