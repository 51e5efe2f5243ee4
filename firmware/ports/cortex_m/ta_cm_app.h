/*
 * Glue between a Cortex-M port and the app: the RAM slot, arena and stack come
 * from the linker script (ta_cortex_m.ld), so a port only fills in its UART,
 * counter and reset and calls ta_cm_app_run().
 */
#ifndef TA_CM_APP_H
#define TA_CM_APP_H

#include "tinyadapt/ta_app.h"
#include "tinyadapt/ta_hal.h"

/**
 * Complete `hal` with the linked stack bounds (and the board/core names given
 * by the build), then run the app on the linked arena and RAM slot.
 * @return what ta_app_main returns (it returns only on failure)
 */
TA_CHECK_RESULT ta_status_t ta_cm_app_run(ta_hal_t *hal);

/* HAL callbacks every port with a DWT can use: the cycle counter (ta_dwt_start() first)
 * and a reset by SYSRESETREQ. */
uint32_t ta_cm_dwt_counter(void *ctx);
void ta_cm_system_reset(void *ctx);

/**
 * For ports whose counter is the DWT: fill `hal`'s counter and reset with the two above,
 * run the app, and reset the chip if the link ever fails. `hal` holds the port's UART.
 */
__attribute__((noreturn)) void ta_cm_serve_with_dwt(ta_hal_t *hal);

/* Busy-wait helper for ports: true once `ms` milliseconds have passed since
 * `start` on a counter running at `hz` (TA_HAL_WAIT_FOREVER never expires). */
static inline int ta_cm_timed_out(uint32_t now, uint32_t start, uint32_t ms, uint32_t hz)
{
    if (ms == TA_HAL_WAIT_FOREVER) {
        return 0;
    }
    const uint64_t limit = (uint64_t)ms * (hz / 1000u);
    return (uint64_t)(uint32_t)(now - start) >= (limit > 0xFFFFFFFFu ? 0xFFFFFFFFu : limit);
}

#endif /* TA_CM_APP_H */
