/* Fuzz target: virtio-vsock's host side, Firecracker's hybrid Unix socket
 * (devices/virtio/vsock_uds.c), fed arbitrary byte streams by a real client socket.
 *
 * One device with uds=/dev/shm/... and a mock driver lives for the whole process. Per input:
 * a client connects, writes the input (after its first byte, at most MAXIN bytes) in chunks
 * of 1 + data[0] % 16 bytes up to byte VSOCK_UDS_LINE_MAX (past any CONNECT line; the rest
 * in one write) with the device's poll between them, then shuts its sending side. The mock guest
 * accepts every REQUEST, collects what arrives, and answers the host's end of stream with
 * RST.
 * Invariants (abort() on violation):
 *   - a REQUEST comes iff the stream starts with a line "CONNECT <decimal u32>\n" of at most
 *     VSOCK_UDS_LINE_MAX bytes, once, for that port; then the client reads exactly
 *     "OK <host_port>\n" and the guest receives exactly the bytes after the newline;
 *   - otherwise the client is closed without a byte and the guest sees nothing;
 *   - afterwards the device has no connection and no fd is left open (the next client
 *     socket gets the same fd number). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_vsock.h"
#include "devices/virtio/vsock_spec.h"
#include "devices/virtio/vsock_uds.h"
#include "tests/mock_virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CID 3
#define NRX 16
#define RXSZ (VSOCK_HDR_SIZE + 4096)
#define MAXIN 512                       /* bytes of stream used per input: the line is at
                                         * most 32, the rest only has to arrive intact */

static struct mock_virtio m;
static char path[108];
static uint64_t rx_gpa[MOCK_QUEUE_MAX], txbuf;
static int ready;

static void bad(const char *why)
{
    fprintf(stderr, "fuzz invariant violated: %s\n", why);
    unlink(path);                       /* abort() skips the atexit cleanup */
    abort();
}

static void cleanup(void)
{
    if (ready)
        mock_virtio_destroy(&m);    /* closes and removes the socket */
}

static void post_rx(uint64_t gpa)
{
    struct mock_buf b = { gpa, RXSZ, 1 };
    int id = mock_vq_add(&m, VSOCK_RX_Q, &b, 1);
    if (id < 0)
        bad("rx ring full");
    rx_gpa[id] = gpa;
}

static void setup(void)
{
    char args[160], err[256];
    struct mock_virtio_opts o = { .queue_size = 32 };

    snprintf(path, sizeof path, "/dev/shm/vmlab-fuzz-vsock-%d.sock", (int)getpid());
    unlink(path);
    snprintf(args, sizeof args, "cid=%d,uds=%s", CID, path);
    if (mock_virtio_init(&m, 1 << 20, 1) || mock_virtio_create(&m, &virtio_vsock_type, args,
                                                               err, sizeof err) ||
        mock_virtio_setup(&m, &o)) {
        fprintf(stderr, "fuzz_vsock_uds: %s\n", err);
        abort();
    }
    txbuf = mock_virtio_alloc(&m, VSOCK_HDR_SIZE, 16);
    for (int i = 0; i < NRX; i++)
        post_rx(mock_virtio_alloc(&m, RXSZ, 16));
    mock_vq_kick(&m, VSOCK_RX_Q);
    ready = 1;
    atexit(cleanup);
}

static void guest_send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t fwd)
{
    struct vsock_hdr h = { .src_cid = CID, .dst_cid = VSOCK_CID_HOST, .src_port = src_port,
                           .dst_port = dst_port, .type = VSOCK_TYPE_STREAM, .op = op,
                           .buf_alloc = 1 << 16, .fwd_cnt = fwd };
    uint32_t used;
    vsock_hdr_encode(&h, mock_virtio_host(&m, txbuf, VSOCK_HDR_SIZE));
    struct mock_buf b = { txbuf, VSOCK_HDR_SIZE, 0 };
    if (mock_vq_request(&m, VSOCK_TX_Q, &b, 1, &used) < 0)
        bad("tx packet not completed");
}

/* What the guest saw in one input. */
static struct {
    int requests, done;
    uint32_t port, host_port;
    uint8_t data[MAXIN];
    size_t len;
} g;

