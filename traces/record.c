/* The trace recorder: taps on guest memory and the buses, a wrapper in front of the irq
 * sink, all feeding one trace_writer under a mutex. */
#include "record.h"
#include "disk_tap.h"
#include "trace_format.h"
#include "devices/device.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define REC_MAX_BUSES 4

struct rec_sink {
    struct irq_sink sink;           /* what devices get */
    const struct irq_sink *inner;
    struct trace_recorder *rec;
};

struct trace_recorder {
    pthread_mutex_t lock;
    struct trace_writer *w;
    struct machine_config mc;
    const struct clock *clock;
    uint64_t last_time;
    int virtio[MACHINE_MAX_DEVICES];    /* device is virtio-mmio: derive NOTIFY */
    struct bus *buses[REC_MAX_BUSES];
    unsigned nbuses;
    struct guest_mem *mem;
    struct rec_sink *sinks[MACHINE_MAX_DEVICES];
    unsigned nsinks;
    struct disk_tap_sink *disks[MACHINE_MAX_DEVICES];
    unsigned ndisks;
    int error;
};

static _Thread_local unsigned rec_vcpu;

void trace_recorder_set_vcpu(unsigned vcpu) { rec_vcpu = vcpu; }

static uint64_t rec_now(struct trace_recorder *r)
{
    uint64_t t = r->clock && r->clock->now_ns ? clock_now_ns(r->clock) : 0;

    /* Several vCPU threads on KVM: keep the stream monotonic. */
    if (t < r->last_time)
        t = r->last_time;
    r->last_time = t;
    return t;
}

/* Called with the lock held. */
static void rec_add(struct trace_recorder *r, struct trace_event *ev)
{
    ev->time_ns = rec_now(r);
    ev->vcpu = rec_vcpu;
    int rc = trace_writer_add(r->w, ev);
    if (rc && !r->error)
        r->error = rc;
}

static int rec_device_at(const struct trace_recorder *r, int space, uint64_t base)
{
    for (unsigned i = 0; i < r->mc.ndevices; i++)
        if (r->mc.devices[i].space == space && r->mc.devices[i].base == base)
            return (int)i;
    return -1;
}

static void rec_bus_tap(void *opaque, enum bus_space space, int is_write, uint64_t addr,
                        unsigned size, uint64_t value, int region)
{
    struct trace_recorder *r = opaque;
    struct trace_event ev = { 0 };
    int dev = -1;

    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < r->nbuses; i++) {
        struct bus *b = r->buses[i];
        if (b->space == space && region >= 0 && (unsigned)region < b->nregions) {
            dev = rec_device_at(r, space, b->regions[region].base - b->regions[region].offset);
            break;
        }
    }
    if (space == BUS_MMIO)
        ev.kind = is_write ? TRACE_EV_MMIO_WRITE : TRACE_EV_MMIO_READ;
    else
        ev.kind = is_write ? TRACE_EV_PIO_OUT : TRACE_EV_PIO_IN;
    ev.addr = addr;
    ev.size = (uint8_t)size;
    ev.value = value;
    ev.device = (int16_t)dev;
    rec_add(r, &ev);
    /* virtio-mmio QueueNotify (offset 0x50): a marker the tools group requests by. */
    if (dev >= 0 && is_write && space == BUS_MMIO && r->virtio[dev] &&
        addr - r->mc.devices[dev].base == 0x50) {
        struct trace_event n = { .kind = TRACE_EV_NOTIFY, .device = (int16_t)dev, .addr = value };
        rec_add(r, &n);
    }
    pthread_mutex_unlock(&r->lock);
}

static void rec_mem_tap(void *opaque, enum guest_mem_dir dir, uint64_t gpa, const void *data,
                        size_t len)
{
    struct trace_recorder *r = opaque;
    const uint8_t *p = data;

    pthread_mutex_lock(&r->lock);
    /* Larger transfers are split; the replayer serves a read from consecutive events. */
    do {
        size_t n = len > TRACE_DATA_MAX ? TRACE_DATA_MAX : len;
        struct trace_event ev = {
            .kind = dir == GUEST_MEM_WRITE ? TRACE_EV_DMA_WRITE : TRACE_EV_DMA_READ,
            .addr = gpa, .data = p, .len = (uint32_t)n, .device = -1,
        };
        rec_add(r, &ev);
        gpa += n;
        p += n;
        len -= n;
    } while (len);
    pthread_mutex_unlock(&r->lock);
}

static void rec_irq(void *opaque, unsigned gsi, int level)
{
    struct rec_sink *s = opaque;
    struct trace_recorder *r = s->rec;
    struct trace_event ev = { .kind = TRACE_EV_IRQ, .addr = gsi, .value = level ? 1 : 0,
                              .device = -1 };

    pthread_mutex_lock(&r->lock);
    rec_add(r, &ev);
    pthread_mutex_unlock(&r->lock);
    if (s->inner && s->inner->set_level)
        s->inner->set_level(s->inner->opaque, gsi, level);
}

