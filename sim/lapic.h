/* Emulated local xAPIC (one per vCPU, here one) at MEMMAP_LAPIC_BASE, registered on the MMIO
 * bus. Holds IRR/ISR/TMR, TPR/PPR, EOI, SVR, the LVT timer (one-shot and periodic, driven
 * by the virtual clock) and a self-IPI through ICR. The CPU asks lapic_pending() between
 * blocks and calls lapic_ack() when it delivers. */
#ifndef VMLAB_SIM_LAPIC_H
#define VMLAB_SIM_LAPIC_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "sim/vclock.h"

/* The timer counts at the virtual TSC rate (1 GHz) before the divider: one count of
 * "divide by 1" lasts one virtual ns. */
#define LAPIC_TIMER_NS_PER_TICK 1ULL
/* Shortest periodic timer period (KVM clamps too): a guest cannot make us spin. */
#define LAPIC_MIN_PERIOD_NS 1000ULL
#define LAPIC_VERSION 0x00050014u     /* version 0x14, 6 LVT entries (max index 5) */

typedef void (*lapic_eoi_fn)(void *opaque, uint8_t vector);

struct lapic {
    struct vclock *vc;
    uint32_t id, tpr, ldr, dfr, svr, esr;
    uint32_t lvt[7];                  /* CMCI, timer, thermal, perf, LINT0, LINT1, error */
    uint32_t icr_lo, icr_hi;
    uint32_t irr[8], isr[8], tmr[8];
    /* timer */
    uint32_t initial_count, divide_conf;
    uint64_t timer_start, timer_period, timer_deadline;
    int64_t timer_event;              /* vclock id, 0 when not armed */
    /* highest deliverable vector, -1 if none: the CPU's hot path reads only this */
    int pending;
    uint64_t timer_fired;
    lapic_eoi_fn on_eoi;              /* level-triggered EOI to the I/O APIC */
    void *on_eoi_opaque;
};

extern const struct bus_ops lapic_bus_ops;

void lapic_init(struct lapic *l, struct vclock *vc, uint32_t id);
void lapic_destroy(struct lapic *l);
/* An interrupt arrives (I/O APIC, timer, self-IPI). level: set its TMR bit. */
void lapic_accept(struct lapic *l, uint8_t vector, int level);
/* The CPU takes `vector` (== l->pending): IRR -> ISR. */
void lapic_ack(struct lapic *l, uint8_t vector);
/* Snapshots: the registers, IRR/ISR/TMR and the timer (deadline and clock id). load
 * re-arms the timer with its saved id; 0 or -EINVAL with a message (field and value). */
struct snapshot_writer;
struct snapshot_reader;
void lapic_save(const struct lapic *l, struct snapshot_writer *w);
int lapic_load(struct lapic *l, struct snapshot_reader *r, char *err, size_t errlen);
/* 1 if a timer is armed (something can still wake a halted CPU). */
static inline int lapic_timer_armed(const struct lapic *l) { return l->timer_event > 0; }

#endif
