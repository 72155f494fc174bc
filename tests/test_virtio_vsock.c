/* virtio-vsock: packets and credit flow against a fake host, the hostile-guest list of
 * issue 19, snapshot restore, and Firecracker's hybrid Unix socket with real sockets. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "tests/check_run.h"
#include "tests/mock_virtio.h"
#include "vmm/snapshot.h"

#define GUEST_CID 3
#define RXN 64                          /* rx buffers the test guest keeps */
#define RXSZ (VSOCK_HDR_SIZE + 4096)

/* ---- the fake host ---- */
#define FAKE_MAX 4096
struct fake_conn {
    int used, closed, established, shut;
    uint32_t port, host_port;
    uint8_t out[256 * 1024];            /* what the guest sent */
    size_t out_len, send_limit;         /* send_limit: bytes taken per call (0: all) */
    int send_block;                     /* send takes nothing */
    const uint8_t *in;                  /* what the host has for the guest */
    size_t in_len, in_off;
    int eof;
    size_t recv_total;
    struct vsock_conn *vc;
};
struct fake_host {
    int refuse;                         /* connect fails with this errno */
    unsigned connects, closes, open;
    struct fake_conn *conns[FAKE_MAX];
    unsigned n;
};

static struct fake_conn *fake_new(struct fake_host *h)
{
    struct fake_conn *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_lt(h->n, FAKE_MAX);
    f->used = 1;
    h->conns[h->n++] = f;
    h->open++;
    return f;
}

static int fake_connect(void *host, struct vsock_conn *c, uint32_t port, void **hctx)
{
    struct fake_host *h = host;
    h->connects++;
    if (h->refuse)
        return -h->refuse;
    struct fake_conn *f = fake_new(h);
    f->port = port;
    f->vc = c;
    f->established = 1;
    *hctx = f;
    return 0;
}

static void fake_established(void *host, void *hctx, uint32_t host_port)
{
    (void)host;
    struct fake_conn *f = hctx;
    f->established = 1;
    f->host_port = host_port;
}

static ssize_t fake_send(void *host, void *hctx, const void *buf, size_t len)
{
    (void)host;
    struct fake_conn *f = hctx;
    ck_assert(!f->closed);
    if (f->send_block)
        return 0;
    if (f->send_limit && len > f->send_limit)
        len = f->send_limit;
    ck_assert_uint_le(f->out_len + len, sizeof(f->out));
    memcpy(f->out + f->out_len, buf, len);
    f->out_len += len;
    return (ssize_t)len;
}

static ssize_t fake_recv(void *host, void *hctx, void *buf, size_t len)
{
    (void)host;
    struct fake_conn *f = hctx;
    ck_assert(!f->closed);
    if (f->in_off == f->in_len)
        return f->eof ? 0 : -EAGAIN;
    if (len > f->in_len - f->in_off)
        len = f->in_len - f->in_off;
    memcpy(buf, f->in + f->in_off, len);
    f->in_off += len;
    f->recv_total += len;
    return (ssize_t)len;
}

static void fake_shutdown(void *host, void *hctx, uint32_t flags)
{
    (void)host;
    ((struct fake_conn *)hctx)->shut |= (int)flags;
}

static void fake_closed(void *host, void *hctx)
{
    struct fake_host *h = host;
    struct fake_conn *f = hctx;
    ck_assert(!f->closed);               /* closed() once per connection */
    f->closed = 1;
    h->closes++;
    h->open--;
}

static const struct vsock_host_ops fake_ops = {
    .connect = fake_connect, .established = fake_established, .send = fake_send,
    .recv = fake_recv, .shutdown = fake_shutdown, .closed = fake_closed,
};

static void fake_free(struct fake_host *h)
{
    for (unsigned i = 0; i < h->n; i++)
        free(h->conns[i]);
    h->n = 0;
}

/* ---- the test guest ---- */
struct vt {
    struct mock_virtio m;
    struct vsock_dev *d;
    struct fake_host host;
    uint64_t txbuf;
    uint64_t rx[RXN];
    uint64_t id_gpa[MOCK_QUEUE_MAX];
    uint64_t evbuf;
};

