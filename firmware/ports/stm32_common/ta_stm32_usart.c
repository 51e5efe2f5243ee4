#include "ta_stm32_usart.h"

#include "ta_cm_app.h"
#include "ta_cm_regs.h"

#ifndef TA_CLOCK_HZ
#error "TA_CLOCK_HZ (core clock, from boards/<board>.toml clock_hz) must be defined"
#endif

/* GPIO registers (RM0385 6.4.1-6.4.10, RM0433 11.4.1-11.4.10). */
#define GPIO_MODER 0x00u
#define GPIO_OTYPER 0x04u
#define GPIO_OSPEEDR 0x08u
#define GPIO_PUPDR 0x0Cu
#define GPIO_AFRL 0x20u
#define GPIO_AFRH 0x24u

/* USART registers (RM0385 31.8.1-31.8.12, RM0433 48.7.1-48.7.15). */
#define USART_CR1 0x00u
#define USART_CR2 0x04u
#define USART_CR3 0x08u
#define USART_BRR 0x0Cu
#define USART_ISR 0x1Cu
#define USART_ICR 0x20u
#define USART_RDR 0x24u
#define USART_TDR 0x28u

#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define ISR_PE (1u << 0)
#define ISR_FE (1u << 1)
#define ISR_NE (1u << 2)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5) /* RXFNE on the H7: the same bit with the FIFO disabled */
#define ISR_TC (1u << 6)
#define ISR_TXE (1u << 7)  /* TXFNF on the H7 */
#define ISR_ERRORS (ISR_PE | ISR_FE | ISR_NE | ISR_ORE)

#define REG(u, off) TA_REG32((u)->base + (off))

void ta_stm32_gpio_af(uintptr_t gpio_base, uint32_t pin, uint32_t af)
{
    const uint32_t two = pin * 2u;
    TA_REG32(gpio_base + GPIO_MODER) = (TA_REG32(gpio_base + GPIO_MODER) & ~(3u << two)) | (2u << two);
    TA_REG32(gpio_base + GPIO_OTYPER) &= ~(1u << pin);
    TA_REG32(gpio_base + GPIO_OSPEEDR) |= 3u << two;
    TA_REG32(gpio_base + GPIO_PUPDR) = (TA_REG32(gpio_base + GPIO_PUPDR) & ~(3u << two)) | (1u << two);
    const uintptr_t afr = gpio_base + (pin < 8u ? GPIO_AFRL : GPIO_AFRH);
    const uint32_t four = (pin & 7u) * 4u;
    TA_REG32(afr) = (TA_REG32(afr) & ~(0xFu << four)) | (af << four);
}

void ta_stm32_usart_init(ta_stm32_usart_t *u, uint32_t kernel_hz, uint32_t baud)
{
    u->clock_hz = TA_CLOCK_HZ;
    REG(u, USART_CR1) = 0; /* UE = 0 while configuring */
    REG(u, USART_CR2) = 0; /* 1 stop bit */
    REG(u, USART_CR3) = 0;
    REG(u, USART_BRR) = (kernel_hz + baud / 2u) / baud; /* oversampling by 16: BRR = USARTDIV */
    REG(u, USART_CR1) = CR1_TE | CR1_RE | CR1_UE;        /* 8 data bits, no parity */
}

int32_t ta_stm32_usart_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    ta_stm32_usart_t *u = (ta_stm32_usart_t *)ctx;
    const uint32_t start = ta_dwt_cycles();
    uint32_t n = 0;
    while (n < cap) {
        const uint32_t isr = REG(u, USART_ISR);
        if (isr & ISR_ERRORS) {
            REG(u, USART_ICR) = isr & ISR_ERRORS; /* a lost or bad byte: the frame CRC catches it */
        }
        if (isr & ISR_RXNE) {
            buf[n++] = (uint8_t)REG(u, USART_RDR);
        } else if (n > 0 || ta_cm_timed_out(ta_dwt_cycles(), start, timeout_ms, u->clock_hz)) {
            break;
        }
    }
    return (int32_t)n;
}

ta_status_t ta_stm32_usart_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    ta_stm32_usart_t *u = (ta_stm32_usart_t *)ctx;
    for (uint32_t i = 0; i < len; ++i) {
        while ((REG(u, USART_ISR) & ISR_TXE) == 0) {
        }
        REG(u, USART_TDR) = buf[i];
    }
    return TA_OK;
}

ta_status_t ta_stm32_usart_flush(void *ctx)
{
    ta_stm32_usart_t *u = (ta_stm32_usart_t *)ctx;
    while ((REG(u, USART_ISR) & ISR_TC) == 0) {
    }
    return TA_OK;
}
