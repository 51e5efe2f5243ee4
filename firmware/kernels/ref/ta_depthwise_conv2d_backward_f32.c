#include <stddef.h>

#include "tinyadapt/ops/ta_backward.h"

/* Output channel co reads input channel co / depth_multiplier only; same scatter order as
 * the regular convolution's input gradient. */
void ta_depthwise_conv2d_backward_input_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                            const ta_dims_t *filter_dims, const ta_dims_t *out_dims,
                                            const float *dy, const int8_t *filter, const ta_op_rows_t *rows,
                                            const float *filter_scale, int accumulate, float *dx)
{
    const int32_t in_c = in_dims->c, out_c = out_dims->c, m = p->depth_multiplier;
    if (!accumulate) {
        const size_t n = (size_t)in_dims->n * in_dims->h * in_dims->w * in_c;
        for (size_t i = 0; i < n; ++i) {
            dx[i] = 0.0f;
        }
    }
    for (int32_t b = 0; b < out_dims->n; ++b) {
        for (int32_t oy = 0; oy < out_dims->h; ++oy) {
            for (int32_t ox = 0; ox < out_dims->w; ++ox) {
                const float *g = dy + (((size_t)b * out_dims->h + oy) * out_dims->w + ox) * out_c;
                for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= in_dims->h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= in_dims->w) {
                            continue;
                        }
                        float *d = dx + (((size_t)b * in_dims->h + iy) * in_dims->w + ix) * in_c;
                        const size_t tap = (size_t)ky * filter_dims->w + kx;
                        const int8_t *w = filter + tap * out_c;
                        /* The channels between two of `rows` read the filter; those of `rows`
                         * their row: runs instead of a test per channel. */
                        const int32_t n_rows = rows != NULL ? rows->n : 0;
                        int32_t co = 0;
                        for (int32_t k = 0; k <= n_rows; ++k) {
                            const int32_t end = k < n_rows ? rows->channels[k] : out_c;
                            if (m == 1) {
                                for (; co < end; ++co) {
                                    d[co] += g[co] * filter_scale[co] * (float)w[co];
                                }
                            } else {
                                for (; co < end; ++co) {
                                    d[co / m] += g[co] * filter_scale[co] * (float)w[co];
                                }
                            }
                            if (k < n_rows) {
                                d[co / m] += g[co] * filter_scale[co] * (float)rows->rows[tap * (size_t)n_rows + (size_t)k];
                                ++co;
                            }
                        }
                    }
                }
            }
        }
    }
}

/* Pixel by pixel: one test skips all taps of a masked (ReLU) output, which on the small maps
 * of the layers a sparse update reaches is cheaper than working out each tap's output range. */
void ta_depthwise_conv2d_backward_filter_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                                             int32_t x_zero_point, float x_scale, const ta_dims_t *filter_dims,
                                             const ta_dims_t *out_dims, const float *dy, int32_t channel,
                                             float *grad)
{
    const int32_t in_c = in_dims->c, out_c = out_dims->c;
    const int32_t ci = channel / p->depth_multiplier;
    for (int32_t k = 0; k < filter_dims->h * filter_dims->w; ++k) {
        grad[k] = 0.0f;
    }
    for (int32_t b = 0; b < out_dims->n; ++b) {
        for (int32_t oy = 0; oy < out_dims->h; ++oy) {
            for (int32_t ox = 0; ox < out_dims->w; ++ox) {
                const float g = dy[(((size_t)b * out_dims->h + oy) * out_dims->w + ox) * out_c + channel];
                if (g == 0.0f) {
                    continue;
                }
                const float gs = g * x_scale;
                for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= in_dims->h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= in_dims->w) {
                            continue;
                        }
                        const int8_t q = x[(((size_t)b * in_dims->h + iy) * in_dims->w + ix) * in_c + ci];
                        grad[ky * filter_dims->w + kx] += gs * (float)(q - x_zero_point);
                    }
                }
            }
        }
    }
}
