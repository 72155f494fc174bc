/* Fuzz target: composite disks (devices/disk/composite.c, cdisk_wire.c): the input is a
 * whole composite file (magic + protobuf spec). The spec is checked with cdisk_spec_check,
 * then, if every component it names is a plain file name (see fuzz/disk_common.h), the file
 * is opened with disk_open from a scratch folder holding the components tests/data/disk
 * uses (comp_a.raw, comp_b.raw, comp_small.raw; `image` is the input itself, so cycles are
 * reachable), and read and written.
 * Invariants (abort() on violation): cdisk_spec_check and disk_open agree (a spec the check
 * refuses never opens); an opened composite lists sorted, non-overlapping components
 * inside its length and has the declared length; acknowledged writes read back; I/O past
 * the end fails; no file descriptor leaks, on success or failure. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "composite.pb-c.h"
#include "devices/disk/composite.h"
#include "fuzz/disk_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 if the spec names only plain component files (or cannot be decoded at all). */
static int names_safe(const uint8_t *spec, size_t len, uint64_t *length)
{
    CompositeDisk *cd = composite_disk__unpack(NULL, len, spec);
    int ok = 1;

    if (!cd)
        return 1;   /* disk_open will refuse it before opening anything */
    *length = cd->length;
    for (size_t i = 0; i < cd->n_component_disks; i++) {
        const char *p = cd->component_disks[i]->file_path;
        if (!fzd_safe_name(p, strlen(p)))
            ok = 0;
    }
    composite_disk__free_unpacked(cd, NULL);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct disk *d = NULL;
    uint64_t length = 0;
    int is_cdisk = size >= CDISK_MAGIC_LEN && !memcmp(data, CDISK_MAGIC, CDISK_MAGIC_LEN);
    int checked = -1;

    if (size > CDISK_SPEC_MAX + CDISK_MAGIC_LEN)
        return 0;
    if (is_cdisk) {
        err[0] = 0;
        checked = cdisk_spec_check(data + CDISK_MAGIC_LEN, size - CDISK_MAGIC_LEN, err,
                                   sizeof err);
        if (checked > 0 || (checked < 0 && !err[0]))
            abort();    /* 0, or -errno with a reason */
        if (!names_safe(data + CDISK_MAGIC_LEN, size - CDISK_MAGIC_LEN, &length))
            return 0;
    }
    const char *path = fzd_prepare(data, size);
    int fd0 = fzd_next_fd();
    err[0] = 0;
    int r = disk_open(path, 0, &d, err, sizeof err);
    if (r > 0 || (r < 0 && (d || !err[0])))
        abort();
    if (r == 0) {
        if (is_cdisk && checked < 0)
            abort();    /* opened a spec the checker refuses */
        if (is_cdisk && strcmp(d->ops->format, "composite"))
            abort();
        if (is_cdisk) {
            size_t n = disk_composite_count(d);
            uint64_t end = 0;

            if (d->size != length)
                abort();
            for (size_t i = 0; i < n; i++) {
                struct cdisk_component_info ci;

                if (disk_composite_component(d, i, &ci))
                    abort();
                if (ci.offset < end || ci.length == 0 || ci.offset + ci.length < ci.offset ||
                    ci.offset + ci.length > d->size)
                    abort();    /* unsorted, overlapping or outside the disk */
                end = ci.offset + ci.length;
            }
            if (disk_composite_component(d, n, &(struct cdisk_component_info){ 0 }) == 0)
                abort();
        }
        fzd_exercise(d, data + size - (size < 8 ? size : 8), size < 8 ? size : 8);
        disk_close(d);
    }
    if (fzd_next_fd() != fd0)
        abort();        /* a descriptor leaked */
    return 0;
}
