/* qcow2 (versions 2 and 3) images: read, write with cluster allocation, backing files. */
#ifndef VMLAB_QCOW2_H
#define VMLAB_QCOW2_H

#include "devices/disk/disk.h"

struct qcow2_info {
    unsigned version;
    uint64_t cluster_size;
    char backing_file[1024];
    char backing_format[32];
    char compression_type[8];           /* "zlib" or "zstd" */
    int extended_l2;                    /* 128-bit L2 entries, 32 subclusters per cluster */
    char corrupt[1536];                 /* why every request fails now, "" while sound */
};

/* -EINVAL if d is not a qcow2 disk. */
int qcow2_get_info(struct disk *d, struct qcow2_info *out);

/* Walks every L2 entry (checking each as its first use would) and counts the compressed
 * clusters. 0, or -EIO with the corruption's one line in err. */
int qcow2_scan(struct disk *d, uint64_t *compressed, char *err, size_t errlen);

/* Writes an empty qcow2 v3 image: 16-bit refcounts, `cluster_size` (512..2M, power of
 * two). size UINT64_MAX takes the backing file's size. backing (raw or qcow2) is stored
 * as given and resolved relative to the new image's folder, as qemu does. */
int qcow2_create(const char *path, uint64_t size, uint64_t cluster_size, const char *backing,
                 char *err, size_t errlen);

#endif
