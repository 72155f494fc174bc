/* A fault-plan wrapper over any disk: deterministic I/O errors, short reads, torn
 * writes and virtual latency, for tests and scenarios. Plan keys (comma-separated):
 *   eio-nth=N            request N (1-based, counting every request) fails with -EIO
 *   eio-range=A-B        any read/write/discard touching sectors A..B (inclusive) fails
 *   short-nth=N          request N, if a read, fills only a prefix of the buffer, -EIO
 *   torn-nth=N           request N, if a write, writes only a prefix, then -EIO
 *   latency-ns=L         every request costs L virtual ns (disk_latency_ns())
 *   latency-jitter-ns=J  plus a seeded 0..J
 *   seed=S               seeds prefix lengths and jitter
 * The same plan and request sequence give the same faults, byte for byte. */
#include <stdlib.h>
#include <string.h>
#include "devices/disk/disk_internal.h"

#define SECTOR 512u

struct fault {
    struct disk *inner;
    uint64_t nreq;
    uint64_t eio_nth, short_nth, torn_nth;
    int has_range;
    uint64_t range_lo, range_hi;
    uint64_t lat, jitter, last_lat;
    uint64_t rng;
};

static struct fault *fp(struct disk *d) { return d->priv; }

static uint64_t rng_next(struct fault *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Counts the request, sets its latency, says whether it fails outright. */
static int begin(struct fault *f, int has_range, uint64_t off, uint64_t len)
{
    f->nreq++;
    f->last_lat = f->lat + (f->jitter ? rng_next(f) % (f->jitter + 1) : 0);
    if (f->eio_nth && f->nreq == f->eio_nth)
        return -EIO;
    if (has_range && f->has_range && len) {
        uint64_t first = off / SECTOR, last = (off + len - 1) / SECTOR;
        if (first <= f->range_hi && last >= f->range_lo)
            return -EIO;
    }
    return 0;
}

/* A prefix shorter than len: whole sectors when len spans several, else half. */
static size_t prefix(struct fault *f, size_t len)
{
    size_t ns = len / SECTOR;
    if (ns >= 2)
        return (size_t)(rng_next(f) % ns) * SECTOR;
    return len / 2;
}

static int f_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    struct fault *f = fp(d);
    int r = begin(f, 1, off, len);
    if (r)
        return r;
    if (f->short_nth && f->nreq == f->short_nth) {
        size_t n = prefix(f, len);
        r = n ? f->inner->ops->read(f->inner, off, buf, n) : 0;
        return r ? r : -EIO;
    }
    return f->inner->ops->read(f->inner, off, buf, len);
}

static int f_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    struct fault *f = fp(d);
    int r = begin(f, 1, off, len);
    if (r)
        return r;
    if (f->torn_nth && f->nreq == f->torn_nth) {
        size_t n = prefix(f, len);
        r = n ? f->inner->ops->write(f->inner, off, buf, n) : 0;
        return r ? r : -EIO;
    }
    return f->inner->ops->write(f->inner, off, buf, len);
}

static int f_flush(struct disk *d)
{
    struct fault *f = fp(d);
    int r = begin(f, 0, 0, 0);
    return r ? r : f->inner->ops->flush(f->inner);
}

static int f_discard(struct disk *d, uint64_t off, uint64_t len)
{
    struct fault *f = fp(d);
    int r = begin(f, 1, off, len);
    return r ? r : f->inner->ops->discard(f->inner, off, len);
}

static int f_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    struct fault *f = fp(d);
    int r = begin(f, 1, off, len);
    return r ? r : f->inner->ops->write_zeroes(f->inner, off, len);
}

static int f_resize(struct disk *d, uint64_t size)
{
    struct fault *f = fp(d);
    int r = disk_resize(f->inner, size);
    if (!r)
        d->size = f->inner->size;
    return r;
}

static uint64_t f_latency(struct disk *d) { return fp(d)->last_lat; }

static void f_close(struct disk *d)
{
    disk_close(fp(d)->inner);
    free(d);
}

static const struct disk_ops fault_ops = {
    .format = "fault",
    .read = f_read,
    .write = f_write,
    .flush = f_flush,
    .discard = f_discard,
    .write_zeroes = f_write_zeroes,
    .resize = f_resize,
    .close = f_close,
    .latency_ns = f_latency,
};

static int parse_u64(const char *s, size_t n, uint64_t *v)
{
    if (!n || n > 20)
        return -EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return 0;
}

int disk_fault_wrap(struct disk *inner, const char *plan, struct disk **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    struct fault f = { .inner = inner };
    const char *p = plan ? plan : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (!eq) {
            disk__err(err, errlen, "fault plan: '%.*s' is not key=value", (int)n, p);
            return -EINVAL;
        }
        size_t kl = (size_t)(eq - p), vl = n - kl - 1;
        const char *v = eq + 1;
        int r = 0;
#define KEY(k) (kl == strlen(k) && memcmp(p, k, kl) == 0)
        if (KEY("eio-nth")) r = parse_u64(v, vl, &f.eio_nth);
        else if (KEY("short-nth")) r = parse_u64(v, vl, &f.short_nth);
        else if (KEY("torn-nth")) r = parse_u64(v, vl, &f.torn_nth);
        else if (KEY("latency-ns")) r = parse_u64(v, vl, &f.lat);
        else if (KEY("latency-jitter-ns")) r = parse_u64(v, vl, &f.jitter);
        else if (KEY("seed")) r = parse_u64(v, vl, &f.rng);
        else if (KEY("eio-range")) {
            const char *dash = memchr(v, '-', vl);
            r = !dash ? -EINVAL : parse_u64(v, (size_t)(dash - v), &f.range_lo);
            if (!r)
                r = parse_u64(dash + 1, vl - (size_t)(dash - v) - 1, &f.range_hi);
            if (!r && f.range_hi < f.range_lo)
                r = -EINVAL;
            f.has_range = 1;
        } else {
            disk__err(err, errlen, "fault plan: unknown key '%.*s'", (int)kl, p);
            return -EINVAL;
        }
#undef KEY
        if (r) {
            disk__err(err, errlen, "fault plan: bad value '%.*s' for %.*s", (int)vl, v, (int)kl, p);
            return -EINVAL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    struct disk *d = disk__alloc(&fault_ops, sizeof(struct fault));
    if (!d) {
        disk__err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *fp(d) = f;
    d->size = inner->size;
    d->read_only = inner->read_only;
    *out = d;
    return 0;
}
