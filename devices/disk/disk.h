/* The disk-image operations table. virtio-blk (and every other user) knows only this;
 * raw, composite and qcow2 implement it, chosen by probing the file's magic. */
#ifndef VMLAB_DISK_H
#define VMLAB_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>

struct disk;

struct disk_ops {
    const char *format;                 /* "raw", "composite", "qcow2", "mem" */
    /* Byte-addressed I/O. All-or-nothing where the format allows it. 0 or -errno
     * (-EIO, -EROFS for a read-only extent, -EINVAL past the end). */
    int (*read)(struct disk *d, uint64_t offset, void *buf, size_t len);
    int (*write)(struct disk *d, uint64_t offset, const void *buf, size_t len);
    int (*flush)(struct disk *d);       /* reaches stable storage (fdatasync) */
    int (*discard)(struct disk *d, uint64_t offset, uint64_t len);
    int (*write_zeroes)(struct disk *d, uint64_t offset, uint64_t len);
    int (*resize)(struct disk *d, uint64_t new_size);   /* optional: NULL = -ENOTSUP */
    void (*close)(struct disk *d);
};

struct disk {
    const struct disk_ops *ops;
    uint64_t size;                      /* bytes visible to the guest */
    int read_only;
    void *priv;
};

/* Opens `path`, probing its magic (never its extension). read_only forces read-only.
 * 0 or -errno with a one-line reason in err. */
int disk_open(const char *path, int read_only, struct disk **out, char *err, size_t errlen);

/* An in-memory disk (tests, fuzzers, benchmarks). */
int disk_open_mem(uint64_t size, struct disk **out);

static inline int disk_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    return d->ops->read(d, off, buf, len);
}
static inline int disk_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    return d->read_only ? -EROFS : d->ops->write(d, off, buf, len);
}
static inline int disk_flush(struct disk *d) { return d->ops->flush(d); }
void disk_close(struct disk *d);

#endif
