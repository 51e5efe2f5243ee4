/*
 * Prepare and eval shared by AVERAGE_POOL_2D and MAX_POOL_2D: one parameter
 * struct (ta_pool.h) and the same tensors, so only the kernel differs.
 */
#ifndef TA_POOL_COMMON_H
#define TA_POOL_COMMON_H

#include <stdint.h>

#include "tinyadapt/ops/ta_pool.h"
#include "tinyadapt/ta_op.h"
#include "tinyadapt/ta_status.h"

/* ta_avgpool_s8 and ta_maxpool_s8. */
typedef ta_status_t (*ta_pool_kernel_t)(const ta_pool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                        const ta_dims_t *out_dims, int8_t *output);

ta_status_t ta_pool_prepare(const ta_op_call_t *call);
ta_status_t ta_pool_eval(const ta_op_call_t *call, ta_pool_kernel_t kernel);
/* A patch stage's eval: `eval` (the op's own) on the call with its padding shifted to the regions. */
ta_status_t ta_pool_eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out,
                                ta_status_t (*eval)(const ta_op_call_t *call));

#endif /* TA_POOL_COMMON_H */
