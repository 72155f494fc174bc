/* Reading traces: the file is mapped; chunks are checked (magic, lengths against their
 * caps, CRC, sequence) before any event in them is decoded. */
#include "trace_codec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- reader */

struct trace_reader {
    const uint8_t *buf;
    size_t size;
    int mapped;
    struct trace_header hdr;
    size_t pos;                 /* file offset of the next chunk */
    /* current chunk */
    const uint8_t *p, *end;
    uint32_t left;              /* events left in it */
    uint64_t chunk, chunk_off;  /* its index and offset */
    uint64_t time, last_addr, last_dma, index;
    int failed;
};

static int reader_init(struct trace_reader *r, char *err, size_t errlen)
{
    size_t hl;
    int rc = trace__header_decode(r->buf, r->size, &r->hdr, &hl, err, errlen);

    if (rc)
        return rc;
    r->pos = hl;
    r->p = r->end = r->buf + hl;
    r->chunk = (uint64_t)-1;
    return 0;
}

int trace_reader_open_mem(struct trace_reader **out, const void *buf, size_t len,
                          char *err, size_t errlen)
{
    struct trace_reader *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r) {
        snprintf(err, errlen, "trace: out of memory");
        return -ENOMEM;
    }
    r->buf = buf;
    r->size = len;
    rc = reader_init(r, err, errlen);
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    void *map;

    *out = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "trace %s: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        snprintf(err, errlen, "trace %s: %s", path,
                 S_ISREG(st.st_mode) ? "file is empty" : "not a regular file");
        close(fd);
        return -EINVAL;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        rc = -errno;
        snprintf(err, errlen, "trace %s: mmap: %s", path, strerror(-rc));
        return rc;
    }
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    rc = trace_reader_open_mem(out, map, (size_t)st.st_size, err, errlen);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    (*out)->mapped = 1;
    return 0;
}

void trace_reader_close(struct trace_reader *r)
{
    if (!r)
        return;
    if (r->mapped)
        munmap((void *)r->buf, r->size);
    free(r);
}

const struct trace_header *trace_reader_header(const struct trace_reader *r) { return &r->hdr; }
uint64_t trace_reader_index(const struct trace_reader *r) { return r->index; }
uint64_t trace_reader_chunks(const struct trace_reader *r) { return r->chunk + 1; }

static int chunk_open(struct trace_reader *r, char *err, size_t errlen)
{
    uint64_t idx = r->chunk + 1;
    size_t off = r->pos, left = r->size - off;
    const uint8_t *h = r->buf + off;

    if (left < TRACE_CHUNK_HDR_SIZE) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: truncated header (%zu of %d "
                 "bytes)", idx, off, left, TRACE_CHUNK_HDR_SIZE);
        return -EPIPE;
    }
    uint32_t magic = get32(h), plen = get32(h + 4), nev = get32(h + 8), stored = get32(h + 12);
    if (magic != TRACE_CHUNK_MAGIC) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: bad chunk magic 0x%08" PRIx32,
                 idx, off, magic);
        return -EBADMSG;
    }
    if (plen > TRACE_CHUNK_MAX) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: payload length %" PRIu32
                 " exceeds limit %u", idx, off, plen, TRACE_CHUNK_MAX);
        return -EBADMSG;
    }
    if (plen > left - TRACE_CHUNK_HDR_SIZE) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: truncated (payload needs %"
                 PRIu32 " bytes, %zu remain)", idx, off, plen, left - TRACE_CHUNK_HDR_SIZE);
        return -EPIPE;
    }
    uint32_t crc = trace_crc32(0, h + 4, 8);
    crc = trace_crc32(crc, h + 16, 16 + (size_t)plen);
    if (crc != stored) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: CRC mismatch (stored 0x%08"
                 PRIx32 ", computed 0x%08" PRIx32 ")", idx, off, stored, crc);
        return -EBADMSG;
    }
    if (nev == 0 || nev > plen / 3) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: event count %" PRIu32
                 " impossible for %" PRIu32 " payload bytes", idx, off, nev, plen);
        return -EBADMSG;
    }
    uint64_t first = get64(h + 24), base = get64(h + 16);
    if (first != r->index) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: first event index %" PRIu64
                 ", expected %" PRIu64 " (chunk missing or out of order)", idx, off, first,
                 r->index);
        return -EBADMSG;
    }
    if (base < r->time) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: start time %" PRIu64
                 " ns is before the previous event (%" PRIu64 " ns)", idx, off, base, r->time);
        return -EBADMSG;
    }
    r->chunk = idx;
    r->chunk_off = off;
    r->p = h + TRACE_CHUNK_HDR_SIZE;
    r->end = r->p + plen;
    r->left = nev;
    r->time = base;
    r->last_addr = r->last_dma = 0;
    r->pos = off + TRACE_CHUNK_HDR_SIZE + plen;
    return 0;
}

