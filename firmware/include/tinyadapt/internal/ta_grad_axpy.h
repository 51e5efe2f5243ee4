/*
 * d[i] += g[0] * w[0][i] + ... + g[n-1] * w[n-1][i] for i in [0, len), n <= 4, with int8 w:
 * the inner step of the input-gradient kernels. Adding the n terms to a register copy of d[i]
 * one after the other is the same sequence of float operations as n passes of d[i] += g*w
 * (so the bits do not change), with one load and one store of d[i] per n terms instead of n.
 */
#ifndef TA_GRAD_AXPY_H
#define TA_GRAD_AXPY_H

#include <stdint.h>

#define TA_GRAD_GROUP 4

static inline void ta_grad_axpy_s8(float *d, int32_t len, int n, const float *g, const int8_t *const *w, int32_t w_offset)
{
    switch (n) {
    case 4: {
        const float g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3];
        const int8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
        for (int32_t i = 0; i < len; ++i) {
            float t = d[i];
            t += g0 * (float)(w0[i] + w_offset);
            t += g1 * (float)(w1[i] + w_offset);
            t += g2 * (float)(w2[i] + w_offset);
            t += g3 * (float)(w3[i] + w_offset);
            d[i] = t;
        }
        return;
    }
    case 3: {
        const float g0 = g[0], g1 = g[1], g2 = g[2];
        const int8_t *w0 = w[0], *w1 = w[1], *w2 = w[2];
        for (int32_t i = 0; i < len; ++i) {
            float t = d[i];
            t += g0 * (float)(w0[i] + w_offset);
            t += g1 * (float)(w1[i] + w_offset);
            t += g2 * (float)(w2[i] + w_offset);
            d[i] = t;
        }
        return;
    }
    case 2: {
        const float g0 = g[0], g1 = g[1];
        const int8_t *w0 = w[0], *w1 = w[1];
        for (int32_t i = 0; i < len; ++i) {
            float t = d[i];
            t += g0 * (float)(w0[i] + w_offset);
            t += g1 * (float)(w1[i] + w_offset);
            d[i] = t;
        }
        return;
    }
    case 1: {
        const float g0 = g[0];
        const int8_t *w0 = w[0];
        for (int32_t i = 0; i < len; ++i) {
            d[i] += g0 * (float)(w0[i] + w_offset);
        }
        return;
    }
    default:
        return;
    }
}

#endif /* TA_GRAD_AXPY_H */