static struct vt *vt_open(const char *args, int fake)
{
    char err[256] = "";
    struct vt *t = calloc(1, sizeof(*t));
    struct mock_virtio_opts o = { .event_idx = 1, .indirect = 1 };

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(mock_virtio_init(&t->m, 4 << 20, 9), 0);
    ck_assert_msg(mock_virtio_create(&t->m, &virtio_vsock_type, args, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(mock_virtio_setup(&t->m, &o), 0);
    t->d = t->m.state;
    if (fake)
        vsock_dev_set_host(t->d, &fake_ops, &t->host);
    t->txbuf = mock_virtio_alloc(&t->m, VSOCK_HDR_SIZE + 2 * VSOCK_MAX_PKT, 16);
    for (int i = 0; i < RXN; i++)
        t->rx[i] = mock_virtio_alloc(&t->m, RXSZ, 16);
    t->evbuf = mock_virtio_alloc(&t->m, 16, 16);
    return t;
}

static void vt_close(struct vt *t)
{
    mock_virtio_destroy(&t->m);
    fake_free(&t->host);
    free(t);
}

static int live(struct vt *t)
{
    return !(mock_virtio_read32(&t->m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* Sends one packet from the guest with `buflen` bytes of buffer (0: header + len). */
static void tx_raw(struct vt *t, const struct vsock_hdr *h, const void *data, uint32_t datalen,
                   uint32_t buflen)
{
    uint32_t used;
    uint8_t *p = mock_virtio_host(&t->m, t->txbuf, VSOCK_HDR_SIZE + datalen);
    vsock_hdr_encode(h, p);
    if (datalen)
        memcpy(p + VSOCK_HDR_SIZE, data, datalen);
    struct mock_buf b = { t->txbuf, buflen ? buflen : VSOCK_HDR_SIZE + datalen, 0 };
    ck_assert_int_ge(mock_vq_request(&t->m, VSOCK_TX_Q, &b, 1, &used), 0);
}

static void tx(struct vt *t, uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
               uint32_t buf_alloc, uint32_t fwd_cnt, const void *data, uint32_t len)
{
    struct vsock_hdr h = { .src_cid = GUEST_CID, .dst_cid = VSOCK_CID_HOST,
                           .src_port = src_port, .dst_port = dst_port, .len = len,
                           .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
                           .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt };
    tx_raw(t, &h, data, len, 0);
}

/* Posts n rx buffers of `size` bytes (0: RXSZ). */
static void rx_post(struct vt *t, unsigned n, uint32_t size)
{
    static unsigned next;
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = t->rx[next++ % RXN];
        struct mock_buf b = { gpa, size ? size : RXSZ, 1 };
        int id = mock_vq_add(&t->m, VSOCK_RX_Q, &b, 1);
        ck_assert_int_ge(id, 0);
        t->id_gpa[id] = gpa;
    }
    mock_vq_kick(&t->m, VSOCK_RX_Q);
}

/* The next packet the device put in an rx buffer: 1, or 0 if none. */
static int rx_get(struct vt *t, struct vsock_hdr *h, uint8_t *data, uint32_t *len)
{
    uint32_t id, used;
    if (!mock_vq_get_used(&t->m, VSOCK_RX_Q, &id, &used))
        return 0;
    ck_assert_uint_ge(used, VSOCK_HDR_SIZE);
    uint8_t *p = mock_virtio_host(&t->m, t->id_gpa[id], used);
    vsock_hdr_decode(p, h);
    ck_assert_uint_eq(used, VSOCK_HDR_SIZE + h->len);
    ck_assert_uint_eq(h->src_cid, VSOCK_CID_HOST);
    ck_assert_uint_eq(h->dst_cid, GUEST_CID);
    if (data)
        memcpy(data, p + VSOCK_HDR_SIZE, h->len);
    if (len)
        *len = h->len;
    return 1;
}

static void rx_expect(struct vt *t, uint16_t op, uint32_t src_port, uint32_t dst_port)
{
    struct vsock_hdr h;
    ck_assert_msg(rx_get(t, &h, NULL, NULL), "no packet (wanted op %u)", op);
    ck_assert_uint_eq(h.op, op);
    ck_assert_uint_eq(h.src_port, src_port);
    ck_assert_uint_eq(h.dst_port, dst_port);
}

static void rx_none(struct vt *t)
{
    struct vsock_hdr h;
    ck_assert_msg(!rx_get(t, &h, NULL, NULL), "unexpected packet op %u", h.op);
}

/* The guest connects from port gp to host port hp and gets RESPONSE. */
static struct fake_conn *guest_connect(struct vt *t, uint32_t gp, uint32_t hp, uint32_t alloc)
{
    unsigned n = t->host.n;
    tx(t, VSOCK_OP_REQUEST, gp, hp, 0, alloc, 0, NULL, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RESPONSE, hp, gp);
    ck_assert_uint_eq(t->host.n, n + 1);
    return t->host.conns[n];
}

START_TEST(config_and_args)
{
    struct vt *t = vt_open("cid=0x1234", 0);
    uint64_t cid = mock_virtio_read32(&t->m, VIRTIO_MMIO_CONFIG) |
                   (uint64_t)mock_virtio_read32(&t->m, VIRTIO_MMIO_CONFIG + 4) << 32;
    ck_assert_uint_eq(cid, 0x1234);
    ck_assert_uint_eq(mock_virtio_read32(&t->m, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
    vt_close(t);

    static const char *const bad[] = { "0", "1", "2", "4294967295", "4294967296", "-3", "x3",
                                       "" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mock_virtio m;
        char args[64], err[256] = "", want[32];
        snprintf(args, sizeof(args), "cid=%s", bad[i]);
        snprintf(want, sizeof(want), "cid=%s ", bad[i]);
        ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
        ck_assert_int_eq(mock_virtio_create(&m, &virtio_vsock_type, args, err, sizeof(err)),
                         -EINVAL);
        ck_assert_msg(strstr(err, bad[i][0] ? want : "cid="), "%s: %s", args, err);
        mock_virtio_destroy(&m);
    }
    struct mock_virtio m;
    char err[256] = "";
    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_vsock_type, "uds=/x", err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "cid= is required"), "%s", err);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_vsock_type, "cid=3,port=1", err,
                                        sizeof(err)), -EINVAL);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(guest_connects_and_talks)
{
    struct vt *t = vt_open("cid=3", 1);
    struct vsock_hdr h;
    uint8_t data[8192];
    uint32_t len;

    struct fake_conn *f = guest_connect(t, 5000, 1234, 65536);
    ck_assert_uint_eq(f->port, 1234);
    tx(t, VSOCK_OP_RW, 5000, 1234, 0, 65536, 0, "ping", 4);
    ck_assert_uint_eq(f->out_len, 4);
    ck_assert_mem_eq(f->out, "ping", 4);

    /* Host to guest: split into packets of at most the rx buffer, in order. */
    static uint8_t big[6000];
    for (unsigned i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    f->in = big;
    f->in_len = sizeof(big);
    vsock_host_readable(t->d, f->vc);
    rx_post(t, 4, 0);
    size_t got = 0;
    while (rx_get(t, &h, data, &len)) {
        ck_assert_uint_eq(h.op, VSOCK_OP_RW);
        ck_assert_uint_eq(h.buf_alloc, VSOCK_BUF_ALLOC);
        ck_assert_uint_eq(h.fwd_cnt, 4);
        ck_assert_mem_eq(data, big + got, len);
        got += len;
    }
    ck_assert_uint_eq(got, sizeof(big));

    /* Host end of stream: SHUTDOWN(SEND) to the guest; then the guest's RST ends it. */
    f->eof = 1;
    vsock_host_readable(t->d, f->vc);
    ck_assert(rx_get(t, &h, NULL, NULL));
    ck_assert_uint_eq(h.op, VSOCK_OP_SHUTDOWN);
    ck_assert_uint_eq(h.flags, VSOCK_SHUTDOWN_SEND);
    tx(t, VSOCK_OP_RST, 5000, 1234, 0, 0, 0, NULL, 0);
    ck_assert(f->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    ck_assert(live(t));
    vt_close(t);
}
END_TEST

START_TEST(guest_connect_refused)
{
    struct vt *t = vt_open("cid=3", 0);
    /* No host side at all. */
    tx(t, VSOCK_OP_REQUEST, 5000, 1234, 0, 4096, 0, NULL, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 1234, 5000);
    /* A host that refuses. */
    vsock_dev_set_host(t->d, &fake_ops, &t->host);
    t->host.refuse = ECONNREFUSED;
    tx(t, VSOCK_OP_REQUEST, 5001, 1234, 0, 4096, 0, NULL, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 1234, 5001);
    /* A connect to another CID than the host. */
    t->host.refuse = 0;
    struct vsock_hdr h = { .src_cid = GUEST_CID, .dst_cid = 7, .src_port = 5002,
                           .dst_port = 1234, .type = VSOCK_TYPE_STREAM,
                           .op = VSOCK_OP_REQUEST, .buf_alloc = 4096 };
    tx_raw(t, &h, NULL, 0, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 1234, 5002);
    ck_assert_uint_eq(t->host.connects, 1);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    vt_close(t);
}
END_TEST

START_TEST(credit_flow_both_ways)
{
    struct vt *t = vt_open("cid=3", 1);
    struct vsock_hdr h;
    uint8_t data[8192];
    uint32_t len;

    /* The guest advertises 100 bytes: the host's 300 go out 100 at a time. */
    struct fake_conn *f = guest_connect(t, 6000, 80, 100);
    static uint8_t src[300];
    memset(src, 'x', sizeof(src));
    f->in = src;
    f->in_len = sizeof(src);
    vsock_host_readable(t->d, f->vc);
    rx_post(t, 8, 0);
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(len, 100);
    rx_none(t);
    ck_assert(!vsock_conn_wants_recv(f->vc));
    tx(t, VSOCK_OP_CREDIT_UPDATE, 6000, 80, 0, 100, 100, NULL, 0);
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(len, 100);
    rx_none(t);

    /* Guest to host: a host that takes 10 bytes a call, then nothing: the rest is held and
     * counted in fwd_cnt only once the host took it. */
    f->send_limit = 10;
    f->send_block = 0;
    static uint8_t g[40000];
    memset(g, 'g', sizeof(g));
    f->send_block = 1;
    tx(t, VSOCK_OP_RW, 6000, 80, 0, 100, 100, g, sizeof(g));     /* no credit for the host */
    ck_assert_uint_eq(f->out_len, 0);
    ck_assert(vsock_conn_wants_send(f->vc));
    f->send_block = 0;
    f->send_limit = 0;
    vsock_host_writable(t->d, f->vc);
    ck_assert_uint_eq(f->out_len, sizeof(g));
    /* More than half the buffer was freed: the guest hears about it. */
    ck_assert(rx_get(t, &h, NULL, NULL));
    ck_assert_uint_eq(h.op, VSOCK_OP_CREDIT_UPDATE);
    ck_assert_uint_eq(h.fwd_cnt, sizeof(g));
    /* CREDIT_REQUEST is answered. */
    tx(t, VSOCK_OP_CREDIT_REQUEST, 6000, 80, 0, 100, 100, NULL, 0);
    ck_assert(rx_get(t, &h, NULL, NULL));
    ck_assert_uint_eq(h.op, VSOCK_OP_CREDIT_UPDATE);
    ck_assert_uint_eq(h.buf_alloc, VSOCK_BUF_ALLOC);
    vt_close(t);
}
END_TEST

START_TEST(guest_overruns_credit)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 6000, 80, 4096);
    static uint8_t g[VSOCK_MAX_PKT];
    f->send_block = 1;
    tx(t, VSOCK_OP_RW, 6000, 80, 0, 4096, 0, g, sizeof(g));     /* exactly the credit */
    ck_assert(!f->closed);
    tx(t, VSOCK_OP_RW, 6000, 80, 0, 4096, 0, g, 1);             /* one byte past it */
    ck_assert(f->closed);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 80, 6000);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "past the 65536-byte credit"));
    ck_assert(live(t));
    vt_close(t);
}
END_TEST

