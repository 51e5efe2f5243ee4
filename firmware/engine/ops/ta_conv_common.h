/*
 * Prepare and eval shared by CONV_2D and DEPTHWISE_CONV_2D. The two ops have
 * one blob input list and one parameter struct (ta_conv2d.h); they differ only
 * in how the filter's channels map to the input's, and in the kernel (depthwise
 * also has an in-place one).
 */
#ifndef TA_CONV_COMMON_H
#define TA_CONV_COMMON_H

#include <stdint.h>

#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ta_op.h"

typedef enum { TA_CONV_REGULAR, TA_CONV_DEPTHWISE } ta_conv_kind_t;

/* Positions in the blob input list. */
enum { TA_CONV_INPUT, TA_CONV_FILTER, TA_CONV_BIAS, TA_CONV_MULT, TA_CONV_SHIFT };

/* ta_conv2d_s8 and ta_depthwise_conv2d_s8. */
typedef ta_status_t (*ta_conv_kernel_t)(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                        const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                        const int32_t *multiplier, const int32_t *shift,
                                        const ta_dims_t *out_dims, int8_t *output, void *scratch,
                                        int32_t scratch_size);

ta_status_t ta_conv_prepare(const ta_op_call_t *call, ta_conv_kind_t kind);
ta_status_t ta_conv_eval(const ta_op_call_t *call, ta_conv_kernel_t kernel);
/* A patch stage's eval: `eval` (the op's own) on the call with its padding shifted to the regions. */
ta_status_t ta_conv_eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out,
                                ta_status_t (*eval)(const ta_op_call_t *call));

#endif /* TA_CONV_COMMON_H */
