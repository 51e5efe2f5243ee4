#include "tinyadapt/ops/ta_fully_connected.h"
#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ta_op.h"

enum { IN_INPUT, IN_FILTER, IN_BIAS, IN_MULT, IN_SHIFT };

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, IN_INPUT);
    const ta_tensor_rec_t *filter = TA_IN(call, IN_FILTER);
    const ta_tensor_rec_t *bias = TA_IN(call, IN_BIAS);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && filter != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && filter->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8,
              TA_ERR_UNSUPPORTED);
    TA_ENSURE(filter->ndim == 2, TA_ERR_SHAPE);
    const int32_t out_depth = filter->dims[0];
    const int32_t in_depth = filter->dims[1];
    TA_ENSURE(ta_tensor_elems(in) % in_depth == 0, TA_ERR_SHAPE);
    const int32_t batches = ta_tensor_elems(in) / in_depth;
    TA_ENSURE(ta_tensor_dim_r(out, 0) == out_depth && ta_tensor_elems(out) == batches * out_depth, TA_ERR_SHAPE);
    TA_ENSURE(bias == NULL || ta_nn_is_i32_vector(bias, out_depth), TA_ERR_SHAPE);
    TA_TRY(ta_nn_check_requant_vector(TA_IN(call, IN_MULT), out_depth));
    TA_TRY(ta_nn_check_requant_vector(TA_IN(call, IN_SHIFT), out_depth));
    const ta_fc_params_t *p = (const ta_fc_params_t *)call->params;
    TA_ENSURE(ta_nn_valid_input_offset(p->input_offset) && ta_nn_valid_input_offset(p->filter_offset) &&
                  ta_nn_valid_output_offset(p->output_offset) && ta_nn_valid_act_range(p->act_min, p->act_max),
              TA_ERR_CORRUPT);
    /* Each product is at most 255 * 255: keep the int32 accumulator from overflowing. */
    TA_ENSURE(in_depth <= INT32_MAX / (255 * 255), TA_ERR_UNSUPPORTED);
    return ta_nn_check_requant_array((const int32_t *)call->inputs[IN_MULT].data,
                                     (const int32_t *)call->inputs[IN_SHIFT].data, out_depth);
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *filter = TA_IN(call, IN_FILTER);
    const int32_t in_depth = filter->dims[1];
    const int32_t batches = ta_tensor_elems(TA_IN(call, IN_INPUT)) / in_depth;
    return ta_fully_connected_s8((const ta_fc_params_t *)call->params, batches, in_depth, filter->dims[0],
                                 (const int8_t *)call->inputs[IN_INPUT].data,
                                 (const int8_t *)call->inputs[IN_FILTER].data,
                                 (const int32_t *)call->inputs[IN_BIAS].data,
                                 (const int32_t *)call->inputs[IN_MULT].data,
                                 (const int32_t *)call->inputs[IN_SHIFT].data,
                                 (int8_t *)call->outputs[0].data);
}

static ta_status_t eval_rows(const ta_op_call_t *call, const ta_op_rows_t *rows)
{
    const ta_tensor_rec_t *filter = TA_IN(call, IN_FILTER);
    const int32_t in_depth = filter->dims[1];
    const int32_t batches = ta_tensor_elems(TA_IN(call, IN_INPUT)) / in_depth;
    TA_ENSURE(call->inputs[IN_INPUT].data != call->outputs[0].data, TA_ERR_STATE);
    return ta_fully_connected_rows_s8((const ta_fc_params_t *)call->params, batches, in_depth, filter->dims[0],
                                      (const int8_t *)call->inputs[IN_INPUT].data, rows->n, rows->channels,
                                      rows->rows, (const int32_t *)call->inputs[IN_BIAS].data,
                                      (const int32_t *)call->inputs[IN_MULT].data,
                                      (const int32_t *)call->inputs[IN_SHIFT].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_fully_connected = {
    .opcode = TA_OP_FULLY_CONNECTED,
    .name = "FULLY_CONNECTED",
    .min_inputs = 5,
    .max_inputs = 5,
    .n_outputs = 1,
    .params_size = sizeof(ta_fc_params_t),
    .prepare = prepare,
    .eval = eval,
    .eval_rows = eval_rows,
};
