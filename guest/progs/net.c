/* net: DHCP against user-mode networking (libslirp on vmlab, QEMU's -netdev user), ARP for
 * the gateway, then count= pings of the gateway, printing each round trip and a summary:
 *   net: mac 52:54:00:12:34:56
 *   net: dhcp offer 10.0.2.15 from 10.0.2.2
 *   net: dhcp ack 10.0.2.15 [router 10.0.2.2 dns 10.0.2.3: not from a restricted slirp]
 *   net: arp 10.0.2.2 is 52:55:0a:00:02:02
 *   net: ping 10.0.2.2 seq=1 ttl=255 bytes=64 rtt=... ns
 *   net: ping 4 sent 4 received rtt min/median/max ... ns
 * Everything but the rtt values is the same on every VMM with the same network. rtt uses
 * the TSC (rt_tsc_khz; cycles when unknown). Options: count=N (1..1000, default 4),
 * mrg=1 (negotiate MRG_RXBUF), csum=1 (negotiate GUEST_CSUM), flood=N (see flood_test; needs --net loop), ip=A gw=B
 * (a static address instead of DHCP, e.g. on a TAP), and the ring options of every virtio
 * program. The IPv4 layer (DHCP, ARP, framing) is vinet.c's. */
#include "rt.h"
#include "vinet.h"
#include "virtio.h"
#include "vnet.h"

#define MAX_COUNT 1000

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static struct vnet net;
static struct vinet inet;
static uint8_t reply[VNET_BUF];
static uint64_t rtts[MAX_COUNT];

/* ---- ICMP echo ---- */

static int ping(uint16_t seq, uint64_t *cycles, unsigned *ttl)
{
    uint8_t *icmp = vinet_ip_frame(&inet, inet.gw_mac, inet.ip, inet.gw, 1, 64,
                                   (uint16_t)(0x100 + seq));
    icmp[0] = 8;
    vinet_put16(icmp + 4, 0x766d);
    vinet_put16(icmp + 6, seq);
    for (int i = 8; i < 64; i++)
        icmp[i] = (uint8_t)(i + seq);
    vinet_put16(icmp + 2, vinet_sum(icmp, 64));
    uint64_t t0 = rt_rdtsc();
    GUEST_ASSERT(vnet_send(&net, inet.frame, 14 + 20 + 64) == 0);
    for (;;) {
        int n = vnet_recv(&net, reply, sizeof(reply), VINET_SPINS);
        if (n < 0)
            return -1;
        const uint8_t *ip = reply + 14, *r = ip + 20;
        vinet_arp_answer(&inet, reply, n);
        if (n >= 14 + 20 + 64 && vinet_get16(reply + 12) == 0x0800 && ip[9] == 1 &&
            r[0] == 0 && vinet_get16(r + 4) == 0x766d && vinet_get16(r + 6) == seq &&
            !memcmp(r + 8, icmp + 8, 56)) {
            *cycles = rt_rdtsc() - t0;
            *ttl = ip[8];
            return 0;
        }
    }
}

static uint64_t to_ns(uint64_t cycles, uint64_t khz)
{
    return khz ? cycles * 1000000ull / khz : cycles;
}

/* flood=N, on a loop backend (every frame sent comes back): N frames sent while the guest
 * takes none back, so its receive ring, then the device's queue, then the backend's fill;
 * then everything that was kept must arrive, in order, and a frame sent afterwards too:
 * receive never stalls for good (Firecracker CVE-2020-16843). */
static int flood_test(uint64_t n)
{
    uint8_t *frame = inet.frame;
    uint32_t next = 0, seq;

    for (uint32_t i = 0; i < n; i++) {
        memset(frame, 0, 60);
        memcpy(frame, bcast, 6);
        memcpy(frame + 6, net.mac, 6);
        vinet_put16(frame + 12, 0x88b5);
        memcpy(frame + 14, &i, 4);
        GUEST_ASSERT(vnet_send(&net, frame, 60) == 0);
    }
    for (;;) {
        int len = vnet_recv(&net, reply, sizeof(reply), VINET_SPINS / 100);
        if (len < 0)
            break;
        memcpy(&seq, reply + 14, 4);
        if (len != 60 || seq != next) {
            printf("net: flood: frame %u arrived where %u was due\n", seq, next);
            return 1;
        }
        next++;
    }
    printf("net: flood: %llu sent, the first %u came back in order\n", (unsigned long long)n,
           next);
    seq = 0xffffffffu;
    memcpy(frame + 14, &seq, 4);
    GUEST_ASSERT(vnet_send(&net, frame, 60) == 0);
    int len = vnet_recv(&net, reply, sizeof(reply), VINET_SPINS);
    if (len != 60 || memcmp(reply + 14, &seq, 4)) {
        printf("net: flood: receive stalled: the frame sent afterwards did not arrive\n");
        return 1;
    }
    printf("net: flood: a frame sent afterwards arrived: receive did not stall\n");
    printf("net: done\n");
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint64_t count = virtio_cmdline_u64("count", 4), mrg = virtio_cmdline_u64("mrg", 0);
    if (count < 1 || count > MAX_COUNT) {
        printf("net: bad count=%llu (1..%u)\n", (unsigned long long)count, MAX_COUNT);
        return 2;
    }
    struct virtio_mmio_loc loc;
    if (virtio_find(VIRTIO_ID_NET, 0, &loc)) {
        printf("net: no virtio-net device found\n");
        return 1;
    }
    printf("virtio: net at 0x%llx irq %u (%s)\n", (unsigned long long)loc.base, loc.irq,
           virtio_loc_source_name(loc.source));
    if (vnet_init(&net, &loc, &o, mrg != 0, virtio_cmdline_u64("csum", 0) != 0))
        return 1;
    virtio_dev_describe(&net.dev, "net");
    vinet_print_mac("net: mac ", net.mac);
    printf("\n");

    uint64_t flood = virtio_cmdline_u64("flood", 0);
    inet.net = &net;
    if (flood)
        return flood_test(flood);

    int rc = vinet_up(&inet, &net);
    if (rc)
        return rc;

    uint64_t khz = rt_tsc_khz(), received = 0;
    const char *unit = khz ? "ns" : "cycles";
    for (uint16_t seq = 1; seq <= count; seq++) {
        uint64_t c;
        unsigned ttl;
        if (ping(seq, &c, &ttl)) {
            printf("net: ping seq=%u lost\n", seq);
            continue;
        }
        rtts[received++] = to_ns(c, khz);
        vinet_print_ip("net: ping ", inet.gw);
        printf(" seq=%u ttl=%u bytes=64 rtt=%llu %s\n", seq, ttl,
               (unsigned long long)rtts[received - 1], unit);
    }
    /* insertion sort: count is small */
    for (uint64_t i = 1; i < received; i++)
        for (uint64_t j = i; j > 0 && rtts[j - 1] > rtts[j]; j--) {
            uint64_t t = rtts[j];
            rtts[j] = rtts[j - 1];
            rtts[j - 1] = t;
        }
    printf("net: ping %llu sent %llu received", (unsigned long long)count,
           (unsigned long long)received);
    if (received)
        printf(" rtt min/median/max %llu/%llu/%llu %s", (unsigned long long)rtts[0],
               (unsigned long long)rtts[received / 2], (unsigned long long)rtts[received - 1],
               unit);
    printf("\n");
    if (received != count)
        return 1;
    printf("net: done\n");
    return 0;
}
