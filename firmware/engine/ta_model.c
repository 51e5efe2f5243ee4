#include "tinyadapt/ta_model.h"

#include <string.h>

uint32_t ta_dtype_size(uint8_t dtype)
{
    switch (dtype) {
    case TA_DTYPE_INT8: return 1;
    case TA_DTYPE_INT16: return 2;
    case TA_DTYPE_INT32: return 4;
    case TA_DTYPE_FLOAT32: return 4;
    case TA_DTYPE_UINT8: return 1;
    default: return 0;
    }
}

/* True when [offset, offset + count * item) lies inside [0, limit). 64-bit math cannot overflow. */
static int in_bounds(uint32_t offset, uint32_t count, uint32_t item, uint32_t limit)
{
    return (uint64_t)offset + (uint64_t)count * item <= (uint64_t)limit;
}

static ta_status_t check_header(const ta_model_header_t *h, size_t size)
{
    TA_ENSURE(h->magic == TA_MODEL_MAGIC, TA_ERR_MAGIC);
    TA_ENSURE(h->version == TA_MODEL_VERSION, TA_ERR_VERSION);
    TA_ENSURE(h->header_size == sizeof(ta_model_header_t), TA_ERR_CORRUPT);
    TA_ENSURE(h->total_size >= sizeof(ta_model_header_t) && h->total_size <= size, TA_ERR_TRUNCATED);
    TA_ENSURE((h->total_size & 3u) == 0, TA_ERR_CORRUPT);
    TA_ENSURE((h->flags & ~TA_MODEL_KNOWN_FLAGS) == 0, TA_ERR_UNSUPPORTED);
    return TA_OK;
}

