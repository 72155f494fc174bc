/* Console on the 8250 UART (x86: port 0x3f8; arm64: MMIO at 0xfe000000, vmm/memmap.h),
 * polled. Output is bytes as given ('\n' only). */
#include "rt_internal.h"

#define UART_LSR 5
#define LSR_THRE 0x20

void rt_putc(char c)
{
    /* bounded wait: a UART that never reports THR empty must not hang the guest */
    for (int i = 0; i < 100000 && !(rt_uart_in(UART_LSR) & LSR_THRE); i++)
        rt_pause();
    rt_uart_out(0, (uint8_t)c);
}

void rt_puts(const char *s)
{
    while (*s)
        rt_putc(*s++);
}
