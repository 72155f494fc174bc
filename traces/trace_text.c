/* Event kinds by name, device labels, and the one-line text form of an event. */
#include "trace_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

static const char *const kind_names[TRACE_EV_KIND_MAX + 1] = {
    [TRACE_EV_MMIO_READ] = "mmio-read", [TRACE_EV_MMIO_WRITE] = "mmio-write",
    [TRACE_EV_PIO_IN] = "pio-in",       [TRACE_EV_PIO_OUT] = "pio-out",
    [TRACE_EV_DMA_READ] = "dma-read",   [TRACE_EV_DMA_WRITE] = "dma-write",
    [TRACE_EV_IRQ] = "irq",             [TRACE_EV_NOTIFY] = "notify",
    [TRACE_EV_CONTROL] = "control",     [TRACE_EV_FAULT] = "fault",
    [TRACE_EV_END] = "end",
    [TRACE_EV_HOST_IN] = "host-in",     [TRACE_EV_HOST_OUT] = "host-out",
    [TRACE_EV_INPUT] = "input",
};

const char *trace_kind_name(unsigned kind)
{
    return kind >= 1 && kind <= TRACE_EV_KIND_MAX ? kind_names[kind] : "?";
}

const char *trace_disk_op_name(unsigned op)
{
    static const char *const names[TRACE_DISK_OP_MAX + 1] = {
        [TRACE_DISK_OP_READ] = "read", [TRACE_DISK_OP_WRITE] = "write",
        [TRACE_DISK_OP_FLUSH] = "flush", [TRACE_DISK_OP_DISCARD] = "discard",
        [TRACE_DISK_OP_WRITE_ZEROES] = "write-zeroes",
    };
    return op >= 1 && op <= TRACE_DISK_OP_MAX ? names[op] : "?";
}

uint32_t trace_kind_parse(const char *name)
{
    if (!strcmp(name, "mmio"))
        return 1u << TRACE_EV_MMIO_READ | 1u << TRACE_EV_MMIO_WRITE;
    if (!strcmp(name, "pio"))
        return 1u << TRACE_EV_PIO_IN | 1u << TRACE_EV_PIO_OUT;
    if (!strcmp(name, "bus"))
        return 0xfu << TRACE_EV_MMIO_READ;
    if (!strcmp(name, "dma"))
        return 1u << TRACE_EV_DMA_READ | 1u << TRACE_EV_DMA_WRITE;
    if (!strcmp(name, "host"))
        return 1u << TRACE_EV_HOST_IN | 1u << TRACE_EV_HOST_OUT;
    for (unsigned k = 1; k <= TRACE_EV_KIND_MAX; k++)
        if (!strcmp(name, kind_names[k]))
            return 1u << k;
    return 0;
}

/* ---------------------------------------------------------------- formatting */

void trace_device_label(const struct trace_header *h, int dev, char *out, size_t outlen)
{
    char id[DEVICE_NAME_MAX];

    if (dev < 0 || (unsigned)dev >= h->machine.ndevices) {
        snprintf(out, outlen, "-");
        return;
    }
    const struct machine_device *d = &h->machine.devices[dev];
    if (device_arg_get(d->args, "id", id, sizeof(id)) == 1 && id[0])
        snprintf(out, outlen, "%s#%d(%s)", d->kind, dev, id);
    else
        snprintf(out, outlen, "%s#%d", d->kind, dev);
}

int trace_device_match(const struct trace_header *h, int dev, const char *name)
{
    char id[DEVICE_NAME_MAX], buf[DEVICE_KIND_MAX + 16];

    if (dev < 0 || (unsigned)dev >= h->machine.ndevices)
        return 0;
    const struct machine_device *d = &h->machine.devices[dev];
    if (!strcmp(name, d->kind))
        return 1;
    if (device_arg_get(d->args, "id", id, sizeof(id)) == 1 && !strcmp(name, id))
        return 1;
    snprintf(buf, sizeof(buf), "%d", dev);
    if (!strcmp(name, buf) || (name[0] == '#' && !strcmp(name + 1, buf)))
        return 1;
    snprintf(buf, sizeof(buf), "%s#%d", d->kind, dev);
    return !strcmp(name, buf);
}

