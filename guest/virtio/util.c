/* Small helpers shared by the driver and the programs: the DMA arena, cmdline numbers,
 * FNV-1a. */
#include "virtio.h"

#include "../rt/rt.h"

/* Rings, indirect tables and request buffers. Identity mapped, so a pointer is also the
 * guest-physical address the device sees. */
#define ARENA_SIZE (512u * 1024u)
static uint8_t arena[ARENA_SIZE] __attribute__((aligned(4096)));
static size_t arena_used;

void *virtio_alloc(size_t size, size_t align)
{
    size_t off = (arena_used + align - 1) & ~(align - 1);
    if (off > ARENA_SIZE || size > ARENA_SIZE - off)
        return NULL;
    arena_used = off + size;
    memset(arena + off, 0, size);
    return arena + off;
}

uint64_t virtio_cmdline_u64(const char *key, uint64_t def)
{
    char v[32];
    if (!rt_cmdline_get(key, v, sizeof v) || !v[0])
        return def;
    char *end;
    uint64_t r = strtoull(v, &end, 0);
    if (*end) {
        printf("bad cmdline value %s=%s (want a number)\n", key, v);
        rt_exit(2);
    }
    return r;
}

uint64_t virtio_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
