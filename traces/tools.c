/* dump, diff and Chrome export of loaded traces. */
#include "tools.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void trace_print_header(FILE *out, const struct trace_header *h)
{
    const struct machine_config *mc = &h->machine;

    fprintf(out, "trace format %u, vmlab %s, backend %s, seed %" PRIu64 ", ram %" PRIu64
            " bytes, %u devices\n", h->version, h->vmlab_version, mc->backend, mc->seed,
            mc->ram_size, mc->ndevices);
    if (h->flags & TRACE_FLAG_MID_RUN)
        fprintf(out, "recording started on a running VM (not replayable)\n");
    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        struct device_window w[DEVICE_MAX_WINDOWS];
        unsigned nw = machine_device_windows(d, w);
        fprintf(out, "device %u: %s %s 0x%" PRIx64 " irq %d args \"%s\"", i, d->kind,
                d->space == BUS_PIO ? "pio" : "mmio", d->base, d->irq, d->args);
        for (unsigned k = 0; nw > 1 && k < nw; k++)        /* devices with ports apart */
            fprintf(out, "%s0x%" PRIx64 "+%" PRIu64, k ? "," : " windows ",
                    d->base + w[k].offset, w[k].size);
        fputc('\n', out);
    }
}

static int device_uses_gsi(const struct trace_header *h, const char *name, uint64_t gsi)
{
    for (unsigned i = 0; i < h->machine.ndevices; i++)
        if (h->machine.devices[i].irq >= 0 && (uint64_t)h->machine.devices[i].irq == gsi &&
            trace_device_match(h, (int)i, name))
            return 1;
    return 0;
}

int trace_filter_match(const struct trace_header *h, const struct trace_event *ev,
                       const struct trace_filter *f)
{
    if (!f)
        return 1;
    if (f->kinds && !(f->kinds & (1u << ev->kind)))
        return 0;
    if (ev->time_ns < f->from_ns || (f->to_ns && ev->time_ns > f->to_ns))
        return 0;
    if (f->device) {
        if (ev->kind == TRACE_EV_IRQ)
            return device_uses_gsi(h, f->device, ev->addr);
        if (ev->device < 0 || !trace_device_match(h, ev->device, f->device))
            return 0;
    }
    return 1;
}

size_t trace_dump(FILE *out, const struct trace_header *h, const struct trace_event *ev,
                  size_t n, const struct trace_filter *f)
{
    char line[512];
    size_t shown = 0;

    for (size_t i = 0; i < n; i++) {
        if (!trace_filter_match(h, &ev[i], f))
            continue;
        trace_event_format(h, i, &ev[i], line, sizeof(line));
        fprintf(out, "%s\n", line);
        shown++;
    }
    return shown;
}

/* ---------------------------------------------------------------- diff */

static int header_diff(FILE *out, const struct trace_header *a, const struct trace_header *b)
{
    const struct machine_config *x = &a->machine, *y = &b->machine;

    if (x->seed != y->seed) {
        fprintf(out, "headers differ: seed %" PRIu64 " vs %" PRIu64 "\n", x->seed, y->seed);
        return 1;
    }
    if (strcmp(x->backend, y->backend)) {
        fprintf(out, "headers differ: backend %s vs %s\n", x->backend, y->backend);
        return 1;
    }
    if (x->ram_size != y->ram_size) {
        fprintf(out, "headers differ: ram %" PRIu64 " vs %" PRIu64 "\n", x->ram_size, y->ram_size);
        return 1;
    }
    if (x->ndevices != y->ndevices) {
        fprintf(out, "headers differ: %u devices vs %u\n", x->ndevices, y->ndevices);
        return 1;
    }
    for (unsigned i = 0; i < x->ndevices; i++) {
        const struct machine_device *p = &x->devices[i], *q = &y->devices[i];
        if (strcmp(p->kind, q->kind) || strcmp(p->args, q->args) || p->base != q->base ||
            p->irq != q->irq || p->space != q->space) {
            fprintf(out, "headers differ: device %u is %s \"%s\" at 0x%" PRIx64 " irq %d vs "
                    "%s \"%s\" at 0x%" PRIx64 " irq %d\n", i, p->kind, p->args, p->base, p->irq,
                    q->kind, q->args, q->base, q->irq);
            return 1;
        }
        struct device_window wp[DEVICE_MAX_WINDOWS], wq[DEVICE_MAX_WINDOWS];
        unsigned np = machine_device_windows(p, wp), nq = machine_device_windows(q, wq);
        if (np != nq || memcmp(wp, wq, np * sizeof(wp[0]))) {
            fprintf(out, "headers differ: device %u (%s) has %u bus windows vs %u (%#" PRIx64
                    "+%" PRIu64 " first vs %#" PRIx64 "+%" PRIu64 ")\n", i, p->kind, np, nq,
                    p->base + wp[0].offset, np ? wp[0].size : 0, q->base + wq[0].offset,
                    nq ? wq[0].size : 0);
            return 1;
        }
    }
    return 0;
}

