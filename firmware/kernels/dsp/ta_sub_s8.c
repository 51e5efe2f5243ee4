/*
 * SUB int8 for cores with the DSP extension: the same function, arguments, checks and
 * output bits as kernels/ref/ta_sub_s8.c (see tinyadapt/internal/ta_add_simd.h).
 */
#include "tinyadapt/ops/ta_add.h"

#include "tinyadapt/internal/ta_add_simd.h"

ta_status_t ta_sub_s8(const ta_add_params_t *p, int32_t ndim1, const int32_t *dims1, const int8_t *input1,
                      int32_t ndim2, const int32_t *dims2, const int8_t *input2, int32_t ndim_out,
                      const int32_t *dims_out, int8_t *output)
{
    return ta_add_sub_run(p, ndim1, dims1, input1, ndim2, dims2, input2, ndim_out, dims_out, output, 1);
}
