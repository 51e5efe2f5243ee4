/*
 * App lifecycle and the operations the command handlers share: model
 * selection, timed invoke with the per-op hook, high-water marks.
 */
#include <stddef.h>
#include <string.h>

#include "ta_app_internal.h"
#include "tinyadapt/ta_model.h"

static ta_app_t g_app; /* static, not on the stack: the stack is measured */

static const ta_command_set_t *const k_command_sets[] = {
    &ta_core_commands,
    &ta_train_commands,
    &ta_tta_commands,
    /* ADAPT_* sets go here. */
};

uint32_t ta_app_features(const ta_app_t *app)
{
    uint32_t f = TA_FEATURE_PROFILE | TA_FEATURE_TRAIN | TA_FEATURE_ADAPT;
    if (app->store_ready) {
        f |= TA_FEATURE_NVM;
    }
    switch (app->hal->counter != NULL ? app->hal->counter_unit : TA_HAL_COUNT_NONE) {
    case TA_HAL_COUNT_INSTRUCTIONS: f |= TA_FEATURE_INSTR_COUNTER; break;
    case TA_HAL_COUNT_CYCLES: f |= TA_FEATURE_CYCLE_COUNTER; break;
    case TA_HAL_COUNT_NANOSECONDS: f |= TA_FEATURE_TIME_COUNTER; break;
    default: break;
    }
#ifdef TA_KERNELS_DSP
    f |= TA_FEATURE_DSP_KERNELS;
#endif
    uint32_t size;
    if (ta_builtin_model(&size) != NULL) {
        f |= TA_FEATURE_BUILTIN_MODEL;
    }
    return f;
}

/* ---- counter ---------------------------------------------------------- */

/* Ticks since start-up, 64 bits wide as long as reads are < 2^32 ticks apart. */
static uint64_t counter_now(ta_app_t *app)
{
    const ta_hal_t *hal = app->hal;
    if (hal->counter == NULL) {
        return 0;
    }
    const uint32_t raw = hal->counter(hal->ctx);
    app->counter_ticks += (uint32_t)(raw - app->counter_last);
    app->counter_last = raw;
    return app->counter_ticks;
}

static uint64_t ticks_to_units(const ta_app_t *app, uint64_t ticks)
{
    const ta_hal_t *hal = app->hal;
    if (hal->counter_div == 0) {
        return ticks;
    }
    /* Round to nearest: a delta of N instructions reads as 3.2 N +- 1 ticks on QEMU
     * (where the interval starts within a tick varies), i.e. N +- 0.32 after scaling,
     * so rounding makes the count exact and repeatable. */
    return (ticks * hal->counter_mul + hal->counter_div / 2u) / hal->counter_div;
}

/* Engine hook: time each op. Installed only for a profiled invoke, so an ordinary
 * invoke's count is the invoke itself (two timer reads and a 64-bit divide per op cost
 * 155-360 instructions each). Without it the counter is read only around the invoke, which
 * the 64-bit extension covers as long as one invoke takes < 2^32 ticks (about 1.3 G
 * instructions on QEMU; 2^32 cycles on a DWT). */
void ta_app_profile_hook(void *ctx, uint16_t op_index, uint16_t opcode, int after)
{
    ta_app_t *app = (ta_app_t *)ctx;
    if (after == TA_HOOK_UPDATE) {
        app->op_update = counter_now(app);
        return;
    }
    if (!after) {
        app->op_start = counter_now(app);
        app->op_update = 0;
        return;
    }
    const uint64_t now = counter_now(app);
    const uint64_t spent = now - app->op_start;
    if (op_index < TA_APP_MAX_PROFILE_OPS) {
        /* Summed: a patch stage runs each of its ops once per tile. */
        ta_profile_entry_t *e = &app->profile[op_index];
        const uint64_t units = ticks_to_units(app, spent) + e->count;
        e->opcode = opcode;
        e->count = units > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)units;
        if (app->op_update != 0) {
            const uint64_t upd = ticks_to_units(app, now - app->op_update) + e->update;
            e->update = upd > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)upd;
        }
        if (op_index >= app->n_recorded) {
            app->n_recorded = (uint16_t)(op_index + 1u);
        }
    }
}

