/* virtio-balloon driver: see vballoon.h. */
#include "vballoon.h"
#include "rt.h"

static void stats_post(struct vballoon *b, const uint64_t stats[VBALLOON_NSTATS])
{
    for (unsigned i = 0; i < VBALLOON_NSTATS; i++) {
        b->stats[i].tag = (uint16_t)i;
        b->stats[i].val = stats[i];
    }
    struct virtq_buf buf = { b->stats, sizeof(*b->stats) * VBALLOON_NSTATS, 0 };
    GUEST_ASSERT(virtq_add(b->statsq, &buf, 1) >= 0);
    virtq_kick(b->statsq);
    b->stats_sent++;
}

int vballoon_init(struct vballoon *b, const struct virtio_opts *o,
                  const uint64_t stats[VBALLOON_NSTATS])
{
    struct virtio_mmio_loc loc;
    int rc;

    if ((rc = virtio_find(VIRTIO_ID_BALLOON, 0, &loc)))
        return rc;
    if ((rc = virtio_dev_init(&b->dev, &loc, (1ull << VBALLOON_F_STATS_VQ) |
                                             (1ull << VBALLOON_F_DEFLATE_ON_OOM), o)) ||
        (rc = virtio_queue_setup(&b->dev, 0, &b->inflateq)) ||
        (rc = virtio_queue_setup(&b->dev, 1, &b->deflateq)))
        return rc;
    if (virtio_has_feature(&b->dev, VBALLOON_F_STATS_VQ) &&
        (rc = virtio_queue_setup(&b->dev, 2, &b->statsq)))
        return rc;
    b->pfns = virtio_alloc(4 * VBALLOON_PFNS, 4096);
    b->stats = virtio_alloc(sizeof(*b->stats) * VBALLOON_NSTATS, 8);
    if (!b->pfns || !b->stats)
        return -VIRTIO_ENOSPC;
    if ((rc = virtio_dev_ready(&b->dev)))
        return rc;
    if (b->statsq)
        stats_post(b, stats);
    return 0;
}

uint32_t vballoon_target(struct vballoon *b)
{
    return virtio_config_read32(&b->dev, 0);
}

void vballoon_set_actual(struct vballoon *b, uint32_t pages)
{
    virtio_config_write32(&b->dev, 4, pages);
}

void vballoon_send(struct vballoon *b, int inflate, const uint32_t *pfns, unsigned n)
{
    struct virtq *q = inflate ? b->inflateq : b->deflateq;
    uint16_t id;
    uint32_t len;

    GUEST_ASSERT(n <= VBALLOON_PFNS);
    memcpy(b->pfns, pfns, 4 * n);
    struct virtq_buf buf = { b->pfns, 4 * n, 0 };
    GUEST_ASSERT(virtq_add(q, &buf, 1) >= 0);
    virtq_kick(q);
    virtq_wait_used(q, &id, &len);
}

int vballoon_stats_poll(struct vballoon *b, const uint64_t stats[VBALLOON_NSTATS])
{
    uint16_t id;
    uint32_t len;

    if (!b->statsq || !virtq_get_used(b->statsq, &id, &len))
        return 0;
    stats_post(b, stats);
    return 1;
}
