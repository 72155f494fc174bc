/* The device tree vmlab hands every guest (as the first PVH module), built with libfdt:
 * memory, CPU (with the TSC rate), interrupt controllers, serial, exit device and one
 * "virtio,mmio" node per virtio device. Guests read it with libfdt. */
#ifndef VMLAB_FDT_BUILD_H
#define VMLAB_FDT_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "machine.h"

/* Builds the tree into buf (at most buflen bytes). 0 or -errno (-ENOSPC if it won't fit). */
int fdt_build(void *buf, size_t buflen, const struct machine_config *mc, const char *cmdline,
              uint64_t tsc_khz, char *err, size_t errlen);

/* The arm64 machine's tree (fdt_arm64.c). */
struct fdt_arm64_config {
    const struct machine_config *mc;
    const char *cmdline;
    int gic_version;            /* 3 or 2 */
    uint64_t timer_khz;         /* CNTFRQ_EL0 / 1000 */
    uint64_t initrd_addr, initrd_size;      /* size 0: no initrd */
};
int fdt_build_arm64(void *buf, size_t buflen, const struct fdt_arm64_config *cfg, char *err,
                    size_t errlen);

#endif
