/*
 * Port for the nRF52840 DK (nRF52840, Cortex-M4F at 64 MHz). Register-level, no
 * vendor SDK. References: nRF52840 Product Specification v1.7 (PS), nRF52840 DK
 * user guide (UARTE0 pins of the J-Link virtual COM port).
 *
 *   clock    HFXO started for an accurate baud rate (PS 6.4.2); CPU at 64 MHz
 *   link     UARTE0 on P0.06 (TX) / P0.08 (RX), 115200 8N1, no flow control.
 *            EasyDMA: TX goes through a RAM bounce buffer (EasyDMA cannot read
 *            flash, PS 6.34.2); RX is polled one byte at a time (ENDRX, then
 *            STARTRX again; the UARTE's RX FIFO holds what arrives in between)
 *   counter  DWT CYCCNT: core cycles
 *   reset    SYSRESETREQ
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ta_cm_app.h"
#include "ta_cm_regs.h"

/* CLOCK (PS 6.4.7; base from 4.2.4 instantiation table). */
#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART (CLOCK_BASE + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED (CLOCK_BASE + 0x100u)

/* GPIO P0 (PS 6.9.2; base 0x50000000). */
#define P0_BASE 0x50000000u
#define P0_OUTSET (P0_BASE + 0x508u)
#define P0_PIN_CNF(n) (P0_BASE + 0x700u + 4u * (n))
#define PIN_CNF_OUTPUT 0x3u          /* DIR = output, INPUT = disconnect */
#define PIN_CNF_INPUT_PULLUP 0xCu    /* DIR = input, INPUT = connect, PULL = up */

/* UARTE0 (PS 6.34.9; base 0x40002000). */
#define UARTE0_BASE 0x40002000u
#define UARTE_TASKS_STARTRX 0x000u
#define UARTE_TASKS_STARTTX 0x008u
#define UARTE_EVENTS_ENDRX 0x110u
#define UARTE_EVENTS_ENDTX 0x120u
#define UARTE_EVENTS_ERROR 0x124u
#define UARTE_ERRORSRC 0x480u
#define UARTE_ENABLE 0x500u
#define UARTE_PSEL_RTS 0x508u
#define UARTE_PSEL_TXD 0x50Cu
#define UARTE_PSEL_CTS 0x510u
#define UARTE_PSEL_RXD 0x514u
#define UARTE_BAUDRATE 0x524u
#define UARTE_RXD_PTR 0x534u
#define UARTE_RXD_MAXCNT 0x538u
#define UARTE_TXD_PTR 0x544u
#define UARTE_TXD_MAXCNT 0x548u
#define UARTE_CONFIG 0x56Cu
#define UARTE_ENABLE_ON 8u
#define UARTE_BAUD_115200 0x01D60000u
#define PSEL_DISCONNECTED 0xFFFFFFFFu

#define TX_PIN 6u /* P0.06 */
#define RX_PIN 8u /* P0.08 */

#define UARTE(reg) TA_REG32(UARTE0_BASE + (reg))

static uint8_t g_rx_byte;
static uint8_t g_tx_buf[256];

static void uarte_init(void)
{
    TA_REG32(P0_OUTSET) = 1u << TX_PIN; /* idle high before the UARTE takes the pin */
    TA_REG32(P0_PIN_CNF(TX_PIN)) = PIN_CNF_OUTPUT;
    TA_REG32(P0_PIN_CNF(RX_PIN)) = PIN_CNF_INPUT_PULLUP;
    UARTE(UARTE_ENABLE) = 0;
    UARTE(UARTE_PSEL_TXD) = TX_PIN;
    UARTE(UARTE_PSEL_RXD) = RX_PIN;
    UARTE(UARTE_PSEL_RTS) = PSEL_DISCONNECTED;
    UARTE(UARTE_PSEL_CTS) = PSEL_DISCONNECTED;
    UARTE(UARTE_BAUDRATE) = UARTE_BAUD_115200;
    UARTE(UARTE_CONFIG) = 0; /* no parity, no flow control, 1 stop bit */
    UARTE(UARTE_ENABLE) = UARTE_ENABLE_ON;
    UARTE(UARTE_EVENTS_ENDRX) = 0;
    UARTE(UARTE_RXD_PTR) = (uint32_t)(uintptr_t)&g_rx_byte;
    UARTE(UARTE_RXD_MAXCNT) = 1;
    UARTE(UARTE_TASKS_STARTRX) = 1;
}

static int32_t uarte_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    const uint32_t start = ta_dwt_cycles();
    uint32_t n = 0;
    while (n < cap) {
        if (UARTE(UARTE_EVENTS_ERROR)) {
            UARTE(UARTE_EVENTS_ERROR) = 0;
            UARTE(UARTE_ERRORSRC) = UARTE(UARTE_ERRORSRC); /* write 1 to clear; the frame CRC catches it */
        }
        if (UARTE(UARTE_EVENTS_ENDRX)) {
            UARTE(UARTE_EVENTS_ENDRX) = 0;
            buf[n++] = g_rx_byte;
            UARTE(UARTE_TASKS_STARTRX) = 1;
        } else if (n > 0 || ta_cm_timed_out(ta_dwt_cycles(), start, timeout_ms, TA_CLOCK_HZ)) {
            break;
        }
    }
    return (int32_t)n;
}

static ta_status_t uarte_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    while (len > 0) {
        const uint32_t n = len < sizeof(g_tx_buf) ? len : (uint32_t)sizeof(g_tx_buf);
        memcpy(g_tx_buf, buf, n);
        UARTE(UARTE_EVENTS_ENDTX) = 0;
        UARTE(UARTE_TXD_PTR) = (uint32_t)(uintptr_t)g_tx_buf;
        UARTE(UARTE_TXD_MAXCNT) = n;
        UARTE(UARTE_TASKS_STARTTX) = 1;
        while (UARTE(UARTE_EVENTS_ENDTX) == 0) {
        }
        buf += n;
        len -= n;
    }
    return TA_OK;
}

int main(void)
{
    ta_dwt_start();
    TA_REG32(CLOCK_EVENTS_HFCLKSTARTED) = 0;
    TA_REG32(CLOCK_TASKS_HFCLKSTART) = 1;
    while (TA_REG32(CLOCK_EVENTS_HFCLKSTARTED) == 0) {
    }
    uarte_init();

    static ta_hal_t hal = {.ctx = NULL, .read = uarte_read, .write = uarte_write, .flush = NULL};
    /* no flush: uarte_write returns once ENDTX, when the last byte has left EasyDMA */
    ta_cm_serve_with_dwt(&hal);
}
