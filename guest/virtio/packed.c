/* Packed virtqueue (virtio 1.2 section 2.8): one descriptor ring written by both sides,
 * told apart by the AVAIL/USED flag bits and the wrap counters, plus two event
 * suppression structures. */
#include "virtq_impl.h"

#include "../rt/rt.h"

static uint16_t wrap_bits(int wrap)
{
    return wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

int packed_init(struct virtq *q)
{
    unsigned n = q->size;
    q->pdesc = virtio_alloc(16u * n, 4096);
    q->drv_event = virtio_alloc(sizeof *q->drv_event, 4096);
    q->dev_event = virtio_alloc(sizeof *q->dev_event, 4096);
    q->id_next = virtio_alloc(2u * n, 2);
    if (!q->pdesc || !q->drv_event || !q->dev_event || !q->id_next)
        return -VIRTIO_ENOSPC;
    for (unsigned i = 0; i < n; i++)
        q->id_next[i] = (uint16_t)(i + 1);
    q->free_id = 0;
    q->num_free = (uint16_t)n;
    q->avail_wrap = q->used_wrap = 1;
    if (!q->dev->opts.irq)
        q->drv_event->flags = VRING_PACKED_EVENT_F_DISABLE;
    else if (q->dev->opts.event_idx) {
        q->drv_event->off_wrap = 1u << 15;     /* slot 0, wrap 1: the first used one */
        q->drv_event->flags = VRING_PACKED_EVENT_F_DESC;
    } else
        q->drv_event->flags = VRING_PACKED_EVENT_F_ENABLE;
    return 0;
}

static void advance_avail(struct virtq *q)
{
    if (++q->next_avail == q->size) {
        q->next_avail = 0;
        q->avail_wrap ^= 1;
    }
}

int packed_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n)
{
    int ind = q->indirect && n > 1;
    unsigned need = ind ? 1 : n;
    if (q->num_free < need)
        return -VIRTIO_ENOSPC;
    uint16_t id = q->free_id;
    q->free_id = q->id_next[id];
    uint16_t head = q->next_avail, head_flags = 0;
    if (ind) {
        struct vring_packed_desc *t =
            (struct vring_packed_desc *)q->indirect + (unsigned)id * VIRTQ_MAX_SG;
        for (unsigned i = 0; i < n; i++) {
            t[i].addr = (uint64_t)(uintptr_t)bufs[i].addr;
            t[i].len = bufs[i].len;
            t[i].id = 0;
            t[i].flags = bufs[i].write ? VRING_DESC_F_WRITE : 0;
        }
        struct vring_packed_desc *d = &q->pdesc[head];
        d->addr = (uint64_t)(uintptr_t)t;
        d->len = 16u * n;
        d->id = id;
        head_flags = (uint16_t)(VRING_DESC_F_INDIRECT | wrap_bits(q->avail_wrap));
        advance_avail(q);
    } else {
        for (unsigned i = 0; i < n; i++) {
            struct vring_packed_desc *d = &q->pdesc[q->next_avail];
            uint16_t f = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VRING_DESC_F_NEXT : 0) |
                                    wrap_bits(q->avail_wrap));
            d->addr = (uint64_t)(uintptr_t)bufs[i].addr;
            d->len = bufs[i].len;
            d->id = id;
            if (i == 0)
                head_flags = f;
            else
                d->flags = f;
            advance_avail(q);
        }
    }
    /* The head's flags make the whole chain visible, so they go last. The first chain
     * since the last kick is held back until virtq_kick(): the device stops at it, which
     * also hides every chain after it. */
    if (q->num_added == 0) {
        q->pub_head = head;
        q->pub_flags = head_flags;
    } else {
        rt_wmb();
        *(volatile uint16_t *)&q->pdesc[head].flags = head_flags;
    }
    q->chain_len[id] = (uint16_t)need;
    q->num_free = (uint16_t)(q->num_free - need);
    q->num_added = (uint16_t)(q->num_added + need);    /* counts ring slots here */
    return id;
}

int packed_publish(struct virtq *q)
{
    rt_wmb();
    *(volatile uint16_t *)&q->pdesc[q->pub_head].flags = q->pub_flags;
    rt_mb();    /* flags before reading the device's suppression state */
    uint16_t flags = *(volatile uint16_t *)&q->dev_event->flags;
    if (flags == VRING_PACKED_EVENT_F_DISABLE)
        return 0;
    if (flags != VRING_PACKED_EVENT_F_DESC || !q->dev->opts.event_idx)
        return 1;
    uint16_t off_wrap = *(volatile uint16_t *)&q->dev_event->off_wrap;
    uint16_t ev = off_wrap & 0x7fff, new = q->next_avail;
    uint16_t old = (uint16_t)(new - q->num_added);
    if ((off_wrap >> 15) != q->avail_wrap)
        ev = (uint16_t)(ev - q->size);
    return vring_need_event(ev, new, old);
}

int packed_get_used(struct virtq *q, uint16_t *id, uint32_t *len)
{
    struct vring_packed_desc *d = &q->pdesc[q->next_used];
    uint16_t f = *(volatile uint16_t *)&d->flags;
    int avail = !!(f & VRING_PACKED_DESC_F_AVAIL), used = !!(f & VRING_PACKED_DESC_F_USED);
    if (avail != used || used != q->used_wrap)
        return 0;
    rt_rmb();   /* flags before id/len */
    uint16_t i = d->id;
    if (i >= q->size || q->chain_len[i] == 0)
        virtq_bad_device(q, "used id", i);
    unsigned n = q->chain_len[i];
    q->next_used = (uint16_t)(q->next_used + n);
    if (q->next_used >= q->size) {
        q->next_used = (uint16_t)(q->next_used - q->size);
        q->used_wrap ^= 1;
    }
    q->chain_len[i] = 0;
    q->id_next[i] = q->free_id;
    q->free_id = i;
    q->num_free = (uint16_t)(q->num_free + n);
    if (q->dev->opts.event_idx && q->dev->opts.irq) {
        q->drv_event->off_wrap = (uint16_t)(q->next_used | (unsigned)q->used_wrap << 15);
        rt_mb();
    }
    *id = i;
    *len = d->len;
    return 1;
}
