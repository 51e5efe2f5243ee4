/*
 * The patch executor. For each tile: copy the stage input's window into its region
 * buffer (from the arena, or from storage bound outside it), run every stage op on region views (windowed ops shift their padding,
 * pointwise ops run row by row), and copy the stage output's region into the full
 * output tensor. The full-size intermediate maps of the stage never exist.
 *
 * In stream mode the tiles are full-width row bands: after an op writes its output region,
 * the rows the next band also reads are saved to a small stream buffer, and the next band
 * restores them instead of recomputing them, so no halo row is computed twice.
 */
#include "ta_patch.h"

#include <string.h>

#include "ta_engine_internal.h"

/* Region tensors one stage op touches: its input, output and a residual input. */
#define MAX_VIEWS 4

static int region_slot(const ta_model_t *m, int16_t tensor)
{
    for (int r = 0; r < m->patch->n_regions; ++r) {
        if (m->patch_tensors[r].tensor == (uint16_t)tensor) {
            return r;
        }
    }
    return -1;
}

static const ta_region_t *tile_region(const ta_model_t *m, uint32_t tile, int slot)
{
    return &m->patch_regions[tile * m->patch->n_regions + (uint32_t)slot];
}

static int is_stage_output_of(const ta_model_t *m, uint16_t tensor, uint16_t op_end)
{
    for (uint16_t i = 0; i < op_end; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        const int16_t *io = ta_model_op_io(m, i);
        for (int k = 0; k < op->n_outputs; ++k) {
            if (io[op->n_inputs + k] == (int16_t)tensor) {
                return 1;
            }
        }
    }
    return 0;
}

/* The rows of a tile's region that the tile computes: all of them, or in stream mode those
 * past the previous band's region in the strip (the others are kept from it). May be empty. */
static ta_region_t computed_rows(const ta_model_t *m, uint32_t tile, int slot)
{
    ta_region_t g = *tile_region(m, tile, slot);
    if (m->patch_streams != NULL && tile % m->patch_bands != 0) {
        const int16_t prev_end = tile_region(m, tile - 1, slot)->y1;
        g.y0 = prev_end > g.y0 ? prev_end : g.y0;
    }
    return g;
}

static int contains(const ta_region_t *outer, const ta_region_t *inner)
{
    return outer->y0 <= inner->y0 && inner->y1 <= outer->y1 && outer->x0 <= inner->x0 && inner->x1 <= outer->x1;
}

static int is_activation(const ta_tensor_t *t) { return t->rec != NULL && t->rec->kind != TA_TENSOR_CONST; }

/* Same [1, H, W] grid of pixels (channels may differ: concatenation). */
static int same_pixels(const ta_tensor_rec_t *a, const ta_tensor_rec_t *b)
{
    return a->ndim == 4 && b->ndim == 4 && a->dims[0] == b->dims[0] && a->dims[1] == b->dims[1] &&
           a->dims[2] == b->dims[2];
}

/* A constant operand of a pointwise stage op must broadcast against a [1, 1, width, C] row
 * as it does against the full map: a scalar, or one value per channel. */
static int row_broadcastable(const ta_tensor_rec_t *c, const ta_tensor_rec_t *out)
{
    const int32_t n = ta_tensor_elems(c);
    return n == 1 || (c->ndim >= 1 && n == c->dims[c->ndim - 1] && c->dims[c->ndim - 1] == out->dims[3]);
}

/* A gather op reads its input 0 in full: it must be a stage input (no stage op writes it). */
static ta_status_t check_gather(const ta_model_t *m, const ta_op_call_t *call)
{
    TA_ENSURE(call->n_inputs >= 1 && is_activation(&call->inputs[0]) && call->inputs[0].rec->kind != TA_TENSOR_PATCH,
              TA_ERR_CORRUPT);
    const uint16_t t = (uint16_t)(call->inputs[0].rec - m->tensors);
    TA_ENSURE(!is_stage_output_of(m, t, m->patch->n_stage_ops), TA_ERR_CORRUPT);
    for (int in = 1; in < call->n_inputs; ++in) {
        TA_ENSURE(!is_activation(&call->inputs[in]), TA_ERR_UNSUPPORTED);
    }
    return TA_OK;
}

