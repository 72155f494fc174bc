/* Opening disk images: probe the magic, bound nesting, refuse self-inclusion. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "devices/disk/disk_internal.h"

#define CDISK_MAGIC "composite_disk\x1d"
#define QCOW2_MAGIC "QFI\xfb"

struct disk *disk__alloc(const struct disk_ops *ops, size_t priv_size)
{
    struct disk *d = calloc(1, sizeof(*d) + priv_size);
    if (!d)
        return NULL;
    d->ops = ops;
    d->priv = priv_size ? (void *)(d + 1) : NULL;
    return d;
}

int disk__pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;            /* past the end of the file */
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int disk__pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int disk__resolve_path(const char *container, const char *name, char *out, size_t outlen)
{
    int n;
    if (name[0] == '/') {
        n = snprintf(out, outlen, "%s", name);
    } else {
        const char *slash = strrchr(container, '/');
        if (slash)
            n = snprintf(out, outlen, "%.*s/%s", (int)(slash - container), container, name);
        else
            n = snprintf(out, outlen, "%s", name);
    }
    return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
}

const char *disk_probe(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        disk__err(err, errlen, "cannot open disk image '%s': %s", path, strerror(errno));
        return NULL;
    }
    char magic[16] = { 0 };
    ssize_t n = pread(fd, magic, sizeof(magic), 0);
    close(fd);
    if (n < 0) {
        disk__err(err, errlen, "cannot read disk image '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (n >= (ssize_t)strlen(CDISK_MAGIC) && memcmp(magic, CDISK_MAGIC, strlen(CDISK_MAGIC)) == 0)
        return "composite";
    if (n >= 4 && memcmp(magic, QCOW2_MAGIC, 4) == 0)
        return "qcow2";
    return "raw";
}

int disk_open_nested(const char *path, int read_only, const struct disk_open_ctx *parent,
                     struct disk **out, char *err, size_t errlen)
{
    struct disk_open_ctx ctx = { 0 };
    if (parent)
        ctx = *parent;
    *out = NULL;

    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        disk__err(err, errlen, "cannot open disk image '%s': %s", path, strerror(e));
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        disk__err(err, errlen, "disk image '%s' is a directory", path);
        return -EISDIR;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        /* FIFOs, sockets, character devices: no size, and opening some would block */
        disk__err(err, errlen, "disk image '%s' is not a regular file or block device", path);
        return -EINVAL;
    }
    for (int i = 0; i < ctx.n; i++) {
        if (ctx.chain[i].dev == st.st_dev && ctx.chain[i].ino == st.st_ino) {
            disk__err(err, errlen, "disk image '%s' includes itself (cycle at nesting level %d)",
                      path, ctx.depth);
            return -ELOOP;
        }
    }
    const char *fmt = disk_probe(path, err, errlen);
    if (!fmt)
        return -EIO;
    if (strcmp(fmt, "raw") == 0)
        return disk_raw_open(path, read_only, out, err, errlen);

    /* A container: one more level, and it joins the chain its children are checked against. */
    ctx.depth++;
    if (ctx.depth > DISK_MAX_NESTING) {
        disk__err(err, errlen, "disk image '%s': nesting depth %d exceeds the limit of %d",
                  path, ctx.depth, DISK_MAX_NESTING);
        return -ELOOP;
    }
    ctx.chain[ctx.n].dev = st.st_dev;
    ctx.chain[ctx.n].ino = st.st_ino;
    ctx.n++;
    if (strcmp(fmt, "composite") == 0)
        return disk_composite_open(path, read_only, &ctx, out, err, errlen);
    return disk_qcow2_open(path, read_only, &ctx, out, err, errlen);
}

int disk_open(const char *path, int read_only, struct disk **out, char *err, size_t errlen)
{
    return disk_open_nested(path, read_only, NULL, out, err, errlen);
}

void disk_close(struct disk *d)
{
    if (d)
        d->ops->close(d);
}