START_TEST(shutdown_each_direction_and_both)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 7000, 90, 4096);

    tx(t, VSOCK_OP_SHUTDOWN, 7000, 90, VSOCK_SHUTDOWN_RCV, 4096, 0, NULL, 0);
    ck_assert_int_eq(f->shut, VSOCK_SHUTDOWN_RCV);
    ck_assert(!vsock_conn_wants_recv(f->vc));
    /* Data the guest sent before shutting its send side reaches the host first. */
    f->send_block = 1;
    tx(t, VSOCK_OP_RW, 7000, 90, 0, 4096, 0, "last", 4);
    tx(t, VSOCK_OP_SHUTDOWN, 7000, 90, VSOCK_SHUTDOWN_SEND, 4096, 0, NULL, 0);
    ck_assert_int_eq(f->shut, VSOCK_SHUTDOWN_RCV);
    f->send_block = 0;
    vsock_host_writable(t->d, f->vc);
    ck_assert_int_eq(f->shut, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
    ck_assert_mem_eq(f->out, "last", 4);
    /* Both directions are shut now: the device answers RST and forgets the connection. */
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 90, 7000);
    ck_assert(f->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);

    /* SHUTDOWN with both flags at once. */
    f = guest_connect(t, 7001, 90, 4096);
    tx(t, VSOCK_OP_SHUTDOWN, 7001, 90, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, 4096, 0,
       NULL, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 90, 7001);
    ck_assert(f->closed);
    /* RW after the guest shut its send side resets. */
    f = guest_connect(t, 7002, 90, 4096);
    tx(t, VSOCK_OP_SHUTDOWN, 7002, 90, VSOCK_SHUTDOWN_SEND, 4096, 0, NULL, 0);
    tx(t, VSOCK_OP_RW, 7002, 90, 0, 4096, 0, "x", 1);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 90, 7002);
    ck_assert(f->closed);
    vt_close(t);
}
END_TEST

START_TEST(host_connects_to_guest)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *a = fake_new(&t->host), *b = fake_new(&t->host);
    struct vsock_conn *ca, *cb;

    rx_post(t, 4, 0);
    ck_assert_int_eq(vsock_host_connect(t->d, 52, a, &ca), 0);
    ck_assert_int_eq(vsock_host_connect(t->d, 52, b, &cb), 0);
    a->vc = ca;
    b->vc = cb;
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 52);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE + 1, 52);
    /* The guest accepts the first; a RESPONSE for a port nobody asked about gets RST. */
    tx(t, VSOCK_OP_RESPONSE, 52, VSOCK_HOST_PORT_BASE, 0, 4096, 0, NULL, 0);
    ck_assert(a->established);
    ck_assert_uint_eq(a->host_port, VSOCK_HOST_PORT_BASE);
    tx(t, VSOCK_OP_RESPONSE, 52, 999, 0, 4096, 0, NULL, 0);
    rx_expect(t, VSOCK_OP_RST, 999, 52);
    /* The guest refuses the second: the host hears closed(). */
    tx(t, VSOCK_OP_RST, 52, VSOCK_HOST_PORT_BASE + 1, 0, 0, 0, NULL, 0);
    ck_assert(b->closed && !b->established);
    /* Data before RESPONSE would have been a protocol error; after it, it flows. */
    tx(t, VSOCK_OP_RW, 52, VSOCK_HOST_PORT_BASE, 0, 4096, 0, "hi", 2);
    ck_assert_mem_eq(a->out, "hi", 2);
    /* The host closes its side: the guest gets RST, closed() is not called back. */
    vsock_host_close(t->d, ca);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, VSOCK_HOST_PORT_BASE, 52);
    ck_assert(!a->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    vt_close(t);
}
END_TEST

/* A host client that connects while the guest is still booting: its REQUEST waits for the
 * driver, across the reset the driver starts with; established connections do not. */
START_TEST(host_connect_before_driver)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *a = guest_connect(t, 5, 80, 4096), *b = fake_new(&t->host);
    struct vsock_conn *cb;
    struct mock_virtio_opts o = { .event_idx = 1 };

    mock_virtio_reset(&t->m);
    ck_assert(a->closed);
    ck_assert_int_eq(vsock_host_connect(t->d, 52, b, &cb), 0);
    mock_virtio_reset(&t->m);
    ck_assert(!b->closed);
    ck_assert_int_eq(mock_virtio_setup(&t->m, &o), 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 52);
    tx(t, VSOCK_OP_RESPONSE, 52, VSOCK_HOST_PORT_BASE, 0, 4096, 0, NULL, 0);
    ck_assert(b->established);
    /* Once the guest saw it, a reset ends it. */
    mock_virtio_reset(&t->m);
    ck_assert(b->closed);
    vt_close(t);
}
END_TEST

/* Firecracker's request timeout: a guest that never answers a host connect's REQUEST gets
 * RST 2 s (device clock) after the REQUEST reached it, and the host hears closed(); a
 * REQUEST still waiting for an rx buffer does not expire (the guest may be booting). */