static void hex_bytes(const uint8_t *d, size_t n, char *out, size_t outlen)
{
    size_t show = n > 16 ? 16 : n, o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < show && o + 3 < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%02x", d[i]);
    if (n > show && o + 4 < outlen)
        snprintf(out + o, outlen - o, "...");
}

static void text_escape(const uint8_t *d, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < outlen; i++) {
        uint8_t c = d[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

void trace_event_format(const struct trace_header *h, uint64_t index, const struct trace_event *ev,
                        char *out, size_t outlen)
{
    char dev[64], extra[200];
    int n = snprintf(out, outlen, "#%" PRIu64 " %" PRIu64 "ns cpu%" PRIu32 " %s", index,
                     ev->time_ns, ev->vcpu, trace_kind_name(ev->kind));
    size_t o = n < 0 ? 0 : (size_t)n >= outlen ? outlen - 1 : (size_t)n;

    trace_device_label(h, ev->device, dev, sizeof(dev));
    switch (ev->kind) {
    case TRACE_EV_MMIO_READ: case TRACE_EV_MMIO_WRITE: case TRACE_EV_PIO_IN: case TRACE_EV_PIO_OUT: {
        uint64_t off = ev->addr;
        if (ev->device >= 0 && (unsigned)ev->device < h->machine.ndevices)
            off -= h->machine.devices[ev->device].base;
        snprintf(out + o, outlen - o, " %s 0x%" PRIx64 " (+0x%" PRIx64 ") size=%u value=0x%"
                 PRIx64, dev, ev->addr, off, ev->size, ev->value);
        break;
    }
    case TRACE_EV_DMA_READ: case TRACE_EV_DMA_WRITE:
        hex_bytes(ev->data, ev->len, extra, sizeof(extra));
        snprintf(out + o, outlen - o, " gpa=0x%" PRIx64 " len=%" PRIu32 " data=%s", ev->addr,
                 ev->len, extra);
        break;
    case TRACE_EV_HOST_IN: case TRACE_EV_HOST_OUT:
        hex_bytes(ev->data, ev->len, extra, sizeof(extra));
        snprintf(out + o, outlen - o, " %s%s len=%" PRIu32 " data=%s", dev,
                 ev->value ? " nested" : "", ev->len, extra);
        break;
    case TRACE_EV_IRQ:
        snprintf(out + o, outlen - o, " gsi=%" PRIu64 " %s", ev->addr,
                 ev->value ? "raised" : "lowered");
        break;
    case TRACE_EV_NOTIFY:
        snprintf(out + o, outlen - o, " %s queue=%" PRIu64, dev, ev->addr);
        break;
    case TRACE_EV_CONTROL: case TRACE_EV_FAULT:
        text_escape(ev->data, ev->len, extra, sizeof(extra));
        snprintf(out + o, outlen - o, " %s", extra);
        break;
    case TRACE_EV_END:
        snprintf(out + o, outlen - o, " status=%" PRId64, (int64_t)ev->value);
        break;
    case TRACE_EV_INPUT:
        hex_bytes(ev->data, ev->len, extra, sizeof(extra));
        snprintf(out + o, outlen - o, " %s len=%" PRIu32 " data=%s", dev, ev->len, extra);
        break;
    }
}

int trace_event_equal(const struct trace_event *a, const struct trace_event *b, int check_time)
{
    if (a->kind != b->kind || a->addr != b->addr || a->value != b->value || a->len != b->len ||
        a->vcpu != b->vcpu || a->device != b->device || a->size != b->size)
        return 0;
    if (check_time && a->time_ns != b->time_ns)
        return 0;
    return a->len == 0 || memcmp(a->data, b->data, a->len) == 0;
}
