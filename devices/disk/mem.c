/* An in-memory disk: zero-filled, sparse (MAP_NORESERVE), for tests, fuzzers and
 * benchmarks. Implements the same ops table as the file formats. */
#include "devices/disk/disk.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct mem_disk {
    struct disk d;
    uint8_t *data;
};

static int mem_range(const struct disk *d, uint64_t off, uint64_t len)
{
    return off > d->size || len > d->size - off ? -EINVAL : 0;
}

static int mem_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    struct mem_disk *m = (struct mem_disk *)d;
    if (mem_range(d, off, len))
        return -EINVAL;
    memcpy(buf, m->data + off, len);
    return 0;
}

static int mem_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    struct mem_disk *m = (struct mem_disk *)d;
    if (mem_range(d, off, len))
        return -EINVAL;
    memcpy(m->data + off, buf, len);
    return 0;
}

static int mem_flush(struct disk *d)
{
    (void)d;
    return 0;
}

static int mem_zero(struct disk *d, uint64_t off, uint64_t len)
{
    struct mem_disk *m = (struct mem_disk *)d;
    if (mem_range(d, off, len))
        return -EINVAL;
    memset(m->data + off, 0, len);
    return 0;
}

static int mem_resize(struct disk *d, uint64_t new_size)
{
    struct mem_disk *m = (struct mem_disk *)d;
    void *p;

    if (new_size == 0 || new_size > (1ULL << 46))
        return -EINVAL;
    p = mremap(m->data, d->size, new_size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return -ENOMEM;
    /* Bytes beyond the old end of a private anonymous mapping come back as zeroes. */
    m->data = p;
    d->size = new_size;
    return 0;
}

static void mem_close(struct disk *d)
{
    struct mem_disk *m = (struct mem_disk *)d;
    munmap(m->data, d->size);
    free(m);
}

static const struct disk_ops mem_ops = {
    .format = "mem",
    .read = mem_read,
    .write = mem_write,
    .flush = mem_flush,
    .discard = mem_zero,        /* discarded ranges read back as zeroes */
    .write_zeroes = mem_zero,
    .resize = mem_resize,
    .close = mem_close,
};

int disk_open_mem(uint64_t size, struct disk **out)
{
    struct mem_disk *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (!m)
        return -ENOMEM;
    if (size == 0 || size > (1ULL << 46)) {
        free(m);
        return -EINVAL;
    }
    m->data = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->data == MAP_FAILED) {
        free(m);
        return -ENOMEM;
    }
    m->d.ops = &mem_ops;
    m->d.size = size;
    m->d.priv = m;
    *out = &m->d;
    return 0;
}
