/* Whole-VM snapshots: which chunks, in which order (vmm/SNAPSHOT.md). The chunk format is
 * vmm/snapshot.c; the CPU and the devices write their own fields. */
#include "vm.h"
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define RAM_RUN_PAGES 1024u         /* pages per RAM chunk at most (4 MiB) */

static int page_is_zero(const uint8_t *p)
{
    static const uint8_t zero[PAGE];
    return !memcmp(p, zero, PAGE);
}

static void put_machine(struct snapshot_writer *w, const struct vm *vm)
{
    const struct machine_config *mc = &vm->mc;

    snapshot_begin(w, "MACH");
    snapshot_put_u64(w, mc->ram_size);
    snapshot_put_u64(w, mc->seed);
    snapshot_put_str(w, mc->backend);
    snapshot_put_u64(w, vm->env.max_insns);
    snapshot_put_u32(w, mc->ndevices);
    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        snapshot_put_str(w, d->kind);
        snapshot_put_str(w, d->args);
        snapshot_put_u64(w, d->base);
        snapshot_put_u32(w, (uint32_t)d->irq);
        snapshot_put_u32(w, (uint32_t)d->space);
        struct device_window win[DEVICE_MAX_WINDOWS];
        unsigned nw = machine_device_windows(d, win);
        snapshot_put_u32(w, nw);
        for (unsigned k = 0; k < nw; k++) {
            snapshot_put_u64(w, win[k].offset);
            snapshot_put_u64(w, win[k].size);
        }
    }
    snapshot_end(w);
}

/* Non-zero pages only, as runs of consecutive pages: a mostly idle 128 MiB guest writes
 * a few hundred KiB. */
static void put_ram(struct snapshot_writer *w, const struct guest_mem *m)
{
    for (unsigned i = 0; i < m->nranges; i++) {
        const struct guest_mem_range *r = &m->ranges[i];
        uint64_t npages = r->size / PAGE;
        for (uint64_t p = 0; p < npages;) {
            if (page_is_zero(r->host + p * PAGE)) {
                p++;
                continue;
            }
            uint64_t start = p;
            while (p < npages && p - start < RAM_RUN_PAGES && !page_is_zero(r->host + p * PAGE))
                p++;
            snapshot_begin(w, "RAM ");
            snapshot_put_u64(w, r->gpa + start * PAGE);
            snapshot_put_u32(w, (uint32_t)(p - start));
            snapshot_put_bytes(w, r->host + start * PAGE, (size_t)(p - start) * PAGE);
            snapshot_end(w);
        }
    }
}

int vm_snapshot_take(struct vm *vm, const char *path, char *err, size_t errlen)
{
    struct snapshot_writer w;
    char derr[256] = "";
    int rc;

    if (!vm->cpu_ops->save || !vm->cpu_ops->restore) {
        snprintf(err, errlen, "snapshot take is not supported on %s: snapshots need --cpu sim",
                 vm->cpu_ops->name);
        return -ENOTSUP;
    }
    for (unsigned i = 0; i < vm->ndevices; i++)
        if (!vm->devices[i].type->save || !vm->devices[i].type->load) {
            snprintf(err, errlen, "device %s (%s) cannot be snapshotted", vm->devices[i].name,
                     vm->devices[i].kind);
            return -ENOTSUP;
        }
    for (unsigned i = 0; i < vm->mem.nranges; i++)
        if (!vm->mem.ranges[i].host || vm->mem.ranges[i].size % PAGE) {
            snprintf(err, errlen, "guest RAM range %u is not plain host memory", i);
            return -ENOTSUP;
        }
    rc = snapshot_writer_open(&w, path, err, errlen);
    if (rc)
        return rc;
    put_machine(&w, vm);

    snapshot_begin(&w, "CPU ");
    rc = vm->cpu_ops->save(vm->cpu, &w, derr, sizeof(derr));
    if (rc)
        goto refused;
    snapshot_end(&w);

    put_ram(&w, &vm->mem);

    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct device *d = &vm->devices[i];
        snapshot_begin(&w, "DEV ");
        snapshot_put_u32(&w, i);
        snapshot_put_str(&w, d->kind);
        rc = d->type->save(d->state, &w, derr, sizeof(derr));
        if (rc)
            goto refused;
        snapshot_end(&w);
    }

    unsigned pending = 0;
    for (unsigned i = 0; i < vm->ntimed; i++)
        pending += !vm->timed[i]->fired && vm->timed[i]->id > 0;
    snapshot_begin(&w, "TIMR");
    snapshot_put_u32(&w, pending);
    for (unsigned i = 0; i < vm->ntimed; i++) {
        const struct timed_request *t = vm->timed[i];
        if (t->fired || t->id <= 0)
            continue;
        snapshot_put_u64(&w, t->at_ns);
        snapshot_put_u64(&w, (uint64_t)t->id);
        snapshot_put_str(&w, t->json);
    }
    snapshot_end(&w);
    return snapshot_writer_close(&w, err, errlen);

