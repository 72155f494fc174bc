/* Replay disks (replay_disk.h): a read-only disk served from recorded sector content, the
 * copy-on-write overlay over it (cow_disk.c), and a wrapper that numbers the requests and
 * fails those the recorded run's disk failed. */
#include "replay_disk.h"
#include "cow_disk.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECT TRACE_DISK_SECTOR

/* ---------------------------------------------------------------- the records */

/* Sectors sort by first sector, errors by request number: both are field a. */
static int by_a(const void *a, const void *b)
{
    const struct trace_disk_record *x = a, *y = b;
    return x->a < y->a ? -1 : x->a > y->a;
}

void replay_disk_content_free(struct replay_disk_content *c)
{
    free(c->sectors);
    free(c->errors);
    memset(c, 0, sizeof(*c));
}

int replay_disk_content_init(struct replay_disk_content *c, const struct trace_disk_record *recs,
                             size_t n, unsigned dev, char *err, size_t errlen)
{
    size_t ns = 0, ne = 0;
    uint64_t limit = 0;         /* the largest size the disk had (a resize records another) */

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        if (recs[i].device != (int)dev)
            continue;
        if (recs[i].kind == TRACE_DISK_SECTORS) {
            ns++;
        } else if (recs[i].kind == TRACE_DISK_ERROR) {
            ne++;
        } else {
            if (!c->has_info) {         /* the first description: the disk at the start */
                c->has_info = 1;
                c->size = recs[i].a;
                c->read_only = (recs[i].b & TRACE_DISK_F_READ_ONLY) != 0;
            }
            if (recs[i].a > limit)
                limit = recs[i].a;
        }
    }
    if ((ns && !(c->sectors = malloc(ns * sizeof(*c->sectors)))) ||
        (ne && !(c->errors = malloc(ne * sizeof(*c->errors))))) {
        replay_disk_content_free(c);
        snprintf(err, errlen, "disk content of device %u: out of memory", dev);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].device != (int)dev)
            continue;
        if (recs[i].kind == TRACE_DISK_SECTORS)
            c->sectors[c->nsectors++] = recs[i];
        else if (recs[i].kind == TRACE_DISK_ERROR)
            c->errors[c->nerrors++] = recs[i];
    }
    if (ns && !c->has_info) {
        replay_disk_content_free(c);
        snprintf(err, errlen, "disk content of device %u: sectors without a disk description",
                 dev);
        return -EINVAL;
    }
    if (ns)
        qsort(c->sectors, ns, sizeof(*c->sectors), by_a);
    if (ne)
        qsort(c->errors, ne, sizeof(*c->errors), by_a);
    for (size_t i = 0; i < ns; i++) {
        const struct trace_disk_record *r = &c->sectors[i];
        uint64_t off = r->a * SECT, end = off + r->len;     /* the reader bounded both */
        const char *why = NULL;
        if (end > limit)
            why = "lie beyond the end of the disk";
        else if (r->len % SECT && end != limit)
            why = "are not whole sectors";
        else if (i + 1 < ns && end > c->sectors[i + 1].a * SECT)
            why = "overlap the next record";
        if (why) {
            snprintf(err, errlen, "disk content of device %u: %" PRIu32 " bytes at sector %"
                     PRIu64 " %s (disk of %" PRIu64 " bytes)", dev, r->len, r->a, why, limit);
            replay_disk_content_free(c);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i + 1 < ne; i++)
        if (c->errors[i].a == c->errors[i + 1].a) {
            snprintf(err, errlen, "disk content of device %u: request %" PRIu64 " failed "
                     "twice", dev, c->errors[i].a);
            replay_disk_content_free(c);
            return -EINVAL;
        }
    return 0;
}

/* ---------------------------------------------------------------- recorded content */

struct recorded {
    const struct replay_disk_content *c;
    replay_disk_miss_fn miss;
    void *miss_opaque;
};

/* The last record starting at or before byte off, or NULL. */
static const struct trace_disk_record *rec_at(const struct replay_disk_content *c, uint64_t off)
{
    size_t lo = 0, hi = c->nsectors;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->sectors[mid].a * SECT <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? &c->sectors[lo - 1] : NULL;
}

static int recorded_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    struct recorded *r = d->priv;
    uint8_t *p = buf;

    if (off > d->size || len > d->size - off)
        return -EINVAL;
    while (len) {
        const struct trace_disk_record *x = rec_at(r->c, off);
        uint64_t start = x ? x->a * SECT : 0;
        if (!x || off >= start + x->len) {
            if (r->miss)
                r->miss(r->miss_opaque, off / SECT);
            return -EIO;
        }
        size_t n = (size_t)(start + x->len - off);
        if (n > len)
            n = len;
        memcpy(p, x->data + (off - start), n);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int recorded_refuse(struct disk *d, uint64_t off, uint64_t len)
{
    (void)d; (void)off; (void)len;
    return -EROFS;
}

static int recorded_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    (void)buf;
    return recorded_refuse(d, off, len);
}

static int recorded_flush(struct disk *d)
{
    (void)d;
    return 0;
}

static void recorded_close(struct disk *d)
{
    free(d);
}

