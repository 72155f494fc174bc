/* virtio-net: features and config, transmit and receive through the loop backend (split
 * and packed rings), mergeable receive buffers, checksum completion, receive back-pressure
 * (CVE-2020-16843), the control queue and the receive filter, the hostile-guest list of
 * issue 18, arguments, and libslirp answering ARP and ping of the gateway. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_net.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"
#include "vmm/snapshot.h"

#include <unistd.h>

#define RX 0
#define TX 1
#define CTRL 2
#define HDR 12

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t other_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static const uint64_t all_net = VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
    VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_MTU) |
    VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
    VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
    VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);

/* What the device handed the host (host_io out) and what it took from it (in). */
struct host_log {
    unsigned n_out, n_in;
    size_t last_out_len;
    uint8_t last_out[2048];
};

static void log_host_io(void *opaque, int dir, const void *data, size_t len)
{
    struct host_log *h = opaque;

    if (dir == DEVICE_HOST_OUT) {
        h->n_out++;
        h->last_out_len = len;
        memcpy(h->last_out, data, len < sizeof(h->last_out) ? len : sizeof(h->last_out));
    } else {
        h->n_in++;
    }
}

static void net_open(struct mock_virtio *m, const char *args, int packed, uint64_t features,
                     struct host_log *h)
{
    char err[256] = "";
    struct mock_virtio_opts o = { .packed = packed, .indirect = 1, .event_idx = 1,
                                  .device_features = features };
    ck_assert_int_eq(mock_virtio_init(m, 4 << 20, 7), 0);
    if (h) {
        memset(h, 0, sizeof(*h));
        m->env.host_io = log_host_io;
        m->env.host_io_opaque = h;
    }
    ck_assert_msg(mock_virtio_create(m, &virtio_net_type, args, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
}

static uint32_t status(struct mock_virtio *m)
{
    return mock_virtio_read32(m, VIRTIO_MMIO_STATUS);
}

/* An Ethernet frame of `len` bytes: dst, the guest as source, type 0x88b5, then seq and
 * a pattern. */
static size_t make_frame(uint8_t *f, const uint8_t *dst, size_t len, uint32_t seq)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    memcpy(f + 14, &seq, 4);
    for (size_t i = 18; i < len; i++)
        f[i] = (uint8_t)(i * 7 + seq);
    return len;
}

/* Puts hdr + frame in guest memory and transmits it; returns the used length. */
static int transmit(struct mock_virtio *m, const uint8_t *hdr, unsigned hdr_len,
                    const uint8_t *frame, size_t len)
{
    uint64_t a = mock_virtio_alloc(m, hdr_len + len + 16, 16);
    uint32_t used;

    memcpy(mock_virtio_host(m, a, hdr_len), hdr, hdr_len);
    memcpy(mock_virtio_host(m, a + hdr_len, len), frame, len);
    struct mock_buf b[2] = { { a, hdr_len, 0 }, { a + hdr_len, (uint32_t)len, 0 } };
    return mock_vq_request(m, TX, b, 2, &used) < 0 ? -1 : (int)used;
}

static int send_frame(struct mock_virtio *m, const uint8_t *frame, size_t len)
{
    uint8_t hdr[HDR] = { 0 };
    return transmit(m, hdr, HDR, frame, len);
}

/* Posts one receive buffer of `size` bytes; returns its gpa. */
static uint64_t post_rx(struct mock_virtio *m, uint32_t size, int kick)
{
    uint64_t a = mock_virtio_alloc(m, size, 16);
    struct mock_buf b = { a, size, 1 };

    ck_assert_int_ge(mock_vq_add(m, RX, &b, 1), 0);
    if (kick)
        mock_vq_kick(m, RX);
    return a;
}

START_TEST(config_and_features)
{
    struct mock_virtio m;

    net_open(&m, "mac=52:54:00:01:02:03,mtu=1400", _i, all_net, NULL);
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
    uint8_t cfg[12];
    for (int i = 0; i < 12; i++) {
        uint64_t v;
        ck_assert_int_eq(mock_virtio_read(&m, VIRTIO_MMIO_CONFIG + i, 1, &v), 0);
        cfg[i] = (uint8_t)v;
    }
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x01, 0x02, 0x03 };
    ck_assert(memcmp(cfg, mac, 6) == 0);
    ck_assert_uint_eq(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
    ck_assert_uint_eq(cfg[8] | cfg[9] << 8, 1);
    ck_assert_uint_eq(cfg[10] | cfg[11] << 8, 1400);
    ck_assert_uint_eq(m.features & all_net, all_net);
    mock_virtio_destroy(&m);
}
END_TEST

/* Only the offered bits, and the control-queue ones only with CTRL_VQ. */
START_TEST(negotiation_refusals)
{
    struct mock_virtio m;
    char err[128];
    struct mock_virtio_opts o = { 0 };

    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_net_type, "", err, sizeof(err)), 0);
    mock_virtio_write32(&m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t lo = mock_virtio_read32(&m, VIRTIO_MMIO_DEVICE_FEATURES);
    ck_assert_uint_eq(lo & (1u << 7), 0);           /* GUEST_TSO4 not offered */
    ck_assert_uint_eq(lo & (1u << 21), 0);          /* GUEST_ANNOUNCE not offered */
    o.device_features = VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX);
    ck_assert_int_eq(mock_virtio_negotiate(&m, &o), -EPROTO);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&m), "needs CTRL_VQ"));
    o.device_features = VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
    ck_assert_int_eq(mock_virtio_negotiate(&m, &o), -EPROTO);
    o.device_features = VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX);
    ck_assert_int_eq(mock_virtio_negotiate(&m, &o), 0);
    mock_virtio_destroy(&m);
}
END_TEST

