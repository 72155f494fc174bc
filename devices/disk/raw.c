/* Raw images: the file is the disk, byte for byte. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "devices/disk/disk_internal.h"

struct raw {
    int fd;
};

static int raw_fd(struct disk *d) { return ((struct raw *)d->priv)->fd; }

static int raw_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    int r = disk__check_range(d, off, len);
    return r ? r : disk__pread_full(raw_fd(d), buf, len, off);
}

static int raw_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    if (d->read_only)
        return -EROFS;
    int r = disk__check_range(d, off, len);
    return r ? r : disk__pwrite_full(raw_fd(d), buf, len, off);
}

static int raw_flush(struct disk *d)
{
    if (d->read_only)
        return 0;
    return fdatasync(raw_fd(d)) < 0 ? -errno : 0;
}

/* Writes zeroes the slow way, 64 KiB at a time: the fallback when the file system
 * cannot punch holes or zero ranges. */
static int raw_zero_fill(int fd, uint64_t off, uint64_t len)
{
    static const char zeroes[65536];
    while (len) {
        size_t n = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
        int r = disk__pwrite_full(fd, zeroes, n, off);
        if (r)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

static int raw_discard(struct disk *d, uint64_t off, uint64_t len)
{
    if (d->read_only)
        return -EROFS;
    int r = disk__check_range(d, off, len);
    if (r || !len)
        return r;
    if (fallocate(raw_fd(d), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
        return -errno;
    return raw_zero_fill(raw_fd(d), off, len);
}

static int raw_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    if (d->read_only)
        return -EROFS;
    int r = disk__check_range(d, off, len);
    if (r || !len)
        return r;
    int fd = raw_fd(d);
    if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return 0;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return 0;
    return raw_zero_fill(fd, off, len);
}

static int raw_resize(struct disk *d, uint64_t new_size)
{
    if (d->read_only)
        return -EROFS;
    if (new_size > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (ftruncate(raw_fd(d), (off_t)new_size) < 0)
        return -errno;
    d->size = new_size;
    return 0;
}

static void raw_close(struct disk *d)
{
    close(raw_fd(d));
    free(d);
}

static const struct disk_ops raw_ops = {
    .format = "raw",
    .read = raw_read,
    .write = raw_write,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .resize = raw_resize,
    .close = raw_close,
};

int disk_raw_open_fd(int fd, int read_only, struct disk **out, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        disk__err(err, errlen, "cannot stat raw image: %s", strerror(e));
        close(fd);
        return -e;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0) {
        int e = errno;
        disk__err(err, errlen, "cannot get block device size: %s", strerror(e));
        close(fd);
        return -e;
    }
    struct disk *d = disk__alloc(&raw_ops, sizeof(struct raw));
    if (!d) {
        close(fd);
        disk__err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ((struct raw *)d->priv)->fd = fd;
    d->size = size;
    d->read_only = read_only;
    *out = d;
    return 0;
}

int disk_raw_open(const char *path, int read_only, struct disk **out, char *err, size_t errlen)
{
    int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        disk__err(err, errlen, "cannot open raw image '%s'%s: %s", path,
                  read_only ? "" : " read-write", strerror(e));
        return -e;
    }
    return disk_raw_open_fd(fd, read_only, out, err, errlen);
}
