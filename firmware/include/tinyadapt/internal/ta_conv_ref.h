/*
 * The reference CONV_2D and DEPTHWISE_CONV_2D: the argument checks of each kernel and the
 * plain loops that define its bits (TFLM reference_integer_ops). kernels/ref/ is exactly
 * these; kernels/dsp/ makes the same checks and falls back to the same loops wherever its
 * fast paths do not apply, so the two builds cannot drift apart.
 */
#ifndef TA_CONV_REF_H
#define TA_CONV_REF_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/ops/ta_conv2d.h"

/* ta_conv2d_s8's arguments: non-NULL pointers (bias may be NULL), consistent dims and params. */
static inline int ta_conv2d_kernel_args_ok(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                           const ta_dims_t *filter_dims, const int8_t *filter,
                                           const int32_t *multiplier, const int32_t *shift,
                                           const ta_dims_t *out_dims, const int8_t *output)
{
    if (p == NULL || in_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
        multiplier == NULL || shift == NULL || out_dims == NULL || output == NULL) {
        return 0;
    }
    return ta_conv_args_ok(p, in_dims, filter_dims, out_dims) && filter_dims->c == in_dims->c &&
           filter_dims->n == out_dims->c && ta_conv_shifts_ok(shift, out_dims->c);
}

/* ta_depthwise_conv2d_s8's arguments: as above, with filter [1, KH, KW, C_in * multiplier]. */
static inline int ta_depthwise_kernel_args_ok(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                              const int8_t *input, const ta_dims_t *filter_dims,
                                              const int8_t *filter, const int32_t *multiplier, const int32_t *shift,
                                              const ta_dims_t *out_dims, const int8_t *output)
{
    if (p == NULL || in_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
        multiplier == NULL || shift == NULL || out_dims == NULL || output == NULL) {
        return 0;
    }
    return ta_conv_args_ok(p, in_dims, filter_dims, out_dims) && p->depth_multiplier >= 1 &&
           filter_dims->n == 1 && filter_dims->c == out_dims->c &&
           (int64_t)in_dims->c * p->depth_multiplier == out_dims->c && ta_conv_shifts_ok(shift, out_dims->c);
}

/* ta_depthwise_conv2d_inplace_s8's arguments: multiplier 1, one image, an output no larger
 * than the input, and one input channel plane of scratch. */
static inline int ta_depthwise_inplace_kernel_args_ok(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                      const int8_t *buffer, const ta_dims_t *filter_dims,
                                                      const int8_t *filter, const int32_t *multiplier,
                                                      const int32_t *shift, const ta_dims_t *out_dims,
                                                      const int8_t *scratch, int32_t scratch_size)
{
    return ta_depthwise_kernel_args_ok(p, in_dims, buffer, filter_dims, filter, multiplier, shift, out_dims,
                                       buffer) &&
           scratch != NULL && p->depth_multiplier == 1 && in_dims->n == 1 &&
           (int64_t)out_dims->h * out_dims->w <= (int64_t)in_dims->h * in_dims->w &&
           (int64_t)in_dims->h * in_dims->w <= scratch_size;
}

#if defined(__GNUC__)
#define TA_REF_NOINLINE __attribute__((noinline))
#else
#define TA_REF_NOINLINE
#endif

/* The out_c outputs of one pixel whose window starts at (y0, x0). A function of its own,
 * not inlined into the pixel loops: with the batch/row/column loops around it, GCC ran
 * out of registers and reloaded the tap loop's pointers and offset from the stack on
 * every multiply-accumulate (+44 % instructions on the digits CNN's convolutions). */
