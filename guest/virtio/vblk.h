/* virtio-blk on top of the driver library: requests with up to VBLK_MAX_INFLIGHT in
 * flight, each a header / data... / status chain (virtio 1.2 section 5.2). */
#ifndef GUEST_VBLK_H
#define GUEST_VBLK_H

#include "virtio.h"

#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VBLK_S_NONE       0xff  /* the device did not write a status */

#define VBLK_ID_BYTES 20
#define VBLK_MAX_INFLIGHT 16

struct vblk_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct vblk {
    struct virtio_dev dev;
    struct virtq *q;
    uint64_t capacity;          /* 512-byte sectors */
    uint32_t blk_size;
    int ro;
    int has_flush;
    struct vblk_hdr *hdr;       /* [VBLK_MAX_INFLIGHT], DMA */
    uint8_t *status;            /* [VBLK_MAX_INFLIGHT], DMA */
    int16_t *slot_of_id;        /* chain id -> slot */
    unsigned inflight;
};

/* Finds the index-th virtio-blk, negotiates (RO, BLK_SIZE, FLUSH), sets up queue 0.
 * Prints the "virtio: blk ..." description line. 0 or -errno (with a message). */
int vblk_open(struct vblk *b, unsigned index, const struct virtio_opts *o);

/* Queues request `slot` (0..VBLK_MAX_INFLIGHT-1, not in flight): data is split into
 * nseg (1..4) equal descriptors (len 0: no data descriptor). Not visible until
 * vblk_kick(). 0 or -errno. */
int vblk_add(struct vblk *b, unsigned slot, uint32_t type, uint64_t sector, void *data,
             uint32_t len, unsigned nseg);
static inline void vblk_kick(struct vblk *b) { virtq_kick(b->q); }
/* Waits for one request to complete; returns its slot, its status in b->status[slot]. */
unsigned vblk_wait(struct vblk *b);
/* One request start to finish; returns the status byte. */
int vblk_io(struct vblk *b, uint32_t type, uint64_t sector, void *data, uint32_t len);

#endif
