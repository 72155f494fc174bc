/* Creating composite disks with a GPT, like crosvm's create_composite. */
#ifndef VMLAB_CDISK_CREATE_H
#define VMLAB_CDISK_CREATE_H

#include <stddef.h>
#include "devices/disk/gpt.h"

struct cdisk_partition {
    const char *label;
    const char *path;
    int writable;
    int has_type;               /* else Linux filesystem */
    struct gpt_guid type;
};

/* Writes `out` (magic + CompositeDisk), a header file (protective MBR, primary GPT header,
 * entries, padding) and a footer file (padding, backup entries, backup header), plus a
 * 4 KiB zero filler when a read-only partition is not a multiple of 4 KiB. header/footer/
 * filler may be NULL: then "<out>.header.img", "<out>.footer.img", "<out>.filler.img".
 * GUIDs are derived from the label and paths, so equal inputs give equal files.
 * Paths are stored resolved, except "/proc/self/fd/N" (an inherited descriptor) as given.
 * 0 or -errno with err set. */
int cdisk_create(const char *out, const char *disk_label, const struct cdisk_partition *parts,
                 size_t n, const char *header, const char *footer, const char *filler,
                 char *err, size_t errlen);

#endif
