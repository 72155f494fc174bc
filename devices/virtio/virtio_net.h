/* virtio-net device model (§5.1), kind "virtio-net". Args:
 *   mac=52:54:00:12:34:56   the address in config space (default: QEMU's default)
 *   mtu=1500                68..9000, offered with VIRTIO_NET_F_MTU
 *   net=none|loop|user, tap=NAME, tapfd=N, hostfwd=...   the backend (devices/net/)
 *   id=NAME
 * Offers MAC, STATUS, MTU, CSUM, GUEST_CSUM, MRG_RXBUF, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR
 * (plus the core's ring bits); 12-byte headers; queues 0 receive, 1 transmit, 2 control.
 *
 * Receive back-pressure: frames the backend delivers wait in a bounded queue
 * (VIRTIO_NET_PENDING frames) while the guest has no receive buffers; when it is full the
 * backend is told to hold on (-EAGAIN) and is resumed as soon as the guest's new buffers
 * drained a frame, so receive never stalls for good (Firecracker CVE-2020-16843). */
#ifndef VMLAB_VIRTIO_NET_H
#define VMLAB_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "devices/device.h"

extern const struct device_type virtio_net_type;

#define VIRTIO_NET_PENDING   64     /* frames queued for the guest */
#define VIRTIO_NET_MTU_MAX   9000
#define VIRTIO_NET_MTU_MIN   68
#define VIRTIO_NET_MRG_MAX   64     /* receive buffers one frame may span (MRG_RXBUF) */
#define VIRTIO_NET_MAC_TABLE 64     /* filter entries per table; more means "accept all" */

/* Frames counted by the device (tests, stats). */
struct virtio_net_counters {
    uint64_t tx_frames, tx_dropped;         /* to the backend / refused from the guest */
    uint64_t rx_frames, rx_dropped;         /* into guest buffers / dropped on the way */
    uint64_t rx_filtered;                   /* not for this MAC under the filter */
    uint64_t rx_refused;                    /* -EAGAIN answers (queue full) */
};

/* A frame from the host side, exactly as a backend delivers it (replay, tests). */
int virtio_net_receive(void *state, const void *frame, size_t len);
void virtio_net_get_counters(const void *state, struct virtio_net_counters *out);
/* Frames waiting in the device's receive queue. */
unsigned virtio_net_pending(const void *state);

#endif
