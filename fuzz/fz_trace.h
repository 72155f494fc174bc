/* Recording a device-target run as a vmlab trace (fuzz_virtio_mmio.c, fuzz_virtio_blk.c,
 * fuzz_virtio_console.c, fuzz_virtio_rng.c, fuzz_virtio_net.c, fuzz_virtio_vsock.c).
 *
 * With VMLAB_FUZZ_TRACE=FILE in the environment (the reproducer: `VMLAB_FUZZ_TRACE=t.trace
 * build/fuzz-repro/<target> INPUT`, fuzz/run.sh does it for every new crash), the run is
 * recorded with traces/record.h as if the device sat in a VM at virtio-mmio slot 0: its
 * register accesses through a bus with the recorder's tap, its DMA through the guest_mem
 * tap, its interrupt line through the recording sink, what it exchanges with its host side
 * (env.host_io: net frames, vsock's host calls and answers) as host-in/host-out events.
 * `vmlab trace replay FILE` then rebuilds the device from the header and replays it, the
 * host side standing in from those events. The trace is closed even when an
 * invariant (fz_abort) or a sanitizer stops the run.
 *
 * Every run, recorded or not, gives the device what a VM would: base, GSI, the seed
 * machine_device_seed(run_seed, 0) and a host_io callback, so a recording never changes
 * what the input does.
 *
 * Use, per input:
 *     mock_virtio_init(&m, ram, 0);
 *     fzt_begin(&m, &type, args, run_seed);   // before mock_virtio_create
 *     mock_virtio_create(&m, &type, args, ...);
 *     fzt_route(&m);        // mock register accesses now go through the recorded bus
 *     ...
 *     fzt_finish();         // destroys the device while recording, closes the trace
 *     mock_virtio_destroy(&m); */
#ifndef VMLAB_FUZZ_FZ_TRACE_H
#define VMLAB_FUZZ_FZ_TRACE_H

#include <stdio.h>
#include <stdlib.h>

#include <sanitizer/common_interface_defs.h>

#include "fuzz/mock_common.h"
#include "traces/record.h"
#include "vmm/bus.h"
#include "vmm/machine.h"
#include "vmm/memmap.h"

#define FZT_BASE MEMMAP_VIRTIO_MMIO_BASE     /* virtio-mmio slot 0 */
#define FZT_IRQ MEMMAP_VIRTIO_IRQ_BASE

static struct {
    struct trace_recorder *rec;
    struct mock_virtio *m;
    const char *path;
    int path_read;
    struct bus bus;
    struct device_type type;    /* the device's type, register accesses via `bus` */
} fzt;

static inline const char *fzt_path(void)
{
    if (!fzt.path_read) {
        const char *p = getenv("VMLAB_FUZZ_TRACE");

        fzt.path = p && *p ? p : NULL;
        fzt.path_read = 1;
    }
    return fzt.path;
}

/* Ends the recording: the device is destroyed first, so what it does then is recorded. */
static inline void fzt_finish(void)
{
    char err[256];

    if (!fzt.rec)
        return;
    if (fzt.m->type) {
        fzt.m->type->destroy(fzt.m->state);
        fzt.m->type = NULL;
        fzt.m->state = NULL;
    }
    if (trace_recorder_close(fzt.rec, 0, err, sizeof err))
        fprintf(stderr, "fuzz: trace: %s\n", err);
    else
        fprintf(stderr, "fuzz: trace written; replay with: vmlab trace replay %s\n", fzt.path);
    fzt.rec = NULL;
    fz_before_abort = NULL;
    __sanitizer_set_death_callback(NULL);
}

/* env.host_io: what the device exchanged with its host side, recorded as the VMM does
 * (vmm/vm.c), so replay needs no host side. A target that also checks those bytes sets its
 * own callback and calls this one from it. */
static inline void fzt_host_io(void *opaque, int dir, const void *data, size_t len)
{
    (void)opaque;
    if (fzt.rec)
        trace_recorder_host_io(fzt.rec, 0, dir, data, len);
}

/* Before the device is created: the VM's view of the device (base, GSI, seed, host_io) and,
 * when recording, the recorder on the mock's memory and interrupt line. */
static inline void fzt_begin(struct mock_virtio *m, const struct device_type *type, const char *args,
                      uint64_t run_seed)
{
    char err[256];

    m->env.base = FZT_BASE;
    m->env.irq.gsi = FZT_IRQ;
    m->env.seed = machine_device_seed(run_seed, 0);
    m->env.host_io = fzt_host_io;
    if (!fzt_path())
        return;
    struct machine_config mc = { .ram_size = m->ram_size, .seed = run_seed, .backend = "sim",
                                 .ndevices = 1 };
    struct machine_device *md = &mc.devices[0];

    snprintf(md->kind, sizeof md->kind, "%s", type->kind);
    snprintf(md->args, sizeof md->args, "%s", args);
    md->base = FZT_BASE;
    md->irq = FZT_IRQ;
    md->space = BUS_MMIO;
    if (trace_recorder_open(&fzt.rec, fzt.path, &mc, &m->clock, err, sizeof err)) {
        fprintf(stderr, "fuzz: trace: %s\n", err);
        abort();
    }
    fzt.m = m;
    m->env.irq.sink = trace_recorder_wrap_irq(fzt.rec, &m->sink);
    trace_recorder_attach_mem(fzt.rec, &m->mem);
    fz_before_abort = fzt_finish;
    __sanitizer_set_death_callback(fzt_finish);
}

/* A host message to the device (device_type.host_input), recorded as the VMM does so the
 * trace replays it. */
static inline int fzt_host_input(struct mock_virtio *m, const uint8_t *data, size_t len,
                                 char *err, size_t errlen)
{
    int rc = m->type->host_input(m->state, data, len, err, errlen);

    if (!rc && fzt.rec)
        trace_recorder_input(fzt.rec, 0, data, len);
    return rc;
}

/* A target that has its own bus (virtio_mmio) lets the recorder tap it. */
static inline void fzt_attach_bus(struct bus *b)
{
    if (fzt.rec)
        trace_recorder_attach_bus(fzt.rec, b);
}

static inline int fzt_bus_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    (void)opaque;
    return bus_read(&fzt.bus, FZT_BASE + off, size, value);
}

static inline int fzt_bus_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    (void)opaque;
    return bus_write(&fzt.bus, FZT_BASE + off, size, value);
}

/* After mock_virtio_create, when recording: the mock's register accesses (which call the
 * type's bus_ops directly) are sent through a bus the recorder taps, as a VM's would be. */
static inline void fzt_route(struct mock_virtio *m)
{
    static const struct bus_ops fzt_bus_ops = { fzt_bus_read, fzt_bus_write };

    if (!fzt.rec)
        return;
    bus_init(&fzt.bus, BUS_MMIO);
    if (bus_register(&fzt.bus, FZT_BASE, m->type->window_size, m->type->ops, m->state,
                     m->type->kind) < 0)
        abort();
    trace_recorder_attach_bus(fzt.rec, &fzt.bus);
    fzt.type = *m->type;
    fzt.type.ops = &fzt_bus_ops;
    m->type = &fzt.type;
}

#endif
