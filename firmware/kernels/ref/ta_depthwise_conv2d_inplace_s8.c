/*
 * Depthwise convolution (depth multiplier 1) whose output overwrites its input.
 *
 * In MobileNet-style blocks the depthwise layer sets peak SRAM, because its input and
 * output are both live. Going one channel at a time needs only that channel's input plane
 * as scratch: output channel c is written into the slots of input channel c (output pixel
 * k sits at or before input pixel k, as OH*OW <= H*W), which the plane copy has already
 * saved, and no other channel's input is touched. The arithmetic is exactly
 * ta_depthwise_conv2d_s8's.
 */
#include "tinyadapt/ops/ta_depthwise_conv2d.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_conv_ref.h"

ta_status_t ta_depthwise_conv2d_inplace_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, int8_t *buffer,
                                           const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                           const int32_t *multiplier, const int32_t *shift,
                                           const ta_dims_t *out_dims, int8_t *scratch, int32_t scratch_size)
{
    if (!ta_depthwise_inplace_kernel_args_ok(p, in_dims, buffer, filter_dims, filter, multiplier, shift, out_dims,
                                             scratch, scratch_size)) {
        return TA_ERR_ARG;
    }
    const int32_t in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w;

    for (int32_t c = 0; c < ch; ++c) {
        for (int32_t i = 0; i < in_h * in_w; ++i) {
            scratch[i] = buffer[(size_t)i * (size_t)ch + (size_t)c];
        }
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t acc = 0;
                for (int32_t ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = y0 + ky * p->dilation_h;
                    if (iy < 0 || iy >= in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = x0 + kx * p->dilation_w;
                        if (ix < 0 || ix >= in_w) {
                            continue;
                        }
                        const int32_t x = scratch[(size_t)iy * (size_t)in_w + (size_t)ix];
                        const int32_t w = filter[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)ch + (size_t)c];
                        acc = ta_nn_add_wrap(acc, w * (x + p->input_offset));
                    }
                }
                if (bias != NULL) {
                    acc = ta_nn_add_wrap(acc, bias[c]);
                }
                acc = ta_nn_add_wrap(ta_nn_requantize(acc, multiplier[c], shift[c]), p->output_offset);
                buffer[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)ch + (size_t)c] =
                    (int8_t)ta_nn_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
    return TA_OK;
}
