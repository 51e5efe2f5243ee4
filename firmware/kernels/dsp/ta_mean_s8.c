/*
 * MEAN int8 for cores with the DSP extension: the same function, arguments, checks and
 * output bits as kernels/ref/ta_mean_s8.c (ta_mean_ref.h). The common case, a contiguous
 * run of averaged axes with the innermost (channel) axis kept (global pooling: [N, H, W, C]
 * over H and W), sums four channels per word: SXTAB16 adds the bytes of a word into two
 * int16 lanes each, flushed into int32 sums every 256 rows (256 * 128 fits int16). The
 * sums are the reference's modulo 2^32, which is all it keeps. Every other axis set runs
 * the reference loop.
 */
#include "tinyadapt/ops/ta_mean.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_mean_ref.h"
#include "tinyadapt/internal/ta_nn_simd.h"

static int8_t mean_finish(const ta_mean_params_t *p, uint32_t sum, uint32_t zp_total)
{
    const int32_t v = ta_nn_requantize((int32_t)(sum - zp_total), p->multiplier, p->shift) + p->output_zp;
    return (int8_t)ta_nn_clamp(v, -128, 127);
}

ta_status_t ta_mean_s8(const ta_mean_params_t *p, const int32_t *in_dims, const int8_t *input, int8_t *output)
{
    if (!ta_mean_kernel_args_ok(p, in_dims, input, output)) {
        return TA_ERR_ARG;
    }
    /* [outer (kept), reduced run, inner (kept, innermost axis)] */
    int r0 = -1, r1 = -1, ok = p->ndim >= 2;
    for (int i = 0; i < p->ndim; ++i) {
        ok = ok && in_dims[i] > 0;
        if (p->axis_mask & (1 << i)) {
            ok = ok && (r1 < 0 || r1 == i - 1);
            r0 = r0 < 0 ? i : r0;
            r1 = i;
        }
    }
    if (!ok || r0 < 0 || r1 >= p->ndim - 1) {
        return ta_mean_ref_loop(p, in_dims, input, output);
    }
    size_t outer = 1, red = 1, inner = 1;
    for (int i = 0; i < p->ndim; ++i) {
        const size_t e = (size_t)in_dims[i];
        if (i < r0) {
            outer *= e;
        } else if (i <= r1) {
            red *= e;
        } else {
            inner *= e;
        }
    }
    /* the reference's (sum - zp * count) truncated to int32: the same modulo 2^32 */
    const uint32_t zp_total = (uint32_t)p->input_zp * (uint32_t)red;
    const size_t inner4 = inner & ~(size_t)3;
    int8_t *out = output;
    for (size_t a = 0; a < outer; ++a, out += inner) {
        const int8_t *base = input + a * red * inner;
        for (size_t i = 0; i < inner4; i += 4) {
            uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            const int8_t *x = base + i;
            for (size_t r = 0; r < red;) {
                const size_t end = red - r > 256 ? r + 256 : red;
                int32_t e02 = 0, e13 = 0;
                for (; r < end; ++r, x += inner) {
                    const int32_t v = ta_nn_read_s8x4(x);
                    e02 = ta_nn_sxtab16(e02, v);
                    e13 = ta_nn_sxtab16_ror8(e13, v);
                }
                s0 += (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)e02 & 0xFFFFu);
                s2 += (uint32_t)((int32_t)e02 >> 16);
                s1 += (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)e13 & 0xFFFFu);
                s3 += (uint32_t)((int32_t)e13 >> 16);
            }
            out[i] = mean_finish(p, s0, zp_total);
            out[i + 1] = mean_finish(p, s1, zp_total);
            out[i + 2] = mean_finish(p, s2, zp_total);
            out[i + 3] = mean_finish(p, s3, zp_total);
        }
        for (size_t i = inner4; i < inner; ++i) {
            uint32_t s = 0;
            const int8_t *x = base + i;
            for (size_t r = 0; r < red; ++r, x += inner) {
                s += (uint32_t)(int32_t)*x;
            }
            out[i] = mean_finish(p, s, zp_total);
        }
    }
    return TA_OK;
}
