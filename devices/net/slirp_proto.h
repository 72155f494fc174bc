/* The stream between vmlab and its slirp helper (build/vmlab-slirp, slirp_helper/): libslirp
 * runs in that separate, dynamically linked process so that vmlab itself stays fully static
 * (Debian ships no libslirp.a), the shape of passt and slirp4netns.
 *
 * A unix stream socket carries messages: a 24-byte header (host byte order, both ends are
 * on one machine) and `len` bytes of payload. vmlab asks, the helper answers with any
 * number of messages ended by DONE (or ERROR); the helper never speaks unasked and never
 * reads a clock: every request carries vmlab's time (the virtual clock on the software
 * CPU), which is the only time slirp sees. vmlab waits for the answer, so the frames and
 * timers a guest sees depend only on what the guest sent and when, as with slirp in
 * process.
 *
 *   vmlab -> helper                         helper -> vmlab
 *   CONFIG  payload: the --net args          FRAME      payload: a frame for the guest
 *   FRAME   payload: a frame from the guest  TIMER_MOD  arg: timer id, at: due time (ns)
 *           arg 1: look again soon (software
 *           CPU: a reply may follow)
 *   TIMER   arg: timer id now due            TIMER_FREE arg: timer id
 *   POLL    one round of host sockets        LOG        payload: slirp's message
 *                                            ERROR      payload: why CONFIG failed
 *                                            DONE       at: next POLL due (ns), or
 *                                                       SLIRP_POLL_KEEP / SLIRP_POLL_NONE
 * `at` of a request is vmlab's time now. */
#ifndef VMLAB_SLIRP_PROTO_H
#define VMLAB_SLIRP_PROTO_H

#include <stddef.h>
#include <stdint.h>

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
};

#define SLIRP_MSG_PAYLOAD_MAX 65536u    /* a frame (slirp's MTU is 1500) or a line of text */
#define SLIRP_FRAME_MIN 14u             /* an Ethernet header */
#define SLIRP_POLL_KEEP UINT64_MAX      /* DONE: the POLL already due stays as it is */
#define SLIRP_POLL_NONE (UINT64_MAX - 1) /* DONE: no POLL needed */
#define SLIRP_HELPER_NAME "vmlab-slirp"

/* Writes one message to a socket, retrying short writes and EINTR. 0 or -errno. */
int slirp_msg_write(int fd, uint32_t type, uint64_t arg, uint64_t at, const void *payload,
                    size_t len);
/* Reads exactly n bytes, waiting at most timeout_ms for each part (-1: forever).
 * 0, -EPIPE at end of stream, -ETIMEDOUT, or -errno. */
int slirp_read_full(int fd, void *buf, size_t n, int timeout_ms);

#endif
