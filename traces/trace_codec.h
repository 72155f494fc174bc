/* Internal to traces/trace_*.c: little-endian and varint helpers, and the header codec
 * shared by the writer and the reader. Layout: traces/FORMAT.md. */
#ifndef VMLAB_TRACE_CODEC_H
#define VMLAB_TRACE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"

/* ---------------------------------------------------------------- little-endian helpers */

static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* 0 on success; -1 if the varint runs past end or is longer than 10 bytes / overflows. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;

    if (p < end && *p < 0x80) {     /* the common one-byte case */
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

/* The whole header (fixed part, body, CRC) into buf: its length, or -1 if it does not fit. */
long trace__header_encode(const struct trace_header *h, uint8_t *buf, size_t cap);
/* The same in an older format `version` (1-2: no device windows): tests make old files so. */
long trace__header_encode_as(const struct trace_header *h, unsigned version, uint8_t *buf,
                             size_t cap);
/* Parses and checks the header at the start of buf; *hlen = its length. 0 or -errno. */
int trace__header_decode(const uint8_t *buf, size_t size, struct trace_header *h, size_t *hlen,
                         char *err, size_t errlen);

#endif
