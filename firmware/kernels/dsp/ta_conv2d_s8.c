/*
 * CONV_2D int8 for cores with the DSP extension (Cortex-M4/M7): the same function, the
 * same arguments, the same checks and the same output bits as kernels/ref/ta_conv2d_s8.c,
 * which stays the specification.
 *
 * Dispatch (each path's preconditions are checked here, at the call):
 *   conv_1x1_gemm   1x1 filter, stride 1, no padding, output the input's size: the
 *                   convolution is a matrix product over pixels [P, C_in] x [C_in, C_out].
 *                   Blocks of 2 pixels x 2 output channels share every loaded word
 *                   (ta_nn_dot_2x2_raw_s8: SXTB16 + SMLAD, 22 instructions per 16 MACs).
 *   conv_im2col     any other filter of at most TA_CONV_PATCH_MAX taps x C_in (the first
 *                   3x3 layer of a MobileNet has 27): the input patches of two pixels are
 *                   gathered in the op's arena scratch (ta_conv2d_s8_scratch_size), padding
 *                   filled with the zero point, and run through the same 2x2 loop.
 *   conv_rows       bigger filters (or too little scratch) with dilation_w 1: a pixel's taps in one filter row
 *                   are contiguous in input and filter, one dot product per row.
 *   the rest (bigger filters with dilation_w > 1, a multiplier of INT32_MIN where
 *                   only the reference's saturating requantization is right): the
 *                   reference loop, ta_conv_ref.h.
 * Sums are taken in another order than the reference's; int32 addition wraps (mod 2^32),
 * so the accumulators hold the same bits (see tinyadapt/internal/ta_nn_simd.h).
 */
#include "tinyadapt/ops/ta_conv2d.h"

#include <stddef.h>
#include <string.h>

#include "tinyadapt/internal/ta_conv_ref.h"
#include "tinyadapt/internal/ta_conv_scratch.h"
#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/internal/ta_nn_simd.h"

typedef struct {
    int32_t output_offset, act_min, act_max;
} conv_out_t;

static inline int8_t conv_finish(int32_t acc, const ta_nn_requant_t *q, const conv_out_t *o)
{
    const int32_t v = ta_nn_add_wrap(ta_nn_requant(acc, q), o->output_offset);
    return (int8_t)ta_nn_clamp(v, o->act_min, o->act_max);
}

/* Output channels oc, oc+1 of all pixels (1x1 GEMM, see conv_1x1_gemm). r2: both channels
 * scale down by 4 or more (ta_nn_requant_r2); a constant at each call, so this is
 * compiled twice. */
static TA_NN_ALWAYS_INLINE void conv_1x1_pair(const int8_t *input, const int8_t *wa, int32_t pixels, int32_t depth,
                                              int32_t out_c, int32_t ba, int32_t bb, const ta_nn_requant_t *qa,
                                              const ta_nn_requant_t *qb, const ta_nn_act2_t *act, int8_t *out,
                                              const int r2)
{
    const int8_t *x = input;
    int32_t px = 0;
    for (; px + 1 < pixels; px += 2) {
        int32_t acc[4];
        acc[0] = acc[2] = ba;
        acc[1] = acc[3] = bb;
        /* filter row oc+1 is `depth` bytes after row oc, as pixel px+1 is after pixel px */
        ta_nn_dot_2x2_raw_s8(x, wa, depth, depth, acc);
        const int32_t v0 = ta_nn_finish2(acc[0], qa, acc[1], qb, act, r2);
        const int32_t v1 = ta_nn_finish2(acc[2], qa, acc[3], qb, act, r2);
        out[0] = (int8_t)v0;
        out[1] = (int8_t)(v0 >> 16);
        out[out_c] = (int8_t)v1;
        out[out_c + 1] = (int8_t)(v1 >> 16);
        x += 2 * (size_t)depth;
        out += 2 * (size_t)out_c;
    }
    if (px < pixels) {
        int32_t acc[2] = {ba, bb};
        ta_nn_dot_1x2_s8(x, wa, wa + depth, depth, 0, acc);
        const int32_t v = ta_nn_finish2(acc[0], qa, acc[1], qb, act, r2);
        out[0] = (int8_t)v;
        out[1] = (int8_t)(v >> 16);
    }
}

/* 1x1, stride 1, no padding, same spatial size: pixel k of the output reads pixel k of
 * the input, across rows and batches, so the P = N*H*W pixels form one matrix. Output
 * channels go in pairs in the outer loop, so each pair's requantization constants and
 * filter sums are worked out once, not once per pixel. */
