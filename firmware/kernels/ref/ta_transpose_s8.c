#include "tinyadapt/ops/ta_transpose.h"

#include <stddef.h>

/*
 * Writes the output in order while the input is read with the strides of the
 * permuted dimensions. The rank is lifted to TA_TRANSPOSE_MAX_DIMS with
 * leading dimensions of one, so one fixed loop nest serves every rank.
 */
ta_status_t ta_transpose_s8(int32_t ndim, const int32_t *in_dims, const int32_t *perm, const int8_t *input,
                            int8_t *output)
{
    enum { D = TA_TRANSPOSE_MAX_DIMS };
    if (in_dims == NULL || perm == NULL || input == NULL || output == NULL || ndim < 1 || ndim > D) {
        return TA_ERR_ARG;
    }
    size_t in_stride[D];
    size_t stride = 1;
    int seen = 0;
    for (int i = ndim - 1; i >= 0; --i) {
        if (in_dims[i] <= 0 || perm[i] < 0 || perm[i] >= ndim || (seen & (1 << perm[i]))) {
            return TA_ERR_ARG;
        }
        seen |= 1 << perm[i];
        in_stride[i] = stride;
        stride *= (size_t)in_dims[i];
    }
    int32_t ext[D];  /* output extents */
    size_t step[D];  /* input stride along each output dimension */
    for (int i = 0; i < D; ++i) {
        const int k = i - (D - ndim);
        ext[i] = k >= 0 ? in_dims[perm[k]] : 1;
        step[i] = k >= 0 ? in_stride[perm[k]] : 0;
    }
    int8_t *out = output;
    for (int32_t i0 = 0; i0 < ext[0]; ++i0) {
        const int8_t *p0 = input + (size_t)i0 * step[0];
        for (int32_t i1 = 0; i1 < ext[1]; ++i1) {
            const int8_t *p1 = p0 + (size_t)i1 * step[1];
            for (int32_t i2 = 0; i2 < ext[2]; ++i2) {
                const int8_t *p2 = p1 + (size_t)i2 * step[2];
                for (int32_t i3 = 0; i3 < ext[3]; ++i3) {
                    const int8_t *p3 = p2 + (size_t)i3 * step[3];
                    for (int32_t i4 = 0; i4 < ext[4]; ++i4) {
                        const int8_t *p4 = p3 + (size_t)i4 * step[4];
                        for (int32_t i5 = 0; i5 < ext[5]; ++i5) {
                            *out++ = p4[(size_t)i5 * step[5]];
                        }
                    }
                }
            }
        }
    }
    return TA_OK;
}

ta_status_t ta_transpose_window_s8(const int32_t *in_dims, const int32_t *perm, const int8_t *input, int32_t y0,
                                   int32_t y1, int32_t x0, int32_t x1, int8_t *output)
{
    if (in_dims == NULL || perm == NULL || input == NULL || output == NULL) {
        return TA_ERR_ARG;
    }
    size_t in_stride[4];
    size_t stride = 1;
    int seen = 0;
    for (int i = 3; i >= 0; --i) {
        if (in_dims[i] <= 0 || perm[i] < 0 || perm[i] > 3 || (seen & (1 << perm[i]))) {
            return TA_ERR_ARG;
        }
        seen |= 1 << perm[i];
        in_stride[i] = stride;
        stride *= (size_t)in_dims[i];
    }
    const int32_t h = in_dims[perm[1]], w = in_dims[perm[2]], c = in_dims[perm[3]];
    if (in_dims[perm[0]] != 1 || y0 < 0 || y0 >= y1 || y1 > h || x0 < 0 || x0 >= x1 || x1 > w) {
        return TA_ERR_ARG;
    }
    const size_t sy = in_stride[perm[1]], sx = in_stride[perm[2]], sc = in_stride[perm[3]];
    int8_t *out = output;
    for (int32_t y = y0; y < y1; ++y) {
        for (int32_t x = x0; x < x1; ++x) {
            const int8_t *src = input + (size_t)y * sy + (size_t)x * sx;
            for (int32_t k = 0; k < c; ++k) {
                *out++ = src[(size_t)k * sc];
            }
        }
    }
    return TA_OK;
}
