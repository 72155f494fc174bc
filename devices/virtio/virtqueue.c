/* Format-independent parts of a virtqueue: configuration checks, chain building rules,
 * copying to and from chains, and dispatch to the split or packed implementation. */
#include "devices/virtio/vq_internal.h"

#include <stdio.h>

_Static_assert(sizeof(struct vq__raw_desc) == VIRTQ_DESC_SIZE, "descriptor layout");

int vq__fail(struct virtqueue *vq, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(vq->err, sizeof(vq->err), fmt, ap);
    va_end(ap);
    return err ? err : -EINVAL;
}

int vq__add_seg(struct virtqueue *vq, struct vq_chain *c, uint64_t addr, uint32_t len,
                int writable)
{
    if (c->nsegs >= VQ_MAX_SEGS)
        return vq__fail(vq, -EINVAL, "chain %u longer than %u descriptors", c->id,
                        VQ_MAX_SEGS);
    if (!writable && c->nsegs > c->nread)
        return vq__fail(vq, -EINVAL,
                        "chain %u: device-readable descriptor after a writable one", c->id);
    if (!guest_mem_valid(vq->mem, addr, len))
        return vq__fail(vq, -EFAULT, "chain %u: buffer 0x%llx+0x%x outside guest RAM",
                        c->id, (unsigned long long)addr, len);
    c->segs[c->nsegs++] = (struct vq_seg){ addr, len, writable ? 1u : 0u };
    if (writable) {
        c->write_len += len;
    } else {
        c->nread++;
        c->read_len += len;
    }
    return 0;
}

int vq__check_indirect(struct virtqueue *vq, uint64_t addr, uint32_t len)
{
    if (!vq->indirect)
        return vq__fail(vq, -EINVAL, "indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC");
    if (len == 0 || len % VIRTQ_DESC_SIZE)
        return vq__fail(vq, -EINVAL, "indirect table length %u is not a non-zero multiple of 16",
                        len);
    if (len / VIRTQ_DESC_SIZE > VQ_MAX_SEGS)
        return vq__fail(vq, -EINVAL, "indirect table of %u entries exceeds %u",
                        len / VIRTQ_DESC_SIZE, VQ_MAX_SEGS);
    if (addr % VIRTQ_DESC_SIZE)
        return vq__fail(vq, -EINVAL, "indirect table 0x%llx not 16-byte aligned",
                        (unsigned long long)addr);
    if (!guest_mem_valid(vq->mem, addr, len))
        return vq__fail(vq, -EFAULT, "indirect table 0x%llx+0x%x outside guest RAM",
                        (unsigned long long)addr, len);
    return (int)(len / VIRTQ_DESC_SIZE);
}

void vq_reset(struct virtqueue *vq)
{
    vq->num = vq->num_max;
    vq->desc = vq->driver = vq->device = 0;
    vq->ready = 0;
    vq->packed = vq->event_idx = vq->indirect = 0;
    vq->last_avail = vq->used_idx = 0;
    vq->next_avail = vq->next_used = 0;
    vq->avail_wrap = vq->used_wrap = 1;
    vq->added = 0;
    vq->err[0] = 0;
}

static int check_area(struct virtqueue *vq, const char *what, uint64_t gpa, uint64_t size,
                      uint64_t align)
{
    if (gpa % align)
        return vq__fail(vq, -EINVAL, "%s area 0x%llx not %llu-byte aligned", what,
                        (unsigned long long)gpa, (unsigned long long)align);
    if (!guest_mem_valid(vq->mem, gpa, size))
        return vq__fail(vq, -EINVAL, "%s area 0x%llx+0x%llx outside guest RAM", what,
                        (unsigned long long)gpa, (unsigned long long)size);
    return 0;
}

