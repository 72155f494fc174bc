/* Message framing shared by vmlab (net_slirp.c) and its slirp helper (slirp_helper/). */
#include "devices/net/slirp_proto.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

uint32_t slirp_this_cpu(void)
{
    int cpu = sched_getcpu();

    return cpu < 0 ? 0 : (uint32_t)cpu + 1;
}

int slirp_msg_write(struct slirp_link *l, uint32_t type, uint64_t arg, uint64_t at,
                    const void *payload, size_t len, int timeout_ms)
{
    struct slirp_msg m = { .type = type, .len = (uint32_t)len, .arg = arg, .at = at,
                           .cpu = slirp_this_cpu() };
    struct iovec iov[2] = { { &m, sizeof(m) }, { (void *)payload, len } };

    if (len > SLIRP_MSG_PAYLOAD_MAX)
        return -EMSGSIZE;
    return slirp_link_send(l, iov, len ? 2 : 1, timeout_ms);
}

uint64_t slirp_look_delay(uint64_t since, uint64_t min_ns)
{
    uint64_t d = since / 4;

    if (d >= SLIRP_LOOK_QUIET_NS)
        return SLIRP_LOOK_QUIET_NS;
    return d < min_ns ? min_ns : d;
}

static uint64_t host_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Makes n bytes available at b->buf + b->pos. The spin looks at the link itself (a ring's
 * index, or a recv: one syscall when the message is there, not a poll and a recv). */
static int inbuf_have(struct slirp_inbuf *b, struct slirp_link *l, size_t n, uint64_t spin_ns,
                      int timeout_ms)
{
    uint64_t until = 0;
    int spin = spin_ns && b->peer_cpu && b->peer_cpu != slirp_this_cpu();

    if (b->len - b->pos >= n)
        return 0;
    memmove(b->buf, b->buf + b->pos, b->len - b->pos);
    b->len -= b->pos;
    b->pos = 0;
    while (b->len < n) {
        ssize_t got = slirp_link_recv(l, b->buf + b->len, sizeof(b->buf) - b->len);
        if (got > 0) {
            b->len += (size_t)got;
            continue;
        }
        if (got == -EINTR)
            continue;
        if (got != -EAGAIN)
            return (int)got;
        if (spin) {
            uint64_t now = host_ns();
            if (!until)
                until = now + spin_ns;
            if (now < until)
                continue;
            spin = 0;
        }
        int r = slirp_link_sleep(l, timeout_ms);
        if (r)
            return r;
    }
    return 0;
}

int slirp_inbuf_take(struct slirp_inbuf *b, struct slirp_link *l, struct slirp_msg *m,
                     const uint8_t **payload, uint64_t spin_ns, int timeout_ms)
{
    int rc = inbuf_have(b, l, sizeof(*m), spin_ns, timeout_ms);

    if (rc)
        return rc;
    memcpy(m, b->buf + b->pos, sizeof(*m));
    b->peer_cpu = m->cpu;
    if (m->len > SLIRP_MSG_PAYLOAD_MAX)
        return -EMSGSIZE;
    rc = inbuf_have(b, l, sizeof(*m) + m->len, spin_ns, timeout_ms);
    if (rc)
        return rc;
    *payload = b->buf + b->pos + sizeof(*m);
    b->pos += sizeof(*m) + m->len;
    return 0;
}
