/* net: DHCP against user-mode networking (libslirp on vmlab, QEMU's -netdev user), ARP for
 * the gateway, then count= pings of the gateway (answering ARP requests for its address
 * meanwhile), printing each round trip and a summary:
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
 * program. */
#include "rt.h"
#include "virtio.h"
#include "vnet.h"

#define SPINS 20000000ull           /* polls before a reply counts as lost */
#define MAX_COUNT 1000
#define XID 0x766d6c62u             /* "vmlb" */

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static struct vnet net;
static uint8_t frame[VNET_BUF], reply[VNET_BUF];
static uint64_t rtts[MAX_COUNT];

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint16_t inet_sum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)get16(p + i);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void print_ip(const char *pre, const uint8_t *ip)
{
    printf("%s%u.%u.%u.%u", pre, ip[0], ip[1], ip[2], ip[3]);
}

static void print_mac(const char *pre, const uint8_t *m)
{
    printf("%s%02x:%02x:%02x:%02x:%02x:%02x", pre, m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Ethernet + IPv4 header; returns the IP payload pointer. */
static uint8_t *ip_frame(const uint8_t *dst_mac, const uint8_t *src_ip, const uint8_t *dst_ip,
                         uint8_t proto, uint16_t payload, uint16_t id)
{
    memset(frame, 0, sizeof(frame));
    memcpy(frame, dst_mac, 6);
    memcpy(frame + 6, net.mac, 6);
    put16(frame + 12, 0x0800);
    uint8_t *ip = frame + 14;
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + payload));
    put16(ip + 4, id);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, src_ip, 4);
    memcpy(ip + 16, dst_ip, 4);
    put16(ip + 10, inet_sum(ip, 20));
    return ip + 20;
}

/* ---- DHCP (RFC 2131) ---- */

struct lease {
    uint8_t ip[4], server[4], router[4], dns[4];
};

static uint32_t dhcp_send(int type, const struct lease *l)
{
    static const uint8_t zero[4], all[4] = { 255, 255, 255, 255 };
    uint16_t len = 8 + 240 + 16;
    uint8_t *udp = ip_frame(bcast, zero, all, 17, len, (uint16_t)type);
    uint8_t *b = udp + 8, *o = b + 240;

    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, len);
    b[0] = 1;                       /* BOOTREQUEST */
    b[1] = 1;
    b[2] = 6;
    b[4] = (uint8_t)(XID >> 24), b[5] = (uint8_t)(XID >> 16);
    b[6] = (uint8_t)(XID >> 8), b[7] = (uint8_t)XID;
    put16(b + 10, 0x8000);          /* broadcast replies: we have no address yet */
    memcpy(b + 28, net.mac, 6);
    b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99;
    *o++ = 53, *o++ = 1, *o++ = (uint8_t)type;
    if (l) {
        *o++ = 50, *o++ = 4;
        memcpy(o, l->ip, 4), o += 4;
        *o++ = 54, *o++ = 4;
        memcpy(o, l->server, 4), o += 4;
    } else {
        *o++ = 55, *o++ = 3, *o++ = 1, *o++ = 3, *o++ = 6;
    }
    *o = 255;
    return 14 + 20 + len;
}

/* Waits for a DHCP reply of `type` to our xid; fills l. 0 or -1. */
static int dhcp_wait(int type, struct lease *l)
{
    for (;;) {
        int n = vnet_recv(&net, reply, sizeof(reply), SPINS);
        if (n < 0)
            return -1;
        const uint8_t *ip = reply + 14, *udp = ip + 20, *b = udp + 8;
        if (n < 14 + 20 + 8 + 240 || get16(reply + 12) != 0x0800 || ip[9] != 17 ||
            get16(udp + 2) != 68 || b[0] != 2 ||
            (uint32_t)(b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7]) != XID)
            continue;
        int got = 0;
        memcpy(l->ip, b + 16, 4);
        for (const uint8_t *o = b + 240; o < reply + n && *o != 255;) {
            if (*o == 0) {
                o++;
                continue;
            }
            if (o + 2 > reply + n || o + 2 + o[1] > reply + n)
                break;
            if (o[0] == 53 && o[1] == 1)
                got = o[2];
            else if (o[0] == 54 && o[1] == 4)
                memcpy(l->server, o + 2, 4);
            else if (o[0] == 3 && o[1] >= 4)
                memcpy(l->router, o + 2, 4);
            else if (o[0] == 6 && o[1] >= 4)
                memcpy(l->dns, o + 2, 4);
            o += 2 + o[1];
        }
        if (got == type)
            return 0;
    }
}