static ta_status_t check_tables(const ta_model_header_t *h)
{
    const uint32_t total = h->total_size;
    const uint32_t first = sizeof(ta_model_header_t);
    TA_ENSURE(h->tensors_offset >= first && h->ops_offset >= first && h->io_offset >= first &&
                  h->data_offset >= first,
              TA_ERR_CORRUPT);
    TA_ENSURE(((h->tensors_offset | h->ops_offset | h->data_offset) & 3u) == 0 &&
                  (h->io_offset & 1u) == 0,
              TA_ERR_CORRUPT);
    TA_ENSURE(in_bounds(h->tensors_offset, h->n_tensors, sizeof(ta_tensor_rec_t), total), TA_ERR_TRUNCATED);
    TA_ENSURE(in_bounds(h->ops_offset, h->n_ops, sizeof(ta_op_rec_t), total), TA_ERR_TRUNCATED);
    TA_ENSURE(in_bounds(h->io_offset, (uint32_t)h->n_inputs + h->n_outputs, 2, total), TA_ERR_TRUNCATED);
    TA_ENSURE(in_bounds(h->data_offset, h->data_size, 1, total), TA_ERR_TRUNCATED);
    TA_ENSURE(h->n_tensors > 0 && h->n_inputs > 0 && h->n_outputs > 0, TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t check_tensor(const ta_tensor_rec_t *t, const ta_model_header_t *h)
{
    const uint32_t item = ta_dtype_size(t->dtype);
    TA_ENSURE(item != 0, TA_ERR_UNSUPPORTED);
    TA_ENSURE(t->kind <= TA_TENSOR_EXTERNAL, TA_ERR_CORRUPT);
    TA_ENSURE(t->ndim <= TA_MAX_DIMS, TA_ERR_CORRUPT);
    /* Both kinds exist only for a patch stage, which checks who uses them. */
    TA_ENSURE((t->kind != TA_TENSOR_PATCH && t->kind != TA_TENSOR_EXTERNAL) || (h->flags & TA_MODEL_FLAG_PATCH),
              TA_ERR_CORRUPT);
    TA_ENSURE(t->kind != TA_TENSOR_EXTERNAL || t->offset == 0, TA_ERR_CORRUPT);
    uint64_t elems = 1;
    for (int i = 0; i < TA_MAX_DIMS; ++i) {
        if (i < t->ndim) {
            TA_ENSURE(t->dims[i] > 0, TA_ERR_CORRUPT);
            elems *= (uint64_t)t->dims[i];
            /* Kernels index with int32: keep every tensor below 2^31 bytes. */
            TA_ENSURE(elems * item <= 0x7FFFFFFFu, TA_ERR_OVERFLOW);
        } else {
            TA_ENSURE(t->dims[i] == 0, TA_ERR_CORRUPT);
        }
    }
    TA_ENSURE(elems * item == t->size, TA_ERR_CORRUPT);
    TA_ENSURE((t->offset & 3u) == 0, TA_ERR_CORRUPT);
    if (t->kind == TA_TENSOR_CONST) {
        TA_ENSURE(in_bounds(t->offset, t->size, 1, h->data_size), TA_ERR_TRUNCATED);
    } else if (t->kind == TA_TENSOR_ACTIVATION) {
        TA_ENSURE(in_bounds(t->offset, t->size, 1, h->arena_size), TA_ERR_CORRUPT);
    } /* a patch tensor's region buffer is checked with the patch plan */
    return TA_OK;
}

static ta_status_t check_op(const ta_op_rec_t *op, const ta_model_t *m, int backward)
{
    const ta_model_header_t *h = m->header;
    if (backward) {
        TA_ENSURE(op->opcode >= TA_OP_BACKWARD_FIRST_ && op->opcode < TA_OP_BACKWARD_END_, TA_ERR_CORRUPT);
    } else {
        TA_ENSURE(op->opcode > 0 && op->opcode < TA_OP_COUNT_, TA_ERR_UNSUPPORTED);
    }
    TA_ENSURE(op->n_inputs <= TA_MAX_OP_INPUTS, TA_ERR_CORRUPT);
    TA_ENSURE(op->n_outputs >= 1 && op->n_outputs <= TA_MAX_OP_OUTPUTS, TA_ERR_CORRUPT);
    const uint32_t n_io = (uint32_t)op->n_inputs + op->n_outputs;
    TA_ENSURE((op->io_offset & 1u) == 0 && in_bounds(op->io_offset, n_io, 2, h->data_size), TA_ERR_TRUNCATED);
    TA_ENSURE((op->params_offset & 3u) == 0 && in_bounds(op->params_offset, op->params_size, 1, h->data_size),
              TA_ERR_TRUNCATED);
    if (op->scratch_size > 0) {
        TA_ENSURE((op->scratch_offset & 3u) == 0 &&
                      in_bounds(op->scratch_offset, op->scratch_size, 1, h->arena_size),
                  TA_ERR_CORRUPT);
    }
    const int16_t *io = (const int16_t *)(const void *)(m->data + op->io_offset);
    for (uint32_t i = 0; i < n_io; ++i) {
        const int is_output = i >= op->n_inputs;
        /* A backward op may skip an output: the gradient of an input nothing needs. */
        if (io[i] == TA_NO_TENSOR && (!is_output || backward)) {
            continue;
        }
        TA_ENSURE(io[i] >= 0 && io[i] < h->n_tensors, TA_ERR_CORRUPT);
        /* Constants are read in place from flash: nothing may write them. */
        TA_ENSURE(!is_output || m->tensors[io[i]].kind != TA_TENSOR_CONST, TA_ERR_CORRUPT);
    }
    return TA_OK;
}

/* The patch plan: every region buffer inside the arena and big enough for every tile's
 * region, every region inside its tensor, and patch tensors used by stage ops only. */
static ta_status_t check_patch(ta_model_t *m)
{
    const ta_model_header_t *h = m->header;
    TA_ENSURE((h->patch_offset & 3u) == 0 && in_bounds(h->patch_offset, 1, sizeof(ta_patch_header_t), h->data_size),
              TA_ERR_TRUNCATED);
    const ta_patch_header_t *p = (const ta_patch_header_t *)(const void *)(m->data + h->patch_offset);
    TA_ENSURE(p->n_stage_ops >= 1 && p->n_stage_ops <= h->n_ops && p->n_tiles >= 1 && p->n_regions >= 1,
              TA_ERR_CORRUPT);
    TA_ENSURE(p->mode == TA_PATCH_MODE_TILES || p->mode == TA_PATCH_MODE_STREAM, TA_ERR_CORRUPT);
    TA_ENSURE((p->tensors_offset & 3u) == 0 &&
                  in_bounds(p->tensors_offset, p->n_regions, sizeof(ta_patch_tensor_t), h->data_size),
              TA_ERR_TRUNCATED);
    TA_ENSURE((p->regions_offset & 1u) == 0 &&
                  in_bounds(p->regions_offset, (uint32_t)p->n_tiles * p->n_regions, sizeof(ta_region_t),
                            h->data_size),
              TA_ERR_TRUNCATED);
    const ta_patch_tensor_t *pt = (const ta_patch_tensor_t *)(const void *)(m->data + p->tensors_offset);
    const ta_region_t *regions = (const ta_region_t *)(const void *)(m->data + p->regions_offset);

    const ta_stream_buffer_t *streams = NULL;
    uint32_t bands = 0;
    if (p->mode == TA_PATCH_MODE_STREAM) {
        const uint32_t bands_offset = p->regions_offset + (uint32_t)p->n_tiles * p->n_regions * sizeof(ta_region_t);
        TA_ENSURE((bands_offset & 3u) == 0 && in_bounds(bands_offset, 1, sizeof(uint32_t), h->data_size) &&
                      in_bounds(bands_offset + 4u, p->n_regions, sizeof(ta_stream_buffer_t), h->data_size),
                  TA_ERR_TRUNCATED);
        bands = *(const uint32_t *)(const void *)(m->data + bands_offset);
        TA_ENSURE(bands >= 1 && p->n_tiles % bands == 0, TA_ERR_CORRUPT);
        streams = (const ta_stream_buffer_t *)(const void *)(m->data + bands_offset + 4u);
    }
    for (uint32_t r = 0; r < p->n_regions; ++r) {
        TA_ENSURE(pt[r].tensor < h->n_tensors, TA_ERR_CORRUPT);
        TA_ENSURE(streams == NULL || ((streams[r].offset & 3u) == 0 &&
                                      in_bounds(streams[r].offset, streams[r].capacity, 1, h->arena_size)),
                  TA_ERR_CORRUPT);
        const ta_tensor_rec_t *t = &m->tensors[pt[r].tensor];
        TA_ENSURE(t->kind != TA_TENSOR_CONST && t->ndim == 4 && t->dims[0] == 1, TA_ERR_CORRUPT);
        TA_ENSURE((pt[r].offset & 3u) == 0 && in_bounds(pt[r].offset, pt[r].capacity, 1, h->arena_size),
                  TA_ERR_CORRUPT);
        for (uint32_t q = 0; q < r; ++q) {
            TA_ENSURE(pt[q].tensor != pt[r].tensor, TA_ERR_CORRUPT);
        }
        const uint32_t item = ta_dtype_size(t->dtype) * (uint32_t)t->dims[3];
        for (uint32_t k = 0; k < p->n_tiles; ++k) {
            const ta_region_t *g = &regions[k * p->n_regions + r];
            TA_ENSURE(g->y0 >= 0 && g->y0 < g->y1 && g->y1 <= t->dims[1] && g->x0 >= 0 && g->x0 < g->x1 &&
                          g->x1 <= t->dims[2],
                      TA_ERR_CORRUPT);
            TA_ENSURE((uint64_t)(g->y1 - g->y0) * (uint64_t)(g->x1 - g->x0) * item <= pt[r].capacity,
                      TA_ERR_CORRUPT);
            /* A stream keeps rows from one band to the next of a strip: same columns, rows
             * moving forward only, and the rows kept fit the stream buffer. */
            if (streams != NULL && k % bands != 0) {
                const ta_region_t *prev = g - p->n_regions;
                TA_ENSURE(g->x0 == prev->x0 && g->x1 == prev->x1 && g->y0 >= prev->y0 && g->y1 >= prev->y1,
                          TA_ERR_CORRUPT);
                /* (capacity 0: a stage input, copied in whole; the executor keeps no rows) */
                TA_ENSURE(streams[r].capacity == 0 || g->y0 >= prev->y1 ||
                              (uint64_t)(prev->y1 - g->y0) * (uint64_t)(g->x1 - g->x0) * item <= streams[r].capacity,
                          TA_ERR_CORRUPT);
            }
        }
    }
    /* Every patch tensor has a region, and only stage ops touch patch or external tensors. An
     * external tensor is a model input among the first TA_MAX_EXTERNAL_INPUTS, and never an
     * output; a stage op reads it through a region, or in full if it gathers (ta_patch_prepare). */
    for (uint32_t i = 0; i < h->n_tensors; ++i) {
        const uint8_t kind = m->tensors[i].kind;
        if (kind != TA_TENSOR_PATCH && kind != TA_TENSOR_EXTERNAL) {
            continue;
        }
        if (kind == TA_TENSOR_EXTERNAL) {
            int input = 0;
            for (uint32_t k = 0; k < h->n_inputs && k < TA_MAX_EXTERNAL_INPUTS; ++k) {
                input |= m->inputs[k] == i;
            }
            TA_ENSURE(input, TA_ERR_CORRUPT);
            for (uint32_t k = 0; k < h->n_outputs; ++k) {
                TA_ENSURE(m->outputs[k] != i, TA_ERR_CORRUPT);
            }
        }
        int found = kind == TA_TENSOR_EXTERNAL;
        for (uint32_t r = 0; r < p->n_regions; ++r) {
            found |= pt[r].tensor == i;
        }
        TA_ENSURE(found, TA_ERR_CORRUPT);
    }
    for (uint32_t i = p->n_stage_ops; i < h->n_ops; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        const int16_t *io = (const int16_t *)(const void *)(m->data + op->io_offset);
        for (uint32_t k = 0; k < (uint32_t)op->n_inputs + op->n_outputs; ++k) {
            TA_ENSURE(io[k] < 0 || (m->tensors[io[k]].kind != TA_TENSOR_PATCH &&
                                    m->tensors[io[k]].kind != TA_TENSOR_EXTERNAL),
                      TA_ERR_CORRUPT);
        }
    }
    /* Stage ops only read external tensors. */
    for (uint32_t i = 0; i < p->n_stage_ops; ++i) {
        const ta_op_rec_t *op = &m->ops[i];
        const int16_t *io = (const int16_t *)(const void *)(m->data + op->io_offset);
        for (uint32_t k = op->n_inputs; k < (uint32_t)op->n_inputs + op->n_outputs; ++k) {
            TA_ENSURE(m->tensors[io[k]].kind != TA_TENSOR_EXTERNAL, TA_ERR_CORRUPT);
        }
    }
    m->patch = p;
    m->patch_tensors = pt;
    m->patch_regions = regions;
    m->patch_streams = streams;
    m->patch_bands = bands;
    return TA_OK;
}

/* The TRAIN section: where the forward ops end. Backward ops are checked by check_op. */
static ta_status_t check_train(ta_model_t *m)
{
    const ta_model_header_t *h = m->header;
    /* With a patch stage too, check_patch keeps backward ops (past the stage) off its
     * per-tile tensors: they only read full-size maps after the stage. */
    TA_ENSURE((h->train_offset & 3u) == 0 && in_bounds(h->train_offset, 1, sizeof(ta_train_header_t), h->data_size),
              TA_ERR_TRUNCATED);
    const ta_train_header_t *t = (const ta_train_header_t *)(const void *)(m->data + h->train_offset);
    TA_ENSURE(t->n_forward_ops >= 1 && t->n_forward_ops < h->n_ops && t->flags == 0, TA_ERR_CORRUPT);
    m->train = t;
    m->n_forward_ops = t->n_forward_ops;
    return TA_OK;
}

ta_status_t ta_model_load(ta_model_t *model, const void *blob, size_t size)
{
    TA_ENSURE(model != NULL, TA_ERR_ARG);
    memset(model, 0, sizeof(*model));
    TA_ENSURE(blob != NULL && ((uintptr_t)blob & 3u) == 0, TA_ERR_ARG);
    TA_ENSURE(size >= sizeof(ta_model_header_t), TA_ERR_TRUNCATED);

    const uint8_t *bytes = (const uint8_t *)blob;
    const ta_model_header_t *h = (const ta_model_header_t *)blob;
    TA_TRY(check_header(h, size));
    TA_ENSURE(ta_crc32(0, bytes + TA_MODEL_CRC_START, h->total_size - TA_MODEL_CRC_START) == h->crc32,
              TA_ERR_CRC);
    TA_TRY(check_tables(h));

    ta_model_t m;
    m.blob = bytes;
    m.size = h->total_size;
    m.header = h;
    m.tensors = (const ta_tensor_rec_t *)(const void *)(bytes + h->tensors_offset);
    m.ops = (const ta_op_rec_t *)(const void *)(bytes + h->ops_offset);
    m.inputs = (const uint16_t *)(const void *)(bytes + h->io_offset);
    m.outputs = m.inputs + h->n_inputs;
    m.data = bytes + h->data_offset;

    for (uint32_t i = 0; i < h->n_tensors; ++i) {
        TA_TRY(check_tensor(&m.tensors[i], h));
    }
    for (uint32_t i = 0; i < (uint32_t)h->n_inputs + h->n_outputs; ++i) {
        TA_ENSURE(m.inputs[i] < h->n_tensors, TA_ERR_CORRUPT);
        const uint8_t kind = m.tensors[m.inputs[i]].kind;
        TA_ENSURE(kind == TA_TENSOR_ACTIVATION || (kind == TA_TENSOR_EXTERNAL && i < h->n_inputs), TA_ERR_CORRUPT);
    }
    m.patch = NULL;
    m.patch_tensors = NULL;
    m.patch_regions = NULL;
    m.patch_streams = NULL;
    m.patch_bands = 0;
    m.train = NULL;
    m.n_forward_ops = h->n_ops;
    if (h->flags & TA_MODEL_FLAG_TRAIN) {
        TA_TRY(check_train(&m));
    }
    for (uint32_t i = 0; i < h->n_ops; ++i) {
        TA_TRY(check_op(&m.ops[i], &m, i >= m.n_forward_ops));
    }
    if (h->flags & TA_MODEL_FLAG_PATCH) {
        TA_TRY(check_patch(&m));
        /* The stage is part of the forward pass. */
        TA_ENSURE(m.patch->n_stage_ops <= m.n_forward_ops, TA_ERR_CORRUPT);
    }
    *model = m;
    return TA_OK;
}
