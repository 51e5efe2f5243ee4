/*
 * Port for the STM32F746G-DISCO (STM32F746NG, Cortex-M7 with single-precision FPU).
 * Register-level, no vendor SDK. References: RM0385 rev 8 (STM32F75xxx/74xxx
 * reference manual), UM1907 (32F746GDISCOVERY user manual).
 *
 *   clock    HSI 16 MHz, as after reset (flash 0 wait states suffice, RM0385 3.3.2);
 *            the PLL is not started
 *   link     USART1 on PA9 (TX) / PB7 (RX), AF7, 115200 8N1, polled: the pins wired to
 *            the ST-LINK virtual COM port (UM1907, "Virtual COM port"; board schematic
 *            MB1191). PA10, USART1's other RX pin, is the USB OTG FS ID line on this board.
 *   counter  DWT CYCCNT: core cycles
 *   reset    SYSRESETREQ
 *   caches   L1 I- and D-cache on (no DMA is used, so no coherence issue)
 */
#include <stddef.h>
#include <stdint.h>

#include "ta_cm_app.h"
#include "ta_cm_regs.h"
#include "ta_stm32_usart.h"

#define HSI_HZ 16000000u

/* RCC (RM0385 5.3; base from 2.2.2 table 1). */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR (RCC_BASE + 0x30u) /* 5.3.10: bit 0 GPIOAEN, bit 1 GPIOBEN */
#define RCC_APB2ENR (RCC_BASE + 0x44u) /* 5.3.14: bit 4 USART1EN */
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB2ENR_USART1EN (1u << 4)

/* GPIOA, GPIOB (RM0385 6.4; bases from 2.2.2 table 1). */
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u

/* USART1 (RM0385 31.8; base from 2.2.2 table 1). Kernel clock after reset: PCLK2
 * (RCC_DCKCFGR2.USART1SEL = 00, 5.3.26) = HSI with the APB2 prescaler at 1. */
#define USART1_BASE 0x40011000u

static ta_stm32_usart_t g_usart = {USART1_BASE, 0};

int main(void)
{
    ta_cm7_enable_caches();
    ta_dwt_start();

    TA_REG32(RCC_AHB1ENR) |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    TA_REG32(RCC_APB2ENR) |= RCC_APB2ENR_USART1EN;
    (void)TA_REG32(RCC_APB2ENR); /* read back: the clock is on before the first access (RM0385 5.2.13) */
    ta_stm32_gpio_af(GPIOA_BASE, 9, 7); /* PA9 USART1_TX, AF7 (DS10916 table 12) */
    ta_stm32_gpio_af(GPIOB_BASE, 7, 7); /* PB7 USART1_RX, AF7 */
    ta_stm32_usart_init(&g_usart, HSI_HZ, 115200u);

    static ta_hal_t hal = {
        .ctx = &g_usart,
        .read = ta_stm32_usart_read,
        .write = ta_stm32_usart_write,
        .flush = ta_stm32_usart_flush,
    };
    ta_cm_serve_with_dwt(&hal);
}