static TA_REF_NOINLINE void ta_conv2d_ref_pixel(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                const int8_t *image, const ta_dims_t *filter_dims,
                                                const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                                                const int32_t *shift, int32_t out_c, int32_t y0, int32_t x0,
                                                int8_t *out)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, depth = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const size_t filter_stride = (size_t)k_h * (size_t)k_w * (size_t)depth;
    const int32_t in_off = p->input_offset;
    for (int32_t oc = 0; oc < out_c; ++oc) {
        const int8_t *w = filter + (size_t)oc * filter_stride;
        uint32_t acc = 0;
        for (int32_t ky = 0; ky < k_h; ++ky) {
            const int32_t iy = y0 + ky * p->dilation_h;
            if (iy < 0 || iy >= in_h) {
                continue; /* zero padding: the tap contributes nothing */
            }
            for (int32_t kx = 0; kx < k_w; ++kx) {
                const int32_t ix = x0 + kx * p->dilation_w;
                if (ix < 0 || ix >= in_w) {
                    continue;
                }
                const int8_t *x = image + ((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)depth;
                const int8_t *wk = w + ((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)depth;
                for (int32_t ic = 0; ic < depth; ++ic) {
                    acc += (uint32_t)((int32_t)wk[ic] * ((int32_t)x[ic] + in_off)); /* wraps like int32 */
                }
            }
        }
        int32_t v = (int32_t)acc;
        if (bias != NULL) {
            v = ta_nn_add_wrap(v, bias[oc]);
        }
        v = ta_nn_add_wrap(ta_nn_requantize(v, multiplier[oc], shift[oc]), p->output_offset);
        out[oc] = (int8_t)ta_nn_clamp(v, p->act_min, p->act_max);
    }
}

/* The reference convolution; arguments checked by ta_conv2d_kernel_args_ok. */
static inline void ta_conv2d_ref_loop(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                      const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                      const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                                      int8_t *output)
{
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const size_t image_size = (size_t)in_dims->h * (size_t)in_dims->w * (size_t)in_dims->c;
    int8_t *out = output;
    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * image_size;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            for (int32_t ox = 0; ox < out_w; ++ox, out += out_c) {
                ta_conv2d_ref_pixel(p, in_dims, image, filter_dims, filter, bias, multiplier, shift, out_c,
                                    oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, out);
            }
        }
    }
}

/* The in_c * multiplier outputs of one pixel whose window starts at (y0, x0); out of line
 * for the same reason as ta_conv2d_ref_pixel. */
static TA_REF_NOINLINE void ta_depthwise_ref_pixel(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                   const int8_t *image, const ta_dims_t *filter_dims,
                                                   const int8_t *filter, const int32_t *bias,
                                                   const int32_t *multiplier, const int32_t *shift, int32_t out_c,
                                                   int32_t y0, int32_t x0, int8_t *out)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_c = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t dm = p->depth_multiplier;
    const int32_t in_off = p->input_offset;
    for (int32_t ic = 0; ic < in_c; ++ic) {
        for (int32_t m = 0; m < dm; ++m) {
            const int32_t oc = ic * dm + m;
            uint32_t acc = 0;
            for (int32_t ky = 0; ky < k_h; ++ky) {
                const int32_t iy = y0 + ky * p->dilation_h;
                if (iy < 0 || iy >= in_h) {
                    continue; /* zero padding: the tap contributes nothing */
                }
                for (int32_t kx = 0; kx < k_w; ++kx) {
                    const int32_t ix = x0 + kx * p->dilation_w;
                    if (ix < 0 || ix >= in_w) {
                        continue;
                    }
                    const int32_t x = image[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c + (size_t)ic];
                    const int32_t w = filter[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)out_c + (size_t)oc];
                    acc += (uint32_t)(w * (x + in_off)); /* wraps like int32 */
                }
            }
            int32_t v = (int32_t)acc;
            if (bias != NULL) {
                v = ta_nn_add_wrap(v, bias[oc]);
            }
            v = ta_nn_add_wrap(ta_nn_requantize(v, multiplier[oc], shift[oc]), p->output_offset);
            out[oc] = (int8_t)ta_nn_clamp(v, p->act_min, p->act_max);
        }
    }
}

/* The reference depthwise convolution; arguments checked by ta_depthwise_kernel_args_ok. */
static inline void ta_depthwise_ref_loop(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                         const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                         const int32_t *multiplier, const int32_t *shift,
                                         const ta_dims_t *out_dims, int8_t *output)
{
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const size_t image_size = (size_t)in_dims->h * (size_t)in_dims->w * (size_t)in_dims->c;
    int8_t *out = output;
    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * image_size;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            for (int32_t ox = 0; ox < out_w; ++ox, out += out_c) {
                ta_depthwise_ref_pixel(p, in_dims, image, filter_dims, filter, bias, multiplier, shift, out_c,
                                       oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, out);
            }
        }
    }
}

#endif /* TA_CONV_REF_H */
