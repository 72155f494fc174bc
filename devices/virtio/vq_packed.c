/* Packed virtqueue, device side (§2.8): one descriptor ring with wrap counters, and the
 * driver / device event suppression structures. */
#include "devices/virtio/vq_internal.h"

#define DESC(vq, i)   ((vq)->desc + 16ull * (i))

/* 1 if the descriptor at next_avail has been made available in the current lap. */
static int desc_available(struct virtqueue *vq, int *avail)
{
    uint16_t flags;

    if (vq__rd16(vq, DESC(vq, vq->next_avail) + 14, &flags))
        return vq__fail(vq, -EFAULT, "descriptor %u unreadable", vq->next_avail);
    int a = !!(flags & VIRTQ_DESC_F_AVAIL), u = !!(flags & VIRTQ_DESC_F_USED);
    *avail = a == vq->avail_wrap && u != vq->avail_wrap;
    return 0;
}

static int walk_indirect(struct virtqueue *vq, struct vq_chain *c, uint64_t addr, uint32_t len)
{
    int n = vq__check_indirect(vq, addr, len);
    struct vq__raw_desc d;

    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        if (vq__read_desc(vq, addr + 16ull * i, &d))
            return vq__fail(vq, -EFAULT, "indirect descriptor %d unreadable", i);
        /* Only WRITE is valid in a table entry; NEXT and id are reserved and ignored,
         * INDIRECT is a driver error (MUST NOT) we refuse like in split rings. */
        if (d.b & VIRTQ_DESC_F_INDIRECT)
            return vq__fail(vq, -EINVAL, "buffer %u: nested indirect descriptor", c->id);
        int r = vq__add_seg(vq, c, d.addr, d.len, d.b & VIRTQ_DESC_F_WRITE);
        if (r)
            return r;
    }
    return 0;
}

int vq__packed_pop(struct virtqueue *vq, struct vq_chain *c)
{
    int avail;
    struct vq__raw_desc d;

    if (desc_available(vq, &avail))
        return -EFAULT;
    if (!avail) {
        if (!vq->event_idx)
            return 0;
        /* Ask for a kick when the next slot is made available, then look again. */
        uint16_t ev[2] = { htole16((uint16_t)(vq->next_avail | (vq->avail_wrap << 15))),
                           htole16(VIRTQ_EVENT_F_DESC) };
        if (guest_mem_write(vq->mem, vq->device, ev, sizeof(ev)))
            return vq__fail(vq, -EFAULT, "device event suppression unwritable");
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (desc_available(vq, &avail))
            return -EFAULT;
        if (!avail)
            return 0;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    vq__chain_init(c);
    uint16_t pos = vq->next_avail;
    uint8_t wrap = vq->avail_wrap;
    unsigned count = 0;
    for (;;) {
        if (++count > vq->num)
            return vq__fail(vq, -EINVAL, "descriptor list at %u longer than queue size %u",
                            vq->next_avail, vq->num);
        if (vq__read_desc(vq, DESC(vq, pos), &d))
            return vq__fail(vq, -EFAULT, "descriptor %u unreadable", pos);
        uint16_t id = d.a, flags = d.b;
        c->id = id;
        if (flags & VIRTQ_DESC_F_INDIRECT) {
            /* Packed rings: a driver MUST NOT put an INDIRECT descriptor in a NEXT-linked
             * list, so it must be the whole buffer. */
            if ((flags & VIRTQ_DESC_F_NEXT) || count > 1)
                return vq__fail(vq, -EINVAL, "buffer %u: INDIRECT inside a chained list", id);
            int r = walk_indirect(vq, c, d.addr, d.len);
            if (r)
                return r;
        } else {
            int r = vq__add_seg(vq, c, d.addr, d.len, flags & VIRTQ_DESC_F_WRITE);
            if (r)
                return r;
        }
        if (++pos == vq->num) {
            pos = 0;
            wrap ^= 1;
        }
        if (!(flags & VIRTQ_DESC_F_NEXT))
            break;
    }
    /* The buffer id comes from the last descriptor of the list. */
    if (c->id >= vq->num)
        return vq__fail(vq, -EINVAL, "buffer id %u >= queue size %u", c->id, vq->num);
    c->ndesc = (uint16_t)count;
    vq->next_avail = pos;
    vq->avail_wrap = wrap;
    return 1;
}

int vq__packed_push(struct virtqueue *vq, uint16_t id, uint16_t ndesc, uint32_t len)
{
    uint64_t at = DESC(vq, vq->next_used);
    struct { uint32_t len; uint16_t id; } __attribute__((packed)) body = {
        htole32(len), htole16(id) };
    uint16_t flags = vq->used_wrap ? (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED) : 0;

    if (len)
        flags |= VIRTQ_DESC_F_WRITE;
    if (guest_mem_write(vq->mem, at + 8, &body, sizeof(body)))
        return vq__fail(vq, -EFAULT, "used descriptor %u unwritable", vq->next_used);
    /* id and len must be visible before the flags that hand the slot back. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (vq__wr16(vq, at + 14, flags))
        return vq__fail(vq, -EFAULT, "used descriptor %u unwritable", vq->next_used);
    if (ndesc == 0)
        ndesc = 1;
    uint32_t next = (uint32_t)vq->next_used + ndesc;
    if (next >= vq->num) {
        next -= vq->num;
        vq->used_wrap ^= 1;
    }
    vq->next_used = (uint16_t)next;
    vq->added += ndesc;
    return 0;
}

int vq__packed_needs_notify(struct virtqueue *vq)
{
    uint16_t ev[2];

    if (guest_mem_read(vq->mem, vq->driver, ev, sizeof(ev)))
        return 1;
    uint16_t off_wrap = le16toh(ev[0]), flags = le16toh(ev[1]) & 3;
    if (flags == VIRTQ_EVENT_F_DISABLE)
        return 0;
    if (flags != VIRTQ_EVENT_F_DESC || !vq->event_idx || vq->added >= vq->num)
        return 1;
    /* Event offsets are ring positions; one from the previous lap is shifted down by num
     * so the 16-bit window test of §2.7.7.2 still applies. */
    uint16_t event = off_wrap & 0x7fff;
    if ((off_wrap >> 15) != vq->used_wrap)
        event = (uint16_t)(event - vq->num);
    return virtq_need_event(event, vq->next_used, (uint16_t)(vq->next_used - vq->added));
}
