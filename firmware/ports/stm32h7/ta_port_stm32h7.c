/*
 * Port for the NUCLEO-H743ZI (STM32H743ZI, Cortex-M7 with double-precision FPU).
 * Register-level, no vendor SDK. References: RM0433 rev 8 (STM32H742/743/750/753
 * reference manual), UM2407 (STM32H7 Nucleo-144 user manual).
 *
 *   clock    HSI 64 MHz, as after reset (HSIDIV = 1, RM0433 8.7.2; VOS3 and the
 *            reset flash latency are valid at that speed, 4.3.8 table 17); the PLL
 *            is not started, and the power supply stays in its reset (LDO) setting
 *   memory   code in flash bank 1, everything else in AXI SRAM (0x24000000), which
 *            is clocked after reset; the DTCM is left unused
 *   link     USART3 on PD8 (TX) / PD9 (RX), AF7, 115200 8N1, polled, FIFOs off; the
 *            ST-LINK virtual COM port (UM2407 6.9)
 *   counter  DWT CYCCNT: core cycles
 *   reset    SYSRESETREQ
 *   caches   L1 I- and D-cache on (no DMA is used, so no coherence issue)
 */
#include <stddef.h>
#include <stdint.h>

#include "ta_cm_app.h"
#include "ta_cm_regs.h"
#include "ta_stm32_usart.h"

#define HSI_HZ 64000000u

/* RCC (RM0433 8.7; base from 2.3.2 table 8). */
#define RCC_BASE 0x58024400u
#define RCC_AHB4ENR (RCC_BASE + 0x0E0u)  /* 8.7.43: bit 3 GPIODEN */
#define RCC_APB1LENR (RCC_BASE + 0x0E8u) /* 8.7.45: bit 18 USART3EN */
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR_USART3EN (1u << 18)

/* GPIOD (RM0433 11.4; base from 2.3.2 table 8). */
#define GPIOD_BASE 0x58020C00u

/* USART3 (RM0433 48.7; base from 2.3.2 table 8). Kernel clock after reset:
 * rcc_pclk1 (RCC_D2CCIP2R.USART234578SEL = 000, 8.7.22) = HSI / D1CPRE / HPRE /
 * D2PPRE1, all dividers 1 after reset. */
#define USART3_BASE 0x40004800u

static ta_stm32_usart_t g_usart = {USART3_BASE, 0};

int main(void)
{
    ta_cm7_enable_caches();
    ta_dwt_start();

    TA_REG32(RCC_AHB4ENR) |= RCC_AHB4ENR_GPIODEN;
    TA_REG32(RCC_APB1LENR) |= RCC_APB1LENR_USART3EN;
    (void)TA_REG32(RCC_APB1LENR); /* read back: the clock is on before the first access */
    ta_stm32_gpio_af(GPIOD_BASE, 8, 7); /* PD8 USART3_TX, AF7 (DS12110 table 10) */
    ta_stm32_gpio_af(GPIOD_BASE, 9, 7); /* PD9 USART3_RX, AF7 */
    ta_stm32_usart_init(&g_usart, HSI_HZ, 115200u);

    static ta_hal_t hal = {
        .ctx = &g_usart,
        .read = ta_stm32_usart_read,
        .write = ta_stm32_usart_write,
        .flush = ta_stm32_usart_flush,
    };
    ta_cm_serve_with_dwt(&hal);
}
