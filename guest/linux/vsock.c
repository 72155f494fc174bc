/* vmlab-vsock: both sides of the Linux vsock test (tests/cli/linux_vsock.sh). In the guest
 * (the busybox initramfs, over Debian's vmw_vsock_virtio_transport):
 *
 *   vmlab-vsock connect CID PORT BYTES [SEED]   connect to CID:PORT, send BYTES of a seeded
 *                                               pseudo-random stream, read BYTES back
 *   vmlab-vsock listen PORT BYTES               accept one connection, echo BYTES back
 *
 * Each prints one "VSOCK: ..." line with the CRC-32 (zlib's, as Python's zlib.crc32) of
 * what it sent and of what it received, for the host to compare with its own. On the host,
 * over vmlab's hybrid Unix socket (Firecracker's protocol), so the test needs no python
 * (the nested-KVM VM of `make test-kvm` has none):
 *
 *   vmlab-vsock serve PATH_PORT LOG             echo server for the guest's connects to
 *                                               CID 2 PORT; each connection that ends adds
 *                                               "received N crc32 X sent N crc32 Y" to LOG
 *   vmlab-vsock host-connect PATH PORT BYTES SEED
 *                                               `CONNECT PORT`, then as connect; prints
 *                                               "sent N crc32 X received N crc32 Y echo
 *                                               equal|differs host_port P"
 *
 * Sending and receiving interleave (poll), so neither side's buffer has to hold the whole
 * transfer: transfers larger than the credit windows exercise the credit flow both ways.
 * Exit status 0 when every byte went and came, 1 on an error (printed as
 * "VSOCK: error ..."). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>   /* after sys/socket.h: it uses struct sockaddr */
#include <zlib.h>

#define CHUNK 65536

struct xfer {
    uint64_t to_send, sent, to_recv, received;
    uLong crc_sent, crc_received;
    uint64_t seed;                      /* 0: echo what came in; else the stream's state */
    uint64_t expect;                    /* 0, or the state of the stream the echo must equal */
    int differs;                        /* a received byte was not the expected one */
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
static unsigned char next_byte(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (unsigned char)((*s * 0x2545f4914f6cdd1dULL) >> 56);
}

static void fill(struct xfer *x)
{
    size_t n = x->to_send - x->sent - x->pend_len;

    if (n > CHUNK)
        n = CHUNK;
    for (size_t i = 0; i < n; i++)
        x->pending[i] = next_byte(&x->seed);
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
                for (ssize_t i = 0; x->expect && i < n; i++)
                    x->differs |= buf[i] != next_byte(&x->expect);
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

/* A listening stream socket at `a`, or -1 (the error printed). */
static int listen_on(int family, const struct sockaddr *a, socklen_t alen, int backlog)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        fail("socket");
        return -1;
    }
    if (bind(fd, a, alen) < 0 || listen(fd, backlog) < 0) {
        fail("bind/listen");
        close(fd);
        return -1;
    }
    return fd;
}

static int do_listen(uint64_t port, struct xfer *x)
{
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
                             .svm_port = (unsigned)port };
    socklen_t alen = sizeof(a);
    char what[64];
    int lfd = listen_on(AF_VSOCK, (struct sockaddr *)&a, sizeof(a), 1);

    if (lfd < 0)
        return 1;
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

/* ---- the host's side, over the hybrid Unix socket ---- */

static int unix_addr(const char *path, struct sockaddr_un *a)
{
    *a = (struct sockaddr_un){ .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a->sun_path)) {
        printf("VSOCK: error socket path '%s' longer than %zu bytes\n", path,
               sizeof(a->sun_path) - 1);
        return -1;
    }
    memcpy(a->sun_path, path, strlen(path) + 1);
    return 0;
}

