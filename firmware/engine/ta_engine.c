#include "tinyadapt/ta_engine.h"

#include <string.h>

#include "ta_engine_internal.h"
#include "ta_patch.h"

/* The model input slot of an external tensor (the loader made it one of the first few). */
static int external_slot(const ta_engine_t *e, const ta_tensor_rec_t *t)
{
    const ta_model_t *m = e->model;
    for (uint16_t i = 0; i < m->header->n_inputs && i < TA_MAX_EXTERNAL_INPUTS; ++i) {
        if (&m->tensors[m->inputs[i]] == t) {
            return i;
        }
    }
    return -1;
}

static void *tensor_data(const ta_engine_t *e, const ta_tensor_rec_t *t)
{
    if (t->kind == TA_TENSOR_PATCH) {
        return NULL; /* exists only as region views inside the patch executor */
    }
    if (t->kind == TA_TENSOR_EXTERNAL) {
        const int slot = external_slot(e, t);
        return slot >= 0 ? e->external[slot] : NULL;
    }
    if (t->kind == TA_TENSOR_CONST) {
        /* Parameters being trained are read from their RAM copies (binary search: sorted). */
        if (e->n_overlays > 0) {
            const uint16_t index = (uint16_t)(t - e->model->tensors);
            uint16_t lo = 0, hi = e->n_overlays;
            while (lo < hi) {
                const uint16_t mid = (uint16_t)((lo + hi) / 2u);
                if (e->overlays[mid].tensor < index) {
                    lo = (uint16_t)(mid + 1u);
                } else {
                    hi = mid;
                }
            }
            if (lo < e->n_overlays && e->overlays[lo].tensor == index) {
                return e->overlays[lo].data;
            }
        }
        /* Constants are only ever read; the loader rejects ops that write them. */
        return (void *)(uintptr_t)(e->model->data + t->offset);
    }
    return e->arena + t->offset;
}

static int is_weight_op(uint16_t opcode)
{
    return opcode == TA_OP_CONV_2D || opcode == TA_OP_DEPTHWISE_CONV_2D || opcode == TA_OP_FULLY_CONNECTED ||
           opcode == TA_OP_CONV_2D_BACKWARD || opcode == TA_OP_DEPTHWISE_CONV_2D_BACKWARD ||
           opcode == TA_OP_FULLY_CONNECTED_BACKWARD;
}

static int is_overlaid(const ta_engine_overlay_t *overlays, uint16_t n, int16_t tensor)
{
    for (uint16_t k = 0; k < n; ++k) {
        if (overlays[k].tensor == tensor) {
            return 1;
        }
    }
    return 0;
}

/* A blob may name one tensor as a conv's bias and as another op's kept-channel list or shift
 * array: prepare saw the blob's bytes there, training would then rewrite them under it (the
 * loader fuzzer found this). So overlaid tensors feed filter and bias inputs only. */
ta_status_t ta_engine_set_overlays(ta_engine_t *engine, const ta_engine_overlay_t *overlays, uint16_t n)
{
    TA_ENSURE(engine != NULL && engine->model != NULL && (overlays != NULL || n == 0), TA_ERR_ARG);
    const ta_model_t *m = engine->model;
    for (uint16_t k = 0; k < n; ++k) {
        TA_ENSURE(overlays[k].tensor < m->header->n_tensors && overlays[k].data != NULL, TA_ERR_ARG);
        TA_ENSURE(m->tensors[overlays[k].tensor].kind == TA_TENSOR_CONST, TA_ERR_CORRUPT);
        TA_ENSURE(k == 0 || overlays[k - 1].tensor <= overlays[k].tensor, TA_ERR_ARG);
        TA_ENSURE(k == 0 || overlays[k - 1].tensor != overlays[k].tensor, TA_ERR_CORRUPT); /* two roles, one tensor */
    }
    for (uint16_t i = 0; i < m->header->n_ops && n > 0; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        const int16_t *io = ta_model_op_io(m, i);
        for (int k = 0; k < op->n_inputs + op->n_outputs; ++k) {
            const int weight_input = is_weight_op(op->opcode) && (k == 1 || k == 2);
            TA_ENSURE(weight_input || !is_overlaid(overlays, n, io[k]), TA_ERR_CORRUPT);
        }
    }
    engine->overlays = overlays;
    engine->n_overlays = n;
    return TA_OK;
}

