/* Trace replay: devices rebuilt from the header, driven from the trace, checked against it.
 * The matching rule is described in replay.h. */
#include "replay.h"
#include "replay_disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_TIMERS_MAX     256
#define REPLAY_FIRINGS_MAX    1000000   /* per advance: a timer re-arming at "now" forever */
#define REPLAY_FUZZ_MEM_MAX   (64ULL << 20)

struct rp_timer {
    int64_t id;
    uint64_t at, seq;
    clock_timer_fn fn;
    void *arg;
};

struct replay;

/* What a device's open_disk callback gets: which device is asking. */
struct rp_disk_slot {
    struct replay *r;
    unsigned dev;
};

/* host_io / host_pull opaque of one device. */
struct rp_device_ref {
    struct replay *r;
    int index;
};

struct replay {
    const struct trace_header *h;
    const struct trace_event *ev;
    size_t n;
    const struct replay_opts *o;
    struct replay_result *res;
    struct guest_mem mem;
    struct bus mmio, pio;
    struct device dev[MACHINE_MAX_DEVICES];
    int built[MACHINE_MAX_DEVICES];
    int selected[MACHINE_MAX_DEVICES];
    struct rp_device_ref refs[MACHINE_MAX_DEVICES];
    int all;
    struct clock clock;
    uint64_t now;
    struct rp_timer timers[REPLAY_TIMERS_MAX];
    unsigned ntimers;
    int64_t next_id;
    uint64_t seq;
    struct irq_sink sink;
    size_t exp, exp_end;        /* expectation window [exp, exp_end) */
    size_t cur;                 /* the guest access being replayed */
    int diverged, finished;
    FILE *devnull;
    struct rp_disk_slot disk_slot[MACHINE_MAX_DEVICES];
    struct replay_disk_content content[MACHINE_MAX_DEVICES];
};

