/*
 * DEPTHWISE_CONV_2D, int8 (TFLM reference_integer_ops::DepthwiseConvPerChannel).
 *
 * Blob tensors, in order:
 *   in:  input      int8  [N, H, W, C_in]
 *        filter     int8  [1, KH, KW, C_out]   C_out = C_in * depth_multiplier, zero point 0
 *        bias       int32 [C_out] or TA_NO_TENSOR
 *        multiplier int32 [C_out]   Q31 output multipliers, indexed by OUTPUT channel
 *        shift      int32 [C_out]   output shifts, left if > 0, in [-31, 31]
 *   out: output     int8  [N, OH, OW, C_out]
 *
 * Output channel ic * depth_multiplier + m convolves input channel ic with
 * filter channel ic * depth_multiplier + m. Parameters and padding are those
 * of CONV_2D (ta_conv_params_t in ta_conv2d.h).
 */
#ifndef TA_DEPTHWISE_CONV2D_H
#define TA_DEPTHWISE_CONV2D_H

#include <stdint.h>

#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ta_dims.h"
#include "tinyadapt/ta_status.h"

/**
 * int8 depthwise 2-D convolution, NHWC, per-output-channel requantization.
 *
 * @param[in]  p           strides, dilations, padding, depth_multiplier (>= 1),
 *                         offsets, activation clamp
 * @param[in]  in_dims     {N, H, W, C_in} of `input`
 * @param[in]  input       int8 [N, H, W, C_in]
 * @param[in]  filter_dims {1, KH, KW, C_out} of `filter`
 * @param[in]  filter      int8 [1, KH, KW, C_out]
 * @param[in]  bias        int32 [C_out], or NULL
 * @param[in]  multiplier  int32 [C_out] Q31 output multipliers
 * @param[in]  shift       int32 [C_out] output shifts in [-31, 31]
 * @param[in]  out_dims    {N, OH, OW, C_out} of `output`
 * @param[out] output      int8 [N, OH, OW, C_out]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or inconsistent dims/params
 *         (see ta_conv_args_ok; C_out must equal C_in * depth_multiplier)
 */
ta_status_t ta_depthwise_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                   const int8_t *input, const ta_dims_t *filter_dims,
                                   const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                                   const int32_t *shift, const ta_dims_t *out_dims, int8_t *output,
                                   void *scratch, int32_t scratch_size);

/** Bytes of scratch ta_depthwise_conv2d_s8 works in (see ta_conv2d_s8_scratch_size). */
uint32_t ta_depthwise_conv2d_s8_scratch_size(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                             const ta_dims_t *filter_dims, const ta_dims_t *out_dims);

/**
 * Depthwise convolution with depth multiplier 1 computed in place: `buffer` holds the
 * input [1, H, W, C] and receives the output [1, OH, OW, C] (OH*OW <= H*W) in its first
 * bytes. Same arithmetic as ta_depthwise_conv2d_s8.
 *
 * @param[in,out] buffer       input, then output
 * @param[in]     scratch      at least H*W bytes (one channel plane); the fast kernel's
 *                             copies fit when it has ta_depthwise_conv2d_inplace_s8_scratch_size()
 * @param[in]     scratch_size bytes available at `scratch`
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, depth multiplier != 1, N != 1, an output
 *         larger than the input, too little scratch, or invalid dims/params
 */
ta_status_t ta_depthwise_conv2d_inplace_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, int8_t *buffer,
                                           const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                           const int32_t *multiplier, const int32_t *shift,
                                           const ta_dims_t *out_dims, int8_t *scratch, int32_t scratch_size);

/** Bytes of scratch ta_depthwise_conv2d_inplace_s8 works in: one channel plane (H * W), and
 * before it the fast kernel's padded copies and packed taps (tinyadapt/internal/ta_conv_scratch.h). */
uint32_t ta_depthwise_conv2d_inplace_s8_scratch_size(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                     const ta_dims_t *filter_dims, const ta_dims_t *out_dims);

#endif /* TA_DEPTHWISE_CONV2D_H */
