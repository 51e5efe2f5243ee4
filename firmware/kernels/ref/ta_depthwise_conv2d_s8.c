#include "tinyadapt/ops/ta_depthwise_conv2d.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

ta_status_t ta_depthwise_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                   const int8_t *input, const ta_dims_t *filter_dims,
                                   const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                                   const int32_t *shift, const ta_dims_t *out_dims, int8_t *output)
{
    if (p == NULL || in_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
        multiplier == NULL || shift == NULL || out_dims == NULL || output == NULL) {
        return TA_ERR_ARG;
    }
    if (!ta_conv_args_ok(p, in_dims, filter_dims, out_dims) || p->depth_multiplier < 1 ||
        filter_dims->n != 1 || filter_dims->c != out_dims->c ||
        (int64_t)in_dims->c * p->depth_multiplier != out_dims->c || !ta_conv_shifts_ok(shift, out_dims->c)) {
        return TA_ERR_ARG;
    }
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_c = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const int32_t dm = p->depth_multiplier;

    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)in_h * (size_t)in_w * (size_t)in_c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + (((size_t)b * (size_t)out_h + (size_t)oy) * (size_t)out_w + (size_t)ox) *
                                           (size_t)out_c;
                for (int32_t ic = 0; ic < in_c; ++ic) {
                    for (int32_t m = 0; m < dm; ++m) {
                        const int32_t oc = ic * dm + m;
                        int32_t acc = 0;
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
                                acc = ta_nn_add_wrap(acc, w * (x + p->input_offset));
                            }
                        }
                        if (bias != NULL) {
                            acc = ta_nn_add_wrap(acc, bias[oc]);
                        }
                        acc = ta_nn_add_wrap(ta_nn_requantize(acc, multiplier[oc], shift[oc]), p->output_offset);
                        out[oc] = (int8_t)ta_nn_clamp(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
    return TA_OK;
}
