/* Fuzz target: the virtio-mmio transport (devices/virtio/mmio.c) and the virtio core
 * (devices/virtio/virtio.c) behind it, with a real device model, programmed by the input
 * as a driver would: register reads and writes plus ring contents in guest RAM.
 *
 * Input: [device][nops][nops * 6-byte ops][guest RAM image, copied to gpa 0]
 *   device % 3: virtio-blk (mem=16K), virtio-console (out=none, scripted input), virtio-rng
 *   op: [reg][arg][value, 4 bytes little-endian]
 *     reg < 0xc0: a 32-bit write of `value` to register offset reg & 0xfc
 *                 (arg bit 0: read it instead)
 *     reg >= 0xc0: arg % 4 selects: 0 config read, 1 config write (width 1 << (reg & 3),
 *                  offset value & 0xff); 2 any access (offset value & 0xfff, width
 *                  1 << (reg & 3)); 3 a 4-byte store of value into guest RAM at
 *                  (value >> 12) & 0xfff0 (the driver updating its rings)
 * Invariants (abort() on violation): the identification registers never change (magic,
 * version 2, device id, vendor); QueueNumMax <= 256; the device status stays legal and
 * the interrupt line follows InterruptStatus after every access; guest RAM is an
 * exact-size heap block (ASan), reached only through guest_mem.
 *
 * Register accesses go through a bus, as in a VM. With VMLAB_FUZZ_TRACE=FILE in the
 * environment (the reproducer: `VMLAB_FUZZ_TRACE=t.trace build/fuzz-repro/virtio_mmio
 * CRASH`), the run is also recorded as a vmlab trace (traces/record.h) that
 * `vmlab trace replay t.trace` replays against a fresh device, the trace is closed even
 * when an invariant or a sanitizer stops the run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_rng.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (64 * 1024)

static const struct {
    const struct device_type *type;
    const char *args;
    uint32_t id;
} devs[3] = {
    { &virtio_blk_type, "mem=16K", VIRTIO_ID_BLOCK },
    { &virtio_console_type, "out=none,in=hello\\n", VIRTIO_ID_CONSOLE },
    { &virtio_rng_type, "", VIRTIO_ID_RNG },
};

#define BASE FZT_BASE     /* virtio-mmio slot 0 */
#define RUN_SEED 1

static void check_ident(struct mock_virtio *m, uint32_t id)
{
    if (mock_virtio_read32(m, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
        mock_virtio_read32(m, VIRTIO_MMIO_VERSION) != VIRTIO_MMIO_VERSION_2 ||
        mock_virtio_read32(m, VIRTIO_MMIO_DEVICE_ID) != id ||
        mock_virtio_read32(m, VIRTIO_MMIO_VENDOR_ID) != VIRTIO_MMIO_VENDOR_VMLAB)
        fz_abort();
    if (mock_virtio_read32(m, VIRTIO_MMIO_QUEUE_NUM_MAX) > 256)
        fz_abort();
    fz_check_status(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mock_virtio m;
    struct bus bus;
    char err[256];

    if (size < 2)
        return 0;
    unsigned d = data[0] % 3;
    size_t nops = data[1];
    if (nops * 6 > size - 2)
        nops = (size - 2) / 6;
    const uint8_t *ops = data + 2, *img = ops + nops * 6;
    size_t imglen = size - 2 - nops * 6;

    if (mock_virtio_init(&m, RAM_SIZE, 0) < 0)
        abort();
    memcpy(m.ram, img, imglen < RAM_SIZE ? imglen : RAM_SIZE);
    fzt_begin(&m, devs[d].type, devs[d].args, RUN_SEED);
    if (mock_virtio_create(&m, devs[d].type, devs[d].args, err, sizeof err) < 0)
        abort();
    bus_init(&bus, BUS_MMIO);
    if (bus_register(&bus, BASE, VIRTIO_MMIO_WINDOW_SIZE, devs[d].type->ops, m.state,
                     devs[d].type->kind) < 0)
        abort();
    fzt_attach_bus(&bus);
    for (size_t i = 0; i < nops; i++) {
        const uint8_t *o = ops + 6 * i;
        uint32_t value = (uint32_t)o[2] | (uint32_t)o[3] << 8 | (uint32_t)o[4] << 16 |
                         (uint32_t)o[5] << 24;
        uint64_t v;

        if (o[0] < 0xc0) {
            if (o[1] & 1)
                bus_read(&bus, BASE + (o[0] & 0xfc), 4, &v);
            else
                bus_write(&bus, BASE + (o[0] & 0xfc), 4, value);
        } else {
            unsigned width = 1u << (o[0] & 3);

            switch (o[1] % 4) {
            case 0:
                bus_read(&bus, BASE + VIRTIO_MMIO_CONFIG + (value & 0xff), width, &v);
                break;
            case 1:
                bus_write(&bus, BASE + VIRTIO_MMIO_CONFIG + (value & 0xff), width, value);
                break;
            case 2:
                if ((value & 0xfff) + width <= VIRTIO_MMIO_WINDOW_SIZE) {
                    if (o[1] & 4)
                        bus_write(&bus, BASE + (value & 0xfff), width, value);
                    else
                        bus_read(&bus, BASE + (value & 0xfff), width, &v);
                }
                break;
            case 3:
                memcpy(m.ram + ((value >> 12) & 0xfff0), &value, 4);
                break;
            }
        }
        fz_check_status(&m);
    }
    check_ident(&m, devs[d].id);
    fzt_finish();
    mock_virtio_destroy(&m);
    return 0;
}
