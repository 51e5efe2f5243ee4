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
 *             |                         |  u32 flags (bit 0 early, bit 1 probation),
 *             |                         |  f32 probe_share, u32 0 x2,
 *             |                         |  then f32 src_mu[C], src_var[C] (the input's statistics)
 *             +-------------------------+
 *
 * App arena: the backbone's arena as SELECT bound it; each head's arena inside it where the
 * backbone's plan leaves room at the head's cut (only the cut tensor is live there,
 * ta_tta_head_base), else above it; then (16-aligned) the per-channel state, sized to this
 * model: the running statistics in one run of floats (the input's mu, var, then each head's)
 * and the heads' folded affines; then (16-aligned, while adapting) the adaptation loop's
 * work area (the sample's snapshot for the source comparisons, the last good statistics, the
 * health check's histograms). METRICS' high-water mark and ADAPT_STATUS cover all of it.
 *
 * Persistence: ADAPT_SAVE writes the run of running statistics (the heads' int8 affines
 * follow from them) atomically to the second half of the NVM region with the TTA statistics
 * tag (TA_PARAM_TAG_TTA_STATS); ADAPT_SELECT restores them when the record is this prepared
 * model's (the CRC of the backbone, the heads and the exit table, and the length). A record
 * of the first format (TA_PARAM_TAG_TTA, heads only) is refused. ADAPT_RESET with the
 * persist flag leaves a tombstone, so the next boot starts from the source.
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

/* Head k's normalisation section: its channel count (the rest is read by norm_bind). */
static ta_status_t norm_channels(const uint8_t *tr, uint32_t tr_size, uint32_t off, uint32_t *m)
{
    TA_ENSURE((off & 15u) == 0 && off <= tr_size && tr_size - off >= TTA_NORM, TA_ERR_TRUNCATED);
    *m = ta_rd16(tr + off);
    TA_ENSURE(*m > 0u, TA_ERR_CORRUPT);
    TA_ENSURE(tr_size - off - TTA_NORM >= 5u * 4u * *m, TA_ERR_TRUNCATED);
    return TA_OK;
}

/* Head k's normalisation adaptation from its trailer section, its running statistics at
 * mu_var (mu[M], var[M]) and its folded affine at beta_q[M], gamma_q[M]. */
static ta_status_t norm_bind(ta_app_t *app, uint32_t k, const uint8_t *tr, uint32_t off, float *mu_var,
                             int32_t *beta_q, int8_t *gamma_q)
{
    const uint8_t *p = tr + off;
    ta_tta_norm_t *n = &app->tta_norms[k];
    memset(n, 0, sizeof(*n));
    n->channels = ta_rd16(p);
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
    n->mu = mu_var;
    n->var = mu_var + n->channels;
    n->beta_q = beta_q;
    n->gamma_q = gamma_q;
    TA_ENSURE(n->z_tensor < app->tta_models[k].header->n_tensors &&
              n->gamma_tensor < app->tta_models[k].header->n_tensors &&
              n->beta_tensor < app->tta_models[k].header->n_tensors, TA_ERR_CORRUPT);
    TA_TRY(ta_tta_norm_bind(n, &app->tta_engines[k]));
    app->tta.norm[k] = n;
    return TA_OK;
}

/* The input statistics of the trailer's adapt section (source and, at mu_var, running):
 * bound in every mode, so ADAPT_SAVE's image has one layout per prepared model. */
static ta_status_t input_bind(ta_app_t *app, const uint8_t *tr, uint32_t tr_size, float *mu_var)
{
    const uint32_t off = ta_rd32(tr + 12);
    const uint8_t *p = tr + off;
    ta_tta_input_t *in = &app->tta_input;
    memset(in, 0, sizeof(*in));
    in->channels = ta_rd16(p);
    in->momentum = ta_rd_f32(p + 20);
    in->dead_zone = ta_rd_f32(p + 24);
    in->src_mu = (const float *)(const void *)(p + TTA_ADAPT); /* 16-aligned in the slot */
    in->src_var = in->src_mu + in->channels;
    in->mu = mu_var;
    in->var = mu_var + in->channels;
    (void)tr_size; /* input_channels checked the section's extent */
    ta_tta_input_reset(in);
    return TA_OK;
}

/* The adapt section's input channel count (0: no section). */
static ta_status_t input_channels(const uint8_t *tr, uint32_t tr_size, uint32_t *c)
{
    const uint32_t off = ta_rd32(tr + 12);
    *c = 0;
    if (off == 0u) {
        return TA_OK;
    }
    TA_ENSURE((off & 15u) == 0 && off <= tr_size && tr_size - off >= TTA_ADAPT, TA_ERR_TRUNCATED);
    *c = ta_rd16(tr + off);
    TA_ENSURE(*c > 0u, TA_ERR_CORRUPT);
    TA_ENSURE(tr_size - off - TTA_ADAPT >= 2u * 4u * *c, TA_ERR_TRUNCATED);
    return TA_OK;
}

/* The adaptation loop from the trailer's adapt section: its settings. */
static ta_status_t adapt_bind(ta_app_t *app, const uint8_t *tr, uint32_t mode, uint8_t *work, uint32_t room)
{
    const uint32_t off = ta_rd32(tr + 12);
    TA_ENSURE(off != 0u, TA_ERR_UNSUPPORTED);
    const uint8_t *p = tr + off;
    ta_tta_adapt_t *a = &app->tta_adapt;
    memset(a, 0, sizeof(*a));
    a->n_classes = ta_rd16(p + 2);
    a->cfg.early = (uint8_t)(ta_rd32(p + 48) & 1u);
    a->cfg.probation = (uint8_t)((ta_rd32(p + 48) >> 1) & 1u);
    a->cfg.probe_share = ta_rd_f32(p + 52);
    a->cfg.window = ta_rd32(p + 4);
    a->cfg.min_source = ta_rd32(p + 8);
    a->cfg.pause = ta_rd32(p + 12);
    a->cfg.seed = ta_rd32(p + 16);
    a->cfg.narrow = ta_rd_f32(p + 28);
    a->cfg.shadow_rate = ta_rd_f32(p + 32);
    a->cfg.worse_margin = ta_rd_f32(p + 36);
    a->cfg.widen_margin = ta_rd_f32(p + 40);
    a->cfg.narrow_margin = ta_rd_f32(p + 44);
    a->runner = &app->tta;
    a->input = (mode & MODE_INPUT) ? &app->tta_input : NULL;
    a->norm = (uint8_t)((mode & MODE_NORM) != 0u);
    if (!a->norm) {
        /* "input" alone adapts no head: their statistics stay (source or restored) */
        for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
            app->tta.norm[k] = NULL;
        }
    }
    a->work = work;
    a->work_size = room;
    return ta_tta_adapt_start(a);
}

/* Bind the runner to the trailer after the selected RAM-slot blob. *arena_end: the end of
 * the arena bytes it uses (backbone, heads, statistics, the loop's work area). */
static ta_status_t tta_bind(ta_app_t *app, uint32_t mode, uint32_t *arena_end)
{
    TA_ENSURE(app->slot == TA_SLOT_RAM, TA_ERR_STATE);
    const uint32_t at = ALIGN16(app->model.header->total_size);
    const uint32_t slot_size = app->cfg.ram_slot_size;
    TA_ENSURE(at <= slot_size && slot_size - at >= TTA_HEADER, TA_ERR_TRUNCATED);
    const uint8_t *tr = app->cfg.ram_slot + at;
    const uint32_t tr_size = slot_size - at;
    TA_ENSURE(ta_rd32(tr) == TTA_MAGIC, TA_ERR_MAGIC);
    const uint32_t n = ta_rd32(tr + 4);
    TA_ENSURE(n >= 1u && n <= TA_TTA_MAX_EXITS, TA_ERR_CORRUPT);
    TA_ENSURE(tr_size >= TTA_HEADER + n * TTA_EXIT, TA_ERR_TRUNCATED);
    const uint32_t arena_size = app->cfg.arena_size;
    ta_tta_t *t = &app->tta;
    memset(t, 0, sizeof(*t));
    memset(app->tta_norms, 0, sizeof(app->tta_norms));
    memset(&app->tta_input, 0, sizeof(app->tta_input));
    app->tta_stats = NULL;
    app->tta_stats_len = 0;
    t->backbone = &app->engine;
    t->n_exits = (uint8_t)n;
    t->macs_full = ta_rd32(tr + 8);
    uint32_t end = app->model.header->arena_size;
    uint32_t channels = 0; /* of every head with a norm section */
    for (uint32_t k = 0; k < n; ++k) {
        const uint8_t *e = tr + TTA_HEADER + k * TTA_EXIT;
        const uint32_t off = ta_rd32(e + 16);
        const uint32_t size = ta_rd32(e + 20);
        TA_ENSURE((off & 15u) == 0 && off <= tr_size && size <= tr_size - off, TA_ERR_TRUNCATED);
        TA_TRY(ta_model_load(&app->tta_models[k], tr + off, size));
        t->exits[k].cut_op = ta_rd16(e);
        t->exits[k].cut_tensor = ta_rd16(e + 2);
        t->exits[k].threshold = ta_rd_f32(e + 4);
        t->exits[k].macs_backbone = ta_rd32(e + 8);
        t->exits[k].macs_head = ta_rd32(e + 12);
        TA_ENSURE(t->exits[k].cut_op <= app->model.n_forward_ops, TA_ERR_CORRUPT);
        /* the head runs where the backbone's plan leaves room at its cut (only the cut tensor
         * is live there), else past the backbone's arena */
        const uint32_t arena = app->tta_models[k].header->arena_size;
        const uint32_t base = ta_tta_head_base(&app->engine, t->exits[k].cut_op, arena);
        TA_ENSURE(base <= arena_size && arena <= arena_size - base, TA_ERR_ARENA);
        end = base + arena > end ? base + arena : end;
        memset(&app->tta_engines[k], 0, sizeof(app->tta_engines[k]));
        TA_TRY(ta_engine_init(&app->tta_engines[k], &app->tta_models[k], app->cfg.arena + base, arena));
        t->heads[k] = &app->tta_engines[k];
        const uint32_t norm = ta_rd32(e + 24);
        if (norm != 0u) {
            uint32_t m = 0;
            TA_TRY(norm_channels(tr, tr_size, norm, &m));
            channels += m;
        }
    }
    TA_TRY(ta_tta_check(t));
    /* Per-channel state after the heads, sized to this model: the running statistics in one
     * run of floats (the input's mu, var, then each head's: the image ADAPT_SAVE persists),
     * then the heads' folded affines (int32 beta, int8 gamma). */
    uint32_t in_channels = 0;
    TA_TRY(input_channels(tr, tr_size, &in_channels));
    const uint32_t stats_at = ALIGN16(end);
    const uint32_t stats = 4u * (2u * in_channels + 2u * channels);
    const uint32_t state = stats + 4u * channels + ((channels + 3u) & ~3u);
    TA_ENSURE(stats_at <= arena_size && state <= arena_size - stats_at, TA_ERR_ARENA);
    float *f = (float *)(void *)(app->cfg.arena + stats_at);
    app->tta_stats = f;
    app->tta_stats_len = stats;
    if (in_channels > 0u) {
        TA_TRY(input_bind(app, tr, tr_size, f));
    }
    float *mu_var = f + 2u * in_channels;
    int32_t *beta_q = (int32_t *)(void *)(f + 2u * in_channels + 2u * channels);
    int8_t *gamma_q = (int8_t *)(void *)(beta_q + channels);
    for (uint32_t k = 0; k < n; ++k) {
        const uint32_t norm = ta_rd32(tr + TTA_HEADER + k * TTA_EXIT + 24);
        if (norm != 0u) {
            TA_TRY(norm_bind(app, k, tr, norm, mu_var, beta_q, gamma_q));
            const uint32_t m = app->tta_norms[k].channels;
            mu_var += 2u * m;
            beta_q += m;
            gamma_q += m;
        }
    }
    uint32_t crc = ta_crc32(app->model.header->crc32, tr, TTA_HEADER + n * TTA_EXIT);
    for (uint32_t k = 0; k < n; ++k) {
        const uint32_t hc = app->tta_models[k].header->crc32;
        crc = ta_crc32(crc, &hc, sizeof(hc));
    }
    app->tta_crc = crc;
    *arena_end = stats_at + state;
    if (mode != 0u) {
        const uint32_t work_at = ALIGN16(stats_at + state);
        TA_ENSURE(work_at <= arena_size, TA_ERR_ARENA);
        TA_TRY(adapt_bind(app, tr, mode, app->cfg.arena + work_at, arena_size - work_at));
        *arena_end = work_at + ta_tta_adapt_need(&app->tta, app->tta_adapt.input, app->tta_adapt.n_classes);
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

/* Every statistic back to the source's (the heads' affines with them). */
static void stats_to_source(ta_app_t *app)
{
    if (app->tta_input.mu != NULL) {
        ta_tta_input_reset(&app->tta_input);
    }
    for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
        if (app->tta_norms[k].channels != 0u) { /* bound, adapting in this mode or not */
            ta_tta_norm_reset(&app->tta_norms[k]);
        }
    }
}

/* The stored image (the running statistics, TA_PARAM_TAG_TTA_STATS) straight into the
 * statistics; the heads' affines follow. 1 when one was applied. */
static int restore(ta_app_t *app)
{
    if (app->tta_stats_len == 0u || store_open(app) != TA_OK) {
        return 0;
    }
    ta_param_record_t rec;
    const ta_status_t st = ta_param_store_load(&app->tta_store, TA_PARAM_TAG_TTA_STATS, app->tta_crc,
                                               (uint8_t *)app->tta_stats, app->tta_stats_len, &rec);
    if (st != TA_OK) {
        stats_to_source(app); /* a CRC failure is found after the bytes landed */
        return 0;
    }
    for (uint8_t k = 0; k < app->tta.n_exits; ++k) {
        if (app->tta_norms[k].channels != 0u) {
            ta_tta_norm_fold(&app->tta_norms[k]);
        }
    }
    return 1;
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
    uint32_t arena_end = 0;
    TA_TRY(tta_bind(app, req->payload[0], &arena_end));
    app->tta_mode = req->payload[0];
    app->tta_restored = (uint8_t)restore(app);
    if (app->tta_restored && app->tta_mode != 0u) {
        ta_tta_adapt_keep(&app->tta_adapt); /* the restored statistics are the first good state */
    }
    app->tta_ready = 1;
    resp->payload[0] = app->tta.n_exits;
    resp->payload[1] = app->tta_restored;
    resp->payload[2] = resp->payload[3] = 0;
    ta_wr32(resp->payload + 4, arena_end);
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

/* Back to the source: every head's statistics and the input's to the source's. Request: u8
 * flags, bit 0 persist (a tombstone, so the next boot starts from the source too). Response:
 * u32 revision of that tombstone (0 without persist). */
static ta_status_t cmd_adapt_reset(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 1 && (req->payload[0] & ~1u) == 0, TA_ERR_ARG);
    TA_ENSURE(app->tta_ready, TA_ERR_STATE);
    stats_to_source(app);
    if (app->tta_mode != 0u) {
        ta_tta_adapt_reset(&app->tta_adapt); /* the health check's window and last good state too */
    }
    app->tta_restored = 0;
    uint32_t revision = 0;
    if (req->payload[0] & 1u) {
        TA_TRY(store_open(app));
        ta_param_record_t rec;
        TA_TRY(ta_param_store_save(&app->tta_store, TA_PARAM_TAG_TTA_STATS, app->tta_crc, NULL, 0, &rec));
        revision = rec.revision;
    }
    ta_wr32(resp->payload, revision);
    resp->len = 4;
    return TA_OK;
}

/* Persist the running statistics: the input's, then every head's (mu[M], var[M] each; the
 * int8 affines follow from them), straight from the arena where they live, under
 * TA_PARAM_TAG_TTA_STATS. Response: u32 revision, u32 bytes, u64 instructions. */
static ta_status_t cmd_adapt_save(void *ctx, const ta_request_t *req, ta_response_t *resp)
{
    ta_app_t *app = APP(ctx);
    TA_ENSURE(req->len == 0, TA_ERR_ARG);
    TA_ENSURE(app->tta_ready, TA_ERR_STATE);
    TA_ENSURE(app->tta_stats_len > 0u, TA_ERR_UNSUPPORTED);
    TA_TRY(store_open(app));
    return ta_app_store_save(app, &app->tta_store, TA_PARAM_TAG_TTA_STATS, app->tta_crc,
                             (const uint8_t *)app->tta_stats, app->tta_stats_len, resp);
}

/* The adaptation loop's counters and its memory. Response: u32 rollbacks, u32 updates,
 * u32 paused (samples left), u32 samples, u32 arena_used (high-water mark of the whole arena
 * since SELECT: backbone, heads, statistics and the loop's work area), u32 state_bytes (the
 * adaptation state outside the arena: the adapting heads' and the input's structures, the
 * loop's own; their per-channel arrays are in the arena),
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
