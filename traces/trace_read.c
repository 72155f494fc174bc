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
    /* disk content chunks */
    uint64_t disk_index;        /* disk records read so far */
    uint64_t disk_bytes[MACHINE_MAX_DEVICES], disk_chunk_bytes;
    int keep_disks;
    struct trace_disk_record *disks;
    size_t ndisks, disks_cap;
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
    free(r->disks);
    free(r);
}

const struct trace_header *trace_reader_header(const struct trace_reader *r) { return &r->hdr; }
uint64_t trace_reader_index(const struct trace_reader *r) { return r->index; }
uint64_t trace_reader_chunks(const struct trace_reader *r) { return r->chunk + 1; }
void trace_reader_keep_disks(struct trace_reader *r) { r->keep_disks = 1; }
uint64_t trace_reader_disk_chunk_bytes(const struct trace_reader *r) { return r->disk_chunk_bytes; }

const struct trace_disk_record *trace_reader_disks(const struct trace_reader *r, size_t *n)
{
    *n = r->ndisks;
    return r->disks;
}

uint64_t trace_reader_disk_bytes(const struct trace_reader *r, unsigned dev)
{
    return dev < MACHINE_MAX_DEVICES ? r->disk_bytes[dev] : 0;
}

/* A disk content chunk (traces/FORMAT.md, "Disk content"): every record is checked here,
 * whether or not the reader keeps it. */
static int disk_chunk_read(struct trace_reader *r, uint64_t idx, size_t off, const uint8_t *h,
                           uint32_t plen, uint32_t nrec, char *err, size_t errlen)
{
    const uint8_t *p = h + TRACE_CHUNK_HDR_SIZE, *end = p + plen;
    uint64_t first = get64(h + 16), reserved = get64(h + 24);
    const char *what = NULL;

    if (first != r->disk_index) {
        snprintf(err, errlen, "disk content chunk %" PRIu64 " at offset %zu: first record "
                 "index %" PRIu64 ", expected %" PRIu64 " (chunk missing or out of order)",
                 idx, off, first, r->disk_index);
        return -EBADMSG;
    }
    if (reserved) {
        snprintf(err, errlen, "disk content chunk %" PRIu64 " at offset %zu: reserved field "
                 "is 0x%" PRIx64 ", not 0", idx, off, reserved);
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < nrec; i++) {
        struct trace_disk_record d = { 0 };
        uint64_t dev, v;
        const uint8_t *rec = p;

        if (p >= end) {
            what = "payload ends before the declared record count";
            goto bad;
        }
        d.kind = *p++;
        if (d.kind < 1 || d.kind > TRACE_DISK_KIND_MAX) {
            what = "unknown disk record kind";
            goto bad;
        }
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &d.a))
            goto trunc;
        if (dev >= r->hdr.machine.ndevices) {
            what = "device index beyond the header's device list";
            goto bad;
        }
        d.device = (int16_t)dev;
        switch (d.kind) {
        case TRACE_DISK_INFO:
            if (p >= end)
                goto trunc;
            d.b = *p++;
            if (d.b & ~(uint64_t)TRACE_DISK_FLAGS_KNOWN) {
                what = "unknown disk flags";
                goto bad;
            }
            break;
        case TRACE_DISK_SECTORS:
            if (get_varint(&p, end, &v))
                goto trunc;
            if (v == 0 || v > TRACE_DATA_MAX) {
                what = "sector content length is 0 or exceeds the limit";
                goto bad;
            }
            if (d.a > UINT64_MAX / TRACE_DISK_SECTOR - (TRACE_DATA_MAX / TRACE_DISK_SECTOR + 1)) {
                what = "sector number out of range";
                goto bad;
            }
            if (v > (uint64_t)(end - p))
                goto trunc;
            d.len = (uint32_t)v;
            d.data = p;
            p += v;
            r->disk_bytes[dev] += v;
            break;
        case TRACE_DISK_ERROR:
            if (p >= end)
                goto trunc;
            d.op = *p++;
            if (get_varint(&p, end, &d.b))
                goto trunc;
            if (d.op < 1 || d.op > TRACE_DISK_OP_MAX || d.b < 1 || d.b > TRACE_DISK_ERRNO_MAX) {
                what = "disk error record with an unknown operation or errno";
                goto bad;
            }
            break;
        }
        if (r->keep_disks) {
            if (r->ndisks == r->disks_cap) {
                size_t cap = r->disks_cap ? 2 * r->disks_cap : 64;
                struct trace_disk_record *a = realloc(r->disks, cap * sizeof(*a));
                if (!a) {
                    snprintf(err, errlen, "trace: out of memory for disk records");
                    return -ENOMEM;
                }
                r->disks = a;
                r->disks_cap = cap;
            }
            r->disks[r->ndisks++] = d;
        }
        r->disk_index++;
        continue;
trunc:
        what = "record runs past the end of its chunk";
