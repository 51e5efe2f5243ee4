/*
 * The few Cortex-M core registers the ports touch, as named addresses.
 * Section numbers refer to the ARMv7-M Architecture Reference Manual
 * (ARM DDI 0403E) unless noted.
 */
#ifndef TA_CM_REGS_H
#define TA_CM_REGS_H

#include <stdint.h>

#define TA_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System Control Block (B3.2.2, table B3-4). */
#define TA_SCB_VTOR 0xE000ED08u  /* Vector Table Offset Register (B3.2.5) */
#define TA_SCB_AIRCR 0xE000ED0Cu /* Application Interrupt and Reset Control (B3.2.6) */
#define TA_SCB_CCR 0xE000ED14u   /* Configuration and Control Register (B3.2.8) */
#define TA_SCB_CCSIDR 0xE000ED80u /* Cache Size ID (B4.8.3) */
#define TA_SCB_CSSELR 0xE000ED84u /* Cache Size Selection (B4.8.5) */
#define TA_SCB_CPACR 0xE000ED88u /* Coprocessor Access Control (B3.2.20) */

#define TA_AIRCR_VECTKEY (0x05FAu << 16)
#define TA_AIRCR_SYSRESETREQ (1u << 2)
#define TA_CCR_DC (1u << 16) /* data cache enable (ARMv7-M with caches, B3.2.8) */
#define TA_CCR_IC (1u << 17) /* instruction cache enable */
#define TA_CPACR_CP10_CP11_FULL (0xFu << 20) /* full access to the FPU (CP10, CP11) */

/* Cache maintenance operations (B2.2.7, table B2-1). */
#define TA_CACHE_ICIALLU 0xE000EF50u /* invalidate all instruction caches to PoU */
#define TA_CACHE_DCISW 0xE000EF60u   /* invalidate data cache line by set/way */

/* Debug Exception and Monitor Control (C1.6.5): TRCENA gates the DWT. */
#define TA_DEMCR 0xE000EDFCu
#define TA_DEMCR_TRCENA (1u << 24)

/* Data Watchpoint and Trace unit (C1.8.7, table C1-21). */
#define TA_DWT_CTRL 0xE0001000u
#define TA_DWT_CYCCNT 0xE0001004u
#define TA_DWT_LAR 0xE0001FB0u /* Lock Access Register (Cortex-M7 TRM 9.2: writes ignored until unlocked) */
#define TA_DWT_CTRL_CYCCNTENA (1u << 0)
#define TA_DWT_LAR_KEY 0xC5ACCE55u

static inline void ta_dsb(void) { __asm__ volatile("dsb 0xF" ::: "memory"); }
static inline void ta_isb(void) { __asm__ volatile("isb 0xF" ::: "memory"); }

/* Start the DWT cycle counter (real boards; QEMU does not model it). */
static inline void ta_dwt_start(void)
{
    TA_REG32(TA_DEMCR) |= TA_DEMCR_TRCENA;
    TA_REG32(TA_DWT_LAR) = TA_DWT_LAR_KEY;
    TA_REG32(TA_DWT_CYCCNT) = 0;
    TA_REG32(TA_DWT_CTRL) |= TA_DWT_CTRL_CYCCNTENA;
}

static inline uint32_t ta_dwt_cycles(void) { return TA_REG32(TA_DWT_CYCCNT); }

/* Request a system reset (B3.2.6) and wait for it. */
static inline __attribute__((noreturn)) void ta_system_reset(void)
{
    ta_dsb();
    TA_REG32(TA_SCB_AIRCR) = TA_AIRCR_VECTKEY | (TA_REG32(TA_SCB_AIRCR) & 0x700u) | TA_AIRCR_SYSRESETREQ;
    ta_dsb();
    for (;;) {
    }
}

/* Cortex-M7 L1 caches (Cortex-M7 TRM 4.3 / ARMv7-M B2.2.7): invalidate, then
 * enable. Real M7 boards only: QEMU's an500 does not model the cache registers. */
void ta_cm7_enable_caches(void);

#endif /* TA_CM_REGS_H */
