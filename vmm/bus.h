/* Address ranges to handlers, one bus for MMIO and one for port I/O. The CPU backends hand
 * every exit to a bus; the trace replayer drives it directly. Lookup is a binary search
 * over ranges sorted by base, so dispatch order never depends on host addresses. */
#ifndef VMLAB_BUS_H
#define VMLAB_BUS_H

#include <stdint.h>

#define BUS_MAX_REGIONS 64

enum bus_space { BUS_MMIO = 0, BUS_PIO = 1 };

/* offset is relative to the region base; size is 1, 2, 4 or 8. Return 0 or -errno
 * (an error becomes a logged, ignored access: reads then see all ones). */
struct bus_ops {
    int (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *value);
    int (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct bus_region {
    uint64_t base;
    uint64_t size;
    uint64_t offset;                /* handlers see addr - base + offset */
    const struct bus_ops *ops;
    void *opaque;
    char name[32];
};

/* Observes every dispatched access, after the handler ran (the trace tap).
 * `region` is -1 for an access no region claims. */
typedef void (*bus_tap_fn)(void *opaque, enum bus_space space, int is_write, uint64_t addr,
                           unsigned size, uint64_t value, int region);

struct bus {
    enum bus_space space;
    struct bus_region regions[BUS_MAX_REGIONS];
    unsigned nregions;
    bus_tap_fn tap;
    void *tap_opaque;
};

void bus_init(struct bus *b, enum bus_space space);

/* Adds [base, base+size). -EINVAL for size 0 or wrap-around, -EEXIST on overlap,
 * -ENOSPC when full. Returns the region index on success (>= 0). */
int bus_register(struct bus *b, uint64_t base, uint64_t size, const struct bus_ops *ops,
                 void *opaque, const char *name);

/* The same for one window of a device with several (the i8042's ports 0x60 and 0x64): its
 * handlers see addresses relative to the device, `offset` being the window's distance from
 * the device's base. bus_register is this with offset 0. */
int bus_register_window(struct bus *b, uint64_t base, uint64_t size, uint64_t offset,
                        const struct bus_ops *ops, void *opaque, const char *name);

/* Removes the region starting at base (undoing a device's earlier windows when a later
 * one cannot be registered). -ENOENT if there is none. */
int bus_unregister(struct bus *b, uint64_t base);

/* The region containing addr, or NULL. */
const struct bus_region *bus_find(const struct bus *b, uint64_t addr);

/* Dispatch. -ENOENT if no region claims addr (reads then return all ones),
 * -EINVAL for a bad size or an access straddling the region end, else the handler's result. */
int bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *value);
int bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t value);

static inline void bus_set_tap(struct bus *b, bus_tap_fn fn, void *opaque)
{
    b->tap = fn;
    b->tap_opaque = opaque;
}

#endif