/* A frame sent on the loop backend comes back whole, after a header with num_buffers 1. */
START_TEST(loop_round_trip)
{
    struct mock_virtio m;
    struct host_log h;
    uint8_t f[1514];
    uint32_t id, len;

    net_open(&m, "net=loop", _i, all_net, &h);
    uint64_t rx = post_rx(&m, HDR + 1514, 1);
    make_frame(f, bcast, sizeof(f), 1);
    ck_assert_int_eq(send_frame(&m, f, sizeof(f)), 0);
    ck_assert_uint_eq(h.n_out, 1);
    ck_assert_uint_eq(h.n_in, 1);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
    ck_assert_uint_eq(len, HDR + sizeof(f));
    uint8_t *p = mock_virtio_host(&m, rx, HDR + sizeof(f));
    ck_assert_uint_eq(p[0], 0);                     /* flags */
    ck_assert_uint_eq(p[10] | p[11] << 8, 1);       /* num_buffers */
    ck_assert(memcmp(p + HDR, f, sizeof(f)) == 0);
    ck_assert_int_eq(m.irq_level, 1);
    struct virtio_net_counters c;
    virtio_net_get_counters(m.state, &c);
    ck_assert_uint_eq(c.tx_frames, 1);
    ck_assert_uint_eq(c.rx_frames, 1);
    mock_virtio_destroy(&m);
}
END_TEST

/* MRG_RXBUF: a frame spans several small buffers; with too few it waits, whole, until the
 * driver adds more, and the buffers already looked at are not consumed meanwhile. */
START_TEST(mergeable_buffers)
{
    struct mock_virtio m;
    uint8_t f[1000];
    uint32_t id, len;

    net_open(&m, "net=loop", _i, all_net | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF), NULL);
    uint64_t b0 = post_rx(&m, 256, 0), b1 = post_rx(&m, 256, 0);
    post_rx(&m, 256, 1);
    make_frame(f, bcast, sizeof(f), 2);
    ck_assert_int_eq(send_frame(&m, f, sizeof(f)), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 0);  /* 768 < 1012: waits */
    ck_assert_uint_eq(virtio_net_pending(m.state), 1);
    uint64_t b3 = post_rx(&m, 256, 1);
    uint32_t total = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
        total += len;
    }
    ck_assert_uint_eq(total, HDR + sizeof(f));
    uint8_t *p = mock_virtio_host(&m, b0, 256);
    ck_assert_uint_eq(p[10] | p[11] << 8, 4);       /* num_buffers */
    ck_assert(memcmp(p + HDR, f, 244) == 0);
    ck_assert(memcmp(mock_virtio_host(&m, b1, 256), f + 244, 256) == 0);
    ck_assert(memcmp(mock_virtio_host(&m, b3, 232), f + 244 + 512, 232) == 0);
    ck_assert_uint_eq(virtio_net_pending(m.state), 0);
    mock_virtio_destroy(&m);
}
END_TEST