int vq_enable(struct virtqueue *vq, struct guest_mem *mem, int packed, int event_idx,
              int indirect)
{
    int r;

    vq->mem = mem;
    vq->packed = packed;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    if (vq->num == 0 || vq->num > vq->num_max)
        return vq__fail(vq, -EINVAL, "queue size %u not in 1..%u", vq->num, vq->num_max);
    /* Split rings index with free-running 16-bit counters: only a power of 2 divides 2^16. */
    if (!packed && (vq->num & (vq->num - 1)))
        return vq__fail(vq, -EINVAL, "split queue size %u is not a power of 2", vq->num);
    if (packed) {
        if ((r = check_area(vq, "descriptor", vq->desc, 16ull * vq->num, 16)) ||
            (r = check_area(vq, "driver", vq->driver, VIRTQ_EVENT_SUPPRESS_SIZE, 4)) ||
            (r = check_area(vq, "device", vq->device, VIRTQ_EVENT_SUPPRESS_SIZE, 4)))
            return r;
    } else {
        if ((r = check_area(vq, "descriptor", vq->desc, 16ull * vq->num, 16)) ||
            (r = check_area(vq, "driver", vq->driver, VIRTQ_AVAIL_SIZE(vq->num), 2)) ||
            (r = check_area(vq, "device", vq->device, VIRTQ_USED_SIZE(vq->num), 4)))
            return r;
    }
    vq->last_avail = vq->used_idx = 0;
    vq->next_avail = vq->next_used = 0;
    vq->avail_wrap = vq->used_wrap = 1;
    vq->added = 0;
    vq->err[0] = 0;
    vq->ready = 1;
    return 0;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c)
{
    int r;

    if (!vq->ready)
        return 0;
    r = vq->packed ? vq__packed_pop(vq, c) : vq__split_pop(vq, c);
    if (r > 0)
        vq->requests++;
    return r;
}

int vq_push(struct virtqueue *vq, const struct vq_chain *c, uint32_t len)
{
    if (!vq->ready)
        return vq__fail(vq, -EINVAL, "push on a queue that is not ready");
    /* Never report more bytes written than the chain can hold. */
    if (len > c->write_len)
        len = (uint32_t)c->write_len;
    return vq_push_id(vq, c->id, c->ndesc, len);
}

int vq_push_id(struct virtqueue *vq, uint16_t id, uint16_t ndesc, uint32_t len)
{
    if (!vq->ready)
        return vq__fail(vq, -EINVAL, "push on a queue that is not ready");
    return vq->packed ? vq__packed_push(vq, id, ndesc, len) : vq__split_push(vq, id, len);
}

int vq_needs_notify(struct virtqueue *vq)
{
    int r;

    if (!vq->ready || vq->added == 0)
        return 0;
    /* Our used-ring writes must be visible before we read the driver's suppression state. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r = vq->packed ? vq__packed_needs_notify(vq) : vq__split_needs_notify(vq);
    vq->added = 0;
    if (r)
        vq->notifies++;
    return r;
}

/* Walks the segments of one part (readable or writable) copying `len` bytes at `off`. */
static int chain_copy(struct guest_mem *mem, const struct vq_chain *c, int writable,
                      uint64_t off, void *buf, uint64_t len)
{
    unsigned first = writable ? c->nread : 0, end = writable ? c->nsegs : c->nread;
    uint8_t *p = buf;

    for (unsigned i = first; i < end && len; i++) {
        const struct vq_seg *s = &c->segs[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint64_t n = s->len - off;
        if (n > len)
            n = len;
        int r = writable ? guest_mem_write(mem, s->gpa + off, p, n)
                         : guest_mem_read(mem, s->gpa + off, p, n);
        if (r)
            return r;
        p += n;
        len -= n;
        off = 0;
    }
    return len ? -EINVAL : 0;
}

int vq_chain_read(struct guest_mem *mem, const struct vq_chain *c, uint64_t off,
                  void *buf, uint64_t len)
{
    return chain_copy(mem, c, 0, off, buf, len);
}

int vq_chain_write(struct guest_mem *mem, const struct vq_chain *c, uint64_t off,
                   const void *buf, uint64_t len)
{
    return chain_copy(mem, c, 1, off, (void *)buf, len);
}

void vq_mark_save(const struct virtqueue *vq, struct vq_mark *m)
{
    m->last_avail = vq->last_avail;
    m->next_avail = vq->next_avail;
    m->avail_wrap = vq->avail_wrap;
    m->requests = vq->requests;
}

void vq_mark_restore(struct virtqueue *vq, const struct vq_mark *m)
{
    vq->last_avail = m->last_avail;
    vq->next_avail = m->next_avail;
    vq->avail_wrap = m->avail_wrap;
    vq->requests = m->requests;
}
