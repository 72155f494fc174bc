/* uartirq: the device-interrupt path end to end. The 8250's THR-empty interrupt (GSI 4,
 * edge) is routed through the interrupt controller (x86: the I/O APIC to a vector; arm64:
 * the GIC's SPI 4); the handler feeds the UART one byte per interrupt until a line is out,
 * then turns the interrupt off. Output (both VMMs, both machines):
 *   uartirq: this line was sent one byte per interrupt
 *   uartirq: N interrupts for N-1 bytes
 * Option gsi=N overrides the UART's GSI (default 4). */
#include "rt.h"

#define UART_IER 1
#define UART_IIR 2
#define UART_MCR 4
#define IER_THRI 0x02
#define IIR_ID_MASK 0x0f
#define IIR_THRI 0x02
#define MCR_DTR_RTS_OUT2 0x0b
#define UART_IRQ(gsi) RT_GSI_IRQ(gsi, 0x41)

static const char line[] = "uartirq: this line was sent one byte per interrupt\n";
static volatile unsigned sent, irqs, others;
static volatile int done;

static void on_uart(struct rt_irq_frame *f)
{
    (void)f;
    irqs++;
    uint8_t iir = rt_uart_in(UART_IIR);         /* reading IIR acknowledges THRI */
    if ((iir & IIR_ID_MASK) != IIR_THRI) {
        others++;
    } else if (sent < sizeof line - 1) {
        rt_uart_out(0, (uint8_t)line[sent++]);
    } else {
        rt_uart_out(UART_IER, 0);
        done = 1;
    }
    rt_irq_eoi();
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char buf[16];
    unsigned gsi = RT_UART_GSI;

    if (rt_cmdline_get("gsi", buf, sizeof buf))
        gsi = (unsigned)strtoul(buf, NULL, 0);
    if (gsi > rt_irq_max_gsi()) {
        printf("uartirq: gsi %u is past the I/O APIC's last pin %u\n", gsi, rt_irq_max_gsi());
        return 2;
    }
    rt_set_handler(UART_IRQ(gsi), on_uart);
    rt_intc_init();
    rt_irq_route(gsi, UART_IRQ(gsi), 0);
    rt_uart_out(UART_MCR, MCR_DTR_RTS_OUT2);    /* OUT2 gates the IRQ line on PC hardware */

    rt_irq_disable();
    rt_uart_out(UART_IER, IER_THRI);            /* THR is empty: the first interrupt comes at once */
    while (!done)
        rt_halt(), rt_irq_disable();
    rt_irq_enable();
    rt_irq_mask(gsi, 1);

    printf("uartirq: %u interrupts for %u bytes\n", irqs, sent);
    GUEST_ASSERT_EQ(others, 0);
    GUEST_ASSERT_EQ(sent, sizeof line - 1);
    return 0;
}
