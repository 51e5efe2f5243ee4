/*
 * TRAIN_* commands (docs/PROTOCOL.md, "Training"): one SGD step per TRAIN_STEP through the
 * trainer (ta_train.h), EVAL, SAVE / RESET_TO_BASE through the atomic parameter store
 * (ta_param_store.h), TRAIN_INFO, PARAMS_READ; and what SELECT does for a model with a
 * TRAIN section: bind the trainer, then apply the stored parameters if they are this
 * model's (the model CRC in the record must equal the blob's).
 *
 * App arena with a training model selected:
 *
 *   cfg.arena  +----------------------------+
 *              | training-step arena (the   |  header arena_size: forward activations,
 *              | blob's plan)               |  saved ones, gradients; high-water scanned
 *              +----------------------------+  (16-byte aligned)
 *              | parameter RAM              |  ta_train_param_ram_size bytes
 *              +----------------------------+
 *              | free (restore scratch)     |  a stored image (the masters, a prefix of the
 *              +----------------------------+  parameter RAM) is read and CRC-checked here
 *                                              before it replaces the parameters
 */
#include <stddef.h>
#include <string.h>

#include "ta_app_internal.h"
#include "ta_frame.h"
#include "tinyadapt/ta_model.h"

#define APP(ctx) ((ta_app_t *)(ctx))
#define ALIGN16(x) (((x) + 15u) & ~(uint32_t)15u)

/* ---- binding and restore ------------------------------------------------ */

void ta_app_train_init(ta_app_t *app)
{
    const ta_nvm_t *nvm = app->hal->nvm;
    app->store_ready = 0;
    if (nvm != NULL && nvm->page_size != 0 &&
        ta_param_store_init(&app->train_store, nvm, 0, (nvm->size / 2u) & ~(nvm->page_size - 1u)) == TA_OK) {
        app->store_ready = 1;
    }
}

static uint32_t model_crc(const ta_app_t *app) { return app->model.header->crc32; }

/* Apply the stored image if it is this model's: read it into the free arena past the
 * parameter RAM (CRC-checked on the way), then hand it to the trainer. */
static ta_status_t restore(ta_app_t *app)
{
    TA_ENSURE(app->store_ready, TA_ERR_UNSUPPORTED);
    const uint8_t *image;
    size_t len;
    TA_TRY(ta_train_params(&app->trainer, &image, &len)); /* only its size: the masters */
    (void)image;
    uint8_t *scratch = app->param_ram + ALIGN16(app->param_ram_size);
    uint8_t *end = app->cfg.arena + app->cfg.arena_size;
    TA_ENSURE(scratch <= end && (size_t)(end - scratch) >= len, TA_ERR_ARENA);
    ta_param_record_t rec;
    ta_status_t st = ta_param_store_load(&app->train_store, TA_PARAM_TAG_TRAIN, model_crc(app), scratch,
                                         (uint32_t)len, &rec);
    if (st == TA_OK) {
        st = ta_train_load_params(&app->trainer, scratch, len);
    }
    ta_app_paint((uintptr_t)scratch, (uintptr_t)scratch + len); /* not part of any high-water */
    return st;
}

void ta_app_train_select(ta_app_t *app)
{
    app->train_ready = 0;
    app->restored = 0;
    app->restore_status = (int8_t)TA_ERR_UNSUPPORTED;
    app->train_steps = 0;
    if (app->model.train == NULL) {
        return;
    }
    const size_t need = ta_train_param_ram_size(&app->model);
    const uint32_t at = ALIGN16(app->model.header->arena_size);
    if (need == 0 || at > app->cfg.arena_size || need > app->cfg.arena_size - at) {
        app->restore_status = (int8_t)TA_ERR_ARENA;
        return;
    }
    app->param_ram = app->cfg.arena + at;
    app->param_ram_size = (uint32_t)need;
    const ta_status_t st = ta_train_init(&app->trainer, &app->engine, app->param_ram, need);
    if (st != TA_OK) {
        app->restore_status = (int8_t)st;
        return;
    }
    app->train_ready = 1;
    const ta_status_t rs = restore(app);
    app->restore_status = (int8_t)rs;
    if (rs == TA_OK) {
        app->restored = 1;
    } else if (rs != TA_ERR_STATE && rs != TA_ERR_UNSUPPORTED) {
        /* A failed restore may have half-replaced the parameters: back to the base. */
        if (ta_train_reset(&app->trainer) != TA_OK) {
            app->train_ready = 0;
        }
    }
}

