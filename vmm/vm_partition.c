#include "vm_partition.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int vm_partition_create(const char *path, uint64_t size, enum vm_partition_type type,
                        char *err, size_t errlen)
{
    uint8_t header[sizeof(VM_INSTANCE_MAGIC) - 1 + 2];
    size_t hlen = 0;

    if (type == VM_PARTITION_INSTANCE) {
        memcpy(header, VM_INSTANCE_MAGIC, sizeof(VM_INSTANCE_MAGIC) - 1);
        header[sizeof(header) - 2] = VM_INSTANCE_VERSION & 0xff;
        header[sizeof(header) - 1] = VM_INSTANCE_VERSION >> 8;
        hlen = sizeof(header);
    }
    if (size < hlen || size > (uint64_t)INT64_MAX) {
        snprintf(err, errlen, "SIZE %llu: an %s image needs at least %zu bytes",
                 (unsigned long long)size, type == VM_PARTITION_INSTANCE ? "instance" : "raw",
                 hlen ? hlen : (size_t)1);
        return -EINVAL;
    }
    if (size == 0) {
        snprintf(err, errlen, "SIZE 0: a partition needs at least 1 byte");
        return -EINVAL;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int r = 0;
    if (hlen && pwrite(fd, header, hlen, 0) != (ssize_t)hlen)
        r = -errno;
    if (!r && ftruncate(fd, (off_t)size) < 0)     /* sparse: no data blocks written */
        r = -errno;
    if (!r && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r) {
        unlink(path);
        snprintf(err, errlen, "%s: %s", path, strerror(r ? -r : EIO));
    }
    return r;
}
