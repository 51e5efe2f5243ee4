#include "tinyadapt/ops/ta_depthwise_conv2d.h"
#include "tinyadapt/ta_op.h"

enum { IN_INPUT, IN_FILTER, IN_BIAS, IN_MULT, IN_SHIFT };

static ta_dims_t dims_of(const ta_tensor_rec_t *t)
{
    ta_dims_t d = {t->dims[0], t->dims[1], t->dims[2], t->dims[3]};
    return d;
}

static int is_i32_vector(const ta_tensor_rec_t *t, int32_t n)
{
    return t != NULL && t->dtype == TA_DTYPE_INT32 && ta_tensor_elems(t) == n;
}

/* Output planned over the input (patch views never are: each has its own region buffer). */
static int runs_in_place(const ta_op_call_t *call)
{
    return call->inputs[IN_INPUT].data != NULL && call->inputs[IN_INPUT].data == call->outputs[0].data;
}

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, IN_INPUT);
    const ta_tensor_rec_t *filter = TA_IN(call, IN_FILTER);
    const ta_tensor_rec_t *bias = TA_IN(call, IN_BIAS);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && filter != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && filter->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8,
              TA_ERR_UNSUPPORTED);
    TA_ENSURE(in->ndim == 4 && filter->ndim == 4 && out->ndim == 4, TA_ERR_SHAPE);
    const ta_dims_t in_d = dims_of(in), f_d = dims_of(filter), out_d = dims_of(out);
    const ta_conv_params_t *p = (const ta_conv_params_t *)call->params;
    TA_ENSURE(ta_conv_args_ok(p, &in_d, &f_d, &out_d), TA_ERR_CORRUPT);
    TA_ENSURE(f_d.n == 1 && f_d.c == out_d.c, TA_ERR_SHAPE);
    TA_ENSURE(p->depth_multiplier >= 1 && (int64_t)in_d.c * p->depth_multiplier == out_d.c, TA_ERR_SHAPE);
    /* TFLM's padding never exceeds the filter's reach; the kernel would accept more, a blob should not. */
    TA_ENSURE(p->pad_top >= 0 && p->pad_top <= (f_d.h - 1) * p->dilation_h && p->pad_left >= 0 &&
                  p->pad_left <= (f_d.w - 1) * p->dilation_w,
              TA_ERR_CORRUPT);
    TA_ENSURE(bias == NULL || is_i32_vector(bias, out_d.c), TA_ERR_SHAPE);
    TA_ENSURE(is_i32_vector(TA_IN(call, IN_MULT), out_d.c), TA_ERR_SHAPE);
    TA_ENSURE(is_i32_vector(TA_IN(call, IN_SHIFT), out_d.c), TA_ERR_SHAPE);
    const int32_t *shift = (const int32_t *)call->inputs[IN_SHIFT].data;
    for (int32_t c = 0; c < out_d.c; ++c) {
        TA_ENSURE(shift[c] >= -31 && shift[c] <= 31, TA_ERR_CORRUPT);
    }
    if (runs_in_place(call)) {
        /* The planner put the output over the input: only the one-plane-at-a-time kernel can do that. */
        TA_ENSURE(p->depth_multiplier == 1 && in_d.n == 1 && (int64_t)out_d.h * out_d.w <= (int64_t)in_d.h * in_d.w &&
                      call->scratch_size >= (uint32_t)in_d.h * (uint32_t)in_d.w,
                  TA_ERR_CORRUPT);
    }
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_dims_t in_d = dims_of(TA_IN(call, IN_INPUT));
    const ta_dims_t f_d = dims_of(TA_IN(call, IN_FILTER));
    const ta_dims_t out_d = dims_of(TA_OUT(call, 0));
    if (runs_in_place(call)) {
        return ta_depthwise_conv2d_inplace_s8((const ta_conv_params_t *)call->params, &in_d,
                                              (int8_t *)call->outputs[0].data, &f_d,
                                              (const int8_t *)call->inputs[IN_FILTER].data,
                                              (const int32_t *)call->inputs[IN_BIAS].data,
                                              (const int32_t *)call->inputs[IN_MULT].data,
                                              (const int32_t *)call->inputs[IN_SHIFT].data, &out_d,
                                              (int8_t *)call->scratch, (int32_t)call->scratch_size);
    }
    return ta_depthwise_conv2d_s8((const ta_conv_params_t *)call->params, &in_d,
                                  (const int8_t *)call->inputs[IN_INPUT].data, &f_d,
                                  (const int8_t *)call->inputs[IN_FILTER].data,
                                  (const int32_t *)call->inputs[IN_BIAS].data,
                                  (const int32_t *)call->inputs[IN_MULT].data,
                                  (const int32_t *)call->inputs[IN_SHIFT].data, &out_d,
                                  (int8_t *)call->outputs[0].data);
}

/* In a patch stage the input is a region of the full map: shift the padding by the
 * regions' origins, so that zero padding applies only at the real image border. */
static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    ta_conv_params_t p = *(const ta_conv_params_t *)call->params;
    p.pad_top = in->y0 + p.pad_top - out->y0 * p.stride_h;
    p.pad_left = in->x0 + p.pad_left - out->x0 * p.stride_w;
    ta_op_call_t shifted = *call;
    shifted.params = &p;
    return eval(&shifted);
}

const ta_op_kernel_t ta_op_depthwise_conv2d = {
    .opcode = TA_OP_DEPTHWISE_CONV_2D,
    .name = "DEPTHWISE_CONV_2D",
    .min_inputs = 5,
    .max_inputs = 5,
    .n_outputs = 1,
    .params_size = sizeof(ta_conv_params_t),
    .prepare = prepare,
    .eval = eval,
    .eval_region = eval_region,
};
