/* Sorted metadata ranges of a qcow2 image, for the overlap checks at open and on first use
 * of every L2 entry. */
#include <errno.h>
#include <stdlib.h>

#include "devices/disk/qcow2_meta.h"

int meta_add(struct meta_map *m, uint64_t start, uint64_t len, const char *what)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct meta_range *nr = realloc(m->r, cap * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        m->r = nr;
        m->cap = cap;
    }
    m->r[m->n++] = (struct meta_range){ start, start + len, what };
    return 0;
}

int meta_insert(struct meta_map *m, uint64_t start, uint64_t len, const char *what)
{
    int r = meta_add(m, start, len, what);
    if (r)
        return r;
    struct meta_range nr = m->r[m->n - 1];
    size_t i = m->n - 1;
    for (; i && m->r[i - 1].start > start; i--)
        m->r[i] = m->r[i - 1];
    m->r[i] = nr;
    return 0;
}

static int meta_cmp(const void *a, const void *b)
{
    const struct meta_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int meta_sort_check(struct meta_map *m, const struct meta_range **a, const struct meta_range **b)
{
    if (m->n)
        qsort(m->r, m->n, sizeof(*m->r), meta_cmp);
    for (size_t i = 1; i < m->n; i++)
        if (m->r[i].start < m->r[i - 1].end) {
            *a = &m->r[i - 1];
            *b = &m->r[i];
            return 1;
        }
    return 0;
}

const struct meta_range *meta_overlap(const struct meta_map *m, uint64_t start, uint64_t len)
{
    /* The last range starting before the end of [start, start+len); ranges do not
     * overlap each other, so only it can reach into [start, ...). */
    uint64_t end = start + len;
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->r[mid].start < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && m->r[lo - 1].end > start ? &m->r[lo - 1] : NULL;
}

void meta_free(struct meta_map *m)
{
    free(m->r);
    *m = (struct meta_map){ 0 };
}
