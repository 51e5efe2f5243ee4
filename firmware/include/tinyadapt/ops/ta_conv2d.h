/*
 * CONV_2D, int8 (TFLM reference_integer_ops::ConvPerChannel), and the
 * parameter struct it shares with DEPTHWISE_CONV_2D (ta_depthwise_conv2d.h).
 *
 * Blob tensors, in order:
 *   in:  input      int8  [N, H, W, C_in]
 *        filter     int8  [C_out, KH, KW, C_in]   (symmetric: zero point 0)
 *        bias       int32 [C_out] or TA_NO_TENSOR
 *        multiplier int32 [C_out]   Q31 output multipliers (per-tensor models repeat one value)
 *        shift      int32 [C_out]   output shifts, left if > 0, in [-31, 31]
 *   out: output     int8  [N, OH, OW, C_out]
 *
 * Padding: only the top/left padding is stored. Output pixel (oy, ox) reads
 * input rows oy * stride_h - pad_top + ky * dilation_h (columns alike) and
 * skips rows/columns outside the input, which is how TFLM pads (a skipped tap
 * equals a tap on a pixel holding the input zero point, i.e. real 0). The
 * bottom/right padding therefore follows from the output size, and a caller
 * can run the kernel on a sub-region of the input by passing that region's
 * dims and its own pad_top/pad_left (negative when the region starts below
 * the first row the output band needs).
 */
#ifndef TA_CONV2D_H
#define TA_CONV2D_H

#include <stdint.h>

#include "tinyadapt/ta_dims.h"
#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t stride_h;         /* >= 1 */
    int32_t stride_w;         /* >= 1 */
    int32_t dilation_h;       /* >= 1 */
    int32_t dilation_w;       /* >= 1 */
    int32_t pad_top;          /* input rows virtually above the first one */
    int32_t pad_left;         /* input columns virtually left of the first one */
    int32_t depth_multiplier; /* DEPTHWISE_CONV_2D: C_out / C_in; CONV_2D: 1 */
    int32_t input_offset;     /* -input zero point, in [-127, 128] */
    int32_t output_offset;    /* +output zero point, in [-128, 127] */
    int32_t act_min;          /* fused activation clamp, in output quanta */
    int32_t act_max;
} ta_conv_params_t;

/*
 * The checks both conv kernels make on their scalar arguments: positive
 * dims, one batch count, strides and dilations >= 1, offsets in the int8
 * zero-point range (so each product fits in int32), a sane clamp, and every
 * input coordinate the loops compute fitting in int32. Returns 1 when valid.
 */
static inline int ta_conv_args_ok(const ta_conv_params_t *p, const ta_dims_t *in,
                                  const ta_dims_t *filter, const ta_dims_t *out)
{
    if (in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 || filter->n <= 0 || filter->h <= 0 ||
        filter->w <= 0 || filter->c <= 0 || out->n <= 0 || out->h <= 0 || out->w <= 0 || out->c <= 0 ||
        in->n != out->n) {
        return 0;
    }
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1) {
        return 0;
    }
    if (p->input_offset < -127 || p->input_offset > 128 || p->output_offset < -128 ||
        p->output_offset > 127 || p->act_min > p->act_max || p->act_min < -128 || p->act_max > 127) {
        return 0;
    }
    /* Largest |coordinate|: origin of the last output plus the filter's reach, minus the padding. */
    const int64_t reach_h = (int64_t)(out->h - 1) * p->stride_h + (int64_t)(filter->h - 1) * p->dilation_h;
    const int64_t reach_w = (int64_t)(out->w - 1) * p->stride_w + (int64_t)(filter->w - 1) * p->dilation_w;
    const int64_t pad_h = p->pad_top < 0 ? -(int64_t)p->pad_top : (int64_t)p->pad_top;
    const int64_t pad_w = p->pad_left < 0 ? -(int64_t)p->pad_left : (int64_t)p->pad_left;
    return reach_h + pad_h <= INT32_MAX && reach_w + pad_w <= INT32_MAX;
}

/* Every per-channel shift in [-31, 31], beyond which requantizing would shift by an
 * undefined amount. Returns 1 when valid. */
static inline int ta_conv_shifts_ok(const int32_t *shift, int32_t n)
{
    for (int32_t c = 0; c < n; ++c) {
        if (shift[c] < -31 || shift[c] > 31) {
            return 0;
        }
    }
    return 1;
}

/**
 * int8 2-D convolution, NHWC, per-output-channel requantization.
 *
 * @param[in]  p           strides, dilations, padding, offsets, activation clamp
 * @param[in]  in_dims     {N, H, W, C_in} of `input`
 * @param[in]  input       int8 [N, H, W, C_in]
 * @param[in]  filter_dims {C_out, KH, KW, C_in} of `filter`
 * @param[in]  filter      int8 [C_out, KH, KW, C_in]
 * @param[in]  bias        int32 [C_out], or NULL
 * @param[in]  multiplier  int32 [C_out] Q31 output multipliers
 * @param[in]  shift       int32 [C_out] output shifts in [-31, 31]
 * @param[in]  out_dims    {N, OH, OW, C_out} of `output`
 * @param[out] output      int8 [N, OH, OW, C_out]
 * @param[in]  scratch     ta_conv2d_s8_scratch_size() bytes of working memory (less, or
 *                         NULL: a path that needs none; same result, slower)
 * @param[in]  scratch_size bytes available at `scratch`
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or inconsistent
 *         dims/params (see ta_conv_args_ok; filter C_in must equal input C_in)
 */
ta_status_t ta_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                         const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                         const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                         int8_t *output, void *scratch, int32_t scratch_size);

/**
 * Bytes of scratch ta_conv2d_s8 works in for these parameters and dims (as CMSIS-NN's
 * *_get_buffer_size): what the op's arena plan reserves, so that no kernel buffer lives on
 * the stack. 0 when the kernel needs none. Layout: tinyadapt/internal/ta_conv_scratch.h.
 */
uint32_t ta_conv2d_s8_scratch_size(const ta_conv_params_t *p, const ta_dims_t *in_dims, const ta_dims_t *filter_dims,
                                   const ta_dims_t *out_dims);

#endif /* TA_CONV2D_H */
