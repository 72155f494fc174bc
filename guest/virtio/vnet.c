/* virtio-net driver: see vnet.h. */
#include "vnet.h"
#include "rt.h"

static int rx_post(struct vnet *n, unsigned slot)
{
    struct virtq_buf b = { n->rx_buf + (size_t)slot * VNET_BUF, VNET_BUF, 1 };
    int id = virtq_add(n->rx, &b, 1);

    if (id < 0 || id >= 256)
        return -VIRTIO_ENOSPC;
    n->rx_slot[id] = (int16_t)slot;
    return 0;
}

int vnet_init(struct vnet *n, const struct virtio_mmio_loc *loc, const struct virtio_opts *o,
              int mrg, int guest_csum)
{
    uint64_t want = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
                    (1ull << VIRTIO_NET_F_MTU) | (mrg ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0) |
                    (guest_csum ? 1ull << VIRTIO_NET_F_GUEST_CSUM : 0);
    int rc;

    memset(n, 0, sizeof(*n));
    if ((rc = virtio_dev_init(&n->dev, loc, want, o)) ||
        (rc = virtio_queue_setup(&n->dev, 0, &n->rx)) ||
        (rc = virtio_queue_setup(&n->dev, 1, &n->tx)))
        return rc;
    for (int i = 0; i < 6; i++)
        n->mac[i] = virtio_has_feature(&n->dev, VIRTIO_NET_F_MAC) ?
                    virtio_config_read8(&n->dev, (unsigned)i) : (uint8_t)(i ? 0 : 2);
    if (virtio_has_feature(&n->dev, VIRTIO_NET_F_MTU))
        n->mtu = (uint16_t)(virtio_config_read8(&n->dev, 10) |
                            virtio_config_read8(&n->dev, 11) << 8);
    n->rx_buf = virtio_alloc((size_t)VNET_RX_BUFS * VNET_BUF, 64);
    n->tx_buf = virtio_alloc(VNET_BUF, 64);
    if (!n->rx_buf || !n->tx_buf) {
        printf("net: out of DMA memory\n");
        return -VIRTIO_ENOSPC;
    }
    unsigned bufs = VNET_RX_BUFS < n->rx->size ? VNET_RX_BUFS : n->rx->size;
    for (unsigned i = 0; i < bufs; i++)
        if ((rc = rx_post(n, i)))
            return rc;
    if ((rc = virtio_dev_ready(&n->dev)))
        return rc;
    virtq_kick(n->rx);
    return 0;
}

int vnet_send(struct vnet *n, const void *frame, uint32_t len)
{
    uint16_t id;
    uint32_t used;

    if (len > VNET_BUF - VNET_HDR)
        return -VIRTIO_EINVAL;
    memset(n->tx_buf, 0, VNET_HDR);
    memcpy(n->tx_buf + VNET_HDR, frame, len);
    struct virtq_buf b = { n->tx_buf, VNET_HDR + len, 0 };
    if (virtq_add(n->tx, &b, 1) < 0)
        return -VIRTIO_EINVAL;
    virtq_kick(n->tx);
    virtq_wait_used(n->tx, &id, &used);
    n->tx_frames++;
    return 0;
}

int vnet_recv(struct vnet *n, void *buf, uint32_t max, uint64_t spins)
{
    uint16_t id;
    uint32_t len;

    for (uint64_t i = 0; !virtq_get_used(n->rx, &id, &len); i++) {
        if (i >= spins)
            return -VIRTIO_EIO;
        rt_pause();
    }
    GUEST_ASSERT(id < 256 && n->rx_slot[id] >= 0);
    unsigned slot = (unsigned)n->rx_slot[id];
    const uint8_t *p = n->rx_buf + (size_t)slot * VNET_BUF;
    /* One buffer per frame: with MRG_RXBUF num_buffers must be 1 (buffers hold a whole
     * frame); without it the field is not read (QEMU leaves it 0 then). */
    GUEST_ASSERT(len >= VNET_HDR && len <= VNET_BUF);
    if (virtio_has_feature(&n->dev, VIRTIO_NET_F_MRG_RXBUF))
        GUEST_ASSERT((p[10] | p[11] << 8) == 1);
    len -= VNET_HDR;
    if (len > max)
        len = max;
    memcpy(buf, p + VNET_HDR, len);
    n->rx_frames++;
    GUEST_ASSERT(rx_post(n, slot) == 0);
    virtq_kick(n->rx);
    return (int)len;
}
