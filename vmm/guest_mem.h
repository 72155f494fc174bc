/* Guest memory: the only way a device touches guest RAM. Every access is checked against
 * the RAM ranges and fails with -EFAULT, never crashes, on a bad guest address. It is also
 * where the trace taps DMA, and where the replayer substitutes the recorded memory. */
#ifndef VMLAB_GUEST_MEM_H
#define VMLAB_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_RANGES 2

struct guest_mem_range {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;      /* NULL when a backend serves the range (replay) */
};

enum guest_mem_dir { GUEST_MEM_READ = 0, GUEST_MEM_WRITE = 1 };

/* Observes every successful device access (the trace tap). */
typedef void (*guest_mem_tap_fn)(void *opaque, enum guest_mem_dir dir, uint64_t gpa,
                                 const void *data, size_t len);

/* Serves accesses instead of host memory (the replayer). Returns 0 or -errno. */
struct guest_mem_backend {
    int (*read)(void *opaque, uint64_t gpa, void *dst, size_t len);
    int (*write)(void *opaque, uint64_t gpa, const void *src, size_t len);
};

struct guest_mem {
    struct guest_mem_range ranges[GUEST_MEM_MAX_RANGES];
    unsigned nranges;
    uint64_t ram_size;
    int owns_host;                              /* host memory mmap'ed by guest_mem_init */
    const struct guest_mem_backend *backend;    /* NULL: plain host memory */
    void *backend_opaque;
    guest_mem_tap_fn read_tap, write_tap;       /* NULL: no tap for that direction */
    void *tap_opaque;
};

/* Allocates `ram_size` bytes of zeroed guest RAM laid out by the memory map.
 * -EINVAL for 0, -ENOMEM when the host refuses. */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size);

/* Wraps caller-owned memory as RAM at gpa 0 (tests, fuzzers, the mock driver). */
void guest_mem_init_buffer(struct guest_mem *m, void *buf, uint64_t size);

/* RAM with no host memory behind it: all accesses go to `backend` (the replayer). */
void guest_mem_init_backend(struct guest_mem *m, uint64_t ram_size,
                            const struct guest_mem_backend *backend, void *opaque);

void guest_mem_destroy(struct guest_mem *m);

/* 1 if [gpa, gpa+len) lies inside one RAM range, else 0. len 0 is valid if gpa is. */
int guest_mem_valid(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* The general paths: any range, a replay backend, a trace tap. */
int guest_mem_read_slow(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len);
int guest_mem_write_slow(struct guest_mem *m, uint64_t gpa, const void *src, size_t len);

/* Copy out of / into guest RAM. 0, or -EFAULT if any byte is outside RAM (nothing copied).
 * Inline so that the common case (low RAM, no tap, no backend) becomes a plain memcpy the
 * compiler can specialise for the small fixed sizes virtqueues use (descriptors, indexes). */
static inline int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len)
{
    const struct guest_mem_range *r = &m->ranges[0];

    if (!m->backend && !m->read_tap && r->gpa == 0 && r->host && gpa < r->size &&
        len <= r->size - gpa) {
        __builtin_memcpy(dst, r->host + gpa, len);
        return 0;
    }
    return guest_mem_read_slow(m, gpa, dst, len);
}

static inline int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *src,
                                  size_t len)
{
    const struct guest_mem_range *r = &m->ranges[0];

    if (!m->backend && !m->write_tap && r->gpa == 0 && r->host && gpa < r->size &&
        len <= r->size - gpa) {
        __builtin_memcpy(r->host + gpa, src, len);
        return 0;
    }
    return guest_mem_write_slow(m, gpa, src, len);
}

#define GUEST_MEM_PAGE_SIZE 4096ULL

/* Gives the host memory behind [gpa, gpa+len) back (memory balloon): the pages read as zero
 * afterwards and cost no host RAM until the guest touches them again. gpa and len must be
 * page-aligned and inside one RAM range: 0 or -EFAULT (nothing discarded). Not traced: it
 * changes what the CPU sees, not a device access. */
int guest_mem_discard(struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Host pointer to [gpa, gpa+len) for the loader and CPU backends (never for devices:
 * it bypasses the tap). NULL if out of range or not host-backed. */
void *guest_mem_host(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Taps reads and writes (the trace recorder); NULL removes the tap. */
static inline void guest_mem_set_tap(struct guest_mem *m, guest_mem_tap_fn fn, void *opaque)
{
    m->read_tap = m->write_tap = fn;
    m->tap_opaque = opaque;
}

/* Taps writes only, so reads keep the inline fast path (the virtqueue fuzzers' "device
 * writes only its own areas" check, which would otherwise slow every descriptor read). */
static inline void guest_mem_set_write_tap(struct guest_mem *m, guest_mem_tap_fn fn,
                                           void *opaque)
{
    m->read_tap = NULL;
    m->write_tap = fn;
    m->tap_opaque = opaque;
}

#endif
