#include <stddef.h>

#include "tinyadapt/internal/ta_grad_axpy.h"
#include "tinyadapt/ops/ta_backward.h"

void ta_fully_connected_backward_input_f32(int32_t batches, int32_t in_depth, int32_t out_depth, const float *dy,
                                           const int8_t *filter, const ta_op_rows_t *rows, int32_t filter_offset,
                                           const float *filter_scale, int accumulate, float *dx)
{
    for (int32_t b = 0; b < batches; ++b) {
        float *d = dx + (size_t)b * in_depth;
        const float *g = dy + (size_t)b * out_depth;
        if (!accumulate) {
            for (int32_t i = 0; i < in_depth; ++i) {
                d[i] = 0.0f;
            }
        }
        int32_t k = 0; /* next channel of `rows` */
        float gs[TA_GRAD_GROUP];
        const int8_t *ws[TA_GRAD_GROUP];
        int n = 0;
        for (int32_t o = 0; o < out_depth; ++o) {
            const int8_t *w = filter + (size_t)o * in_depth;
            if (rows != NULL && k < rows->n && rows->channels[k] == o) {
                w = rows->rows + (size_t)k++ * in_depth;
            }
            const float g_o = g[o] * filter_scale[o];
            if (g_o == 0.0f) {
                continue;
            }
            gs[n] = g_o;
            ws[n++] = w;
            if (n == TA_GRAD_GROUP) {
                ta_grad_axpy_s8(d, in_depth, n, gs, ws, filter_offset);
                n = 0;
            }
        }
        ta_grad_axpy_s8(d, in_depth, n, gs, ws, filter_offset);
    }
}

void ta_fully_connected_backward_filter_f32(int32_t batches, int32_t in_depth, int32_t out_depth, const int8_t *x,
                                            int32_t x_zero_point, float x_scale, const float *dy, int32_t channel,
                                            float *grad)
{
    for (int32_t i = 0; i < in_depth; ++i) {
        grad[i] = 0.0f;
    }
    for (int32_t b = 0; b < batches; ++b) {
        const float gs = dy[(size_t)b * out_depth + channel] * x_scale;
        if (gs == 0.0f) {
            continue;
        }
        const int8_t *xi = x + (size_t)b * in_depth;
        for (int32_t i = 0; i < in_depth; ++i) {
            grad[i] += gs * (float)(xi[i] - x_zero_point);
        }
    }
}
