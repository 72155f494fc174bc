/* A copy-on-write overlay over a disk: reads fall through to the base, writes land in
 * memory. The replayer opens every recorded disk this way, so replay never changes a file. */
#ifndef VMLAB_TRACE_COW_DISK_H
#define VMLAB_TRACE_COW_DISK_H

#include "devices/disk/disk.h"

/* Takes ownership of `base` (closed with the overlay). The overlay is writable unless
 * read_only. 0 or -ENOMEM. */
int cow_disk_wrap(struct disk *base, int read_only, struct disk **out);

/* Opens `path` read-only with disk_open() and wraps it. 0 or -errno with a message. */
int cow_disk_open(const char *path, int read_only, struct disk **out, char *err, size_t errlen);

/* Bytes held in the overlay (blocks written so far * block size). */
uint64_t cow_disk_dirty_bytes(const struct disk *d);

#endif