ta_status_t ta_app_invoke(ta_app_t *app, int profile, uint64_t *count)
{
    TA_ENSURE(app->slot >= 0, TA_ERR_STATE);
    app->n_recorded = 0;
    app->n_profiled = 0;
    memset(app->profile, 0, sizeof(app->profile));
    ta_engine_set_hook(&app->engine, profile ? ta_app_profile_hook : NULL, app);
    const uint64_t t0 = counter_now(app);
    const ta_status_t st = ta_engine_invoke(&app->engine);
    const uint64_t t1 = counter_now(app);
    ta_engine_set_hook(&app->engine, NULL, NULL);
    app->invokes++;
    *count = ticks_to_units(app, t1 - t0);
    if (st == TA_OK && profile) {
        app->n_profiled = app->n_recorded;
    }
    return st;
}

uint64_t ta_app_counter(ta_app_t *app) { return counter_now(app); }

uint64_t ta_app_counter_units(const ta_app_t *app, uint64_t ticks) { return ticks_to_units(app, ticks); }

/* ---- painting and high-water marks ------------------------------------ */

static void paint_words(uintptr_t lo, uintptr_t hi)
{
    lo = (lo + 3u) & ~(uintptr_t)3u;
    for (volatile uint32_t *p = (volatile uint32_t *)lo; (uintptr_t)(p + 1) <= hi; ++p) {
        *p = TA_APP_PAINT_WORD;
    }
}

void ta_app_paint(uintptr_t lo, uintptr_t hi) { paint_words(lo, hi); }

uint32_t ta_app_arena_used(const ta_app_t *app)
{
    /* Highest word that no longer holds the paint, counted from the arena base. */
    const uint32_t *base = (const uint32_t *)(const void *)app->cfg.arena;
    uint32_t words = app->cfg.arena_size / 4u;
    while (words > 0 && base[words - 1u] == TA_APP_PAINT_WORD) {
        --words;
    }
    return words * 4u;
}

/* Paint the unused stack below the caller's frame (minus a margin for this function). */
static __attribute__((noinline)) void paint_stack(const ta_hal_t *hal)
{
    volatile uint32_t marker = 0;
    const uintptr_t here = (uintptr_t)&marker;
    if (hal->stack_hi <= hal->stack_lo || here <= hal->stack_lo + 64u || here > hal->stack_hi) {
        return;
    }
    paint_words(hal->stack_lo, here - 64u);
}

uint32_t ta_app_stack_used(const ta_app_t *app)
{
    const ta_hal_t *hal = app->hal;
    if (hal->stack_hi <= hal->stack_lo) {
        return 0;
    }
    const uint32_t *p = (const uint32_t *)((hal->stack_lo + 3u) & ~(uintptr_t)3u);
    while ((uintptr_t)(p + 1) <= hal->stack_hi && *p == TA_APP_PAINT_WORD) {
        ++p;
    }
    return (uint32_t)(hal->stack_hi - (uintptr_t)p);
}

/* ---- model selection -------------------------------------------------- */

/* Inputs the model keeps outside the arena go one after another into the board's frame
 * memory; INPUT_WRITE then writes them there through ta_engine_input. */
static ta_status_t bind_external_inputs(ta_app_t *app)
{
    uint32_t used = 0;
    for (uint16_t i = 0; i < app->model.header->n_inputs; ++i) {
        const ta_tensor_rec_t *t = &app->model.tensors[app->model.inputs[i]];
        if (t->kind != TA_TENSOR_EXTERNAL) {
            continue;
        }
        TA_ENSURE(app->cfg.frame != NULL && t->size <= app->cfg.frame_size - used, TA_ERR_ARENA);
        TA_TRY(ta_engine_bind_input(&app->engine, i, app->cfg.frame + used, t->size));
        used += (t->size + 15u) & ~15u;
        used = used < app->cfg.frame_size ? used : app->cfg.frame_size;
    }
    return TA_OK;
}

