/* Message framing shared by vmlab (net_slirp.c) and its slirp helper (slirp_helper/). */
#include "devices/net/slirp_proto.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int slirp_msg_write(int fd, uint32_t type, uint64_t arg, uint64_t at, const void *payload,
                    size_t len)
{
    struct slirp_msg m = { .type = type, .len = (uint32_t)len, .arg = arg, .at = at };
    struct iovec iov[2] = { { &m, sizeof(m) }, { (void *)payload, len } };
    struct iovec *v = iov;
    int cnt = len ? 2 : 1;

    if (len > SLIRP_MSG_PAYLOAD_MAX)
        return -EMSGSIZE;
    while (cnt) {
        struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)cnt };
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);   /* a gone peer is -EPIPE, no signal */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (cnt && (size_t)n >= v->iov_len) {
            n -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt) {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int slirp_read_full(int fd, void *buf, size_t n, int timeout_ms)
{
    char *p = buf;

    while (n) {
        if (timeout_ms >= 0) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            int r = poll(&pfd, 1, timeout_ms);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -errno;
            if (r == 0)
                return -ETIMEDOUT;
        }
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EPIPE;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}
