#include "ta_cm_app.h"

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
