/* Split virtqueue, device side (§2.7): descriptor table, available ring, used ring. */
#include "devices/virtio/vq_internal.h"

#define AVAIL_FLAGS(vq)      ((vq)->driver)
#define AVAIL_IDX(vq)        ((vq)->driver + 2)
#define AVAIL_RING(vq, i)    ((vq)->driver + 4 + 2ull * (i))
#define USED_EVENT(vq)       ((vq)->driver + 4 + 2ull * (vq)->num)
#define USED_IDX(vq)         ((vq)->device + 2)
#define USED_RING(vq, i)     ((vq)->device + 4 + 8ull * (i))
#define AVAIL_EVENT(vq)      ((vq)->device + 4 + 8ull * (vq)->num)

/* How many chains the driver has made available beyond last_avail; <0 if impossible. */
static int avail_pending(struct virtqueue *vq)
{
    uint16_t idx, pending;

    if (vq__rd16(vq, AVAIL_IDX(vq), &idx))
        return vq__fail(vq, -EFAULT, "available ring index unreadable");
    pending = (uint16_t)(idx - vq->last_avail);
    if (pending > vq->num)
        return vq__fail(vq, -EINVAL, "avail idx %u is %u ahead of %u, more than queue size %u",
                        idx, pending, vq->last_avail, vq->num);
    return pending;
}

/* Walks the chain starting at `head`: direct descriptors, then at most one indirect table. */
static int walk_chain(struct virtqueue *vq, struct vq_chain *c, uint16_t head)
{
    uint64_t table = vq->desc;
    unsigned tsize = vq->num, walked = 0, idx = head;
    int in_indirect = 0;
    struct vq__raw_desc d;

    for (;;) {
        /* More descriptors than the table holds means the `next` links form a loop. */
        if (++walked > tsize)
            return vq__fail(vq, -EINVAL, "chain %u: loop or longer than %u descriptors",
                            head, tsize);
        if (vq__read_desc(vq, table + 16ull * idx, &d))
            return vq__fail(vq, -EFAULT, "chain %u: descriptor %u unreadable", head, idx);
        uint16_t flags = d.a, next = d.b;
        if (flags & VIRTQ_DESC_F_INDIRECT) {
            if (in_indirect)
                return vq__fail(vq, -EINVAL, "chain %u: nested indirect descriptor", head);
            if (flags & VIRTQ_DESC_F_NEXT)
                return vq__fail(vq, -EINVAL, "chain %u: descriptor has both INDIRECT and NEXT",
                                head);
            int n = vq__check_indirect(vq, d.addr, d.len);
            if (n < 0)
                return n;
            table = d.addr;
            tsize = (unsigned)n;
            walked = 0;
            idx = 0;
            in_indirect = 1;
            continue;
        }
        int r = vq__add_seg(vq, c, d.addr, d.len, flags & VIRTQ_DESC_F_WRITE);
        if (r)
            return r;
        if (!(flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (next >= tsize)
            return vq__fail(vq, -EINVAL, "chain %u: next index %u beyond table of %u", head,
                            next, tsize);
        idx = next;
    }
}

int vq__split_pop(struct virtqueue *vq, struct vq_chain *c)
{
    int pending = avail_pending(vq);
    uint16_t head;

    if (pending < 0)
        return pending;
    if (pending == 0) {
        if (!vq->event_idx)
            return 0;
        /* Ask for a kick at the next chain, then look again: the driver may have added one
         * after our first look but before it could see avail_event. */
        if (vq__wr16(vq, AVAIL_EVENT(vq), vq->last_avail))
            return vq__fail(vq, -EFAULT, "avail_event unwritable");
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        pending = avail_pending(vq);
        if (pending <= 0)
            return pending;
    }
    /* Read the ring entry and descriptors only after seeing the index. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (vq__rd16(vq, AVAIL_RING(vq, vq->last_avail % vq->num), &head))
        return vq__fail(vq, -EFAULT, "available ring entry unreadable");
    if (head >= vq->num)
        return vq__fail(vq, -EINVAL, "avail ring head %u >= queue size %u", head, vq->num);
    vq__chain_init(c);
    c->id = head;
    c->ndesc = 1;
    int r = walk_chain(vq, c, head);
    if (r)
        return r;
    vq->last_avail++;
    if (vq->event_idx && vq__wr16(vq, AVAIL_EVENT(vq), vq->last_avail))
        return vq__fail(vq, -EFAULT, "avail_event unwritable");
    return 1;
}

int vq__split_push(struct virtqueue *vq, uint16_t id, uint32_t len)
{
    uint32_t elem[2] = { htole32(id), htole32(len) };

    if (guest_mem_write(vq->mem, USED_RING(vq, vq->used_idx % vq->num), elem, sizeof(elem)))
        return vq__fail(vq, -EFAULT, "used ring unwritable");
    /* The element must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->used_idx++;
    if (vq__wr16(vq, USED_IDX(vq), vq->used_idx))
        return vq__fail(vq, -EFAULT, "used index unwritable");
    vq->added++;
    return 0;
}

int vq__split_needs_notify(struct virtqueue *vq)
{
    uint16_t v;

    if (!vq->event_idx) {
        if (vq__rd16(vq, AVAIL_FLAGS(vq), &v))
            return 1;
        return !(v & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (vq->added >= 0x8000 || vq__rd16(vq, USED_EVENT(vq), &v))
        return 1;
    return virtq_need_event(v, vq->used_idx, (uint16_t)(vq->used_idx - vq->added));
}
