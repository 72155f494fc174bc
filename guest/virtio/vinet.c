/* IPv4 over vnet: see vinet.h. */
#include "rt.h"
#include "vinet.h"

#define XID 0x766d6c62u             /* "vmlb", the DHCP transaction */

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

uint16_t vinet_sum(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)vinet_get16(p + i);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

void vinet_print_ip(const char *pre, const uint8_t *ip)
{
    printf("%s%u.%u.%u.%u", pre, ip[0], ip[1], ip[2], ip[3]);
}

void vinet_print_mac(const char *pre, const uint8_t *m)
{
    printf("%s%02x:%02x:%02x:%02x:%02x:%02x", pre, m[0], m[1], m[2], m[3], m[4], m[5]);
}

uint8_t *vinet_ip_frame(struct vinet *in, const uint8_t *dst_mac, const uint8_t *src_ip,
                        const uint8_t *dst_ip, uint8_t proto, uint16_t payload, uint16_t id)
{
    uint8_t *f = in->frame;

    memset(f, 0, 14 + 20 + (size_t)payload);
    memcpy(f, dst_mac, 6);
    memcpy(f + 6, in->net->mac, 6);
    vinet_put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    vinet_put16(ip + 2, (uint16_t)(20 + payload));
    vinet_put16(ip + 4, id);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, src_ip, 4);
    memcpy(ip + 16, dst_ip, 4);
    vinet_put16(ip + 10, vinet_sum(ip, 20));
    return ip + 20;
}

/* ---- DHCP (RFC 2131) ---- */

struct lease {
    uint8_t ip[4], server[4], router[4], dns[4];
};

