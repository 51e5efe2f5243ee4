/*
 * CONCATENATION, int8 (TFLM reference_ops::Concatenation).
 *
 * A pure byte copy: TFLM (and TFLite) reject int8 inputs whose scale or zero
 * point differ from the output's, and any fused activation, so no
 * requantization or clamping ever happens.
 *
 * Blob tensors, in order:
 *   in:  input 0..n-1  int8, all of the output's rank, equal to the output
 *                      except along `axis`
 *   out: output        int8, along `axis` the sum of the inputs' sizes
 */
#ifndef TA_CONCAT_H
#define TA_CONCAT_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t axis; /* 0..rank-1 (the host resolves negative axes) */
} ta_concat_params_t;

/**
 * Viewing every tensor as [outer, inner] around the axis, output row o is
 * input 0's row o, then input 1's row o, and so on.
 *
 * @param[in]  n_inputs number of inputs, >= 1
 * @param[in]  inputs   n_inputs int8 pointers, input i is [outer, inner[i]]
 * @param[in]  inner    bytes per row of each input: its axis size times the
 *                      product of the dimensions after the axis
 * @param[in]  outer    product of the dimensions before the axis
 * @param[out] output   int8 [outer, sum of inner]; must not overlap an input
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or a non-positive size
 */
ta_status_t ta_concat_s8(int32_t n_inputs, const int8_t *const *inputs, const int32_t *inner, int32_t outer,
                         int8_t *output);

#endif /* TA_CONCAT_H */
