/*
 * The device application: serves the serial protocol (docs/PROTOCOL.md)
 * over a board HAL. A port's main() sets up the board and calls
 * ta_app_main() once.
 *
 * The port owns the two big RAM areas and hands them over here:
 *
 *   ram_slot  +------------------------+  a model blob written by LOAD_* or
 *             | model blob (slot 1)    |  placed by a debugger / emulator
 *             +------------------------+  loader; read in place by the engine
 *   arena     +------------------------+  activations of the selected model;
 *             | engine arena           |  painted with TA_APP_PAINT_WORD so
 *             +------------------------+  METRICS can report its high-water mark
 *
 * Slot 0 is the model compiled into the image (TA_MODEL_HEADER, see
 * app/ta_builtin_model.c); at start-up it is selected when present.
 */
#ifndef TA_APP_H
#define TA_APP_H

#include <stdint.h>

#include "tinyadapt/ta_hal.h"
#include "tinyadapt/ta_status.h"

typedef struct {
    uint8_t *arena;         /* TA_ARENA_ALIGN-aligned */
    uint32_t arena_size;
    uint8_t *ram_slot;      /* 16-byte aligned; NULL when the board has none */
    uint32_t ram_slot_size;
    uint8_t *frame;         /* external memory for inputs a model keeps outside the arena (a
                               camera frame); 16-byte aligned; NULL when the board has none */
    uint32_t frame_size;
} ta_app_config_t;

/**
 * Serve the protocol until the link fails. RESET re-initialises the app in
 * place, or calls hal->reset when the port provides one.
 * @return only on failure: TA_ERR_ARG (bad hal/cfg), or the HAL's status
 *         when the link is gone (e.g. the POSIX port's stream was closed)
 */
TA_CHECK_RESULT ta_status_t ta_app_main(const ta_hal_t *hal, const ta_app_config_t *cfg);

#endif /* TA_APP_H */