/* NEEDS_CSUM: the device completes the UDP checksum before the host sees the frame. */
START_TEST(transmit_checksum)
{
    struct mock_virtio m;
    struct host_log h;
    uint8_t f[14 + 20 + 8 + 4] = { 0 }, hdr[HDR] = { 0 };

    net_open(&m, "", _i, all_net, &h);
    memcpy(f, bcast, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x08;
    f[14] = 0x45;
    f[14 + 9] = 17;                                 /* UDP */
    f[14 + 20 + 4] = 0;
    f[14 + 20 + 5] = 12;                            /* UDP length */
    memcpy(f + 42, "ping", 4);
    /* Partial sum left by the driver: here just the pseudo-header's protocol + length. */
    f[14 + 20 + 6] = 0x00;
    f[14 + 20 + 7] = 17 + 12;
    hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    hdr[6] = 34;                                    /* csum_start: the UDP header */
    hdr[8] = 6;                                     /* csum_offset: its checksum field */
    ck_assert_int_eq(transmit(&m, hdr, HDR, f, sizeof(f)), 0);
    ck_assert_uint_eq(h.n_out, 1);
    /* The sum over [34, end) with the stored checksum, plus the driver's partial sum,
     * folds to 0xffff. */
    uint32_t s = 17 + 12;
    for (size_t i = 34; i < sizeof(f); i += 2)
        s += (uint32_t)h.last_out[i] << 8 | h.last_out[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    ck_assert_uint_eq(s, 0xffff);
    /* csum_start beyond the frame: dropped and logged, device alive. */
    hdr[6] = 200;
    ck_assert_int_eq(transmit(&m, hdr, HDR, f, sizeof(f)), 0);
    ck_assert_uint_eq(h.n_out, 1);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&m), "csum_start 200"));
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    mock_virtio_destroy(&m);
}
END_TEST

/* CVE-2020-16843: with no receive buffers the device queues VIRTIO_NET_PENDING frames, the
 * backend holds its own 64, the rest are dropped by the backend; once the guest posts
 * buffers every queued and held frame arrives, in order, and later frames flow again. */
