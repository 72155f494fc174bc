/* A small IPv4 layer over vnet for the guest programs (net.c, udp.c): Ethernet/IPv4 framing,
 * DHCP (RFC 2131) against user-mode networking or a static address (ip=, gw= on the
 * command line), ARP for the gateway, and UDP datagrams. One address, one gateway, no
 * fragments, no options: what a benchmark or a smoke test against slirp needs. */
#ifndef GUEST_VINET_H
#define GUEST_VINET_H

#include "vnet.h"

#define VINET_SPINS 20000000ull         /* polls before a reply counts as lost */
#define VINET_UDP_MAX (VNET_FRAME_MAX - 14 - 20 - 8)    /* 1472: a datagram in one frame */

struct vinet {
    struct vnet *net;
    uint8_t ip[4], gw[4], gw_mac[6];
    uint16_t udp_id;                    /* IP id of the next datagram */
    uint8_t frame[VNET_BUF];            /* the frame being built */
    uint8_t rx[VNET_BUF];               /* the last frame received */
};

static inline void vinet_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline uint16_t vinet_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
/* The Internet checksum (RFC 1071) of n bytes. */
uint16_t vinet_sum(const void *p, size_t n);
void vinet_print_ip(const char *pre, const uint8_t *ip);
void vinet_print_mac(const char *pre, const uint8_t *m);

/* Builds Ethernet + IPv4 headers (IP id `id`) in in->frame; returns the IP payload pointer. */
uint8_t *vinet_ip_frame(struct vinet *in, const uint8_t *dst_mac, const uint8_t *src_ip,
                        const uint8_t *dst_ip, uint8_t proto, uint16_t payload, uint16_t id);
/* The address (DHCP, or ip=/gw= from the command line) and the gateway's MAC, printing
 *   net: dhcp offer A from S / net: dhcp ack A [router R dns D] (or net: static A gateway G)
 *   net: arp G is M
 * 0, or 1 with the reason printed (2 for a bad ip=/gw=). */
int vinet_up(struct vinet *in, struct vnet *net);
/* Answers frame (n bytes) if it is an ARP request for in->ip: a restored VM's fresh slirp
 * asks for the guest's MAC again before it forwards anything. Returns 1 if it answered. */
int vinet_arp_answer(struct vinet *in, const uint8_t *frame, int n);
/* One UDP datagram of len bytes (<= VINET_UDP_MAX) from in->ip:sport to dst:dport through the
 * gateway's MAC. 0 or -VIRTIO_EINVAL. */
int vinet_udp_send(struct vinet *in, const uint8_t *dst, uint16_t sport, uint16_t dport,
                   const void *data, uint16_t len);
/* The next UDP datagram to in->ip:dport (other frames are dropped), waiting up to `spins`
 * polls: its payload pointer (in in->rx) and length, or -VIRTIO_EIO on timeout. */
int vinet_udp_recv(struct vinet *in, uint16_t dport, const uint8_t **data, uint64_t spins);

#endif
