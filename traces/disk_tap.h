/* Recording what a run needs from a file-backed disk, so that its trace replays without the
 * image (traces/FORMAT.md, "Disk content"). The VMM opens every disk a device names through
 * disk_tap_wrap(); the wrapper passes each request to the real disk and, while a recorder
 * is attached to its sink, reports:
 *   - the content of each 512-byte sector the first time the run reads it, unless the run
 *     wrote the whole sector before (replay then has the written bytes already);
 *   - each request the disk refused (read-only composite components, host I/O errors), by
 *     its number, so replay refuses the same request;
 *   - a new size after a control-socket resize.
 * The sink is owned by the VMM and outlives the disks and the recorders that use it. */
#ifndef VMLAB_TRACE_DISK_TAP_H
#define VMLAB_TRACE_DISK_TAP_H

#include <stddef.h>
#include <stdint.h>

#include "devices/disk/disk.h"

struct disk_tap_sink {
    /* Set by the recorder while it records (opaque NULL: nothing is reported). Called
     * from the device's thread; the recorder serialises. */
    void (*content)(void *opaque, unsigned dev, uint64_t offset, const void *data, size_t len);
    void (*error)(void *opaque, unsigned dev, uint64_t request, unsigned op, int err);
    void (*resized)(void *opaque, unsigned dev, uint64_t size, int read_only);
    void *opaque;
    unsigned dev;               /* the device's index in the machine description */
    /* Bumped at every attach: the wrapper then forgets which sectors it reported. */
    unsigned generation;
    /* Filled by the wrapper when the device opens its disk. */
    int used;
    uint64_t size;
    int read_only;
};

/* Wraps `inner` (the wrapper owns it from then on, also on failure). 0 or -ENOMEM. */
int disk_tap_wrap(struct disk *inner, struct disk_tap_sink *sink, struct disk **out);

#endif
