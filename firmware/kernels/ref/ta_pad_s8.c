#include "tinyadapt/ops/ta_pad.h"

#include <stddef.h>
#include <string.h>

/*
 * The shape is lifted to TA_PAD_MAX_DIMS by prepending unpadded dimensions of
 * one, so a single fixed loop nest handles every rank: the outer dimensions
 * walk output rows, and each row of the innermost dimension is written as
 * [before | input row | after], or entirely with pad_value when any outer
 * index falls in the padding.
 */
ta_status_t ta_pad_s8(int32_t ndim, const int32_t *in_dims, const int32_t *before, const int32_t *after,
                      const int8_t *input, int8_t pad_value, int8_t *output)
{
    enum { D = TA_PAD_MAX_DIMS };
    if (input == NULL || output == NULL || ndim < 0 || ndim > D ||
        (ndim > 0 && (in_dims == NULL || before == NULL || after == NULL))) {
        return TA_ERR_ARG;
    }
    int32_t in[D], lo[D], out[D];
    for (int i = 0; i < D; ++i) {
        const int k = i - (D - ndim);
        in[i] = k >= 0 ? in_dims[k] : 1;
        lo[i] = k >= 0 ? before[k] : 0;
        const int32_t hi = k >= 0 ? after[k] : 0;
        if (in[i] <= 0 || lo[i] < 0 || hi < 0) {
            return TA_ERR_ARG;
        }
        out[i] = in[i] + lo[i] + hi;
    }
    const size_t row_in = (size_t)in[D - 1];
    const size_t row_out = (size_t)out[D - 1];
    const size_t row_lo = (size_t)lo[D - 1];
    const int8_t *src = input;
    int8_t *dst = output;
    int32_t idx[D - 1] = {0};
    for (;;) {
        int inside = 1;
        for (int i = 0; i < D - 1; ++i) {
            inside &= idx[i] >= lo[i] && idx[i] < lo[i] + in[i];
        }
        if (inside) {
            /* Input rows are consumed in order, so the source just advances. */
            memset(dst, pad_value, row_lo);
            memcpy(dst + row_lo, src, row_in);
            memset(dst + row_lo + row_in, pad_value, row_out - row_lo - row_in);
            src += row_in;
        } else {
            memset(dst, pad_value, row_out);
        }
        dst += row_out;
        int i = D - 2;
        while (i >= 0 && ++idx[i] == out[i]) {
            idx[i--] = 0;
        }
        if (i < 0) {
            break;
        }
    }
    return TA_OK;
}