ta_status_t ta_patch_prepare(const ta_engine_t *engine)
{
    const ta_model_t *m = engine->model;
    const ta_patch_header_t *p = m->patch;
    for (uint16_t i = 0; i < p->n_stage_ops; ++i) {
        const ta_op_kernel_t *k = ta_op_find(m->ops[i].opcode);
        TA_ENSURE(k != NULL && (k->pointwise || k->eval_region != NULL), TA_ERR_UNSUPPORTED);
        ta_op_call_t call;
        ta_engine_build_call(engine, i, &call);
        TA_ENSURE(call.n_outputs == 1 && is_activation(&call.outputs[0]), TA_ERR_CORRUPT);
        const int out_slot = region_slot(m, (int16_t)(call.outputs[0].rec - m->tensors));
        TA_ENSURE(out_slot >= 0, TA_ERR_CORRUPT);
        if (k->prepare_region != NULL) {
            TA_TRY(k->prepare_region(&call));
        }
        if (k->gather) {
            TA_TRY(check_gather(m, &call));
            continue;
        }
        /* A windowed op reads its input 0 through a region view: it must be an activation. */
        TA_ENSURE(k->pointwise || (call.n_inputs > 0 && is_activation(&call.inputs[0])), TA_ERR_CORRUPT);
        int views = 1;
        for (int in = 0; in < call.n_inputs; ++in) {
            if (!is_activation(&call.inputs[in])) {
                /* Row-by-row views keep a constant operand whole: it must broadcast per row. */
                TA_ENSURE(!k->pointwise || call.inputs[in].rec == NULL ||
                              row_broadcastable(call.inputs[in].rec, call.outputs[0].rec),
                          TA_ERR_UNSUPPORTED);
                continue;
            }
            /* Windowed ops read exactly one activation, their input 0. */
            TA_ENSURE(k->pointwise || in == 0, TA_ERR_UNSUPPORTED);
            const int slot = region_slot(m, (int16_t)(call.inputs[in].rec - m->tensors));
            TA_ENSURE(slot >= 0 && ++views <= MAX_VIEWS, TA_ERR_CORRUPT);
            if (!k->pointwise) {
                continue;
            }
            TA_ENSURE(same_pixels(call.inputs[in].rec, call.outputs[0].rec), TA_ERR_UNSUPPORTED);
            for (uint32_t tile = 0; tile < p->n_tiles; ++tile) {
                const ta_region_t out_rows = computed_rows(m, tile, out_slot);
                TA_ENSURE(out_rows.y0 >= out_rows.y1 || contains(tile_region(m, tile, slot), &out_rows),
                          TA_ERR_CORRUPT);
            }
        }
    }
    return TA_OK;
}

/* A region view: the tensor's record with region g's height and width, over its buffer,
 * which holds region `held` (g's rows are within it, same columns). */
static void make_view(const ta_engine_t *e, int slot, const ta_region_t *g, const ta_region_t *held,
                      ta_tensor_rec_t *view, ta_tensor_t *out)
{
    const ta_patch_tensor_t *pt = &e->model->patch_tensors[slot];
    *view = e->model->tensors[pt->tensor];
    view->kind = TA_TENSOR_ACTIVATION;
    view->dims[1] = g->y1 - g->y0;
    view->dims[2] = g->x1 - g->x0;
    const uint32_t pixel = (uint32_t)view->dims[3] * ta_dtype_size(view->dtype);
    const uint32_t skip = (uint32_t)(g->y0 - held->y0) * (uint32_t)(held->x1 - held->x0) * pixel;
    view->size = (uint32_t)view->dims[1] * (uint32_t)view->dims[2] * pixel;
    view->offset = pt->offset + skip;
    out->rec = view;
    out->data = e->arena + pt->offset + skip;
}

/* Copy rows [y_from, g->y1) of window g between a full [1, H, W, C] tensor (in the arena, or
 * bound outside it) and a dense region buffer holding g. */
