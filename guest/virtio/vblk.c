/* virtio-blk requests: header (device-readable), data, status byte (device-writable). */
#include "vblk.h"

#include "../rt/rt.h"

int vblk_open(struct vblk *b, unsigned index, const struct virtio_opts *o)
{
    struct virtio_mmio_loc loc;
    memset(b, 0, sizeof *b);
    if (virtio_find(VIRTIO_ID_BLOCK, index, &loc)) {
        printf("virtio: no virtio-blk device #%u found\n", index);
        return -VIRTIO_ENODEV;
    }
    printf("virtio: blk at 0x%llx irq %u (%s)\n", (unsigned long long)loc.base, loc.irq,
           virtio_loc_source_name(loc.source));
    uint64_t want = 1ull << VIRTIO_BLK_F_RO | 1ull << VIRTIO_BLK_F_BLK_SIZE |
                    1ull << VIRTIO_BLK_F_FLUSH;
    int r = virtio_dev_init(&b->dev, &loc, want, o);
    if (r)
        return r;
    b->capacity = virtio_config_read64(&b->dev, 0);
    b->blk_size = virtio_has_feature(&b->dev, VIRTIO_BLK_F_BLK_SIZE)
                      ? virtio_config_read32(&b->dev, 20) : 512;
    b->ro = virtio_has_feature(&b->dev, VIRTIO_BLK_F_RO);
    b->has_flush = virtio_has_feature(&b->dev, VIRTIO_BLK_F_FLUSH);
    if ((r = virtio_queue_setup(&b->dev, 0, &b->q)))
        return r;
    b->hdr = virtio_alloc(sizeof *b->hdr * VBLK_MAX_INFLIGHT, 64);
    b->status = virtio_alloc(VBLK_MAX_INFLIGHT, 64);
    b->slot_of_id = virtio_alloc(2u * b->q->size, 2);
    if (!b->hdr || !b->status || !b->slot_of_id)
        return -VIRTIO_ENOSPC;
    if ((r = virtio_dev_ready(&b->dev)))
        return r;
    virtio_dev_describe(&b->dev, "blk");
    return 0;
}

int vblk_add(struct vblk *b, unsigned slot, uint32_t type, uint64_t sector, void *data,
             uint32_t len, unsigned nseg)
{
    if (slot >= VBLK_MAX_INFLIGHT || nseg > 4 || (len && (nseg == 0 || len % nseg)))
        return -VIRTIO_EINVAL;
    struct virtq_buf bufs[6];
    unsigned n = 0;
    b->hdr[slot] = (struct vblk_hdr){ .type = type, .sector = sector };
    b->status[slot] = VBLK_S_NONE;
    bufs[n++] = (struct virtq_buf){ &b->hdr[slot], sizeof b->hdr[slot], 0 };
    /* Reads and GET_ID fill the buffer; writes and flushes only read it. */
    int dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    for (unsigned i = 0; len && i < nseg; i++)
        bufs[n++] = (struct virtq_buf){ (uint8_t *)data + i * (len / nseg), len / nseg,
                                        dev_writes };
    bufs[n++] = (struct virtq_buf){ &b->status[slot], 1, 1 };
    int id = virtq_add(b->q, bufs, n);
    if (id < 0)
        return id;
    b->slot_of_id[id] = (int16_t)slot;
    b->inflight++;
    return 0;
}

unsigned vblk_wait(struct vblk *b)
{
    uint16_t id;
    uint32_t len;
    virtq_wait_used(b->q, &id, &len);
    b->inflight--;
    unsigned slot = (unsigned)b->slot_of_id[id];
    if (b->dev.opts.trace)
        printf("vtrace: blk request %u done, status %u\n", slot, b->status[slot]);
    return slot;
}

int vblk_io(struct vblk *b, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
    int r = vblk_add(b, 0, type, sector, data, len, len ? 1 : 0);
    if (r)
        return r;
    vblk_kick(b);
    unsigned slot = vblk_wait(b);
    return b->status[slot];
}