static int bad_event(struct trace_reader *r, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "chunk %" PRIu64 " at offset %" PRIu64 ", event %" PRIu64
             " (payload offset %zu): %s", r->chunk, r->chunk_off, r->index,
             (size_t)(r->p - (r->buf + r->chunk_off + TRACE_CHUNK_HDR_SIZE)), what);
    r->failed = 1;
    return -EBADMSG;
}

int trace_reader_next(struct trace_reader *r, struct trace_event *ev, char *err, size_t errlen)
{
    if (r->failed) {
        snprintf(err, errlen, "trace reader: already failed");
        return -EINVAL;
    }
    if (!r->left) {
        if (r->p != r->end)
            return bad_event(r, "bytes left over after the chunk's last event", err, errlen);
        if (r->pos == r->size)
            return 0;
        int rc = chunk_open(r, err, errlen);
        if (rc) {
            r->failed = 1;
            return rc;
        }
    }

    const uint8_t *p = r->p, *end = r->end;
    uint64_t dt, v, dev = 0;
    uint8_t b0;

    if (p >= end)
        return bad_event(r, "payload ends before the declared event count", err, errlen);
    b0 = *p++;
    unsigned k = b0 & 0x0f;
    if (k < 1 || k > TRACE_EV_KIND_MAX || (b0 & 0x80))
        return bad_event(r, "unknown event kind byte", err, errlen);
    if ((b0 & 0x30) && !trace_kind_is_bus(k) && k != TRACE_EV_IRQ)
        return bad_event(r, "size bits set on a non-access event", err, errlen);
    if (get_varint(&p, end, &dt))
        goto trunc;
    if (dt > UINT64_MAX - r->time)
        return bad_event(r, "time overflows", err, errlen);
    ev->time_ns = r->time + dt;
    ev->vcpu = 0;
    if (b0 & 0x40) {
        if (get_varint(&p, end, &v))
            goto trunc;
        if (v > 0xffff)
            return bad_event(r, "vcpu index out of range", err, errlen);
        ev->vcpu = (uint32_t)v;
    }
    ev->kind = (uint8_t)k;
    ev->size = 0;
    ev->device = -1;
    ev->addr = ev->value = 0;
    ev->data = NULL;
    ev->len = 0;
    switch (k) {
    case TRACE_EV_MMIO_READ: case TRACE_EV_MMIO_WRITE: case TRACE_EV_PIO_IN: case TRACE_EV_PIO_OUT: {
        unsigned lg = (b0 >> 4) & 3;
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &v))
            goto trunc;
        ev->addr = r->last_addr + (uint64_t)unzigzag(v);
        r->last_addr = ev->addr;
        if (get_varint(&p, end, &ev->value))
            goto trunc;
        ev->size = (uint8_t)(1u << lg);
        if (lg < 3 && ev->value >> (8u << lg))
            return bad_event(r, "access value wider than its size", err, errlen);
        break;
    }
    case TRACE_EV_DMA_READ: case TRACE_EV_DMA_WRITE:
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &v))
            goto trunc;
        ev->addr = r->last_dma + (uint64_t)unzigzag(v);
        r->last_dma = ev->addr;
        if (get_varint(&p, end, &v))
            goto trunc;
        if (v > TRACE_DATA_MAX)
            return bad_event(r, "DMA length exceeds the limit", err, errlen);
        if (v > (uint64_t)(end - p))
            goto trunc;
        ev->len = (uint32_t)v;
        ev->data = p;
        p += v;
        break;
    case TRACE_EV_IRQ:
        if (get_varint(&p, end, &ev->addr))
            goto trunc;
        ev->value = (b0 >> 4) & 3;
        if (ev->value > 1)
            return bad_event(r, "IRQ level is neither 0 nor 1", err, errlen);
        break;
    case TRACE_EV_NOTIFY:
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &ev->addr))
            goto trunc;
        break;
    case TRACE_EV_CONTROL: case TRACE_EV_FAULT:
        if (get_varint(&p, end, &v))
            goto trunc;
        if (v > TRACE_TEXT_MAX)
            return bad_event(r, "text length exceeds the limit", err, errlen);
        if (v > (uint64_t)(end - p))
            goto trunc;
        ev->len = (uint32_t)v;
        ev->data = p;
        p += v;
        break;
    case TRACE_EV_END:
        if (get_varint(&p, end, &v))
            goto trunc;
        ev->value = (uint64_t)unzigzag(v);
        break;
    case TRACE_EV_INPUT:
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &v))
            goto trunc;
        if (v > TRACE_TEXT_MAX)
            return bad_event(r, "input length exceeds the limit", err, errlen);
        if (v > (uint64_t)(end - p))
            goto trunc;
        ev->len = (uint32_t)v;
        ev->data = p;
        p += v;
        break;
    }
    if (dev > r->hdr.machine.ndevices)
        return bad_event(r, "device index beyond the header's device list", err, errlen);
    ev->device = (int16_t)((int)dev - 1);
    r->time = ev->time_ns;
    r->p = p;
    r->left--;
    r->index++;
    return 1;