START_TEST(host_connect_unanswered_times_out)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *a = fake_new(&t->host), *b = fake_new(&t->host);
    struct vsock_conn *ca, *cb;

    ck_assert_int_eq(vsock_host_connect(t->d, 52, a, &ca), 0);
    mock_virtio_advance(&t->m, 10 * VSOCK_REQUEST_TIMEOUT_NS);
    ck_assert(!a->closed);
    rx_post(t, 2, 0);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 52);
    mock_virtio_advance(&t->m, VSOCK_REQUEST_TIMEOUT_NS / 2);
    ck_assert_int_eq(vsock_host_connect(t->d, 53, b, &cb), 0);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE + 1, 53);
    mock_virtio_advance(&t->m, VSOCK_REQUEST_TIMEOUT_NS / 2 - 1);
    ck_assert(!a->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 2);
    /* The first is due: RST to the guest, closed() to the host, the second still waits. */
    rx_post(t, 2, 0);
    mock_virtio_advance(&t->m, 1);
    ck_assert(a->closed);
    rx_expect(t, VSOCK_OP_RST, VSOCK_HOST_PORT_BASE, 52);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "guest port 52 did not answer the "
                                 "connect from host port 1073741824 within 2000 ms: reset"));
    ck_assert(!b->closed);
    /* The second is answered in time: it lives past its deadline. */
    tx(t, VSOCK_OP_RESPONSE, 53, VSOCK_HOST_PORT_BASE + 1, 0, 4096, 0, NULL, 0);
    ck_assert(b->established);
    mock_virtio_advance(&t->m, 10 * VSOCK_REQUEST_TIMEOUT_NS);
    ck_assert(!b->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 1);
    rx_none(t);
    vt_close(t);
}
END_TEST

/* Firecracker's shutdown timeout: the guest shut both ways while the host still has not
 * taken its bytes: reset 2 s later rather than held forever. */
START_TEST(shutdown_with_bytes_the_host_never_takes)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *a = guest_connect(t, 5, 80, 4096);

    a->send_block = 1;
    tx(t, VSOCK_OP_RW, 5, 80, 0, 4096, 0, "stuck", 5);
    tx(t, VSOCK_OP_SHUTDOWN, 5, 80, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, 4096, 0, NULL, 0);
    rx_post(t, 1, 0);
    mock_virtio_advance(&t->m, VSOCK_SHUTDOWN_TIMEOUT_NS - 1);
    ck_assert(!a->closed);
    rx_none(t);
    mock_virtio_advance(&t->m, 1);
    ck_assert(a->closed);
    rx_expect(t, VSOCK_OP_RST, 80, 5);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "did not take its last 5 bytes"));
    vt_close(t);
}
END_TEST

/* cloud-hypervisor 8bd96078a: a guest RST freed a host-allocated local port. Here a local
 * port belongs to its (local, peer) pair: RSTs from other guest ports change nothing, and
 * a new host connection never reuses a live port. */
START_TEST(host_ports_unique_and_not_freed_by_strangers)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *a = fake_new(&t->host);
    struct vsock_conn *ca, *cb;

    rx_post(t, 8, 0);
    ck_assert_int_eq(vsock_host_connect(t->d, 52, a, &ca), 0);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 52);
    tx(t, VSOCK_OP_RESPONSE, 52, VSOCK_HOST_PORT_BASE, 0, 4096, 0, NULL, 0);
    for (uint32_t p = 0; p < 200; p++)
        if (p != 52)
            tx(t, VSOCK_OP_RST, p, VSOCK_HOST_PORT_BASE, 0, 0, 0, NULL, 0);
    ck_assert(!a->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 1);
    /* A guest-initiated connection that names the same host port is another pair; ending it
     * leaves the host's connection alone. */
    guest_connect(t, 53, VSOCK_HOST_PORT_BASE, 4096);
    tx(t, VSOCK_OP_RST, 53, VSOCK_HOST_PORT_BASE, 0, 0, 0, NULL, 0);
    ck_assert(!a->closed);
    /* Live host connections never share a local port. */
    uint32_t ports[3];
    for (unsigned i = 0; i < 3; i++) {
        struct fake_conn *b = fake_new(&t->host);
        struct vsock_hdr h;
        ck_assert_int_eq(vsock_host_connect(t->d, 60, b, &cb), 0);
        ck_assert(rx_get(t, &h, NULL, NULL));
        ck_assert_uint_eq(h.op, VSOCK_OP_REQUEST);
        ports[i] = h.src_port;
        ck_assert_uint_ne(ports[i], VSOCK_HOST_PORT_BASE);
        for (unsigned k = 0; k < i; k++)
            ck_assert_uint_ne(ports[i], ports[k]);
    }
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 4);
    vt_close(t);
}
END_TEST

/* cloud-hypervisor 9f405a21a, 778c9f53d: hdr.len larger than the buffer it came in. */
START_TEST(hdr_len_past_its_buffer)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 8000, 80, 4096);
    struct vsock_hdr h = { .src_cid = GUEST_CID, .dst_cid = VSOCK_CID_HOST, .src_port = 8000,
                           .dst_port = 80, .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW,
                           .len = 1000, .buf_alloc = 4096 };
    tx_raw(t, &h, "abc", 3, VSOCK_HDR_SIZE + 3);        /* claims 1000, carries 3 */
    h.len = 0xffffffffu;
    tx_raw(t, &h, "abc", 3, VSOCK_HDR_SIZE + 3);
    h.len = VSOCK_MAX_PKT + 1;                          /* fits the buffer, too large */
    tx_raw(t, &h, NULL, 0, VSOCK_HDR_SIZE + VSOCK_MAX_PKT + 1);
    tx_raw(t, &h, NULL, 0, 10);                         /* shorter than a header */
    ck_assert_uint_eq(f->out_len, 0);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "hdr.len 1000 exceeds the 3"));
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "shorter than the 44-byte header"));
    ck_assert(live(t));
    ck_assert(!f->closed);
    tx(t, VSOCK_OP_RW, 8000, 80, 0, 4096, 0, "ok", 2);
    ck_assert_mem_eq(f->out, "ok", 2);
    /* A packet from another CID is dropped, not answered. */
    h = (struct vsock_hdr){ .src_cid = 99, .dst_cid = VSOCK_CID_HOST, .src_port = 8000,
                            .dst_port = 80, .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW,
                            .len = 1 };
    tx_raw(t, &h, "z", 1, 0);
    ck_assert_uint_eq(f->out_len, 2);
    rx_post(t, 1, 0);
    rx_none(t);
    vt_close(t);
}
END_TEST

/* The rx buffers the guest posts: too small for a header, and smaller than the data. */
START_TEST(small_rx_buffers)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 8000, 80, 65536);
    struct vsock_hdr h;
    uint8_t data[64];
    uint32_t len, id, used;

    f->in = (const uint8_t *)"0123456789";
    f->in_len = 10;
    vsock_host_readable(t->d, f->vc);
    rx_post(t, 1, 20);                                  /* cannot hold a header */
    ck_assert(mock_vq_get_used(&t->m, VSOCK_RX_Q, &id, &used));
    ck_assert_uint_eq(used, 0);
    rx_post(t, 1, VSOCK_HDR_SIZE + 4);                  /* 4 bytes at a time */
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(data, "0123", 4);
    rx_post(t, 2, VSOCK_HDR_SIZE + 4);
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_mem_eq(data, "4567", 4);
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(len, 2);
    ck_assert_mem_eq(data, "89", 2);
    ck_assert(live(t));
    vt_close(t);
}
END_TEST

