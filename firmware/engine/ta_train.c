/*
 * The training step: forward through the engine, then the blob's backward ops in order.
 * Each op that updates parameters applies its SGD step as soon as it has its gradient (one
 * output channel's weight row at a time, in the op's scratch), so no weight gradient is ever
 * stored: this is the operator reordering of the Tiny Training Engine, planned on the host
 * (host/tinyadapt/train/graph.py) and only executed here.
 */
#include "tinyadapt/ta_train.h"

#include <string.h>

#include "ta_engine_internal.h"
#include "tinyadapt/ops/ta_backward.h"
#include "tinyadapt/ops/ta_mean.h"

/* Backward op input slots of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED _BACKWARD. */
enum { BW_X, BW_FILTER, BW_BIAS, BW_Y, BW_DY, BW_SCALE, BW_KEPT, BW_N_INPUTS };

typedef struct {
    uint16_t opcode;
    uint8_t n_inputs;
    uint8_t n_outputs;
    uint32_t params_size;
} bw_shape_t;

static const bw_shape_t BW_SHAPES[] = {
    {TA_OP_LOSS_GRAD, 2, 1, sizeof(ta_loss_params_t)},
    {TA_OP_CONV_2D_BACKWARD, BW_N_INPUTS, 1, sizeof(ta_conv_backward_params_t)},
    {TA_OP_DEPTHWISE_CONV_2D_BACKWARD, BW_N_INPUTS, 1, sizeof(ta_conv_backward_params_t)},
    {TA_OP_FULLY_CONNECTED_BACKWARD, BW_N_INPUTS, 1, sizeof(ta_fc_backward_params_t)},
    {TA_OP_ADD_BACKWARD, 2, 2, sizeof(ta_add_backward_params_t)},
    {TA_OP_AVERAGE_POOL_2D_BACKWARD, 2, 1, sizeof(ta_pool_backward_params_t)},
    {TA_OP_MAX_POOL_2D_BACKWARD, 2, 1, sizeof(ta_pool_backward_params_t)},
    {TA_OP_MEAN_BACKWARD, 1, 1, sizeof(ta_mean_backward_params_t)},
    {TA_OP_PAD_BACKWARD, 1, 1, sizeof(ta_pad_backward_params_t)},
    {TA_OP_RESHAPE_BACKWARD, 1, 1, sizeof(ta_reshape_backward_params_t)},
};

static int is_param_op(uint16_t opcode)
{
    return opcode == TA_OP_CONV_2D_BACKWARD || opcode == TA_OP_DEPTHWISE_CONV_2D_BACKWARD ||
           opcode == TA_OP_FULLY_CONNECTED_BACKWARD;
}

/* The update flags of a parameter op, 0 for other ops (params_size was checked by the loader
 * against the record only, so read flags after the shape check). */
static int32_t op_flags(const ta_op_call_t *call, uint16_t opcode)
{
    if (opcode == TA_OP_FULLY_CONNECTED_BACKWARD) {
        return ((const ta_fc_backward_params_t *)call->params)->flags;
    }
    if (opcode == TA_OP_CONV_2D_BACKWARD || opcode == TA_OP_DEPTHWISE_CONV_2D_BACKWARD) {
        return ((const ta_conv_backward_params_t *)call->params)->flags;
    }
    return 0;
}

static float param_input_scale(const ta_op_call_t *call, uint16_t opcode)
{
    if (opcode == TA_OP_FULLY_CONNECTED_BACKWARD) {
        return ((const ta_fc_backward_params_t *)call->params)->input_scale;
    }
    return ((const ta_conv_backward_params_t *)call->params)->input_scale;
}

static int is_act(const ta_tensor_rec_t *r, uint8_t dtype)
{
    return r != NULL && r->kind == TA_TENSOR_ACTIVATION && r->dtype == dtype;
}

static int is_const(const ta_tensor_rec_t *r, uint8_t dtype)
{
    return r != NULL && r->kind == TA_TENSOR_CONST && r->dtype == dtype;
}

static int finite_positive(float v)
{
    return v > 0.0f && v < 3.0e38f; /* false for NaN too */
}

static ta_dims_t dims4(const ta_tensor_rec_t *r)
{
    return ta_tensor_nhwc(r);
}

/* ---- checks (ta_train_init): the blob is untrusted -------------------------------------- */

