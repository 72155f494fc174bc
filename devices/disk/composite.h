/* Composite disks (crosvm/AVF format): inspection helpers beyond the disk table. */
#ifndef VMLAB_COMPOSITE_H
#define VMLAB_COMPOSITE_H

#include "devices/disk/disk.h"

#define CDISK_MAGIC "composite_disk\x1d"
#define CDISK_MAGIC_LEN 15
#define CDISK_SPEC_MAX (1u << 20)      /* specs larger than this are refused */

struct cdisk_component_info {
    const char *path;                  /* as written in the spec */
    uint64_t offset, length, file_offset;
    int writable;
    const char *format;                /* the component's own format */
};

/* Number of components of a composite disk (0 for other formats). */
size_t disk_composite_count(struct disk *d);
/* Fills info for component i; 0 or -EINVAL. */
int disk_composite_component(struct disk *d, size_t i, struct cdisk_component_info *info);
/* The spec version the file declared. */
uint64_t disk_composite_version(struct disk *d);

/* Checks a spec (the bytes after the magic) without opening any component: wire format,
 * version, ordering, overlap, length. For fuzzers and tools. 0 or -errno with err set. */
int cdisk_spec_check(const uint8_t *spec, size_t len, char *err, size_t errlen);

#endif
