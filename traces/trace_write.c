/* Writing traces: events encoded into an in-memory chunk, whole chunks written. */
#include "trace_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writer */

/* A chunk being filled: header space, then the payload. */
struct chunk_buf {
    uint8_t *buf;
    size_t len, cap;        /* payload bytes after the header space; allocated bytes */
    uint32_t count;         /* events or disk records in it */
};

struct trace_writer {
    FILE *f;
    struct chunk_buf ev, disk;
    uint64_t chunk_base_time, time, index, chunk_first;
    uint64_t last_addr, last_dma;
    uint64_t disk_index, disk_first;    /* disk records written / first of the open chunk */
    uint64_t bytes;
    int error;
};

static int chunk_reserve(struct chunk_buf *c, size_t more)
{
    size_t need = TRACE_CHUNK_HDR_SIZE + c->len + more;

    if (need <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 2 * TRACE_CHUNK_TARGET;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(c->buf, cap);
    if (!p)
        return -ENOMEM;
    c->buf = p;
    c->cap = cap;
    return 0;
}

/* Fills in the chunk header (traces/FORMAT.md, "Chunks") and writes the chunk. */
static void chunk_write(struct trace_writer *w, struct chunk_buf *c, uint32_t magic,
                        uint64_t field16, uint64_t field24)
{
    uint8_t *h = c->buf;

    put32(h, magic);
    put32(h + 4, (uint32_t)c->len);
    put32(h + 8, c->count);
    put64(h + 16, field16);
    put64(h + 24, field24);
    uint32_t crc = trace_crc32(0, h + 4, 8);
    crc = trace_crc32(crc, h + 16, 16 + c->len);
    put32(h + 12, crc);
    size_t total = TRACE_CHUNK_HDR_SIZE + c->len;
    if (!w->error && fwrite(h, 1, total, w->f) != total)
        w->error = -EIO;
    w->bytes += total;
    c->len = 0;
    c->count = 0;
}

/* Disk content goes out before the events that needed it, so that the intact prefix of a
 * damaged trace has the content its reads saw. */
static void disk_flush(struct trace_writer *w)
{
    if (!w->disk.count)
        return;
    chunk_write(w, &w->disk, TRACE_DISK_MAGIC, w->disk_first, 0);
    w->disk_first = w->disk_index;
}

int trace_writer_open(struct trace_writer **out, const char *path, const struct trace_header *h,
                      char *err, size_t errlen)
{
    uint8_t hdr[TRACE_FILE_HDR_SIZE + 32 + MACHINE_MAX_DEVICES * (DEVICE_KIND_MAX + DEVICE_ARGS_MAX + 20) + 64];
    long hl = trace__header_encode(h, hdr, sizeof(hdr));
    struct trace_writer *w;

    *out = NULL;
    if (hl < 0) {
        snprintf(err, errlen, "trace %s: machine description does not fit the header", path);
        return -EINVAL;
    }
    w = calloc(1, sizeof(*w));
    if (!w || chunk_reserve(&w->ev, TRACE_CHUNK_TARGET)) {
        free(w);
        snprintf(err, errlen, "trace %s: out of memory", path);
        return -ENOMEM;
    }
    w->f = fopen(path, "wb");
    if (!w->f) {
        int e = errno;
        snprintf(err, errlen, "trace %s: %s", path, strerror(e));
        free(w->ev.buf);
        free(w);
        return -e;
    }
    if (fwrite(hdr, 1, (size_t)hl, w->f) != (size_t)hl)
        w->error = -EIO;
    w->bytes = (uint64_t)hl;
    *out = w;
    return 0;
}

int trace_writer_flush(struct trace_writer *w)
{
    disk_flush(w);
    if (!w->ev.count)
        return w->error;
    chunk_write(w, &w->ev, TRACE_CHUNK_MAGIC, w->chunk_base_time, w->chunk_first);
    w->chunk_base_time = w->time;
    w->chunk_first = w->index;
    w->last_addr = w->last_dma = 0;
    return w->error;
}

int trace_writer_add_disk(struct trace_writer *w, const struct trace_disk_record *rec)
{
    uint32_t len = rec->kind == TRACE_DISK_SECTORS ? rec->len : 0;

    if (rec->kind < 1 || rec->kind > TRACE_DISK_KIND_MAX || rec->device < 0)
        return -EINVAL;
    if (len > TRACE_DATA_MAX)
        return -EMSGSIZE;
    if (chunk_reserve(&w->disk, 40 + (size_t)len)) {
        w->error = -ENOMEM;
        return -ENOMEM;
    }
    uint8_t *p = w->disk.buf + TRACE_CHUNK_HDR_SIZE + w->disk.len, *start = p;
    *p++ = rec->kind;
    p = put_varint(p, (uint64_t)rec->device);
    p = put_varint(p, rec->a);
    switch (rec->kind) {
    case TRACE_DISK_INFO:
        *p++ = (uint8_t)(rec->b & TRACE_DISK_FLAGS_KNOWN);
        break;
    case TRACE_DISK_SECTORS:
        p = put_varint(p, len);
        memcpy(p, rec->data, len);
        p += len;
        break;
    case TRACE_DISK_ERROR:
        *p++ = rec->op;
        p = put_varint(p, rec->b);
        break;
    }
    w->disk.len += (size_t)(p - start);
    w->disk.count++;
    w->disk_index++;
    if (w->disk.len >= TRACE_CHUNK_TARGET)
        disk_flush(w);
    return w->error;
}

int trace_writer_add(struct trace_writer *w, const struct trace_event *ev)
{
    unsigned k = ev->kind;
    uint32_t len = 0;

    if (k < 1 || k > TRACE_EV_KIND_MAX)
        return -EINVAL;
    if (k == TRACE_EV_DMA_READ || k == TRACE_EV_DMA_WRITE || k == TRACE_EV_HOST_IN ||
        k == TRACE_EV_HOST_OUT)
        len = ev->len;
    else if (k == TRACE_EV_CONTROL || k == TRACE_EV_FAULT)
        len = ev->len > TRACE_TEXT_MAX ? TRACE_TEXT_MAX : ev->len;   /* text is cut, not lost */
    else if (k == TRACE_EV_INPUT && ev->len > TRACE_TEXT_MAX)
        return -EMSGSIZE;       /* input cut short would replay differently */
    else if (k == TRACE_EV_INPUT)
        len = ev->len;
    if (len > TRACE_DATA_MAX)
        return -EMSGSIZE;
    if (chunk_reserve(&w->ev, 64 + (size_t)len)) {
        w->error = -ENOMEM;
        return -ENOMEM;
    }

    uint8_t *start = w->ev.buf + TRACE_CHUNK_HDR_SIZE + w->ev.len, *p = start + 1;
    uint64_t t = ev->time_ns < w->time ? w->time : ev->time_ns;
    uint8_t b0 = (uint8_t)k;

    p = put_varint(p, t - w->time);
    w->time = t;
    if (ev->vcpu) {
        b0 |= 0x40;
        p = put_varint(p, ev->vcpu);
    }
    switch (k) {
    case TRACE_EV_MMIO_READ: case TRACE_EV_MMIO_WRITE: case TRACE_EV_PIO_IN: case TRACE_EV_PIO_OUT: {
        unsigned lg = ev->size >= 8 ? 3 : ev->size >= 4 ? 2 : ev->size >= 2 ? 1 : 0;
        uint64_t mask = lg == 3 ? ~0ULL : (1ULL << (8u << lg)) - 1;
        b0 |= (uint8_t)(lg << 4);
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, zigzag((int64_t)(ev->addr - w->last_addr)));
        w->last_addr = ev->addr;
        p = put_varint(p, ev->value & mask);
        break;
    }
    case TRACE_EV_DMA_READ: case TRACE_EV_DMA_WRITE:
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, zigzag((int64_t)(ev->addr - w->last_dma)));
        w->last_dma = ev->addr;
        p = put_varint(p, len);
        memcpy(p, ev->data, len);
        p += len;
        break;
    case TRACE_EV_HOST_IN: case TRACE_EV_HOST_OUT:
        if (k == TRACE_EV_HOST_IN)
            b0 |= (uint8_t)((ev->value ? 1 : 0) << 4);
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, len);
        memcpy(p, ev->data, len);
        p += len;
        break;
    case TRACE_EV_IRQ:
        b0 |= (uint8_t)((ev->value ? 1 : 0) << 4);
        p = put_varint(p, ev->addr);
        break;
    case TRACE_EV_NOTIFY:
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, ev->addr);
        break;
    case TRACE_EV_CONTROL: case TRACE_EV_FAULT:
        p = put_varint(p, len);
        if (len)
            memcpy(p, ev->data, len);
        p += len;
        break;
    case TRACE_EV_END:
        p = put_varint(p, zigzag((int64_t)ev->value));
        break;
    case TRACE_EV_INPUT:
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, len);
        if (len)
            memcpy(p, ev->data, len);
        p += len;
        break;
    }
    *start = b0;
    w->ev.len += (size_t)(p - start);
    w->ev.count++;
    w->index++;
    if (w->ev.len >= TRACE_CHUNK_TARGET)
        return trace_writer_flush(w);
    return 0;
}

