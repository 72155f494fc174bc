/* virtio-vsock (virtio 1.2 §5.10), stream sockets only. Kind "virtio-vsock", args:
 *   cid=N       the guest's context ID, 3..0xfffffffe (0, 1, 2 and U32_MAX are reserved)
 *   uds=PATH    Firecracker's hybrid Unix socket as the host side (devices/virtio/vsock_uds.c):
 *               host clients connect to PATH and send "CONNECT <port>\n"; guest connects to
 *               CID 2 port P go to PATH_P. Without uds= every guest connect is refused (RST).
 *   id=NAME
 *
 * The device keeps one table of connections (at most VSOCK_MAX_CONNS, like Firecracker's
 * 1023) keyed by (local port, peer port), and talks to "the host" through struct
 * vsock_host_ops, so the Unix socket backend, the Check suite's fake host and the fuzzer
 * drive the same code. Credit flow (§5.10.6.3): the device never sends a connection more
 * bytes than the guest's buf_alloc - (tx_cnt - fwd_cnt), and advertises VSOCK_BUF_ALLOC of
 * its own; a guest that sends past that gets its connection reset. Memory per connection is
 * bounded: a VSOCK_RX_STAGE staging buffer for host bytes and at most VSOCK_BUF_ALLOC of
 * guest bytes the host has not taken yet. On snapshot restore the host sockets are gone: the
 * device comes back with no connections and posts a TRANSPORT_RESET event to the guest. */
#ifndef VMLAB_VIRTIO_VSOCK_H
#define VMLAB_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/device.h"

extern const struct device_type virtio_vsock_type;

#define VSOCK_MAX_CONNS   1023          /* live connections, as Firecracker */
#define VSOCK_BUF_ALLOC   (64u * 1024)  /* what the device advertises per connection */
#define VSOCK_RX_STAGE    4096          /* host bytes read ahead per connection */
#define VSOCK_MAX_PKT     (64u * 1024)  /* largest payload accepted in one tx packet */
#define VSOCK_RST_QUEUE   64            /* RSTs for unknown connections awaiting rx buffers */
#define VSOCK_HOST_PORT_BASE (1u << 30) /* first local port of host-initiated connections */
/* Bounded waits, Firecracker's (CONN_REQUEST_TIMEOUT_MS, CONN_SHUTDOWN_TIMEOUT_MS), on the
 * device's clock (virtual time on the software CPU, so the same run expires at the same
 * instruction): a guest that has not answered a host connect's REQUEST this long after it
 * reached an rx buffer gets RST and the host client is closed; a connection the guest shut
 * both ways whose last bytes the host has not taken this long is reset. */
#define VSOCK_REQUEST_TIMEOUT_NS  2000000000ull
#define VSOCK_SHUTDOWN_TIMEOUT_NS 2000000000ull

struct vsock_dev;
struct vsock_conn;

/* The host side. Every callback gets `host` (the opaque given to vsock_dev_set_host) and,
 * for a connection, the `hctx` the host attached to it. */
struct vsock_host_ops {
    /* The guest connects to host port `port`. 0 and *hctx set: accepted (the device answers
     * RESPONSE); -errno: refused (the device answers RST). */
    int (*connect)(void *host, struct vsock_conn *c, uint32_t port, void **hctx);
    /* The guest accepted a host-initiated connection; its local (host) port is host_port. */
    void (*established)(void *host, void *hctx, uint32_t host_port);
    /* Guest bytes for the host: bytes taken (0..len, 0 = would block) or -errno (the
     * connection is reset). */
    ssize_t (*send)(void *host, void *hctx, const void *buf, size_t len);
    /* Host bytes for the guest, up to len: n > 0, -EAGAIN none now, 0 end of stream,
     * other -errno: the connection is reset. */
    ssize_t (*recv)(void *host, void *hctx, void *buf, size_t len);
    /* The guest will not send (VSOCK_SHUTDOWN_SEND) / receive (_RCV) any more. */
    void (*shutdown)(void *host, void *hctx, uint32_t flags);
    /* The connection is gone (RST, refusal, device reset or destroy): the host forgets hctx.
     * Called once per connection the host attached, and never for one the host closed
     * itself with vsock_host_close(). */
    void (*closed)(void *host, void *hctx);
    /* Optional: run from the VMM's poll (device_type.poll). */
    void (*poll)(void *host);
    /* Optional: the device is being destroyed. */
    void (*destroy)(void *host);
    /* Optional: an fd readable when poll has work (device_type.poll_fd), or -1. */
    int (*poll_fd)(void *host);
};

#define VSOCK_SHUTDOWN_RCV  1u
#define VSOCK_SHUTDOWN_SEND 2u

/* Replaces the host side (destroying the one create made, if any). */
void vsock_dev_set_host(struct vsock_dev *d, const struct vsock_host_ops *ops, void *host);
uint64_t vsock_dev_cid(const struct vsock_dev *d);
unsigned vsock_dev_nconns(const struct vsock_dev *d);

/* Host side calls, all on the VMM thread. */
/* A host client connects to guest port `port`: the device sends REQUEST (once the driver
 * posts rx buffers) and calls established() or closed() when the guest answers. -EMFILE
 * past VSOCK_MAX_CONNS. */
int vsock_host_connect(struct vsock_dev *d, uint32_t port, void *hctx,
                       struct vsock_conn **out);
/* recv() may have bytes now; the device reads when the guest has credit and buffers. */
void vsock_host_readable(struct vsock_dev *d, struct vsock_conn *c);
/* send() may take bytes again. */
void vsock_host_writable(struct vsock_dev *d, struct vsock_conn *c);
/* The host side went away: the guest gets RST; closed() is not called. */
void vsock_host_close(struct vsock_dev *d, struct vsock_conn *c);
/* What the host should poll for: 1 if the device would read now (established, guest has
 * credit, stage empty, not shut down for receive); 1 if guest bytes wait for send(). */
int vsock_conn_wants_recv(const struct vsock_conn *c);
int vsock_conn_wants_send(const struct vsock_conn *c);

#endif
