/* vmlab-bench-peer: the host sides of the net and vsock benchmarks, static, for `make
 * bench-kvm`'s nested VM (busybox, no python):
 *
 *   vmlab-bench-peer udp                 the UDP peer of guest/progs/udp.c, the protocol of
 *                                        guest/virtio/udp_peer.py (E echo, S sink, Q count,
 *                                        B burst); prints "udp_peer: port N", runs until killed
 *   vmlab-bench-peer vsock PATH PORT N SERIAL
 *                                        waits for "listening" in the file SERIAL (the
 *                                        vsock_echo guest's console), then Firecracker's
 *                                        `CONNECT PORT` on vmlab's hybrid socket PATH (timed)
 *                                        and N echo round trips of 64 B, 4 KiB and 64 KiB
 *   vmlab-bench-peer vsock-cid CID PORT N SERIAL
 *                                        the same over AF_VSOCK to guest CID (QEMU's
 *                                        vhost-vsock-device; the host needs vhost_vsock)
 *   vmlab-bench-peer tsc-khz             the TSC rate against CLOCK_MONOTONIC (QEMU's guest
 *                                        needs it on its command line; vmlab passes its own)
 *
 * vsock prints "VSOCK-BENCH connect_ns=T" and per size "VSOCK-BENCH size=S n=N min_ns=..
 * median_ns=.. p90_ns=.. p99_ns=.. max_ns=.. mib_s=..", as scripts/bench.d/vsock.py
 * measures with python on the host. Exit status 0, or 1 with "bench-peer: error ..." */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>
#include <linux/vm_sockets.h>   /* after sys/socket.h: it uses struct sockaddr */

static int fail(const char *what)
{
    printf("bench-peer: error %s: %s\n", what, errno ? strerror(errno) : "unexpected data");
    return 1;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int udp_peer(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0), rcvbuf = 4 << 20;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
        bind(s, (struct sockaddr *)&a, sizeof(a)) || getsockname(s, (struct sockaddr *)&a, &alen))
        return fail("udp socket");
    printf("udp_peer: port %u\n", ntohs(a.sin_port));
    fflush(stdout);
    static unsigned char d[65536], out[1472];
    uint32_t sunk = 0;
    for (;;) {
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(s, d, sizeof(d), 0, (struct sockaddr *)&from, &flen);
        if (n <= 0)
            continue;
        const struct sockaddr *to = (const struct sockaddr *)&from;
        if (d[0] == 'E') {
            sendto(s, d, (size_t)n, 0, to, flen);
        } else if (d[0] == 'S') {
            sunk++;
        } else if (d[0] == 'Q') {
            out[0] = 'Q';
            put_be32(out + 1, sunk);
            sendto(s, out, 5, 0, to, flen);
            sunk = 0;
        } else if (d[0] == 'B' && n >= 7) {
            uint32_t count = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
            size_t size = (size_t)d[5] << 8 | d[6];
            size = size < 5 ? 5 : size > 1472 ? 1472 : size;
            memset(out, 0, sizeof(out));
            for (uint32_t i = 0; i < count && i < (1u << 20); i++) {
                out[0] = 'b';
                put_be32(out + 1, i);
                sendto(s, out, size, 0, to, flen);
            }
            out[0] = 'F';
            put_be32(out + 1, count);
            sendto(s, out, 5, 0, to, flen);
        }
    }
}