uint64_t trace_writer_bytes(const struct trace_writer *w)
{
    return w->bytes + w->ev.len + w->disk.len;
}
uint64_t trace_writer_events(const struct trace_writer *w) { return w->index; }

int trace_writer_close(struct trace_writer *w, char *err, size_t errlen)
{
    int rc;

    if (!w)
        return 0;
    trace_writer_flush(w);
    if (fclose(w->f) && !w->error)
        w->error = -EIO;
    rc = w->error;
    if (rc)
        snprintf(err, errlen, "trace: writing failed: %s", strerror(-rc));
    free(w->ev.buf);
    free(w->disk.buf);
    free(w);
    return rc;
}

int trace_write_file_disks(const char *path, const struct trace_header *h,
                           const struct trace_disk_record *disks, size_t ndisks,
                           const struct trace_event *ev, size_t n, char *err, size_t errlen)
{
    struct trace_writer *w;
    int rc = trace_writer_open(&w, path, h, err, errlen);

    if (rc)
        return rc;
    for (size_t i = 0; i < ndisks && !rc; i++)
        rc = trace_writer_add_disk(w, &disks[i]);
    for (size_t i = 0; i < n && !rc; i++)
        rc = trace_writer_add(w, &ev[i]);
    int rc2 = trace_writer_close(w, err, errlen);
    if (rc && !rc2)
        snprintf(err, errlen, "trace %s: %s", path, strerror(-rc));
    return rc ? rc : rc2;
}

int trace_write_file(const char *path, const struct trace_header *h,
                     const struct trace_event *ev, size_t n, char *err, size_t errlen)
{
    return trace_write_file_disks(path, h, NULL, 0, ev, n, err, errlen);
}
