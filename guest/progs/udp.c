/* udp: UDP through user-mode networking to a peer on the host (guest/virtio/udp_peer.py;
 * slirp, vmlab's --net user,restrict=off or QEMU's -netdev user, turns 10.0.2.2:PORT into
 * the host's 127.0.0.1:PORT). After DHCP and ARP (vinet.c):
 *   net: udp echo 10.0.2.2:PORT seq=1 bytes=64 rtt=... ns      count= round trips
 *   net: udp echo 10 sent 10 received rtt min/median/p99/max .../.../.../... ns
 *   net: udp tx 1000 datagrams of 1472 bytes: host got 1000 in ... ns, ... KiB/s
 *   net: udp rx 1000 datagrams of 1472 bytes: 1000 arrived in ... ns, ... KiB/s
 *   net: done
 * Each echo request carries a pattern the reply must bring back byte for byte. tx=N sends
 * N datagrams in windows of WINDOW, each window acknowledged by the peer with its count;
 * rx=N asks the peer for windows of WINDOW datagrams and takes them (a window's end marker
 * lost counts the rest of the window lost). Options: port= (the peer's, required), count=
 * (0..1000, default 10), size= (echo payload, 8..1472, default 64), tx=, rx= (default 0),
 * ip=/gw= (vinet_up), and the ring options of every virtio program. Times use the TSC
 * (rt_tsc_khz; cycles when unknown). */
#include "rt.h"
#include "sort.h"
#include "vinet.h"
#include "virtio.h"
#include "vnet.h"

#define MAX_COUNT 1000
#define WINDOW 16
#define SPORT 40000                 /* the guest's own port */

static struct vnet net;
static struct vinet inet;
static uint8_t msg[VINET_UDP_MAX];
static uint64_t rtts[MAX_COUNT];
static uint16_t peer_port;
static uint64_t khz;

static uint64_t to_ns(uint64_t cycles)
{
    return khz ? cycles * 1000000ull / khz : cycles;
}

static void put32(uint8_t *p, uint32_t v)
{
    vinet_put16(p, (uint16_t)(v >> 16));
    vinet_put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)vinet_get16(p) << 16 | vinet_get16(p + 2);
}

static int send_msg(uint16_t len)
{
    return vinet_udp_send(&inet, inet.gw, SPORT, peer_port, msg, len);
}

/* One echo round trip of `size` bytes; 0 with the cycles taken, -1 when lost. */
static int echo(uint32_t seq, uint16_t size, uint64_t *cycles)
{
    msg[0] = 'E';
    put32(msg + 1, seq);
    for (uint16_t i = 5; i < size; i++)
        msg[i] = (uint8_t)(i * 7 + seq);
    uint64_t t0 = rt_rdtsc();
    GUEST_ASSERT(send_msg(size) == 0);
    for (;;) {
        const uint8_t *d;
        int n = vinet_udp_recv(&inet, SPORT, &d, VINET_SPINS);
        if (n < 0)
            return -1;
        if (n == size && !memcmp(d, msg, size)) {
            *cycles = rt_rdtsc() - t0;
            return 0;
        }
    }
}

static const char *unit(void) { return khz ? "ns" : "cycles"; }

/* KiB/s of `bytes` in `cycles`; 0 without a TSC rate. */
static uint64_t kib_per_s(uint64_t bytes, uint64_t cycles)
{
    uint64_t ns = to_ns(cycles);
    return khz && ns ? bytes * 1000000000ull / 1024 / ns : 0;
}

/* The tx/rx result line; 0 when all n came through. */
static int bulk_report(const char *dir, const char *got_what, uint64_t n, uint64_t got,
                       uint64_t cycles)
{
    printf("net: udp %s %llu datagrams of %u bytes: %s%llu%s in %llu %s, %llu KiB/s\n", dir,
           (unsigned long long)n, VINET_UDP_MAX, *dir == 't' ? "host got " : "",
           (unsigned long long)got, got_what, (unsigned long long)to_ns(cycles), unit(),
           (unsigned long long)kib_per_s(got * VINET_UDP_MAX, cycles));
    return got == n ? 0 : 1;
}

