/*
 * Backward ops: the gradients of the forward ops, for on-device training (ta_train.h).
 *
 * Gradients are float32 tensors in the arena holding dL/dx for the DEQUANTIZED value of an
 * activation x (real units), so a gradient never depends on how the next layer quantizes.
 * Saved activations stay int8; a kernel dequantizes what it reads ((q - zero_point) * scale).
 * Every kernel sums in a fixed order and uses only + - * / on float32, so the host build and
 * a Cortex-M with a single-precision FPU give the same bits (compile with -ffp-contract=off).
 *
 * Blob layout of each backward op (tensor lists; "-1" = absent; outputs may be absent when no
 * one needs that gradient):
 *   LOSS_GRAD           in  [logits int8, model output]          out [d logits f32]
 *   CONV_2D_BACKWARD,
 *   DEPTHWISE_CONV_2D_BACKWARD,
 *   FULLY_CONNECTED_BACKWARD
 *                       in  [x int8 or -1 (needed to update weights), filter int8, bias int32
 *                            or -1, y int8 (forward output, for the activation mask), dy f32,
 *                            filter scales f32[C_out], kept channels int32[n] or -1]
 *                       out [dx f32 or -1]
 *   ADD_BACKWARD        in  [y int8, dy f32]                      out [dx1 or -1, dx2 or -1]
 *   AVERAGE_POOL_2D_BACKWARD in [y int8, dy f32]                  out [dx]
 *   MAX_POOL_2D_BACKWARD     in [x int8 (forward input), dy f32]   out [dx]
 *   MEAN_BACKWARD, PAD_BACKWARD, RESHAPE_BACKWARD  in [dy]        out [dx]
 * Output gradients are written, or added to (TA_BWD_ACCUMULATE_*) when another consumer of
 * the same activation has already written its share.
 */
#ifndef TA_BACKWARD_H
#define TA_BACKWARD_H

#include <stdint.h>

#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ops/ta_fully_connected.h"
#include "tinyadapt/ops/ta_pad.h"
#include "tinyadapt/ops/ta_pool.h"
#include "tinyadapt/ta_dims.h"
#include "tinyadapt/ta_op.h"

#define TA_BWD_UPDATE_WEIGHTS 0x1 /* SGD on the kept output channels' weights */
#define TA_BWD_UPDATE_BIAS 0x2    /* SGD on every output channel's bias */
#define TA_BWD_ACCUMULATE_0 0x4   /* add into output gradient 0 instead of overwriting it */
#define TA_BWD_ACCUMULATE_1 0x8   /* likewise for output gradient 1 */
#define TA_BWD_KNOWN_FLAGS 0xF

/* LOSS_GRAD: logits z = beta * input_scale * (q - zero_point) through a softmax (beta = 1
 * when the model has no softmax). The gradient is with respect to input_scale * (q - zp). */
typedef struct {
    float beta;
    float input_scale;
    int32_t zero_point;
    int32_t flags;
} ta_loss_params_t;

typedef struct {
    ta_conv_params_t conv; /* the forward op's parameters */
    int32_t flags;
    float input_scale;     /* s_x of the forward input (x may be absent: bias-only update) */
} ta_conv_backward_params_t;

typedef struct {
    ta_fc_params_t fc;
    int32_t flags;
    float input_scale;
} ta_fc_backward_params_t;

typedef struct {
    int32_t act_min; /* the forward op's fused clamp, in output quanta */
    int32_t act_max;
    int32_t flags;
} ta_add_backward_params_t;

typedef struct {
    ta_pool_params_t pool;
    int32_t flags;
} ta_pool_backward_params_t;

typedef struct {
    int32_t ndim;      /* input rank */
    int32_t axis_mask; /* bit i: dimension i was averaged over */
    int32_t flags;
} ta_mean_backward_params_t;

typedef struct {
    ta_pad_params_t pad;
    int32_t flags;
} ta_pad_backward_params_t;

typedef struct {
    int32_t flags;
} ta_reshape_backward_params_t;

/* ---- reference kernels (kernels/ref/ta_*_backward_f32.c) ---------------------------------- */