trunc:
    return bad_event(r, "event runs past the end of its chunk", err, errlen);
}

int trace_reader_load(struct trace_reader *r, struct trace_event **evs, size_t *n,
                      char *err, size_t errlen)
{
    size_t cap = 1024, cnt = 0;
    struct trace_event *a = malloc(cap * sizeof(*a));
    int rc;

    *evs = NULL;
    *n = 0;
    if (!a) {
        snprintf(err, errlen, "trace: out of memory");
        return -ENOMEM;
    }
    for (;;) {
        if (cnt == cap) {
            struct trace_event *b = realloc(a, 2 * cap * sizeof(*a));
            if (!b) {
                rc = -ENOMEM;
                snprintf(err, errlen, "trace: out of memory after %zu events", cnt);
                break;
            }
            a = b;
            cap *= 2;
        }
        rc = trace_reader_next(r, &a[cnt], err, errlen);
        if (rc <= 0)
            break;
        cnt++;
    }
    if (rc == 0 && (cnt == 0 || a[cnt - 1].kind != TRACE_EV_END)) {
        snprintf(err, errlen, "trace ends after %zu events (%" PRIu64 " chunks, offset %zu) "
                 "without a run-end event: truncated", cnt, r->chunk + 1, r->pos);
        rc = -EPIPE;
    }
    *evs = a;
    *n = cnt;
    return rc;
}

void trace_fix_crcs(uint8_t *b, size_t len)
{
    if (len < TRACE_FILE_HDR_SIZE)
        return;
    uint32_t body = get32(b + 12);
    if (body > TRACE_HEADER_MAX || (size_t)body + TRACE_FILE_HDR_SIZE + 4 > len)
        return;
    size_t pos = TRACE_FILE_HDR_SIZE + body;
    put32(b + pos, trace_crc32(0, b, pos));
    pos += 4;
    while (len - pos >= TRACE_CHUNK_HDR_SIZE) {
        uint32_t plen = get32(b + pos + 4);
        if (plen > len - pos - TRACE_CHUNK_HDR_SIZE)
            break;
        uint32_t crc = trace_crc32(0, b + pos + 4, 8);
        put32(b + pos + 12, trace_crc32(crc, b + pos + 16, 16 + (size_t)plen));
        pos += TRACE_CHUNK_HDR_SIZE + plen;
    }
}
