/*
 * The engine: runs a loaded model in one caller-provided arena.
 *
 * Call sequence:
 *   ta_model_t model;   ta_model_load(&model, blob, blob_size);
 *   ta_engine_t engine; ta_engine_init(&engine, &model, arena, arena_size);
 *   ta_engine_input(&engine, 0, &t);   write the input into t.data (or, for an input kept
 *                                      outside the arena, ta_engine_bind_input once)
 *   ta_engine_invoke(&engine);
 *   ta_engine_output(&engine, 0, &t);  read the output from t.data
 *
 * Memory: the engine allocates nothing. Arena layout (offsets chosen by the
 * host planner and stored in the blob):
 *
 *   arena +-----------------------------------------------+ arena_size
 *         | activations and scratch, reused over time:     |
 *         | tensors whose lifetimes do not overlap share   |
 *         | bytes                                          |
 *         +-----------------------------------------------+
 *
 * `ta_engine_t` holds no pointers into the stack; it can live anywhere the
 * caller likes, and several engines can run different models side by side.
 */
#ifndef TA_ENGINE_H
#define TA_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/ta_model.h"
#include "tinyadapt/ta_op.h"
#include "tinyadapt/ta_status.h"

#define TA_ENGINE_VERSION_MAJOR 0
#define TA_ENGINE_VERSION_MINOR 1
#define TA_ARENA_ALIGN 16u /* arena base alignment the planner assumes */

/* Called before (`after` = 0) and after (`after` = 1) each op, e.g. to time it. A training
 * step's backward op that updates parameters also calls it with `after` = TA_HOOK_UPDATE
 * when its input gradient is done and its parameter update starts. */
#define TA_HOOK_UPDATE 2
typedef void (*ta_op_hook_fn)(void *ctx, uint16_t op_index, uint16_t opcode, int after);

/* A constant tensor whose bytes the engine reads from RAM instead of the blob: a parameter
 * that training updates (ta_train.h installs them). */
typedef struct {
    uint16_t tensor;
    void *data; /* the tensor's size in bytes */
} ta_engine_overlay_t;

typedef struct {
    const ta_model_t *model;
    uint8_t *arena;
    uint32_t arena_size;
    ta_op_hook_fn hook;
    void *hook_ctx;
    void *external[TA_MAX_EXTERNAL_INPUTS]; /* storage bound to EXTERNAL model inputs */
    const ta_engine_overlay_t *overlays; /* sorted by tensor; set by ta_train_init */
    uint16_t n_overlays;
    const ta_op_rows_t *rows; /* filter slices in RAM, sorted by op; set by ta_train_init */
    uint16_t n_rows;
    uint8_t ready;
} ta_engine_t;

/**
 * Bind a loaded model to an arena and run every op's prepare.
 * @return TA_OK, TA_ERR_ARG, TA_ERR_ARENA (smaller than the plan's arena or
 *         not TA_ARENA_ALIGN-aligned), TA_ERR_UNSUPPORTED (op missing from
 *         this build), or the first op's prepare error
 */
TA_CHECK_RESULT ta_status_t ta_engine_init(ta_engine_t *engine, const ta_model_t *model,
                                           void *arena, size_t arena_size);

/**
 * Give model input `i`, of kind TA_TENSOR_EXTERNAL (it has no room in the arena), its storage:
 * `size` bytes (the tensor's size) that stay valid while the engine runs, e.g. a camera frame
 * in external memory. The engine reads it one patch window at a time and never writes it.
 * @return TA_OK, TA_ERR_ARG (no such input, or NULL/size mismatch), TA_ERR_STATE (the input
 *         lives in the arena: write it through ta_engine_input instead)
 */
TA_CHECK_RESULT ta_status_t ta_engine_bind_input(ta_engine_t *engine, uint16_t i, void *data, size_t size);
/** Run ops [first, end) of the model's forward ops (model->n_forward_ops) in order;
 *  ta_engine_invoke runs them all (TA_ERR_STATE while an
 *  external input is unbound). */
TA_CHECK_RESULT ta_status_t ta_engine_invoke_ops(ta_engine_t *engine, uint16_t first, uint16_t end);
TA_CHECK_RESULT ta_status_t ta_engine_invoke(ta_engine_t *engine);

/** Resolve tensor `index` of the model (TA_ERR_ARG when out of range). */
TA_CHECK_RESULT ta_status_t ta_engine_tensor(const ta_engine_t *engine, uint16_t index, ta_tensor_t *out);
TA_CHECK_RESULT ta_status_t ta_engine_input(const ta_engine_t *engine, uint16_t i, ta_tensor_t *out);
TA_CHECK_RESULT ta_status_t ta_engine_output(const ta_engine_t *engine, uint16_t i, ta_tensor_t *out);

/** Read the constants listed in `overlays` (sorted by tensor, n of them) from RAM instead of
 *  the blob (NULL, 0 to remove). The RAM changes while the engine runs, so an overlaid tensor
 *  may only be a filter or bias of a convolution, depthwise or fully connected op (forward or
 *  backward): every other input is checked once by prepare and trusted after.
 *  @return TA_ERR_CORRUPT when the blob uses an overlaid tensor anywhere else */
TA_CHECK_RESULT ta_status_t ta_engine_set_overlays(ta_engine_t *engine, const ta_engine_overlay_t *overlays,
                                                   uint16_t n);

/** Install a per-op hook (NULL to remove). */
void ta_engine_set_hook(ta_engine_t *engine, ta_op_hook_fn hook, void *ctx);

#endif /* TA_ENGINE_H */
