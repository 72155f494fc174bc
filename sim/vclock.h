/* The deterministic virtual clock of the software CPU and its event queue.
 * Virtual time = instructions retired x VCLOCK_NS_PER_INSN, plus VCLOCK_NS_PER_PAUSE per PAUSE,
 * plus the time skipped while the guest idles in HLT (the clock jumps to the next event instead of spinning). Events are a
 * min-heap keyed by (time, sequence number): ties fire in the order they were scheduled,
 * whatever the host. Everything runs on the vCPU thread; nothing here is thread-safe. */
#ifndef VMLAB_SIM_VCLOCK_H
#define VMLAB_SIM_VCLOCK_H

#include <stdint.h>

#include "vmm/clock.h"

/* A 1 GHz virtual CPU: one instruction retires per virtual nanosecond. */
#define VCLOCK_NS_PER_INSN 1ULL
/* PAUSE takes 140 cycles of the 1 GHz virtual CPU, as from Skylake on (sim/unicorn_pause.c) */
#define VCLOCK_NS_PER_PAUSE 140ULL
/* The TSC ticks once per virtual nanosecond: RDTSC returns virtual ns. */
#define VCLOCK_TSC_KHZ 1000000ULL
/* Pending events at most (a guard against a runaway device, not a design limit). */
#define VCLOCK_MAX_EVENTS 65536

struct vclock_event {
    uint64_t at;
    uint64_t seq;               /* also the id handed out by schedule */
    clock_timer_fn fn;
    void *arg;
};

struct vclock {
    uint64_t now;               /* virtual ns */
    uint64_t next_seq;
    struct vclock_event *heap;
    unsigned n, cap;
    /* min(earliest event, limit): the CPU's hot path compares now against this only */
    uint64_t alarm;
    uint64_t limit;             /* an extra wake-up the owner asks for (the poll point) */
    struct clock clock;         /* the struct clock devices read; opaque = this */
};

void vclock_init(struct vclock *vc);
void vclock_destroy(struct vclock *vc);

static inline uint64_t vclock_now(const struct vclock *vc) { return vc->now; }

/* Sets the extra wake-up time folded into `alarm` (UINT64_MAX: none). */
void vclock_set_limit(struct vclock *vc, uint64_t ns);

/* Moves time forward (never back: an earlier value is ignored). Fires nothing. */
static inline void vclock_advance_to(struct vclock *vc, uint64_t ns)
{
    if (ns > vc->now)
        vc->now = ns;
}

/* Returns an id > 0, or -ENOSPC / -ENOMEM. A time in the past fires at the next check. */
int64_t vclock_schedule(struct vclock *vc, uint64_t at_ns, clock_timer_fn fn, void *arg);
/* Snapshot restore: schedules with a given id (from a saved vclock), so timers due at the
 * same time keep their order. id must be below next_seq and not pending: -EINVAL. */
int64_t vclock_schedule_id(struct vclock *vc, uint64_t at_ns, int64_t id, clock_timer_fn fn,
                           void *arg);
/* 0, or -ENOENT if the id already fired, was cancelled or never existed. */
int vclock_cancel(struct vclock *vc, int64_t id);

/* Time of the earliest pending event, UINT64_MAX if none. */
static inline uint64_t vclock_next_deadline(const struct vclock *vc)
{
    return vc->n ? vc->heap[0].at : UINT64_MAX;
}

static inline unsigned vclock_pending(const struct vclock *vc) { return vc->n; }

/* Fires, in (time, sequence) order, every event due at or before now, including ones that
 * callbacks schedule for a time already reached. Returns how many fired. */
unsigned vclock_run_due(struct vclock *vc);

#endif