/* A trace keeps a file's name, not its folder (device args path= and out=): the same run
 * from another folder, or with absolute paths, gives the same header, and replay needs
 * neither (disks replay from their recorded content, output sinks become out=none). */
static void rec_file_names_only(char *args)
{
    char out[DEVICE_ARGS_MAX];
    size_t o = 0;
    const char *p = args;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p), key = 0;
        if (len > 5 && !strncmp(p, "path=", 5))
            key = 5;
        else if (len > 4 && !strncmp(p, "out=", 4))
            key = 4;
        const char *slash = key ? memrchr(p + key, '/', len - key) : NULL;
        if (o)
            out[o++] = ',';
        if (slash && slash + 1 < p + len) {
            memcpy(out + o, p, key);
            memcpy(out + o + key, slash + 1, (size_t)(p + len - slash - 1));
            o += key + (size_t)(p + len - slash - 1);
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    out[o] = '\0';        /* never longer than the input */
    memcpy(args, out, o + 1);
}

static int rec_open(struct trace_recorder **out, const char *path,
                    const struct machine_config *mc, const struct clock *clock, unsigned flags,
                    char *err, size_t errlen)
{
    struct trace_recorder *r = calloc(1, sizeof(*r));
    struct trace_header h = { 0 };
    int rc;

    *out = NULL;
    if (!r) {
        snprintf(err, errlen, "trace: out of memory");
        return -ENOMEM;
    }
    h.version = TRACE_VERSION;
    h.flags = flags;
    h.machine = *mc;
    for (unsigned i = 0; i < h.machine.ndevices && i < MACHINE_MAX_DEVICES; i++)
        rec_file_names_only(h.machine.devices[i].args);
    rc = trace_writer_open(&r->w, path, &h, err, errlen);
    if (rc) {
        free(r);
        return rc;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->mc = *mc;
    r->clock = clock;
    for (unsigned i = 0; i < mc->ndevices && i < MACHINE_MAX_DEVICES; i++)
        r->virtio[i] = mc->devices[i].space == BUS_MMIO &&
                       strncmp(mc->devices[i].kind, "virtio-", 7) == 0;
    *out = r;
    return 0;
}

int trace_recorder_open(struct trace_recorder **out, const char *path,
                        const struct machine_config *mc, const struct clock *clock,
                        char *err, size_t errlen)
{
    return rec_open(out, path, mc, clock, 0, err, errlen);
}

int trace_recorder_open_running(struct trace_recorder **out, const char *path,
                                const struct machine_config *mc, const struct clock *clock,
                                char *err, size_t errlen)
{
    return rec_open(out, path, mc, clock, TRACE_FLAG_MID_RUN, err, errlen);
}

void trace_recorder_set_clock(struct trace_recorder *r, const struct clock *clock)
{
    pthread_mutex_lock(&r->lock);
    r->clock = clock;
    pthread_mutex_unlock(&r->lock);
}

const struct irq_sink *trace_recorder_wrap_irq(struct trace_recorder *r,
                                               const struct irq_sink *inner)
{
    struct rec_sink *s;

    /* Normally one sink per VM; the same inner sink is wrapped once. */
    for (unsigned i = 0; i < r->nsinks; i++)
        if (r->sinks[i]->inner == inner)
            return &r->sinks[i]->sink;
    if (r->nsinks == MACHINE_MAX_DEVICES || !(s = calloc(1, sizeof(*s))))
        return inner;   /* unrecorded rather than broken */
    s->inner = inner;
    s->rec = r;
    s->sink.set_level = rec_irq;
    s->sink.opaque = s;
    r->sinks[r->nsinks++] = s;
    return &s->sink;
}

void trace_recorder_attach_mem(struct trace_recorder *r, struct guest_mem *m)
{
    r->mem = m;
    guest_mem_set_tap(m, rec_mem_tap, r);
}

void trace_recorder_attach_bus(struct trace_recorder *r, struct bus *b)
{
    if (r->nbuses == REC_MAX_BUSES)
        return;
    r->buses[r->nbuses++] = b;
    bus_set_tap(b, rec_bus_tap, r);
}

static void rec_disk(struct trace_recorder *r, const struct trace_disk_record *d)
{
    pthread_mutex_lock(&r->lock);
    int rc = trace_writer_add_disk(r->w, d);
    if (rc && !r->error)
        r->error = rc;
    pthread_mutex_unlock(&r->lock);
}

static void rec_disk_content(void *opaque, unsigned dev, uint64_t offset, const void *data,
                             size_t len)
{
    struct trace_disk_record d = { .kind = TRACE_DISK_SECTORS, .device = (int16_t)dev,
                                   .a = offset / TRACE_DISK_SECTOR, .data = data,
                                   .len = (uint32_t)len };
    rec_disk(opaque, &d);
}

static void rec_disk_error(void *opaque, unsigned dev, uint64_t request, unsigned op, int err)
{
    struct trace_disk_record d = { .kind = TRACE_DISK_ERROR, .device = (int16_t)dev,
                                   .a = request, .op = (uint8_t)op,
                                   .b = err > 0 && err <= (int)TRACE_DISK_ERRNO_MAX ? (uint64_t)err
                                                                                   : EIO };
    rec_disk(opaque, &d);
}

static void rec_disk_info(void *opaque, unsigned dev, uint64_t size, int read_only)
{
    struct trace_disk_record d = { .kind = TRACE_DISK_INFO, .device = (int16_t)dev, .a = size,
                                   .b = read_only ? TRACE_DISK_F_READ_ONLY : 0 };
    rec_disk(opaque, &d);
}

void trace_recorder_attach_disk(struct trace_recorder *r, struct disk_tap_sink *sink)
{
    if (r->ndisks == MACHINE_MAX_DEVICES || !sink->used)
        return;
    rec_disk_info(r, sink->dev, sink->size, sink->read_only);
    r->disks[r->ndisks++] = sink;
    sink->content = rec_disk_content;
    sink->error = rec_disk_error;
    sink->resized = rec_disk_info;
    sink->generation++;
    sink->opaque = r;
}

static void rec_text(struct trace_recorder *r, unsigned kind, const char *text)
{
    struct trace_event ev = { .kind = (uint8_t)kind, .data = (const uint8_t *)text,
                              .len = (uint32_t)strnlen(text, TRACE_TEXT_MAX), .device = -1 };

    pthread_mutex_lock(&r->lock);
    rec_add(r, &ev);
    pthread_mutex_unlock(&r->lock);
}

void trace_recorder_host_io(struct trace_recorder *r, int device, int dir, const void *data,
                            size_t len)
{
    struct trace_event ev = { .kind = dir == DEVICE_HOST_OUT ? TRACE_EV_HOST_OUT
                                                             : TRACE_EV_HOST_IN,
                              .value = dir == DEVICE_HOST_IN_NESTED,
                              .data = data, .device = (int16_t)device,
                              .len = (uint32_t)(len > TRACE_DATA_MAX ? TRACE_DATA_MAX : len) };

    pthread_mutex_lock(&r->lock);
    rec_add(r, &ev);
    pthread_mutex_unlock(&r->lock);
}

void trace_recorder_control(struct trace_recorder *r, const char *json)
{
    rec_text(r, TRACE_EV_CONTROL, json ? json : "");
}

void trace_recorder_input(struct trace_recorder *r, int device, const void *data, size_t len)
{
    struct trace_event ev = { .kind = TRACE_EV_INPUT, .device = (int16_t)device,
                              .data = data, .len = (uint32_t)len };

    pthread_mutex_lock(&r->lock);
    rec_add(r, &ev);
    pthread_mutex_unlock(&r->lock);
}

void trace_recorder_fault(struct trace_recorder *r, const char *text)
{
    rec_text(r, TRACE_EV_FAULT, text ? text : "");
}

unsigned long long trace_recorder_events(const struct trace_recorder *r)
{
    return r ? (unsigned long long)trace_writer_events(r->w) : 0;
}

int trace_recorder_close(struct trace_recorder *r, int exit_status, char *err, size_t errlen)
{
    struct trace_event ev = { .kind = TRACE_EV_END, .value = (uint64_t)(int64_t)exit_status,
                              .device = -1 };
    int rc;

    if (!r)
        return 0;
    pthread_mutex_lock(&r->lock);
    rec_add(r, &ev);
    for (unsigned i = 0; i < r->nbuses; i++)
        if (r->buses[i]->tap == rec_bus_tap)
            bus_set_tap(r->buses[i], NULL, NULL);
    if (r->mem && r->mem->write_tap == rec_mem_tap)
        guest_mem_set_tap(r->mem, NULL, NULL);
    for (unsigned i = 0; i < r->ndisks; i++)
        if (r->disks[i]->opaque == r)
            r->disks[i]->opaque = NULL;
    pthread_mutex_unlock(&r->lock);
    rc = trace_writer_close(r->w, err, errlen);
    if (!rc && r->error) {
        rc = r->error;
        snprintf(err, errlen, "trace: recording failed: %s", strerror(-rc));
    }
    for (unsigned i = 0; i < r->nsinks; i++)
        free(r->sinks[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return rc;
}
