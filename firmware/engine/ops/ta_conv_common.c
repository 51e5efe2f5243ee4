#include "ta_conv_common.h"

#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_depthwise_conv2d.h"

ta_status_t ta_conv_prepare(const ta_op_call_t *call, ta_conv_kind_t kind)
{
    const ta_tensor_rec_t *in = TA_IN(call, TA_CONV_INPUT);
    const ta_tensor_rec_t *filter = TA_IN(call, TA_CONV_FILTER);
    const ta_tensor_rec_t *bias = TA_IN(call, TA_CONV_BIAS);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && filter != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && filter->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8,
              TA_ERR_UNSUPPORTED);
    TA_ENSURE(in->ndim == 4 && filter->ndim == 4 && out->ndim == 4, TA_ERR_SHAPE);
    const ta_dims_t in_d = ta_tensor_nhwc(in), f_d = ta_tensor_nhwc(filter), out_d = ta_tensor_nhwc(out);
    const ta_conv_params_t *p = (const ta_conv_params_t *)call->params;
    TA_ENSURE(ta_conv_args_ok(p, &in_d, &f_d, &out_d), TA_ERR_CORRUPT);
    if (kind == TA_CONV_DEPTHWISE) {
        TA_ENSURE(f_d.n == 1 && f_d.c == out_d.c, TA_ERR_SHAPE);
        TA_ENSURE(p->depth_multiplier >= 1 && (int64_t)in_d.c * p->depth_multiplier == out_d.c, TA_ERR_SHAPE);
    } else {
        /* Grouped convolution (filter C_in a divisor of the input's) is not implemented. */
        TA_ENSURE(f_d.c == in_d.c && f_d.n == out_d.c, TA_ERR_SHAPE);
        TA_ENSURE(p->depth_multiplier == 1, TA_ERR_CORRUPT);
    }
    /* TFLM's padding never exceeds the filter's reach; the kernel would accept more, a blob should not. */
    TA_ENSURE(p->pad_top >= 0 && p->pad_top <= (f_d.h - 1) * p->dilation_h && p->pad_left >= 0 &&
                  p->pad_left <= (f_d.w - 1) * p->dilation_w,
              TA_ERR_CORRUPT);
    TA_ENSURE(bias == NULL || ta_nn_is_i32_vector(bias, out_d.c), TA_ERR_SHAPE);
    TA_TRY(ta_nn_check_requant_vector(TA_IN(call, TA_CONV_MULT), out_d.c));
    TA_TRY(ta_nn_check_requant_vector(TA_IN(call, TA_CONV_SHIFT), out_d.c));
    TA_ENSURE(ta_conv_shifts_ok((const int32_t *)call->inputs[TA_CONV_SHIFT].data, out_d.c), TA_ERR_CORRUPT);
    /* The kernel's working memory is planned in the arena (in place, the op checks its own). */
    const int in_place = call->inputs[TA_CONV_INPUT].data != NULL &&
                         call->inputs[TA_CONV_INPUT].data == call->outputs[0].data;
    if (!in_place) {
        const uint32_t need = kind == TA_CONV_DEPTHWISE ? ta_depthwise_conv2d_s8_scratch_size(p, &in_d, &f_d, &out_d)
                                                        : ta_conv2d_s8_scratch_size(p, &in_d, &f_d, &out_d);
        TA_ENSURE(call->scratch_size >= need && (need == 0 || call->scratch != NULL), TA_ERR_CORRUPT);
    }
    return TA_OK;
}

ta_status_t ta_conv_eval(const ta_op_call_t *call, ta_conv_kernel_t kernel)
{
    const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
    const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
    const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
    return kernel((const ta_conv_params_t *)call->params, &in_d, (const int8_t *)call->inputs[TA_CONV_INPUT].data,
                  &f_d, (const int8_t *)call->inputs[TA_CONV_FILTER].data,
                  (const int32_t *)call->inputs[TA_CONV_BIAS].data, (const int32_t *)call->inputs[TA_CONV_MULT].data,
                  (const int32_t *)call->inputs[TA_CONV_SHIFT].data, &out_d, (int8_t *)call->outputs[0].data,
                  call->scratch, (int32_t)call->scratch_size);
}

/* In a patch stage the input is a region of the full map: shift the padding by the
 * regions' origins, so that zero padding applies only at the real image border. */
ta_status_t ta_conv_eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out,
                                ta_status_t (*eval)(const ta_op_call_t *call))
{
    ta_conv_params_t p = *(const ta_conv_params_t *)call->params;
    p.pad_top = in->y0 + p.pad_top - out->y0 * p.stride_h;
    p.pad_left = in->x0 + p.pad_left - out->x0 * p.stride_w;
    ta_op_call_t shifted = *call;
    shifted.params = &p;
    return eval(&shifted);
}
