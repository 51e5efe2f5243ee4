/*
 * Shared by the sanitizer harnesses (ta_fuzz_blob.c, ta_blob_check.c): load, prepare and run
 * one blob with every buffer heap-allocated at exactly the size it should be, so ASan sees
 * a read one byte past the blob, a write one byte past the plan's arena, or a read past an
 * external input. Static buffers of a fixed large size would hide all three. Only these
 * host tools allocate; the engine stays heap-free.
 */
#ifndef TA_RUN_EXACT_H
#define TA_RUN_EXACT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinyadapt/ta_engine.h"

/* Largest arena / external input a harness allocates: beyond it a blob is refused as
 * TA_ERR_ARENA rather than tying up the fuzzer's memory. */
#ifndef TA_RUN_EXACT_MAX_ALLOC
#define TA_RUN_EXACT_MAX_ALLOC (8u << 20)
#endif

/* 16-byte aligned block of exactly `size` bytes (ASan tracks the requested size, not the
 * alignment); NULL when out of memory. Size 0 gets a 1-byte block: nothing may touch it. */
static void *ta_exact_alloc(size_t size)
{
    void *p = NULL;
    return posix_memalign(&p, 16, size > 0 ? size : 1) == 0 ? p : NULL;
}

/* Called after the invoke with the engine still bound (e.g. to train on the model). */
typedef void (*ta_run_exact_then_fn)(ta_engine_t *engine, const ta_model_t *model);

/* `fix_crc`: rewrite the header's CRC first (fuzzing: mutations then get past the checksum
 * to the structural checks); `then` may be NULL. Returns the first failing status, or the
 * invoke's. */
static ta_status_t ta_run_exact(const uint8_t *data, size_t size, int fix_crc, ta_run_exact_then_fn then)
{
    if (size == 0) {
        return TA_ERR_TRUNCATED;
    }
    uint8_t *blob = (uint8_t *)ta_exact_alloc(size);
    uint8_t *arena = NULL;
    void *external[TA_MAX_EXTERNAL_INPUTS] = {NULL};
    ta_status_t st = TA_ERR_ARENA;
    if (blob == NULL) {
        return st;
    }
    memcpy(blob, data, size);
    if (fix_crc && size >= sizeof(ta_model_header_t)) {
        uint32_t total;
        memcpy(&total, blob + 8, sizeof(total));
        if (total >= TA_MODEL_CRC_START && total <= size) {
            const uint32_t crc = ta_crc32(0, blob + TA_MODEL_CRC_START, total - TA_MODEL_CRC_START);
            memcpy(blob + 12, &crc, sizeof(crc));
        }
    }
    ta_model_t model;
    ta_engine_t engine;
    st = ta_model_load(&model, blob, size);
    if (st != TA_OK) {
        goto done;
    }
    const uint32_t arena_size = model.header->arena_size;
    st = TA_ERR_ARENA;
    if (arena_size > TA_RUN_EXACT_MAX_ALLOC || (arena = (uint8_t *)ta_exact_alloc(arena_size)) == NULL) {
        goto done;
    }
    st = ta_engine_init(&engine, &model, arena, arena_size);
    if (st != TA_OK) {
        goto done;
    }
    memset(arena, 0, arena_size);
    /* Inputs kept outside the arena get their own block of exactly the tensor's size. */
    for (uint16_t i = 0; i < model.header->n_inputs && i < TA_MAX_EXTERNAL_INPUTS; ++i) {
        const ta_tensor_rec_t *t = &model.tensors[model.inputs[i]];
        if (t->kind != TA_TENSOR_EXTERNAL) {
            continue;
        }
        st = TA_ERR_ARENA;
        if (t->size > TA_RUN_EXACT_MAX_ALLOC || (external[i] = ta_exact_alloc(t->size)) == NULL) {
            goto done;
        }
        memset(external[i], 0x5A, t->size);
        st = ta_engine_bind_input(&engine, i, external[i], t->size);
        if (st != TA_OK) {
            goto done;
        }
    }
    st = ta_engine_invoke(&engine);
    if (then != NULL) {
        then(&engine, &model);
    }
done:
    for (int i = 0; i < TA_MAX_EXTERNAL_INPUTS; ++i) {
        free(external[i]);
    }
    free(arena);
    free(blob);
    return st;
}

#endif /* TA_RUN_EXACT_H */
