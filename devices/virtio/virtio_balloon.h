/* virtio-balloon (§5.5). Kind "virtio-balloon", args [deflate_on_oom=on|off][,id=ID].
 * Queues: inflate, deflate, stats (VIRTIO_BALLOON_F_STATS_VQ) and free page reporting
 * (VIRTIO_BALLOON_F_PAGE_REPORTING); DEFLATE_ON_OOM is offered unless deflate_on_oom=off.
 * Inflated and reported pages are given back to the host (guest_mem_discard: they read as
 * zero afterwards). Work per request is bounded: at most VIRTIO_BALLOON_PFNS_MAX PFNs are
 * taken from one inflate/deflate buffer, at most VIRTIO_BALLOON_STATS_MAX entries from a
 * stats buffer; the rest is logged and ignored. */
#ifndef VMLAB_VIRTIO_BALLOON_H
#define VMLAB_VIRTIO_BALLOON_H

#include <stdint.h>

#include "devices/device.h"

extern const struct device_type virtio_balloon_type;

#define VIRTIO_ID_BALLOON 5

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* Config space: {le32 num_pages (device), le32 actual (driver)}. */
#define VIRTIO_BALLOON_CFG_NUM_PAGES 0
#define VIRTIO_BALLOON_CFG_ACTUAL    4
#define VIRTIO_BALLOON_CFG_SIZE      8

#define VIRTIO_BALLOON_PAGE_SHIFT 12
#define VIRTIO_BALLOON_PFNS_MAX   1024   /* per buffer; Linux sends at most 256 */
#define VIRTIO_BALLOON_STATS_MAX  32     /* entries per stats buffer */
#define VIRTIO_BALLOON_STAT_SIZE  10     /* {le16 tag, le64 val}, packed */

/* Stats tags (§5.5.6.3). */
enum {
    VIRTIO_BALLOON_S_SWAP_IN = 0, VIRTIO_BALLOON_S_SWAP_OUT, VIRTIO_BALLOON_S_MAJFLT,
    VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT,
    VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_CACHES, VIRTIO_BALLOON_S_HTLB_PGALLOC,
    VIRTIO_BALLOON_S_HTLB_PGFAIL, VIRTIO_BALLOON_S_NR
};

/* Host messages (device_type.host_input): 'T' and a le64 target in bytes (the balloon
 * size the guest should reach; at most guest RAM), or 'S' alone (return the driver's stats
 * buffer so it sends fresh stats). */
#define VIRTIO_BALLOON_HOST_TARGET 'T'
#define VIRTIO_BALLOON_HOST_STATS  'S'
#define VIRTIO_BALLOON_HOST_TARGET_LEN 9

/* What `balloon_stats` answers (device_type.balloon_query). */
struct balloon_report {
    uint64_t target_bytes;          /* what the host asked for (num_pages) */
    uint64_t actual_bytes;          /* what the guest says it holds (actual, capped at RAM) */
    uint64_t stats[VIRTIO_BALLOON_S_NR];
    uint32_t stats_valid;           /* bit n: stats[n] was reported by the guest */
    uint64_t stats_updates;         /* stats buffers received */
    uint64_t inflated_pages, deflated_pages, reported_pages;
    uint64_t bad_pfns;              /* PFNs outside RAM, ignored */
};

/* JSON names of the stats, as crosvm's balloon_stats prints them. */
extern const char *const virtio_balloon_stat_names[VIRTIO_BALLOON_S_NR];

#endif
