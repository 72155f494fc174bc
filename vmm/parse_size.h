/* Sizes on command lines: 4096, 0x1000, 64K, 128M, 2G, 1T (binary units; "KiB", "MB" spellings
 * accepted). */
#ifndef VMLAB_PARSE_SIZE_H
#define VMLAB_PARSE_SIZE_H

#include <stdint.h>

/* 0, -EINVAL for a malformed size, -ERANGE if it overflows 64 bits. */
int parse_size(const char *s, uint64_t *out);

#endif
