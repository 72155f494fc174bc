/* Shared between the disk-format files only (not part of the public table). */
#ifndef VMLAB_DISK_INTERNAL_H
#define VMLAB_DISK_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include "devices/disk/disk.h"

/* The chain of container files (composites, qcow2 with backing) being opened, outermost
 * first: used to bound nesting and to refuse a file that includes itself. */
struct disk_open_ctx {
    int depth;
    int n;
    struct { dev_t dev; ino_t ino; } chain[DISK_MAX_NESTING + 2];
};

int disk_composite_open(const char *path, int read_only, const struct disk_open_ctx *ctx,
                        struct disk **out, char *err, size_t errlen);
int disk_qcow2_open(const char *path, int read_only, const struct disk_open_ctx *ctx,
                    struct disk **out, char *err, size_t errlen);

/* Allocates a struct disk with priv (zeroed). NULL on out of memory. */
struct disk *disk__alloc(const struct disk_ops *ops, size_t priv_size);

/* Full-length positional I/O (retries short transfers and EINTR); 0 or -errno.
 * pread past the end of the file is an error (-EIO). */
int disk__pread_full(int fd, void *buf, size_t len, uint64_t off);
int disk__pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Range check shared by all formats: 0, or -EINVAL when [off, off+len) leaves the disk. */
static inline int disk__check_range(const struct disk *d, uint64_t off, uint64_t len)
{
    if (off > d->size || len > d->size - off)
        return -EINVAL;
    return 0;
}

__attribute__((format(printf, 3, 4)))
static inline void disk__err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Join a component/backing path onto the folder of the file that names it. */
int disk__resolve_path(const char *container, const char *name, char *out, size_t outlen);

#endif