static void copy_window(const ta_engine_t *e, int slot, const ta_region_t *g, int32_t y_from, int into_region)
{
    const ta_patch_tensor_t *pt = &e->model->patch_tensors[slot];
    const ta_tensor_rec_t *t = &e->model->tensors[pt->tensor];
    const size_t pixel = (size_t)t->dims[3] * ta_dtype_size(t->dtype);
    const size_t row = (size_t)(g->x1 - g->x0) * pixel;
    ta_tensor_t full_tensor;
    ta_engine_resolve(e, (int16_t)pt->tensor, &full_tensor); /* bound: ta_engine_invoke checked */
    uint8_t *full = (uint8_t *)full_tensor.data;
    uint8_t *region = e->arena + pt->offset;
    for (int32_t y = y_from; y < g->y1; ++y) {
        uint8_t *f = full + ((size_t)y * (size_t)t->dims[2] + (size_t)g->x0) * pixel;
        uint8_t *r = region + (size_t)(y - g->y0) * row;
        /* memmove: a corrupt plan may overlap the two; it gets garbage, never undefined behaviour. */
        if (into_region) {
            memmove(r, f, row);
        } else {
            memmove(f, r, row);
        }
    }
}

/* Stream mode: the bytes of one row of a slot's region (regions keep their columns in a strip). */
static size_t region_row(const ta_model_t *m, int slot, const ta_region_t *g)
{
    const ta_tensor_rec_t *t = &m->tensors[m->patch_tensors[slot].tensor];
    return (size_t)(g->x1 - g->x0) * (size_t)t->dims[3] * ta_dtype_size(t->dtype);
}

/* Stream mode, before an op writes its output region: the rows the previous band saved (the
 * region's rows up to the previous region's end) go back to the region's head. */
static void restore_rows(const ta_engine_t *e, uint32_t tile, int slot)
{
    const ta_model_t *m = e->model;
    if (tile % m->patch_bands == 0 || m->patch_streams[slot].capacity == 0) {
        return; /* a strip's first band keeps nothing (capacity 0 only in a corrupt plan: garbage, safely) */
    }
    const ta_region_t *g = tile_region(m, tile, slot);
    const int32_t prev_end = tile_region(m, tile - 1, slot)->y1;
    if (prev_end > g->y0) { /* the loader checked these rows fit the stream buffer */
        memmove(e->arena + m->patch_tensors[slot].offset, e->arena + m->patch_streams[slot].offset,
                (size_t)(prev_end - g->y0) * region_row(m, slot, g));
    }
}

/* Stream mode, after an op wrote its output region: save the rows the next band reads too. */
static void save_rows(const ta_engine_t *e, uint32_t tile, int slot)
{
    const ta_model_t *m = e->model;
    if ((tile + 1) % m->patch_bands == 0 || m->patch_streams[slot].capacity == 0) {
        return; /* the strip's last band */
    }
    const ta_region_t *g = tile_region(m, tile, slot);
    const int32_t next_start = tile_region(m, tile + 1, slot)->y0;
    if (next_start < g->y1) {
        const size_t row = region_row(m, slot, g);
        memmove(e->arena + m->patch_streams[slot].offset,
                e->arena + m->patch_tensors[slot].offset + (size_t)(next_start - g->y0) * row,
                (size_t)(g->y1 - next_start) * row);
    }
}

/* One row of a region view as a [1, 1, width, C] tensor: row y (full coordinates), columns
 * from x0. Four dimensions, so per-channel constants broadcast and concatenation on axis 3
 * work on it as on the full map. */
static void row_view(const ta_tensor_t *region, const ta_region_t *g, int32_t y, int32_t x0, int32_t width,
                     ta_tensor_rec_t *view, ta_tensor_t *out)
{
    const uint32_t pixel = (uint32_t)region->rec->dims[3] * ta_dtype_size(region->rec->dtype);
    *view = *region->rec;
    view->dims[1] = 1;
    view->dims[2] = width;
    view->size = (uint32_t)width * pixel;
    out->rec = view;
    out->data = (uint8_t *)region->data +
                ((size_t)(y - g->y0) * (size_t)(g->x1 - g->x0) + (size_t)(x0 - g->x0)) * pixel;
}

/* Rows of out_g (a part of the output buffer's region out_held) from the inputs' regions. */
static ta_status_t run_pointwise(const ta_op_kernel_t *k, const ta_op_call_t *call,
                                 const ta_region_t *const in_g[], const ta_region_t *out_g,
                                 const ta_region_t *out_held)
{
    const int32_t width = out_g->x1 - out_g->x0;
    for (int32_t y = out_g->y0; y < out_g->y1; ++y) {
        ta_op_call_t row = *call;
        ta_tensor_rec_t views[MAX_VIEWS];
        int n = 0;
        for (int in = 0; in < call->n_inputs; ++in) {
            if (in_g[in] != NULL) {
                row_view(&call->inputs[in], in_g[in], y, out_g->x0, width, &views[n], &row.inputs[in]);
                ++n;
            }
        }
        row_view(&call->outputs[0], out_held, y, out_g->x0, width, &views[n], &row.outputs[0]);
        TA_TRY(k->eval(&row));
    }
    return TA_OK;
}

