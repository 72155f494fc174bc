/* The trace file header: magic, version, flags and the machine description. */
#include "trace_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- header encoding */

static int put_str(uint8_t **pp, const uint8_t *end, const char *s, size_t max, int wide)
{
    size_t n = strnlen(s, max + 1);

    if (n > max || (size_t)(end - *pp) < n + 2)
        return -1;
    if (wide) {
        put16(*pp, (uint16_t)n);
        *pp += 2;
    } else {
        *(*pp)++ = (uint8_t)n;
    }
    memcpy(*pp, s, n);
    *pp += n;
    return 0;
}

long trace__header_encode(const struct trace_header *h, uint8_t *buf, size_t cap)
{
    return trace__header_encode_as(h, TRACE_VERSION, buf, cap);
}

long trace__header_encode_as(const struct trace_header *h, unsigned version, uint8_t *buf,
                             size_t cap)
{
    const struct machine_config *mc = &h->machine;
    uint8_t *p = buf + TRACE_FILE_HDR_SIZE, *end = buf + cap - 4;

    if (mc->ndevices > MACHINE_MAX_DEVICES)
        return -1;
    if (put_str(&p, end, VMLAB_VERSION, TRACE_VERSION_STR_MAX, 0))
        return -1;
    if (end - p < 8) return -1;
    put64(p, mc->seed);
    p += 8;
    if (put_str(&p, end, mc->backend, sizeof(mc->backend) - 1, 0))
        return -1;
    if (end - p < 9) return -1;
    put64(p, mc->ram_size);
    p += 8;
    *p++ = (uint8_t)mc->ndevices;
    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        if (put_str(&p, end, d->kind, DEVICE_KIND_MAX - 1, 0) ||
            put_str(&p, end, d->args, DEVICE_ARGS_MAX - 1, 1) || end - p < 13)
            return -1;
        put64(p, d->base);
        put32(p + 8, (uint32_t)d->irq);
        p[12] = (uint8_t)d->space;
        p += 13;
        if (version < 3)
            continue;
        /* version 3: the windows, so replay rebuilds the bus the run had */
        struct device_window w[DEVICE_MAX_WINDOWS];
        unsigned nw = machine_device_windows(d, w);
        if (end - p < 1 + 16 * (long)nw)
            return -1;
        *p++ = (uint8_t)nw;
        for (unsigned k = 0; k < nw; k++, p += 16) {
            put64(p, w[k].offset);
            put64(p + 8, w[k].size);
        }
    }
    memcpy(buf, TRACE_MAGIC, 8);
    put16(buf + 8, (uint16_t)version);
    put16(buf + 10, (uint16_t)(h->flags & TRACE_FLAGS_KNOWN));
    put32(buf + 12, (uint32_t)(p - buf - TRACE_FILE_HDR_SIZE));
    put32(p, trace_crc32(0, buf, (size_t)(p - buf)));
    return (long)(p + 4 - buf);
}

struct cursor { const uint8_t *p, *end; };

static int get_str(struct cursor *c, char *out, size_t max, int wide, const char *field,
                   char *err, size_t errlen)
{
    size_t n;

    if (c->end - c->p < (wide ? 2 : 1))
        goto short_;
    n = wide ? get16(c->p) : c->p[0];
    c->p += wide ? 2 : 1;
    if (n > max) {
        snprintf(err, errlen, "trace header: %s length %zu exceeds limit %zu", field, n, max);
        return -EINVAL;
    }
    if ((size_t)(c->end - c->p) < n)
        goto short_;
    memcpy(out, c->p, n);
    out[n] = '\0';
    if (strlen(out) != n) {
        snprintf(err, errlen, "trace header: %s contains a NUL byte", field);
        return -EINVAL;
    }
    c->p += n;
    return 0;
short_:
    snprintf(err, errlen, "trace header: body ends inside %s", field);
    return -EINVAL;
}

