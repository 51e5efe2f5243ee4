/*
 * Kernel scratch of the convolutions: the working buffers of the fast kernels
 * (kernels/dsp: im2col patches, padded plane copies, packed weights) are carved out of
 * the arena scratch the planner gives each op, not taken from the stack, so that the
 * planned arena (peak_sram_bytes) is the whole working memory.
 *
 * What a kernel needs follows from its parameters and dims alone, through the layouts
 * below. One definition serves the kernels (which carve their buffers with them), the
 * ops' prepare step and ta_*_scratch_size (engine/ops/ta_conv_scratch.c), which the host
 * planner mirrors (host/tinyadapt/plan/scratch.py; tests/test_kernel_scratch.py checks
 * the two agree on every convolution of every model).
 *
 * The sizes are the DSP kernels' whatever the build: a blob runs unchanged on either
 * backend, and the reference kernels use only the in-place depthwise plane. A kernel
 * given less than its layout asks for takes a path that needs less (never wrong, only
 * slower), so a caller with a smaller scratch (a unit test, an old blob) still works.
 */
#ifndef TA_CONV_SCRATCH_H
#define TA_CONV_SCRATCH_H

#include <stdint.h>

#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ta_dims.h"

/* ---- CONV_2D: im2col --------------------------------------------------------------------
 * Filters of at most TA_CONV_PATCH_MAX taps x channels (beyond that the row kernel, which
 * needs no copy, is as fast) gather the patches of two output pixels; the per-channel start
 * values are kept for a chunk of TA_CONV_OC_CHUNK output channels. Layout:
 * int32 start[min(C_out, chunk)], then int8 patch[2 * KH * KW * C_in]. */
#define TA_CONV_PATCH_MAX 256
#define TA_CONV_OC_CHUNK 32

typedef struct {
    int32_t patch_at; /* byte offset of the two patches (the start values are at 0) */
    int32_t total;    /* bytes; 0 when the kernel takes a path without scratch */
} ta_conv_scratch_t;

/* The 1x1 path (a GEMM straight on the input) needs nothing. */
static inline int ta_conv_is_gemm(const ta_conv_params_t *p, const ta_dims_t *in_dims, const ta_dims_t *filter_dims,
                                  const ta_dims_t *out_dims)
{
    return filter_dims->h == 1 && filter_dims->w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_left == 0 && out_dims->h == in_dims->h && out_dims->w == in_dims->w &&
           (int64_t)in_dims->n * in_dims->h * in_dims->w <= INT32_MAX;
}

static inline ta_conv_scratch_t ta_conv_scratch_layout(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                       const ta_dims_t *filter_dims, const ta_dims_t *out_dims)
{
    ta_conv_scratch_t s = {0, 0};
    const int64_t fs = (int64_t)filter_dims->h * filter_dims->w * filter_dims->c;
    if (ta_conv_is_gemm(p, in_dims, filter_dims, out_dims) || fs > TA_CONV_PATCH_MAX) {
        return s;
    }
    const int32_t chunk = out_dims->c < TA_CONV_OC_CHUNK ? out_dims->c : TA_CONV_OC_CHUNK;
    s.patch_at = 4 * chunk;
    s.total = s.patch_at + 2 * (int32_t)fs;
    return s;
}

/* ---- DEPTHWISE_CONV_2D, depth multiplier >= 2: padded rows ------------------------------
 * Four (or two) outputs of one input channel take their taps in pairs from the input rows
 * copied, padded and rounded up to whole words of taps (kernels/dsp/ta_depthwise_conv2d_s8.c,
 * dw_rows). Layout: int32 weights[2 * L * KH * KWr / 4] (L = 4 outputs at a time when the
 * multiplier allows, else 2; KWr = KW rounded up to 4), then int8 rows[KH * Wp]. */
#define TA_DWR_ROW_MAX 768  /* KH padded rows of one input channel */
#define TA_DWR_TAPS_MAX 128 /* KH * KWr */

typedef struct {
    int32_t rows_at; /* byte offset of the rows (the packed weights are at 0) */
    int32_t total;   /* 0: the kernel does not take the row path */
} ta_dw_scratch_t;