/* Firecracker CVE-2019-18960: buffers past guest RAM. The core refuses the chain (the device
 * needs a reset), nothing outside RAM is touched, and after a reset the device works. */
START_TEST(descriptors_past_guest_ram)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 8000, 80, 4096);
    uint32_t used;
    struct mock_buf b = { t->m.ram_size - 8, VSOCK_HDR_SIZE, 0 };

    ck_assert_int_eq(mock_vq_request(&t->m, VSOCK_TX_Q, &b, 1, &used), -EAGAIN);
    ck_assert(!live(t));
    ck_assert(f->closed == 0);
    struct mock_virtio_opts o = { .event_idx = 1 };
    mock_virtio_reset(&t->m);
    ck_assert(f->closed);                  /* a reset ends every connection */
    ck_assert_uint_eq(t->host.open, 0);
    ck_assert_int_eq(mock_virtio_setup(&t->m, &o), 0);
    guest_connect(t, 8001, 80, 4096);
    ck_assert(live(t));
    vt_close(t);
}
END_TEST

/* A guest that never returns credit: the device stops reading from the host, the host's
 * bytes stay where they are, and the device holds at most one stage. */
START_TEST(guest_never_returns_credit)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 9000, 80, 4096);
    static uint8_t lots[1 << 20];
    struct vsock_hdr h;
    uint32_t len;
    size_t got = 0;

    f->in = lots;
    f->in_len = sizeof(lots);
    for (int round = 0; round < 50; round++) {
        vsock_host_readable(t->d, f->vc);
        rx_post(t, 4, 0);
        while (rx_get(t, &h, NULL, &len))
            got += len;
    }
    ck_assert_uint_eq(got, 4096);
    ck_assert_uint_le(f->recv_total, 4096 + VSOCK_RX_STAGE);
    ck_assert(!vsock_conn_wants_recv(f->vc));
    vt_close(t);
}
END_TEST

/* RST and other packets for connections that do not exist: RSTs are ignored, the rest is
 * answered with RST from a bounded queue (no rx buffers: nothing grows). */
START_TEST(rst_flood_for_strangers)
{
    struct vt *t = vt_open("cid=3", 1);
    struct fake_conn *f = guest_connect(t, 9000, 80, 4096);

    for (uint32_t i = 0; i < 20000; i++)
        tx(t, VSOCK_OP_RST, 10000 + i, 80 + (i & 1), 0, 0, 0, NULL, 0);
    for (uint32_t i = 0; i < 5000; i++)
        tx(t, VSOCK_OP_RW, 10000 + i, 81, 0, 4096, 0, "x", 1);
    ck_assert(!f->closed);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 1);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "RSTs wait for rx buffers"));
    unsigned n = 0;
    struct vsock_hdr h;
    for (int r = 0; r < 4; r++) {
        rx_post(t, 32, 0);
        while (rx_get(t, &h, NULL, NULL)) {
            ck_assert_uint_eq(h.op, VSOCK_OP_RST);
            n++;
        }
    }
    ck_assert_uint_eq(n, VSOCK_RST_QUEUE);
    tx(t, VSOCK_OP_RW, 9000, 80, 0, 4096, 0, "alive", 5);
    ck_assert_mem_eq(f->out, "alive", 5);
    vt_close(t);
}
END_TEST

START_TEST(connection_limit)
{
    struct vt *t = vt_open("cid=3", 1);
    struct vsock_hdr h;
    struct vsock_conn *c;

    for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
        tx(t, VSOCK_OP_REQUEST, 20000 + i, 80, 0, 4096, 0, NULL, 0);
        if (i % 32 == 31) {
            rx_post(t, 32, 0);
            while (rx_get(t, &h, NULL, NULL))
                ck_assert_uint_eq(h.op, VSOCK_OP_RESPONSE);
        }
    }
    rx_post(t, 32, 0);
    while (rx_get(t, &h, NULL, NULL))
        ;
    ck_assert_uint_eq(vsock_dev_nconns(t->d), VSOCK_MAX_CONNS);
    tx(t, VSOCK_OP_REQUEST, 30000, 80, 0, 4096, 0, NULL, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RST, 80, 30000);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&t->m), "connection limit (1023) reached"));
    ck_assert_int_eq(vsock_host_connect(t->d, 1, NULL, &c), -EMFILE);
    ck_assert_uint_eq(t->host.connects, VSOCK_MAX_CONNS);
    /* One ends, one more fits. */
    tx(t, VSOCK_OP_RST, 20000, 80, 0, 0, 0, NULL, 0);
    tx(t, VSOCK_OP_REQUEST, 30001, 80, 0, 4096, 0, NULL, 0);
    rx_post(t, 1, 0);
    rx_expect(t, VSOCK_OP_RESPONSE, 80, 30001);
    vt_close(t);
}
END_TEST

/* 2000 connections opened and dropped, from both sides: nothing stays behind. */
START_TEST(open_and_drop_2000)
{
    struct vt *t = vt_open("cid=3", 1);
    struct vsock_hdr h;

    for (uint32_t i = 0; i < 2000; i++) {
        guest_connect(t, 40000 + i, 80, 4096);
        if (i & 1)
            tx(t, VSOCK_OP_RST, 40000 + i, 80, 0, 0, 0, NULL, 0);
        else {
            tx(t, VSOCK_OP_SHUTDOWN, 40000 + i, 80, 3, 4096, 0, NULL, 0);
            rx_post(t, 1, 0);
            rx_expect(t, VSOCK_OP_RST, 80, 40000 + i);
        }
        fake_free(&t->host);
    }
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    ck_assert_uint_eq(t->host.open, 0);
    for (uint32_t i = 0; i < 2000; i++) {
        struct fake_conn *f = fake_new(&t->host);
        struct vsock_conn *c;
        rx_post(t, 1, 0);
        ck_assert_int_eq(vsock_host_connect(t->d, 52, f, &c), 0);
        ck_assert(rx_get(t, &h, NULL, NULL));
        if (i & 1) {
            tx(t, VSOCK_OP_RST, 52, h.src_port, 0, 0, 0, NULL, 0);
        } else {
            tx(t, VSOCK_OP_RESPONSE, 52, h.src_port, 0, 4096, 0, NULL, 0);
            vsock_host_close(t->d, c);
            rx_post(t, 1, 0);
            rx_expect(t, VSOCK_OP_RST, h.src_port, 52);
        }
        fake_free(&t->host);
    }
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    ck_assert(live(t));
    vt_close(t);
}
END_TEST

