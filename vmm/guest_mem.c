#include "guest_mem.h"
#include "memmap.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_mem_init(struct guest_mem *m, uint64_t ram_size)
{
    struct memmap_range r[2];
    int n = memmap_ram_ranges(ram_size, r);

    memset(m, 0, sizeof(*m));
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        /* MAP_NORESERVE: a large --mem costs nothing until the guest touches it. */
        void *p = mmap(NULL, r[i].size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            guest_mem_destroy(m);
            return -ENOMEM;
        }
        m->ranges[i] = (struct guest_mem_range){ r[i].base, r[i].size, p };
        m->nranges = (unsigned)i + 1;
    }
    m->ram_size = ram_size;
    m->owns_host = 1;
    return 0;
}

void guest_mem_init_buffer(struct guest_mem *m, void *buf, uint64_t size)
{
    memset(m, 0, sizeof(*m));
    m->ranges[0] = (struct guest_mem_range){ 0, size, buf };
    m->nranges = 1;
    m->ram_size = size;
}

void guest_mem_init_backend(struct guest_mem *m, uint64_t ram_size,
                            const struct guest_mem_backend *backend, void *opaque)
{
    struct memmap_range r[2];
    int n = memmap_ram_ranges(ram_size, r);

    memset(m, 0, sizeof(*m));
    for (int i = 0; i < n; i++)
        m->ranges[i] = (struct guest_mem_range){ r[i].base, r[i].size, NULL };
    m->nranges = n > 0 ? (unsigned)n : 0;
    m->ram_size = ram_size;
    m->backend = backend;
    m->backend_opaque = opaque;
}

void guest_mem_destroy(struct guest_mem *m)
{
    if (m->owns_host)
        for (unsigned i = 0; i < m->nranges; i++)
            if (m->ranges[i].host)
                munmap(m->ranges[i].host, m->ranges[i].size);
    memset(m, 0, sizeof(*m));
}

static const struct guest_mem_range *find_range(const struct guest_mem *m, uint64_t gpa,
                                                uint64_t len)
{
    for (unsigned i = 0; i < m->nranges; i++) {
        const struct guest_mem_range *r = &m->ranges[i];
        /* Written to avoid overflow: gpa - r->gpa is only computed once gpa >= r->gpa. */
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

int guest_mem_valid(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    return find_range(m, gpa, len) != NULL;
}

int guest_mem_read_slow(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len)
{
    const struct guest_mem_range *r = find_range(m, gpa, len);

    if (!r)
        return -EFAULT;
    if (m->backend) {
        int err = m->backend->read(m->backend_opaque, gpa, dst, len);
        if (err)
            return err;
    } else {
        memcpy(dst, r->host + (gpa - r->gpa), len);
    }
    if (m->read_tap)
        m->read_tap(m->tap_opaque, GUEST_MEM_READ, gpa, dst, len);
    return 0;
}

int guest_mem_write_slow(struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
    const struct guest_mem_range *r = find_range(m, gpa, len);

    if (!r)
        return -EFAULT;
    if (m->backend) {
        int err = m->backend->write(m->backend_opaque, gpa, src, len);
        if (err)
            return err;
    } else {
        memcpy(r->host + (gpa - r->gpa), src, len);
    }
    if (m->write_tap)
        m->write_tap(m->tap_opaque, GUEST_MEM_WRITE, gpa, src, len);
    return 0;
}

void *guest_mem_host(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    const struct guest_mem_range *r = find_range(m, gpa, len);

    if (!r || !r->host)
        return NULL;
    return r->host + (gpa - r->gpa);
}

int guest_mem_discard(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    const struct guest_mem_range *r = find_range(m, gpa, len);

    if (!r || (gpa | len) & (GUEST_MEM_PAGE_SIZE - 1))
        return -EFAULT;
    if (!r->host || !len)
        return 0;       /* replay: the guest's view of its RAM is not the device's */
    uint8_t *p = r->host + (gpa - r->gpa);
    /* Anonymous private mappings refill with zero pages; caller-owned buffers are cleared
     * so they read the same. */
    if (!m->owns_host || madvise(p, len, MADV_DONTNEED))
        memset(p, 0, len);
    return 0;
}