/* Highest word of the training-step arena that lost the paint since SELECT. */
static uint32_t step_arena_used(const ta_app_t *app)
{
    const uint32_t *base = (const uint32_t *)(const void *)app->cfg.arena;
    uint32_t words = app->model.header->arena_size / 4u;
    while (words > 0 && base[words - 1u] == TA_APP_PAINT_WORD) {
        --words;
    }
    return words * 4u;
}

/* ---- commands ------------------------------------------------------------- */

/* Reads the counter after every op of a step, so its 64-bit extension never misses a wrap
 * of the 32-bit hardware counter (QEMU's timer wraps after ~1.34 G instructions; a full
 * backpropagation step can take longer). Costs a few instructions per op. */
static void tick_hook(void *ctx, uint16_t op_index, uint16_t opcode, int after)
{
    (void)op_index;
    (void)opcode;
    if (after) {
        (void)ta_app_counter((ta_app_t *)ctx);
    }
}

/* Run a training step or an eval with the tick hook (or, `profile`, the per-op profile hook,
 * which reads the counter around every op too: forward, loss and backward ops by index), timed. */
static ta_status_t timed_train(ta_app_t *app, int step, uint8_t loss, int32_t label, float lr, int profile,
                               ta_train_result_t *r, uint64_t *count)
{
    app->n_profiled = 0;
    if (profile) {
        app->n_recorded = 0;
        memset(app->profile, 0, sizeof(app->profile));
    }
    ta_engine_set_hook(&app->engine, profile ? ta_app_profile_hook : tick_hook, app);
    const uint64_t t0 = ta_app_counter(app);
    const ta_status_t st = step ? ta_train_step(&app->trainer, (ta_loss_kind_t)loss, label, lr, r)
                                : ta_train_eval(&app->trainer, label, r);
    const uint64_t t1 = ta_app_counter(app);
    ta_engine_set_hook(&app->engine, NULL, NULL);
    *count = ta_app_counter_units(app, t1 - t0);
    if (st == TA_OK && profile) {
        app->n_profiled = app->n_recorded;
    }
    return st;
}

/* The optional sample at the end of a TRAIN_STEP / EVAL request: input 0, whole, or nothing
 * (the input was written with INPUT_WRITE). */
static ta_status_t take_sample(ta_app_t *app, const uint8_t *data, uint32_t len)
{
    if (len == 0) {
        return TA_OK;
    }
    ta_tensor_t in;
    TA_TRY(ta_engine_input(&app->engine, 0, &in));
    TA_ENSURE(len == in.rec->size, TA_ERR_ARG);
    memcpy(in.data, data, len);
    return TA_OK;
}

static ta_status_t cmd_train_step(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len >= 12, TA_ERR_ARG);
    TA_ENSURE(app->slot >= 0 && app->train_ready, TA_ERR_STATE);
    const uint8_t loss = req->payload[0];
    const uint8_t flags = req->payload[1];
    TA_ENSURE(loss == TA_LOSS_CROSS_ENTROPY || loss == TA_LOSS_ENTROPY, TA_ERR_ARG);
    TA_ENSURE((flags & ~TA_TRAIN_STEP_PROFILE) == 0, TA_ERR_ARG);
    TA_TRY(take_sample(app, req->payload + 12, (uint32_t)req->len - 12u));
    ta_train_result_t r;
    uint64_t count;
    TA_TRY(timed_train(app, 1, loss, (int32_t)ta_rd32(req->payload + 4), ta_rd_f32(req->payload + 8),
                       (flags & TA_TRAIN_STEP_PROFILE) != 0, &r, &count));
    app->train_steps++;
    ta_wr_f32(resp->payload, r.loss);
    ta_wr32(resp->payload + 4, (uint32_t)r.prediction);
    ta_wr32(resp->payload + 8, r.updated_params);
    ta_wr64(resp->payload + 12, count);
    resp->len = 20;
    return TA_OK;
}

static ta_status_t cmd_eval(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len >= 4, TA_ERR_ARG);
    TA_ENSURE(app->slot >= 0 && app->train_ready, TA_ERR_STATE);
    TA_TRY(take_sample(app, req->payload + 4, (uint32_t)req->len - 4u));
    ta_train_result_t r;
    uint64_t count;
    TA_TRY(timed_train(app, 0, 0, (int32_t)ta_rd32(req->payload), 0.0f, 0, &r, &count));
    ta_wr_f32(resp->payload, r.loss);
    ta_wr32(resp->payload + 4, (uint32_t)r.prediction);
    ta_wr64(resp->payload + 8, count);
    resp->len = 16;
    return TA_OK;
}

