/* A machine description: what `vmlab run` builds and what a trace header stores, so the
 * replayer can rebuild exactly the recorded devices. */
#ifndef VMLAB_MACHINE_H
#define VMLAB_MACHINE_H

#include <stdint.h>

#include "devices/device.h"

#define MACHINE_MAX_DEVICES 16

struct machine_device {
    char kind[DEVICE_KIND_MAX];     /* "virtio-blk", "uart8250", "debug-exit", ... */
    char args[DEVICE_ARGS_MAX];     /* as given to device_create() */
    uint64_t base;                  /* bus address (MMIO) or port (PIO) */
    int irq;                        /* GSI or -1 */
    int space;                      /* enum bus_space */
    /* Its bus windows (offsets from base). 0: its type's layout (machine_device_windows). */
    unsigned nwindows;
    struct device_window windows[DEVICE_MAX_WINDOWS];
};

struct machine_config {
    uint64_t ram_size;
    uint64_t seed;
    char backend[8];                /* "sim" or "kvm" */
    unsigned ndevices;
    struct machine_device devices[MACHINE_MAX_DEVICES];
};

/* Per-device seed: a stable function of the run seed and the device's index, so adding a
 * device never changes another device's random stream. */
uint64_t machine_device_seed(uint64_t run_seed, unsigned index);

/* The windows d has: its own list, or its kind's layout; 0 for an unknown kind. */
unsigned machine_device_windows(const struct machine_device *d,
                                struct device_window out[DEVICE_MAX_WINDOWS]);

/* Sets d's windows to its kind's layout in files that recorded none (trace formats 1 and 2,
 * snapshot format 1): one window at base, the type's first, except the i8042's, which was
 * ports 0x60-0x64 before port 0x61 went to the PIT. Unknown kinds keep none. */
void machine_device_set_format1_windows(struct machine_device *d);

/* Windows read from a file: 0 if they are d's kind's layout, now or before windows were
 * recorded (so a device only ever sees the offsets its model has), else -EINVAL with a
 * message naming the device and window. Unknown kinds are left to device_create. */
int machine_device_check_windows(const struct machine_device *d, unsigned index, char *err,
                                 size_t errlen);

#endif
