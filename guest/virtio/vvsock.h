/* virtio-vsock on top of the driver library (virtio 1.2 section 5.10): rx, tx and event
 * queues, whole packets (44-byte header + payload) in and out, polled. The protocol logic
 * (connections, credit) is the caller's: guest/progs/vsock_*.c. */
#ifndef GUEST_VVSOCK_H
#define GUEST_VVSOCK_H

#include "virtio.h"
#include "devices/virtio/vsock_spec.h"

#define VVSOCK_NRX 16                   /* rx buffers kept posted */
#define VVSOCK_RX_DATA 4096             /* payload bytes per rx buffer */
#define VVSOCK_TX_DATA 4096             /* payload bytes per tx packet */

struct vvsock {
    struct virtio_dev dev;
    struct virtq *rx, *tx, *ev;
    uint64_t cid;
    uint8_t *rxbuf;                     /* [VVSOCK_NRX][HDR + RX_DATA], DMA */
    uint8_t *txbuf;                     /* HDR + TX_DATA, DMA */
    uint8_t *evbuf;                     /* 4 bytes, DMA */
    int16_t *slot_of_id;
    uint64_t transport_resets;
    uint32_t tick;                      /* CPU timer count (rt_timer_*) while idling, 0: spin */
};

/* Finds the first virtio-vsock, sets up its queues, posts rx and event buffers, prints the
 * "virtio: vsock ..." line. 0 or -errno. */
int vvsock_open(struct vvsock *v, const struct virtio_opts *o);
/* Sends one packet (src_cid is filled in) and waits until the device took it. */
void vvsock_send(struct vvsock *v, struct vsock_hdr *h, const void *data, uint32_t len);
/* Takes one received packet if there is one: 1 with *h and up to VVSOCK_RX_DATA bytes in
 * data, else 0. Also counts TRANSPORT_RESET events. */
int vvsock_poll(struct vvsock *v, struct vsock_hdr *h, void *data);

/* Waiting between packets: with tick=N on the cmdline (default 10000; 0: spin) a periodic
 * CPU timer (rt_timer_*) runs and vvsock_idle() halts until it (or any interrupt) fires. On the
 * software CPU a halted guest lets virtual time jump to the VMM's next poll of the host
 * side instead of executing its way there. 0, or -VIRTIO_EINVAL (message printed). */
int vvsock_idle_start(struct vvsock *v);
void vvsock_idle(struct vvsock *v);
void vvsock_idle_stop(struct vvsock *v);

#endif
