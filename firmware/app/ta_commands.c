/*
 * Handlers for the protocol version 1 commands (docs/PROTOCOL.md, "Commands").
 * Each one checks its request payload (untrusted), does one job and writes
 * its response payload; the server turns the returned status into the
 * response's status byte and drops the payload on failure.
 */
#include <stddef.h>
#include <string.h>

#include "ta_app_internal.h"
#include "ta_frame.h"
#include "tinyadapt/ta_model.h"

#define APP(ctx) ((ta_app_t *)(ctx))

static uint8_t name_len(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return (uint8_t)(n > 255u ? 255u : n);
}

/* A blob's identity: its total size and the CRC its header carries (ta_model_load checks
 * that CRC against the bytes, so after a successful SELECT it names exactly the bytes run). */
static void write_identity(uint8_t *p, const uint8_t *blob, uint32_t size)
{
    const int whole = blob != NULL && size >= TA_MODEL_CRC_START;
    ta_wr32(p, whole ? ta_rd32(blob + 8) : 0u);
    ta_wr32(p + 4, whole ? ta_rd32(blob + 12) : 0u);
}

static ta_status_t cmd_hello(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    const ta_hal_t *hal = app->hal;
    const uint8_t board_len = name_len(hal->board_name);
    const uint8_t core_len = name_len(hal->core_name);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    TA_ENSURE(28u + board_len + core_len <= resp->cap, TA_ERR_OVERFLOW);
    uint8_t *p = resp->payload;
    p[0] = TA_PROTO_VERSION;
    p[1] = TA_ENGINE_VERSION_MAJOR;
    p[2] = TA_ENGINE_VERSION_MINOR;
    p[3] = TA_SLOT_COUNT;
    ta_wr32(p + 4, app->cfg.arena_size);
    ta_wr32(p + 8, app->cfg.ram_slot != NULL ? app->cfg.ram_slot_size : 0u);
    ta_wr32(p + 12, ta_app_features(app));
    ta_wr16(p + 16, (uint16_t)TA_PROTO_MAX_PAYLOAD);
    p[18] = board_len;
    p[19] = core_len;
    memcpy(p + 20, hal->board_name, board_len);
    memcpy(p + 20 + board_len, hal->core_name, core_len);
    uint32_t builtin_size = 0;
    const uint8_t *builtin = ta_builtin_model(&builtin_size);
    write_identity(p + 20 + board_len + core_len, builtin, builtin_size);
    resp->len = (uint16_t)(28u + board_len + core_len);
    return TA_OK;
}

static ta_status_t cmd_reset(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    app->reset_requested = 1;
    ta_server_stop(&app->server); /* after this response is sent and flushed */
    return TA_OK;
}

/* ---- model loading ---------------------------------------------------- */

static ta_status_t cmd_load_begin(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 12, TA_ERR_ARG);
    const uint8_t slot = req->payload[0];
    const uint32_t total = ta_rd32(req->payload + 4);
    TA_ENSURE(slot < TA_SLOT_COUNT, TA_ERR_ARG);
    TA_ENSURE(slot == TA_SLOT_RAM && app->cfg.ram_slot != NULL, TA_ERR_UNSUPPORTED); /* slot 0 is flash */
    TA_ENSURE(total > 0, TA_ERR_ARG);
    TA_ENSURE(total <= app->cfg.ram_slot_size, TA_ERR_OVERFLOW);
    if (app->slot == TA_SLOT_RAM) {
        app->slot = -1; /* the engine must not run a half-written blob */
    }
    app->load_active = 1;
    app->load_size = total;
    app->load_crc = ta_rd32(req->payload + 8);
    return TA_OK;
}

static ta_status_t cmd_load_chunk(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(app->load_active, TA_ERR_STATE);
    TA_ENSURE(req->len >= 4, TA_ERR_ARG);
    const uint32_t offset = ta_rd32(req->payload);
    const uint32_t n = (uint32_t)req->len - 4u;
    TA_ENSURE(offset <= app->load_size && n <= app->load_size - offset, TA_ERR_OVERFLOW);
    memcpy(app->cfg.ram_slot + offset, req->payload + 4, n);
    return TA_OK;
}

