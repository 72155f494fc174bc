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

#endif
