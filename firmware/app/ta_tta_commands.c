/*
 * ADAPT_* commands (docs/PROTOCOL.md, "Test-time adaptation"): early-exit inference through
 * the runner of engine/ta_tta.c over a backbone and its exit heads, loaded together into the
 * RAM slot as the backbone blob followed by a TTA trailer:
 *
 *   ram_slot  +-------------------------+ 0
 *             | backbone blob           |  a normal model blob: LOAD_END checks it, SELECT 1
 *             +-------------------------+  selects it
 *             | TTA trailer (16-aligned)|  u32 magic "TTA1", u32 n_exits, u32 macs_full,
 *             |                         |  u32 adapt_offset (0: none),
 *             |                         |  n_exits x {u16 cut_op, u16 cut_tensor, f32 threshold,
 *             |                         |  u32 macs_backbone, u32 macs_head, u32 head_offset,
 *             |                         |  u32 head_size, u32 norm_offset (0: none), u32 0}
 *             |                         |  (offsets from the trailer start)
 *             | head blobs (16-aligned) |
 *             | norm sections (16-al.)  |  u16 channels, u16 z_tensor, u16 gamma_tensor,
 *             |                         |  u16 beta_tensor, f32 z_scale, i32 z_zero_point,
 *             |                         |  f32 momentum, f32 dead_zone, u32 0, u32 0, then
 *             |                         |  f32 src_mu[M], src_var[M], gamma[M], beta[M], gamma_scale[M]
 *             | adapt section (16-al.)  |  u16 in_channels C, u16 n_classes, u32 window,
 *             |                         |  u32 min_source, u32 pause, u32 seed, f32 momentum,
 *             |                         |  f32 dead_zone, f32 narrow, f32 shadow_rate,
 *             |                         |  f32 worse_margin, f32 widen_margin, f32 narrow_margin,
 *             |                         |  u32 flags (bit 0 early), u32 0 x3, then
 *             |                         |  f32 src_mu[C], src_var[C] (the input's statistics)
 *             +-------------------------+
 *
 * App arena: the backbone's arena as SELECT bound it, then (16-aligned) one region the heads
 * share, since they run one after the other, then (16-aligned, while adapting) the adaptation
 * loop's work area (the input's running statistics, the raw sample, the last good
 * statistics, the health check's histograms); METRICS' high-water mark and
 * ADAPT_STATUS cover all three.
 *
 * Persistence: ADAPT_SAVE writes every head's running statistics (mu, var per channel; the
 * int8 affine follows from them) atomically to the second half of the NVM region with the
 * TTA tag; ADAPT_SELECT restores them when the record is this prepared model's (the CRC of
 * the backbone, the heads and the exit table); ADAPT_RESET with the persist flag leaves a
 * tombstone, so the next boot starts from the source heads.
 */
#include <stddef.h>
#include <string.h>

#include "ta_app_internal.h"
#include "ta_frame.h"
#include "tinyadapt/ta_model.h"

#define APP(ctx) ((ta_app_t *)(ctx))
#define ALIGN16(x) (((x) + 15u) & ~(uint32_t)15u)
#define TTA_MAGIC 0x31415454u /* "TTA1" */
#define TTA_HEADER 16u
#define TTA_EXIT 32u
#define TTA_NORM 32u
#define TTA_ADAPT 64u
#define MODE_NORM 1u
#define MODE_INPUT 2u