static ta_status_t cmd_save(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    TA_ENSURE(app->slot >= 0 && app->train_ready, TA_ERR_STATE);
    TA_ENSURE(app->store_ready, TA_ERR_UNSUPPORTED);
    const uint8_t *data;
    size_t len;
    TA_TRY(ta_train_params(&app->trainer, &data, &len));
    TA_ENSURE(len <= ta_param_store_capacity(&app->train_store), TA_ERR_OVERFLOW);
    return ta_app_store_save(app, &app->train_store, TA_PARAM_TAG_TRAIN, model_crc(app), data, (uint32_t)len, resp);
}

static ta_status_t cmd_reset_to_base(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 1, TA_ERR_ARG);
    TA_ENSURE((req->payload[0] & ~TA_RESET_PERSIST) == 0, TA_ERR_ARG);
    TA_ENSURE(app->slot >= 0 && app->train_ready, TA_ERR_STATE);
    const int persist = (req->payload[0] & TA_RESET_PERSIST) != 0;
    TA_ENSURE(!persist || app->store_ready, TA_ERR_UNSUPPORTED);
    TA_TRY(ta_train_reset(&app->trainer));
    app->restored = 0;
    uint32_t revision = 0;
    if (persist) {
        ta_param_record_t rec;
        TA_TRY(ta_param_store_save(&app->train_store, TA_PARAM_TAG_TRAIN, model_crc(app), NULL, 0, &rec));
        revision = rec.revision;
    }
    ta_wr32(resp->payload, revision);
    resp->len = 4;
    return TA_OK;
}

static ta_status_t cmd_train_info(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    ta_param_record_t rec;
    memset(&rec, 0, sizeof(rec));
    const int stored = app->store_ready && ta_param_store_find(&app->train_store, &rec) == TA_OK;
    const int ready = app->slot >= 0 && app->train_ready;
    const uint32_t flags = (ready ? TA_TRAIN_INFO_READY : 0u) | (app->store_ready ? TA_TRAIN_INFO_NVM : 0u) |
                           (ready && app->restored ? TA_TRAIN_INFO_RESTORED : 0u) | (stored ? TA_TRAIN_INFO_STORED : 0u);
    const uint32_t fields[13] = {
        flags,
        ready ? app->param_ram_size : 0u,
        ready ? (uint32_t)app->trainer.n_slots : 0u,
        rec.revision,
        rec.len,
        rec.model_crc,
        app->slot >= 0 ? model_crc(app) : 0u,
        (uint32_t)(int32_t)app->restore_status,
        ready ? app->train_steps : 0u,
        ready ? step_arena_used(app) : 0u,
        app->slot >= 0 ? app->model.header->arena_size : 0u,
        app->store_ready ? ta_param_store_capacity(&app->train_store) : 0u,
        ready ? app->trainer.image_size : 0u,
    };
    for (int i = 0; i < 13; ++i) {
        ta_wr32(resp->payload + 4 * i, fields[i]);
    }
    resp->len = sizeof(fields);
    return TA_OK;
}

static ta_status_t cmd_params_read(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 6, TA_ERR_ARG);
    TA_ENSURE(app->slot >= 0 && app->train_ready, TA_ERR_STATE);
    const uint8_t *data;
    size_t len;
    TA_TRY(ta_train_params(&app->trainer, &data, &len));
    const uint32_t offset = ta_rd32(req->payload);
    const uint16_t n = ta_rd16(req->payload + 4);
    TA_ENSURE(n <= resp->cap, TA_ERR_OVERFLOW);
    TA_ENSURE(offset <= len && n <= len - offset, TA_ERR_OVERFLOW);
    memcpy(resp->payload, data + offset, n);
    resp->len = n;
    return TA_OK;
}

/* The per-op profile of the last profiled TRAIN_STEP with each op's update share. */
static ta_status_t cmd_train_profile_read(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    return ta_app_profile_read(APP(ctx), req, resp, 1);
}

static const ta_command_t k_train[] = {
    {TA_CMD_TRAIN_STEP, cmd_train_step},
    {TA_CMD_EVAL, cmd_eval},
    {TA_CMD_SAVE, cmd_save},
    {TA_CMD_RESET_TO_BASE, cmd_reset_to_base},
    {TA_CMD_TRAIN_INFO, cmd_train_info},
    {TA_CMD_PARAMS_READ, cmd_params_read},
    {TA_CMD_TRAIN_PROFILE_READ, cmd_train_profile_read},
};

const ta_command_set_t ta_train_commands = {"train", k_train, (uint16_t)(sizeof(k_train) / sizeof(k_train[0]))};