static ta_status_t cmd_load_end(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    TA_ENSURE(app->load_active, TA_ERR_STATE);
    app->load_active = 0;
    TA_ENSURE(ta_crc32(0, app->cfg.ram_slot, app->load_size) == app->load_crc, TA_ERR_CRC);
    ta_model_t check;
    return ta_model_load(&check, app->cfg.ram_slot, app->load_size);
}

static ta_status_t cmd_select(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 1, TA_ERR_ARG);
    TA_TRY(ta_app_select(app, req->payload[0]));
    const ta_model_header_t *h = app->model.header;
    const uint32_t n_io = (uint32_t)h->n_inputs + h->n_outputs;
    if (h->n_inputs > 255u || h->n_outputs > 255u || 16u + 4u * n_io > resp->cap) {
        app->slot = -1; /* the host could not learn the tensor sizes: do not leave it selected */
        return TA_ERR_OVERFLOW;
    }
    uint8_t *p = resp->payload;
    ta_wr32(p, h->arena_size);
    p[4] = (uint8_t)h->n_inputs;
    p[5] = (uint8_t)h->n_outputs;
    ta_wr16(p + 6, h->n_ops);
    p += 8;
    for (uint32_t i = 0; i < n_io; ++i, p += 4) {
        ta_wr32(p, app->model.tensors[app->model.inputs[i]].size); /* outputs follow inputs */
    }
    write_identity(p, app->model.blob, app->model.size);
    resp->len = (uint16_t)(16u + 4u * n_io);
    return TA_OK;
}

/* ---- running ---------------------------------------------------------- */

/* Model input (is_output = 0) or output `index` of the selected model. */
static ta_status_t io_tensor(const ta_app_t *app, int is_output, uint8_t index, ta_tensor_t *t)
{
    TA_ENSURE(app->slot >= 0, TA_ERR_STATE);
    return is_output ? ta_engine_output(&app->engine, index, t) : ta_engine_input(&app->engine, index, t);
}

static ta_status_t cmd_input_write(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len >= 8, TA_ERR_ARG);
    ta_tensor_t t;
    TA_TRY(io_tensor(app, 0, req->payload[0], &t));
    const uint32_t offset = ta_rd32(req->payload + 4);
    const uint32_t n = (uint32_t)req->len - 8u;
    TA_ENSURE(offset <= t.rec->size && n <= t.rec->size - offset, TA_ERR_OVERFLOW);
    memcpy((uint8_t *)t.data + offset, req->payload + 8, n);
    return TA_OK;
}

static ta_status_t cmd_invoke(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 1, TA_ERR_ARG);
    uint64_t count;
    TA_TRY(ta_app_invoke(app, (req->payload[0] & TA_INVOKE_PROFILE) != 0, &count));
    ta_wr64(resp->payload, count);
    ta_wr32(resp->payload + 8, app->n_profiled);
    resp->len = 12;
    return TA_OK;
}

static ta_status_t cmd_output_read(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 10, TA_ERR_ARG);
    ta_tensor_t t;
    TA_TRY(io_tensor(app, 1, req->payload[0], &t));
    const uint32_t offset = ta_rd32(req->payload + 4);
    const uint16_t length = ta_rd16(req->payload + 8);
    TA_ENSURE(length <= resp->cap, TA_ERR_OVERFLOW);
    TA_ENSURE(offset <= t.rec->size && length <= t.rec->size - offset, TA_ERR_OVERFLOW);
    memcpy(resp->payload, (const uint8_t *)t.data + offset, length);
    resp->len = length;
    return TA_OK;
}

