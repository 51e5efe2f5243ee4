/*
 * Cortex-M start-up shared by every bare-metal port: the vector table, the
 * reset handler and the default fault handler. No IRQ is used (all drivers
 * poll), so the table holds only the 16 system exception entries.
 *
 * Reset_Handler: enable the FPU -> point VTOR here -> copy .data -> zero .bss
 * -> ta_port_init() -> main(). The linker script (ta_cortex_m.ld) defines the symbols below.
 */
#include <stdint.h>

#include "ta_cm_regs.h"

extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_hi[];

int main(void);
void Reset_Handler(void);
void ta_fault_handler(void);

/* Board hook run before main, after .data/.bss are ready (e.g. clocks). */
__attribute__((weak)) void ta_port_init(void) {}

/* Called on any unexpected exception; ports override it (QEMU exits). */
__attribute__((weak)) void ta_port_fault(uint32_t ipsr)
{
    (void)ipsr;
    for (;;) {
    }
}

void ta_fault_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ta_port_fault(ipsr & 0x1FFu);
    for (;;) {
    }
}

typedef void (*ta_vector_t)(void);

typedef struct {
    void *initial_sp;
    ta_vector_t handlers[15];
} ta_vector_table_t;

__attribute__((section(".isr_vector"), used)) const ta_vector_table_t ta_vectors = {
    __stack_hi,
    {
        Reset_Handler,    /* 1 Reset */
        ta_fault_handler, /* 2 NMI */
        ta_fault_handler, /* 3 HardFault */
        ta_fault_handler, /* 4 MemManage */
        ta_fault_handler, /* 5 BusFault */
        ta_fault_handler, /* 6 UsageFault */
        0, 0, 0, 0,       /* 7-10 reserved */
        ta_fault_handler, /* 11 SVCall */
        ta_fault_handler, /* 12 DebugMonitor */
        0,                /* 13 reserved */
        ta_fault_handler, /* 14 PendSV */
        ta_fault_handler, /* 15 SysTick */
    },
};

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* FPU first: -mfloat-abi=hard code may use it anywhere after this. */
    TA_REG32(TA_SCB_CPACR) |= TA_CPACR_CP10_CP11_FULL;
    ta_dsb();
    ta_isb();
    /* Faults must reach our table even when the chip booted from an alias (STM32F7: ITCM). */
    TA_REG32(TA_SCB_VTOR) = (uint32_t)(uintptr_t)&ta_vectors;
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }
    ta_port_init();
    (void)main();
    for (;;) {
    }
}

void ta_cm7_enable_caches(void)
{
    ta_dsb();
    ta_isb();
    TA_REG32(TA_CACHE_ICIALLU) = 0;
    ta_dsb();
    ta_isb();
    TA_REG32(TA_SCB_CCR) |= TA_CCR_IC;
    ta_dsb();
    ta_isb();

    TA_REG32(TA_SCB_CSSELR) = 0; /* level 1 data cache */
    ta_dsb();
    const uint32_t ccsidr = TA_REG32(TA_SCB_CCSIDR);
    const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    /* Cortex-M7: 32-byte lines (set field at bit 5), 4 ways (way field at bit 30). */
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            TA_REG32(TA_CACHE_DCISW) = (set << 5) | (way << 30);
        }
    }
    ta_dsb();
    TA_REG32(TA_SCB_CCR) |= TA_CCR_DC;
    ta_dsb();
    ta_isb();
}