START_TEST(transport_reset_after_restore)
{
    char path[] = "/tmp/vmlab-vsock-snap-XXXXXX", err[256] = "";
    int fd = mkstemp(path);
    struct snapshot_writer w;
    struct snapshot_reader r;
    struct vt *a = vt_open("cid=3", 1), *b = vt_open("cid=3", 1);
    uint32_t id, used;

    ck_assert_int_ge(fd, 0);
    close(fd);
    struct mock_buf ev = { a->evbuf, 4, 1 };
    ck_assert_int_ge(mock_vq_add(&a->m, VSOCK_EVENT_Q, &ev, 1), 0);
    mock_vq_kick(&a->m, VSOCK_EVENT_Q);
    ck_assert(!mock_vq_get_used(&a->m, VSOCK_EVENT_Q, &id, &used));   /* no event yet */
    guest_connect(a, 100, 80, 4096);
    mock_virtio_ack_irq(&a->m);
    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "DEV ");
    ck_assert_int_eq(virtio_vsock_type.save(a->m.state, &w, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);

    /* b's guest RAM and driver become a's, then the device state. */
    memcpy(b->m.ram, a->m.ram, a->m.ram_size);
    memcpy(b->m.vqs, a->m.vqs, sizeof(a->m.vqs));
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "DEV ", err, sizeof(err)), 0);
    ck_assert_int_eq(virtio_vsock_type.load(b->m.state, &r, err, sizeof(err)), 0);
    snapshot_reader_close(&r);
    ck_assert_uint_eq(vsock_dev_nconns(b->d), 0);
    ck_assert_int_eq(b->m.irq_raises, 0);           /* load itself raises nothing */
    virtio_vsock_type.poll(b->m.state);             /* the VMM's next poll delivers it */
    ck_assert(mock_vq_get_used(&b->m, VSOCK_EVENT_Q, &id, &used));
    ck_assert_uint_eq(used, 4);
    uint8_t *p = mock_virtio_host(&b->m, b->evbuf, 4);
    ck_assert_uint_eq(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24,
                      VSOCK_EVENT_TRANSPORT_RESET);
    ck_assert_int_eq(b->m.irq_level, 1);

    /* A snapshot of another CID is refused naming both. */
    struct vt *c = vt_open("cid=4", 1);
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "DEV ", err, sizeof(err)), 0);
    memcpy(c->m.ram, a->m.ram, a->m.ram_size);
    ck_assert_int_eq(virtio_vsock_type.load(c->m.state, &r, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "CID 3") && strstr(err, "cid=4"), "%s", err);
    snapshot_reader_close(&r);
    vt_close(a);
    vt_close(b);
    vt_close(c);
    unlink(path);
}
END_TEST

/* ---- the hybrid Unix socket ---- */
static char uds_dir[64];

static void uds_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", uds_dir, name);
}

static void set_sun_path(struct sockaddr_un *sa, const char *path)
{
    ck_assert_uint_lt(strlen(path), sizeof(sa->sun_path));
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int uds_client(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    set_sun_path(&sa, path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void poll_dev(struct vt *t, int rounds)
{
    for (int i = 0; i < rounds; i++)
        virtio_vsock_type.poll(t->m.state);
}

/* 1 if fd was closed by the peer (EOF), after polling the device. */
static int closed_by_vmm(struct vt *t, int fd)
{
    char c;
    for (int i = 0; i < 100; i++) {
        poll_dev(t, 1);
        ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
        if (n == 0)
            return 1;
        if (n > 0)
            return 0;
    }
    return 0;
}

static struct vt *uds_open(char *path, size_t n)
{
    char args[256];
    uds_path(path, n, "v.sock");
    unlink(path);
    snprintf(args, sizeof(args), "cid=3,uds=%s", path);
    return vt_open(args, 0);
}

static unsigned count_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void uds_setup(void)
{
    snprintf(uds_dir, sizeof(uds_dir), "/tmp/vmlab-vsock-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(uds_dir));
}

static void uds_teardown(void)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", uds_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(uds_host_connect_ok_and_data)
{
    char path[128], buf[64];
    struct vt *t = uds_open(path, sizeof(path));
    struct vsock_hdr h;
    uint8_t data[64];
    uint32_t len;

    int fd = uds_client(path);
    ck_assert_int_eq(write(fd, "CONNECT 1234\nearly", 18), 18);
    rx_post(t, 4, 0);
    poll_dev(t, 3);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 1234);
    ck_assert_int_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);    /* no OK yet */
    tx(t, VSOCK_OP_RESPONSE, 1234, VSOCK_HOST_PORT_BASE, 0, 65536, 0, NULL, 0);
    ssize_t n = read(fd, buf, sizeof(buf));
    ck_assert_int_eq(n, 14);
    ck_assert_mem_eq(buf, "OK 1073741824\n", 14);
    /* What followed the newline is stream data. */
    poll_dev(t, 2);
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(h.op, VSOCK_OP_RW);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(data, "early", 5);
    tx(t, VSOCK_OP_RW, 1234, VSOCK_HOST_PORT_BASE, 0, 65536, 5, "pong", 4);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 4);
    ck_assert_mem_eq(buf, "pong", 4);
    /* The client goes away: SHUTDOWN to the guest, whose RST ends it. */
    close(fd);
    poll_dev(t, 2);
    ck_assert(rx_get(t, &h, NULL, NULL));
    ck_assert_uint_eq(h.op, VSOCK_OP_SHUTDOWN);
    tx(t, VSOCK_OP_RST, 1234, VSOCK_HOST_PORT_BASE, 0, 0, 0, NULL, 0);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    vt_close(t);
    ck_assert_int_eq(access(path, F_OK), -1);            /* the socket is removed */
}
END_TEST

/* A client sends "CONNECT 7\n" and the guest gets its REQUEST: the client's fd. */
static int uds_client_requests(struct vt *t, const char *path)
{
    int fd = uds_client(path);
    ck_assert_int_eq(write(fd, "CONNECT 7\n", 10), 10);
    rx_post(t, 2, 0);
    poll_dev(t, 2);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 7);
    return fd;
}

START_TEST(uds_guest_refuses)
{
    char path[128];
    struct vt *t = uds_open(path, sizeof(path));
    int fd = uds_client_requests(t, path);
    tx(t, VSOCK_OP_RST, 7, VSOCK_HOST_PORT_BASE, 0, 0, 0, NULL, 0);
    ck_assert(closed_by_vmm(t, fd));
    close(fd);
    vt_close(t);
}
END_TEST

