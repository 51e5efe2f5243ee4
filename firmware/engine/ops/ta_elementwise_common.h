/*
 * Prepare checks shared by the elementwise ops - the unary ones (QUANTIZE,
 * REQUANTIZE, DEQUANTIZE, LOGISTIC, HARD_SWISH) and the broadcasting binary ones
 * (ADD, SUB, MUL) - and the whole prepare and eval of ADD and SUB, which share
 * one parameter struct (ta_add.h) and differ only in the kernel.
 */
#ifndef TA_ELEMENTWISE_COMMON_H
#define TA_ELEMENTWISE_COMMON_H

#include <stdint.h>

#include "tinyadapt/ops/ta_add.h"
#include "tinyadapt/ta_op.h"
#include "tinyadapt/ta_status.h"

/* Input 0 and output 0 present, of the given dtypes, with the same element count. */
ta_status_t ta_unary_check_io(const ta_op_call_t *call, ta_dtype_t in_dtype, ta_dtype_t out_dtype);

/* Two int8 inputs that broadcast to the int8 output. */
ta_status_t ta_binary_check_io(const ta_op_call_t *call);

/* ta_add_s8 and ta_sub_s8. */
typedef ta_status_t (*ta_add_sub_kernel_t)(const ta_add_params_t *p, int32_t ndim1, const int32_t *dims1,
                                           const int8_t *input1, int32_t ndim2, const int32_t *dims2,
                                           const int8_t *input2, int32_t ndim_out, const int32_t *dims_out,
                                           int8_t *output);

ta_status_t ta_add_sub_prepare(const ta_op_call_t *call);
ta_status_t ta_add_sub_eval(const ta_op_call_t *call, ta_add_sub_kernel_t kernel);

#endif /* TA_ELEMENTWISE_COMMON_H */