/* ---- ARP ---- */

static int arp_resolve(const uint8_t *me, const uint8_t *who, uint8_t *mac)
{
    memset(frame, 0, 60);
    memcpy(frame, bcast, 6);
    memcpy(frame + 6, net.mac, 6);
    put16(frame + 12, 0x0806);
    uint8_t *a = frame + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6, a[5] = 4;
    put16(a + 6, 1);
    memcpy(a + 8, net.mac, 6);
    memcpy(a + 14, me, 4);
    memcpy(a + 24, who, 4);
    GUEST_ASSERT(vnet_send(&net, frame, 60) == 0);
    for (;;) {
        int n = vnet_recv(&net, reply, sizeof(reply), SPINS);
        if (n < 0)
            return -1;
        const uint8_t *r = reply + 14;
        if (n >= 42 && get16(reply + 12) == 0x0806 && get16(r + 6) == 2 &&
            !memcmp(r + 14, who, 4)) {
            memcpy(mac, r + 8, 6);
            return 0;
        }
    }
}

/* Answers an ARP who-has for our address, as any host does: a peer that lost its table
 * (a slirp started afresh when a snapshot is restored) asks before it replies. */
static void arp_answer(const uint8_t *me, const uint8_t *req, int n)
{
    static uint8_t out[60];
    const uint8_t *q = req + 14;

    if (n < 42 || get16(req + 12) != 0x0806 || get16(q + 6) != 1 || memcmp(q + 24, me, 4))
        return;
    memset(out, 0, sizeof(out));
    memcpy(out, q + 8, 6);
    memcpy(out + 6, net.mac, 6);
    put16(out + 12, 0x0806);
    uint8_t *a = out + 14;
    memcpy(a, q, 6);                /* hardware and protocol types and sizes */
    put16(a + 6, 2);
    memcpy(a + 8, net.mac, 6);
    memcpy(a + 14, me, 4);
    memcpy(a + 18, q + 8, 10);      /* the asker's MAC and address */
    GUEST_ASSERT(vnet_send(&net, out, 60) == 0);
}

/* ---- ICMP echo ---- */