static int wait_listening(const char *serial)
{
    char buf[4096];
    for (int i = 0; i < 1200; i++) {               /* 60 s */
        FILE *f = fopen(serial, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        if (strstr(buf, "listening"))
            return 0;
        usleep(50000);
    }
    errno = ETIMEDOUT;
    return -1;
}

static int echo(int s, const unsigned char *msg, unsigned char *got, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = write(s, msg + off, len - off);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = read(s, got + off, len - off);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return memcmp(msg, got, len) ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* the percentile as vsock_peer.pct picks it */
static uint64_t pct(const uint64_t *v, int n, int p)
{
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Firecracker's hybrid socket: connect to PATH, "CONNECT PORT\n", wait for "OK ...\n" */
static int connect_hybrid(const char *path, const char *port)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    char line[64], reply[64];
    size_t r = 0;
    if (strlen(path) >= sizeof(a.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(a.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int len = snprintf(line, sizeof(line), "CONNECT %s\n", port);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) || write(s, line, (size_t)len) != len)
        return -1;
    while (r < sizeof(reply) - 1 && (r == 0 || reply[r - 1] != '\n')) {
        if (read(s, reply + r, 1) != 1)
            return -1;
        r++;
    }
    reply[r] = 0;
    if (strncmp(reply, "OK ", 3)) {
        errno = EPROTO;
        return -1;
    }
    return s;
}

/* AF_VSOCK to a guest CID (QEMU's vhost-vsock-device; the host needs vhost_vsock) */
static int connect_cid(const char *cid, const char *port)
{
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = (unsigned)strtoul(cid, NULL, 0),
                             .svm_port = (unsigned)strtoul(port, NULL, 0) };
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)))
        return -1;
    return s;
}

static int vsock_bench(int cid_mode, const char *where, const char *port, int n, const char *serial)
{
    if (n < 1 || n > 100000) {
        printf("bench-peer: error bad N %d\n", n);
        return 1;
    }
    if (wait_listening(serial))
        return fail("the guest never printed 'listening'");
    uint64_t t0 = now_ns();
    int s = cid_mode ? connect_cid(where, port) : connect_hybrid(where, port);
    uint64_t connect_ns = now_ns() - t0;
    if (s < 0)
        return fail("connect");
    printf("VSOCK-BENCH connect_ns=%" PRIu64 "\n", connect_ns);
    static unsigned char msg[65536], got[65536];
    uint64_t *xs = calloc((size_t)n, sizeof(*xs));
    if (!xs)
        return fail("calloc");
    srand(1);
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)rand();
    static const size_t sizes[] = { 64, 4096, 65536 };
    for (int k = 0; k < 3; k++) {
        size_t size = sizes[k];
        uint64_t sum = 0;
        errno = 0;
        if (echo(s, msg, got, size))                 /* one warm-up round trip */
            return fail("echo");
        for (int i = 0; i < n; i++) {
            t0 = now_ns();
            if (echo(s, msg, got, size))
                return fail("echo");
            xs[i] = now_ns() - t0;
            sum += xs[i];
        }
        qsort(xs, (size_t)n, sizeof(*xs), cmp_u64);
        printf("VSOCK-BENCH size=%zu n=%d min_ns=%" PRIu64 " median_ns=%" PRIu64 " p90_ns=%" PRIu64
               " p99_ns=%" PRIu64 " max_ns=%" PRIu64 " mib_s=%.2f\n", size, n, xs[0],
               pct(xs, n, 50), pct(xs, n, 90), pct(xs, n, 99), xs[n - 1],
               2.0 * (double)size * n / ((double)sum / 1e9) / (1 << 20));
    }
    free(xs);
    close(s);
    return 0;
}

static int tsc_khz(void)
{
    uint64_t t0 = now_ns(), c0 = __rdtsc(), t1;
    while ((t1 = now_ns()) - t0 < 200000000u)
        ;
    uint64_t c1 = __rdtsc();
    printf("%" PRIu64 "\n", (c1 - c0) * 1000000u / (t1 - t0));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "udp"))
        return udp_peer();
    if (argc == 6 && !strcmp(argv[1], "vsock"))
        return vsock_bench(0, argv[2], argv[3], atoi(argv[4]), argv[5]);
    if (argc == 6 && !strcmp(argv[1], "vsock-cid"))
        return vsock_bench(1, argv[2], argv[3], atoi(argv[4]), argv[5]);
    if (argc == 2 && !strcmp(argv[1], "tsc-khz"))
        return tsc_khz();
    fprintf(stderr, "usage: vmlab-bench-peer udp | vsock PATH PORT N SERIAL | vsock-cid CID PORT N SERIAL"
            " | tsc-khz\n");
    return 2;
}
