/* Console on the 8250 UART at port 0x3f8, polled. Output is bytes as given ('\n' only). */
#include "rt_internal.h"

#define COM1 0x3f8
#define UART_LSR 5
#define LSR_THRE 0x20

void rt_putc(char c)
{
    /* bounded wait: a UART that never reports THR empty must not hang the guest */
    for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & LSR_THRE); i++)
        rt_pause();
    outb(COM1, (uint8_t)c);
}

void rt_puts(const char *s)
{
    while (*s)
        rt_putc(*s++);
}
