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

/* The output rows (or columns) [*lo, *hi) whose tap at input offset `off` lands inside [0, in_n). */
static void tap_range(int32_t out_n, int32_t stride, int32_t off, int32_t in_n, int32_t *lo, int32_t *hi)
{
    int32_t a = 0, b = out_n;
    while (a < b && a * stride + off < 0) {
        ++a;
    }
    while (b > a && (b - 1) * stride + off >= in_n) {
        --b;
    }
    *lo = a;
    *hi = b;
}

/*
 * One tap at a time over the outputs whose window holds it (ranges worked out once, no bounds
 * test per pixel), summed in a register in output order: each tap's sum is the same sequence
 * of additions as a pixel-by-pixel scatter, so the same bits.
 */
void ta_depthwise_conv2d_backward_filter_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                                             int32_t x_zero_point, float x_scale, const ta_dims_t *filter_dims,
                                             const ta_dims_t *out_dims, const float *dy, int32_t channel,
                                             float *grad)
{
    const int32_t in_c = in_dims->c, out_c = out_dims->c;
    const int32_t ci = channel / p->depth_multiplier;
    const size_t x_step = (size_t)p->stride_w * (size_t)in_c;
    for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
        const int32_t off_y = ky * p->dilation_h - p->pad_top;
        int32_t oy0, oy1;
        tap_range(out_dims->h, p->stride_h, off_y, in_dims->h, &oy0, &oy1);
        for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            const int32_t off_x = kx * p->dilation_w - p->pad_left;
            int32_t ox0, ox1;
            tap_range(out_dims->w, p->stride_w, off_x, in_dims->w, &ox0, &ox1);
            float acc = 0.0f;
            for (int32_t b = 0; b < out_dims->n; ++b) {
                for (int32_t oy = oy0; oy < oy1; ++oy) {
                    const int32_t iy = oy * p->stride_h + off_y;
                    const float *g = dy + (((size_t)b * out_dims->h + oy) * out_dims->w + ox0) * out_c + channel;
                    const int8_t *xi =
                        x + (((size_t)b * in_dims->h + iy) * in_dims->w + (size_t)(ox0 * p->stride_w + off_x)) * in_c + ci;
                    for (int32_t ox = ox0; ox < ox1; ++ox, g += out_c, xi += x_step) {
                        if (*g != 0.0f) { /* masked outputs (ReLU) are common: a test is cheaper */
                            acc += (*g * x_scale) * (float)(*xi - x_zero_point);
                        }
                    }
                }
            }
            grad[ky * filter_dims->w + kx] = acc;
        }
    }
}