/* One guest connection: echo until it ends, then the line for LOG. */
static int echo_until_eof(int fd, FILE *log)
{
    uLong crc = crc32(0, NULL, 0);
    uint64_t n_in = 0;
    unsigned char buf[CHUNK];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail("recv");
        if (n == 0)
            break;
        crc = crc32(crc, buf, (uInt)n);
        n_in += n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return fail("send");
            off += w;
        }
    }
    /* Everything received went back: the sent stream is the received one. */
    fprintf(log, "received %" PRIu64 " crc32 %08lx sent %" PRIu64 " crc32 %08lx\n", n_in, crc,
            n_in, crc);
    return 0;
}

static int do_serve(const char *path, const char *logpath)
{
    struct sockaddr_un a;

    if (unix_addr(path, &a))
        return 2;
    int lfd = listen_on(AF_UNIX, (struct sockaddr *)&a, sizeof(a), 4);
    if (lfd < 0)
        return 1;
    signal(SIGCHLD, SIG_IGN);           /* no zombies: nobody waits for a connection's child */
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return fail("accept");
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            FILE *log = fopen(logpath, "a");
            if (!log)
                _exit(fail("open log"));
            int rc = echo_until_eof(fd, log);
            close(fd);
            _exit(fclose(log) ? 1 : rc);
        }
        close(fd);
        if (pid < 0)
            return fail("fork");
    }
}

/* Firecracker's handshake: "CONNECT <port>\n", answered "OK <host_port>\n". */
static int handshake(const char *path, uint64_t port, unsigned *host_port)
{
    struct sockaddr_un a;
    char line[32];
    size_t len = 0;
    int fd;

    if (unix_addr(path, &a))
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fail("connect to the vmm");
        return -1;
    }
    int n = snprintf(line, sizeof(line), "CONNECT %" PRIu64 "\n", port);
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
        fail("send CONNECT");
        close(fd);
        return -1;
    }
    while (len < sizeof(line) - 1) {            /* byte by byte: data may follow the line */
        ssize_t r = recv(fd, line + len, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    char *end;
    unsigned long p = len > 4 && !strncmp(line, "OK ", 3) ? strtoul(line + 3, &end, 10) : 0;
    if (!p || *end != '\n' || p > UINT32_MAX) {
        printf("VSOCK: error CONNECT %" PRIu64 ": the vmm answered '%.*s'\n", port,
               len && line[len - 1] == '\n' ? (int)len - 1 : (int)len, line);
        close(fd);
        return -1;
    }
    *host_port = (unsigned)p;
    return fd;
}

static int do_host_connect(const char *path, uint64_t port, struct xfer *x)
{
    unsigned host_port;
    int fd = handshake(path, port, &host_port);

    if (fd < 0)
        return 1;
    int rc = transfer(fd, x);
    close(fd);
    if (!rc)
        printf("sent %" PRIu64 " crc32 %08lx received %" PRIu64 " crc32 %08lx echo %s"
               " host_port %u\n", x->sent, x->crc_sent, x->received, x->crc_received,
               x->differs ? "differs" : "equal", host_port);
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
    if (argc == 4 && !strcmp(argv[1], "serve"))
        return do_serve(argv[2], argv[3]);
    if (argc == 6 && !strcmp(argv[1], "host-connect")) {
        uint64_t seed;
        if (parse_u64(argv[3], UINT32_MAX, &port) || parse_u64(argv[4], UINT64_MAX, &bytes) ||
            parse_u64(argv[5], UINT64_MAX, &seed))
            return 2;
        x.seed = x.expect = seed ? seed : 1;
        x.to_send = x.to_recv = bytes;
        return do_host_connect(argv[2], port, &x);
    }
    fprintf(stderr, "usage: vmlab-vsock connect CID PORT BYTES [SEED]\n"
                    "       vmlab-vsock listen PORT BYTES\n"
                    "       vmlab-vsock serve PATH_PORT LOG\n"
                    "       vmlab-vsock host-connect PATH PORT BYTES SEED\n");
    return 2;
}