static void rp_diverge(struct replay *r, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rp_diverge(struct replay *r, size_t at, const char *fmt, ...)
{
    va_list ap;

    if (r->diverged)
        return;
    r->diverged = 1;
    r->res->status = REPLAY_DIVERGED;
    r->res->diverged_at = at;
    va_start(ap, fmt);
    vsnprintf(r->res->message, sizeof(r->res->message), fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- expectations */

static int rp_relevant(const struct replay *r, const struct trace_event *e)
{
    if (e->kind == TRACE_EV_HOST_IN || e->kind == TRACE_EV_HOST_OUT)
        return e->device >= 0 && r->selected[e->device];
    if (e->kind != TRACE_EV_DMA_READ && e->kind != TRACE_EV_DMA_WRITE && e->kind != TRACE_EV_IRQ)
        return 0;
    if (r->all)
        return 1;
    if (e->kind == TRACE_EV_IRQ) {
        for (unsigned i = 0; i < r->h->machine.ndevices; i++)
            if (r->selected[i] && r->h->machine.devices[i].irq == (int)e->addr)
                return 1;
        return 0;
    }
    if (e->device >= 0)
        return r->selected[e->device];
    /* DMA is attributed to the access (or host input) that closes the window (see
     * replay.h). */
    if (r->exp_end < r->n) {
        const struct trace_event *c = &r->ev[r->exp_end];
        return (trace_kind_is_bus(c->kind) || c->kind == TRACE_EV_INPUT) && c->device >= 0 &&
               r->selected[c->device];
    }
    return 0;
}

static const struct trace_event *rp_next(struct replay *r, size_t *idx)
{
    while (r->exp < r->exp_end && !rp_relevant(r, &r->ev[r->exp]))
        r->exp++;
    if (r->exp >= r->exp_end)
        return NULL;
    *idx = r->exp;
    return &r->ev[r->exp];
}

static void rp_fmt(const struct replay *r, size_t idx, char *out, size_t outlen)
{
    trace_event_format(r->h, idx, &r->ev[idx], out, outlen);
}

static int rp_dma(struct replay *r, int write, uint64_t gpa, uint8_t *buf, size_t len)
{
    unsigned kind = write ? TRACE_EV_DMA_WRITE : TRACE_EV_DMA_READ;
    const char *what = write ? "wrote" : "read";
    char txt[300];
    size_t idx;

    if (r->diverged || r->finished)
        return -EIO;
    do {
        const struct trace_event *e = rp_next(r, &idx);
        if (!e) {
            rp_diverge(r, r->cur, "device %s guest memory gpa=0x%" PRIx64 " len=%zu, which "
                       "the trace does not have before this event", what, gpa, len);
            return -EIO;
        }
        rp_fmt(r, idx, txt, sizeof(txt));
        /* A transfer longer than TRACE_DATA_MAX was recorded as consecutive pieces. */
        if (e->kind != kind || e->addr != gpa || e->len > len ||
            (e->len < len && e->len != TRACE_DATA_MAX)) {
            rp_diverge(r, idx, "device %s guest memory gpa=0x%" PRIx64 " len=%zu; the trace "
                       "has: %s", what, gpa, len, txt);
            return -EIO;
        }
        if (write) {
            for (size_t i = 0; i < e->len; i++)
                if (buf[i] != e->data[i]) {
                    rp_diverge(r, idx, "device wrote 0x%02x at gpa=0x%" PRIx64 " (byte %zu "
                               "of %zu); the trace has 0x%02x", buf[i], gpa + i, i, len,
                               e->data[i]);
                    return -EIO;
                }
        } else if (e->len) {
            memcpy(buf, e->data, e->len);
        }
        buf += e->len;
        gpa += e->len;
        len -= e->len;
        r->exp = idx + 1;
        r->res->checked++;
    } while (len);
    return 0;
}

static int rp_mem_read(void *opaque, uint64_t gpa, void *dst, size_t len)
{
    return rp_dma(opaque, 0, gpa, dst, len);
}

static int rp_mem_write(void *opaque, uint64_t gpa, const void *src, size_t len)
{
    return rp_dma(opaque, 1, gpa, (uint8_t *)src, len);
}

static const struct guest_mem_backend rp_mem_backend = { rp_mem_read, rp_mem_write };

static void rp_irq(void *opaque, unsigned gsi, int level)
{
    struct replay *r = opaque;
    char txt[300];
    size_t idx;

    if (r->diverged || r->finished)
        return;
    level = level ? 1 : 0;
    const struct trace_event *e = rp_next(r, &idx);
    if (!e) {
        rp_diverge(r, r->cur, "device %s irq gsi=%u, which the trace does not have before "
                   "this event", level ? "raised" : "lowered", gsi);
        return;
    }
    if (e->kind != TRACE_EV_IRQ || e->addr != gsi || e->value != (uint64_t)level) {
        rp_fmt(r, idx, txt, sizeof(txt));
        rp_diverge(r, idx, "device %s irq gsi=%u; the trace has: %s",
                   level ? "raised" : "lowered", gsi, txt);
        return;
    }
    r->exp = idx + 1;
    r->res->checked++;
}

/* Host input the trace has next for this device, delivered as its backend did. */
static void rp_inject(struct replay *r, int dev, const struct trace_event *e)
{
    const struct device_type *t = r->dev[dev].type;

    r->res->checked++;
    if (!t->host_input) {
        rp_diverge(r, (size_t)(e - r->ev), "the trace has host input for %s, which takes "
                   "none", t->kind);
        return;
    }
    /* Not checked here: what the device did with the frame is checked against the events
     * that follow it in the trace. */
    char err[200] = "";
    (void)t->host_input(r->dev[dev].state, e->data, e->len, err, sizeof(err));
}

static void rp_host_pull(void *opaque)
{
    struct rp_device_ref *ref = opaque;
    struct replay *r = ref->r;
    size_t idx;
    const struct trace_event *e;

    while (!r->diverged && !r->finished && (e = rp_next(r, &idx)) &&
           e->kind == TRACE_EV_HOST_IN && e->value && e->device == ref->index) {
        r->exp = idx + 1;
        rp_inject(r, ref->index, e);
    }
}

/* host-out is checked like a DMA write; host-in the device reports is the frame replay
 * itself just delivered. */
static void rp_host_io(void *opaque, int dir, const void *data, size_t len)
{
    struct rp_device_ref *ref = opaque;
    struct replay *r = ref->r;
    char txt[300];
    size_t idx;

    if (dir != DEVICE_HOST_OUT || r->diverged || r->finished)
        return;
    const struct trace_event *e = rp_next(r, &idx);
    if (!e) {
        rp_diverge(r, r->cur, "device sent %zu bytes to the host, which the trace does not "
                   "have before this event", len);
        return;
    }
    if (e->kind != TRACE_EV_HOST_OUT || e->device != ref->index || e->len != len ||
        memcmp(e->data, data, len)) {
        rp_fmt(r, idx, txt, sizeof(txt));
        rp_diverge(r, idx, "device sent %zu bytes to the host; the trace has: %s", len, txt);
        return;
    }
    r->exp = idx + 1;
    r->res->checked++;
}

/* After a guest access: everything the trace says happened before it must have happened. */
static void rp_window_done(struct replay *r)
{
    char txt[300];
    size_t idx;

    if (r->diverged)
        return;
    if (rp_next(r, &idx)) {
        rp_fmt(r, idx, txt, sizeof(txt));
        rp_diverge(r, idx, "device did not do what the trace has: %s", txt);
    }
}

/* ---------------------------------------------------------------- clock */

static uint64_t rp_now(void *opaque)
{
    return ((struct replay *)opaque)->now;
}

static int64_t rp_schedule(void *opaque, uint64_t at_ns, clock_timer_fn fn, void *arg)
{
    struct replay *r = opaque;

    if (r->ntimers == REPLAY_TIMERS_MAX)
        return -ENOSPC;
    r->timers[r->ntimers] = (struct rp_timer){ ++r->next_id, at_ns, r->seq++, fn, arg };
    r->ntimers++;
    return r->next_id;
}

static int rp_cancel(void *opaque, int64_t id)
{
    struct replay *r = opaque;

    for (unsigned i = 0; i < r->ntimers; i++)
        if (r->timers[i].id == id) {
            r->timers[i] = r->timers[--r->ntimers];
            return 0;
        }
    return -ENOENT;
}

/* Fires, in (time, scheduling order), every timer due at or before t. */
static void rp_advance(struct replay *r, uint64_t t)
{
    for (unsigned fired = 0; !r->diverged; fired++) {
        int best = -1;
        for (unsigned i = 0; i < r->ntimers; i++) {
            const struct rp_timer *x = &r->timers[i];
            if (x->at <= t && (best < 0 || x->at < r->timers[best].at ||
                               (x->at == r->timers[best].at && x->seq < r->timers[best].seq)))
                best = (int)i;
        }
        if (best < 0)
            break;
        if (fired == REPLAY_FIRINGS_MAX) {
            rp_diverge(r, r->cur, "device timers keep firing at %" PRIu64 " ns (more than %d "
                       "firings without time advancing)", r->now, REPLAY_FIRINGS_MAX);
            break;
        }
        struct rp_timer x = r->timers[best];
        r->timers[best] = r->timers[--r->ntimers];
        if (x.at > r->now)
            r->now = x.at;
        x.fn(x.arg);
    }
    if (t > r->now)
        r->now = t;
}

/* ---------------------------------------------------------------- devices */

static void rp_request_exit(void *opaque, int status)
{
    struct replay *r = opaque;

    r->res->exit_requested = 1;
    r->res->exit_status = status;
}

static void rp_disk_miss(void *opaque, uint64_t sector)
{
    struct rp_disk_slot *slot = opaque;
    char label[64];

    trace_device_label(slot->r->h, (int)slot->dev, label, sizeof(label));
    rp_diverge(slot->r, slot->r->cur, "%s read disk sector %" PRIu64 ", whose content the "
               "trace does not have (the recorded run never read it)", label, sector);
}

/* An image the user named (--disk), or a version 1 trace's path: opened read-only. */
static int rp_open_image(struct rp_disk_slot *slot, const char *path, struct disk **out,
                         char *err, size_t errlen)
{
    struct replay *r = slot->r;
    const struct replay_disk_content *c = &r->content[slot->dev];
    char diff[300], label[64];

    if (r->o->no_files) {
        snprintf(err, errlen, "disk '%.200s': replay here does not open files", path);
        return -EPERM;
    }
    int rc = disk_open(path, 1, out, err, errlen);
    if (rc)
        return rc;
    if (r->o->notes && replay_disk_compare(c, *out, diff, sizeof(diff))) {
        trace_device_label(r->h, (int)slot->dev, label, sizeof(label));
        fprintf(r->o->notes, "replay: disk image %s for %s differs from what the trace saw: "
                "%s\n", path, label, diff);
    }
    return 0;
}

static int rp_open_disk(void *opaque, const char *path, int read_only, struct disk **out,
                        char *err, size_t errlen)
{
    struct rp_disk_slot *slot = opaque;
    struct replay *r = slot->r;
    const char *image = r->o->disk_images[slot->dev];
    struct disk *img = NULL;
    int rc;

    /* A version 1 trace has no disk content: the image at the recorded path, as before. */
    if (!image && r->h->version < 2)
        image = path;
    if (!image && !r->content[slot->dev].has_info) {
        snprintf(err, errlen, "the trace has no content for disk '%.200s' (recorded by an "
                 "older vmlab?): name an image with --disk %u=PATH", path, slot->dev);
        return -ENOENT;
    }
    if (image && (rc = rp_open_image(slot, image, &img, err, errlen)))
        return rc;
    return replay_disk_open(&r->content[slot->dev], img, read_only, rp_disk_miss, slot, out,
                            err, errlen);
}

/* Kinds whose out= option defaults to stdout when absent. */
static const char *const rp_out_kinds[] = { "uart8250", "virtio-console", NULL };

/* Host backend options: replay drops them (a virtio-net gets net=none, fed from the trace;
 * a virtio-vsock opens no host socket). */
static int rp_backend_item(const char *kind, const char *item, size_t len)
{
    static const char *const keys[] = { "net=", "tap=", "tapfd=", "hostfwd=", "restrict=",
                                        NULL };

    if (!strcmp(kind, "virtio-vsock"))
        return len >= 4 && !strncmp(item, "uds=", 4);
    if (strcmp(kind, "virtio-net"))
        return 0;
    for (const char *const *k = keys; *k; k++)
        if (len >= strlen(*k) && !strncmp(item, *k, strlen(*k)))
            return 1;
    return 0;
}

/* Device arguments for replay: output sinks (out=) go nowhere, so replay writes no file
 * and prints nothing of the guest's. */
static int rp_args(const char *kind, const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    const char *p = in;
    int has_out = 0;

    out[0] = '\0';
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        size_t ilen = len;
        if (len >= 4 && !strncmp(p, "out=", 4)) {
            item = "out=none";
            ilen = 8;
            has_out = 1;
        }
        if (rp_backend_item(kind, p, len)) {
            p += len;
            if (*p == ',')
                p++;
            continue;
        }
        if (o + ilen + 2 > outlen)
            return -EINVAL;
        if (ilen) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, item, ilen);
            o += ilen;
            out[o] = '\0';
        }
        p += len;
        if (*p == ',')
            p++;
    }
    for (const char *const *k = rp_out_kinds; *k && !has_out; k++)
        if (!strcmp(kind, *k)) {
            if (o + 10 > outlen)
                return -EINVAL;
            snprintf(out + o, outlen - o, "%sout=none", o ? "," : "");
        }
    if (!strcmp(kind, "virtio-net")) {
        o = strlen(out);
        if (o + 10 > outlen)
            return -EINVAL;
        snprintf(out + o, outlen - o, "%snet=none", o ? "," : "");
    }
    return 0;
}