refused:
    snapshot_writer_abort(&w);
    snprintf(err, errlen, "snapshot take: %s", derr);
    return rc;
}

/* ---- restore ---- */

int vm_snapshot_read_machine(struct snapshot_reader *r, struct machine_config *mc,
                             uint64_t *max_insns, char *err, size_t errlen)
{
    int rc = snapshot_next(r, "MACH", err, errlen);

    if (rc)
        return rc;
    memset(mc, 0, sizeof(*mc));
    mc->ram_size = snapshot_get_u64(r, "ram size");
    mc->seed = snapshot_get_u64(r, "seed");
    snapshot_get_str(r, mc->backend, sizeof(mc->backend), "backend");
    *max_insns = snapshot_get_u64(r, "max insns");
    uint32_t n = snapshot_get_u32(r, "device count");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (n > MACHINE_MAX_DEVICES)
        return snapshot_fail(r, err, errlen, "device count %u exceeds %d", n,
                             MACHINE_MAX_DEVICES);
    if (mc->ram_size < (2ULL << 20) || mc->ram_size % PAGE)
        return snapshot_fail(r, err, errlen, "ram size %llu is not a multiple of 4096 of at "
                             "least 2 MiB", (unsigned long long)mc->ram_size);
    mc->ndevices = n;
    for (unsigned i = 0; i < n; i++) {
        struct machine_device *d = &mc->devices[i];
        snapshot_get_str(r, d->kind, sizeof(d->kind), "device kind");
        snapshot_get_str(r, d->args, sizeof(d->args), "device args");
        d->base = snapshot_get_u64(r, "device base");
        d->irq = (int)snapshot_get_u32(r, "device irq");
        d->space = (int)snapshot_get_u32(r, "device bus");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (d->irq < -1 || d->irq >= 24 || (d->space != BUS_MMIO && d->space != BUS_PIO))
            return snapshot_fail(r, err, errlen, "device %u (%s): irq %d or bus %d is out of "
                                 "range", i, d->kind, d->irq, d->space);
        if (r->version < 2) {
            machine_device_set_format1_windows(d);
            continue;
        }
        uint32_t nw = snapshot_get_u32(r, "device window count");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (nw > DEVICE_MAX_WINDOWS)
            return snapshot_fail(r, err, errlen, "device %u (%s): %u windows, more than %d", i,
                                 d->kind, nw, DEVICE_MAX_WINDOWS);
        d->nwindows = nw;
        for (unsigned k = 0; k < nw; k++) {
            d->windows[k].offset = snapshot_get_u64(r, "device window offset");
            d->windows[k].size = snapshot_get_u64(r, "device window size");
        }
        char werr[200];
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (machine_device_check_windows(d, i, werr, sizeof(werr)))
            return snapshot_fail(r, err, errlen, "%s", werr);
    }
    return snapshot_check_done(r, err, errlen);
}