void ta_engine_resolve(const ta_engine_t *e, int16_t index, ta_tensor_t *out)
{
    if (index == TA_NO_TENSOR) {
        out->rec = NULL;
        out->data = NULL;
        return;
    }
    out->rec = &e->model->tensors[index];
    out->data = tensor_data(e, out->rec);
}

/* Fill `call` for op `i`; the loader has bounds-checked every index used here. */
void ta_engine_build_call(const ta_engine_t *e, uint16_t i, ta_op_call_t *call)
{
    const ta_model_t *m = e->model;
    const ta_op_rec_t *op = &m->ops[i];
    const int16_t *io = ta_model_op_io(m, i);
    call->params = m->data + op->params_offset;
    call->n_inputs = op->n_inputs;
    call->n_outputs = op->n_outputs;
    for (int k = 0; k < op->n_inputs; ++k) {
        ta_engine_resolve(e, io[k], &call->inputs[k]);
    }
    for (int k = 0; k < op->n_outputs; ++k) {
        ta_engine_resolve(e, io[op->n_inputs + k], &call->outputs[k]);
    }
    call->scratch = op->scratch_size > 0 ? e->arena + op->scratch_offset : NULL;
    call->scratch_size = op->scratch_size;
}

ta_status_t ta_engine_init(ta_engine_t *engine, const ta_model_t *model, void *arena, size_t arena_size)
{
    TA_ENSURE(engine != NULL && model != NULL && model->header != NULL, TA_ERR_ARG);
    memset(engine, 0, sizeof(*engine));
    TA_ENSURE(arena != NULL || model->header->arena_size == 0, TA_ERR_ARG);
    TA_ENSURE(((uintptr_t)arena & (TA_ARENA_ALIGN - 1u)) == 0, TA_ERR_ARENA);
    TA_ENSURE(arena_size >= model->header->arena_size, TA_ERR_ARENA);
    engine->model = model;
    engine->arena = (uint8_t *)arena;
    engine->arena_size = (uint32_t)(arena_size > 0xFFFFFFFFu ? 0xFFFFFFFFu : arena_size);

    for (uint16_t i = 0; i < model->n_forward_ops; ++i) {
        const ta_op_rec_t *op = &model->ops[i];
        const ta_op_kernel_t *k = ta_op_find(op->opcode);
        TA_ENSURE(k != NULL, TA_ERR_UNSUPPORTED);
        TA_ENSURE(op->n_inputs >= k->min_inputs && op->n_inputs <= k->max_inputs, TA_ERR_CORRUPT);
        TA_ENSURE(op->n_outputs == k->n_outputs, TA_ERR_CORRUPT);
        TA_ENSURE(op->params_size == k->params_size, TA_ERR_CORRUPT);
        ta_op_call_t call;
        ta_engine_build_call(engine, i, &call);
        TA_TRY(k->prepare(&call));
    }
    if (model->patch != NULL) {
        TA_TRY(ta_patch_prepare(engine));
    }
    engine->ready = 1;
    return TA_OK;
}

/* The output channels of op i whose filter rows live in RAM (training): recomputed from them. */
static ta_status_t eval_rows(const ta_engine_t *e, uint16_t i, const ta_op_kernel_t *k, const ta_op_call_t *call)
{
    for (uint16_t r = 0; r < e->n_rows && e->rows[r].op <= i; ++r) {
        if (e->rows[r].op == i) {
            TA_ENSURE(k->eval_rows != NULL, TA_ERR_UNSUPPORTED);
            TA_TRY(k->eval_rows(call, &e->rows[r]));
        }
    }
    return TA_OK;
}