static inline ta_dw_scratch_t ta_dw_scratch_layout(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                   const ta_dims_t *filter_dims, const ta_dims_t *out_dims)
{
    ta_dw_scratch_t s = {0, 0};
    const int64_t kp = ((int64_t)filter_dims->w + 3) & ~(int64_t)3;
    const int64_t wp = (int64_t)(out_dims->w - 1) * p->stride_w + kp;
    const int32_t dm = p->depth_multiplier;
    /* A multiplier of 2 on two or more channels pairs input channels instead (dw_mult2). */
    if (dm < 2 || (dm == 2 && in_dims->c >= 2) || p->dilation_w != 1 || filter_dims->h * kp > TA_DWR_TAPS_MAX ||
        filter_dims->h * wp > TA_DWR_ROW_MAX) {
        return s;
    }
    const int32_t lanes = dm >= 4 ? 4 : 2;
    s.rows_at = 2 * lanes * filter_dims->h * (int32_t)kp;
    s.total = s.rows_at + filter_dims->h * (int32_t)wp;
    return s;
}

/* ---- DEPTHWISE_CONV_2D in place (multiplier 1) ------------------------------------------
 * kernels/dsp/ta_depthwise_conv2d_inplace_s8.c. Small planes are copied with the zero point
 * all around (3x3 filters: one plane at a time, "padded"; other sizes and 3x3 planes of at
 * most 64 outputs: groups of channels interleaved by four, "grouped", whose filter taps are
 * packed per group). Every channel the copies do not cover is gathered into one plane.
 * Layout: the plane (H * W, which the reference kernel needs too), then int8 copy[max of the
 * two copies], then int32 taps[2 * KH * KW] when grouped. The plane comes first because a
 * layer the copies cover whole never touches it: the bytes that end the op's scratch are
 * then ones the kernel writes, and the arena's measured high-water mark stays the plan's. */
#define TA_DWI_PAD_MAX 1024 /* bytes of a padded copy (a grouped copy takes as many channels as fit) */
#define TA_DWI_TAPS_MAX 64  /* grouped filters of up to this many taps (5x5, 1x9, 7x7 ...) */

typedef struct {
    int32_t row0, col0; /* plane coordinates of the copy's first row and column (<= 0) */
    int32_t rows, cols;
} ta_dwi_pad_t;

typedef struct {
    int32_t row0, col0; /* plane coordinates of the copy's first row and column (<= 0) */
    int32_t rows, cols, group;
} ta_dwi_grp_t;

/* 3x3, dilation 1: the padded copy covers every tap of every output pixel and the spare
 * byte of each word read. 0 if it would exceed TA_DWI_PAD_MAX. */
static inline int ta_dwi_pad_geometry(const ta_conv_params_t *p, int32_t in_h, int32_t in_w, int32_t out_h,
                                      int32_t out_w, ta_dwi_pad_t *g)
{
    const int64_t last_y = (int64_t)(out_h - 1) * p->stride_h - p->pad_top + 2;  /* lowest row read */
    const int64_t last_x = (int64_t)(out_w - 1) * p->stride_w - p->pad_left + 3; /* rightmost byte read */
    g->row0 = p->pad_top > 0 ? -p->pad_top : 0;
    g->col0 = p->pad_left > 0 ? -p->pad_left : 0;
    const int64_t rows = (last_y > in_h - 1 ? last_y : in_h - 1) - g->row0 + 1;
    const int64_t cols = (last_x > in_w - 1 ? last_x : in_w - 1) - g->col0 + 1;
    if (rows * cols > TA_DWI_PAD_MAX) {
        return 0;
    }
    g->rows = (int32_t)rows;
    g->cols = (int32_t)cols;
    return 1;
}

/* Any filter of up to TA_DWI_TAPS_MAX taps, at least four channels; the group is as many
 * channels (a multiple of 4) as fit TA_DWI_PAD_MAX bytes of copy. 0 if not even four fit. */
