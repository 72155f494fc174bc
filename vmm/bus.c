#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void bus_init(struct bus *b, enum bus_space space)
{
    memset(b, 0, sizeof(*b));
    b->space = space;
}

int bus_register(struct bus *b, uint64_t base, uint64_t size, const struct bus_ops *ops,
                 void *opaque, const char *name)
{
    return bus_register_window(b, base, size, 0, ops, opaque, name);
}

int bus_register_window(struct bus *b, uint64_t base, uint64_t size, uint64_t offset,
                        const struct bus_ops *ops, void *opaque, const char *name)
{
    unsigned pos = 0;

    if (size == 0 || base + size - 1 < base || !ops)
        return -EINVAL;
    if (b->nregions == BUS_MAX_REGIONS)
        return -ENOSPC;
    while (pos < b->nregions && b->regions[pos].base < base)
        pos++;
    /* Neighbours on either side must end before / start after the new range. */
    if (pos > 0) {
        const struct bus_region *prev = &b->regions[pos - 1];
        if (prev->base + prev->size - 1 >= base)
            return -EEXIST;
    }
    if (pos < b->nregions && b->regions[pos].base <= base + size - 1)
        return -EEXIST;
    memmove(&b->regions[pos + 1], &b->regions[pos],
            (b->nregions - pos) * sizeof(b->regions[0]));
    b->regions[pos] = (struct bus_region){ .base = base, .size = size, .offset = offset,
                                           .ops = ops, .opaque = opaque };
    snprintf(b->regions[pos].name, sizeof(b->regions[pos].name), "%s", name ? name : "?");
    b->nregions++;
    return (int)pos;
}

int bus_unregister(struct bus *b, uint64_t base)
{
    for (unsigned i = 0; i < b->nregions; i++)
        if (b->regions[i].base == base) {
            memmove(&b->regions[i], &b->regions[i + 1],
                    (b->nregions - i - 1) * sizeof(b->regions[0]));
            b->nregions--;
            return 0;
        }
    return -ENOENT;
}

static int find_index(const struct bus *b, uint64_t addr)
{
    unsigned lo = 0, hi = b->nregions;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct bus_region *r = &b->regions[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->size)
            lo = mid + 1;
        else
            return (int)mid;
    }
    return -1;
}

const struct bus_region *bus_find(const struct bus *b, uint64_t addr)
{
    int i = find_index(b, addr);
    return i < 0 ? NULL : &b->regions[i];
}

static int check_access(const struct bus *b, uint64_t addr, unsigned size, int *index)
{
    *index = find_index(b, addr);
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return -EINVAL;
    if (*index < 0)
        return -ENOENT;
    const struct bus_region *r = &b->regions[*index];
    if (addr - r->base > r->size - size)
        return -EINVAL;
    return 0;
}

static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

int bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *value)
{
    int index;
    int err = check_access(b, addr, size, &index);

    *value = ~0ULL;
    if (!err) {
        const struct bus_region *r = &b->regions[index];
        err = r->ops->read ? r->ops->read(r->opaque, addr - r->base + r->offset, size, value) : 0;
        if (err)
            *value = ~0ULL;
    }
    *value &= size_mask(size);
    if (b->tap)
        b->tap(b->tap_opaque, b->space, 0, addr, size, *value, index);
    return err;
}

int bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t value)
{
    int index;
    int err = check_access(b, addr, size, &index);

    value &= size_mask(size);
    if (!err) {
        const struct bus_region *r = &b->regions[index];
        err = r->ops->write ? r->ops->write(r->opaque, addr - r->base + r->offset, size, value) : 0;
    }
    if (b->tap)
        b->tap(b->tap_opaque, b->space, 1, addr, size, value, index);
    return err;
}