/* For fuzzing: refuse in-memory disks larger than a fuzzer should allocate. */
static int rp_mem_too_big(const char *args)
{
    char v[32], *end;

    if (device_arg_get(args, "mem", v, sizeof(v)) != 1)
        return 0;
    unsigned long long x = strtoull(v, &end, 0);
    switch (*end) {
    case 'k': case 'K': x = x > (~0ULL >> 10) ? ~0ULL : x << 10; break;
    case 'm': case 'M': x = x > (~0ULL >> 20) ? ~0ULL : x << 20; break;
    case 'g': case 'G': x = x > (~0ULL >> 30) ? ~0ULL : x << 30; break;
    default: break;
    }
    return x > REPLAY_FUZZ_MEM_MAX;
}

static int rp_build(struct replay *r)
{
    const struct machine_config *mc = &r->h->machine;
    char args[DEVICE_ARGS_MAX], err[256];

    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        if (!r->selected[i])
            continue;
        struct device_env env = {
            .mem = &r->mem,
            .clock = &r->clock,
            .irq = { d->irq >= 0 ? &r->sink : NULL, d->irq >= 0 ? (unsigned)d->irq : 0 },
            .base = d->base,
            .windows = d->nwindows ? d->windows : NULL,
            .nwindows = d->nwindows,
            .seed = machine_device_seed(mc->seed, i),
            .deterministic = 1,
            .log = r->o->log ? r->o->log : r->devnull,
            .request_exit = rp_request_exit,
            .request_exit_opaque = r,
            .open_disk = rp_open_disk,
            .open_disk_opaque = &r->disk_slot[i],
            .host_io = rp_host_io,
            .host_pull = rp_host_pull,
            .host_io_opaque = &r->refs[i],
        };
        r->refs[i] = (struct rp_device_ref){ r, (int)i };
        struct bus *bus = d->space == BUS_PIO ? &r->pio : &r->mmio;
        int rc;
        err[0] = '\0';
        if (rp_args(d->kind, d->args, args, sizeof(args))) {
            snprintf(r->res->message, sizeof(r->res->message), "device %u (%s): arguments "
                     "too long", i, d->kind);
            return -EINVAL;
        }
        if (r->o->no_files && rp_mem_too_big(args)) {
            snprintf(r->res->message, sizeof(r->res->message), "device %u (%s): mem= disk "
                     "too large for fuzzing", i, d->kind);
            return -EFBIG;
        }
        if (r->o->create)
            rc = r->o->create(r->o->create_opaque, &r->dev[i], d->kind, args, &env, bus, err,
                              sizeof(err));
        else
            rc = device_create(&r->dev[i], d->kind, args, &env, bus, err, sizeof(err));
        if (rc) {
            snprintf(r->res->message, sizeof(r->res->message), "device %u (%s): %s", i,
                     d->kind, err[0] ? err : strerror(-rc));
            return rc;
        }
        r->built[i] = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the replay loop */

static void rp_destroy(struct replay *r)
{
    /* Last to first, as vm.c does. */
    for (unsigned d = MACHINE_MAX_DEVICES; d-- > 0;)
        if (r->built[d]) {
            r->built[d] = 0;
            device_destroy(&r->dev[d]);
        }
}

static void rp_issue(struct replay *r, size_t i)
{
    const struct trace_event *e = &r->ev[i];
    struct bus *bus = (e->kind == TRACE_EV_PIO_IN || e->kind == TRACE_EV_PIO_OUT) ? &r->pio : &r->mmio;

    r->exp_end = i;
    r->cur = i;
    rp_advance(r, e->time_ns);
    if (r->diverged)
        return;
    if (trace_kind_is_write(e->kind)) {
        bus_write(bus, e->addr, e->size, e->value);
        r->res->replayed++;
        rp_window_done(r);
    } else {
        uint64_t v;
        bus_read(bus, e->addr, e->size, &v);
        r->res->replayed++;
        /* Device work the trace has before this read comes first in the report. */
        rp_window_done(r);
        if (!r->diverged) {
            r->res->checked++;
            if (v != e->value) {
                char txt[300];
                rp_fmt(r, i, txt, sizeof(txt));
                rp_diverge(r, i, "device returned 0x%" PRIx64 " for: %s", v, txt);
            }
        }
    }
    r->exp = i + 1;
}

/* Host input that arrived on its own (a backend timer, not inside a device's call): what
 * came before it must have happened; what it causes follows it, up to the next event
 * replay drives. */
static void rp_host_input(struct replay *r, size_t i)
{
    const struct trace_event *e = &r->ev[i];

    r->exp_end = i;
    r->cur = i;
    rp_advance(r, e->time_ns);
    rp_window_done(r);
    if (r->diverged)
        return;
    r->exp = i + 1;
    for (r->exp_end = i + 1; r->exp_end < r->n; r->exp_end++) {
        const struct trace_event *x = &r->ev[r->exp_end];
        if (x->kind == TRACE_EV_END ||
            (trace_kind_is_bus(x->kind) && x->device >= 0 && r->selected[x->device]))
            break;
    }
    rp_inject(r, e->device, e);
}

/* Host input: handed to the device at its virtual time, as the VMM did; what the device
 * did with it (DMA, interrupts) precedes the event in the trace, like an access's. */
static void rp_input(struct replay *r, size_t i)
{
    const struct trace_event *e = &r->ev[i];
    const struct device *d = &r->dev[e->device];
    char err[200] = "";

    r->exp_end = i;
    r->cur = i;
    rp_advance(r, e->time_ns);
    if (r->diverged)
        return;
    if (!r->built[e->device] || !d->type->host_input) {
        rp_diverge(r, i, "the trace hands host input to device %d (%s), which takes none",
                   e->device, d->kind);
        return;
    }
    if (d->type->host_input(d->state, e->data, e->len, err, sizeof(err))) {
        rp_diverge(r, i, "device %s refused the recorded input: %s", d->kind, err);
        return;
    }
    r->res->replayed++;
    rp_window_done(r);
    r->exp = i + 1;
}

int trace_replay(const struct trace_header *h, const struct trace_event *ev, size_t n,
                 const struct replay_opts *opts, struct replay_result *res)
{
    static const struct replay_opts defaults;
    struct replay *r = calloc(1, sizeof(*r));
    size_t i;

    memset(res, 0, sizeof(*res));
    res->events = n;
    if (!r) {
        res->status = REPLAY_BAD;
        snprintf(res->message, sizeof(res->message), "out of memory");
        return REPLAY_BAD;
    }
    if (h->flags & TRACE_FLAG_MID_RUN) {
        res->status = REPLAY_BAD;
        snprintf(res->message, sizeof(res->message), "this trace was started on a running VM "
                 "(vmlab trace start): the devices' state when it began is not in it, so it "
                 "cannot be replayed (dump, diff and export work)");
        free(r);
        return REPLAY_BAD;
    }
    r->h = h;
    r->ev = ev;
    r->n = n;
    r->o = opts ? opts : &defaults;
    r->res = res;
    r->all = !r->o->device;
    for (unsigned d = 0; d < h->machine.ndevices; d++)
        r->selected[d] = r->all || trace_device_match(h, (int)d, r->o->device);
    if (!r->all) {
        unsigned any = 0;
        for (unsigned d = 0; d < h->machine.ndevices; d++)
            any |= (unsigned)r->selected[d];
        if (!any) {
            res->status = REPLAY_BAD;
            snprintf(res->message, sizeof(res->message), "--device %s: no such device in "
                     "this trace", r->o->device);
            free(r);
            return REPLAY_BAD;
        }
    }
    for (unsigned d = 0; d < h->machine.ndevices; d++) {
        char err[300];
        r->disk_slot[d] = (struct rp_disk_slot){ r, d };
        if (r->selected[d] && replay_disk_content_init(&r->content[d], r->o->disks,
                                                       r->o->ndisks, d, err, sizeof(err))) {
            res->status = REPLAY_BAD;
            snprintf(res->message, sizeof(res->message), "%s", err);
            for (unsigned k = 0; k < d; k++)
                replay_disk_content_free(&r->content[k]);
            free(r);
            return REPLAY_BAD;
        }
    }
    r->clock = (struct clock){ rp_now, rp_schedule, rp_cancel, r };
    r->sink = (struct irq_sink){ rp_irq, r };
    guest_mem_init_backend(&r->mem, h->machine.ram_size, &rp_mem_backend, r);
    bus_init(&r->mmio, BUS_MMIO);
    bus_init(&r->pio, BUS_PIO);
    if (!r->o->log)
        r->devnull = fopen("/dev/null", "w");
    if (!r->o->log && !r->devnull)
        r->devnull = stderr;

    /* What devices do while being created belongs to the first window. */
    for (r->exp_end = 0; r->exp_end < n; r->exp_end++) {
        const struct trace_event *e = &ev[r->exp_end];
        if (e->kind == TRACE_EV_END ||
            ((trace_kind_is_bus(e->kind) || e->kind == TRACE_EV_INPUT) && e->device >= 0 &&
             r->selected[e->device]))
            break;
    }
    if (rp_build(r)) {
        res->status = REPLAY_BAD;
    } else {
        int ended = 0;
        for (i = 0; i < n && !r->diverged; i++) {
            const struct trace_event *e = &ev[i];
            if (e->kind == TRACE_EV_END) {
                r->exp_end = i;
                r->cur = i;
                rp_advance(r, e->time_ns);
                /* The VMM destroys its devices before ending the trace: what they do
                 * then (lowering a line) is part of the last window. */
                rp_destroy(r);
                rp_window_done(r);
                ended = 1;
                break;
            }
            if (trace_kind_is_bus(e->kind) && e->device >= 0 && r->selected[e->device])
                rp_issue(r, i);
            else if (e->kind == TRACE_EV_HOST_IN && !e->value && e->device >= 0 &&
                     r->selected[e->device] && i >= r->exp)
                rp_host_input(r, i);
            else if (e->kind == TRACE_EV_INPUT && e->device >= 0 && r->selected[e->device])
                rp_input(r, i);
        }
        if (!ended && !r->diverged && n) {
            /* An intact prefix without its end: check what it holds. */
            r->exp_end = n;
            r->cur = n - 1;
            rp_advance(r, ev[n - 1].time_ns);
            rp_window_done(r);
        }
    }
    r->finished = 1;
    rp_destroy(r);
    if (r->devnull && r->devnull != stderr)
        fclose(r->devnull);
    guest_mem_destroy(&r->mem);
    for (unsigned d = 0; d < MACHINE_MAX_DEVICES; d++)
        replay_disk_content_free(&r->content[d]);
    free(r);
    return res->status;
}

void trace_replay_report(FILE *f, const struct trace_header *h, const struct trace_event *ev,
                         size_t n, const struct replay_result *res)
{
    char line[400];

    switch (res->status) {
    case REPLAY_MATCH:
        fprintf(f, "replay: match: %" PRIu64 " events, %" PRIu64 " guest accesses replayed, %"
                PRIu64 " device results checked\n", res->events, res->replayed, res->checked);
        break;
    case REPLAY_DIVERGED: {
        uint64_t at = res->diverged_at, from = at >= 5 ? at - 5 : 0;
        fprintf(f, "replay: divergence at event #%" PRIu64 ": %s\n", at, res->message);
        fprintf(f, "context:\n");
        for (uint64_t i = from; i <= at && i < n; i++) {
            trace_event_format(h, i, &ev[i], line, sizeof(line));
            fprintf(f, "  %s %s\n", i == at ? ">" : " ", line);
        }
        break;
    }
    case REPLAY_BAD:
        fprintf(f, "replay: cannot replay: %s\n", res->message);
        break;
    }
    if (res->exit_requested)
        fprintf(f, "replay: a device requested exit status %d\n", res->exit_status);
}

int trace_fuzz_one(const uint8_t *data, size_t size)
{
    struct trace_reader *rd;
    struct trace_event *ev = NULL;
    size_t n = 0;
    char err[300];
    struct replay_opts o = { .no_files = 1 };
    struct replay_result res;
    int status = REPLAY_BAD;
    /* A private copy with the checksums made right: mutations then reach the decoder and
     * the device models rather than all failing at the CRC. */
    uint8_t *copy = malloc(size ? size : 1);

    if (!copy)
        return REPLAY_BAD;
    memcpy(copy, data, size);
    trace_fix_crcs(copy, size);
    if (trace_reader_open_mem(&rd, copy, size, err, sizeof(err))) {
        free(copy);
        return REPLAY_BAD;
    }
    trace_reader_load(rd, &ev, &n, err, sizeof(err));
    o.disks = trace_reader_disks(rd, &o.ndisks);
    if (n)
        status = trace_replay(trace_reader_header(rd), ev, n, &o, &res);
    free(ev);
    trace_reader_close(rd);
    free(copy);
    return status;
}