/* Head k's normalisation adaptation from its trailer section. */
static ta_status_t norm_bind(ta_app_t *app, uint32_t k, const uint8_t *tr, uint32_t tr_size, uint32_t off)
{
    TA_ENSURE((off & 15u) == 0 && off <= tr_size && tr_size - off >= TTA_NORM, TA_ERR_TRUNCATED);
    const uint8_t *p = tr + off;
    ta_tta_norm_t *n = &app->tta_norms[k];
    memset(n, 0, sizeof(*n));
    n->channels = ta_rd16(p);
    TA_ENSURE(n->channels > 0 && n->channels <= TA_TTA_MAX_CHANNELS, TA_ERR_CORRUPT);
    TA_ENSURE(tr_size - off - TTA_NORM >= 5u * 4u * n->channels, TA_ERR_TRUNCATED);
    n->z_tensor = ta_rd16(p + 2);
    n->gamma_tensor = ta_rd16(p + 4);
    n->beta_tensor = ta_rd16(p + 6);
    n->z_scale = ta_rd_f32(p + 8);
    n->z_zero_point = (int32_t)ta_rd32(p + 12);
    n->momentum = ta_rd_f32(p + 16);
    n->dead_zone = ta_rd_f32(p + 20);
    const float *arrays = (const float *)(const void *)(p + TTA_NORM); /* 16-aligned in the slot */
    n->src_mu = arrays;
    n->src_var = arrays + n->channels;
    n->gamma = arrays + 2u * n->channels;
    n->beta = arrays + 3u * n->channels;
    n->gamma_scale = arrays + 4u * n->channels;
    TA_ENSURE(n->z_tensor < app->tta_models[k].header->n_tensors &&
              n->gamma_tensor < app->tta_models[k].header->n_tensors &&
              n->beta_tensor < app->tta_models[k].header->n_tensors, TA_ERR_CORRUPT);
    TA_TRY(ta_tta_norm_bind(n, &app->tta_engines[k]));
    app->tta.norm[k] = n;
    return TA_OK;
}

/* The adaptation loop from the trailer's adapt section: its settings, the input statistics. */
static ta_status_t adapt_bind(ta_app_t *app, const uint8_t *tr, uint32_t tr_size, uint32_t mode, uint8_t *work,
                              uint32_t room)
{
    const uint32_t off = ta_rd32(tr + 12);
    TA_ENSURE(off != 0u, TA_ERR_UNSUPPORTED);
    TA_ENSURE((off & 15u) == 0 && off <= tr_size && tr_size - off >= TTA_ADAPT, TA_ERR_TRUNCATED);
    const uint8_t *p = tr + off;
    ta_tta_adapt_t *a = &app->tta_adapt;
    ta_tta_input_t *in = &app->tta_input;
    memset(a, 0, sizeof(*a));
    memset(in, 0, sizeof(*in));
    in->channels = ta_rd16(p);
    TA_ENSURE(in->channels > 0, TA_ERR_CORRUPT);
    TA_ENSURE(tr_size - off - TTA_ADAPT >= 2u * 4u * in->channels, TA_ERR_TRUNCATED);
    a->n_classes = ta_rd16(p + 2);
    a->cfg.early = (uint8_t)(ta_rd32(p + 48) & 1u);
    a->cfg.window = ta_rd32(p + 4);
    a->cfg.min_source = ta_rd32(p + 8);
    a->cfg.pause = ta_rd32(p + 12);
    a->cfg.seed = ta_rd32(p + 16);
    in->momentum = ta_rd_f32(p + 20);
    in->dead_zone = ta_rd_f32(p + 24);
    a->cfg.narrow = ta_rd_f32(p + 28);
    a->cfg.shadow_rate = ta_rd_f32(p + 32);
    a->cfg.worse_margin = ta_rd_f32(p + 36);
    a->cfg.widen_margin = ta_rd_f32(p + 40);
    a->cfg.narrow_margin = ta_rd_f32(p + 44);
    in->src_mu = (const float *)(const void *)(p + TTA_ADAPT); /* 16-aligned in the slot */
    in->src_var = in->src_mu + in->channels;
    /* the running input statistics open the work area (any input width) */
    const uint32_t stats = (mode & MODE_INPUT) ? 2u * 4u * in->channels : 0u;
    TA_ENSURE(stats <= room, TA_ERR_ARENA);
    if (stats > 0u) {
        in->mu = (float *)(void *)work;
        in->var = in->mu + in->channels;
        ta_tta_input_reset(in);
    }
    a->runner = &app->tta;
    a->input = (mode & MODE_INPUT) ? in : NULL;
    a->norm = (uint8_t)((mode & MODE_NORM) != 0u);
    if (!a->norm) {
        /* "input" alone adapts no head: their statistics stay (source or restored) */
        for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
            app->tta.norm[k] = NULL;
        }
    }
    a->work = work + stats;
    a->work_size = room - stats;
    return ta_tta_adapt_start(a);
}

