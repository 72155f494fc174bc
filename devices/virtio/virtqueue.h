/* The device side of one virtqueue, split (§2.7) or packed (§2.8). Devices pop a chain of
 * descriptors as a validated list of guest-physical segments, move the data themselves
 * with guest_mem_read/write, and push the chain back as used. Every ring access goes
 * through guest_mem, so the trace sees all of it and nothing outside RAM is ever touched.
 *
 * A malformed ring (loops, over-long chains, nested indirect tables, descriptors outside
 * RAM, readable-after-writable, impossible indices) makes vq_pop() return a negative errno
 * with the reason in vq->err; the caller (virtio core) then marks the device
 * DEVICE_NEEDS_RESET and stops using the queue. */
#ifndef VMLAB_VIRTQUEUE_H
#define VMLAB_VIRTQUEUE_H

#include <stdint.h>

#include "vmm/guest_mem.h"

/* Largest queue size any vmlab device offers; also bounds every chain (direct descriptors
 * plus indirect table entries), so a chain fits in a fixed vq_chain. */
#define VQ_MAX_SIZE 256
#define VQ_MAX_SEGS VQ_MAX_SIZE

struct vq_seg {
    uint64_t gpa;
    uint32_t len;
    uint32_t writable;          /* 1: device-writable, 0: device-readable */
};

/* One popped buffer: segments 0..nread-1 are device-readable, nread..nsegs-1 writable. */
struct vq_chain {
    uint16_t id;                /* split: head descriptor index; packed: buffer id */
    uint16_t ndesc;             /* ring slots the chain occupies (packed used-ring skip) */
    unsigned nsegs, nread;
    uint64_t read_len, write_len;   /* byte totals of the readable / writable parts */
    struct vq_seg segs[VQ_MAX_SEGS];
};

struct virtqueue {
    struct guest_mem *mem;
    /* Configuration written by the driver through the transport. */
    uint16_t num;               /* queue size chosen by the driver */
    uint16_t num_max;           /* what the device offers (QueueNumMax) */
    uint64_t desc, driver, device;  /* descriptor area, driver area, device area */
    int ready;
    /* Negotiated ring features, latched by vq_enable. */
    int packed, event_idx, indirect;
    /* Split ring state. */
    uint16_t last_avail, used_idx;
    /* Packed ring state (wrap counters start at 1). */
    uint16_t next_avail, next_used;
    uint8_t avail_wrap, used_wrap;
    /* Used entries (split) / ring slots (packed) added since the last notify decision. */
    uint32_t added;
    /* Chains popped since the queue was created (the control socket's per-queue stats). */
    uint64_t requests;
    uint64_t notifies;          /* used buffer notifications decided */
    char err[160];
};

/* Back to the state after device reset: not ready, size num_max, addresses 0. The
 * lifetime counters (requests, notifies) are kept. */
void vq_reset(struct virtqueue *vq);

/* Validates the driver's configuration (size, alignment, areas inside RAM) and starts
 * the queue. 0, or -EINVAL with the reason in vq->err (the queue stays not ready). */
int vq_enable(struct virtqueue *vq, struct guest_mem *mem, int packed, int event_idx,
              int indirect);

/* 1: a chain was popped into *c; 0: nothing available; <0: malformed ring (vq->err). */
int vq_pop(struct virtqueue *vq, struct vq_chain *c);

/* Returns the chain as used with `len` bytes written into its writable part.
 * 0, or -EFAULT if the used ring is outside RAM (vq->err). */
int vq_push(struct virtqueue *vq, const struct vq_chain *c, uint32_t len);

/* The same for a chain known only by its id and slot count (completions deferred after
 * the vq_chain was reused). The caller clips len to the chain's writable size. */
int vq_push_id(struct virtqueue *vq, uint16_t id, uint16_t ndesc, uint32_t len);

/* After one or more pushes: 1 if the driver wants a used buffer notification now
 * (honouring VIRTQ_AVAIL_F_NO_INTERRUPT / used_event / packed driver event suppression),
 * 0 if not or if nothing was pushed since the last call. */
int vq_needs_notify(struct virtqueue *vq);

/* Copy between a host buffer and the chain's readable / writable bytes, starting `off`
 * bytes into that part. 0, -EINVAL if the part is too short, -EFAULT from guest_mem. */
int vq_chain_read(struct guest_mem *mem, const struct vq_chain *c, uint64_t off,
                  void *buf, uint64_t len);
int vq_chain_write(struct guest_mem *mem, const struct vq_chain *c, uint64_t off,
                   const void *buf, uint64_t len);

/* Where the next pop starts. A device that pops several chains for one piece of work
 * (a mergeable receive buffer) and finds too few can put them all back: restoring a mark
 * taken before the pops makes them available again, as if never popped. Valid only while
 * nothing was pushed in between. */
struct vq_mark {
    uint16_t last_avail, next_avail;
    uint8_t avail_wrap;
    uint64_t requests;
};
void vq_mark_save(const struct virtqueue *vq, struct vq_mark *m);
void vq_mark_restore(struct virtqueue *vq, const struct vq_mark *m);

#endif
