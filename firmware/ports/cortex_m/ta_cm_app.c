#include "ta_cm_app.h"

#include "ta_cm_regs.h"

#include <stddef.h>
#include <stdint.h>

#ifndef TA_BOARD_NAME
#define TA_BOARD_NAME "cortex-m"
#endif
#ifndef TA_CORE_NAME
#define TA_CORE_NAME "cortex-m"
#endif

extern uint8_t __arena_start[], __arena_end[];
extern uint8_t __ram_slot_start[], __ram_slot_end[];
extern uint8_t __stack_lo[], __stack_hi[];
extern uint8_t __frame_origin[], __frame_size[]; /* linker symbols: an address and a size */

ta_status_t ta_cm_app_run(ta_hal_t *hal)
{
    hal->board_name = TA_BOARD_NAME;
    hal->core_name = TA_CORE_NAME;
    hal->stack_lo = (uintptr_t)__stack_lo;
    hal->stack_hi = (uintptr_t)__stack_hi;
    const uintptr_t slot_lo = (uintptr_t)__ram_slot_start;
    const uintptr_t slot_hi = (uintptr_t)__ram_slot_end;
    const ta_app_config_t cfg = {
        .arena = __arena_start,
        .arena_size = (uint32_t)((uintptr_t)__arena_end - (uintptr_t)__arena_start),
        .ram_slot = slot_hi > slot_lo ? __ram_slot_start : NULL,
        .ram_slot_size = (uint32_t)(slot_hi - slot_lo),
        .frame = (uintptr_t)__frame_size > 0 ? __frame_origin : NULL,
        .frame_size = (uint32_t)(uintptr_t)__frame_size,
    };
    return ta_app_main(hal, &cfg);
}

uint32_t ta_cm_dwt_counter(void *ctx)
{
    (void)ctx;
    return ta_dwt_cycles();
}

void ta_cm_system_reset(void *ctx)
{
    (void)ctx;
    ta_system_reset();
}

void ta_cm_serve_with_dwt(ta_hal_t *hal)
{
    hal->counter = ta_cm_dwt_counter;
    hal->counter_mul = 1;
    hal->counter_div = 1;
    hal->counter_hz = TA_CLOCK_HZ;
    hal->counter_unit = TA_HAL_COUNT_CYCLES;
    hal->reset = ta_cm_system_reset;
    const ta_status_t st = ta_cm_app_run(hal);
    (void)st;
    ta_system_reset(); /* the link failed: start over */
}