static void guest_run(void)
{
    uint32_t id, used;
    int reposted = 0;

    while (mock_vq_get_used(&m, VSOCK_RX_Q, &id, &used)) {
        struct vsock_hdr h;
        const uint8_t *p = mock_virtio_host(&m, rx_gpa[id], RXSZ);
        if (used < VSOCK_HDR_SIZE)
            bad("short rx packet");
        vsock_hdr_decode(p, &h);
        if (used != VSOCK_HDR_SIZE + h.len)
            bad("rx used length");
        switch (h.op) {
        case VSOCK_OP_REQUEST:
            g.requests++;
            g.port = h.dst_port;
            g.host_port = h.src_port;
            guest_send(VSOCK_OP_RESPONSE, h.dst_port, h.src_port, 0);
            break;
        case VSOCK_OP_RW:
            if (g.len + h.len > sizeof g.data)
                bad("more bytes than the client sent");
            memcpy(g.data + g.len, p + VSOCK_HDR_SIZE, h.len);
            g.len += h.len;
            guest_send(VSOCK_OP_CREDIT_UPDATE, h.dst_port, h.src_port, (uint32_t)g.len);
            break;
        case VSOCK_OP_SHUTDOWN:
            guest_send(VSOCK_OP_RST, h.dst_port, h.src_port, (uint32_t)g.len);
            g.done = 1;
            break;
        default:
            bad("unexpected packet to the guest");
        }
        post_rx(rx_gpa[id]);
        reposted = 1;
    }
    if (reposted)                       /* one notification for the batch, as drivers do */
        mock_vq_kick(&m, VSOCK_RX_Q);
}

static void poll_dev(int rounds)
{
    for (int i = 0; i < rounds; i++) {
        virtio_vsock_type.poll(m.state);
        guest_run();
    }
}

/* The reference parser: a valid first line gives its port. */
static int reference(const uint8_t *s, size_t n, uint32_t *port, size_t *rest)
{
    const uint8_t *nl = memchr(s, '\n', n < VSOCK_UDS_LINE_MAX ? n : VSOCK_UDS_LINE_MAX);
    if (!nl)
        return 0;
    size_t len = (size_t)(nl - s);
    if (len < 9 || len > 18 || memcmp(s, "CONNECT ", 8))
        return 0;
    uint64_t v = 0;
    for (size_t i = 8; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v > UINT32_MAX)
        return 0;
    *port = (uint32_t)v;
    *rest = len + 1;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint32_t port = 0;
    size_t rest = 0;
    char reply[64];

    if (size < 1)
        return 0;
    if (!ready)
        setup();
    memset(&g, 0, sizeof g);
    const uint8_t *s = data + 1;
    size_t n = size - 1 > MAXIN ? MAXIN : size - 1, chunk = 1 + data[0] % 16;
    int valid = reference(s, n, &port, &rest);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa))
        abort();
    /* The line is split as the input says (no CONNECT line is longer than
     * VSOCK_UDS_LINE_MAX); what follows it is stream data and goes in one write. */
    for (size_t off = 0, k; off < n; off += k) {
        k = off >= VSOCK_UDS_LINE_MAX ? n - off : n - off < chunk ? n - off : chunk;
        if (send(fd, s + off, k, MSG_NOSIGNAL) != (ssize_t)k)
            break;                      /* the VMM closed us: fine for a bad line */
        poll_dev(1);
    }
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 50 && valid && !g.done; i++)
        poll_dev(1);
    poll_dev(2);
    /* What the client reads back. */
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, reply + got, sizeof reply - 1 - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            if (got == sizeof reply - 1)
                bad("too long a reply");
            continue;
        }
        /* A close with unread input shows as ECONNRESET on a Unix socket. */
        if (r == 0 || errno == ECONNRESET)
            break;
        bad("client still open after the exchange");
    }
    reply[got] = 0;
    close(fd);
    if (valid) {
        char want[32];
        snprintf(want, sizeof want, "OK %u\n", g.host_port);
        if (g.requests != 1 || g.port != port || strcmp(reply, want))
            bad("a good CONNECT line did not give one REQUEST and its OK");
        if (g.len != n - rest || memcmp(g.data, s + rest, g.len))
            bad("the bytes after the CONNECT line differ at the guest");
    } else if (g.requests || got || g.len) {
        bad("a bad CONNECT line reached the guest or got a reply");
    }
    poll_dev(2);
    if (vsock_dev_nconns(m.state) != 0)
        bad("a connection outlived its client");
    /* The client socket takes the lowest free fd: a leak anywhere moves it up. */
    static int first_fd = -1;
    if (first_fd < 0)
        first_fd = fd;
    if (fd > first_fd)
        bad("fds leaked");
    return 0;
}