ta_status_t ta_app_profile_read(const ta_app_t *app, const ta_request_t *req, ta_response_t *resp,
                                int with_update)
{
    const uint32_t width = with_update ? 12u : 8u;
    TA_ENSURE(req->len == 4, TA_ERR_ARG);
    const uint16_t first = ta_rd16(req->payload);
    const uint16_t count = ta_rd16(req->payload + 2);
    TA_ENSURE((uint32_t)first + count <= app->n_profiled, TA_ERR_ARG);
    TA_ENSURE(width * count <= resp->cap, TA_ERR_OVERFLOW);
    uint8_t *p = resp->payload;
    for (uint16_t i = 0; i < count; ++i, p += width) {
        const ta_profile_entry_t *e = &app->profile[first + i];
        ta_wr16(p, e->opcode);
        ta_wr16(p + 2, 0);
        ta_wr32(p + 4, e->count);
        if (with_update)
            ta_wr32(p + 8, e->update);
    }
    resp->len = (uint16_t)(width * count);
    return TA_OK;
}

ta_status_t ta_app_store_save(ta_app_t *app, ta_param_store_t *store, uint16_t tag, uint32_t model_crc,
                              const uint8_t *data, uint32_t len, ta_response_t *resp)
{
    ta_param_record_t rec;
    const uint64_t t0 = ta_app_counter(app);
    const ta_status_t st = ta_param_store_save(store, tag, model_crc, data, len, &rec);
    const uint64_t t1 = ta_app_counter(app);
    TA_TRY(st);
    ta_wr32(resp->payload, rec.revision);
    ta_wr32(resp->payload + 4, rec.len);
    ta_wr64(resp->payload + 8, ta_app_counter_units(app, t1 - t0));
    resp->len = 16;
    return TA_OK;
}

static ta_status_t cmd_profile_read(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    return ta_app_profile_read(APP(ctx), req, resp, 0);
}

static ta_status_t cmd_infer(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    ta_tensor_t in, out;
    TA_TRY(io_tensor(app, 0, 0, &in));
    TA_TRY(io_tensor(app, 1, 0, &out));
    TA_ENSURE(req->len == in.rec->size, TA_ERR_ARG);
    TA_ENSURE(8u + out.rec->size <= resp->cap, TA_ERR_OVERFLOW);
    memcpy(in.data, req->payload, req->len);
    uint64_t count;
    TA_TRY(ta_app_invoke(app, 0, &count));
    ta_wr64(resp->payload, count);
    memcpy(resp->payload + 8, out.data, out.rec->size);
    resp->len = (uint16_t)(8u + out.rec->size);
    return TA_OK;
}

static ta_status_t cmd_metrics(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    const ta_server_stats_t *s = &app->server.stats;
    const ta_hal_t *hal = app->hal;
    const uint32_t fields[10] = {
        s->frames_rx, s->frames_tx, s->crc_errors, s->naks_sent, s->duplicates, app->invokes,
        ta_app_arena_used(app), app->cfg.arena_size, ta_app_stack_used(app),
        hal->stack_hi > hal->stack_lo ? (uint32_t)(hal->stack_hi - hal->stack_lo) : 0u,
    };
    for (int i = 0; i < 10; ++i) {
        ta_wr32(resp->payload + 4 * i, fields[i]);
    }
    resp->len = sizeof(fields);
    return TA_OK;
}

static const ta_command_t k_core[] = {
    {TA_CMD_HELLO, cmd_hello},
    {TA_CMD_RESET, cmd_reset},
    {TA_CMD_LOAD_BEGIN, cmd_load_begin},
    {TA_CMD_LOAD_CHUNK, cmd_load_chunk},
    {TA_CMD_LOAD_END, cmd_load_end},
    {TA_CMD_SELECT, cmd_select},
    {TA_CMD_INPUT_WRITE, cmd_input_write},
    {TA_CMD_INVOKE, cmd_invoke},
    {TA_CMD_OUTPUT_READ, cmd_output_read},
    {TA_CMD_PROFILE_READ, cmd_profile_read},
    {TA_CMD_INFER, cmd_infer},
    {TA_CMD_METRICS, cmd_metrics},
};

const ta_command_set_t ta_core_commands = {"core", k_core, (uint16_t)(sizeof(k_core) / sizeof(k_core[0]))};
