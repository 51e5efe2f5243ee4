/*
 * Port for QEMU's Arm MPS2 boards: mps2-an386 (Cortex-M4F) and mps2-an500
 * (Cortex-M7). The same image layout runs on both; only -mcpu differs.
 *
 * Peripherals (QEMU hw/arm/mps2.c, Arm AN386/AN500 application notes):
 *   UART0   CMSDK APB UART at 0x40004000, polled (the host link)
 *   TIMER0  CMSDK APB timer at 0x40000000, free-running: the counter. With
 *           `-icount shift=7` QEMU retires one instruction per 128 ns of
 *           virtual time and the timer runs at the 25 MHz system clock, so
 *           one instruction = 3.2 ticks: instructions = ticks * 10 / 32.
 *   Semihosting (bkpt 0xAB) to exit QEMU with a status after a fault.
 *
 * NVM: the board's nvm region, backed by the host file named by the
 * semihosting argument nvm=PATH (ta_qemu_nvm.h); none without it.
 *
 * RAM slot: the start of RAM (0x20000000), so a blob can be placed before
 * boot with `-device loader,file=blob.bin,addr=0x20000000` and selected
 * with SELECT 1.
 */
#include <stddef.h>
#include <stdint.h>

#include "ta_cm_app.h"
#include "ta_cm_regs.h"
#include "ta_qemu_nvm.h"

#define MPS2_SYSCLK_HZ 25000000u

/* CMSDK APB UART (Arm DDI 0479C, Cortex-M System Design Kit TRM, 4.3). */
#define UART0_BASE 0x40004000u
#define UART_DATA 0x00u
#define UART_STATE 0x04u /* bit0 TX buffer full, bit1 RX buffer full */
#define UART_CTRL 0x08u  /* bit0 TX enable, bit1 RX enable */
#define UART_BAUDDIV 0x10u
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)

/* CMSDK APB timer (Arm DDI 0479C, 4.4): a 32-bit down-counter. */
#define TIMER0_BASE 0x40000000u
#define TIMER_CTRL 0x00u /* bit0 enable */
#define TIMER_VALUE 0x04u
#define TIMER_RELOAD 0x08u

#define UART(reg) TA_REG32(UART0_BASE + (reg))
#define TIMER(reg) TA_REG32(TIMER0_BASE + (reg))

/* Semihosting (Arm "Semihosting for AArch32 and AArch64", SYS_EXIT_EXTENDED). */
#define SEMIHOST_SYS_EXIT_EXTENDED 0x20u
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static __attribute__((noreturn)) void semihost_exit(uint32_t code)
{
    volatile uint32_t block[2] = {SEMIHOST_ADP_STOPPED_APPLICATION_EXIT, code};
    register uint32_t r0 __asm__("r0") = SEMIHOST_SYS_EXIT_EXTENDED;
    register volatile uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

void ta_port_fault(uint32_t ipsr)
{
    semihost_exit(0x80u + ipsr); /* QEMU exits with 128 + exception number */
}

static uint32_t timer_ticks(void *ctx)
{
    (void)ctx;
    return ~TIMER(TIMER_VALUE); /* counts down from 0xFFFFFFFF */
}

static int32_t uart_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    if (cap == 0) {
        return 0;
    }
    const uint32_t start = timer_ticks(NULL);
    while ((UART(UART_STATE) & UART_STATE_RXFULL) == 0) {
        if (ta_cm_timed_out(timer_ticks(NULL), start, timeout_ms, MPS2_SYSCLK_HZ)) {
            return 0;
        }
    }
    uint32_t n = 0;
    while (n < cap && (UART(UART_STATE) & UART_STATE_RXFULL) != 0) {
        buf[n++] = (uint8_t)UART(UART_DATA);
    }
    return (int32_t)n;
}

static ta_status_t uart_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    for (uint32_t i = 0; i < len; ++i) {
        while ((UART(UART_STATE) & UART_STATE_TXFULL) != 0) {
        }
        UART(UART_DATA) = buf[i];
    }
    return TA_OK;
}

static ta_status_t uart_flush(void *ctx)
{
    (void)ctx;
    while ((UART(UART_STATE) & UART_STATE_TXFULL) != 0) {
    }
    return TA_OK;
}

int main(void)
{
    UART(UART_BAUDDIV) = MPS2_SYSCLK_HZ / 115200u; /* QEMU ignores the rate; must be >= 16 */
    UART(UART_CTRL) = 0x3u;                        /* TX + RX enabled, no interrupts */
    TIMER(TIMER_CTRL) = 0;
    TIMER(TIMER_RELOAD) = 0xFFFFFFFFu;
    TIMER(TIMER_VALUE) = 0xFFFFFFFFu;
    TIMER(TIMER_CTRL) = 1u;

    static ta_hal_t hal = {
        .ctx = NULL,
        .read = uart_read,
        .write = uart_write,
        .flush = uart_flush,
        .counter = timer_ticks,
        .counter_mul = 10,
        .counter_div = 32,
        .counter_hz = MPS2_SYSCLK_HZ,
        .counter_unit = TA_HAL_COUNT_INSTRUCTIONS,
        .reset = NULL, /* RESET re-initialises the app in place */
    };
    hal.nvm = ta_qemu_nvm_init();
    const ta_status_t st = ta_cm_app_run(&hal);
    semihost_exit(st == TA_OK ? 0u : (uint32_t)(-st));
}