static void conv_1x1_gemm(const ta_conv_params_t *p, int32_t pixels, int32_t depth, int32_t out_c,
                          const int8_t *input, const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                          const int32_t *shift, int8_t *output)
{
    const conv_out_t o = {p->output_offset, p->act_min, p->act_max};
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    const int32_t off = p->input_offset;
    int32_t oc = 0;
    for (; oc + 1 < out_c; oc += 2) {
        const int8_t *wa = filter + (size_t)oc * (size_t)depth;
        const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
        const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc + 1], shift[oc + 1]);
        /* sum (x + off) * w = sum x * w + off * sum w (mod 2^32): the offset leaves the inner loop. */
        const int32_t ba = ta_nn_mla_wrap(off, ta_nn_sum_s8(wa, depth), bias != NULL ? bias[oc] : 0);
        const int32_t bb = ta_nn_mla_wrap(off, ta_nn_sum_s8(wa + depth, depth), bias != NULL ? bias[oc + 1] : 0);
        if (ta_nn_requant_is_r2(&qa) && ta_nn_requant_is_r2(&qb)) {
            conv_1x1_pair(input, wa, pixels, depth, out_c, ba, bb, &qa, &qb, &act, output + oc, 1);
        } else {
            conv_1x1_pair(input, wa, pixels, depth, out_c, ba, bb, &qa, &qb, &act, output + oc, 0);
        }
    }
    if (oc < out_c) { /* an odd last channel */
        const int8_t *wa = filter + (size_t)oc * (size_t)depth;
        const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
        const int32_t ba = bias != NULL ? bias[oc] : 0;
        for (int32_t px = 0; px < pixels; ++px) {
            const int32_t acc = ta_nn_dot_1x1_s8(input + (size_t)px * (size_t)depth, wa, depth, off, ba);
            output[(size_t)px * (size_t)out_c + (size_t)oc] = conv_finish(acc, &qa, &o);
        }
    }
}

/* Outputs (a, oc), (a, oc+1), (b, oc), (b, oc+1) from the 2x2 accumulators. */
static TA_NN_ALWAYS_INLINE void conv_store4(const int32_t acc[4], const ta_nn_requant_t *qa,
                                            const ta_nn_requant_t *qb, const ta_nn_act2_t *act, int8_t *out_a,
                                            int8_t *out_b, const int r2)
{
    const int32_t va = ta_nn_finish2(acc[0], qa, acc[1], qb, act, r2);
    const int32_t vb = ta_nn_finish2(acc[2], qa, acc[3], qb, act, r2);
    out_a[0] = (int8_t)va;
    out_a[1] = (int8_t)(va >> 16);
    out_b[0] = (int8_t)vb;
    out_b[1] = (int8_t)(vb >> 16);
}

/* Patch (im2col) path: the patches of two pixels and a chunk of per-channel start values
 * live in the op's arena scratch (layout and limits: tinyadapt/internal/ta_conv_scratch.h). */
#define CONV_OC_CHUNK TA_CONV_OC_CHUNK

/* The k_h * k_w * C_in input bytes output pixel (oy, ox) reads, in the filter's order;
 * taps outside the input hold the input zero point (x + offset = 0: no contribution, as
 * the reference's skipped taps). */
static void conv_patch(const ta_conv_params_t *p, const int8_t *image, int32_t in_h, int32_t in_w, int32_t depth,
                       int32_t k_h, int32_t k_w, int32_t oy, int32_t ox, int8_t *dst)
{
    const int8_t zp = (int8_t)-p->input_offset;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const size_t row_bytes = (size_t)k_w * (size_t)depth;
    int32_t kx0, kx1;
    const int cols = ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1);
    for (int32_t ky = 0; ky < k_h; ++ky, dst += row_bytes) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in_h || !cols) {
            memset(dst, zp, row_bytes);
            continue;
        }
        const int8_t *row = image + (size_t)iy * (size_t)in_w * (size_t)depth;
        if (p->dilation_w == 1) {
            /* one run of valid columns, zero point either side */
            const size_t before = (size_t)kx0 * (size_t)depth, run = (size_t)(kx1 - kx0 + 1) * (size_t)depth;
            const size_t after = row_bytes - before - run;
            /* interior pixels have no padding: skip the empty calls (~20 instructions a pixel) */
            if (before > 0) {
                memset(dst, zp, before);
            }
            memcpy(dst + before, row + (size_t)(x0 + kx0) * (size_t)depth, run);
            if (after > 0) {
                memset(dst + before + run, zp, after);
            }
            continue;
        }
        for (int32_t kx = 0; kx < k_w; ++kx) {
            int8_t *d = dst + (size_t)kx * (size_t)depth;
            if (kx < kx0 || kx > kx1) {
                memset(d, zp, (size_t)depth);
            } else {
                memcpy(d, row + (size_t)(x0 + kx * p->dilation_w) * (size_t)depth, (size_t)depth);
            }
        }
    }
}

