/*
 * Polled driver for the USART of STM32F7 and STM32H7 (the same register block:
 * RM0385 31.8 and RM0433 48.7; the H7 adds FIFOs, left disabled here, and a
 * prescaler, left at /1), plus GPIO alternate-function set-up (RM0385 6.4,
 * RM0433 11.4: identical layout).
 */
#ifndef TA_STM32_USART_H
#define TA_STM32_USART_H

#include <stdint.h>

#include "tinyadapt/ta_hal.h"

typedef struct {
    uintptr_t base;
    uint32_t clock_hz; /* filled by init: for read timeouts on the DWT counter */
} ta_stm32_usart_t;

/* Route `pin` of the GPIO port at `gpio_base` to alternate function `af` (very high speed, push-pull, pull-up). */
void ta_stm32_gpio_af(uintptr_t gpio_base, uint32_t pin, uint32_t af);

/* 8N1 at `baud` from a `kernel_hz` kernel clock; TX and RX enabled. */
void ta_stm32_usart_init(ta_stm32_usart_t *u, uint32_t kernel_hz, uint32_t baud);

/* ta_hal_t callbacks; ctx is a ta_stm32_usart_t. Read timeouts use DWT CYCCNT at TA_CLOCK_HZ. */
int32_t ta_stm32_usart_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms);
ta_status_t ta_stm32_usart_write(void *ctx, const uint8_t *buf, uint32_t len);
ta_status_t ta_stm32_usart_flush(void *ctx);

#endif /* TA_STM32_USART_H */
