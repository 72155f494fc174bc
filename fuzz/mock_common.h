/* Shared by the device-model fuzz targets (virtio-blk, -console, -rng): a mock driver
 * (tests/mock_virtio.h) set up from one option byte, and the checks every virtio device
 * must pass whatever the input. */
#ifndef VMLAB_FUZZ_MOCK_COMMON_H
#define VMLAB_FUZZ_MOCK_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* Guest RAM reused across inputs: allocating (and faulting in) up to 320 KiB of zeroed RAM
 * per input cost about a tenth of a device target's run. One mapping per RAM size, with a
 * PROT_NONE guard page on each side, so a host access just outside RAM still faults. */
#define FZ_PAGE 4096u

static struct { uint64_t size; uint8_t *ram; } fz_rams[4];

static inline int fz_mock_init(struct mock_virtio *m, uint64_t ram_size, uint64_t seed)
{
    unsigned i;

    if (ram_size % FZ_PAGE)
        abort();
    for (i = 0; i < 4 && fz_rams[i].ram && fz_rams[i].size != ram_size; i++)
        ;
    if (i == 4)
        abort();    /* more RAM sizes than any target uses */
    if (!fz_rams[i].ram) {
        uint8_t *p = mmap(NULL, ram_size + 2 * FZ_PAGE, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED || mprotect(p + FZ_PAGE, ram_size, PROT_READ | PROT_WRITE))
            abort();
        fz_rams[i].size = ram_size;
        fz_rams[i].ram = p + FZ_PAGE;
    }
    return mock_virtio_init_buffer(m, fz_rams[i].ram, ram_size, seed);
}

/* mock_virtio_destroy, leaving RAM zeroed for the next input: the pages the driver
 * allocated from ([0, heap), where its rings and buffers are) are cleared, the pages above
 * are dropped (the kernel gives zero pages back), so not even a stray device write past
 * the driver's buffers survives into the next run. */
static inline void fz_mock_done(struct mock_virtio *m)
{
    uint8_t *ram = m->ram;
    uint64_t size = m->ram_size, used = (m->heap + FZ_PAGE - 1) / FZ_PAGE * FZ_PAGE;

    mock_virtio_destroy(m);
    if (used > size)
        used = size;
    memset(ram, 0, used);
    if (used < size && madvise(ram + used, size - used, MADV_DONTNEED))
        abort();
}

/* Device status must be a legal one (§2.1): DRIVER_OK only after FEATURES_OK, DRIVER and
 * ACKNOWLEDGE; FEATURES_OK only after DRIVER; DRIVER only after ACKNOWLEDGE; no bits the
 * spec does not define. The interrupt line is level-triggered on InterruptStatus. */
static inline void fz_check_status(struct mock_virtio *m)
{
    /* Test-only: VMLAB_FUZZ_TEST_ABORT_AFTER=N makes the N-th check fail as a violated
     * invariant would, so tests/cli/fuzz_repro.sh can show that the trace of a stopped run
     * is complete and replays. */
    static long abort_after = -2;
    if (abort_after == -2) {
        const char *e = getenv("VMLAB_FUZZ_TEST_ABORT_AFTER");
        abort_after = e && *e ? strtol(e, NULL, 10) : -1;
    }
    if (abort_after > 0 && --abort_after == 0) {
        fprintf(stderr, "fuzz invariant violated: VMLAB_FUZZ_TEST_ABORT_AFTER (test)\n");
        fz_abort();
    }

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