/* Bind the runner to the trailer after the selected RAM-slot blob. */
static ta_status_t tta_bind(ta_app_t *app, uint32_t mode, uint32_t *head_arena)
{
    TA_ENSURE(app->slot == TA_SLOT_RAM, TA_ERR_STATE);
    const uint32_t at = ALIGN16(app->model.header->total_size);
    const uint32_t slot_size = app->cfg.ram_slot_size;
    TA_ENSURE(at <= slot_size && slot_size - at >= TTA_HEADER, TA_ERR_TRUNCATED);
    const uint8_t *tr = app->cfg.ram_slot + at;
    TA_ENSURE(ta_rd32(tr) == TTA_MAGIC, TA_ERR_MAGIC);
    const uint32_t n = ta_rd32(tr + 4);
    TA_ENSURE(n >= 1u && n <= TA_TTA_MAX_EXITS, TA_ERR_CORRUPT);
    TA_ENSURE(slot_size - at >= TTA_HEADER + n * TTA_EXIT, TA_ERR_TRUNCATED);
    const uint32_t heads_at = ALIGN16(app->model.header->arena_size);
    TA_ENSURE(heads_at <= app->cfg.arena_size, TA_ERR_ARENA);
    uint8_t *heads_arena = app->cfg.arena + heads_at;
    const uint32_t room = app->cfg.arena_size - heads_at;
    ta_tta_t *t = &app->tta;
    memset(t, 0, sizeof(*t));
    t->backbone = &app->engine;
    t->n_exits = (uint8_t)n;
    t->macs_full = ta_rd32(tr + 8);
    uint32_t need = 0;
    for (uint32_t k = 0; k < n; ++k) {
        const uint8_t *e = tr + TTA_HEADER + k * TTA_EXIT;
        const uint32_t off = ta_rd32(e + 16);
        const uint32_t size = ta_rd32(e + 20);
        TA_ENSURE((off & 15u) == 0 && off <= slot_size - at && size <= slot_size - at - off, TA_ERR_TRUNCATED);
        TA_TRY(ta_model_load(&app->tta_models[k], tr + off, size));
        const uint32_t arena = app->tta_models[k].header->arena_size;
        TA_ENSURE(arena <= room, TA_ERR_ARENA);
        need = arena > need ? arena : need;
        memset(&app->tta_engines[k], 0, sizeof(app->tta_engines[k]));
        TA_TRY(ta_engine_init(&app->tta_engines[k], &app->tta_models[k], heads_arena, room));
        t->heads[k] = &app->tta_engines[k];
        t->exits[k].cut_op = ta_rd16(e);
        t->exits[k].cut_tensor = ta_rd16(e + 2);
        t->exits[k].threshold = ta_rd_f32(e + 4);
        t->exits[k].macs_backbone = ta_rd32(e + 8);
        t->exits[k].macs_head = ta_rd32(e + 12);
        const uint32_t norm = ta_rd32(e + 24);
        if (norm != 0u) {
            TA_TRY(norm_bind(app, k, tr, slot_size - at, norm));
        }
    }
    TA_TRY(ta_tta_check(t));
    uint32_t crc = ta_crc32(app->model.header->crc32, tr, TTA_HEADER + n * TTA_EXIT);
    for (uint32_t k = 0; k < n; ++k) {
        const uint32_t hc = app->tta_models[k].header->crc32;
        crc = ta_crc32(crc, &hc, sizeof(hc));
    }
    app->tta_crc = crc;
    *head_arena = need;
    if (mode != 0u) {
        const uint32_t work_at = ALIGN16(need);
        TA_ENSURE(work_at <= room, TA_ERR_ARENA);
        TA_TRY(adapt_bind(app, tr, slot_size - at, mode, heads_arena + work_at, room - work_at));
        const ta_tta_input_t *in = app->tta_adapt.input;
        *head_arena = work_at + (in != NULL ? 2u * 4u * in->channels : 0u) +
                      ta_tta_adapt_need(&app->tta, in, app->tta_adapt.n_classes);
    }
    return TA_OK;
}