static int echo_test(uint64_t count, uint16_t size)
{
    uint64_t received = 0;

    for (uint32_t seq = 1; seq <= count; seq++) {
        uint64_t c;
        if (echo(seq, size, &c)) {
            printf("net: udp echo seq=%u lost\n", seq);
            continue;
        }
        rtts[received++] = to_ns(c);
        vinet_print_ip("net: udp echo ", inet.gw);
        printf(":%u seq=%u bytes=%u rtt=%llu %s\n", peer_port, seq, size,
               (unsigned long long)rtts[received - 1], unit());
    }
    rt_sort_u64(rtts, received);
    printf("net: udp echo %llu sent %llu received", (unsigned long long)count,
           (unsigned long long)received);
    if (received)
        printf(" rtt min/median/p99/max %llu/%llu/%llu/%llu %s",
               (unsigned long long)rtts[0], (unsigned long long)rtts[received / 2],
               (unsigned long long)rtts[received * 99 / 100],
               (unsigned long long)rtts[received - 1], unit());
    printf("\n");
    return received == count ? 0 : 1;
}

/* The peer's answer to 'Q': how many sink datagrams it got since the last 'Q'. */
static int query(uint32_t *got)
{
    msg[0] = 'Q';
    GUEST_ASSERT(send_msg(1) == 0);
    for (;;) {
        const uint8_t *d;
        int n = vinet_udp_recv(&inet, SPORT, &d, VINET_SPINS);
        if (n < 0)
            return -1;
        if (n == 5 && d[0] == 'Q') {
            *got = get32(d + 1);
            return 0;
        }
    }
}

static int tx_test(uint64_t n)
{
    uint64_t got = 0;
    uint32_t w;

    memset(msg, 0x5a, sizeof(msg));
    uint64_t t0 = rt_rdtsc();
    for (uint64_t sent = 0; sent < n; sent += w) {
        w = n - sent < WINDOW ? (uint32_t)(n - sent) : WINDOW;
        msg[0] = 'S';               /* (query() leaves a Q there) */
        for (uint32_t i = 0; i < w; i++)
            GUEST_ASSERT(send_msg(VINET_UDP_MAX) == 0);
        uint32_t g;
        if (query(&g)) {
            printf("net: udp tx: the peer's count was lost\n");
            return 1;
        }
        got += g;
    }
    return bulk_report("tx", "", n, got, rt_rdtsc() - t0);
}

static int rx_test(uint64_t n)
{
    uint64_t got = 0;
    uint32_t w;

    uint64_t t0 = rt_rdtsc();
    for (uint64_t asked = 0; asked < n; asked += w) {
        w = n - asked < WINDOW ? (uint32_t)(n - asked) : WINDOW;
        msg[0] = 'B';
        put32(msg + 1, w);
        vinet_put16(msg + 5, VINET_UDP_MAX);
        GUEST_ASSERT(send_msg(7) == 0);
        for (;;) {
            const uint8_t *d;
            int len = vinet_udp_recv(&inet, SPORT, &d, VINET_SPINS);
            if (len < 0)
                break;              /* the end marker was lost: so was the rest */
            if (len == VINET_UDP_MAX && d[0] == 'b')
                got++;
            else if (len == 5 && d[0] == 'F')
                break;
        }
    }
    return bulk_report("rx", " arrived", n, got, rt_rdtsc() - t0);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint64_t port = virtio_cmdline_u64("port", 0), count = virtio_cmdline_u64("count", 10);
    uint64_t size = virtio_cmdline_u64("size", 64), tx = virtio_cmdline_u64("tx", 0);
    uint64_t rx = virtio_cmdline_u64("rx", 0);
    if (port < 1 || port > 65535 || count > MAX_COUNT || size < 8 || size > VINET_UDP_MAX ||
        tx > 1000000 || rx > 1000000) {
        printf("net: bad port=%llu count=%llu size=%llu tx=%llu rx=%llu (port= 1..65535 is "
               "required; count 0..%u, size 8..%u, tx and rx 0..1000000)\n",
               (unsigned long long)port, (unsigned long long)count, (unsigned long long)size,
               (unsigned long long)tx, (unsigned long long)rx, MAX_COUNT, VINET_UDP_MAX);
        return 2;
    }
    peer_port = (uint16_t)port;
    khz = rt_tsc_khz();
    struct virtio_mmio_loc loc;
    if (virtio_find(VIRTIO_ID_NET, 0, &loc)) {
        printf("net: no virtio-net device found\n");
        return 1;
    }
    if (vnet_init(&net, &loc, &o, 0, 0))
        return 1;
    vinet_print_mac("net: mac ", net.mac);
    printf("\n");
    int rc = vinet_up(&inet, &net);
    if (rc)
        return rc;
    if (count)
        rc |= echo_test(count, (uint16_t)size);
    if (tx)
        rc |= tx_test(tx);
    if (rx)
        rc |= rx_test(rx);
    if (!rc)
        printf("net: done\n");
    return rc;
}
