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
    /* Optional (NULL = 0): virtual latency in ns the device should charge for the last
     * request (the fault-plan wrapper sets it; real files report 0). */
    uint64_t (*latency_ns)(struct disk *d);
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

static inline int disk_discard(struct disk *d, uint64_t off, uint64_t len)
{
    return d->read_only ? -EROFS : d->ops->discard(d, off, len);
}
static inline int disk_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    return d->read_only ? -EROFS : d->ops->write_zeroes(d, off, len);
}
static inline int disk_resize(struct disk *d, uint64_t new_size)
{
    if (d->read_only)
        return -EROFS;
    return d->ops->resize ? d->ops->resize(d, new_size) : -ENOTSUP;
}
static inline uint64_t disk_latency_ns(struct disk *d)
{
    return d->ops->latency_ns ? d->ops->latency_ns(d) : 0;
}

/* Opening with a nesting budget: composites and qcow2 backing files open their
 * components through this; depth counts levels already entered (disk_open uses 0). */
#define DISK_MAX_NESTING 10
struct disk_open_ctx;
int disk_open_nested(const char *path, int read_only, const struct disk_open_ctx *parent,
                     struct disk **out, char *err, size_t errlen);

/* Per-format openers (path already probed). */
int disk_raw_open(const char *path, int read_only, struct disk **out, char *err, size_t errlen);
/* Raw over an already-open descriptor (takes ownership of fd). */
int disk_raw_open_fd(int fd, int read_only, struct disk **out, char *err, size_t errlen);

/* Probe only: "raw", "composite" or "qcow2" for the file's magic, or NULL (err set). */
const char *disk_probe(const char *path, char *err, size_t errlen);

/* Wraps `inner` in a deterministic fault plan, e.g.
 * "eio-nth=5,eio-range=100-200,short-nth=2,torn-nth=3,latency-ns=20000,seed=7"
 * (see devices/disk/fault.c). On success the wrapper owns `inner` (closing it closes
 * both); on failure `inner` stays the caller's. */
int disk_fault_wrap(struct disk *inner, const char *plan, struct disk **out,
                    char *err, size_t errlen);

#endif