/* Any filter of at most TA_CONV_PATCH_MAX taps x channels (the first 3x3 layer of a
 * MobileNet: 27): the patches of two output pixels are gathered side by side, `fs` bytes
 * apart, the same distance as one filter row from the next, so the 1x1 loop (2 pixels x
 * 2 output channels, raw int8, offset folded into the start value) runs on them as is.
 * Every tap is in the patch, padding included, so the start value offset * sum(w) is the
 * same for every pixel: worked out once per chunk of output channels. */
static TA_NN_NOINLINE void conv_im2col(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                        const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                        const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims, int8_t *output,
                        int8_t *scratch, const ta_conv_scratch_t *layout)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, depth = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const int32_t fs = k_h * k_w * depth;
    const size_t image_bytes = (size_t)in_h * (size_t)in_w * (size_t)depth;
    const int64_t pixels = (int64_t)out_dims->n * out_h * out_w;
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    /* restrict: as the stack arrays they replace, nothing else reaches these bytes (else every
     * output byte stored would force the start values to be reloaded). */
    int32_t *restrict start = (int32_t *)(void *)scratch; /* the arena scratch is word-aligned */
    int8_t *restrict patch = scratch + layout->patch_at;

    for (int32_t oc0 = 0; oc0 < out_c; oc0 += CONV_OC_CHUNK) {
        const int32_t n_oc = out_c - oc0 < CONV_OC_CHUNK ? out_c - oc0 : CONV_OC_CHUNK;
        for (int32_t i = 0; i < n_oc; ++i) {
            const int32_t oc = oc0 + i;
            start[i] = ta_nn_mla_wrap(p->input_offset, ta_nn_sum_s8(filter + (size_t)oc * (size_t)fs, fs),
                                      bias != NULL ? bias[oc] : 0);
        }
        int32_t b = 0, oy = 0, ox = 0; /* the next output pixel */
        for (int64_t px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            int8_t *out_a = output + (size_t)px * (size_t)out_c, *out_b = out_a + out_c;
            for (int k = 0; k < (two ? 2 : 1); ++k) {
                conv_patch(p, input + (size_t)b * image_bytes, in_h, in_w, depth, k_h, k_w, oy, ox,
                           patch + (size_t)k * (size_t)fs);
                if (++ox == out_w) {
                    ox = 0;
                    if (++oy == out_h) {
                        oy = 0;
                        ++b;
                    }
                }
            }
            int32_t i = 0;
            for (; i + 1 < n_oc; i += 2) {
                const int32_t oc = oc0 + i;
                const int8_t *w = filter + (size_t)oc * (size_t)fs;
                const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
                const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc + 1], shift[oc + 1]);
                if (two) {
                    int32_t acc[4];
                    acc[0] = acc[2] = start[i];
                    acc[1] = acc[3] = start[i + 1];
                    ta_nn_dot_2x2_raw_s8(patch, w, fs, fs, acc);
                    if (ta_nn_requant_is_r2(&qa) && ta_nn_requant_is_r2(&qb)) {
                        conv_store4(acc, &qa, &qb, &act, out_a + oc, out_b + oc, 1);
                    } else {
                        conv_store4(acc, &qa, &qb, &act, out_a + oc, out_b + oc, 0);
                    }
                } else {
                    int32_t acc[2] = {start[i], start[i + 1]};
                    ta_nn_dot_1x2_s8(patch, w, w + fs, fs, 0, acc);
                    const int32_t va = ta_nn_clamp2(ta_nn_requant(acc[0], &qa), ta_nn_requant(acc[1], &qb), &act);
                    out_a[oc] = (int8_t)va;
                    out_a[oc + 1] = (int8_t)(va >> 16);
                }
            }
            if (i < n_oc) { /* an odd last channel: its filter row against both patches */
                const int32_t oc = oc0 + i;
                const ta_nn_requant_t q = ta_nn_requant_make(multiplier[oc], shift[oc]);
                int32_t acc[2] = {start[i], start[i]};
                ta_nn_dot_1x2_s8(filter + (size_t)oc * (size_t)fs, patch, two ? patch + fs : patch, fs, 0, acc);
                const int32_t v = ta_nn_clamp2(ta_nn_requant(acc[0], &q), ta_nn_requant(acc[1], &q), &act);
                out_a[oc] = (int8_t)v;
                if (two) {
                    out_b[oc] = (int8_t)(v >> 16);
                }
            }
        }
    }
}

/* dilation_w == 1: a pixel's taps in filter row ky are columns kx0..kx1, i.e. the
 * (kx1 - kx0 + 1) * depth bytes from input column x0 + kx0 on, matched by the filter row's
 * bytes from kx0 * depth on. Two horizontally adjacent output pixels that read the same
 * filter columns (all of the interior) go through the 2x2 dot product together. */
