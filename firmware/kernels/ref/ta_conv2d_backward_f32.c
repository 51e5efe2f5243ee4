#include <stddef.h>

#include "tinyadapt/internal/ta_grad_axpy.h"
#include "tinyadapt/ops/ta_backward.h"

/*
 * The input gradient scatters each output gradient back through the taps that produced it:
 * dx[iy, ix, ci] += dy[oy, ox, co] * scale[co] * w[co, ky, kx, ci]. Looping over outputs and
 * taps in order (not over inputs) keeps one fixed summation order for every input element
 * and needs no index inversion for strides, dilations or asymmetric padding. Up to four
 * output channels are added per pass over the C_in inputs (ta_grad_axpy.h: same order, same
 * bits, a quarter of the loads and stores of dx).
 */
void ta_conv2d_backward_input_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const ta_dims_t *filter_dims,
                                  const ta_dims_t *out_dims, const float *dy, const int8_t *filter,
                                  const ta_op_rows_t *rows, const float *filter_scale, int accumulate, float *dx)
{
    const size_t taps = (size_t)filter_dims->h * filter_dims->w;
    const int32_t in_c = in_dims->c, out_c = out_dims->c;
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
                        int32_t k = 0; /* next channel of `rows` */
                        float gs[TA_GRAD_GROUP];
                        const int8_t *ws[TA_GRAD_GROUP];
                        int n = 0;
                        for (int32_t co = 0; co < out_c; ++co) {
                            const int8_t *w = filter + ((size_t)co * taps + tap) * in_c;
                            if (rows != NULL && k < rows->n && rows->channels[k] == co) {
                                w = rows->rows + ((size_t)k++ * taps + tap) * in_c;
                            }
                            const float g_co = g[co] * filter_scale[co];
                            if (g_co == 0.0f) {
                                continue; /* masked outputs (ReLU) are common: skip their taps */
                            }
                            gs[n] = g_co;
                            ws[n++] = w;
                            if (n == TA_GRAD_GROUP) {
                                ta_grad_axpy_s8(d, in_c, n, gs, ws, 0);
                                n = 0;
                            }
                        }
                        ta_grad_axpy_s8(d, in_c, n, gs, ws, 0);
                    }
                }
            }
        }
    }
}

/* One tap at a time: the gradient of its C_in weights sums, over the output pixels whose
 * window holds the tap (in output order), gs * (x - zero point), four pixels per pass over
 * the C_in sums (ta_grad_axpy.h: for each weight the same additions in the same order as a
 * pixel-by-pixel scatter, so the same bits). */
void ta_conv2d_backward_filter_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                                   int32_t x_zero_point, float x_scale, const ta_dims_t *filter_dims,
                                   const ta_dims_t *out_dims, const float *dy, int32_t channel, float *grad)
{
    const int32_t in_c = in_dims->c, out_c = out_dims->c;
    const size_t row = (size_t)filter_dims->h * filter_dims->w * in_c;
    for (size_t i = 0; i < row; ++i) {
        grad[i] = 0.0f;
    }
    for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
        for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            float *gr = grad + ((size_t)ky * filter_dims->w + kx) * in_c;
            float gs[TA_GRAD_GROUP];
            const int8_t *xs[TA_GRAD_GROUP];
            int n = 0;
            for (int32_t b = 0; b < out_dims->n; ++b) {
                for (int32_t oy = 0; oy < out_dims->h; ++oy) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= in_dims->h) {
                        continue;
                    }
                    for (int32_t ox = 0; ox < out_dims->w; ++ox) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= in_dims->w) {
                            continue;
                        }
                        const float g = dy[(((size_t)b * out_dims->h + oy) * out_dims->w + ox) * out_c + channel];
                        if (g == 0.0f) {
                            continue;
                        }
                        gs[n] = g * x_scale;
                        xs[n++] = x + (((size_t)b * in_dims->h + iy) * in_dims->w + ix) * in_c;
                        if (n == TA_GRAD_GROUP) {
                            ta_grad_axpy_s8(gr, in_c, n, gs, xs, -x_zero_point);
                            n = 0;
                        }
                    }
                }
            }
            ta_grad_axpy_s8(gr, in_c, n, gs, xs, -x_zero_point);
        }
    }
}