static ta_status_t run_stage_op(ta_engine_t *e, uint16_t i, uint32_t tile)
{
    const ta_model_t *m = e->model;
    const ta_op_kernel_t *k = ta_op_find(m->ops[i].opcode);
    ta_op_call_t call;
    ta_engine_build_call(e, i, &call);
    const int out_slot = region_slot(m, (int16_t)(call.outputs[0].rec - m->tensors));
    const ta_region_t *out_held = tile_region(m, tile, out_slot);
    const ta_region_t out_g = computed_rows(m, tile, out_slot);
    const int stream = m->patch_streams != NULL;
    if (stream) {
        restore_rows(e, tile, out_slot);
        if (out_g.y0 >= out_g.y1) { /* this band needs no new rows of this op's output */
            save_rows(e, tile, out_slot);
            return TA_OK;
        }
    }
    ta_tensor_rec_t views[MAX_VIEWS];
    const ta_region_t *in_g[TA_MAX_OP_INPUTS] = {0};
    ta_region_t extent = {0, 0, 0, 0};
    int n = 0;
    if (k->gather) {
        /* Input 0 stays the full tensor; the op gets the full output's extent instead. */
        extent.y1 = (int16_t)call.outputs[0].rec->dims[1];
        extent.x1 = (int16_t)call.outputs[0].rec->dims[2];
        in_g[0] = &extent;
    }
    for (int in = k->gather ? 1 : 0; in < call.n_inputs; ++in) {
        if (is_activation(&call.inputs[in])) {
            const int slot = region_slot(m, (int16_t)(call.inputs[in].rec - m->tensors));
            in_g[in] = tile_region(m, tile, slot);
            make_view(e, slot, in_g[in], in_g[in], &views[n++], &call.inputs[in]);
        }
    }
    const uint16_t out_tensor = m->patch_tensors[out_slot].tensor;
    if (k->pointwise) {
        make_view(e, out_slot, out_held, out_held, &views[n], &call.outputs[0]);
    } else {
        make_view(e, out_slot, &out_g, out_held, &views[n], &call.outputs[0]);
    }

    if (e->hook != NULL) {
        e->hook(e->hook_ctx, i, m->ops[i].opcode, 0);
    }
    ta_status_t st = k->pointwise ? run_pointwise(k, &call, in_g, &out_g, out_held)
                                  : k->eval_region(&call, in_g[0], &out_g);
    if (e->hook != NULL) {
        e->hook(e->hook_ctx, i, m->ops[i].opcode, 1);
    }
    TA_TRY(st);
    if (stream) {
        save_rows(e, tile, out_slot);
    }
    if (m->tensors[out_tensor].kind == TA_TENSOR_ACTIVATION) {
        copy_window(e, out_slot, out_held, out_g.y0, 0); /* the stage output: into its full tensor */
    }
    return TA_OK;
}

ta_status_t ta_patch_run(ta_engine_t *engine)
{
    const ta_model_t *m = engine->model;
    const ta_patch_header_t *p = m->patch;
    for (uint32_t tile = 0; tile < p->n_tiles; ++tile) {
        for (int r = 0; r < p->n_regions; ++r) {
            const uint16_t t = m->patch_tensors[r].tensor;
            const uint8_t kind = m->tensors[t].kind;
            if (kind == TA_TENSOR_EXTERNAL ||
                (kind == TA_TENSOR_ACTIVATION && !is_stage_output_of(m, t, p->n_stage_ops))) {
                const ta_region_t *g = tile_region(m, tile, r);
                copy_window(engine, r, g, g->y0, 1); /* a stage input, whole */
            }
        }
        for (uint16_t i = 0; i < p->n_stage_ops; ++i) {
            TA_TRY(run_stage_op(engine, i, tile));
        }
    }
    return TA_OK;
}