/* The store on the second half of the board's NVM (TA_ERR_UNSUPPORTED without NVM). */
static ta_status_t store_open(ta_app_t *app)
{
    const ta_nvm_t *nvm = app->hal->nvm;
    TA_ENSURE(nvm != NULL && nvm->page_size != 0, TA_ERR_UNSUPPORTED);
    const uint32_t half = (nvm->size / 2u) & ~(nvm->page_size - 1u);
    return ta_param_store_init(&app->tta_store, nvm, half, (nvm->size - half) & ~(nvm->page_size - 1u));
}

/* mu, var of every adapting head, in exit order: the image SAVE stores. */
static uint32_t image_size(const ta_app_t *app)
{
    uint32_t n = 0;
    for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
        n += app->tta.norm[k] != NULL ? 2u * app->tta.norm[k]->channels : 0u;
    }
    return n * (uint32_t)sizeof(float);
}

static void image_io(ta_app_t *app, int restore)
{
    float *p = app->tta_image;
    for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
        ta_tta_norm_t *nm = app->tta.norm[k];
        if (nm == NULL) {
            continue;
        }
        for (uint32_t c = 0; c < nm->channels; ++c, p += 2) {
            if (restore) {
                nm->mu[c] = p[0];
                nm->var[c] = p[1];
            } else {
                p[0] = nm->mu[c];
                p[1] = nm->var[c];
            }
        }
        if (restore) {
            ta_tta_norm_fold(nm);
        }
    }
}

/* Request: u8 mode, bit 0 "norm" (the heads' normalisation), bit 1 "input" (the input's
 * statistics); 0 is inference only, anything else runs the adaptation loop with its health
 * check (ta_tta_adapt_t, the settings from the trailer's adapt section). */
static ta_status_t cmd_adapt_select(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 1 && req->payload[0] <= (MODE_NORM | MODE_INPUT), TA_ERR_ARG);
    app->tta_ready = 0;
    app->tta_mode = 0;
    uint32_t head_arena = 0;
    TA_TRY(tta_bind(app, req->payload[0], &head_arena));
    app->tta_mode = req->payload[0];
    app->tta_restored = 0;
    const uint32_t len = image_size(app);
    if (len > 0 && store_open(app) == TA_OK) {
        ta_param_record_t rec;
        if (ta_param_store_load(&app->tta_store, TA_PARAM_TAG_TTA, app->tta_crc, (uint8_t *)app->tta_image, len,
                                &rec) == TA_OK) {
            image_io(app, 1);
            app->tta_restored = 1;
            if (app->tta_mode != 0u) {
                ta_tta_adapt_keep(&app->tta_adapt); /* the restored heads are the first good state */
            }
        }
    }
    app->tta_ready = 1;
    resp->payload[0] = app->tta.n_exits;
    resp->payload[1] = app->tta_restored;
    resp->payload[2] = resp->payload[3] = 0;
    ta_wr32(resp->payload + 4, ALIGN16(app->model.header->arena_size) + head_arena);
    resp->len = 8;
    return TA_OK;
}

static ta_status_t cmd_adapt_infer(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(app->tta_ready && app->slot == TA_SLOT_RAM, TA_ERR_STATE);
    ta_tensor_t in;
    TA_TRY(ta_engine_input(&app->engine, 0, &in));
    if (req->len > 0) { /* else: the input was written with INPUT_WRITE */
        TA_ENSURE(req->len == in.rec->size, TA_ERR_ARG);
        memcpy(in.data, req->payload, req->len);
    }
    ta_tta_result_t r;
    const uint64_t t0 = ta_app_counter(app);
    const ta_status_t st = app->tta_mode != 0u ? ta_tta_adapt_step(&app->tta_adapt, &r) : ta_tta_infer(&app->tta, &r);
    const uint64_t t1 = ta_app_counter(app);
    TA_TRY(st);
    app->invokes++;
    uint8_t *p = resp->payload;
    p[0] = r.exit;
    p[1] = p[2] = p[3] = 0;
    ta_wr32(p + 4, (uint32_t)r.prediction);
    ta_wr_f32(p + 8, r.entropy);
    ta_wr32(p + 12, r.macs);
    ta_wr32(p + 16, r.macs_skipped);
    ta_wr64(p + 20, ta_app_counter_units(app, t1 - t0));
    resp->len = 28;
    return TA_OK;
}

/* Back to the source heads: every head's statistics to the source's. Request: u8 flags,
 * bit 0 persist (a tombstone, so the next boot starts from the source heads too). Response:
 * u32 revision of that tombstone (0 without persist). */