static int load_ram_chunk(struct vm *vm, struct snapshot_reader *r, char *err, size_t errlen)
{
    uint64_t gpa = snapshot_get_u64(r, "ram chunk address");
    uint32_t npages = snapshot_get_u32(r, "ram chunk pages");
    int rc = snapshot_check(r, err, errlen);

    if (rc)
        return rc;
    if (gpa % PAGE || npages == 0 || npages > RAM_RUN_PAGES)
        return snapshot_fail(r, err, errlen, "ram chunk at %#llx with %u pages: not page "
                             "aligned or not 1..%u pages", (unsigned long long)gpa, npages,
                             RAM_RUN_PAGES);
    uint64_t len = (uint64_t)npages * PAGE;
    uint8_t *dst = guest_mem_host(&vm->mem, gpa, len);
    if (!dst)
        return snapshot_fail(r, err, errlen, "ram chunk %#llx+%#llx is outside guest RAM",
                             (unsigned long long)gpa, (unsigned long long)len);
    const void *src = snapshot_get_ptr(r, (size_t)len, "ram pages");
    if ((rc = snapshot_check_done(r, err, errlen)))
        return rc;
    memcpy(dst, src, (size_t)len);
    return 0;
}

int vm_snapshot_load_state(struct vm *vm, struct snapshot_reader *r, char *err,
                           size_t errlen)
{
    int rc = snapshot_next(r, "CPU ", err, errlen);

    if (rc)
        return rc;
    if (!vm->cpu_ops->restore)
        return snapshot_fail(r, err, errlen, "the %s backend cannot restore snapshots",
                             vm->cpu_ops->name);
    /* CPU first: its restore runs a mode-switch stub in the still-zero RAM */
    rc = vm->cpu_ops->restore(vm->cpu, r, err, errlen);
    if (!rc)
        rc = snapshot_check_done(r, err, errlen);
    if (rc)
        return rc;
    for (;;) {
        if ((rc = snapshot_next(r, NULL, err, errlen)))
            return rc;
        if (strcmp(r->tag, "RAM "))
            break;
        if ((rc = load_ram_chunk(vm, r, err, errlen)))
            return rc;
    }
    for (unsigned i = 0; i < vm->ndevices; i++) {
        struct device *d = &vm->devices[i];
        char kind[DEVICE_KIND_MAX];
        if (i && (rc = snapshot_next(r, NULL, err, errlen)))
            return rc;
        if (strcmp(r->tag, "DEV "))
            return snapshot_fail(r, err, errlen, "expected the state of device %u (%s)", i,
                                 d->kind);
        uint32_t idx = snapshot_get_u32(r, "device index");
        snapshot_get_str(r, kind, sizeof(kind), "device kind");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (idx != i || strcmp(kind, d->kind))
            return snapshot_fail(r, err, errlen, "device %u (%s) expected, found %u (%s)", i,
                                 d->kind, idx, kind);
        if (!d->type->load)
            return snapshot_fail(r, err, errlen, "device %s cannot load a snapshot", d->kind);
        rc = d->type->load(d->state, r, err, errlen);
        if (!rc)
            rc = snapshot_check_done(r, err, errlen);
        if (rc)
            return rc;
    }
    if (vm->ndevices && (rc = snapshot_next(r, NULL, err, errlen)))
        return rc;
    if (strcmp(r->tag, "TIMR"))
        return snapshot_fail(r, err, errlen, "expected chunk 'TIMR' (pending --at requests)");
    uint32_t n = snapshot_get_u32(r, "timed request count");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (n > VM_MAX_ARGS)
        return snapshot_fail(r, err, errlen, "timed request count %u exceeds %d", n,
                             VM_MAX_ARGS);
    for (uint32_t i = 0; i < n; i++) {
        char json[SNAPSHOT_STR_MAX + 1];
        uint64_t at = snapshot_get_u64(r, "timed request time");
        uint64_t id = snapshot_get_u64(r, "timed request id");
        snapshot_get_str(r, json, sizeof(json), "timed request json");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (id == 0 || id > INT64_MAX)
            return snapshot_fail(r, err, errlen, "timed request id %llu is out of range",
                                 (unsigned long long)id);
        char rerr[200] = "";
        if (vm_restore_request(vm, at, (int64_t)id, json, rerr, sizeof(rerr)))
            return snapshot_fail(r, err, errlen, "%s", rerr);
    }
    if ((rc = snapshot_check_done(r, err, errlen)))
        return rc;
    if ((rc = snapshot_next(r, "END ", err, errlen)))
        return rc;
    if ((rc = snapshot_check_done(r, err, errlen)))
        return rc;
    uint8_t extra;
    if (fread(&extra, 1, 1, r->f) == 1)
        return snapshot_fail(r, err, errlen, "unexpected bytes after the END chunk");
    return 0;
}
