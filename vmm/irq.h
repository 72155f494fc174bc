/* Interrupt lines as device models see them: a line to a GSI, raised and lowered.
 * The VMM supplies the sink (emulated I/O APIC on the software CPU, KVM_IRQ_LINE or an
 * irqfd on KVM); the trace tap sits in front of it. */
#ifndef VMLAB_IRQ_H
#define VMLAB_IRQ_H

struct irq_sink {
    void (*set_level)(void *opaque, unsigned gsi, int level);
    void *opaque;
};

struct irq_line {
    const struct irq_sink *sink;
    unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *line, int level)
{
    if (line->sink && line->sink->set_level)
        line->sink->set_level(line->sink->opaque, line->gsi, level);
}

/* Edge-style helper for devices that signal by pulsing. */
static inline void irq_line_pulse(const struct irq_line *line)
{
    irq_line_set(line, 1);
    irq_line_set(line, 0);
}

#endif
