/* Emulated I/O APIC at MEMMAP_IOAPIC_BASE (IOREGSEL at +0, IOWIN at +0x10) with
 * MEMMAP_IOAPIC_PINS redirection entries. Device interrupt lines (irq_sink.set_level) drive
 * the pins; every entry routes to the one local APIC. Edge entries fire on a rising level,
 * level entries while the line is high and remote IRR is clear (EOI clears it). */
#ifndef VMLAB_SIM_IOAPIC_H
#define VMLAB_SIM_IOAPIC_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/memmap.h"
#include "sim/lapic.h"

#define IOAPIC_VERSION 0x11u

struct ioapic {
    struct lapic *lapic;
    uint32_t id, regsel;
    uint64_t redir[MEMMAP_IOAPIC_PINS];
    uint8_t level[MEMMAP_IOAPIC_PINS];
    uint32_t edge_irr;               /* edges latched while their entry was masked */
    uint64_t delivered;
    struct irq_sink sink;            /* set_level(gsi, level); opaque = this */
};

extern const struct bus_ops ioapic_bus_ops;

void ioapic_init(struct ioapic *io, struct lapic *lapic);
void ioapic_set_level(void *opaque, unsigned gsi, int level);
/* The local APIC saw an EOI for a level-triggered vector. */
void ioapic_eoi(void *opaque, uint8_t vector);

/* Snapshots: id, IOREGSEL, redirection table, line levels, latched edges. */
struct snapshot_writer;
struct snapshot_reader;
void ioapic_save(const struct ioapic *io, struct snapshot_writer *w);
int ioapic_load(struct ioapic *io, struct snapshot_reader *r, char *err, size_t errlen);

#endif
