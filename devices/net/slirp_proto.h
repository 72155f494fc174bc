/* The stream between vmlab and its slirp helper (build/vmlab-slirp, slirp_helper/): libslirp
 * runs in that separate, dynamically linked process so that vmlab itself stays fully static
 * (Debian ships no libslirp.a), the shape of passt and slirp4netns.
 *
 * A unix stream socket, or shared memory beside it (slirp_link.h), carries messages: a
 * 32-byte header (host byte order, both ends are on one machine) and `len` bytes of
 * payload. vmlab asks, the helper answers with any
 * number of messages ended by DONE (or ERROR); the helper never reads a clock: every
 * request carries vmlab's time (the virtual clock on the software CPU), which is the only
 * time slirp sees. vmlab waits for the answer, so the frames and timers a guest sees
 * depend only on what the guest sent and when, as with slirp in process. The helper never
 * speaks unasked on the stream. On KVM only (never on the software CPU) vmlab also hands
 * it the write end of a pipe (fd 5, --ready): when a host socket of slirp's is ready while
 * the helper waits for a request, it writes one byte there, once until the next request;
 * the read end is in vmlab's KVM epoll set, and vmlab then asks for a POLL, so a host
 * peer's reply reaches the guest at once; its DONE then asks for POLLs only for slirp's
 * own timeouts, not every 1 ms (each was a vCPU kick and a round trip). A pipe of its
 * own, not the stream's socket: that one also rings vmlab for its answers, and would wake
 * the vCPU loop for nothing.
 *
 * On the software CPU with shared memory (--watch, the memfd on fd 4, with or without
 * --rings) the helper watches its host sockets the same way but says so in memory: it sets
 * struct slirp_shared's host_ready. Its DONE then carries no look at host sockets in `at`
 * (only slirp's own timeouts) and arg 1 while slirp has host sockets: vmlab looks at the
 * flag on its own schedule (slirp_look_delay, from the guest frame's time) and asks for a
 * POLL only when it is set. A look is a load from memory where a POLL is a round trip to
 * the helper, so vmlab can look often, and a host peer's reply reaches the guest within
 * about a microsecond of the helper seeing it. Looks happen at times of the virtual clock,
 * so nothing is asked of the helper at a host-time instant; what a host socket brings, and
 * when, was never deterministic (the trace records it).
 *
 *   vmlab -> helper                         helper -> vmlab
 *   CONFIG  payload: the --net args          FRAME      payload: a frame for the guest
 *   FRAME   payload: a frame from the guest  TIMER_MOD  arg: timer id, at: due time (ns)
 *           arg 1: look again soon (software TIMER_FREE arg: timer id
 *           CPU: a reply may follow)         LOG        payload: slirp's message
 *   TIMER   arg: timer id now due            ERROR      payload: why CONFIG failed
 *   POLL    one round of host sockets        DONE       at: next POLL due (ns), or
 *                                                       SLIRP_POLL_KEEP / SLIRP_POLL_NONE;
 *                                                       arg 1 (--watch): look at host_ready
 * `at` of a request is vmlab's time now. */
#ifndef VMLAB_SLIRP_PROTO_H
#define VMLAB_SLIRP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "devices/net/slirp_link.h"

enum slirp_msg_type {
    SLIRP_MSG_CONFIG = 1,
    SLIRP_MSG_FRAME = 2,
    SLIRP_MSG_TIMER = 3,
    SLIRP_MSG_POLL = 4,
    SLIRP_MSG_TIMER_MOD = 5,
    SLIRP_MSG_TIMER_FREE = 6,
    SLIRP_MSG_LOG = 7,
    SLIRP_MSG_ERROR = 8,
    SLIRP_MSG_DONE = 9,
};

struct slirp_msg {
    uint32_t type;
    uint32_t len;                       /* payload bytes after the header */
    uint64_t arg;
    uint64_t at;                        /* a time in ns of vmlab's clock */
    uint32_t cpu;                       /* the CPU its writer ran on, plus 1 (0: unknown):
                                         * whether a spin for the next message can pay */
    uint32_t reserved;                  /* 0 */
};

#define SLIRP_MSG_PAYLOAD_MAX 65536u    /* a frame (slirp's MTU is 1500) or a line of text */
#define SLIRP_FRAME_MIN 14u             /* an Ethernet header */
#define SLIRP_POLL_KEEP UINT64_MAX      /* DONE: the POLL already due stays as it is */
#define SLIRP_POLL_NONE (UINT64_MAX - 1) /* DONE: no POLL needed */
#define SLIRP_HELPER_NAME "vmlab-slirp"
#define SLIRP_LOOK_QUIET_NS 1000000ull  /* looks at host sockets when no guest frame is
                                         * recent: 1 ms of vmlab's clock */

/* The delay to the next look at the host sockets, `since` ns after the last guest frame that
 * asked for looks: a reply may be on its way, so the looks start min_ns apart and grow to a
 * quarter of the time since the frame; a reply that arrives at t is seen by t + max(min_ns,
 * t/4). SLIRP_LOOK_QUIET_NS once a quarter reaches it: the frame is no longer recent. */
uint64_t slirp_look_delay(uint64_t since, uint64_t min_ns);

/* The CPU this thread runs on, plus 1, as struct slirp_msg's cpu (0: unknown). */
uint32_t slirp_this_cpu(void);
/* Writes one message, waiting for room as slirp_link_send does. 0 or -errno. */
int slirp_msg_write(struct slirp_link *l, uint32_t type, uint64_t arg, uint64_t at,
                    const void *payload, size_t len, int timeout_ms);
/* One side's reading of the stream: each read takes whatever the peer has written (a
 * whole answer, or a request's header and payload), one syscall where two would do. */
struct slirp_inbuf {
    uint32_t peer_cpu;                  /* of the last message taken */
    size_t pos, len;                    /* [pos, len) of buf read but not yet taken */
    uint8_t buf[2 * (sizeof(struct slirp_msg) + SLIRP_MSG_PAYLOAD_MAX)];
};
/* Takes the next message: its header into *m, *payload pointing at its m->len bytes (valid
 * until the next call). While the peer has sent nothing more: when it last wrote from
 * another CPU than this one, looks again for up to spin_ns of host time without sleeping,
 * then sleeps for up to timeout_ms (-1: forever). The spin is what makes a round trip
 * fast: a side that sleeps costs a wakeup of 10-50 us when the other CPU has gone idle,
 * while an answer or the next request usually comes within a few us. On the peer's own
 * CPU a spin would only keep the peer from running, and yielding instead hands the CPU to
 * any other busy process for a whole time slice (ping medians of 1.9 ms with two CPU hogs
 * running), so there it sleeps at once. The host clock only bounds the spin; it is never
 * part of a message. 0, -EMSGSIZE (m->len over SLIRP_MSG_PAYLOAD_MAX, *m filled),
 * -EPIPE at end of stream, -ETIMEDOUT, or -errno. */
int slirp_inbuf_take(struct slirp_inbuf *b, struct slirp_link *l, struct slirp_msg *m,
                     const uint8_t **payload, uint64_t spin_ns, int timeout_ms);

#endif