static void conv_rows(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                      const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                      const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims, int8_t *output)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, depth = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const size_t filter_stride = (size_t)k_h * (size_t)k_w * (size_t)depth;
    const size_t row_bytes = (size_t)in_w * (size_t)depth;
    const conv_out_t o = {p->output_offset, p->act_min, p->act_max};
    const int32_t off = p->input_offset;

    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)in_h * row_bytes;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            const int rows = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
            int8_t *out_row = output + ((size_t)b * (size_t)out_h + (size_t)oy) * (size_t)out_w * (size_t)out_c;
            int32_t ox = 0;
            while (ox < out_w) {
                const int32_t xa0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                const int cols = ta_nn_valid_taps(xa0, 1, k_w, in_w, &kx0, &kx1);
                /* Pair this pixel with the next one when that one reads the same filter columns. */
                int32_t pair = 0;
                if (ox + 1 < out_w) {
                    int32_t nx0, nx1;
                    const int ncols = ta_nn_valid_taps(xa0 + p->stride_w, 1, k_w, in_w, &nx0, &nx1);
                    pair = ncols == cols && (!cols || (nx0 == kx0 && nx1 == kx1));
                }
                const int32_t len = (rows && cols) ? (kx1 - kx0 + 1) * depth : 0;
                /* Row 0 of the taps' columns; only dereferenced (at valid rows) when len > 0. */
                const int8_t *xa = len > 0 ? image + (size_t)(xa0 + kx0) * (size_t)depth : image;
                const int8_t *xb = pair && len > 0 ? xa + (size_t)p->stride_w * (size_t)depth : xa;
                int8_t *out_a = out_row + (size_t)ox * (size_t)out_c;
                int8_t *out_b = out_a + (size_t)out_c;
                for (int32_t oc = 0; oc < out_c; oc += 2) {
                    const int32_t oc2 = oc + 1 < out_c ? oc + 1 : oc;
                    const size_t col_off = len > 0 ? (size_t)kx0 * (size_t)depth : 0;
                    const int8_t *wa = filter + (size_t)oc * filter_stride + col_off;
                    const int8_t *wb = filter + (size_t)oc2 * filter_stride + col_off;
                    const int32_t ba = bias != NULL ? bias[oc] : 0, bb = bias != NULL ? bias[oc2] : 0;
                    int32_t acc[4] = {ba, bb, ba, bb};
                    if (len > 0) {
                        for (int32_t ky = ky0; ky <= ky1; ++ky) {
                            const size_t in_off = (size_t)(y0 + ky * p->dilation_h) * row_bytes;
                            const size_t w_off = (size_t)ky * (size_t)k_w * (size_t)depth;
                            ta_nn_dot_2x2_s8(xa + in_off, xb + in_off, wa + w_off, wb + w_off, len, off, acc);
                        }
                    }
                    const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
                    out_a[oc] = conv_finish(acc[0], &qa, &o);
                    if (pair) {
                        out_b[oc] = conv_finish(acc[2], &qa, &o);
                    }
                    if (oc2 != oc) {
                        const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc2], shift[oc2]);
                        out_a[oc2] = conv_finish(acc[1], &qb, &o);
                        if (pair) {
                            out_b[oc2] = conv_finish(acc[3], &qb, &o);
                        }
                    }
                }
                ox += pair ? 2 : 1;
            }
        }
    }
}

ta_status_t ta_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                         const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                         const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                         int8_t *output, void *scratch, int32_t scratch_size)
{
    if (!ta_conv2d_kernel_args_ok(p, in_dims, input, filter_dims, filter, multiplier, shift, out_dims, output)) {
        return TA_ERR_ARG;
    }
    /* The fast requantization's precondition. (ta_conv_args_ok already keeps input_offset
     * in [-127, 128], so every x + offset fits the int16 lanes of SXTAB16.) */
    if (!ta_nn_requant_fast_ok(multiplier, shift, out_dims->c)) {
        ta_conv2d_ref_loop(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
        return TA_OK;
    }
    if (ta_conv_is_gemm(p, in_dims, filter_dims, out_dims)) {
        const int32_t pixels = in_dims->n * in_dims->h * in_dims->w;
        conv_1x1_gemm(p, pixels, in_dims->c, out_dims->c, input, filter, bias, multiplier, shift, output);
        return TA_OK;
    }
    const ta_conv_scratch_t layout = ta_conv_scratch_layout(p, in_dims, filter_dims, out_dims);
    if (layout.total > 0 && scratch != NULL && scratch_size >= layout.total) {
        conv_im2col(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output,
                    (int8_t *)scratch, &layout);
        return TA_OK;
    }
    if (p->dilation_w == 1) {
        conv_rows(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
        return TA_OK;
    }
    ta_conv2d_ref_loop(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
    return TA_OK;
}