static ta_status_t check_param_op(const ta_op_call_t *call, uint16_t opcode)
{
    const ta_tensor_rec_t *x = TA_IN(call, BW_X), *w = TA_IN(call, BW_FILTER), *b = TA_IN(call, BW_BIAS);
    const ta_tensor_rec_t *y = TA_IN(call, BW_Y), *dy = TA_IN(call, BW_DY), *sc = TA_IN(call, BW_SCALE);
    const ta_tensor_rec_t *kept = TA_IN(call, BW_KEPT), *dx = TA_OUT(call, 0);
    const int32_t flags = op_flags(call, opcode);
    TA_ENSURE((flags & ~(TA_BWD_UPDATE_WEIGHTS | TA_BWD_UPDATE_BIAS | TA_BWD_ACCUMULATE_0)) == 0, TA_ERR_CORRUPT);
    TA_ENSURE(is_const(w, TA_DTYPE_INT8) && is_act(y, TA_DTYPE_INT8) && is_act(dy, TA_DTYPE_FLOAT32), TA_ERR_CORRUPT);
    TA_ENSURE(ta_tensor_elems(dy) == ta_tensor_elems(y), TA_ERR_SHAPE);
    TA_ENSURE(x == NULL || is_act(x, TA_DTYPE_INT8), TA_ERR_CORRUPT);
    TA_ENSURE(dx == NULL || is_act(dx, TA_DTYPE_FLOAT32), TA_ERR_CORRUPT);
    TA_ENSURE(x != NULL || !(flags & TA_BWD_UPDATE_WEIGHTS), TA_ERR_CORRUPT);
    TA_ENSURE(b != NULL || !(flags & TA_BWD_UPDATE_BIAS), TA_ERR_CORRUPT);
    TA_ENSURE(finite_positive(param_input_scale(call, opcode)), TA_ERR_CORRUPT);
    /* x and dx describe the same forward input. */
    TA_ENSURE(x == NULL || dx == NULL ||
                  (x->ndim == dx->ndim && memcmp(x->dims, dx->dims, sizeof x->dims) == 0),
              TA_ERR_SHAPE);
    const ta_tensor_rec_t *in = x != NULL ? x : dx;

    int32_t out_c;
    if (opcode == TA_OP_FULLY_CONNECTED_BACKWARD) {
        const ta_fc_params_t *p = &((const ta_fc_backward_params_t *)call->params)->fc;
        TA_ENSURE(w->ndim == 2, TA_ERR_SHAPE);
        out_c = w->dims[0];
        const int32_t in_depth = w->dims[1];
        TA_ENSURE(ta_tensor_dim_r(y, 0) == out_c, TA_ERR_SHAPE);
        const int32_t batches = ta_tensor_elems(y) / out_c;
        TA_ENSURE(in == NULL || ta_tensor_elems(in) == batches * in_depth, TA_ERR_SHAPE);
        TA_ENSURE(p->input_offset >= -127 && p->input_offset <= 128 && p->filter_offset >= -127 &&
                      p->filter_offset <= 128 && p->act_min <= p->act_max,
                  TA_ERR_CORRUPT);
    } else {
        const ta_conv_params_t *p = &((const ta_conv_backward_params_t *)call->params)->conv;
        TA_ENSURE(w->ndim == 4 && y->ndim == 4 && (in == NULL || in->ndim == 4), TA_ERR_SHAPE);
        const ta_dims_t f_d = dims4(w), out_d = dims4(y);
        out_c = out_d.c;
        if (in != NULL) {
            const ta_dims_t in_d = dims4(in);
            TA_ENSURE(ta_conv_args_ok(p, &in_d, &f_d, &out_d), TA_ERR_CORRUPT);
            if (opcode == TA_OP_CONV_2D_BACKWARD) {
                TA_ENSURE(f_d.n == out_c && f_d.c == in_d.c && p->depth_multiplier == 1, TA_ERR_SHAPE);
            } else {
                TA_ENSURE(f_d.n == 1 && f_d.c == out_c && p->depth_multiplier >= 1 &&
                              (int64_t)in_d.c * p->depth_multiplier == out_c,
                          TA_ERR_SHAPE);
            }
        } else {
            TA_ENSURE((opcode == TA_OP_CONV_2D_BACKWARD ? f_d.n : f_d.c) == out_c, TA_ERR_SHAPE);
        }
    }
    TA_ENSURE(b == NULL || (is_const(b, TA_DTYPE_INT32) && ta_tensor_elems(b) == out_c), TA_ERR_SHAPE);
    TA_ENSURE(is_const(sc, TA_DTYPE_FLOAT32) && ta_tensor_elems(sc) == out_c, TA_ERR_SHAPE);
    const float *scales = (const float *)call->inputs[BW_SCALE].data;
    for (int32_t c = 0; c < out_c; ++c) {
        TA_ENSURE(finite_positive(scales[c]), TA_ERR_CORRUPT);
    }
    if (flags & TA_BWD_UPDATE_WEIGHTS) {
        TA_ENSURE(is_const(kept, TA_DTYPE_INT32), TA_ERR_CORRUPT);
        const int32_t *k = (const int32_t *)call->inputs[BW_KEPT].data;
        const int32_t n = ta_tensor_elems(kept);
        TA_ENSURE(n >= 1 && n <= out_c, TA_ERR_SHAPE);
        for (int32_t i = 0; i < n; ++i) {
            TA_ENSURE(k[i] >= 0 && k[i] < out_c && (i == 0 || k[i] > k[i - 1]), TA_ERR_CORRUPT);
        }
        /* One output channel's weight gradient is computed into the scratch. */
        const uint64_t row = (uint64_t)(ta_tensor_elems(w) / out_c);
        TA_ENSURE(call->scratch != NULL && call->scratch_size >= row * sizeof(float), TA_ERR_CORRUPT);
    }
    return TA_OK;
}