static int fd_readable(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The device's poll_fd (what the KVM backend wakes on) turns readable when a host socket has
 * news (a client connects, sends a line, sends data, goes away) and is
 * quiet again once the poll served it: the VMM wakes for host I/O, never spins on it. */
START_TEST(uds_poll_fd_wakes_for_host_io)
{
    char path[128], buf[64];
    struct vt *t = uds_open(path, sizeof(path));
    struct vsock_hdr h;
    uint8_t data[64];
    uint32_t len;
    int pfd = virtio_vsock_type.poll_fd(t->m.state);

    ck_assert_int_ge(pfd, 0);
    poll_dev(t, 1);
    ck_assert(!fd_readable(pfd));
    int fd = uds_client(path);
    ck_assert(fd_readable(pfd));                        /* a client connected */
    poll_dev(t, 1);
    ck_assert(!fd_readable(pfd));
    ck_assert_int_eq(write(fd, "CONNECT 7\n", 10), 10);
    ck_assert(fd_readable(pfd));                        /* its line */
    rx_post(t, 4, 0);
    poll_dev(t, 1);
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 7);
    tx(t, VSOCK_OP_RESPONSE, 7, VSOCK_HOST_PORT_BASE, 0, 65536, 0, NULL, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 14);
    poll_dev(t, 1);
    ck_assert(!fd_readable(pfd));
    ck_assert_int_eq(write(fd, "ping", 4), 4);
    ck_assert(fd_readable(pfd));                        /* stream data */
    poll_dev(t, 1);
    ck_assert(!fd_readable(pfd));
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(h.op, VSOCK_OP_RW);
    ck_assert_mem_eq(data, "ping", 4);
    close(fd);
    ck_assert(fd_readable(pfd));                        /* end of stream */
    vt_close(t);

    /* Without uds= there is no socket to wake for. */
    t = vt_open("cid=3", 0);
    ck_assert_int_eq(virtio_vsock_type.poll_fd(t->m.state), -1);
    vt_close(t);
}
END_TEST

/* A host CONNECT to a guest port nobody answers: the client is closed, no OK, after the
 * request timeout (the device's clock), never left hanging. */
START_TEST(uds_guest_never_answers)
{
    char path[128];
    struct vt *t = uds_open(path, sizeof(path));
    int fd = uds_client_requests(t, path);
    mock_virtio_advance(&t->m, VSOCK_REQUEST_TIMEOUT_NS - 1);
    poll_dev(t, 2);
    char c;
    ck_assert_int_eq(recv(fd, &c, 1, MSG_DONTWAIT), -1);     /* still waiting */
    ck_assert_int_eq(errno, EAGAIN);
    mock_virtio_advance(&t->m, 1);
    ck_assert(closed_by_vmm(t, fd));
    rx_expect(t, VSOCK_OP_RST, VSOCK_HOST_PORT_BASE, 7);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    close(fd);
    vt_close(t);
}
END_TEST

/* The hostile host list: each client is closed without a REQUEST, the device stays up and
 * a good client afterwards still works. */
START_TEST(uds_hostile_clients)
{
    static const struct { const char *bytes; size_t len; } bad[] = {
        { "", 0 },                                      /* cloud-hypervisor #6621 */
        { "CONNECT 1234", 12 },                         /* no newline, then close */
        { "CONNECT 12345678901234567890123456789\n", 38 },     /* longer than the buffer */
        { "CONNECT abc\n", 12 },
        { "CONNECT 4294967296\n", 19 },
        { "CONNECT -1\n", 11 },
        { "CONNECT \n", 9 },
        { "connect 5\n", 10 },
        { "CONNECT 5 \n", 11 },
        { "\n", 1 },
        { "CONNECT 1\0\n", 11 },
    };
    char path[128], buf[32];
    struct vt *t = uds_open(path, sizeof(path));

    rx_post(t, 8, 0);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = uds_client(path);
        if (bad[i].len)
            ck_assert_int_eq(write(fd, bad[i].bytes, bad[i].len), (ssize_t)bad[i].len);
        if (i < 2)
            shutdown(fd, SHUT_WR);
        ck_assert_msg(closed_by_vmm(t, fd), "case %u left open", i);
        close(fd);
        rx_none(t);
        ck_assert(live(t));
    }
    /* Bytes split across many writes (cloud-hypervisor #6798 spun forever here). */
    int fd = uds_client(path);
    const char *line = "CONNECT 4321\nabc";
    for (size_t i = 0; i < strlen(line); i++) {
        ck_assert_int_eq(write(fd, line + i, 1), 1);
        poll_dev(t, 1);
    }
    rx_expect(t, VSOCK_OP_REQUEST, VSOCK_HOST_PORT_BASE, 4321);
    tx(t, VSOCK_OP_RESPONSE, 4321, VSOCK_HOST_PORT_BASE, 0, 65536, 0, NULL, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 14);
    poll_dev(t, 2);
    struct vsock_hdr h;
    uint8_t data[16];
    uint32_t len;
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(data, "abc", 3);
    close(fd);
    vt_close(t);
}
END_TEST

