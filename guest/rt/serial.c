/* Console on the 8250 UART (x86: port 0x3f8; arm64: MMIO at 0xfe000000, vmm/memmap.h),
 * polled. Output is bytes as given ('\n' only). */
#include "rt_internal.h"

#define UART_LSR 5
#define LSR_THRE 0x20

#if defined(__aarch64__)
#define UART_MMIO 0xfe000000ull
static uint8_t uart_in(unsigned reg) { return mmio_read8(UART_MMIO + reg); }
static void uart_out(unsigned reg, uint8_t v) { mmio_write8(UART_MMIO + reg, v); }
#else
#define COM1 0x3f8
static uint8_t uart_in(unsigned reg) { return inb((uint16_t)(COM1 + reg)); }
static void uart_out(unsigned reg, uint8_t v) { outb((uint16_t)(COM1 + reg), v); }
#endif

void rt_putc(char c)
{
    /* bounded wait: a UART that never reports THR empty must not hang the guest */
    for (int i = 0; i < 100000 && !(uart_in(UART_LSR) & LSR_THRE); i++)
        rt_pause();
    uart_out(0, (uint8_t)c);
}

void rt_puts(const char *s)
{
    while (*s)
        rt_putc(*s++);
}