static ta_status_t check_op(const ta_op_call_t *call, uint16_t opcode, const ta_model_t *m)
{
    if (is_param_op(opcode)) {
        return check_param_op(call, opcode);
    }
    const ta_tensor_rec_t *out0 = TA_OUT(call, 0);
    switch (opcode) {
    case TA_OP_LOSS_GRAD: {
        const ta_loss_params_t *p = (const ta_loss_params_t *)call->params;
        const ta_tensor_rec_t *z = TA_IN(call, 0), *o = TA_IN(call, 1);
        TA_ENSURE(is_act(z, TA_DTYPE_INT8) && is_act(out0, TA_DTYPE_FLOAT32), TA_ERR_CORRUPT);
        TA_ENSURE(o != NULL && o->kind == TA_TENSOR_ACTIVATION &&
                      (o->dtype == TA_DTYPE_INT8 || o->dtype == TA_DTYPE_FLOAT32),
                  TA_ERR_CORRUPT);
        TA_ENSURE(ta_tensor_elems(o) == ta_tensor_elems(z) && ta_tensor_elems(out0) == ta_tensor_elems(z),
                  TA_ERR_SHAPE);
        TA_ENSURE(finite_positive(p->beta) && finite_positive(p->input_scale) && p->zero_point >= -128 &&
                      p->zero_point <= 127 && p->flags == 0,
                  TA_ERR_CORRUPT);
        /* The prediction is read from the model output the host sees. */
        TA_ENSURE(call->inputs[1].rec == &m->tensors[m->outputs[0]], TA_ERR_CORRUPT);
        return TA_OK;
    }
    case TA_OP_ADD_BACKWARD: {
        const ta_add_backward_params_t *p = (const ta_add_backward_params_t *)call->params;
        const ta_tensor_rec_t *y = TA_IN(call, 0), *dy = TA_IN(call, 1), *out1 = TA_OUT(call, 1);
        TA_ENSURE(is_act(y, TA_DTYPE_INT8) && is_act(dy, TA_DTYPE_FLOAT32), TA_ERR_CORRUPT);
        TA_ENSURE(ta_tensor_elems(y) == ta_tensor_elems(dy) && p->act_min <= p->act_max &&
                      (p->flags & ~(TA_BWD_ACCUMULATE_0 | TA_BWD_ACCUMULATE_1)) == 0,
                  TA_ERR_CORRUPT);
        TA_ENSURE(out0 == NULL || (is_act(out0, TA_DTYPE_FLOAT32) && ta_tensor_elems(out0) == ta_tensor_elems(dy)),
                  TA_ERR_SHAPE);
        TA_ENSURE(out1 == NULL || (is_act(out1, TA_DTYPE_FLOAT32) && ta_tensor_elems(out1) == ta_tensor_elems(dy)),
                  TA_ERR_SHAPE);
        return TA_OK;
    }
    default:
        break;
    }
    /* The single-output ops: dx is required and is float32, like dy. */
    const int pool = opcode == TA_OP_AVERAGE_POOL_2D_BACKWARD || opcode == TA_OP_MAX_POOL_2D_BACKWARD;
    const int dy_slot = pool ? 1 : 0;
    const ta_tensor_rec_t *dy = TA_IN(call, dy_slot);
    TA_ENSURE(is_act(dy, TA_DTYPE_FLOAT32) && is_act(out0, TA_DTYPE_FLOAT32), TA_ERR_CORRUPT);
    switch (opcode) {
    case TA_OP_AVERAGE_POOL_2D_BACKWARD:
    case TA_OP_MAX_POOL_2D_BACKWARD: {
        const ta_pool_backward_params_t *p = (const ta_pool_backward_params_t *)call->params;
        /* avgpool saves its output y (for the clamp mask), maxpool its input x (for the argmax) */
        const ta_tensor_rec_t *saved = TA_IN(call, 0);
        TA_ENSURE(is_act(saved, TA_DTYPE_INT8) &&
                      ta_tensor_elems(saved) == ta_tensor_elems(opcode == TA_OP_MAX_POOL_2D_BACKWARD ? out0 : dy),
                  TA_ERR_CORRUPT);
        TA_ENSURE(dy->ndim == 4 && out0->ndim == 4 && (p->flags & ~TA_BWD_ACCUMULATE_0) == 0, TA_ERR_SHAPE);
        const ta_dims_t in_d = dims4(out0), out_d = dims4(dy);
        TA_ENSURE(ta_pool_args_ok(&p->pool, &in_d, &out_d) && p->pool.filter_h > 0 && p->pool.filter_w > 0 &&
                      p->pool.act_min <= p->pool.act_max,
                  TA_ERR_CORRUPT);
        /* Window origins stay far from int32 overflow. */
        TA_ENSURE((int64_t)out_d.h * p->pool.stride_h + p->pool.filter_h < INT32_MAX / 2 &&
                      (int64_t)out_d.w * p->pool.stride_w + p->pool.filter_w < INT32_MAX / 2 &&
                      p->pool.pad_h >= 0 && p->pool.pad_w >= 0 && p->pool.pad_h < INT32_MAX / 4 &&
                      p->pool.pad_w < INT32_MAX / 4,
                  TA_ERR_CORRUPT);
        return TA_OK;
    }
    case TA_OP_MEAN_BACKWARD: {
        const ta_mean_backward_params_t *p = (const ta_mean_backward_params_t *)call->params;
        TA_ENSURE(p->ndim >= 1 && p->ndim <= TA_MEAN_MAX_DIMS && out0->ndim == p->ndim &&
                      (p->axis_mask & ~((1 << p->ndim) - 1)) == 0 && (p->flags & ~TA_BWD_ACCUMULATE_0) == 0,
                  TA_ERR_CORRUPT);
        int32_t kept = 1;
        for (int i = 0; i < p->ndim; ++i) {
            kept *= (p->axis_mask & (1 << i)) ? 1 : out0->dims[i];
        }
        TA_ENSURE(ta_tensor_elems(dy) == kept, TA_ERR_SHAPE);
        return TA_OK;
    }
    case TA_OP_PAD_BACKWARD: {
        const ta_pad_backward_params_t *p = (const ta_pad_backward_params_t *)call->params;
        TA_ENSURE(p->pad.ndim >= 1 && p->pad.ndim <= TA_PAD_MAX_DIMS && out0->ndim == p->pad.ndim &&
                      dy->ndim == p->pad.ndim && (p->flags & ~TA_BWD_ACCUMULATE_0) == 0,
                  TA_ERR_CORRUPT);
        for (int i = 0; i < p->pad.ndim; ++i) {
            TA_ENSURE(p->pad.before[i] >= 0 && p->pad.after[i] >= 0 &&
                          (int64_t)p->pad.before[i] + out0->dims[i] + p->pad.after[i] == dy->dims[i],
                      TA_ERR_SHAPE);
        }
        return TA_OK;
    }
    case TA_OP_RESHAPE_BACKWARD: {
        const ta_reshape_backward_params_t *p = (const ta_reshape_backward_params_t *)call->params;
        TA_ENSURE(ta_tensor_elems(dy) == ta_tensor_elems(out0) && (p->flags & ~TA_BWD_ACCUMULATE_0) == 0,
                  TA_ERR_SHAPE);
        return TA_OK;
    }
    default:
        return TA_ERR_UNSUPPORTED;
    }
}

static ta_status_t check_shape(const ta_op_rec_t *op)
{
    for (size_t k = 0; k < sizeof BW_SHAPES / sizeof BW_SHAPES[0]; ++k) {
        if (BW_SHAPES[k].opcode == op->opcode) {
            TA_ENSURE(op->n_inputs == BW_SHAPES[k].n_inputs && op->n_outputs == BW_SHAPES[k].n_outputs &&
                          op->params_size == BW_SHAPES[k].params_size,
                      TA_ERR_CORRUPT);
            return TA_OK;
        }
    }
    return TA_ERR_UNSUPPORTED;
}

/* ---- parameter RAM layout ---------------------------------------------------------------- */

static uint32_t align4(uint32_t n) { return (n + 3u) & ~3u; }