ta_status_t ta_engine_invoke_ops(ta_engine_t *engine, uint16_t first, uint16_t end)
{
    TA_ENSURE(engine != NULL, TA_ERR_ARG);
    TA_ENSURE(engine->ready, TA_ERR_STATE);
    TA_ENSURE(first <= end && end <= engine->model->n_forward_ops, TA_ERR_ARG);
    /* Stage ops only run through the patch executor: their full-size maps have no room. */
    TA_ENSURE(engine->model->patch == NULL || first >= engine->model->patch->n_stage_ops || first == end,
              TA_ERR_ARG);
    for (uint16_t i = first; i < end; ++i) {
        const ta_op_rec_t *op = &engine->model->ops[i];
        const ta_op_kernel_t *k = ta_op_find(op->opcode);
        ta_op_call_t call;
        ta_engine_build_call(engine, i, &call);
        if (engine->hook != NULL) {
            engine->hook(engine->hook_ctx, i, op->opcode, 0);
        }
        TA_TRY(k->eval(&call));
        if (engine->n_rows > 0) {
            TA_TRY(eval_rows(engine, i, k, &call));
        }
        if (engine->hook != NULL) {
            engine->hook(engine->hook_ctx, i, op->opcode, 1);
        }
    }
    return TA_OK;
}

ta_status_t ta_engine_bind_input(ta_engine_t *engine, uint16_t i, void *data, size_t size)
{
    TA_ENSURE(engine != NULL && engine->model != NULL, TA_ERR_ARG);
    TA_ENSURE(i < engine->model->header->n_inputs, TA_ERR_ARG);
    const ta_tensor_rec_t *t = &engine->model->tensors[engine->model->inputs[i]];
    TA_ENSURE(t->kind == TA_TENSOR_EXTERNAL, TA_ERR_STATE);
    TA_ENSURE(data != NULL && size == t->size, TA_ERR_ARG);
    engine->external[i] = data; /* i < TA_MAX_EXTERNAL_INPUTS: the loader checked */
    return TA_OK;
}

ta_status_t ta_engine_invoke(ta_engine_t *engine)
{
    TA_ENSURE(engine != NULL && engine->model != NULL, TA_ERR_ARG);
    TA_ENSURE(engine->ready, TA_ERR_STATE);
    for (uint16_t i = 0; i < engine->model->header->n_inputs; ++i) {
        const ta_tensor_rec_t *t = &engine->model->tensors[engine->model->inputs[i]];
        TA_ENSURE(t->kind != TA_TENSOR_EXTERNAL || engine->external[i] != NULL, TA_ERR_STATE);
    }
    uint16_t first = 0;
    if (engine->model->patch != NULL) {
        TA_TRY(ta_patch_run(engine));
        first = engine->model->patch->n_stage_ops;
    }
    return ta_engine_invoke_ops(engine, first, engine->model->n_forward_ops);
}

ta_status_t ta_engine_tensor(const ta_engine_t *engine, uint16_t index, ta_tensor_t *out)
{
    TA_ENSURE(engine != NULL && engine->model != NULL && out != NULL, TA_ERR_ARG);
    TA_ENSURE(index < engine->model->header->n_tensors, TA_ERR_ARG);
    ta_engine_resolve(engine, (int16_t)index, out);
    return TA_OK;
}

ta_status_t ta_engine_input(const ta_engine_t *engine, uint16_t i, ta_tensor_t *out)
{
    TA_ENSURE(engine != NULL && engine->model != NULL, TA_ERR_ARG);
    TA_ENSURE(i < engine->model->header->n_inputs, TA_ERR_ARG);
    return ta_engine_tensor(engine, engine->model->inputs[i], out);
}

ta_status_t ta_engine_output(const ta_engine_t *engine, uint16_t i, ta_tensor_t *out)
{
    TA_ENSURE(engine != NULL && engine->model != NULL, TA_ERR_ARG);
    TA_ENSURE(i < engine->model->header->n_outputs, TA_ERR_ARG);
    return ta_engine_tensor(engine, engine->model->outputs[i], out);
}

void ta_engine_set_hook(ta_engine_t *engine, ta_op_hook_fn hook, void *ctx)
{
    if (engine != NULL) {
        engine->hook = hook;
        engine->hook_ctx = ctx;
    }
}