/* The straight-through estimator of a fused clamp: dy = 0 where the int8 output y sat at a
 * bound (act_min / act_max, i.e. ReLU's zero, ReLU6's six, or int8 saturation). */
void ta_act_mask_f32(const int8_t *y, int32_t n, int32_t act_min, int32_t act_max, float *dy);

/* dst = src, or dst += src with `accumulate`. */
void ta_grad_copy_f32(const float *src, int32_t n, int accumulate, float *dst);

/* The input-gradient kernels take the filter the forward pass used: `filter`, except for the
 * output channels of `rows` (may be NULL), whose weights are read from rows->rows (ta_op.h:
 * the filter's layout restricted to those channels; rows->op is ignored). */

/* CONV_2D: dx = conv_transpose(dy, filter * scale[c_out]); filter [C_out, KH, KW, C_in]. */
void ta_conv2d_backward_input_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const ta_dims_t *filter_dims,
                                  const ta_dims_t *out_dims, const float *dy, const int8_t *filter,
                                  const ta_op_rows_t *rows, const float *filter_scale, int accumulate, float *dx);
/* CONV_2D: gradient of output channel `channel`'s weights, KH*KW*C_in floats in filter order. */
void ta_conv2d_backward_filter_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                                   int32_t x_zero_point, float x_scale, const ta_dims_t *filter_dims,
                                   const ta_dims_t *out_dims, const float *dy, int32_t channel, float *grad);

/* DEPTHWISE_CONV_2D: filter [1, KH, KW, C_out], C_out = C_in * depth_multiplier. */
void ta_depthwise_conv2d_backward_input_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                            const ta_dims_t *filter_dims, const ta_dims_t *out_dims,
                                            const float *dy, const int8_t *filter, const ta_op_rows_t *rows,
                                            const float *filter_scale, int accumulate, float *dx);
/* DEPTHWISE_CONV_2D: gradient of output channel `channel`'s KH*KW weights (row-major taps). */
void ta_depthwise_conv2d_backward_filter_f32(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                                             int32_t x_zero_point, float x_scale, const ta_dims_t *filter_dims,
                                             const ta_dims_t *out_dims, const float *dy, int32_t channel,
                                             float *grad);

/* FULLY_CONNECTED: filter [out_depth, in_depth], real weight = scale[o] * (w + filter_offset). */
void ta_fully_connected_backward_input_f32(int32_t batches, int32_t in_depth, int32_t out_depth, const float *dy,
                                           const int8_t *filter, const ta_op_rows_t *rows, int32_t filter_offset,
                                           const float *filter_scale, int accumulate, float *dx);
void ta_fully_connected_backward_filter_f32(int32_t batches, int32_t in_depth, int32_t out_depth, const int8_t *x,
                                            int32_t x_zero_point, float x_scale, const float *dy, int32_t channel,
                                            float *grad);

/* AVERAGE_POOL_2D: each output's gradient spread evenly over the input taps it averaged. */
void ta_avgpool_backward_f32(const ta_pool_params_t *p, const ta_dims_t *in_dims, const ta_dims_t *out_dims,
                             const float *dy, int accumulate, float *dx);

/* MAX_POOL_2D: each output's gradient goes to the first tap (row-major) holding the window's
 * maximum of the saved input x; none where the clamped output sat at a bound. */
void ta_maxpool_backward_f32(const ta_pool_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                             const ta_dims_t *out_dims, const float *dy, int accumulate, float *dx);

/* MEAN over the dimensions in axis_mask. */
void ta_mean_backward_f32(int32_t ndim, const int32_t *in_dims, int32_t axis_mask, const float *dy, int accumulate,
                          float *dx);

/* PAD: dx is dy without the padding. */
void ta_pad_backward_f32(int32_t ndim, const int32_t *in_dims, const int32_t *before, const int32_t *after,
                         const float *dy, int accumulate, float *dx);

/* Softmax + loss on `depth` logits z = beta * scale * (q - zp): writes dL/d(scale * (q - zp))
 * to grad and returns the loss. kind 0: cross-entropy with `label`; kind 1: entropy. */
float ta_softmax_loss_f32(int32_t depth, const int8_t *q, int32_t zero_point, float scale, float beta, int kind,
                          int32_t label, float *grad);

#endif /* TA_BACKWARD_H */