/* Bytes a checked parameter op takes in the image (its masters) and in the copies. */
static void slot_sizes(const ta_op_call_t *call, uint16_t opcode, uint64_t *image, uint64_t *copies)
{
    const int32_t flags = op_flags(call, opcode);
    const ta_tensor_rec_t *w = TA_IN(call, BW_FILTER);
    const int32_t channels = ta_tensor_elems(TA_IN(call, BW_SCALE));
    const uint64_t row = (uint64_t)(ta_tensor_elems(w) / channels);
    *image = 0;
    *copies = 0;
    if (flags & TA_BWD_UPDATE_WEIGHTS) {
        const uint64_t kept = (uint64_t)ta_tensor_elems(TA_IN(call, BW_KEPT));
        *image += kept * row * sizeof(float);
        *copies += (kept * row + 3u) & ~(uint64_t)3u;
    }
    if (flags & TA_BWD_UPDATE_BIAS) {
        *image += (uint64_t)channels * sizeof(float);
        *copies += (uint64_t)channels * sizeof(int32_t);
    }
}

/* Place a checked parameter op's slot: masters at image_at, copies at copy_at. */
static void slot_place(const ta_op_call_t *call, uint16_t opcode, uint8_t *base, uint32_t image_at, uint32_t copy_at,
                       ta_train_slot_t *slot)
{
    const int32_t flags = op_flags(call, opcode);
    const ta_tensor_rec_t *w = TA_IN(call, BW_FILTER);
    const int32_t channels = ta_tensor_elems(TA_IN(call, BW_SCALE));
    memset(slot, 0, sizeof *slot);
    slot->row = (uint32_t)(ta_tensor_elems(w) / channels);
    slot->channels = (uint32_t)channels;
    if (flags & TA_BWD_UPDATE_WEIGHTS) {
        slot->n_kept = (uint16_t)ta_tensor_elems(TA_IN(call, BW_KEPT));
        const uint32_t n = (uint32_t)slot->n_kept * slot->row;
        slot->weight_master = (float *)(void *)(base + image_at);
        image_at += n * (uint32_t)sizeof(float);
        slot->weight = (int8_t *)(base + copy_at);
        copy_at += align4(n);
    }
    if (flags & TA_BWD_UPDATE_BIAS) {
        slot->bias_master = (float *)(void *)(base + image_at);
        slot->bias = (int32_t *)(void *)(base + copy_at);
    }
}

/* Image and total bytes of parameter RAM; 0 when a backward op fails its checks. */
static uint64_t ram_layout(const ta_engine_t *e, uint64_t *image_total)
{
    const ta_model_t *m = e->model;
    uint64_t image = 0, copies = 0;
    for (uint16_t i = m->n_forward_ops; i < m->header->n_ops; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        if (!is_param_op(op->opcode)) {
            continue;
        }
        ta_op_call_t call;
        if (check_shape(op) != TA_OK) {
            return 0;
        }
        ta_engine_build_call(e, i, &call);
        if (check_param_op(&call, op->opcode) != TA_OK) {
            return 0;
        }
        uint64_t a, b;
        slot_sizes(&call, op->opcode, &a, &b);
        image += a;
        copies += b;
    }
    *image_total = image;
    return image + copies;
}

size_t ta_train_param_ram_size(const ta_model_t *model)
{
    if (model == NULL || model->train == NULL) {
        return 0;
    }
    /* Resolving only needs the model: no arena is touched (activations get a NULL base). */
    ta_engine_t e;
    uint8_t no_arena[4];
    memset(&e, 0, sizeof e);
    e.model = model;
    e.arena = no_arena; /* activation pointers are formed, never read */
    uint64_t image;
    const uint64_t total = ram_layout(&e, &image);
    return total > 0x7FFFFFFFu ? 0 : (size_t)total;
}

/* ---- parameters ---------------------------------------------------------------------------- */

/* Clamps written so that NaN (a diverged step, or a hostile image) lands on the lower bound:
 * converting NaN to an integer is undefined, and the two targets must agree bit for bit. */
static float clamp_weight(float v) { return v > 127.0f ? 127.0f : (v >= -127.0f ? v : -127.0f); }

/* 2147483520 is the largest float below 2^31. */
static float clamp_bias(float v) { return v > 2147483520.0f ? 2147483520.0f : (v >= -2147483520.0f ? v : -2147483520.0f); }

static int8_t round_weight(float v)
{
    v = clamp_weight(v);
    return (int8_t)(int32_t)(v < 0.0f ? v - 0.5f : v + 0.5f);
}

static int32_t round_bias(float v)
{
    v = clamp_bias(v);
    return (int32_t)(v < 0.0f ? v - 0.5f : v + 0.5f);
}

static int slot_depthwise(const ta_trainer_t *t, const ta_train_slot_t *s)
{
    return t->engine->model->ops[s->op].opcode == TA_OP_DEPTHWISE_CONV_2D_BACKWARD;
}

/* Weight j of kept channel k in the slot's int8 rows (the filter's layout restricted to the
 * kept channels: the depthwise filter keeps channels innermost). */
static size_t row_index(const ta_train_slot_t *s, int depthwise, uint32_t k, uint32_t j)
{
    return depthwise ? (size_t)j * s->n_kept + k : (size_t)k * s->row + j;
}

/* Weight j of output channel c in the whole filter. */
static size_t filter_index(const ta_train_slot_t *s, int depthwise, uint32_t c, uint32_t j)
{
    return depthwise ? (size_t)j * s->channels + c : (size_t)c * s->row + j;
}

/* The int8 / int32 copies from the masters. */
static void slot_round(const ta_trainer_t *t, const ta_train_slot_t *s)
{
    const int dw = slot_depthwise(t, s);
    for (uint32_t k = 0; k < s->n_kept && s->weight != NULL; ++k) {
        for (uint32_t j = 0; j < s->row; ++j) {
            s->weight[row_index(s, dw, k, j)] = round_weight(s->weight_master[(size_t)k * s->row + j]);
        }
    }
    if (s->bias != NULL) {
        for (uint32_t c = 0; c < s->channels; ++c) {
            s->bias[c] = round_bias(s->bias_master[c]);
        }
    }
}

