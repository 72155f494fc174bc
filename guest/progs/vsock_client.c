/* vsock_client: connects to the host (CID 2) on port= (default 5000) over virtio-vsock and
 * measures round trips against an echo server there: for 64 B, 4 KiB and 64 KiB messages,
 * n= rounds each (default 100, at most 1000) after n/10 + 1 warm-up rounds, each message
 * sent in full (within the host's credit) and read back in full, byte-checked. Prints one
 * RESULT line per size: min/median/p90/p99/max in TSC ticks, and in ns when the TSC rate is
 * known. Exits 0; 3 when the connection is refused (nothing listens: RST). Halts between
 * packets on a CPU-timer tick (tick=, see vvsock_idle_start). */
#include "rt.h"
#include "sort.h"
#include "vvsock.h"

#define NMAX 1000u
#define LOCAL_PORT 40000u
#define BUF (64u * 1024)

static struct vvsock vs;
static uint64_t lat[NMAX];
static uint8_t msg[BUF], pkt[VVSOCK_RX_DATA];
static uint32_t port;
static uint32_t peer_alloc, peer_fwd, tx_cnt, fwd_cnt;

static void send(uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
    struct vsock_hdr h = { .dst_cid = VSOCK_CID_HOST, .src_port = LOCAL_PORT, .dst_port = port,
                           .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
                           .buf_alloc = BUF, .fwd_cnt = fwd_cnt };
    vvsock_send(&vs, &h, data, len);
    tx_cnt += len;
}

/* The next packet of our connection (others are ignored). */
static void recv(struct vsock_hdr *h)
{
    for (;;) {
        if (!vvsock_poll(&vs, h, pkt)) {
            vvsock_idle(&vs);
            continue;
        }
        if (h->src_cid != VSOCK_CID_HOST || h->dst_port != LOCAL_PORT || h->src_port != port)
            continue;
        peer_alloc = h->buf_alloc;
        peer_fwd = h->fwd_cnt;
        return;
    }
}

/* One round trip of len bytes; returns its TSC ticks. */
static uint64_t one(uint32_t len, uint8_t seed)
{
    uint32_t sent = 0, got = 0;
    struct vsock_hdr h;

    for (uint32_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(seed + i * 7);
    uint64_t t0 = rt_rdtsc();
    while (got < len) {
        uint32_t credit = peer_alloc - (tx_cnt - peer_fwd);
        uint32_t n = len - sent < VVSOCK_TX_DATA ? len - sent : VVSOCK_TX_DATA;
        if (n > credit)
            n = credit;
        if (n) {
            send(VSOCK_OP_RW, 0, msg + sent, n);
            sent += n;
            continue;
        }
        recv(&h);
        if (h.op == VSOCK_OP_RW) {
            GUEST_ASSERT(got + h.len <= len);
            GUEST_ASSERT_EQ(memcmp(pkt, msg + got, h.len), 0);
            got += h.len;
            fwd_cnt += h.len;
            if (got < len && fwd_cnt % (BUF / 2) < h.len)
                send(VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
        } else if (h.op == VSOCK_OP_CREDIT_REQUEST) {
            send(VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
        } else if (h.op != VSOCK_OP_CREDIT_UPDATE) {
            printf("vsock_client: op %u from the host mid-message\n", h.op);
            rt_exit(1);
        }
    }
    return rt_rdtsc() - t0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    port = (uint32_t)virtio_cmdline_u64("port", 5000);
    uint64_t n = virtio_cmdline_u64("n", 100);
    if (n == 0 || n > NMAX) {
        printf("vsock_client: bad n=%llu (1..%u)\n", (unsigned long long)n, NMAX);
        return 2;
    }
    if (vvsock_open(&vs, &o))
        return 1;
    if (vvsock_idle_start(&vs))
        return 2;
    struct vsock_hdr h;
    uint64_t c0 = rt_rdtsc();
    send(VSOCK_OP_REQUEST, 0, NULL, 0);
    recv(&h);
    uint64_t connect_t = rt_rdtsc() - c0;
    if (h.op == VSOCK_OP_RST) {
        printf("vsock_client: connection to host port %u refused\n", port);
        return 3;
    }
    GUEST_ASSERT_EQ(h.op, VSOCK_OP_RESPONSE);
    uint64_t khz = rt_tsc_khz();
    printf("vsock_client: connected to host port %u in %llu ticks\n", port,
           (unsigned long long)connect_t);
    static const uint32_t sizes[3] = { 64, 4096, 65536 };
    for (int s = 0; s < 3; s++) {
        for (uint64_t i = 0; i < n / 10 + 1; i++)
            one(sizes[s], (uint8_t)i);
        for (uint64_t i = 0; i < n; i++)
            lat[i] = one(sizes[s], (uint8_t)(i + 1));
        rt_sort_u64(lat, n);
        uint64_t v[5] = { lat[0], lat[n / 2], lat[n * 90 / 100], lat[n * 99 / 100], lat[n - 1] };
        static const char *const name[5] = { "min", "median", "p90", "p99", "max" };
        printf("RESULT size=%u n=%llu", sizes[s], (unsigned long long)n);
        if (khz)
            for (int i = 0; i < 5; i++)
                printf(" %s_ns=%llu", name[i], (unsigned long long)(v[i] * 1000000 / khz));
        for (int i = 0; i < 5; i++)
            printf(" %s_t=%llu", name[i], (unsigned long long)v[i]);
        printf("\n");
    }
    send(VSOCK_OP_SHUTDOWN, 3, NULL, 0);
    do
        recv(&h);
    while (h.op != VSOCK_OP_RST);
    vvsock_idle_stop(&vs);
    printf("vsock_client: done\n");
    return 0;
}
