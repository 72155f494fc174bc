/* Numbers from the virtio 1.2 spec, §5.10 (socket device). Shared by the device model,
 * its tests and fuzzers. All header fields are little-endian. */
#ifndef VMLAB_VSOCK_SPEC_H
#define VMLAB_VSOCK_SPEC_H

#include <stdint.h>

#define VIRTIO_ID_VSOCK 19

#define VSOCK_RX_Q    0
#define VSOCK_TX_Q    1
#define VSOCK_EVENT_Q 2

#define VSOCK_CID_HOST 2u
#define VSOCK_CFG_SIZE 8            /* le64 guest_cid */

#define VSOCK_TYPE_STREAM 1

enum {
    VSOCK_OP_INVALID = 0,
    VSOCK_OP_REQUEST = 1,
    VSOCK_OP_RESPONSE = 2,
    VSOCK_OP_RST = 3,
    VSOCK_OP_SHUTDOWN = 4,
    VSOCK_OP_RW = 5,
    VSOCK_OP_CREDIT_UPDATE = 6,
    VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_EVENT_TRANSPORT_RESET 0

/* struct virtio_vsock_hdr, packed: 44 bytes. */
#define VSOCK_HDR_SIZE 44
struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port;
    uint32_t len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};

static inline void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t b[VSOCK_HDR_SIZE])
{
    const uint64_t v[10] = { h->src_cid, h->dst_cid, h->src_port, h->dst_port, h->len,
                             h->type, h->op, h->flags, h->buf_alloc, h->fwd_cnt };
    static const uint8_t width[10] = { 8, 8, 4, 4, 4, 2, 2, 4, 4, 4 };
    unsigned off = 0;

    for (unsigned i = 0; i < 10; i++)
        for (unsigned k = 0; k < width[i]; k++)
            b[off++] = (uint8_t)(v[i] >> (8 * k));
}

static inline void vsock_hdr_decode(const uint8_t b[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
    static const uint8_t width[10] = { 8, 8, 4, 4, 4, 2, 2, 4, 4, 4 };
    uint64_t v[10];
    unsigned off = 0;

    for (unsigned i = 0; i < 10; i++) {
        v[i] = 0;
        for (unsigned k = 0; k < width[i]; k++)
            v[i] |= (uint64_t)b[off++] << (8 * k);
    }
    *h = (struct vsock_hdr){ v[0], v[1], (uint32_t)v[2], (uint32_t)v[3], (uint32_t)v[4],
                             (uint16_t)v[5], (uint16_t)v[6], (uint32_t)v[7], (uint32_t)v[8],
                             (uint32_t)v[9] };
}

#endif