/* Masters from the blob's values (the copies follow: integers round to themselves). */
static void slot_reset(const ta_trainer_t *t, const ta_train_slot_t *s)
{
    ta_op_call_t call;
    ta_engine_build_call(t->engine, s->op, &call);
    const ta_model_t *m = t->engine->model;
    const int dw = slot_depthwise(t, s);
    if (s->weight != NULL) {
        const int8_t *w = (const int8_t *)(m->data + call.inputs[BW_FILTER].rec->offset);
        const int32_t *kept = (const int32_t *)call.inputs[BW_KEPT].data;
        for (uint32_t k = 0; k < s->n_kept; ++k) {
            for (uint32_t j = 0; j < s->row; ++j) {
                s->weight_master[(size_t)k * s->row + j] = (float)w[filter_index(s, dw, (uint32_t)kept[k], j)];
            }
        }
    }
    if (s->bias != NULL) {
        const int32_t *b = (const int32_t *)(const void *)(m->data + call.inputs[BW_BIAS].rec->offset);
        for (uint32_t c = 0; c < s->channels; ++c) {
            s->bias_master[c] = (float)b[c];
        }
    }
    slot_round(t, s);
}

/* Every forward op that reads filter tensor `tensor` of a partly kept slot gets its rows; the
 * filter must be read only as such an op's filter, outside any patch stage (whose executor
 * runs ops on regions and never recomputes rows). */
static ta_status_t add_rows(ta_trainer_t *t, const ta_model_t *m, uint16_t tensor, uint16_t fwd_opcode,
                            const ta_train_slot_t *s, const int32_t *kept)
{
    const uint16_t first = m->patch != NULL ? m->patch->n_stage_ops : 0u;
    for (uint16_t i = 0; i < m->n_forward_ops; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        const int16_t *io = ta_model_op_io(m, i);
        for (int k = 0; k < op->n_inputs; ++k) {
            if (io[k] != (int16_t)tensor) {
                continue;
            }
            TA_ENSURE(k == 1 && op->opcode == fwd_opcode && i >= first, TA_ERR_UNSUPPORTED);
            ta_op_call_t call;
            ta_engine_build_call(t->engine, i, &call);
            TA_ENSURE(call.inputs[0].data != call.outputs[0].data, TA_ERR_UNSUPPORTED); /* not in place */
            TA_ENSURE(t->n_rows < TA_TRAIN_MAX_UPDATES, TA_ERR_UNSUPPORTED);
            ta_op_rows_t *r = &t->rows[t->n_rows++];
            r->op = i;
            r->n = s->n_kept;
            r->channels = kept;
            r->rows = s->weight;
        }
    }
    return TA_OK;
}

static uint16_t forward_opcode(uint16_t backward)
{
    return backward == TA_OP_CONV_2D_BACKWARD ? TA_OP_CONV_2D
           : backward == TA_OP_DEPTHWISE_CONV_2D_BACKWARD ? TA_OP_DEPTHWISE_CONV_2D
                                                           : TA_OP_FULLY_CONNECTED;
}

ta_status_t ta_train_init(ta_trainer_t *t, ta_engine_t *engine, uint8_t *param_ram, size_t param_ram_size)
{
    TA_ENSURE(t != NULL && engine != NULL && engine->model != NULL, TA_ERR_ARG);
    memset(t, 0, sizeof *t);
    TA_ENSURE(engine->ready, TA_ERR_STATE);
    const ta_model_t *m = engine->model;
    TA_ENSURE(m->train != NULL, TA_ERR_UNSUPPORTED);
    TA_ENSURE(((uintptr_t)param_ram & 3u) == 0, TA_ERR_ARG);
    /* Forget what an earlier trainer installed: checks and copies read the blob's parameters. */
    engine->overlays = NULL;
    engine->n_overlays = 0;
    engine->rows = NULL;
    engine->n_rows = 0;
    t->engine = engine;
    /* The first backward op is the loss. */
    TA_ENSURE(m->ops[m->n_forward_ops].opcode == TA_OP_LOSS_GRAD, TA_ERR_CORRUPT);

    for (uint16_t i = m->n_forward_ops; i < m->header->n_ops; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        TA_TRY(check_shape(op));
        ta_op_call_t call;
        ta_engine_build_call(engine, i, &call);
        TA_TRY(check_op(&call, op->opcode, m));
        if (i > m->n_forward_ops) {
            TA_ENSURE(op->opcode != TA_OP_LOSS_GRAD, TA_ERR_CORRUPT);
        }
    }
    uint64_t image = 0;
    const uint64_t total = ram_layout(engine, &image);
    TA_ENSURE(total > 0 && total <= 0x7FFFFFFFu, TA_ERR_CORRUPT);
    TA_ENSURE(param_ram != NULL && total <= param_ram_size, TA_ERR_ARENA);

    uint32_t image_at = 0, copy_at = (uint32_t)image;
    for (uint16_t i = m->n_forward_ops; i < m->header->n_ops; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        ta_op_call_t call;
        ta_engine_build_call(engine, i, &call);
        if (!is_param_op(op->opcode) || (op_flags(&call, op->opcode) & (TA_BWD_UPDATE_WEIGHTS | TA_BWD_UPDATE_BIAS)) == 0) {
            continue;
        }
        TA_ENSURE(t->n_slots < TA_TRAIN_MAX_UPDATES, TA_ERR_UNSUPPORTED);
        ta_train_slot_t *s = &t->slots[t->n_slots++];
        slot_place(&call, op->opcode, param_ram, image_at, copy_at, s);
        s->op = i;
        uint64_t a, b;
        slot_sizes(&call, op->opcode, &a, &b);
        image_at += (uint32_t)a;
        copy_at += (uint32_t)b;
        const uint16_t filter = (uint16_t)(call.inputs[BW_FILTER].rec - m->tensors);
        for (uint16_t k = 0; k + 1u < t->n_slots; ++k) {
            /* one filter updated by two ops would let two masters fight over it */
            const ta_train_slot_t *o = &t->slots[k];
            ta_op_call_t oc;
            ta_engine_build_call(engine, o->op, &oc);
            TA_ENSURE(o->weight == NULL || s->weight == NULL ||
                          (uint16_t)(oc.inputs[BW_FILTER].rec - m->tensors) != filter,
                      TA_ERR_CORRUPT);
        }
        if (s->weight != NULL && s->n_kept == s->channels) {
            /* every channel kept: the rows are the whole filter, read in its place */
            t->overlays[t->n_overlays].tensor = filter;
            t->overlays[t->n_overlays++].data = s->weight;
        } else if (s->weight != NULL) {
            TA_TRY(add_rows(t, m, filter, forward_opcode(op->opcode), s, (const int32_t *)call.inputs[BW_KEPT].data));
        }
        if (s->bias != NULL) {
            t->overlays[t->n_overlays].tensor = (uint16_t)(call.inputs[BW_BIAS].rec - m->tensors);
            t->overlays[t->n_overlays++].data = s->bias;
        }
    }
    /* Sort overlays by tensor and rows by op (the engine searches them in order). */
    for (uint16_t i = 1; i < t->n_overlays; ++i) {
        const ta_engine_overlay_t v = t->overlays[i];
        uint16_t j = i;
        while (j > 0 && t->overlays[j - 1].tensor > v.tensor) {
            t->overlays[j] = t->overlays[j - 1];
            --j;
        }
        t->overlays[j] = v;
    }
    for (uint16_t i = 1; i < t->n_overlays; ++i) {
        TA_ENSURE(t->overlays[i].tensor != t->overlays[i - 1].tensor, TA_ERR_CORRUPT);
    }
    for (uint16_t i = 1; i < t->n_rows; ++i) {
        const ta_op_rows_t v = t->rows[i];
        uint16_t j = i;
        while (j > 0 && t->rows[j - 1].op > v.op) {
            t->rows[j] = t->rows[j - 1];
            --j;
        }
        t->rows[j] = v;
    }
    t->ram = param_ram;
    t->ram_size = (uint32_t)total;
    t->image_size = (uint32_t)image;
    for (uint16_t k = 0; k < t->n_slots; ++k) {
        slot_reset(t, &t->slots[k]);
    }
    TA_TRY(ta_engine_set_overlays(engine, t->overlays, t->n_overlays));
    engine->rows = t->rows;
    engine->n_rows = t->n_rows;
    t->ready = 1;
    return TA_OK;
}

