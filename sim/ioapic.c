#include "ioapic.h"

#include <string.h>

#define RTE_VECTOR(e)   ((uint8_t)((e) & 0xff))
#define RTE_DELMODE(e)  (((e) >> 8) & 7)
#define RTE_REMOTE_IRR  (1ULL << 14)
#define RTE_LEVEL       (1ULL << 15)
#define RTE_MASKED      (1ULL << 16)
#define RTE_RO_BITS     ((1ULL << 12) | RTE_REMOTE_IRR)   /* delivery status, remote IRR */

void ioapic_init(struct ioapic *io, struct lapic *lapic)
{
    memset(io, 0, sizeof(*io));
    io->lapic = lapic;
    for (unsigned i = 0; i < MEMMAP_IOAPIC_PINS; i++)
        io->redir[i] = RTE_MASKED;
    io->sink = (struct irq_sink){ ioapic_set_level, io };
}

/* Sends pin's vector to the local APIC if the entry allows it now. An edge that arrives
 * while masked stays latched in `edge_irr` and is sent on unmask (as QEMU and KVM do). */
static void service(struct ioapic *io, unsigned pin)
{
    uint64_t *e = &io->redir[pin];

    if (*e & RTE_MASKED)
        return;
    /* fixed and lowest-priority go to our one CPU; SMI/NMI/INIT/ExtINT are not modelled */
    if (RTE_DELMODE(*e) > 1)
        return;
    if (*e & RTE_LEVEL) {
        if (!io->level[pin] || (*e & RTE_REMOTE_IRR))
            return;
        *e |= RTE_REMOTE_IRR;
        lapic_accept(io->lapic, RTE_VECTOR(*e), 1);
    } else {
        if (!(io->edge_irr & (1u << pin)))
            return;
        io->edge_irr &= ~(1u << pin);
        lapic_accept(io->lapic, RTE_VECTOR(*e), 0);
    }
    io->delivered++;
}

void ioapic_set_level(void *opaque, unsigned gsi, int level)
{
    struct ioapic *io = opaque;

    if (gsi >= MEMMAP_IOAPIC_PINS)
        return;
    int old = io->level[gsi];
    io->level[gsi] = level ? 1 : 0;
    if (!(io->redir[gsi] & RTE_LEVEL) && level && !old)
        io->edge_irr |= 1u << gsi;
    if (level)
        service(io, gsi);
}

void ioapic_eoi(void *opaque, uint8_t vector)
{
    struct ioapic *io = opaque;

    for (unsigned i = 0; i < MEMMAP_IOAPIC_PINS; i++)
        if ((io->redir[i] & RTE_LEVEL) && RTE_VECTOR(io->redir[i]) == vector &&
            (io->redir[i] & RTE_REMOTE_IRR)) {
            io->redir[i] &= ~RTE_REMOTE_IRR;
            service(io, i);          /* still asserted: fires again */
        }
}

static uint32_t reg_read(struct ioapic *io)
{
    uint32_t r = io->regsel & 0xff;

    if (r == 0)
        return io->id << 24;
    if (r == 1)
        return ((MEMMAP_IOAPIC_PINS - 1) << 16) | IOAPIC_VERSION;
    if (r == 2)
        return io->id << 24;
    if (r >= 0x10 && r < 0x10 + 2 * MEMMAP_IOAPIC_PINS) {
        uint64_t e = io->redir[(r - 0x10) / 2];
        return (r & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
    }
    return 0xffffffff;
}

static void reg_write(struct ioapic *io, uint32_t v)
{
    uint32_t r = io->regsel & 0xff;

    if (r == 0) {
        io->id = (v >> 24) & 0xf;
        return;
    }
    if (r < 0x10 || r >= 0x10 + 2 * MEMMAP_IOAPIC_PINS)
        return;
    unsigned pin = (r - 0x10) / 2;
    uint64_t *e = &io->redir[pin];
    if (r & 1) {
        *e = (*e & 0xffffffffULL) | ((uint64_t)v << 32);
    } else {
        *e = (*e & 0xffffffff00000000ULL) | (*e & RTE_RO_BITS) | (v & ~(uint32_t)RTE_RO_BITS);
        if (!(*e & RTE_LEVEL))
            *e &= ~RTE_REMOTE_IRR;
        /* unmasking delivers what waited: a high level line or a latched edge */
        service(io, pin);
    }
}

static int ioapic_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct ioapic *io = opaque;

    (void)size;
    if (offset == 0x00)
        *value = io->regsel;
    else if (offset == 0x10)
        *value = reg_read(io);
    else
        *value = 0;
    return 0;
}

static int ioapic_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct ioapic *io = opaque;

    (void)size;
    if (offset == 0x00)
        io->regsel = (uint32_t)value & 0xff;
    else if (offset == 0x10)
        reg_write(io, (uint32_t)value);
    return 0;
}

const struct bus_ops ioapic_bus_ops = { ioapic_read, ioapic_write };

/* --- snapshots --- */

#include "vmm/snapshot.h"

void ioapic_save(const struct ioapic *io, struct snapshot_writer *w)
{
    snapshot_put_u32(w, io->id);
    snapshot_put_u32(w, io->regsel);
    snapshot_put_u32(w, MEMMAP_IOAPIC_PINS);
    for (unsigned i = 0; i < MEMMAP_IOAPIC_PINS; i++) {
        snapshot_put_u64(w, io->redir[i]);
        snapshot_put_u8(w, io->level[i]);
    }
    snapshot_put_u32(w, io->edge_irr);
    snapshot_put_u64(w, io->delivered);
}

int ioapic_load(struct ioapic *io, struct snapshot_reader *r, char *err, size_t errlen)
{
    io->id = snapshot_get_u32(r, "ioapic id") & 0xf;
    io->regsel = snapshot_get_u32(r, "ioapic regsel") & 0xff;
    uint32_t pins = snapshot_get_u32(r, "ioapic pins");
    if (!r->bad && pins != MEMMAP_IOAPIC_PINS)
        return snapshot_fail(r, err, errlen, "ioapic pins %u, this machine has %u", pins,
                             MEMMAP_IOAPIC_PINS);
    for (unsigned i = 0; i < MEMMAP_IOAPIC_PINS; i++) {
        io->redir[i] = snapshot_get_u64(r, "ioapic redirection entry");
        io->level[i] = snapshot_get_u8(r, "ioapic line level") ? 1 : 0;
    }
    io->edge_irr = snapshot_get_u32(r, "ioapic edge_irr") &
                   (uint32_t)((1ULL << MEMMAP_IOAPIC_PINS) - 1);
    io->delivered = snapshot_get_u64(r, "ioapic delivered");
    return snapshot_check(r, err, errlen);
}