static inline int ta_dwi_group_geometry(const ta_conv_params_t *p, int32_t in_h, int32_t in_w, int32_t ch,
                                        int32_t k_h, int32_t k_w, int32_t out_h, int32_t out_w, ta_dwi_grp_t *g)
{
    const int64_t last_y = (int64_t)(out_h - 1) * p->stride_h - p->pad_top + (int64_t)(k_h - 1) * p->dilation_h;
    const int64_t last_x = (int64_t)(out_w - 1) * p->stride_w - p->pad_left + (int64_t)(k_w - 1) * p->dilation_w;
    g->row0 = p->pad_top > 0 ? -p->pad_top : 0;
    g->col0 = p->pad_left > 0 ? -p->pad_left : 0;
    const int64_t rows = (last_y > in_h - 1 ? last_y : in_h - 1) - g->row0 + 1;
    const int64_t cols = (last_x > in_w - 1 ? last_x : in_w - 1) - g->col0 + 1;
    if (ch < 4 || (int64_t)k_h * k_w > TA_DWI_TAPS_MAX || rows * cols * 4 > TA_DWI_PAD_MAX) {
        return 0;
    }
    const int64_t group = (TA_DWI_PAD_MAX / (rows * cols)) & ~(int64_t)3;
    g->group = (int32_t)(group < (ch & ~3) ? group : (ch & ~3));
    g->rows = (int32_t)rows;
    g->cols = (int32_t)cols;
    return 1;
}

/* A 3x3 stride-1 plane's pixel pairs beat the grouped path from 8x8 outputs up (measured on
 * MobileNetV2: 12x12 planes 4.8 instructions/MAC one plane at a time, 5.6 grouped; 6x6
 * planes 6.6 and 5.9). */
static inline int ta_dwi_wants_group(const ta_conv_params_t *p, const ta_dims_t *filter_dims,
                                     const ta_dims_t *out_dims)
{
    return !(filter_dims->h == 3 && filter_dims->w == 3 && p->dilation_h == 1 && p->dilation_w == 1 &&
             p->stride_h == 1 && p->stride_w == 1 && (int64_t)out_dims->h * out_dims->w > 64);
}

typedef struct {
    int padded, grouped;
    ta_dwi_pad_t pad;
    ta_dwi_grp_t grp;
    int64_t copy_at; /* byte offset of the copy (the gathered plane is at 0) */
    int64_t taps_at; /* byte offset of the packed taps */
    int64_t total;
} ta_dwi_scratch_t;

static inline ta_dwi_scratch_t ta_dwi_scratch_layout(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                     const ta_dims_t *filter_dims, const ta_dims_t *out_dims)
{
    ta_dwi_scratch_t s = {0, 0, {0, 0, 0, 0}, {0, 0, 0, 0, 0}, 0, 0, 0};
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    s.padded = k_h == 3 && k_w == 3 && p->dilation_h == 1 && p->dilation_w == 1 &&
               ta_dwi_pad_geometry(p, in_dims->h, in_dims->w, out_dims->h, out_dims->w, &s.pad);
    s.grouped = ta_dwi_wants_group(p, filter_dims, out_dims) &&
                ta_dwi_group_geometry(p, in_dims->h, in_dims->w, in_dims->c, k_h, k_w, out_dims->h, out_dims->w,
                                      &s.grp);
    const int32_t padded_bytes = s.padded ? s.pad.rows * s.pad.cols : 0;
    const int32_t grouped_bytes = s.grouped ? s.grp.group * s.grp.rows * s.grp.cols : 0;
    const int32_t copy = padded_bytes > grouped_bytes ? padded_bytes : grouped_bytes;
    const int64_t plane = (int64_t)in_dims->h * in_dims->w;
    s.copy_at = (plane + 3) & ~(int64_t)3;
    s.taps_at = (s.copy_at + copy + 3) & ~(int64_t)3;
    s.total = s.grouped ? s.taps_at + 8 * k_h * k_w : (copy > 0 ? s.copy_at + copy : plane);
    return s;
}

#endif /* TA_CONV_SCRATCH_H */
