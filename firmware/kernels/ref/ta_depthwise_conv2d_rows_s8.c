#include "tinyadapt/ops/ta_depthwise_conv2d.h"

#include "tinyadapt/internal/ta_conv_ref.h"

/* The reference loop's arithmetic for one output channel at a time (a tap's weight read from
 * the n-wide rows instead of the C_out-wide filter). */
ta_status_t ta_depthwise_conv2d_rows_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                        const ta_dims_t *filter_dims, int32_t n, const int32_t *channels,
                                        const int8_t *rows, const int32_t *bias, const int32_t *multiplier,
                                        const int32_t *shift, const ta_dims_t *out_dims, int8_t *output)
{
    if (!ta_depthwise_kernel_args_ok(p, in_dims, input, filter_dims, rows, multiplier, shift, out_dims, output) ||
        channels == NULL || n < 0 || n > out_dims->c) {
        return TA_ERR_ARG;
    }
    for (int32_t k = 0; k < n; ++k) {
        if (channels[k] < 0 || channels[k] >= out_dims->c) {
            return TA_ERR_ARG;
        }
    }
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_c = in_dims->c, out_c = out_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w, dm = p->depth_multiplier;
    const int32_t in_off = p->input_offset;
    const size_t image_size = (size_t)in_h * (size_t)in_w * (size_t)in_c;
    int8_t *out = output;
    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * image_size;
        for (int32_t oy = 0; oy < out_dims->h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < out_dims->w; ++ox, out += out_c) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t k = 0; k < n; ++k) {
                    const int32_t oc = channels[k], ic = oc / dm;
                    uint32_t acc = 0;
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
                            const int32_t x = image[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c + (size_t)ic];
                            const int32_t w = rows[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)n + (size_t)k];
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
    }
    return TA_OK;
}
