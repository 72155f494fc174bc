/* Parses a byte size argument: decimal or 0x hex, optional K/M/G/T suffix (powers of 2). */
#ifndef VMLAB_VIRTIO_SIZE_ARG_H
#define VMLAB_VIRTIO_SIZE_ARG_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static inline int virtio_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned shift = 0;

    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

#endif