START_TEST(receive_back_pressure)
{
    struct mock_virtio m;
    uint8_t f[64];
    uint32_t id, len;
    const unsigned total = VIRTIO_NET_PENDING + 64 + 10;

    net_open(&m, "net=loop", _i, all_net, NULL);
    for (uint32_t i = 0; i < total; i++) {
        make_frame(f, bcast, sizeof(f), i);
        ck_assert_int_eq(send_frame(&m, f, sizeof(f)), 0);
    }
    ck_assert_uint_eq(virtio_net_pending(m.state), VIRTIO_NET_PENDING);
    struct virtio_net_counters c;
    virtio_net_get_counters(m.state, &c);
    ck_assert_uint_ge(c.rx_refused, 1);
    /* Buffers arrive in batches smaller than the backlog, as a guest refills its ring. */
    uint32_t next = 0;
    for (int round = 0; round < 8 && next < VIRTIO_NET_PENDING + 64; round++) {
        uint64_t a[32];
        for (int i = 0; i < 32; i++)
            a[i] = post_rx(&m, HDR + 64, i == 31);
        for (int i = 0; i < 32; i++) {
            if (mock_vq_get_used(&m, RX, &id, &len) != 1)
                break;
            uint32_t seq;
            ck_assert_uint_eq(len, HDR + 64);
            memcpy(&seq, (uint8_t *)mock_virtio_host(&m, a[i], HDR + 64) + HDR + 14, 4);
            ck_assert_uint_eq(seq, next);
            next++;
        }
    }
    ck_assert_uint_eq(next, VIRTIO_NET_PENDING + 64);
    ck_assert_uint_eq(virtio_net_pending(m.state), 0);
    /* Not stalled: a new frame goes straight through. */
    uint64_t a = post_rx(&m, HDR + 64, 1);
    make_frame(f, bcast, sizeof(f), 999);
    ck_assert_int_eq(send_frame(&m, f, sizeof(f)), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
    uint32_t seq;
    memcpy(&seq, (uint8_t *)mock_virtio_host(&m, a, HDR + 64) + HDR + 14, 4);
    ck_assert_uint_eq(seq, 999);
    mock_virtio_destroy(&m);
}
END_TEST

/* One control command: returns the ack byte, or -1 if none was written. */
static int ctrl(struct mock_virtio *m, uint8_t cls, uint8_t cmd, const void *data, size_t n)
{
    uint64_t a = mock_virtio_alloc(m, 2 + n + 1, 16);
    uint8_t *p = mock_virtio_host(m, a, 2 + n + 1);
    uint32_t len;

    p[0] = cls;
    p[1] = cmd;
    if (n)
        memcpy(p + 2, data, n);
    p[2 + n] = 0xee;
    struct mock_buf b[2] = { { a, (uint32_t)(2 + n), 0 }, { a + 2 + n, 1, 1 } };
    ck_assert_int_ge(mock_vq_request(m, CTRL, b, 2, &len), 0);
    return len == 1 ? p[2 + n] : -1;
}

static int delivered(struct mock_virtio *m, const uint8_t *dst, uint32_t seq)
{
    uint8_t f[64];
    uint32_t id, len;

    post_rx(m, HDR + 64, 1);
    make_frame(f, dst, sizeof(f), seq);
    ck_assert_int_eq(virtio_net_receive(m->state, f, sizeof(f)), 0);
    int got = mock_vq_get_used(m, RX, &id, &len);
    if (!got) {     /* take the buffer back out of the device's hands for the next test */
        make_frame(f, bcast, sizeof(f), seq);
        ck_assert_int_eq(virtio_net_receive(m->state, f, sizeof(f)), 0);
        ck_assert_int_eq(mock_vq_get_used(m, RX, &id, &len), 1);
    }
    return got;
}

START_TEST(control_and_filter)
{
    struct mock_virtio m;
    uint8_t off = 0, on = 1;

    net_open(&m, "", _i, all_net, NULL);
    ck_assert_int_eq(delivered(&m, other_mac, 1), 1);           /* promiscuous after reset */
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
                     VIRTIO_NET_OK);
    ck_assert_int_eq(delivered(&m, other_mac, 2), 0);
    ck_assert_int_eq(delivered(&m, guest_mac, 3), 1);
    ck_assert_int_eq(delivered(&m, bcast, 4), 1);
    static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    ck_assert_int_eq(delivered(&m, mcast, 5), 0);
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
                     VIRTIO_NET_OK);
    ck_assert_int_eq(delivered(&m, mcast, 6), 1);
    /* MAC table: one unicast entry, no multicast. */
    uint8_t tbl[4 + 6 + 4] = { 1, 0, 0, 0 };
    memcpy(tbl + 4, other_mac, 6);
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tbl,
                          sizeof(tbl)), VIRTIO_NET_OK);
    ck_assert_int_eq(delivered(&m, other_mac, 7), 1);
    /* Wrong sizes and unknown classes get VIRTIO_NET_ERR and change nothing. */
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, tbl, 2),
                     VIRTIO_NET_ERR);
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tbl, 9),
                     VIRTIO_NET_ERR);
    ck_assert_int_eq(ctrl(&m, 3, 0, NULL, 0), VIRTIO_NET_ERR);  /* ANNOUNCE: not offered */
    ck_assert_int_eq(ctrl(&m, 0x7f, 0x7f, &on, 1), VIRTIO_NET_ERR);
    ck_assert_int_eq(delivered(&m, other_mac, 8), 1);
    /* MAC_ADDR_SET moves the station address. */
    static const uint8_t newmac[6] = { 0x02, 0, 0, 0, 0, 9 };
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, newmac, 6),
                     VIRTIO_NET_OK);
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_CONFIG) & 0xff, 0x02);
    ck_assert_int_eq(delivered(&m, newmac, 9), 1);
    ck_assert_int_eq(ctrl(&m, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, newmac, 5),
                     VIRTIO_NET_ERR);
    /* No ack byte: dropped, nothing written, device alive. */
    uint64_t a = mock_virtio_alloc(&m, 4, 4);
    uint32_t len;
    struct mock_buf b = { a, 3, 0 };
    ck_assert_int_ge(mock_vq_request(&m, CTRL, &b, 1, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    /* Reset brings back promiscuous mode and the configured address. */
    mock_virtio_reset(&m);
    struct mock_virtio_opts o = { .packed = _i, .device_features = all_net };
    ck_assert_int_eq(mock_virtio_setup(&m, &o), 0);
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_CONFIG) & 0xff, 0x52);
    ck_assert_int_eq(delivered(&m, other_mac, 10), 1);
    mock_virtio_destroy(&m);
}
END_TEST

