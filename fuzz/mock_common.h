/* Shared by the device-model fuzz targets (virtio-blk, -console, -rng): a mock driver
 * (tests/mock_virtio.h) set up from one option byte, and the checks every virtio device
 * must pass whatever the input. */
#ifndef VMLAB_FUZZ_MOCK_COMMON_H
#define VMLAB_FUZZ_MOCK_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "tests/mock_virtio.h"

/* Run before abort() on an invariant violation (the virtio-mmio target closes its trace). */
static void (*fz_before_abort)(void);

static inline void fz_abort(void)
{
    if (fz_before_abort)
        fz_before_abort();
    abort();
}

/* Option byte: bit 0 packed, bit 1 indirect, bit 2 event idx, bits 3-4 queue size
 * (4 << n entries: 4..32; small rings keep the mock's RAM, and each run, small). */
static inline int fz_mock_setup(struct mock_virtio *m, uint8_t opt, uint64_t dev_features)
{
    struct mock_virtio_opts o = {
        .packed = opt & 1,
        .indirect = (opt >> 1) & 1,
        .event_idx = (opt >> 2) & 1,
        .queue_size = (uint16_t)(4u << ((opt >> 3) & 3)),
        .device_features = dev_features,
    };
    return mock_virtio_setup(m, &o);
}

/* Guest RAM for the mock: the mock reserves MOCK_QUEUE_MAX indirect tables per queue
 * (128 KiB) when indirect descriptors are on. */
static inline uint64_t fz_mock_ram(uint8_t opt, unsigned nqueues)
{
    return (opt & 2) ? (64 + 128 * (uint64_t)nqueues) * 1024 : 64 * 1024;
}

/* Device status must be a legal one (§2.1): DRIVER_OK only after FEATURES_OK, DRIVER and
 * ACKNOWLEDGE; FEATURES_OK only after DRIVER; DRIVER only after ACKNOWLEDGE; no bits the
 * spec does not define. The interrupt line is level-triggered on InterruptStatus. */
static inline void fz_check_status(struct mock_virtio *m)
{
    uint32_t s = mock_virtio_read32(m, VIRTIO_MMIO_STATUS);
    uint32_t isr = mock_virtio_read32(m, VIRTIO_MMIO_INTERRUPT_STATUS);

    if (s & ~(uint32_t)(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                        VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |
                        VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fz_abort();
    if ((s & VIRTIO_STATUS_DRIVER_OK) &&
        (s & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_ACKNOWLEDGE)) !=
            (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_ACKNOWLEDGE))
        fz_abort();
    if ((s & VIRTIO_STATUS_FEATURES_OK) &&
        (s & (VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_ACKNOWLEDGE)) !=
            (VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_ACKNOWLEDGE))
        fz_abort();
    if ((s & VIRTIO_STATUS_DRIVER) && !(s & VIRTIO_STATUS_ACKNOWLEDGE))
        fz_abort();
    if (isr & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
        fz_abort();
    if (m->irq_level != (isr != 0))
        fz_abort();    /* the line must follow InterruptStatus */
}

/* 1 while the device is running (DRIVER_OK and not NEEDS_RESET). */
static inline int fz_live(struct mock_virtio *m)
{
    uint32_t s = mock_virtio_read32(m, VIRTIO_MMIO_STATUS);

    return (s & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
           VIRTIO_STATUS_DRIVER_OK;
}

#endif