ta_status_t ta_train_reset(ta_trainer_t *t)
{
    TA_ENSURE(t != NULL && t->ready, TA_ERR_STATE);
    for (uint16_t k = 0; k < t->n_slots; ++k) {
        slot_reset(t, &t->slots[k]);
    }
    return TA_OK;
}

ta_status_t ta_train_params(const ta_trainer_t *t, const uint8_t **data, size_t *len)
{
    TA_ENSURE(t != NULL && data != NULL && len != NULL, TA_ERR_ARG);
    TA_ENSURE(t->ready, TA_ERR_STATE);
    *data = t->ram;
    *len = t->image_size;
    return TA_OK;
}

ta_status_t ta_train_load_params(ta_trainer_t *t, const uint8_t *data, size_t len)
{
    TA_ENSURE(t != NULL && t->ready, TA_ERR_STATE);
    TA_ENSURE((data != NULL || len == 0) && len == t->image_size, TA_ERR_ARG);
    memmove(t->ram, data, len);
    /* The int8/int32 copies must be what the masters round to. */
    for (uint16_t k = 0; k < t->n_slots; ++k) {
        slot_round(t, &t->slots[k]);
    }
    return TA_OK;
}

/* ---- the step ------------------------------------------------------------------------------ */

typedef struct {
    float lr;
    uint32_t updated;
    const ta_engine_t *engine; /* its hook marks where an op's update starts */
    uint16_t op;
} step_ctx_t;

/*
 * SGD with quantization-aware scaling. The chain rule gives the int-domain gradients
 * G_W = s_W dL/dW and G_b = s_b dL/db (W = s_W W_int, b = s_b b_int, s_b = s_W s_x); QAS
 * scales them by s_W^-2 and s_b^-2, and the masters take the plain SGD step.
 */
static void update_params(const ta_op_call_t *call, uint16_t opcode, const ta_train_slot_t *s, step_ctx_t *ctx)
{
    const float *scale = (const float *)call->inputs[BW_SCALE].data;
    const float *g_out = (const float *)call->inputs[BW_DY].data;
    const ta_tensor_rec_t *y = TA_IN(call, BW_Y);
    const uint32_t pixels = (uint32_t)(ta_tensor_elems(y) / (int32_t)s->channels);
    const float x_scale = param_input_scale(call, opcode);
    if (s->bias != NULL) {
        for (uint32_t c = 0; c < s->channels; ++c) {
            float db = 0.0f;
            for (uint32_t q = 0; q < pixels; ++q) {
                db += g_out[(size_t)q * s->channels + c];
            }
            const float sb = scale[c] * x_scale;
            const float g_int = sb * db;
            s->bias_master[c] = clamp_bias(s->bias_master[c] - ctx->lr * (g_int * (1.0f / (sb * sb))));
            s->bias[c] = round_bias(s->bias_master[c]);
        }
        ctx->updated += s->channels;
    }
    if (s->weight == NULL) {
        return;
    }
    const ta_tensor_rec_t *x = TA_IN(call, BW_X);
    const int8_t *xd = (const int8_t *)call->inputs[BW_X].data;
    const int32_t *kept = (const int32_t *)call->inputs[BW_KEPT].data;
    const int dw = opcode == TA_OP_DEPTHWISE_CONV_2D_BACKWARD;
    float *grad = (float *)call->scratch;
    for (uint32_t k = 0; k < s->n_kept; ++k) {
        const int32_t c = kept[k];
        if (opcode == TA_OP_FULLY_CONNECTED_BACKWARD) {
            const ta_fc_params_t *p = &((const ta_fc_backward_params_t *)call->params)->fc;
            ta_fully_connected_backward_filter_f32((int32_t)pixels, (int32_t)s->row, (int32_t)s->channels, xd,
                                                   -p->input_offset, x_scale, g_out, c, grad);
        } else {
            const ta_conv_params_t *p = &((const ta_conv_backward_params_t *)call->params)->conv;
            const ta_dims_t in_d = dims4(x), f_d = dims4(TA_IN(call, BW_FILTER)), out_d = dims4(y);
            if (opcode == TA_OP_CONV_2D_BACKWARD) {
                ta_conv2d_backward_filter_f32(p, &in_d, xd, -p->input_offset, x_scale, &f_d, &out_d, g_out, c, grad);
            } else {
                ta_depthwise_conv2d_backward_filter_f32(p, &in_d, xd, -p->input_offset, x_scale, &f_d, &out_d, g_out,
                                                        c, grad);
            }
        }
        const float sw = scale[c];
        const float inv = 1.0f / (sw * sw);
        float *master = s->weight_master + (size_t)k * s->row;
        for (uint32_t j = 0; j < s->row; ++j) {
            const float g_int = sw * grad[j];
            master[j] = clamp_weight(master[j] - ctx->lr * (g_int * inv));
            s->weight[row_index(s, dw, k, j)] = round_weight(master[j]);
        }
    }
    ctx->updated += s->n_kept * s->row;
}

