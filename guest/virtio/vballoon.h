/* virtio-balloon driver (§5.5): inflate/deflate PFN arrays, the actual size, and a stats
 * buffer the device returns when it wants fresh numbers. */
#ifndef GUEST_VBALLOON_H
#define GUEST_VBALLOON_H

#include "virtio.h"

#define VBALLOON_F_STATS_VQ       1
#define VBALLOON_F_DEFLATE_ON_OOM 2
#define VBALLOON_PFNS             256   /* per request, as Linux sends */
#define VBALLOON_NSTATS           8     /* swap in/out, major/minor faults, free, total, avail, caches */

struct vballoon_stat {
    uint16_t tag;
    uint64_t val;
} __attribute__((packed));

struct vballoon {
    struct virtio_dev dev;
    struct virtq *inflateq, *deflateq, *statsq;   /* statsq NULL without STATS_VQ */
    uint32_t *pfns;
    struct vballoon_stat *stats;
    uint64_t stats_sent;
};

/* Finds the balloon, negotiates STATS_VQ and DEFLATE_ON_OOM, sets up the queues, posts
 * the first stats buffer (from `stats`) and sets DRIVER_OK. 0 or -errno. */
int vballoon_init(struct vballoon *b, const struct virtio_opts *o,
                  const uint64_t stats[VBALLOON_NSTATS]);
/* The device's num_pages (the target) and writing actual. */
uint32_t vballoon_target(struct vballoon *b);
void vballoon_set_actual(struct vballoon *b, uint32_t pages);
/* Sends n (<= VBALLOON_PFNS) PFNs on the inflate (inflate=1) or deflate queue, waits. */
void vballoon_send(struct vballoon *b, int inflate, const uint32_t *pfns, unsigned n);
/* If the device returned the stats buffer, refills it from `stats` and posts it: 1, else 0. */
int vballoon_stats_poll(struct vballoon *b, const uint64_t stats[VBALLOON_NSTATS]);

#endif