int trace_diff(FILE *out, const struct trace_header *ha, const struct trace_event *a, size_t na,
               const struct trace_header *hb, const struct trace_event *b, size_t nb,
               int check_time)
{
    char line[512];
    size_t i, m = na < nb ? na : nb;

    if (header_diff(out, ha, hb))
        return 1;
    for (i = 0; i < m; i++)
        if (!trace_event_equal(&a[i], &b[i], check_time))
            break;
    if (i == m && na == nb) {
        fprintf(out, "traces are identical: %zu events\n", na);
        return 0;
    }
    fprintf(out, "first difference at event #%zu\n", i);
    for (size_t k = i >= 5 ? i - 5 : 0; k < i; k++) {
        trace_event_format(ha, k, &a[k], line, sizeof(line));
        fprintf(out, "  %s\n", line);
    }
    if (i < na) {
        trace_event_format(ha, i, &a[i], line, sizeof(line));
        fprintf(out, "- %s\n", line);
    } else {
        fprintf(out, "- (A ends after %zu events)\n", na);
    }
    if (i < nb) {
        trace_event_format(hb, i, &b[i], line, sizeof(line));
        fprintf(out, "+ %s\n", line);
    } else {
        fprintf(out, "+ (B ends after %zu events)\n", nb);
    }
    return 1;
}

/* ---------------------------------------------------------------- requests */

size_t trace_requests(const struct trace_event *ev, size_t n, size_t **starts)
{
    size_t cnt = 0, cap = 16, cur = 0;
    size_t *s = malloc(cap * sizeof(*s));

    *starts = NULL;
    if (!s)
        return 0;
    int notifies = 0;

    if (n && ev[n - 1].kind == TRACE_EV_END)
        n--;
    for (size_t i = 0; i < n && !notifies; i++)
        notifies = ev[i].kind == TRACE_EV_NOTIFY;
    for (size_t i = 0; i < n; i++) {
        /* Without virtqueues (legacy devices only), each guest access with the device work
         * recorded before it is a request. */
        int boundary = notifies ? ev[i].kind == TRACE_EV_NOTIFY : trace_kind_is_bus(ev[i].kind);
        if (!boundary && i + 1 != n)
            continue;
        if (cnt + 1 >= cap) {
            size_t *t = realloc(s, 2 * cap * sizeof(*s));
            if (!t) {
                free(s);
                return 0;
            }
            s = t;
            cap *= 2;
        }
        s[cnt++] = cur;
        cur = i + 1;
    }
    s[cnt] = n;     /* sentinel: the end of the last request */
    *starts = s;
    return cnt;
}

/* ---------------------------------------------------------------- Chrome JSON */

