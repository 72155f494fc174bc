/* The recording disk wrapper (disk_tap.h): requests go to the real disk; a sparse bitmap
 * remembers the sectors already reported or overwritten since the recorder attached. */
#include "disk_tap.h"
#include "trace_format.h"

#include <stdlib.h>
#include <string.h>

#define SECT            TRACE_DISK_SECTOR
#define PAGE_SECTORS    32768u              /* sectors per bitmap page (4 KiB of bits) */
#define RUN_MAX         (64u * 1024)        /* content reported in pieces of at most this */

struct tap {
    struct disk *inner;
    struct disk_tap_sink *sink;
    unsigned generation;
    uint64_t requests;          /* numbered from 0 since the recorder attached */
    uint64_t **pages;           /* pages[i]: bits of sectors [i*PAGE_SECTORS, ...) */
    size_t npages;
};

static struct tap *tap_of(struct disk *d) { return d->priv; }

static void tap_forget(struct tap *t)
{
    for (size_t i = 0; i < t->npages; i++)
        free(t->pages[i]);
    free(t->pages);
    t->pages = NULL;
    t->npages = 0;
    t->requests = 0;
}

/* Recording? Then also start afresh if a new recording attached since the last request. */
static int tap_live(struct tap *t)
{
    if (!t->sink->opaque)
        return 0;
    if (t->generation != t->sink->generation) {
        tap_forget(t);
        t->generation = t->sink->generation;
    }
    return 1;
}

static int known(const struct tap *t, uint64_t s)
{
    uint64_t pg = s / PAGE_SECTORS, bit = s % PAGE_SECTORS;
    return pg < t->npages && t->pages[pg] && (t->pages[pg][bit / 64] >> (bit % 64) & 1);
}

/* Marks sector s; -ENOMEM leaves it unmarked (it is then reported again, which is harmless
 * for reads: replay refuses a second content record, so the trace says out of memory). */
static int mark(struct tap *t, uint64_t s)
{
    uint64_t pg = s / PAGE_SECTORS, bit = s % PAGE_SECTORS;

    if (pg >= t->npages) {
        size_t n = t->npages ? t->npages : 16;
        while (n <= pg)
            n *= 2;
        uint64_t **p = realloc(t->pages, n * sizeof(*p));
        if (!p)
            return -ENOMEM;
        memset(p + t->npages, 0, (n - t->npages) * sizeof(*p));
        t->pages = p;
        t->npages = n;
    }
    if (!t->pages[pg] && !(t->pages[pg] = calloc(PAGE_SECTORS / 64, sizeof(uint64_t))))
        return -ENOMEM;
    t->pages[pg][bit / 64] |= 1ULL << (bit % 64);
    return 0;
}

/* The sink is read afresh for each report: recording may have stopped in between. */
static void report(struct tap *t, uint64_t off, const uint8_t *data, size_t len)
{
    while (len && t->sink->opaque) {
        size_t n = len > RUN_MAX ? RUN_MAX : len;
        t->sink->content(t->sink->opaque, t->sink->dev, off, data, n);
        off += n;
        data += n;
        len -= n;
    }
}

static void report_error(struct tap *t, uint64_t request, unsigned op, int rc)
{
    if (t->sink->opaque)
        t->sink->error(t->sink->opaque, t->sink->dev, request, op, -rc);
}

/* Bytes of sector s that exist (the last one of an odd-sized image is short). */
static size_t sector_len(const struct disk *d, uint64_t s)
{
    uint64_t off = s * SECT;
    return d->size - off < SECT ? (size_t)(d->size - off) : SECT;
}

/* Reports sector s from the disk itself if it was not yet: for a request covering only
 * part of it (replay needs the rest). */
static void report_partial(struct disk *d, uint64_t s)
{
    struct tap *t = tap_of(d);
    uint8_t buf[SECT];
    size_t n = sector_len(d, s);

    if (known(t, s) || t->inner->ops->read(t->inner, s * SECT, buf, n))
        return;
    if (!mark(t, s))
        report(t, s * SECT, buf, n);
}

/* A request on [off, off+len): is sector s wholly inside it? */
static int covers(const struct disk *d, uint64_t off, uint64_t len, uint64_t s)
{
    return s * SECT >= off && s * SECT + sector_len(d, s) <= off + len;
}

static void edges_before_write(struct disk *d, uint64_t off, uint64_t len)
{
    if (!len || off > d->size || len > d->size - off)
        return;     /* the disk refuses it: nothing changes */
    uint64_t first = off / SECT, last = (off + len - 1) / SECT;
    if (!covers(d, off, len, first))
        report_partial(d, first);
    if (last != first && !covers(d, off, len, last))
        report_partial(d, last);
}