int trace__header_decode(const uint8_t *buf, size_t size, struct trace_header *h, size_t *hlen,
                         char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (size < 8 || memcmp(buf, TRACE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a vmlab trace: bad magic at offset 0 (expected \"%s\")",
                 TRACE_MAGIC);
        return -EINVAL;
    }
    if (size < TRACE_FILE_HDR_SIZE) {
        snprintf(err, errlen, "trace header truncated: file is %zu bytes, header needs %d",
                 size, TRACE_FILE_HDR_SIZE);
        return -EINVAL;
    }
    unsigned version = get16(buf + 8), flags = get16(buf + 10);
    uint32_t body = get32(buf + 12);
    if (version < TRACE_VERSION_OLDEST || version > TRACE_VERSION) {
        snprintf(err, errlen, "trace format version %u is not supported (this vmlab reads "
                 "versions %d to %d)", version, TRACE_VERSION_OLDEST, TRACE_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (flags & ~TRACE_FLAGS_KNOWN) {
        snprintf(err, errlen, "trace header: unknown flags 0x%x", flags);
        return -EINVAL;
    }
    if (body > TRACE_HEADER_MAX) {
        snprintf(err, errlen, "trace header: body length %" PRIu32 " exceeds limit %u", body,
                 TRACE_HEADER_MAX);
        return -EINVAL;
    }
    if (size - TRACE_FILE_HDR_SIZE < (size_t)body + 4) {
        snprintf(err, errlen, "trace header truncated: body of %" PRIu32 " bytes + CRC, "
                 "only %zu bytes follow", body, size - TRACE_FILE_HDR_SIZE);
        return -EINVAL;
    }
    size_t end = TRACE_FILE_HDR_SIZE + body;
    uint32_t stored = get32(buf + end), crc = trace_crc32(0, buf, end);
    if (stored != crc) {
        snprintf(err, errlen, "trace header: CRC mismatch at offset %zu (stored 0x%08" PRIx32
                 ", computed 0x%08" PRIx32 ")", end, stored, crc);
        return -EBADMSG;
    }

    struct cursor c = { buf + TRACE_FILE_HDR_SIZE, buf + end };
    struct machine_config *mc = &h->machine;
    int rc;
    h->version = version;
    h->flags = flags;
    if ((rc = get_str(&c, h->vmlab_version, TRACE_VERSION_STR_MAX, 0, "vmlab version", err, errlen)))
        return rc;
    if (c.end - c.p < 8)
        goto short_;
    mc->seed = get64(c.p);
    c.p += 8;
    if ((rc = get_str(&c, mc->backend, sizeof(mc->backend) - 1, 0, "backend", err, errlen)))
        return rc;
    if (c.end - c.p < 9)
        goto short_;
    mc->ram_size = get64(c.p);
    mc->ndevices = c.p[8];
    c.p += 9;
    if (mc->ndevices > MACHINE_MAX_DEVICES) {
        snprintf(err, errlen, "trace header: device count %u exceeds limit %d", mc->ndevices,
                 MACHINE_MAX_DEVICES);
        return -EINVAL;
    }
    for (unsigned i = 0; i < mc->ndevices; i++) {
        struct machine_device *d = &mc->devices[i];
        if ((rc = get_str(&c, d->kind, DEVICE_KIND_MAX - 1, 0, "device kind", err, errlen)) ||
            (rc = get_str(&c, d->args, DEVICE_ARGS_MAX - 1, 1, "device args", err, errlen)))
            return rc;
        if (c.end - c.p < 13)
            goto short_;
        d->base = get64(c.p);
        d->irq = (int)get32(c.p + 8);
        d->space = c.p[12];
        c.p += 13;
        if (d->space != BUS_MMIO && d->space != BUS_PIO) {
            snprintf(err, errlen, "trace header: device %u space %d is neither mmio nor pio",
                     i, d->space);
            return -EINVAL;
        }
        if (version < 3) {
            machine_device_set_format1_windows(d);
            continue;
        }
        if (c.end - c.p < 1)
            goto short_;
        d->nwindows = *c.p++;
        if (d->nwindows > DEVICE_MAX_WINDOWS) {
            snprintf(err, errlen, "trace header: device %u has %u windows, more than %d", i,
                     d->nwindows, DEVICE_MAX_WINDOWS);
            return -EINVAL;
        }
        if ((size_t)(c.end - c.p) < 16 * (size_t)d->nwindows)
            goto short_;
        for (unsigned k = 0; k < d->nwindows; k++, c.p += 16)
            d->windows[k] = (struct device_window){ get64(c.p), get64(c.p + 8) };
        char werr[200];
        if (machine_device_check_windows(d, i, werr, sizeof(werr))) {
            snprintf(err, errlen, "trace header: %s", werr);
            return -EINVAL;
        }
    }
    if (c.p != c.end) {
        snprintf(err, errlen, "trace header: %zu unexpected bytes after the device list",
                 (size_t)(c.end - c.p));
        return -EINVAL;
    }
    *hlen = end + 4;
    return 0;
short_:
    snprintf(err, errlen, "trace header: body ends early (length %" PRIu32 ")", body);
    return -EINVAL;
}