static int ping(const uint8_t *me, const uint8_t *dst, const uint8_t *dst_mac, uint16_t seq,
                uint64_t *cycles, unsigned *ttl)
{
    uint8_t *icmp = ip_frame(dst_mac, me, dst, 1, 64, (uint16_t)(0x100 + seq));
    icmp[0] = 8;
    put16(icmp + 4, 0x766d);
    put16(icmp + 6, seq);
    for (int i = 8; i < 64; i++)
        icmp[i] = (uint8_t)(i + seq);
    put16(icmp + 2, inet_sum(icmp, 64));
    uint64_t t0 = rt_rdtsc();
    GUEST_ASSERT(vnet_send(&net, frame, 14 + 20 + 64) == 0);
    for (;;) {
        int n = vnet_recv(&net, reply, sizeof(reply), SPINS);
        if (n < 0)
            return -1;
        const uint8_t *ip = reply + 14, *r = ip + 20;
        arp_answer(me, reply, n);
        if (n >= 14 + 20 + 64 && get16(reply + 12) == 0x0800 && ip[9] == 1 && r[0] == 0 &&
            get16(r + 4) == 0x766d && get16(r + 6) == seq && !memcmp(r + 8, icmp + 8, 56)) {
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

/* key=a.b.c.d from the cmdline: 0, or -1 when absent or not a dotted quad. */
static int parse_ip(const char *key, uint8_t *ip)
{
    char v[20];
    const char *p = v;

    if (rt_cmdline_get(key, v, sizeof(v)) <= 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned x = 0, digits = 0;
        for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
            x = x * 10 + (unsigned)(*p - '0');
        if (!digits || x > 255 || *p != (i < 3 ? '.' : '\0'))
            return -1;
        ip[i] = (uint8_t)x;
        p++;
    }
    return 0;
}

/* flood=N, on a loop backend (every frame sent comes back): N frames sent while the guest
 * takes none back, so its receive ring, then the device's queue, then the backend's fill;
 * then everything that was kept must arrive, in order, and a frame sent afterwards too:
 * receive never stalls for good (Firecracker CVE-2020-16843). */
static int flood_test(uint64_t n)
{
    uint32_t next = 0, seq;

    for (uint32_t i = 0; i < n; i++) {
        memset(frame, 0, 60);
        memcpy(frame, bcast, 6);
        memcpy(frame + 6, net.mac, 6);
        put16(frame + 12, 0x88b5);
        memcpy(frame + 14, &i, 4);
        GUEST_ASSERT(vnet_send(&net, frame, 60) == 0);
    }
    for (;;) {
        int len = vnet_recv(&net, reply, sizeof(reply), SPINS / 100);
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
    int len = vnet_recv(&net, reply, sizeof(reply), SPINS);
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
    print_mac("net: mac ", net.mac);
    printf("\n");

    uint64_t flood = virtio_cmdline_u64("flood", 0);
    if (flood)
        return flood_test(flood);

    struct lease offer, ack;
    memset(&offer, 0, sizeof(offer));
    memset(&ack, 0, sizeof(ack));
    if (parse_ip("ip", ack.ip) == 0) {
        /* A static address (a TAP has no DHCP server): gw= is the host to ping. */
        if (parse_ip("gw", ack.router)) {
            printf("net: ip= needs gw=\n");
            return 2;
        }
        print_ip("net: static ", ack.ip);
        print_ip(" gateway ", ack.router);
        printf("\n");
        goto have_address;
    }
    GUEST_ASSERT(vnet_send(&net, frame, dhcp_send(1, NULL)) == 0);
    if (dhcp_wait(2, &offer)) {
        printf("net: dhcp: no offer\n");
        return 1;
    }
    print_ip("net: dhcp offer ", offer.ip);
    print_ip(" from ", offer.server);
    printf("\n");
    GUEST_ASSERT(vnet_send(&net, frame, dhcp_send(3, &offer)) == 0);
    if (dhcp_wait(5, &ack)) {
        printf("net: dhcp: no ack\n");
        return 1;
    }
    print_ip("net: dhcp ack ", ack.ip);
    /* A restricted slirp (vmlab's default, QEMU's restrict=on) names no router or DNS:
     * the server itself is the gateway then. */
    static const uint8_t none[4];
    if (memcmp(ack.router, none, 4))
        print_ip(" router ", ack.router);
    else
        memcpy(ack.router, ack.server, 4);
    if (memcmp(ack.dns, none, 4))
        print_ip(" dns ", ack.dns);
    printf("\n");

have_address:;
    uint8_t gw_mac[6];
    if (arp_resolve(ack.ip, ack.router, gw_mac)) {
        printf("net: arp: no reply from the gateway\n");
        return 1;
    }
    print_ip("net: arp ", ack.router);
    print_mac(" is ", gw_mac);
    printf("\n");

    uint64_t khz = rt_tsc_khz(), received = 0;
    const char *unit = khz ? "ns" : "cycles";
    for (uint16_t seq = 1; seq <= count; seq++) {
        uint64_t c;
        unsigned ttl;
        if (ping(ack.ip, ack.router, gw_mac, seq, &c, &ttl)) {
            printf("net: ping seq=%u lost\n", seq);
            continue;
        }
        rtts[received++] = to_ns(c, khz);
        print_ip("net: ping ", ack.router);
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
