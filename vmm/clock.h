/* Time as device models see it. On the software CPU it is the virtual clock (guest
 * instructions retired, see sim/vclock.h); on KVM the host monotonic clock. Devices never
 * read any other clock, so a device model is deterministic whenever its clock is. */
#ifndef VMLAB_CLOCK_H
#define VMLAB_CLOCK_H

#include <stdint.h>

typedef void (*clock_timer_fn)(void *arg);

struct clock {
    uint64_t (*now_ns)(void *opaque);
    /* Calls fn(arg) from the VMM's event loop once now_ns() >= at_ns. Timers due at the
     * same time fire in the order they were scheduled. Returns an id > 0 or -errno. */
    int64_t (*schedule)(void *opaque, uint64_t at_ns, clock_timer_fn fn, void *arg);
    /* Cancels a pending timer; -ENOENT if it already fired or never existed. */
    int (*cancel)(void *opaque, int64_t id);
    void *opaque;
};

static inline uint64_t clock_now_ns(const struct clock *c)
{
    return c->now_ns(c->opaque);
}

#endif