static void json_str(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void ts_us(FILE *out, uint64_t ns)
{
    fprintf(out, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
}

static int gsi_device(const struct trace_header *h, uint64_t gsi)
{
    for (unsigned i = 0; i < h->machine.ndevices; i++)
        if (h->machine.devices[i].irq >= 0 && (uint64_t)h->machine.devices[i].irq == gsi)
            return (int)i;
    return -1;
}

int trace_export_chrome(FILE *out, const struct trace_header *h, const struct trace_event *ev,
                        size_t n)
{
    char label[64];
    /* The last two bus accesses: a notify's write is the last one, and the device work it
     * caused was recorded after the one before it. */
    size_t bus_last = 0, bus_prev = 0;
    unsigned nbus = 0;

    fprintf(out, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    fprintf(out, "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":"
            "\"vmlab %s seed %" PRIu64 "\"}}", h->machine.backend, h->machine.seed);
    fprintf(out, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"thread_name\",\"args\":"
            "{\"name\":\"vm\"}}");
    for (unsigned i = 0; i < h->machine.ndevices; i++) {
        trace_device_label(h, (int)i, label, sizeof(label));
        fprintf(out, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\",\"args\":"
                "{\"name\":", i + 1);
        json_str(out, label, strlen(label));
        fprintf(out, "}}");
    }
    for (size_t i = 0; i < n; i++) {
        const struct trace_event *e = &ev[i];
        switch (e->kind) {
        case TRACE_EV_NOTIFY: {
            /* The request: device work recorded since the previous access (its handler ran
             * before the access was recorded) up to the first interrupt from this device. */
            int dev = e->device, gsi = dev >= 0 ? h->machine.devices[dev].irq : -1;
            size_t first = nbus >= 2 ? bus_prev + 1 : 0;
            uint64_t start = e->time_ns, end = e->time_ns, dma = 0;
            int done = 0;
            for (size_t k = first; k < i; k++) {
                if (ev[k].kind == TRACE_EV_DMA_READ || ev[k].kind == TRACE_EV_DMA_WRITE ||
                    ev[k].kind == TRACE_EV_IRQ) {
                    if (ev[k].time_ns < start)
                        start = ev[k].time_ns;
                    dma += ev[k].len;
                    if (ev[k].kind == TRACE_EV_IRQ && ev[k].value && gsi >= 0 &&
                        ev[k].addr == (uint64_t)gsi) {
                        end = ev[k].time_ns;
                        done = 1;
                    }
                }
            }
            for (size_t k = i + 1; k < n && !done; k++) {
                if (ev[k].kind == TRACE_EV_NOTIFY && ev[k].device == dev)
                    break;
                if (ev[k].kind == TRACE_EV_IRQ && ev[k].value && gsi >= 0 &&
                    ev[k].addr == (uint64_t)gsi) {
                    end = ev[k].time_ns;
                    done = 1;
                }
            }
            /* The guest acknowledging that interrupt (virtio-mmio InterruptACK, 0x64)
             * closes the round trip; on the software CPU the device finishes within the
             * notify's instant, so this is where the time goes. */
            int acked = 0;
            for (size_t k = i + 1; k < n && done && dev >= 0; k++) {
                if (ev[k].kind == TRACE_EV_NOTIFY && ev[k].device == dev)
                    break;
                if (ev[k].kind == TRACE_EV_MMIO_WRITE && ev[k].device == dev &&
                    ev[k].addr - h->machine.devices[dev].base == 0x64) {
                    end = ev[k].time_ns;
                    acked = 1;
                    break;
                }
            }
            if (end < start)
                end = start;
            fprintf(out, ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"name\":\"queue %" PRIu64
                    "\",\"ts\":", dev + 1, e->addr);
            ts_us(out, start);
            fprintf(out, ",\"dur\":");
            ts_us(out, end - start);
            fprintf(out, ",\"args\":{\"event\":%zu,\"dma_bytes\":%" PRIu64
                    ",\"completed_by_irq\":%s,\"ended_by\":\"%s\"}}", i, dma,
                    done ? "true" : "false", acked ? "interrupt ack" : done ? "interrupt" :
                    "device work");
            break;
        }
        case TRACE_EV_IRQ: {
            int dev = gsi_device(h, e->addr);
            fprintf(out, ",\n{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":%d,\"name\":\"irq %"
                    PRIu64 " %s\",\"ts\":", dev + 1, e->addr, e->value ? "raised" : "lowered");
            ts_us(out, e->time_ns);
            fprintf(out, ",\"args\":{\"event\":%zu}}", i);
            break;
        }
        case TRACE_EV_CONTROL: case TRACE_EV_FAULT: case TRACE_EV_END:
            fprintf(out, ",\n{\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":0,\"name\":");
            {
                char s[240];
                int k;
                if (e->kind == TRACE_EV_END)
                    k = snprintf(s, sizeof(s), "end status %" PRId64, (int64_t)e->value);
                else
                    k = snprintf(s, sizeof(s), "%s: %.*s", trace_kind_name(e->kind),
                                 (int)(e->len > 200 ? 200 : e->len),
                                 e->data ? (const char *)e->data : "");
                /* %.*s stops at a NUL inside the text; json_str escapes the rest */
                json_str(out, s, k < 0 ? 0 : strlen(s));
            }
            fprintf(out, ",\"ts\":");
            ts_us(out, e->time_ns);
            fprintf(out, ",\"args\":{\"event\":%zu}}", i);
            break;
        default:
            if (trace_kind_is_bus(e->kind)) {
                bus_prev = bus_last;
                bus_last = i;
                nbus++;
            }
            break;
        }
    }
    fprintf(out, "\n]}\n");
    return ferror(out) ? -EIO : 0;
}
