/* virtio-net on top of the driver library (virtio 1.2 section 5.1): a receive queue kept
 * full of VNET_RX_BUFS buffers, one transmit buffer, 12-byte headers. No control queue:
 * the device's default (promiscuous, configured MAC) is what a small program needs. */
#ifndef GUEST_VNET_H
#define GUEST_VNET_H

#include "virtio.h"

#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU       3
#define VIRTIO_NET_F_MAC       5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS    16

#define VNET_HDR      12
#define VNET_FRAME_MAX 1514
#define VNET_BUF      2048      /* header + frame, one buffer each */
#define VNET_RX_BUFS  16

struct vnet {
    struct virtio_dev dev;
    struct virtq *rx, *tx;
    uint8_t mac[6];
    uint16_t mtu;               /* 0 if the device did not offer one */
    uint8_t *rx_buf;            /* [VNET_RX_BUFS][VNET_BUF], DMA */
    int16_t rx_slot[256];       /* chain id -> buffer slot */
    uint8_t *tx_buf;            /* VNET_BUF, DMA */
    uint64_t rx_frames, tx_frames;
};

/* Finds, negotiates (MAC, STATUS, MTU; MRG_RXBUF when mrg; GUEST_CSUM when guest_csum:
 * receive buffers may then hold frames with a partial checksum, which this driver never
 * checks), sets up both queues and fills the receive queue. 0 or -errno with a message
 * printed. */
int vnet_init(struct vnet *n, const struct virtio_mmio_loc *loc, const struct virtio_opts *o,
              int mrg, int guest_csum);
/* Sends one frame and waits until the device has taken it. 0 or -VIRTIO_EINVAL. */
int vnet_send(struct vnet *n, const void *frame, uint32_t len);
/* The next received frame copied into buf (at most max bytes), its buffer given back to the
 * device. Waits up to `spins` polls; returns the frame length or -VIRTIO_EIO on timeout. */
int vnet_recv(struct vnet *n, void *buf, uint32_t max, uint64_t spins);

#endif
