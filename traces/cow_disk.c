/* Copy-on-write overlay: 4 KiB blocks in an open-addressing hash table keyed by block
 * number, each with a mask of the 512-byte sectors it holds: a write never reads the base
 * for the sectors it replaces whole (a base made from a trace does not have them).
 * Lookup order never depends on host addresses. */
#include "cow_disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COW_BLOCK 4096u
#define COW_SECT  512u

struct cow_slot {
    uint64_t block;
    uint8_t *data;          /* NULL: empty slot */
    uint8_t mask;           /* bit k: sector k of the block is in data */
};

struct cow {
    struct disk *base;
    struct cow_slot *slots;
    size_t nslots, used;
};

static const struct disk_ops cow_ops;

static struct cow *cow_of(struct disk *d) { return d->priv; }

static size_t cow_hash(uint64_t b, size_t n)
{
    b ^= b >> 33;
    b *= 0xff51afd7ed558ccdULL;
    b ^= b >> 33;
    return (size_t)(b & (n - 1));
}

static struct cow_slot *cow_find(struct cow *c, uint64_t block)
{
    if (!c->nslots)
        return NULL;
    for (size_t i = cow_hash(block, c->nslots);; i = (i + 1) & (c->nslots - 1)) {
        if (!c->slots[i].data)
            return NULL;
        if (c->slots[i].block == block)
            return &c->slots[i];
    }
}

static int cow_grow(struct cow *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 64;
    struct cow_slot *s = calloc(n, sizeof(*s));

    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < c->nslots; i++) {
        if (!c->slots[i].data)
            continue;
        size_t j = cow_hash(c->slots[i].block, n);
        while (s[j].data)
            j = (j + 1) & (n - 1);
        s[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = s;
    c->nslots = n;
    return 0;
}

/* The overlay slot of `block`, created empty on first write. */
static int cow_block(struct disk *d, uint64_t block, struct cow_slot **out)
{
    struct cow *c = cow_of(d);
    struct cow_slot *s = cow_find(c, block);

    if (s) {
        *out = s;
        return 0;
    }
    if ((c->used + 1) * 2 > c->nslots && cow_grow(c))
        return -ENOMEM;
    uint8_t *data = calloc(1, COW_BLOCK);
    if (!data)
        return -ENOMEM;
    size_t j = cow_hash(block, c->nslots);
    while (c->slots[j].data)
        j = (j + 1) & (c->nslots - 1);
    c->slots[j] = (struct cow_slot){ block, data, 0 };
    c->used++;
    *out = &c->slots[j];
    return 0;
}

static int cow_range_ok(struct disk *d, uint64_t off, uint64_t len)
{
    return off <= d->size && len <= d->size - off;
}

/* Sector k of a block: its offset on the disk and how many of its bytes exist. */
static size_t cow_sector_len(const struct disk *d, uint64_t block, unsigned k)
{
    uint64_t off = block * COW_BLOCK + (uint64_t)k * COW_SECT;
    return off >= d->size ? 0 : d->size - off < COW_SECT ? (size_t)(d->size - off) : COW_SECT;
}

static int cow_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    struct cow *c = cow_of(d);
    uint8_t *p = buf;

    if (!cow_range_ok(d, off, len))
        return -EINVAL;
    while (len) {
        uint64_t block = off / COW_BLOCK;
        size_t in = (size_t)(off % COW_BLOCK), n = COW_BLOCK - in;
        if (n > len)
            n = len;
        struct cow_slot *s = cow_find(c, block);
        int rc = 0;
        if (!s) {
            rc = disk_read(c->base, off, p, n);
        } else {
            /* Sector by sector: runs the overlay has, runs the base has. */
            for (size_t done = 0; done < n && !rc;) {
                unsigned k = (unsigned)((in + done) / COW_SECT);
                int mine = s->mask >> k & 1;
                size_t end = done;
                while (end < n && (s->mask >> ((in + end) / COW_SECT) & 1) == mine)
                    end = ((in + end) / COW_SECT + 1) * COW_SECT - in;
                if (end > n)
                    end = n;
                if (mine)
                    memcpy(p + done, s->data + in + done, end - done);
                else
                    rc = disk_read(c->base, off + done, p + done, end - done);
                done = end;
            }
        }
        if (rc)
            return rc;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int cow_fill(struct disk *d, uint64_t off, const void *buf, uint64_t len)
{
    const uint8_t *p = buf;
    struct cow *c = cow_of(d);

    if (!cow_range_ok(d, off, len))
        return -EINVAL;
    while (len) {
        uint64_t block = off / COW_BLOCK;
        size_t in = (size_t)(off % COW_BLOCK), n = COW_BLOCK - in;
        struct cow_slot *s;
        if (n > len)
            n = (size_t)len;
        int rc = cow_block(d, block, &s);
        if (rc)
            return rc;
        /* A sector written in part keeps the rest of its base content. */
        unsigned k0 = (unsigned)(in / COW_SECT), k1 = (unsigned)((in + n - 1) / COW_SECT);
        for (unsigned k = k0; k <= k1; k++) {
            size_t slen = cow_sector_len(d, block, k), so = (size_t)k * COW_SECT;
            int whole = so >= in && so + slen <= in + n;
            if (!whole && !(s->mask >> k & 1) &&
                (rc = disk_read(c->base, block * COW_BLOCK + so, s->data + so, slen)))
                return rc;
        }
        if (p)
            memcpy(s->data + in, p, n);
        else
            memset(s->data + in, 0, n);
        for (unsigned k = k0; k <= k1; k++)
            s->mask |= (uint8_t)(1u << k);
        if (p)
            p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int cow_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    return cow_fill(d, off, buf, len);
}

static int cow_zero(struct disk *d, uint64_t off, uint64_t len)
{
    return cow_fill(d, off, NULL, len);
}

static int cow_flush(struct disk *d)
{
    (void)d;
    return 0;
}

static void cow_close(struct disk *d)
{
    struct cow *c = cow_of(d);

    for (size_t i = 0; i < c->nslots; i++)
        free(c->slots[i].data);
    free(c->slots);
    disk_close(c->base);
    free(d);
}

static const struct disk_ops cow_ops = {
    .format = "cow-overlay",
    .read = cow_read,
    .write = cow_write,
    .flush = cow_flush,
    .discard = cow_zero,
    .write_zeroes = cow_zero,
    .close = cow_close,
};

int cow_disk_wrap(struct disk *base, int read_only, struct disk **out)
{
    struct disk *d = calloc(1, sizeof(*d) + sizeof(struct cow));

    *out = NULL;
    if (!d)
        return -ENOMEM;
    d->ops = &cow_ops;
    d->priv = d + 1;
    d->size = base->size;
    d->read_only = read_only;
    cow_of(d)->base = base;
    *out = d;
    return 0;
}

int cow_disk_open(const char *path, int read_only, struct disk **out, char *err, size_t errlen)
{
    struct disk *base;
    int rc = disk_open(path, 1, &base, err, errlen);

    *out = NULL;
    if (rc)
        return rc;
    rc = cow_disk_wrap(base, read_only, out);
    if (rc) {
        disk_close(base);
        snprintf(err, errlen, "%s: out of memory for the replay overlay", path);
    }
    return rc;
}

uint64_t cow_disk_dirty_bytes(const struct disk *d)
{
    return d->ops == &cow_ops ? (uint64_t)((const struct cow *)d->priv)->used * COW_BLOCK : 0;
}