/* The hostile transmit list: short headers (also split over descriptors), write-only
 * headers, 0-length descriptors, frames over the MTU, GSO without the feature. Each is
 * dropped with a log line, the device stays alive and the next good frame goes out. */
START_TEST(hostile_transmit)
{
    struct mock_virtio m;
    struct host_log h;
    uint8_t f[1600], hdr[HDR] = { 0 };
    uint32_t len;

    net_open(&m, "mtu=1500", _i, all_net, &h);
    make_frame(f, bcast, 60, 0);
    /* Header of 10 bytes and nothing else. */
    ck_assert_int_eq(transmit(&m, hdr, 10, f, 0), 0);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&m), "less than the 12-byte header"));
    /* Header in a device-writable descriptor (8 readable bytes before it). */
    uint64_t a = mock_virtio_alloc(&m, 128, 16);
    struct mock_buf wr[2] = { { a, 8, 0 }, { a + 64, HDR + 60, 1 } };
    ck_assert_int_ge(mock_vq_request(&m, TX, wr, 2, &len), 0);
    /* Whole chain write-only. */
    struct mock_buf wo = { a, 72, 1 };
    ck_assert_int_ge(mock_vq_request(&m, TX, &wo, 1, &len), 0);
    /* 0-length descriptors around a valid header + frame still make a valid frame. */
    memset(mock_virtio_host(&m, a, HDR), 0, HDR);
    memcpy(mock_virtio_host(&m, a + HDR, 60), f, 60);
    struct mock_buf zl[3] = { { a, 0, 0 }, { a, HDR + 60, 0 }, { a, 0, 0 } };
    ck_assert_int_ge(mock_vq_request(&m, TX, zl, 3, &len), 0);
    ck_assert_uint_eq(h.n_out, 1);
    /* Over the MTU (1500 + 18). */
    make_frame(f, bcast, 1519, 1);
    ck_assert_int_eq(transmit(&m, hdr, HDR, f, 1519), 0);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&m), "1519-byte transmit frame"));
    /* GSO not negotiated. */
    hdr[1] = 1;
    ck_assert_int_eq(transmit(&m, hdr, HDR, f, 100), 0);
    hdr[1] = 0;
    ck_assert_uint_eq(h.n_out, 1);
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    ck_assert_int_eq(transmit(&m, hdr, HDR, f, 1518), 0);
    ck_assert_uint_eq(h.n_out, 2);
    struct virtio_net_counters c;
    virtio_net_get_counters(m.state, &c);
    ck_assert_uint_eq(c.tx_dropped, 5);
    mock_virtio_destroy(&m);
}
END_TEST

/* Receive side: a frame bigger than the (non-mergeable) buffer is dropped and the buffer
 * kept; frames from the host over the MTU are dropped; a receive buffer with readable
 * descriptors or shorter than the header breaks the device (NEEDS_RESET), nothing written. */