ta_status_t ta_app_select(ta_app_t *app, uint8_t slot)
{
    const uint8_t *blob;
    uint32_t size;
    app->slot = -1; /* whatever happens below, a failed SELECT leaves nothing selected */
    app->train_ready = 0;
    app->restored = 0;
    app->tta_ready = 0;
    app->n_recorded = 0;
    app->n_profiled = 0;
    if (slot == TA_SLOT_BUILTIN) {
        blob = ta_builtin_model(&size);
        TA_ENSURE(blob != NULL, TA_ERR_UNSUPPORTED);
    } else if (slot == TA_SLOT_RAM) {
        TA_ENSURE(app->cfg.ram_slot != NULL, TA_ERR_UNSUPPORTED);
        TA_ENSURE(!app->load_active, TA_ERR_STATE);
        blob = app->cfg.ram_slot;
        size = app->cfg.ram_slot_size;
    } else {
        return TA_ERR_ARG;
    }
    memset(&app->engine, 0, sizeof(app->engine));
    TA_TRY(ta_model_load(&app->model, blob, size));
    /* Repaint so arena_used reports this model's footprint, not an earlier one's. */
    paint_words((uintptr_t)app->cfg.arena, (uintptr_t)app->cfg.arena + app->cfg.arena_size);
    TA_TRY(ta_engine_init(&app->engine, &app->model, app->cfg.arena, app->cfg.arena_size));
    TA_TRY(bind_external_inputs(app));
    app->slot = (int8_t)slot;
    ta_app_train_select(app);
    return TA_OK;
}

/* ---- lifecycle -------------------------------------------------------- */

static ta_status_t app_init(ta_app_t *app, const ta_hal_t *hal, const ta_app_config_t *cfg)
{
    memset(app, 0, sizeof(*app));
    app->hal = hal;
    app->cfg = *cfg;
    app->slot = -1;
    if (hal->counter != NULL) {
        app->counter_last = hal->counter(hal->ctx);
    }
    paint_words((uintptr_t)cfg->arena, (uintptr_t)cfg->arena + cfg->arena_size);
    ta_app_train_init(app);
    TA_TRY(ta_server_init(&app->server, hal, k_command_sets,
                          (uint8_t)(sizeof(k_command_sets) / sizeof(k_command_sets[0])), app));
    uint32_t size;
    if (ta_builtin_model(&size) != NULL) {
        /* A bad compiled-in model is reported by an explicit SELECT 0 later. */
        const ta_status_t st = ta_app_select(app, TA_SLOT_BUILTIN);
        (void)st;
    }
    return TA_OK;
}

ta_status_t ta_app_main(const ta_hal_t *hal, const ta_app_config_t *cfg)
{
    TA_ENSURE(hal != NULL && cfg != NULL && hal->read != NULL && hal->write != NULL, TA_ERR_ARG);
    TA_ENSURE(cfg->arena != NULL && ((uintptr_t)cfg->arena & (TA_ARENA_ALIGN - 1u)) == 0, TA_ERR_ARG);
    TA_ENSURE(cfg->ram_slot == NULL || ((uintptr_t)cfg->ram_slot & 15u) == 0, TA_ERR_ARG);
    TA_ENSURE(cfg->frame == NULL || ((uintptr_t)cfg->frame & 15u) == 0, TA_ERR_ARG);
    for (;;) {
        paint_stack(hal); /* at start-up and after every in-place RESET */
        TA_TRY(app_init(&g_app, hal, cfg));
        TA_TRY(ta_server_run(&g_app.server));
        if (!g_app.reset_requested) {
            return TA_OK;
        }
        if (hal->reset != NULL) {
            hal->reset(hal->ctx); /* does not return */
        }
    }
}
