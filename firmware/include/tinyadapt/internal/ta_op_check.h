/*
 * Checks shared by op prepare functions. The blob is untrusted, and eval runs with no
 * checks, so prepare must bound every value eval computes with: a zero point outside
 * int8, or a shift of 40 from a corrupted multiplier table, would otherwise become an
 * out-of-range shift (undefined behaviour) deep inside a kernel.
 */
#ifndef TA_OP_CHECK_H
#define TA_OP_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/ta_status.h"
#include "tinyadapt/ta_tensor.h"

/* -zero_point of an int8 tensor. */
static inline int ta_nn_valid_input_offset(int32_t offset) { return offset >= -127 && offset <= 128; }

/* +zero_point of an int8 tensor. */
static inline int ta_nn_valid_output_offset(int32_t offset) { return offset >= -128 && offset <= 127; }

static inline int ta_nn_valid_act_range(int32_t lo, int32_t hi)
{
    return lo >= -128 && lo <= hi && hi <= 127;
}

/* A Q31 multiplier from QuantizeMultiplier is 0 or in [2^30, 2^31); shifts stay in [-31, 31]. */
static inline int ta_nn_valid_requant(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift >= -31 && shift <= 31;
}

/* A per-channel int32 table (bias, multipliers, shifts) of n entries; false when the input is absent. */
static inline int ta_nn_is_i32_vector(const ta_tensor_rec_t *t, int32_t n)
{
    return t != NULL && t->dtype == TA_DTYPE_INT32 && ta_tensor_elems(t) == n;
}

/* A per-channel multiplier or shift array: checked once by prepare (ta_nn_check_requant_array),
 * so it must be a constant of the blob. In the arena, another op could overwrite it between
 * prepare and eval and hand the kernel an unchecked shift (a corrupt blob did, under the fuzzer). */
static inline ta_status_t ta_nn_check_requant_vector(const ta_tensor_rec_t *t, int32_t n)
{
    TA_ENSURE(ta_nn_is_i32_vector(t, n), TA_ERR_SHAPE);
    TA_ENSURE(t->kind == TA_TENSOR_CONST, TA_ERR_CORRUPT);
    return TA_OK;
}

static inline ta_status_t ta_nn_check_requant_array(const int32_t *multiplier, const int32_t *shift, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        TA_ENSURE(ta_nn_valid_requant(multiplier[i], shift[i]), TA_ERR_CORRUPT);
    }
    return TA_OK;
}

#endif /* TA_OP_CHECK_H */
