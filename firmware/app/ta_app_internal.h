/*
 * The app's state, shared by ta_app_main.c (lifecycle) and ta_commands.c
 * (handlers). Not part of any public API.
 */
#ifndef TA_APP_INTERNAL_H
#define TA_APP_INTERNAL_H

#include <stdint.h>

#include "ta_app_config.h"
#include "ta_server.h"
#include "tinyadapt/ta_app.h"
#include "tinyadapt/ta_engine.h"
#include "tinyadapt/ta_hal.h"
#include "tinyadapt/ta_param_store.h"
#include "tinyadapt/ta_train.h"
#include "tinyadapt/ta_tta.h"

typedef struct {
    uint16_t opcode;
    uint32_t count;  /* counter units (instructions on QEMU) spent in the op */
    uint32_t update; /* of which in a training step's parameter update (TA_HOOK_UPDATE) */
} ta_profile_entry_t;

typedef struct ta_app {
    const ta_hal_t *hal;
    ta_app_config_t cfg;
    ta_server_t server;

    /* The selected model (slot >= 0) bound to the arena. */
    ta_model_t model;
    ta_engine_t engine;
    int8_t slot;

    /* LOAD_BEGIN .. LOAD_END into the RAM slot. */
    uint8_t load_active;
    uint32_t load_size;
    uint32_t load_crc;

    /* Counter extended to 64 bits: every read adds the 32-bit delta. */
    uint32_t counter_last;
    uint64_t counter_ticks;
    uint64_t op_start;
    uint64_t op_update; /* when the current op's parameter update started, 0: not in one */

    /* Per-op profile of the last invoke. */
    uint16_t n_recorded;  /* entries written by the hook */
    uint16_t n_profiled;  /* entries INVOKE reported (0 unless asked) */
    ta_profile_entry_t profile[TA_APP_MAX_PROFILE_OPS];

    uint32_t invokes;
    uint8_t reset_requested;

    /* Training (ta_train_commands.c): bound at SELECT when the model has a TRAIN section.
     * Parameter RAM follows the model's arena (the training-step plan) in the app arena. */
    ta_trainer_t trainer;
    uint8_t train_ready;
    uint8_t restored;          /* stored parameters were applied at SELECT */
    int8_t restore_status;     /* ta_status_t of that restore (TA_ERR_STATE: none stored for this model) */
    uint8_t *param_ram;
    uint32_t param_ram_size;
    uint32_t train_steps;
    ta_param_store_t train_store; /* first half of the NVM region; the second is for TTA heads */
    uint8_t store_ready;

    /* Early-exit TTA (ta_tta_commands.c): the selected RAM-slot blob is the backbone, the
     * exit heads follow it in the slot; their engines share the arena above the backbone's. */
    ta_tta_t tta;
    ta_model_t tta_models[TA_TTA_MAX_EXITS];
    ta_engine_t tta_engines[TA_TTA_MAX_EXITS];
    ta_tta_norm_t tta_norms[TA_TTA_MAX_EXITS];
    ta_tta_input_t tta_input;  /* "input" adaptation (trailer's adapt section) */
    ta_tta_adapt_t tta_adapt;  /* the adaptation loop with its health check (ADAPT_SELECT mode 1-3) */
    uint8_t tta_mode;          /* ADAPT_SELECT mode: bit 0 norm, bit 1 input */
    uint8_t tta_ready;
    uint8_t tta_restored;      /* ADAPT_SELECT applied stored statistics */
    uint32_t tta_crc;          /* identifies backbone + heads + exit table in the store */
    ta_param_store_t tta_store; /* second half of the NVM region (the first is training's) */
    float *tta_stats;          /* in the arena: the input's mu, var then every head's (ADAPT_SAVE's image) */
    uint32_t tta_stats_len;    /* bytes */
} ta_app_t;

/* The command set for every code in protocol version 1. */
extern const ta_command_set_t ta_core_commands;

/* TRAIN_* commands (0x40-0x4F). */
extern const ta_command_set_t ta_train_commands;

/* ADAPT_* commands (0x50-0x5F). */
extern const ta_command_set_t ta_tta_commands;

/* After SELECT's engine init: bind the trainer and restore the stored parameters (no-op
 * for a model without a TRAIN section). Never fails the SELECT: TRAIN_INFO tells. */
void ta_app_train_select(ta_app_t *app);

/* At start-up: open the parameter store on the board's NVM, if it has one. */
void ta_app_train_init(ta_app_t *app);

/* The counter in 64-bit ticks since start-up, and ticks converted to counter units. */
uint64_t ta_app_counter(ta_app_t *app);
uint64_t ta_app_counter_units(const ta_app_t *app, uint64_t ticks);

/* Fill [lo, hi) with the paint word (high-water marks). */
void ta_app_paint(uintptr_t lo, uintptr_t hi);

/* The compiled-in model (slot 0): its blob and size, NULL / 0 when none. */
const uint8_t *ta_builtin_model(uint32_t *size);

/* Feature bits of this build (HELLO). */
uint32_t ta_app_features(const ta_app_t *app);

/* Select slot 0 or 1: load, repaint the arena, init the engine. */
TA_CHECK_RESULT ta_status_t ta_app_select(ta_app_t *app, uint8_t slot);

/* Engine hook that records each op's counter units in app->profile (summed per op index;
 * the caller clears app->profile / n_recorded first and publishes n_profiled after). */
void ta_app_profile_hook(void *ctx, uint16_t op_index, uint16_t opcode, int after);

/* Run the selected model once; *count gets the counter units it took. */
TA_CHECK_RESULT ta_status_t ta_app_invoke(ta_app_t *app, int profile, uint64_t *count);

/* PROFILE_READ and TRAIN_PROFILE_READ: entries [first, first + count) of the last profiled run,
 * 8 bytes each (opcode, 0, count), 12 with the update share appended. */
TA_CHECK_RESULT ta_status_t ta_app_profile_read(const ta_app_t *app, const ta_request_t *req,
                                                ta_response_t *resp, int with_update);

/* SAVE and ADAPT_SAVE: one atomic record in `store`, timed. Response: u32 revision, u32 bytes,
 * u64 instructions (counter units) the save took. */
TA_CHECK_RESULT ta_status_t ta_app_store_save(ta_app_t *app, ta_param_store_t *store, uint16_t tag,
                                              uint32_t model_crc, const uint8_t *data, uint32_t len,
                                              ta_response_t *resp);

/* High-water marks in bytes (scans the painted areas). */
uint32_t ta_app_arena_used(const ta_app_t *app);
uint32_t ta_app_stack_used(const ta_app_t *app);

#endif /* TA_APP_INTERNAL_H */