static ta_status_t cmd_adapt_reset(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 1 && (req->payload[0] & ~1u) == 0, TA_ERR_ARG);
    TA_ENSURE(app->tta_ready, TA_ERR_STATE);
    for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
        if (app->tta.norm[k] != NULL) {
            ta_tta_norm_reset(app->tta.norm[k]);
        }
    }
    if (app->tta_mode != 0u) {
        ta_tta_adapt_reset(&app->tta_adapt); /* the input statistics and the health check's window too */
    }
    app->tta_restored = 0;
    uint32_t revision = 0;
    if (req->payload[0] & 1u) {
        TA_TRY(store_open(app));
        ta_param_record_t rec;
        TA_TRY(ta_param_store_save(&app->tta_store, TA_PARAM_TAG_TTA, app->tta_crc, NULL, 0, &rec));
        revision = rec.revision;
    }
    ta_wr32(resp->payload, revision);
    resp->len = 4;
    return TA_OK;
}

/* Persist the adapted heads. Response: u32 revision, u32 bytes, u64 instructions. */
static ta_status_t cmd_adapt_save(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    TA_ENSURE(app->tta_ready, TA_ERR_STATE);
    const uint32_t len = image_size(app);
    TA_ENSURE(len > 0, TA_ERR_UNSUPPORTED);
    TA_TRY(store_open(app));
    image_io(app, 0);
    ta_param_record_t rec;
    const uint64_t t0 = ta_app_counter(app);
    const ta_status_t st = ta_param_store_save(&app->tta_store, TA_PARAM_TAG_TTA, app->tta_crc,
                                               (const uint8_t *)app->tta_image, len, &rec);
    const uint64_t t1 = ta_app_counter(app);
    TA_TRY(st);
    ta_wr32(resp->payload, rec.revision);
    ta_wr32(resp->payload + 4, rec.len);
    ta_wr64(resp->payload + 8, ta_app_counter_units(app, t1 - t0));
    resp->len = 16;
    return TA_OK;
}

/* The adaptation loop's counters and its memory. Response: u32 rollbacks, u32 updates,
 * u32 paused (samples left), u32 samples, u32 arena_used (high-water mark of the whole arena
 * since SELECT: backbone, heads and the loop's work area), u32 state_bytes (the adaptation
 * state outside the arena: the adapting heads' and the input's statistics, the loop's own),
 * u8 mode, u8 pad[3]. */
static ta_status_t cmd_adapt_status(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    TA_ENSURE(app->tta_ready, TA_ERR_STATE);
    const ta_tta_adapt_t *a = &app->tta_adapt;
    const int on = app->tta_mode != 0u;
    uint32_t state = 0;
    if (on) {
        state = (uint32_t)sizeof(ta_tta_adapt_t) + (a->input != NULL ? (uint32_t)sizeof(ta_tta_input_t) : 0u);
        for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
            state += app->tta.norm[k] != NULL ? (uint32_t)sizeof(ta_tta_norm_t) : 0u;
        }
    }
    uint8_t *p = resp->payload;
    ta_wr32(p, on ? a->rollbacks : 0u);
    ta_wr32(p + 4, on ? a->updates : 0u);
    ta_wr32(p + 8, on ? a->paused : 0u);
    ta_wr32(p + 12, on ? a->samples : 0u);
    ta_wr32(p + 16, ta_app_arena_used(app));
    ta_wr32(p + 20, state);
    p[24] = app->tta_mode;
    p[25] = p[26] = p[27] = 0;
    resp->len = 28;
    return TA_OK;
}

static const ta_command_t k_tta[] = {
    {TA_CMD_ADAPT_SELECT, cmd_adapt_select},
    {TA_CMD_ADAPT_INFER, cmd_adapt_infer},
    {TA_CMD_ADAPT_RESET, cmd_adapt_reset},
    {TA_CMD_ADAPT_SAVE, cmd_adapt_save},
    {TA_CMD_ADAPT_STATUS, cmd_adapt_status},
};

const ta_command_set_t ta_tta_commands = {"tta", k_tta, (uint16_t)(sizeof(k_tta) / sizeof(k_tta[0]))};
