/* vmlab-vsock: a Linux guest's side of the vsock test (tests/cli/linux_vsock.sh), run in
 * the busybox initramfs over Debian's vmw_vsock_virtio_transport.
 *
 *   vmlab-vsock connect CID PORT BYTES [SEED]   connect to CID:PORT, send BYTES of a seeded
 *                                               pseudo-random stream, read BYTES back
 *   vmlab-vsock listen PORT BYTES               accept one connection, echo BYTES back
 *
 * Each prints one "VSOCK: ..." line with the CRC-32 (zlib's, as Python's zlib.crc32) of
 * what it sent and of what it received, for the host to compare with its own. Sending and
 * receiving interleave (poll), so neither side's buffer has to hold the whole transfer:
 * transfers larger than the credit windows exercise the credit flow both ways. Exit status
 * 0 when every byte went and came, 1 on an error (printed as "VSOCK: error ..."). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>   /* after sys/socket.h: it uses struct sockaddr */
#include <zlib.h>

#define CHUNK 65536

struct xfer {
    uint64_t to_send, sent, to_recv, received;
    uLong crc_sent, crc_received;
    uint64_t seed;                      /* 0: echo what came in; else the stream's state */
    unsigned char pending[CHUNK];       /* bytes generated or received, not yet sent */
    size_t pend_off, pend_len;
};

static int fail(const char *what)
{
    printf("VSOCK: error %s: %s\n", what, strerror(errno));
    return 1;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v > max) {
        printf("VSOCK: error bad number '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* xorshift64*: the connect side's bytes; a seed gives the same stream every run */
static void fill(struct xfer *x)
{
    size_t n = x->to_send - x->sent - x->pend_len;

    if (n > CHUNK)
        n = CHUNK;
    for (size_t i = 0; i < n; i++) {
        x->seed ^= x->seed >> 12;
        x->seed ^= x->seed << 25;
        x->seed ^= x->seed >> 27;
        x->pending[i] = (unsigned char)((x->seed * 0x2545f4914f6cdd1dULL) >> 56);
    }
    x->pend_off = 0;
    x->pend_len = n;
}

/* Moves bytes both ways until BYTES went out and BYTES came in. */
static int transfer(int fd, struct xfer *x)
{
    unsigned char buf[CHUNK];

    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        return fail("fcntl");
    while (x->sent < x->to_send || x->received < x->to_recv) {
        if (x->seed && !x->pend_len && x->sent < x->to_send)
            fill(x);
        struct pollfd p = { .fd = fd, .events = 0 };
        if (x->received < x->to_recv && (x->seed || x->pend_len == 0))
            p.events |= POLLIN;
        if (x->pend_len)
            p.events |= POLLOUT;
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll");
        }
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, x->pending + x->pend_off, x->pend_len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN)
                return fail("send");
            if (n > 0) {
                x->crc_sent = crc32(x->crc_sent, x->pending + x->pend_off, (uInt)n);
                x->sent += n;
                x->pend_off += n;
                x->pend_len -= n;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t want = x->to_recv - x->received;
            if (want > sizeof(buf))
                want = sizeof(buf);
            ssize_t n = recv(fd, buf, want, 0);
            if (n < 0 && errno != EAGAIN)
                return fail("recv");
            if (n == 0) {
                printf("VSOCK: error the peer closed after %" PRIu64 " of %" PRIu64
                       " bytes\n", x->received, x->to_recv);
                return 1;
            }
            if (n > 0) {
                x->crc_received = crc32(x->crc_received, buf, (uInt)n);
                x->received += n;
                if (!x->seed) {         /* echo: what came in goes out next */
                    memcpy(x->pending, buf, n);
                    x->pend_off = 0;
                    x->pend_len = n;
                }
            }
        }
    }
    return 0;
}

static void report(const char *what, const struct xfer *x)
{
    printf("VSOCK: %s sent %" PRIu64 " crc32 %08lx received %" PRIu64 " crc32 %08lx\n",
           what, x->sent, x->crc_sent, x->received, x->crc_received);
}

static int do_connect(uint64_t cid, uint64_t port, struct xfer *x)
{
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = (unsigned)cid,
                             .svm_port = (unsigned)port };
    char what[64];
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

    if (fd < 0)
        return fail("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return fail("connect");
    int rc = transfer(fd, x);
    close(fd);
    snprintf(what, sizeof(what), "connect %" PRIu64 ":%" PRIu64, cid, port);
    if (!rc)
        report(what, x);
    return rc;
}

static int do_listen(uint64_t port, struct xfer *x)
{
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
                             .svm_port = (unsigned)port };
    socklen_t alen = sizeof(a);
    char what[64];
    int lfd = socket(AF_VSOCK, SOCK_STREAM, 0);

    if (lfd < 0)
        return fail("socket");
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return fail("bind");
    if (listen(lfd, 1) < 0)
        return fail("listen");
    /* The host connects once it reads this line (the tty's echo of the typed command
     * never contains it). */
    printf("VSOCK: listening on port %" PRIu64 "\n", port);
    fflush(stdout);
    int fd = accept(lfd, (struct sockaddr *)&a, &alen);
    if (fd < 0)
        return fail("accept");
    close(lfd);
    printf("VSOCK: accepted cid %u port %u\n", a.svm_cid, a.svm_port);
    int rc = transfer(fd, x);
    close(fd);
    snprintf(what, sizeof(what), "listen %" PRIu64, port);
    if (!rc)
        report(what, x);
    return rc;
}

int main(int argc, char **argv)
{
    static struct xfer x;
    uint64_t cid, port, bytes;

    setvbuf(stdout, NULL, _IOLBF, 0);
    x.crc_sent = x.crc_received = crc32(0, NULL, 0);
    if (argc >= 5 && argc <= 6 && !strcmp(argv[1], "connect")) {
        uint64_t seed = 1;
        if (parse_u64(argv[2], UINT32_MAX, &cid) || parse_u64(argv[3], UINT32_MAX, &port) ||
            parse_u64(argv[4], UINT64_MAX, &bytes) ||
            (argc == 6 && parse_u64(argv[5], UINT64_MAX, &seed)))
            return 2;
        x.seed = seed ? seed : 1;
        x.to_send = x.to_recv = bytes;
        return do_connect(cid, port, &x);
    }
    if (argc == 4 && !strcmp(argv[1], "listen")) {
        if (parse_u64(argv[2], UINT32_MAX, &port) || parse_u64(argv[3], UINT64_MAX, &bytes))
            return 2;
        x.to_send = x.to_recv = bytes;
        return do_listen(port, &x);
    }
    fprintf(stderr, "usage: vmlab-vsock connect CID PORT BYTES [SEED]\n"
                    "       vmlab-vsock listen PORT BYTES\n");
    return 2;
}
