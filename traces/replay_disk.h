/* The disks replay gives a device (traces/FORMAT.md, "Disk content"): the content a trace
 * recorded, or an image the user names (--disk N=PATH), always under a copy-on-write
 * overlay, and failing the requests the recorded run's disk refused. */
#ifndef VMLAB_TRACE_REPLAY_DISK_H
#define VMLAB_TRACE_REPLAY_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "devices/disk/disk.h"
#include "trace_format.h"

/* The disk records of one device, checked and sorted. */
struct replay_disk_content {
    int has_info;
    uint64_t size;
    int read_only;
    struct trace_disk_record *sectors;  /* sorted by sector, no overlaps */
    size_t nsectors;
    struct trace_disk_record *errors;   /* sorted by request number */
    size_t nerrors;
};

/* Collects device dev's records; the first description gives the size (a later one is a
 * control-socket resize, not replayed). 0, or -EINVAL with a message naming the record
 * (content without a description, overlapping or out-of-range sectors, a repeated
 * request). */
int replay_disk_content_init(struct replay_disk_content *c, const struct trace_disk_record *recs,
                             size_t n, unsigned dev, char *err, size_t errlen);
void replay_disk_content_free(struct replay_disk_content *c);

/* Called when the device reads a sector the trace has no content for (the recorded run
 * never read it there: the replay has left the recorded path). */
typedef void (*replay_disk_miss_fn)(void *opaque, uint64_t sector);

/* The disk for the device: `image` (owned from then on; NULL: the recorded content, which
 * needs has_info), overlaid, with the recorded errors. 0 or -errno with a message. */
int replay_disk_open(const struct replay_disk_content *c, struct disk *image, int read_only,
                     replay_disk_miss_fn miss, void *miss_opaque, struct disk **out,
                     char *err, size_t errlen);

/* Compares an image with what the trace saw. 0 when every recorded sector and the size
 * match; 1 with one line (no newline) saying what differs. */
int replay_disk_compare(const struct replay_disk_content *c, struct disk *image, char *out,
                        size_t outlen);

#endif
