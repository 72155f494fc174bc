/* Copy-on-write overlay: 4 KiB blocks in an open-addressing hash table keyed by block
 * number. Lookup order never depends on host addresses. */
#include "cow_disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COW_BLOCK 4096u

struct cow_slot {
    uint64_t block;
    uint8_t *data;          /* NULL: empty slot */
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

/* The overlay copy of `block`, created from the base on first write. */
static int cow_block(struct disk *d, uint64_t block, uint8_t **out)
{
    struct cow *c = cow_of(d);
    struct cow_slot *s = cow_find(c, block);

    if (s) {
        *out = s->data;
        return 0;
    }
    if ((c->used + 1) * 2 > c->nslots && cow_grow(c))
        return -ENOMEM;
    uint8_t *data = calloc(1, COW_BLOCK);
    if (!data)
        return -ENOMEM;
    uint64_t off = block * COW_BLOCK;
    uint64_t n = d->size - off < COW_BLOCK ? d->size - off : COW_BLOCK;
    int rc = disk_read(c->base, off, data, (size_t)n);
    if (rc) {
        free(data);
        return rc;
    }
    size_t j = cow_hash(block, c->nslots);
    while (c->slots[j].data)
        j = (j + 1) & (c->nslots - 1);
    c->slots[j] = (struct cow_slot){ block, data };
    c->used++;
    *out = data;
    return 0;
}

static int cow_range_ok(struct disk *d, uint64_t off, uint64_t len)
{
    return off <= d->size && len <= d->size - off;
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
        int rc = s ? (memcpy(p, s->data + in, n), 0) : disk_read(c->base, off, p, n);
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

    if (!cow_range_ok(d, off, len))
        return -EINVAL;
    while (len) {
        uint64_t block = off / COW_BLOCK;
        size_t in = (size_t)(off % COW_BLOCK), n = COW_BLOCK - in;
        uint8_t *data;
        if (n > len)
            n = (size_t)len;
        int rc = cow_block(d, block, &data);
        if (rc)
            return rc;
        if (p)
            memcpy(data + in, p, n);
        else
            memset(data + in, 0, n);
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
