/* The slirp helper stream's transport: see slirp_link.h. */
#include "devices/net/slirp_link.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Bytes in a ring, as the other side's index says; more than it holds is a broken peer. */
static int ring_used(struct slirp_ring *r, uint64_t *used)
{
    *used = atomic_load(&r->head) - atomic_load(&r->tail);
    return *used > SLIRP_RING_BYTES ? -EPROTO : 0;
}

static int socket_send(int fd, const struct iovec *iov, int cnt)
{
    struct iovec v[4];

    if (cnt > 4)
        return -EINVAL;
    memcpy(v, iov, (size_t)cnt * sizeof(*v));
    struct iovec *p = v;
    while (cnt) {
        struct msghdr mh = { .msg_iov = p, .msg_iovlen = (size_t)cnt };
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);   /* a gone peer is -EPIPE, no signal */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (cnt && (size_t)n >= p->iov_len) {
            n -= (ssize_t)p->iov_len;
            p++;
            cnt--;
        }
        if (cnt) {
            p->iov_base = (char *)p->iov_base + n;
            p->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Waits about 1 ms for a slow reader, or sees it gone. */
static int wait_room(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

    if (poll(&pfd, 1, 1) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return -EPIPE;
    return 0;
}

int slirp_link_send(struct slirp_link *l, const struct iovec *iov, int cnt, int timeout_ms)
{
    struct slirp_ring *r = l->out;
    int waited_ms = 0;

    if (!r)
        return socket_send(l->fd, iov, cnt);
    for (int i = 0; i < cnt; i++) {
        const uint8_t *src = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            uint64_t used;
            if (ring_used(r, &used))
                return -EPROTO;
            size_t room = SLIRP_RING_BYTES - (size_t)used;
            if (!room) {
                /* The reader drains as it goes: it is awake, or is woken here. */
                if (atomic_load(&r->sleeping))
                    send(l->fd, "w", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (timeout_ms >= 0 && waited_ms++ >= timeout_ms)
                    return -ETIMEDOUT;
                int rc = wait_room(l->fd);
                if (rc)
                    return rc;
                continue;
            }
            uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
            size_t at = (size_t)(head % SLIRP_RING_BYTES), n = left < room ? left : room;
            size_t first = n < SLIRP_RING_BYTES - at ? n : SLIRP_RING_BYTES - at;
            memcpy(r->data + at, src, first);
            memcpy(r->data, src + first, n - first);
            /* Published before the reader's sleeping flag is read (both seq_cst): a reader
             * that went to sleep meanwhile either sees these bytes or is woken. */
            atomic_store(&r->head, head + n);
            src += n;
            left -= n;
        }
    }
    if (atomic_load(&r->sleeping) && send(l->fd, "w", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        errno == EPIPE)
        return -EPIPE;
    return 0;
}

ssize_t slirp_link_recv(struct slirp_link *l, void *buf, size_t n)
{
    struct slirp_ring *r = l->in;
    uint64_t used;

    if (!r) {
        ssize_t got = recv(l->fd, buf, n, MSG_DONTWAIT);
        if (got > 0)
            return got;
        return got == 0 ? -EPIPE : -errno;
    }
    if (ring_used(r, &used))
        return -EPROTO;
    if (!used)
        return -EAGAIN;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t at = (size_t)(tail % SLIRP_RING_BYTES), take = used < n ? (size_t)used : n;
    size_t first = take < SLIRP_RING_BYTES - at ? take : SLIRP_RING_BYTES - at;
    memcpy(buf, r->data + at, first);
    memcpy((uint8_t *)buf + first, r->data, take - first);
    atomic_store(&r->tail, tail + take);
    return (ssize_t)take;
}

/* The wake bytes on the socket; -EPIPE at its end, unless the ring still holds a peer's
 * last words (they are read first). */
static int take_wakes(struct slirp_link *l)
{
    char drain[64];
    ssize_t got;
    uint64_t used;

    while ((got = recv(l->fd, drain, sizeof(drain), MSG_DONTWAIT)) > 0)
        ;
    if (got == 0 && !(ring_used(l->in, &used) == 0 && used))
        return -EPIPE;
    return 0;
}

int slirp_link_wait(struct slirp_link *l, int timeout_ms, struct pollfd *also, unsigned n)
{
    struct slirp_ring *r = l->in;
    struct pollfd pfd[1 + SLIRP_WAIT_ALSO_MAX];
    uint64_t used = 0;
    int rc;

    if (n > SLIRP_WAIT_ALSO_MAX)
        return -EINVAL;
    pfd[0] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
    if (n)
        memcpy(pfd + 1, also, n * sizeof(*also));
    if (r) {
        atomic_store(&r->sleeping, 1);
        if (ring_used(r, &used) || used) {     /* written before the flag was seen */
            atomic_store(&r->sleeping, 0);
            return 0;
        }
    }
    for (;;) {
        rc = poll(pfd, 1 + n, timeout_ms);
        if (rc >= 0 || errno != EINTR)
            break;
    }
    rc = rc > 0 ? 0 : rc == 0 ? -ETIMEDOUT : -errno;
    if (n)
        memcpy(also, pfd + 1, n * sizeof(*also));
    if (!rc && !pfd[0].revents)
        rc = 1;
    if (r) {
        atomic_store(&r->sleeping, 0);
        if (!rc)                                /* take the wake-up bytes; see an end */
            rc = take_wakes(l);
    }
    return rc;
}

int slirp_link_sleep(struct slirp_link *l, int timeout_ms)
{
    return slirp_link_wait(l, timeout_ms, NULL, 0);
}
