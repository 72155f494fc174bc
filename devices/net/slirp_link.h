/* The transport under the slirp helper stream (slirp_proto.h): the bytes go through a
 * socket, or, when vmlab and the helper share memory (a memfd vmlab creates and hands the
 * helper as its fd 4), through two rings in that memory, one each way. A socket round trip
 * cost about 3.5 us of syscalls and socket work on this machine kind; a ring's, both sides
 * awake, about 0.4 us. The socket stays: a reader that found its ring empty for a while
 * sleeps in poll on it and a writer that sees it asleep sends one byte to wake it, and its
 * end of stream is how each side sees the other go.
 *
 * The other side may be hostile: ring indices that claim more than a ring holds are
 * -EPROTO, and bytes are copied out of the ring before anyone parses them. */
#ifndef VMLAB_SLIRP_LINK_H
#define VMLAB_SLIRP_LINK_H

#include <stdatomic.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SLIRP_RING_BYTES (1u << 19)     /* a power of two over 2 whole messages */

struct slirp_ring {
    _Atomic uint64_t head;              /* bytes ever written (the writer's) */
    uint8_t pad0[56];
    _Atomic uint64_t tail;              /* bytes ever read (the reader's) */
    _Atomic uint32_t sleeping;          /* the reader sleeps on the socket: ring it */
    uint8_t pad1[52];
    uint8_t data[SLIRP_RING_BYTES];
};

/* The memfd's content. host_ready first, at offset 0, where a test finds it. */
struct slirp_shared {
    /* The software CPU (helper --watch): the helper sets it when a host socket of slirp's
     * is ready while it waits for a request; vmlab reads it at its looks and clears it
     * before the POLL it then asks for (slirp_proto.h). */
    _Atomic uint32_t host_ready;
    uint8_t pad[60];
    struct slirp_ring to_helper, to_vmlab;
};

struct slirp_link {
    int fd;                             /* the socket */
    struct slirp_ring *in, *out;        /* NULL: the socket carries the bytes */
};

/* Sends all of iov (cnt parts), waiting for room in the ring for up to timeout_ms (-1:
 * forever) when the reader is slow. 0, -EPIPE (the reader is gone), -ETIMEDOUT, -EPROTO,
 * or -errno. */
int slirp_link_send(struct slirp_link *l, const struct iovec *iov, int cnt, int timeout_ms);
/* Takes up to n bytes that are there now: the count, -EAGAIN (none), -EPIPE at end of
 * stream (socket only: a ring sees it in slirp_link_sleep), -EPROTO, or -errno. */
ssize_t slirp_link_recv(struct slirp_link *l, void *buf, size_t n);
/* Sleeps until there may be something to take, for up to timeout_ms (-1: forever). 0,
 * -EPIPE, -ETIMEDOUT, or -errno. */
int slirp_link_sleep(struct slirp_link *l, int timeout_ms);
/* slirp_link_sleep that also wakes for the n (at most SLIRP_WAIT_ALSO_MAX) other fds in
 * also[] (their revents filled): 0 when the link may have something, 1 when only one of
 * those fired, or slirp_link_sleep's errors. The helper waits so for vmlab's next request
 * and its host sockets at once (on KVM). */
#define SLIRP_WAIT_ALSO_MAX 256u
int slirp_link_wait(struct slirp_link *l, int timeout_ms, struct pollfd *also, unsigned n);

#endif
