/*
 * FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected[PerChannel]).
 *
 * Blob tensors, in order:
 *   in:  input      int8  [..., I]        (batches = elements / I)
 *        filter     int8  [O, I]
 *        bias       int32 [O] or TA_NO_TENSOR
 *        multiplier int32 [O]             (per-tensor models repeat one value)
 *        shift      int32 [O]
 *   out: output     int8  [..., O]
 */
#ifndef TA_FULLY_CONNECTED_H
#define TA_FULLY_CONNECTED_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t input_offset;  /* -input zero point */
    int32_t filter_offset; /* -filter zero point (0 for symmetric weights) */
    int32_t output_offset; /* +output zero point */
    int32_t act_min;       /* fused activation clamp, in output quanta */
    int32_t act_max;
} ta_fc_params_t;

/**
 * @param[in]  p          quantization and activation parameters
 * @param[in]  batches    rows of input
 * @param[in]  in_depth   I, elements per input row
 * @param[in]  out_depth  O, output channels
 * @param[in]  input      int8 [batches, I]
 * @param[in]  filter     int8 [O, I]
 * @param[in]  bias       int32 [O], or NULL
 * @param[in]  multiplier int32 [O] fixed-point output multipliers (Q31)
 * @param[in]  shift      int32 [O] output shifts (left if > 0)
 * @param[out] output     int8 [batches, O]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or non-positive size
 */
ta_status_t ta_fully_connected_s8(const ta_fc_params_t *p, int32_t batches, int32_t in_depth,
                                  int32_t out_depth, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const int32_t *multiplier,
                                  const int32_t *shift, int8_t *output);

/**
 * Output channels channels[0..n) of ta_fully_connected_s8's output, recomputed with the
 * filter rows `rows` (int8 [n, I]) instead of the filter's; the rest of `output` is left as
 * it is. Same arithmetic as the reference loop.
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a non-positive size or a channel out of range
 */
ta_status_t ta_fully_connected_rows_s8(const ta_fc_params_t *p, int32_t batches, int32_t in_depth, int32_t out_depth,
                                       const int8_t *input, int32_t n, const int32_t *channels, const int8_t *rows,
                                       const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                                       int8_t *output);

#endif /* TA_FULLY_CONNECTED_H */