static uint32_t dhcp_send(struct vinet *in, int type, const struct lease *l)
{
    static const uint8_t zero[4], all[4] = { 255, 255, 255, 255 };
    uint16_t len = 8 + 240 + 16;
    uint8_t *udp = vinet_ip_frame(in, bcast, zero, all, 17, len, (uint16_t)type);
    uint8_t *b = udp + 8, *o = b + 240;

    vinet_put16(udp, 68);
    vinet_put16(udp + 2, 67);
    vinet_put16(udp + 4, len);
    b[0] = 1;                       /* BOOTREQUEST */
    b[1] = 1;
    b[2] = 6;
    b[4] = (uint8_t)(XID >> 24), b[5] = (uint8_t)(XID >> 16);
    b[6] = (uint8_t)(XID >> 8), b[7] = (uint8_t)XID;
    vinet_put16(b + 10, 0x8000);    /* broadcast replies: we have no address yet */
    memcpy(b + 28, in->net->mac, 6);
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
static int dhcp_wait(struct vinet *in, int type, struct lease *l)
{
    const uint8_t *reply = in->rx;

    for (;;) {
        int n = vnet_recv(in->net, in->rx, sizeof(in->rx), VINET_SPINS);
        if (n < 0)
            return -1;
        const uint8_t *ip = reply + 14, *udp = ip + 20, *b = udp + 8;
        if (n < 14 + 20 + 8 + 240 || vinet_get16(reply + 12) != 0x0800 || ip[9] != 17 ||
            vinet_get16(udp + 2) != 68 || b[0] != 2 ||
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

static int arp_resolve(struct vinet *in, const uint8_t *who, uint8_t *mac)
{
    uint8_t *f = in->frame;

    memset(f, 0, 60);
    memcpy(f, bcast, 6);
    memcpy(f + 6, in->net->mac, 6);
    vinet_put16(f + 12, 0x0806);
    uint8_t *a = f + 14;
    vinet_put16(a, 1);
    vinet_put16(a + 2, 0x0800);
    a[4] = 6, a[5] = 4;
    vinet_put16(a + 6, 1);
    memcpy(a + 8, in->net->mac, 6);
    memcpy(a + 14, in->ip, 4);
    memcpy(a + 24, who, 4);
    GUEST_ASSERT(vnet_send(in->net, f, 60) == 0);
    for (;;) {
        int n = vnet_recv(in->net, in->rx, sizeof(in->rx), VINET_SPINS);
        if (n < 0)
            return -1;
        const uint8_t *r = in->rx + 14;
        if (n >= 42 && vinet_get16(in->rx + 12) == 0x0806 && vinet_get16(r + 6) == 2 &&
            !memcmp(r + 14, who, 4)) {
            memcpy(mac, r + 8, 6);
            return 0;
        }
    }
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

int vinet_up(struct vinet *in, struct vnet *net)
{
    struct lease offer, ack;

    in->net = net;
    memset(&offer, 0, sizeof(offer));
    memset(&ack, 0, sizeof(ack));
    if (parse_ip("ip", ack.ip) == 0) {
        /* A static address (a TAP has no DHCP server): gw= is the host to talk to. */
        if (parse_ip("gw", ack.router)) {
            printf("net: ip= needs gw=\n");
            return 2;
        }
        vinet_print_ip("net: static ", ack.ip);
        vinet_print_ip(" gateway ", ack.router);
        printf("\n");
    } else {
        GUEST_ASSERT(vnet_send(net, in->frame, dhcp_send(in, 1, NULL)) == 0);
        if (dhcp_wait(in, 2, &offer)) {
            printf("net: dhcp: no offer\n");
            return 1;
        }
        vinet_print_ip("net: dhcp offer ", offer.ip);
        vinet_print_ip(" from ", offer.server);
        printf("\n");
        GUEST_ASSERT(vnet_send(net, in->frame, dhcp_send(in, 3, &offer)) == 0);
        if (dhcp_wait(in, 5, &ack)) {
            printf("net: dhcp: no ack\n");
            return 1;
        }
        vinet_print_ip("net: dhcp ack ", ack.ip);
        /* A restricted slirp (vmlab's default, QEMU's restrict=on) names no router or DNS:
         * the server itself is the gateway then. */
        static const uint8_t none[4];
        if (memcmp(ack.router, none, 4))
            vinet_print_ip(" router ", ack.router);
        else
            memcpy(ack.router, ack.server, 4);
        if (memcmp(ack.dns, none, 4))
            vinet_print_ip(" dns ", ack.dns);
        printf("\n");
    }
    memcpy(in->ip, ack.ip, 4);
    memcpy(in->gw, ack.router, 4);
    if (arp_resolve(in, in->gw, in->gw_mac)) {
        printf("net: arp: no reply from the gateway\n");
        return 1;
    }
    vinet_print_ip("net: arp ", in->gw);
    vinet_print_mac(" is ", in->gw_mac);
    printf("\n");
    return 0;
}

/* ---- UDP (RFC 768) ---- */

int vinet_udp_send(struct vinet *in, const uint8_t *dst, uint16_t sport, uint16_t dport,
                   const void *data, uint16_t len)
{
    if (len > VINET_UDP_MAX)
        return -VIRTIO_EINVAL;
    uint8_t *udp = vinet_ip_frame(in, in->gw_mac, in->ip, dst, 17, (uint16_t)(8 + len),
                                  in->udp_id++);
    vinet_put16(udp, sport);
    vinet_put16(udp + 2, dport);
    vinet_put16(udp + 4, (uint16_t)(8 + len));
    memcpy(udp + 8, data, len);
    /* The checksum over the pseudo-header (addresses, protocol, length) and the datagram. */
    uint8_t pseudo[12];
    memcpy(pseudo, in->ip, 4);
    memcpy(pseudo + 4, dst, 4);
    pseudo[8] = 0;
    pseudo[9] = 17;
    vinet_put16(pseudo + 10, (uint16_t)(8 + len));
    uint32_t s = (uint16_t)~vinet_sum(pseudo, 12);
    s += (uint16_t)~vinet_sum(udp, 8 + (size_t)len);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    uint16_t sum = (uint16_t)~s;
    vinet_put16(udp + 6, sum ? sum : 0xffff);
    return vnet_send(in->net, in->frame, 14 + 20 + 8 + (uint32_t)len);
}

int vinet_arp_answer(struct vinet *in, const uint8_t *req, int n)
{
    static uint8_t out[60];
    const uint8_t *q = req + 14;

    if (n < 42 || vinet_get16(req + 12) != 0x0806 || vinet_get16(q + 6) != 1 ||
        memcmp(q + 24, in->ip, 4))
        return 0;
    memset(out, 0, sizeof(out));
    memcpy(out, q + 8, 6);
    memcpy(out + 6, in->net->mac, 6);
    vinet_put16(out + 12, 0x0806);
    uint8_t *a = out + 14;
    memcpy(a, q, 6);                /* hardware and protocol types and sizes */
    vinet_put16(a + 6, 2);
    memcpy(a + 8, in->net->mac, 6);
    memcpy(a + 14, in->ip, 4);
    memcpy(a + 18, q + 8, 10);      /* the asker's MAC and address */
    GUEST_ASSERT(vnet_send(in->net, out, 60) == 0);
    return 1;
}

int vinet_udp_recv(struct vinet *in, uint16_t dport, const uint8_t **data, uint64_t spins)
{
    for (;;) {
        int n = vnet_recv(in->net, in->rx, sizeof(in->rx), spins);
        if (n < 0)
            return n;
        if (vinet_arp_answer(in, in->rx, n))
            continue;
        const uint8_t *ip = in->rx + 14, *udp = ip + 20;
        if (n < 14 + 20 + 8 || vinet_get16(in->rx + 12) != 0x0800 || ip[0] != 0x45 ||
            ip[9] != 17 || memcmp(ip + 16, in->ip, 4) || vinet_get16(udp + 2) != dport)
            continue;
        uint16_t ulen = vinet_get16(udp + 4);
        if (ulen < 8 || 14 + 20 + (int)ulen > n)
            continue;
        *data = udp + 8;
        return ulen - 8;
    }
}