START_TEST(hostile_receive)
{
    struct mock_virtio m;
    uint8_t f[1600];
    uint32_t id, len;

    net_open(&m, "", _i, all_net, NULL);
    uint64_t small = post_rx(&m, HDR + 100, 1);
    make_frame(f, bcast, 200, 1);
    ck_assert_int_eq(virtio_net_receive(m.state, f, 200), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 0);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&m), "200-byte frame does not fit"));
    make_frame(f, bcast, 90, 2);
    ck_assert_int_eq(virtio_net_receive(m.state, f, 90), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
    ck_assert(memcmp((uint8_t *)mock_virtio_host(&m, small, HDR + 90) + HDR, f, 90) == 0);
    ck_assert_int_eq(virtio_net_receive(m.state, f, 1519), -EMSGSIZE);
    ck_assert_int_eq(virtio_net_receive(m.state, f, 13), -EMSGSIZE);
    /* A receive buffer the device may only read. */
    uint64_t a = mock_virtio_alloc(&m, 256, 16);
    memset(mock_virtio_host(&m, a, 256), 0xaa, 256);
    struct mock_buf ro = { a, 256, 0 };
    ck_assert_int_ge(mock_vq_add(&m, RX, &ro, 1), 0);
    mock_vq_kick(&m, RX);
    ck_assert_int_eq(virtio_net_receive(m.state, f, 90), 0);
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET,
                      VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&m), "device-readable"));
    uint8_t *p = mock_virtio_host(&m, a, 256);
    for (int i = 0; i < 256; i++)
        ck_assert_uint_eq(p[i], 0xaa);
    /* The broken device takes nothing more. */
    ck_assert_int_eq(virtio_net_receive(m.state, f, 90), 0);
    mock_virtio_destroy(&m);

    /* A first receive buffer shorter than the header. */
    net_open(&m, "", _i, all_net | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF), NULL);
    post_rx(&m, 8, 1);
    ck_assert_int_eq(virtio_net_receive(m.state, f, 90), 0);
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET,
                      VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    mock_virtio_destroy(&m);
}
END_TEST

/* Ring-level abuse reaches the core's checks through this device too: avail.idx far ahead
 * (rust-vmm vm-virtio #196), out-of-RAM buffers, QueueSel out of range then every queue
 * register (cloud-hypervisor #7917). */