static void mark_written(struct disk *d, uint64_t off, uint64_t len)
{
    struct tap *t = tap_of(d);

    for (uint64_t s = off / SECT; len && s <= (off + len - 1) / SECT; s++)
        if (covers(d, off, len, s))
            mark(t, s);
}

static int tap_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    struct tap *t = tap_of(d);
    int live = tap_live(t);
    uint64_t req = t->requests++;
    int rc = t->inner->ops->read(t->inner, off, buf, len);

    if (!live)
        return rc;
    if (rc) {
        report_error(t, req, TRACE_DISK_OP_READ, rc);
        return rc;
    }
    /* Runs of sectors seen for the first time, reported from what was just read. */
    uint64_t run_start = 0, run_len = 0;
    for (uint64_t s = off / SECT; len && s <= (off + len - 1) / SECT; s++) {
        int fresh = !known(t, s);
        if (fresh && covers(d, off, len, s) && !mark(t, s)) {
            if (!run_len)
                run_start = s * SECT;
            run_len += sector_len(d, s);
            continue;
        }
        if (run_len)
            report(t, run_start, (const uint8_t *)buf + (run_start - off), (size_t)run_len);
        run_len = 0;
        if (fresh)
            report_partial(d, s);
    }
    if (run_len)
        report(t, run_start, (const uint8_t *)buf + (run_start - off), (size_t)run_len);
    return 0;
}

/* write, discard, write-zeroes: the sectors they wholly overwrite need no content. */
static int tap_modify(struct disk *d, unsigned op, uint64_t off, const void *buf, uint64_t len)
{
    struct tap *t = tap_of(d);
    int live = tap_live(t);
    uint64_t req = t->requests++;
    int rc;

    if (live)
        edges_before_write(d, off, len);
    if (op == TRACE_DISK_OP_WRITE)
        rc = t->inner->ops->write(t->inner, off, buf, (size_t)len);
    else if (op == TRACE_DISK_OP_DISCARD)
        rc = t->inner->ops->discard(t->inner, off, len);
    else
        rc = t->inner->ops->write_zeroes(t->inner, off, len);
    if (live && rc)
        report_error(t, req, op, rc);
    else if (live)
        mark_written(d, off, len);
    return rc;
}

static int tap_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    return tap_modify(d, TRACE_DISK_OP_WRITE, off, buf, len);
}

static int tap_discard(struct disk *d, uint64_t off, uint64_t len)
{
    return tap_modify(d, TRACE_DISK_OP_DISCARD, off, NULL, len);
}

static int tap_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    return tap_modify(d, TRACE_DISK_OP_WRITE_ZEROES, off, NULL, len);
}

static int tap_flush(struct disk *d)
{
    struct tap *t = tap_of(d);
    int live = tap_live(t);
    uint64_t req = t->requests++;
    int rc = t->inner->ops->flush(t->inner);

    if (live && rc)
        report_error(t, req, TRACE_DISK_OP_FLUSH, rc);
    return rc;
}

static int tap_resize(struct disk *d, uint64_t new_size)
{
    struct tap *t = tap_of(d);
    int rc = disk_resize(t->inner, new_size);

    if (rc)
        return rc;
    d->size = t->sink->size = t->inner->size;
    if (tap_live(t) && t->sink->resized)
        t->sink->resized(t->sink->opaque, t->sink->dev, d->size, d->read_only);
    return 0;
}

static void tap_close(struct disk *d)
{
    struct tap *t = tap_of(d);

    tap_forget(t);
    t->sink->used = 0;
    disk_close(t->inner);
    free(d);
}

static const struct disk_ops tap_ops = {
    .format = "trace-tap",
    .read = tap_read,
    .write = tap_write,
    .flush = tap_flush,
    .discard = tap_discard,
    .write_zeroes = tap_write_zeroes,
    .resize = tap_resize,
    .close = tap_close,
    /* no latency_ns: real disks charge none, and virtio-blk takes the op's presence for a
     * fault plan (which goes outside this wrapper, blk_inject_fault) */
};

int disk_tap_wrap(struct disk *inner, struct disk_tap_sink *sink, struct disk **out)
{
    struct disk *d = calloc(1, sizeof(*d) + sizeof(struct tap));

    *out = NULL;
    if (!d) {
        disk_close(inner);
        return -ENOMEM;
    }
    d->ops = &tap_ops;
    d->priv = d + 1;
    d->size = inner->size;
    d->read_only = inner->read_only;
    *tap_of(d) = (struct tap){ .inner = inner, .sink = sink, .generation = sink->generation - 1 };
    sink->used = 1;
    sink->size = inner->size;
    sink->read_only = inner->read_only;
    *out = d;
    return 0;
}
