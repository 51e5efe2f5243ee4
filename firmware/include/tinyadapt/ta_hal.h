/*
 * The board HAL: what the portable app (firmware/app) needs from a board.
 *
 * A port (firmware/ports/<port>/) fills one `ta_hal_t` with function pointers
 * and an opaque context, then calls ta_app_main() with it. The app never
 * touches a register: everything board-specific goes through this struct.
 *
 *   port main()                         app
 *   ----------------------------------  ----------------------------------
 *   clocks, UART, counter init
 *   static ta_hal_t hal = {...};
 *   ta_app_main(&hal, &cfg)  ------->   read / write / flush  (serial link)
 *                                       counter               (profiling)
 *                                       reset                 (RESET cmd)
 *
 * Lifetime: the HAL and its context must outlive ta_app_main (in practice,
 * static storage). All functions are called from one thread; none is called
 * from an interrupt.
 */
#ifndef TA_HAL_H
#define TA_HAL_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Timeout value meaning "block until at least one byte arrives". */
#define TA_HAL_WAIT_FOREVER 0xFFFFFFFFu

/* What one counter unit (after counter_mul / counter_div) measures. */
typedef enum {
    TA_HAL_COUNT_NONE = 0,         /* no counter: counter() returns 0 */
    TA_HAL_COUNT_INSTRUCTIONS = 1, /* retired instructions (QEMU -icount) */
    TA_HAL_COUNT_CYCLES = 2,       /* core clock cycles (DWT CYCCNT) */
    TA_HAL_COUNT_NANOSECONDS = 3   /* wall-clock time (POSIX port) */
} ta_hal_count_unit_t;

/*
 * Non-volatile memory: a region of flash (or a file, on QEMU and POSIX) the
 * parameter store (ta_param_store.h) keeps adapted parameters in. Flash rules
 * apply: erase() sets one page to 0xFF; program() may only write units that
 * are still erased since the last erase (each unit once), `prog_unit`-aligned
 * offsets and lengths; a power cut may leave the page being erased or the
 * units being programmed in any state, and nothing else.
 * Offsets are relative to the region start.
 */
typedef struct ta_nvm {
    void *ctx;
    uintptr_t base;      /* where the region is on the device (for humans; 0 if not mapped) */
    uint32_t size;       /* region bytes, a multiple of page_size */
    uint32_t page_size;  /* erase unit, a power of two */
    uint32_t prog_unit;  /* program granularity: 1, 2, 4, 8, 16 or 32 bytes */
    ta_status_t (*erase)(void *ctx, uint32_t offset);
    ta_status_t (*program)(void *ctx, uint32_t offset, const uint8_t *data, uint32_t len);
    ta_status_t (*read)(void *ctx, uint32_t offset, uint8_t *data, uint32_t len);
} ta_nvm_t;

typedef struct ta_hal {
    void *ctx; /* passed to every function below */

    /**
     * Read up to `cap` bytes into `buf`, waiting at most `timeout_ms` for the
     * first one (TA_HAL_WAIT_FOREVER: no limit); returns as soon as at least
     * one byte is read and no more are immediately available.
     * @return bytes read (0 on timeout), or a negative ta_status_t when the
     *         link is gone for good (TA_ERR_STATE: the stream was closed)
     */
    int32_t (*read)(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms);

    /** Queue `len` bytes for sending; blocks while the transmitter is busy. */
    ta_status_t (*write)(void *ctx, const uint8_t *buf, uint32_t len);

    /** Block until every written byte has left the device (may be NULL). */
    ta_status_t (*flush)(void *ctx);

    /**
     * Free-running 32-bit up-counter (wraps modulo 2^32). Multiply a tick
     * delta by counter_mul / counter_div to get `counter_unit`s; e.g. QEMU
     * mps2 with -icount shift=7: 3.2 timer ticks per instruction, so
     * mul = 10, div = 32. NULL when the board has no counter.
     */
    uint32_t (*counter)(void *ctx);
    uint32_t counter_mul;
    uint32_t counter_div;
    uint32_t counter_hz; /* ticks per second of wall time, 0 if unknown */
    uint8_t counter_unit; /* ta_hal_count_unit_t */

    /**
     * Restart the device after a RESET command (the response has already
     * been flushed). Does not return. NULL: the app re-initialises itself in
     * place (QEMU, POSIX).
     */
    void (*reset)(void *ctx);

    const char *board_name; /* e.g. "qemu-an386", at most 255 bytes */
    const char *core_name;  /* e.g. "cortex-m4", at most 255 bytes */

    /* Stack bounds for the high-water mark: [stack_lo, stack_hi), the stack
     * grows down from stack_hi. Both 0 when unknown (METRICS reports 0). */
    uintptr_t stack_lo;
    uintptr_t stack_hi;

    /* The board's NVM region for saved parameters; NULL when it has none (SAVE is then
     * TA_ERR_UNSUPPORTED). */
    const ta_nvm_t *nvm;
} ta_hal_t;

#endif /* TA_HAL_H */