static void param_op_backward(const ta_op_call_t *call, uint16_t opcode, const ta_train_slot_t *s, step_ctx_t *ctx)
{
    const int32_t flags = op_flags(call, opcode);
    const ta_tensor_rec_t *y = TA_IN(call, BW_Y);
    float *dy = (float *)call->inputs[BW_DY].data;
    /* The filter as the forward pass used it: the blob's, with the kept channels' rows from RAM
     * (a filter kept whole is read from RAM through its overlay). */
    const int8_t *w = (const int8_t *)call->inputs[BW_FILTER].data;
    ta_op_rows_t rows_v;
    const ta_op_rows_t *rows = NULL;
    if (s != NULL && s->weight != NULL && s->n_kept < s->channels) {
        rows_v.op = 0;
        rows_v.n = s->n_kept;
        rows_v.channels = (const int32_t *)call->inputs[BW_KEPT].data;
        rows_v.rows = s->weight;
        rows = &rows_v;
    }
    const float *scale = (const float *)call->inputs[BW_SCALE].data;
    int32_t act_min, act_max;
    if (opcode == TA_OP_FULLY_CONNECTED_BACKWARD) {
        const ta_fc_params_t *p = &((const ta_fc_backward_params_t *)call->params)->fc;
        act_min = p->act_min;
        act_max = p->act_max;
    } else {
        const ta_conv_params_t *p = &((const ta_conv_backward_params_t *)call->params)->conv;
        act_min = p->act_min;
        act_max = p->act_max;
    }
    ta_act_mask_f32((const int8_t *)call->inputs[BW_Y].data, ta_tensor_elems(y), act_min, act_max, dy);
    /* The input gradient first: it must see the weights before this step's update. */
    if (call->outputs[0].rec != NULL) {
        const int acc = (flags & TA_BWD_ACCUMULATE_0) != 0;
        float *dx = (float *)call->outputs[0].data;
        if (opcode == TA_OP_FULLY_CONNECTED_BACKWARD) {
            const ta_fc_params_t *p = &((const ta_fc_backward_params_t *)call->params)->fc;
            const ta_tensor_rec_t *f = TA_IN(call, BW_FILTER);
            const int32_t out_c = f->dims[0], in_depth = f->dims[1];
            ta_fully_connected_backward_input_f32(ta_tensor_elems(y) / out_c, in_depth, out_c, dy, w, rows,
                                                  p->filter_offset, scale, acc, dx);
        } else {
            const ta_conv_params_t *p = &((const ta_conv_backward_params_t *)call->params)->conv;
            const ta_dims_t in_d = dims4(TA_OUT(call, 0)), f_d = dims4(TA_IN(call, BW_FILTER)), out_d = dims4(y);
            if (opcode == TA_OP_CONV_2D_BACKWARD) {
                ta_conv2d_backward_input_f32(p, &in_d, &f_d, &out_d, dy, w, rows, scale, acc, dx);
            } else {
                ta_depthwise_conv2d_backward_input_f32(p, &in_d, &f_d, &out_d, dy, w, rows, scale, acc, dx);
            }
        }
    }
    if (s != NULL) {
        if (ctx->engine->hook != NULL) {
            ctx->engine->hook(ctx->engine->hook_ctx, ctx->op, opcode, TA_HOOK_UPDATE);
        }
        update_params(call, opcode, s, ctx);
    }
}

static void run_backward(const ta_op_call_t *call, uint16_t opcode)
{
    float *dx = (float *)call->outputs[0].data;
    switch (opcode) {
    case TA_OP_ADD_BACKWARD: {
        const ta_add_backward_params_t *p = (const ta_add_backward_params_t *)call->params;
        float *dy = (float *)call->inputs[1].data;
        const int32_t n = ta_tensor_elems(TA_IN(call, 1));
        ta_act_mask_f32((const int8_t *)call->inputs[0].data, n, p->act_min, p->act_max, dy);
        for (int k = 0; k < 2; ++k) {
            if (call->outputs[k].rec != NULL) {
                ta_grad_copy_f32(dy, n, (p->flags & (k == 0 ? TA_BWD_ACCUMULATE_0 : TA_BWD_ACCUMULATE_1)) != 0,
                                 (float *)call->outputs[k].data);
            }
        }
        return;
    }
    case TA_OP_AVERAGE_POOL_2D_BACKWARD: {
        const ta_pool_backward_params_t *p = (const ta_pool_backward_params_t *)call->params;
        float *dy = (float *)call->inputs[1].data;
        const ta_tensor_rec_t *dy_r = TA_IN(call, 1);
        ta_act_mask_f32((const int8_t *)call->inputs[0].data, ta_tensor_elems(dy_r), p->pool.act_min,
                        p->pool.act_max, dy);
        const ta_dims_t in_d = dims4(TA_OUT(call, 0)), out_d = dims4(dy_r);
        ta_avgpool_backward_f32(&p->pool, &in_d, &out_d, dy, (p->flags & TA_BWD_ACCUMULATE_0) != 0, dx);
        return;
    }
    case TA_OP_MAX_POOL_2D_BACKWARD: {
        const ta_pool_backward_params_t *p = (const ta_pool_backward_params_t *)call->params;
        const ta_dims_t in_d = dims4(TA_OUT(call, 0)), out_d = dims4(TA_IN(call, 1));
        ta_maxpool_backward_f32(&p->pool, &in_d, (const int8_t *)call->inputs[0].data, &out_d,
                                (const float *)call->inputs[1].data, (p->flags & TA_BWD_ACCUMULATE_0) != 0, dx);
        return;
    }
    case TA_OP_MEAN_BACKWARD: {
        const ta_mean_backward_params_t *p = (const ta_mean_backward_params_t *)call->params;
        ta_mean_backward_f32(p->ndim, TA_OUT(call, 0)->dims, p->axis_mask, (const float *)call->inputs[0].data,
                             (p->flags & TA_BWD_ACCUMULATE_0) != 0, dx);
        return;
    }
    case TA_OP_PAD_BACKWARD: {
        const ta_pad_backward_params_t *p = (const ta_pad_backward_params_t *)call->params;
        ta_pad_backward_f32(p->pad.ndim, TA_OUT(call, 0)->dims, p->pad.before, p->pad.after,
                            (const float *)call->inputs[0].data, (p->flags & TA_BWD_ACCUMULATE_0) != 0, dx);
        return;
    }
    case TA_OP_RESHAPE_BACKWARD: {
        const ta_reshape_backward_params_t *p = (const ta_reshape_backward_params_t *)call->params;
        ta_grad_copy_f32((const float *)call->inputs[0].data, ta_tensor_elems(TA_IN(call, 0)),
                         (p->flags & TA_BWD_ACCUMULATE_0) != 0, dx);
        return;
    }
    default:
        return;
    }
}