START_TEST(hostile_rings)
{
    struct mock_virtio m;

    net_open(&m, "net=loop", 0, all_net, NULL);
    mock_vq_split_set_avail_idx(&m, TX, 1000);
    mock_vq_kick(&m, TX);
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET,
                      VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    mock_virtio_destroy(&m);

    net_open(&m, "net=loop", 0, all_net, NULL);
    mock_vq_split_write_desc(&m, TX, 0, 0xfffffff000ull, 64, 0, 0);
    mock_vq_split_publish(&m, TX, 0);
    mock_vq_kick(&m, TX);
    ck_assert_uint_eq(status(&m) & VIRTIO_STATUS_DEVICE_NEEDS_RESET,
                      VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    mock_virtio_destroy(&m);

    net_open(&m, "net=loop", _i, all_net, NULL);
    static const uint32_t regs[] = { VIRTIO_MMIO_QUEUE_NUM_MAX, VIRTIO_MMIO_QUEUE_NUM,
        VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DESC_HIGH,
        VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_DRIVER_HIGH,
        VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, VIRTIO_MMIO_QUEUE_RESET };
    static const uint32_t sels[] = { 3, 7, 8, 255, 0xffffffffu };
    for (unsigned s = 0; s < sizeof(sels) / sizeof(sels[0]); s++) {
        mock_virtio_write32(&m, VIRTIO_MMIO_QUEUE_SEL, sels[s]);
        for (unsigned r = 0; r < sizeof(regs) / sizeof(regs[0]); r++) {
            ck_assert_uint_eq(mock_virtio_read32(&m, regs[r]), 0);
            mock_virtio_write32(&m, regs[r], 0x1000);
        }
        mock_virtio_write32(&m, VIRTIO_MMIO_QUEUE_NOTIFY, sels[s]);
    }
    /* Queues 0..2 untouched: traffic still flows. */
    uint32_t id, len;
    uint8_t f[60];
    post_rx(&m, HDR + 60, 1);
    make_frame(f, bcast, 60, 5);
    ck_assert_int_eq(send_frame(&m, f, 60), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(bad_arguments)
{
    struct mock_virtio m;
    char err[256];
    static const struct { const char *args, *msg; } bad[] = {
        { "mac=01:00:5e:00:00:01", "mac=01:00:5e:00:00:01 is not a unicast" },
        { "mac=52:54:00:12:34", "mac=52:54:00:12:34 is not" },
        { "mtu=67", "mtu=67 is outside 68..9000" },
        { "mtu=9001", "mtu=9001 is outside" },
        { "mtu=15x", "mtu=15x is outside" },
        { "net=bogus", "net=bogus is not one of" },
        { "net=loop,hostfwd=tcp:1-:2", "needs net=user" },
        { "net=user,hostfwd=tcp:99999-:80", "hostfwd=tcp:99999-:80 is not" },
        { "net=user,hostfwd=tcp:1.2.3:80-:80", "hostfwd=tcp:1.2.3:80-:80 is not" },
        { "net=user,restrict=maybe", "restrict=maybe is not on or off" },
        { "tapfd=12345", "tapfd=12345 is not an open file descriptor" },
        { "tap=x,net=user", "cannot be combined" },
        { "speed=10", "speed" },
    };
    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        ck_assert_int_lt(mock_virtio_create(&m, &virtio_net_type, bad[i].args, err,
                                            sizeof(err)), 0);
        ck_assert_msg(strstr(err, bad[i].msg), "%s: got '%s'", bad[i].args, err);
    }
    mock_virtio_destroy(&m);
}
END_TEST

/* libslirp on the mock's clock: an ARP request for the gateway gets slirp's reply, and an
 * ICMP echo to it comes back, with no host sockets involved. */
static uint16_t ip_sum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

START_TEST(slirp_arp_and_ping)
{
    struct mock_virtio m;
    uint8_t f[98] = { 0 };
    uint32_t id, len;
    static const uint8_t me[4] = { 10, 0, 2, 15 }, gw[4] = { 10, 0, 2, 2 };

    net_open(&m, "net=user", 0, all_net, NULL);
    uint64_t rx = post_rx(&m, HDR + 1514, 0);
    uint64_t rx2 = post_rx(&m, HDR + 1514, 1);
    /* ARP who-has 10.0.2.2 tell 10.0.2.15 */
    memcpy(f, bcast, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x08, f[13] = 0x06;
    f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0, f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;
    memcpy(f + 22, guest_mac, 6);
    memcpy(f + 28, me, 4);
    memcpy(f + 38, gw, 4);
    ck_assert_int_eq(send_frame(&m, f, 60), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
    uint8_t *r = (uint8_t *)mock_virtio_host(&m, rx, HDR + 60) + HDR;
    ck_assert_uint_eq(r[12] << 8 | r[13], 0x0806);
    ck_assert_uint_eq(r[21], 2);                                /* ARP reply */
    ck_assert(memcmp(r + 28, gw, 4) == 0);
    uint8_t gw_mac[6];
    memcpy(gw_mac, r + 22, 6);
    /* ICMP echo request to the gateway. */
    memset(f, 0, sizeof(f));
    memcpy(f, gw_mac, 6);
    memcpy(f + 6, guest_mac, 6);
    f[12] = 0x08;
    uint8_t *ip = f + 14;
    ip[0] = 0x45, ip[3] = 84, ip[8] = 64, ip[9] = 1;
    memcpy(ip + 12, me, 4);
    memcpy(ip + 16, gw, 4);
    uint16_t s = ip_sum(ip, 20);
    ip[10] = (uint8_t)(s >> 8), ip[11] = (uint8_t)s;
    uint8_t *icmp = ip + 20;
    icmp[0] = 8, icmp[5] = 1, icmp[7] = 1;
    memcpy(icmp + 8, "vmlab-ping", 10);
    s = ip_sum(icmp, 64);
    icmp[2] = (uint8_t)(s >> 8), icmp[3] = (uint8_t)s;
    ck_assert_int_eq(send_frame(&m, f, 98), 0);
    mock_virtio_advance(&m, 10000000);
    ck_assert_int_eq(mock_vq_get_used(&m, RX, &id, &len), 1);
    /* The second buffer holds the echo reply. */
    uint8_t *e = (uint8_t *)mock_virtio_host(&m, rx2, HDR + 98) + HDR;
    if (len == HDR + 98 && e[12] == 0x08 && e[23] == 1) {
        ck_assert_uint_eq(e[34], 0);                            /* echo reply */
        ck_assert(memcmp(e + 42, "vmlab-ping", 10) == 0);
    } else {
        ck_abort_msg("no echo reply (len %u)", len);
    }
    mock_virtio_destroy(&m);
}
END_TEST

/* Snapshot: frames waiting for receive buffers, the MAC the driver set and the filter are
 * saved; a device rebuilt from the same args and loaded delivers the same frames, in order,
 * once the guest posts buffers. A snapshot from a device with another MTU is refused. */
static void save_to(struct mock_virtio *m, const char *path)
{
    struct snapshot_writer w;
    char err[256] = "";

    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "DEV ");
    ck_assert_int_eq(virtio_net_type.save(m->state, &w, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);
}

static int load_from(struct mock_virtio *m, const char *path, char *err, size_t errlen)
{
    struct snapshot_reader r;

    ck_assert_int_eq(snapshot_reader_open(&r, path, err, errlen), 0);
    ck_assert_int_eq(snapshot_next(&r, "DEV ", err, errlen), 0);
    int rc = virtio_net_type.load(m->state, &r, err, errlen);
    snapshot_reader_close(&r);
    return rc;
}

START_TEST(snapshot_keeps_pending_frames)
{
    char path[] = "/tmp/vmlab-net-snap-XXXXXX", err[256] = "";
    int fd = mkstemp(path);
    struct mock_virtio a, b, c;
    uint8_t f[80];
    uint32_t id, len;

    ck_assert_int_ge(fd, 0);
    close(fd);
    net_open(&a, "net=loop", _i, all_net, NULL);
    for (uint32_t i = 0; i < 5; i++) {
        make_frame(f, bcast, 60 + 4 * i, i);
        ck_assert_int_eq(send_frame(&a, f, 60 + 4 * i), 0);
    }
    ck_assert_uint_eq(virtio_net_pending(a.state), 5);
    save_to(&a, path);

    net_open(&b, "net=loop", _i, all_net, NULL);
    memcpy(b.ram, a.ram, a.ram_size);
    memcpy(b.vqs, a.vqs, sizeof(a.vqs));
    b.heap = a.heap;
    ck_assert_msg(load_from(&b, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(virtio_net_pending(b.state), 5);
    ck_assert_int_eq(b.irq_raises, 0);                  /* load itself raises nothing */
    for (uint32_t i = 0; i < 5; i++) {
        uint64_t buf = post_rx(&b, HDR + 128, 1);
        ck_assert_int_eq(mock_vq_get_used(&b, RX, &id, &len), 1);
        ck_assert_uint_eq(len, HDR + 60 + 4 * i);
        uint32_t seq;
        memcpy(&seq, (uint8_t *)mock_virtio_host(&b, buf, len) + HDR + 14, 4);
        ck_assert_uint_eq(seq, i);
    }
    ck_assert_uint_eq(virtio_net_pending(b.state), 0);
    /* And it still carries traffic: a frame sent now comes back at once. */
    uint64_t buf = post_rx(&b, HDR + 128, 1);
    make_frame(f, bcast, 64, 77);
    ck_assert_int_eq(send_frame(&b, f, 64), 0);
    ck_assert_int_eq(mock_vq_get_used(&b, RX, &id, &len), 1);
    ck_assert(memcmp((uint8_t *)mock_virtio_host(&b, buf, len) + HDR, f, 64) == 0);

    net_open(&c, "net=loop,mtu=1400", _i, all_net, NULL);
    memcpy(c.ram, a.ram, a.ram_size);
    ck_assert_int_eq(load_from(&c, path, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "mtu 1500") && strstr(err, "mtu=1400"), "%s", err);
    mock_virtio_destroy(&a);
    mock_virtio_destroy(&b);
    mock_virtio_destroy(&c);
    unlink(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_net");
    TCase *t = tcase_create("net");

    tcase_add_loop_test(t, config_and_features, 0, 2);
    tcase_add_test(t, negotiation_refusals);
    tcase_add_loop_test(t, loop_round_trip, 0, 2);
    tcase_add_loop_test(t, mergeable_buffers, 0, 2);
    tcase_add_loop_test(t, transmit_checksum, 0, 2);
    tcase_add_loop_test(t, receive_back_pressure, 0, 2);
    tcase_add_loop_test(t, control_and_filter, 0, 2);
    tcase_add_loop_test(t, hostile_transmit, 0, 2);
    tcase_add_loop_test(t, hostile_receive, 0, 2);
    tcase_add_loop_test(t, hostile_rings, 0, 2);
    tcase_add_test(t, bad_arguments);
    tcase_add_test(t, slirp_arp_and_ping);
    tcase_add_loop_test(t, snapshot_keeps_pending_frames, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
