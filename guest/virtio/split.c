/* Split virtqueue (virtio 1.2 section 2.7): descriptor table + avail ring + used ring. */
#include "virtq_impl.h"

#include "../rt/rt.h"

static volatile uint16_t *used_event(struct virtq *q) { return &q->avail->ring[q->size]; }
static volatile uint16_t *avail_event(struct virtq *q)
{
    return (volatile uint16_t *)&q->used->ring[q->size];
}

int split_init(struct virtq *q)
{
    unsigned n = q->size;
    q->desc = virtio_alloc(16u * n, 4096);
    q->avail = virtio_alloc(6u + 2u * n, 4096);
    q->used = virtio_alloc(6u + 8u * n, 4096);
    if (!q->desc || !q->avail || !q->used)
        return -VIRTIO_ENOSPC;
    for (unsigned i = 0; i < n; i++)
        q->desc[i].next = (uint16_t)(i + 1);    /* the free list */
    q->free_head = 0;
    q->num_free = (uint16_t)n;
    /* Polling: ask for no interrupts (ignored by the device under EVENT_IDX, where the
     * IOAPIC entry stays masked instead). Interrupts: used_event 0 = "after the next". */
    q->avail->flags = q->dev->opts.irq ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
    *used_event(q) = 0;
    return 0;
}

int split_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n)
{
    int ind = q->indirect && n > 1;
    unsigned need = ind ? 1 : n;
    if (q->num_free < need)
        return -VIRTIO_ENOSPC;
    uint16_t head = q->free_head, idx = head;
    if (ind) {
        struct vring_desc *t = (struct vring_desc *)q->indirect + (unsigned)head * VIRTQ_MAX_SG;
        for (unsigned i = 0; i < n; i++) {
            t[i].addr = (uint64_t)(uintptr_t)bufs[i].addr;
            t[i].len = bufs[i].len;
            t[i].flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            t[i].next = (uint16_t)(i + 1);
        }
        q->free_head = q->desc[head].next;
        q->desc[head].addr = (uint64_t)(uintptr_t)t;
        q->desc[head].len = 16u * n;
        q->desc[head].flags = VRING_DESC_F_INDIRECT;
    } else {
        /* The free list's links become the chain's links. */
        for (unsigned i = 0; i < n; i++) {
            struct vring_desc *d = &q->desc[idx];
            d->addr = (uint64_t)(uintptr_t)bufs[i].addr;
            d->len = bufs[i].len;
            d->flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                                  (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            idx = d->next;
        }
        q->free_head = idx;
    }
    q->chain_len[head] = (uint16_t)need;
    q->num_free = (uint16_t)(q->num_free - need);
    q->avail->ring[q->avail_idx & (q->size - 1)] = head;
    q->avail_idx++;
    q->num_added++;
    return head;
}

int split_publish(struct virtq *q)
{
    rt_wmb();   /* ring entries before the index */
    *(volatile uint16_t *)&q->avail->idx = q->avail_idx;
    rt_mb();    /* index before reading the device's suppression state */
    uint16_t old = q->avail_pub, new = q->avail_idx;
    q->avail_pub = new;
    if (q->dev->opts.event_idx)
        return vring_need_event(*avail_event(q), new, old);
    return !(*(volatile uint16_t *)&q->used->flags & VRING_USED_F_NO_NOTIFY);
}

int split_get_used(struct virtq *q, uint16_t *id, uint32_t *len)
{
    if (q->last_used == *(volatile uint16_t *)&q->used->idx)
        return 0;
    rt_rmb();   /* index before the element */
    struct vring_used_elem e = q->used->ring[q->last_used & (q->size - 1)];
    if (e.id >= q->size || q->chain_len[e.id] == 0)
        virtq_bad_device(q, "used id", e.id);
    unsigned n = q->chain_len[e.id];
    uint16_t last = (uint16_t)e.id;
    for (unsigned i = 1; i < n; i++)
        last = q->desc[last].next;
    q->desc[last].next = q->free_head;
    q->free_head = (uint16_t)e.id;
    q->num_free = (uint16_t)(q->num_free + n);
    q->chain_len[e.id] = 0;
    q->last_used++;
    if (q->dev->opts.event_idx && q->dev->opts.irq) {
        *used_event(q) = q->last_used;  /* interrupt me after the next one */
        rt_mb();
    }
    *id = (uint16_t)e.id;
    *len = e.len;
    return 1;
}
