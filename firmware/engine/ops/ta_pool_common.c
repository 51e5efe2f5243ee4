#include "ta_pool_common.h"

/* Along one spatial axis: every window must overlap the input (TFLM's output sizes
 * guarantee it, and the average would otherwise divide by zero) and every index the
 * kernel forms must fit in an int32. */
static int axis_ok(int32_t in, int32_t out, int32_t stride, int32_t filter, int32_t pad)
{
    if (stride <= 0 || filter <= 0 || pad < 0 || pad >= filter) {
        return 0;
    }
    const int64_t last_origin = (int64_t)(out - 1) * stride - pad;
    return last_origin < in && last_origin + filter <= INT32_MAX && (int64_t)in + pad <= INT32_MAX;
}

ta_status_t ta_pool_prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    TA_ENSURE(in->ndim == 4 && out->ndim == 4, TA_ERR_SHAPE);
    TA_ENSURE(out->dims[0] == in->dims[0] && out->dims[3] == in->dims[3], TA_ERR_SHAPE);
    const ta_pool_params_t *p = (const ta_pool_params_t *)call->params;
    TA_ENSURE(axis_ok(in->dims[1], out->dims[1], p->stride_h, p->filter_h, p->pad_h), TA_ERR_CORRUPT);
    TA_ENSURE(axis_ok(in->dims[2], out->dims[2], p->stride_w, p->filter_w, p->pad_w), TA_ERR_CORRUPT);
    TA_ENSURE(p->act_min <= p->act_max && p->act_min >= -128 && p->act_max <= 127, TA_ERR_CORRUPT);
    return TA_OK;
}

ta_status_t ta_pool_eval(const ta_op_call_t *call, ta_pool_kernel_t kernel)
{
    const ta_dims_t in_dims = ta_tensor_nhwc(TA_IN(call, 0));
    const ta_dims_t out_dims = ta_tensor_nhwc(TA_OUT(call, 0));
    return kernel((const ta_pool_params_t *)call->params, &in_dims, (const int8_t *)call->inputs[0].data, &out_dims,
                  (int8_t *)call->outputs[0].data);
}

/* In a patch stage the input is a region of the full map: shift the padding by the
 * regions' origins, so that zero padding applies only at the real image border. */
ta_status_t ta_pool_eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out,
                                ta_status_t (*eval)(const ta_op_call_t *call))
{
    ta_pool_params_t p = *(const ta_pool_params_t *)call->params;
    p.pad_h = in->y0 + p.pad_h - out->y0 * p.stride_h;
    p.pad_w = in->x0 + p.pad_w - out->x0 * p.stride_w;
    ta_op_call_t shifted = *call;
    shifted.params = &p;
    return eval(&shifted);
}