static const struct disk_ops recorded_ops = {
    .format = "trace-content",
    .read = recorded_read,
    .write = recorded_write,
    .flush = recorded_flush,
    .discard = recorded_refuse,
    .write_zeroes = recorded_refuse,
    .close = recorded_close,
};

/* ---------------------------------------------------------------- recorded errors */

struct failing {
    struct disk *inner;
    const struct replay_disk_content *c;
    uint64_t requests;
    size_t next;                /* next error record */
};

/* The errno the recorded run got for this request, or 0. */
static int failing_next(struct disk *d, unsigned op)
{
    struct failing *f = d->priv;
    uint64_t req = f->requests++;

    (void)op;   /* a different operation here is the device's divergence, shown by it */
    while (f->next < f->c->nerrors && f->c->errors[f->next].a < req)
        f->next++;
    if (f->next < f->c->nerrors && f->c->errors[f->next].a == req)
        return -(int)f->c->errors[f->next].b;
    return 0;
}

static int failing_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    int rc = failing_next(d, TRACE_DISK_OP_READ);
    struct failing *f = d->priv;
    return rc ? rc : f->inner->ops->read(f->inner, off, buf, len);
}

static int failing_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    int rc = failing_next(d, TRACE_DISK_OP_WRITE);
    struct failing *f = d->priv;
    return rc ? rc : f->inner->ops->write(f->inner, off, buf, len);
}

static int failing_flush(struct disk *d)
{
    int rc = failing_next(d, TRACE_DISK_OP_FLUSH);
    struct failing *f = d->priv;
    return rc ? rc : f->inner->ops->flush(f->inner);
}

static int failing_discard(struct disk *d, uint64_t off, uint64_t len)
{
    int rc = failing_next(d, TRACE_DISK_OP_DISCARD);
    struct failing *f = d->priv;
    return rc ? rc : f->inner->ops->discard(f->inner, off, len);
}

static int failing_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    int rc = failing_next(d, TRACE_DISK_OP_WRITE_ZEROES);
    struct failing *f = d->priv;
    return rc ? rc : f->inner->ops->write_zeroes(f->inner, off, len);
}

static void failing_close(struct disk *d)
{
    struct failing *f = d->priv;
    disk_close(f->inner);
    free(d);
}

static const struct disk_ops failing_ops = {
    .format = "trace-errors",
    .read = failing_read,
    .write = failing_write,
    .flush = failing_flush,
    .discard = failing_discard,
    .write_zeroes = failing_write_zeroes,
    .close = failing_close,
};

/* ---------------------------------------------------------------- opening */

int replay_disk_open(const struct replay_disk_content *c, struct disk *image, int read_only,
                     replay_disk_miss_fn miss, void *miss_opaque, struct disk **out,
                     char *err, size_t errlen)
{
    struct disk *base = image, *cow, *top;

    *out = NULL;
    if (!base) {
        if (!c->has_info) {
            snprintf(err, errlen, "the trace has no content for this disk");
            return -ENOENT;
        }
        base = calloc(1, sizeof(*base) + sizeof(struct recorded));
        if (!base)
            goto nomem;
        base->ops = &recorded_ops;
        base->priv = base + 1;
        base->size = c->size;
        base->read_only = 1;
        *(struct recorded *)base->priv = (struct recorded){ c, miss, miss_opaque };
    }
    /* Guest-visible read-only: the flag the device was given, or the recorded disk's (an
     * image is always opened read-only: replay never writes a file). */
    read_only |= c->has_info && c->read_only;
    if (cow_disk_wrap(base, read_only, &cow)) {
        disk_close(base);
        goto nomem;
    }
    top = calloc(1, sizeof(*top) + sizeof(struct failing));
    if (!top) {
        disk_close(cow);
        goto nomem;
    }
    top->ops = &failing_ops;
    top->priv = top + 1;
    top->size = cow->size;
    top->read_only = cow->read_only;
    *(struct failing *)top->priv = (struct failing){ .inner = cow, .c = c };
    *out = top;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory for the replay disk");
    return -ENOMEM;
}

int replay_disk_compare(const struct replay_disk_content *c, struct disk *image, char *out,
                        size_t outlen)
{
    uint8_t buf[SECT];
    uint64_t differ = 0, total = 0, first = 0;

    if (!c->has_info)
        return 0;
    if (image->size != c->size) {
        snprintf(out, outlen, "its size is %" PRIu64 " bytes, the trace saw %" PRIu64,
                 image->size, c->size);
        return 1;
    }
    for (size_t i = 0; i < c->nsectors; i++) {
        const struct trace_disk_record *r = &c->sectors[i];
        for (uint32_t done = 0; done < r->len; done += SECT) {
            size_t n = r->len - done < SECT ? r->len - done : SECT;
            uint64_t s = r->a + done / SECT;
            total++;
            if (disk_read(image, s * SECT, buf, n) || memcmp(buf, r->data + done, n)) {
                if (!differ++)
                    first = s;
            }
        }
    }
    if (!differ)
        return 0;
    snprintf(out, outlen, "%" PRIu64 " of the %" PRIu64 " sectors the trace recorded differ, "
             "the first at sector %" PRIu64, differ, total, first);
    return 1;
}