bad:
        snprintf(err, errlen, "disk content chunk %" PRIu64 " at offset %zu, record %" PRIu64
                 " (payload offset %zu): %s", idx, off, r->disk_index,
                 (size_t)(rec - (h + TRACE_CHUNK_HDR_SIZE)), what);
        return -EBADMSG;
    }
    if (p != end) {
        snprintf(err, errlen, "disk content chunk %" PRIu64 " at offset %zu: %zu bytes left "
                 "over after the last record", idx, off, (size_t)(end - p));
        return -EBADMSG;
    }
    r->disk_chunk_bytes += TRACE_CHUNK_HDR_SIZE + (uint64_t)plen;
    return 0;
}

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
    int disk = magic == TRACE_DISK_MAGIC;
    if (magic != TRACE_CHUNK_MAGIC && !disk) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: bad chunk magic 0x%08" PRIx32,
                 idx, off, magic);
        return -EBADMSG;
    }
    if (disk && r->hdr.version < 2) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: disk content chunk in a "
                 "version %u trace", idx, off, r->hdr.version);
        return -EBADMSG;
    }
    const char *name = disk ? "disk content chunk" : "chunk";
    if (plen > TRACE_CHUNK_MAX) {
        snprintf(err, errlen, "%s %" PRIu64 " at offset %zu: payload length %" PRIu32
                 " exceeds limit %u", name, idx, off, plen, TRACE_CHUNK_MAX);
        return -EBADMSG;
    }
    if (plen > left - TRACE_CHUNK_HDR_SIZE) {
        snprintf(err, errlen, "%s %" PRIu64 " at offset %zu: truncated (payload needs %"
                 PRIu32 " bytes, %zu remain)", name, idx, off, plen, left - TRACE_CHUNK_HDR_SIZE);
        return -EPIPE;
    }
    uint32_t crc = trace_crc32(0, h + 4, 8);
    crc = trace_crc32(crc, h + 16, 16 + (size_t)plen);
    if (crc != stored) {
        snprintf(err, errlen, "%s %" PRIu64 " at offset %zu: CRC mismatch (stored 0x%08"
                 PRIx32 ", computed 0x%08" PRIx32 ")", name, idx, off, stored, crc);
        return -EBADMSG;
    }
    if (nev == 0 || nev > plen / 3) {
        snprintf(err, errlen, "%s %" PRIu64 " at offset %zu: %s count %" PRIu32
                 " impossible for %" PRIu32 " payload bytes", name, idx, off,
                 disk ? "record" : "event", nev, plen);
        return -EBADMSG;
    }
    if (disk) {
        int rc = disk_chunk_read(r, idx, off, h, plen, nev, err, errlen);
        if (rc)
            return rc;
        r->chunk = idx;
        r->pos = off + TRACE_CHUNK_HDR_SIZE + plen;
        return 0;
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

/* A length-prefixed byte string into ev->data/len: 0, 1 if the length passes max, -1 if
 * the payload ends first. */
static int get_bytes(const uint8_t **pp, const uint8_t *end, uint64_t max, struct trace_event *ev)
{
    uint64_t v;

    if (get_varint(pp, end, &v))
        return -1;
    if (v > max)
        return 1;
    if (v > (uint64_t)(end - *pp))
        return -1;
    ev->len = (uint32_t)v;
    ev->data = *pp;
    *pp += v;
    return 0;
}

int trace_reader_next(struct trace_reader *r, struct trace_event *ev, char *err, size_t errlen)
{
    if (r->failed) {
        snprintf(err, errlen, "trace reader: already failed");
        return -EINVAL;
    }
    while (!r->left) {         /* disk chunks hold no events: on to the next chunk */
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
    int lim;
    uint8_t b0;

    if (p >= end)
        return bad_event(r, "payload ends before the declared event count", err, errlen);
    b0 = *p++;
    unsigned k = b0 & 0x0f;
    if (k < 1 || k > TRACE_EV_KIND_MAX || (b0 & 0x80))
        return bad_event(r, "unknown event kind byte", err, errlen);
    if (r->hdr.version < 2 && (k == TRACE_EV_HOST_IN || k == TRACE_EV_HOST_OUT ||
                               k == TRACE_EV_INPUT))
        return bad_event(r, "host-in/host-out/input event in a version 1 trace", err, errlen);
    if ((b0 & 0x30) && !trace_kind_is_bus(k) && k != TRACE_EV_IRQ && k != TRACE_EV_HOST_IN)
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
        if ((lim = get_bytes(&p, end, TRACE_DATA_MAX, ev)) < 0)
            goto trunc;
        if (lim)
            return bad_event(r, "DMA length exceeds the limit", err, errlen);
        break;
    case TRACE_EV_HOST_IN: case TRACE_EV_HOST_OUT:
        if (get_varint(&p, end, &dev) || (lim = get_bytes(&p, end, TRACE_DATA_MAX, ev)) < 0)
            goto trunc;
        if (lim)
            return bad_event(r, "host data length exceeds the limit", err, errlen);
        ev->value = (b0 >> 4) & 3;
        if (ev->value > 1)
            return bad_event(r, "host-in nesting is neither 0 nor 1", err, errlen);
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
        if ((lim = get_bytes(&p, end, TRACE_TEXT_MAX, ev)) < 0)
            goto trunc;
        if (lim)
            return bad_event(r, "text length exceeds the limit", err, errlen);
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

    trace_reader_keep_disks(r);
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