START_TEST(uds_guest_connects_to_port_path)
{
    char path[128], lpath[160];
    struct vt *t = uds_open(path, sizeof(path));
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[16];

    /* Nothing at PATH_5000: RST. */
    tx(t, VSOCK_OP_REQUEST, 77, 5000, 0, 65536, 0, NULL, 0);
    rx_post(t, 2, 0);
    rx_expect(t, VSOCK_OP_RST, 5000, 77);
    /* A listener there: RESPONSE, and data both ways. */
    snprintf(lpath, sizeof(lpath), "%s_5000", path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    set_sun_path(&sa, lpath);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    tx(t, VSOCK_OP_REQUEST, 78, 5000, 0, 65536, 0, NULL, 0);
    rx_expect(t, VSOCK_OP_RESPONSE, 5000, 78);
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    tx(t, VSOCK_OP_RW, 78, 5000, 0, 65536, 0, "hello", 5);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
    ck_assert_mem_eq(buf, "hello", 5);
    ck_assert_int_eq(write(fd, "back", 4), 4);
    rx_post(t, 1, 0);
    poll_dev(t, 2);
    struct vsock_hdr h;
    uint8_t data[16];
    uint32_t len;
    ck_assert(rx_get(t, &h, data, &len));
    ck_assert_mem_eq(data, "back", 4);
    /* The guest resets: the host socket closes. */
    tx(t, VSOCK_OP_RST, 78, 5000, 0, 0, 0, NULL, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);
    close(fd);
    close(lfd);
    vt_close(t);
}
END_TEST

/* 2000 host clients connect and close (half never finish their line): fds stay bounded. */
START_TEST(uds_2000_clients_bounded)
{
    char path[128];
    struct vt *t = uds_open(path, sizeof(path));
    struct vsock_hdr h;

    rx_post(t, 16, 0);
    poll_dev(t, 1);
    unsigned before = count_fds();
    for (int i = 0; i < 2000; i++) {
        int fd = uds_client(path);
        if (i & 1) {
            ck_assert_int_eq(write(fd, "CONNECT 9\n", 10), 10);
            poll_dev(t, 2);
            ck_assert(rx_get(t, &h, NULL, NULL));
            ck_assert_uint_eq(h.op, VSOCK_OP_REQUEST);
            tx(t, VSOCK_OP_RESPONSE, 9, h.src_port, 0, 4096, 0, NULL, 0);
            rx_post(t, 1, 0);
        }
        close(fd);
        poll_dev(t, 2);
        while (rx_get(t, &h, NULL, NULL)) {
            if (h.op == VSOCK_OP_SHUTDOWN)
                tx(t, VSOCK_OP_RST, 9, h.src_port, 0, 0, 0, NULL, 0);
            rx_post(t, 1, 0);
        }
    }
    poll_dev(t, 4);
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    ck_assert_uint_le(count_fds(), before + 1);
    ck_assert(live(t));
    vt_close(t);
}
END_TEST

START_TEST(uds_path_errors)
{
    char path[128], args[400], err[256] = "";
    struct mock_virtio m;

    uds_path(path, sizeof(path), "taken.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    set_sun_path(&sa, path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
    snprintf(args, sizeof(args), "cid=3,uds=%s", path);
    ck_assert_int_lt(mock_virtio_create(&m, &virtio_vsock_type, args, err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, path) && strstr(err, "in use"), "%s", err);
    close(fd);
    snprintf(args, sizeof(args), "cid=3,uds=/tmp/%0200d", 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_vsock_type, args, err, sizeof(err)),
                     -ENAMETOOLONG);
    ck_assert_msg(strstr(err, "longer than"), "%s", err);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(parse_connect_lines)
{
    uint32_t port = 0;
    ck_assert_int_eq(vsock_uds_parse_connect("CONNECT 0", 9, &port), 0);
    ck_assert_uint_eq(port, 0);
    ck_assert_int_eq(vsock_uds_parse_connect("CONNECT 4294967295", 18, &port), 0);
    ck_assert_uint_eq(port, 4294967295u);
    ck_assert_int_eq(vsock_uds_parse_connect("CONNECT 4294967296", 18, &port), -EINVAL);
    ck_assert_int_eq(vsock_uds_parse_connect("CONNECT 00000000001", 19, &port), -EINVAL);
    ck_assert_int_eq(vsock_uds_parse_connect("CONNECT", 7, &port), -EINVAL);
    ck_assert_int_eq(vsock_uds_parse_connect("CONNECT +5", 10, &port), -EINVAL);
}
END_TEST

/* Host messages (what a trace's host-in events hand the device in replay): taken only by a
 * device built for replay (env.host_pull set), each bad one refused with a line naming it. */
static unsigned pulls;

static void count_pull(void *opaque)
{
    (void)opaque;
    pulls++;
}

static int host_msg(struct mock_virtio *m, char op, uint32_t local, uint32_t peer, int32_t val,
                    const void *data, size_t len, char *err, size_t errlen)
{
    uint8_t b[64] = { (uint8_t)op };
    memcpy(b + 1, &local, 4);           /* the test runs on little-endian x86-64 */
    memcpy(b + 5, &peer, 4);
    memcpy(b + 9, &val, 4);
    ck_assert_uint_le(len, sizeof(b) - 13);
    if (len)
        memcpy(b + 13, data, len);
    err[0] = '\0';
    return virtio_vsock_type.host_input(m->state, b, 13 + len, err, errlen);
}

START_TEST(host_messages_in_replay_only)
{
    char err[256];
    struct mock_virtio m;
    struct mock_virtio_opts o = { .event_idx = 1, .indirect = 1 };

    ck_assert_int_eq(mock_virtio_init(&m, 4 << 20, 9), 0);
    m.env.host_pull = count_pull;
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_vsock_type, "cid=3", err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(&m, &o), 0);
    ck_assert_int_eq(virtio_vsock_type.host_input(m.state, (const uint8_t *)"C", 1, err,
                                                  sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "virtio-vsock: host message of 1 bytes (at least 13)");
    ck_assert_int_eq(host_msg(&m, 'Z', 0, 0, 0, NULL, 0, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "virtio-vsock: host message kind 0x5a unknown");
    ck_assert_int_eq(host_msg(&m, 'R', 5, 6, 0, NULL, 0, err, sizeof(err)), -ENOENT);
    ck_assert_str_eq(err, "virtio-vsock: host message 'R' for connection 5:6, which does "
                     "not exist");
    ck_assert_int_eq(host_msg(&m, 'D', 0, 0, 5000, "abcde", 5, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "host read of 5000 with 5 bytes"));
    ck_assert_uint_eq(vsock_dev_nconns(m.state), 0);
    /* A recorded host connect makes the connection the recorded run had. */
    ck_assert_int_eq(host_msg(&m, 'C', 0, 1234, 0, NULL, 0, err, sizeof(err)), 0);
    ck_assert_uint_eq(vsock_dev_nconns(m.state), 1);
    ck_assert_int_eq(host_msg(&m, 'R', VSOCK_HOST_PORT_BASE, 1234, 0, NULL, 0, err,
                              sizeof(err)), 0);
    ck_assert_int_eq(host_msg(&m, 'X', VSOCK_HOST_PORT_BASE, 1234, 0, NULL, 0, err,
                              sizeof(err)), 0);
    ck_assert_uint_eq(vsock_dev_nconns(m.state), 0);
    mock_virtio_destroy(&m);

    /* A live device's host side is its socket: the message changes nothing. */
    struct vt *t = vt_open("cid=3", 0);
    ck_assert_int_eq(host_msg(&t->m, 'C', 0, 1234, 0, NULL, 0, err, sizeof(err)), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err, "replay only"));
    ck_assert_uint_eq(vsock_dev_nconns(t->d), 0);
    vt_close(t);
}
END_TEST

static Suite *vsock_suite(void)
{
    Suite *s = suite_create("virtio_vsock");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, config_and_args);
    tcase_add_test(tc, guest_connects_and_talks);
    tcase_add_test(tc, guest_connect_refused);
    tcase_add_test(tc, host_messages_in_replay_only);
    tcase_add_test(tc, credit_flow_both_ways);
    tcase_add_test(tc, guest_overruns_credit);
    tcase_add_test(tc, shutdown_each_direction_and_both);
    tcase_add_test(tc, host_connects_to_guest);
    tcase_add_test(tc, host_connect_before_driver);
    tcase_add_test(tc, host_connect_unanswered_times_out);
    tcase_add_test(tc, shutdown_with_bytes_the_host_never_takes);
    tcase_add_test(tc, host_ports_unique_and_not_freed_by_strangers);
    tcase_add_test(tc, hdr_len_past_its_buffer);
    tcase_add_test(tc, small_rx_buffers);
    tcase_add_test(tc, descriptors_past_guest_ram);
    tcase_add_test(tc, guest_never_returns_credit);
    tcase_add_test(tc, rst_flood_for_strangers);
    tcase_add_test(tc, connection_limit);
    tcase_add_test(tc, open_and_drop_2000);
    tcase_add_test(tc, transport_reset_after_restore);
    suite_add_tcase(s, tc);
    TCase *uds = tcase_create("uds");
    tcase_set_timeout(uds, 120);
    tcase_add_checked_fixture(uds, uds_setup, uds_teardown);
    tcase_add_test(uds, uds_host_connect_ok_and_data);
    tcase_add_test(uds, uds_guest_refuses);
    tcase_add_test(uds, uds_guest_never_answers);
    tcase_add_test(uds, uds_poll_fd_wakes_for_host_io);
    tcase_add_test(uds, uds_hostile_clients);
    tcase_add_test(uds, uds_guest_connects_to_port_path);
    tcase_add_test(uds, uds_2000_clients_bounded);
    tcase_add_test(uds, uds_path_errors);
    tcase_add_test(uds, parse_connect_lines);
    suite_add_tcase(s, uds);
    return s;
}

int main(void)
{
    return check_run(vsock_suite());
}
