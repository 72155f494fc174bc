/* Shared between virtqueue.c, vq_split.c and vq_packed.c only. */
#ifndef VMLAB_VQ_INTERNAL_H
#define VMLAB_VQ_INTERNAL_H

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "devices/virtio/virtio_spec.h"
#include "devices/virtio/virtqueue.h"

/* Records why the ring is unusable; returns -EINVAL (or the given errno) for chaining. */
int vq__fail(struct virtqueue *vq, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends one data descriptor to the chain, enforcing the segment bound, the
 * readable-before-writable rule and that the buffer lies inside guest RAM. */
int vq__add_seg(struct virtqueue *vq, struct vq_chain *c, uint64_t addr, uint32_t len,
                int writable);

/* Validates an indirect-table descriptor (len, alignment, RAM); returns its entry count
 * (> 0) or a negative errno. */
int vq__check_indirect(struct virtqueue *vq, uint64_t addr, uint32_t len);

static inline void vq__chain_init(struct vq_chain *c)
{
    c->nsegs = c->nread = 0;
    c->read_len = c->write_len = 0;
    c->ndesc = 0;
    c->id = 0;
}

static inline int vq__rd16(struct virtqueue *vq, uint64_t gpa, uint16_t *v)
{
    uint16_t x;
    int r = guest_mem_read(vq->mem, gpa, &x, sizeof(x));
    *v = le16toh(x);
    return r;
}

static inline int vq__wr16(struct virtqueue *vq, uint64_t gpa, uint16_t v)
{
    uint16_t x = htole16(v);
    return guest_mem_write(vq->mem, gpa, &x, sizeof(x));
}

/* Descriptor as read from guest memory (both formats are 16 bytes). */
struct vq__raw_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t a, b;      /* split: flags, next; packed: id, flags */
};

static inline int vq__read_desc(struct virtqueue *vq, uint64_t gpa, struct vq__raw_desc *d)
{
    int r = guest_mem_read(vq->mem, gpa, d, sizeof(*d));
    d->addr = le64toh(d->addr);
    d->len = le32toh(d->len);
    d->a = le16toh(d->a);
    d->b = le16toh(d->b);
    return r;
}

int vq__split_pop(struct virtqueue *vq, struct vq_chain *c);
int vq__split_push(struct virtqueue *vq, uint16_t id, uint32_t len);
int vq__split_needs_notify(struct virtqueue *vq);
int vq__packed_pop(struct virtqueue *vq, struct vq_chain *c);
int vq__packed_push(struct virtqueue *vq, uint16_t id, uint16_t ndesc, uint32_t len);
int vq__packed_needs_notify(struct virtqueue *vq);

#endif