static int32_t argmax(const ta_tensor_t *o)
{
    const int32_t n = ta_tensor_elems(o->rec);
    int32_t best = 0;
    if (o->rec->dtype == TA_DTYPE_INT8) {
        const int8_t *v = (const int8_t *)o->data;
        for (int32_t i = 1; i < n; ++i) {
            best = v[i] > v[best] ? i : best;
        }
    } else {
        const float *v = (const float *)o->data;
        for (int32_t i = 1; i < n; ++i) {
            best = v[i] > v[best] ? i : best;
        }
    }
    return best;
}

/* Forward pass and the loss op; `kind` < 0 skips the loss (prediction only). */
static ta_status_t forward_loss(ta_trainer_t *t, int kind, int32_t label, ta_train_result_t *out)
{
    TA_TRY(ta_engine_invoke(t->engine));
    const ta_model_t *m = t->engine->model;
    ta_op_call_t call;
    ta_engine_build_call(t->engine, m->n_forward_ops, &call);
    const ta_loss_params_t *p = (const ta_loss_params_t *)call.params;
    out->prediction = argmax(&call.inputs[1]);
    out->loss = 0.0f;
    out->updated_params = 0;
    if (kind >= 0) {
        if (t->engine->hook != NULL) {
            t->engine->hook(t->engine->hook_ctx, m->n_forward_ops, m->ops[m->n_forward_ops].opcode, 0);
        }
        out->loss = ta_softmax_loss_f32(ta_tensor_elems(TA_IN(&call, 0)), (const int8_t *)call.inputs[0].data,
                                        p->zero_point, p->input_scale, p->beta, kind, label,
                                        (float *)call.outputs[0].data);
        if (t->engine->hook != NULL) {
            t->engine->hook(t->engine->hook_ctx, m->n_forward_ops, m->ops[m->n_forward_ops].opcode, 1);
        }
    }
    return TA_OK;
}

static ta_status_t check_label(const ta_trainer_t *t, ta_loss_kind_t loss, int32_t label)
{
    const ta_model_t *m = t->engine->model;
    const int16_t *io = ta_model_op_io(m, m->n_forward_ops);
    const int32_t depth = ta_tensor_elems(&m->tensors[io[0]]);
    TA_ENSURE(loss == TA_LOSS_ENTROPY || (loss == TA_LOSS_CROSS_ENTROPY && label >= 0 && label < depth), TA_ERR_ARG);
    return TA_OK;
}

ta_status_t ta_train_eval(ta_trainer_t *t, int32_t label, ta_train_result_t *out)
{
    TA_ENSURE(t != NULL && out != NULL, TA_ERR_ARG);
    TA_ENSURE(t->ready, TA_ERR_STATE);
    if (label >= 0) {
        TA_TRY(check_label(t, TA_LOSS_CROSS_ENTROPY, label));
    }
    return forward_loss(t, label >= 0 ? 0 : -1, label, out);
}

ta_status_t ta_train_step(ta_trainer_t *t, ta_loss_kind_t loss, int32_t label, float learning_rate,
                          ta_train_result_t *out)
{
    TA_ENSURE(t != NULL && out != NULL, TA_ERR_ARG);
    TA_ENSURE(t->ready, TA_ERR_STATE);
    TA_ENSURE(learning_rate >= 0.0f && learning_rate < 3.0e38f, TA_ERR_ARG);
    TA_TRY(check_label(t, loss, label));
    TA_TRY(forward_loss(t, (int)loss, label, out));
    const ta_model_t *m = t->engine->model;
    step_ctx_t ctx = {learning_rate, 0, t->engine, 0};
    uint16_t next_slot = 0;
    for (uint16_t i = (uint16_t)(m->n_forward_ops + 1u); i < m->header->n_ops; ++i) {
        const uint16_t opcode = m->ops[i].opcode;
        ta_op_call_t call;
        ta_engine_build_call(t->engine, i, &call);
        if (t->engine->hook != NULL) {
            t->engine->hook(t->engine->hook_ctx, i, opcode, 0);
        }
        if (is_param_op(opcode)) {
            ctx.op = i;
            const ta_train_slot_t *s = NULL;
            if (next_slot < t->n_slots && t->slots[next_slot].op == i) {
                s = &t->slots[next_slot++];
            }
            param_op_backward(&call, opcode, s, &ctx);
        } else {
            run_backward(&call, opcode);
        }
        if (t->engine->hook != NULL) {
            t->engine->hook(t->engine->hook_ctx, i, opcode, 1);
        }
    }
    out->updated_params = ctx.updated;
    return TA_OK;
}
