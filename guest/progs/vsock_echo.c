/* vsock_echo: a stream echo server on virtio-vsock port port= (default 1234). Accepts host
 * connections to that port (others get RST), sends every byte back, honours the host's
 * credit (buf_alloc, fwd_cnt) and advertises 64 KiB of its own. After conns= connections
 * (default 1) ended by the host, prints their byte counts and exits 0. Polled; ring options
 * as usual. Between packets it halts on a CPU-timer tick (tick=, see vvsock_idle_start). */
#include "rt.h"
#include "vvsock.h"

#define MAXC 8
#define BUF (64u * 1024)

struct conn {
    int used;
    uint32_t peer_port;
    uint32_t peer_alloc, peer_fwd, tx_cnt;      /* the host's credit */
    uint32_t fwd_cnt;                           /* bytes we echoed (freed) */
    uint32_t head, len;                         /* ring of bytes still to echo */
    uint64_t echoed;
    uint8_t buf[BUF];
};

static struct vvsock vs;
static struct conn conns[MAXC];
static uint8_t pkt[VVSOCK_RX_DATA];
static uint8_t out[VVSOCK_TX_DATA];

static void reply(uint32_t port, uint32_t peer, uint16_t op, uint32_t flags, struct conn *c,
                  const void *data, uint32_t len)
{
    struct vsock_hdr h = { .dst_cid = VSOCK_CID_HOST, .src_port = port, .dst_port = peer,
                           .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
                           .buf_alloc = BUF, .fwd_cnt = c ? c->fwd_cnt : 0 };
    vvsock_send(&vs, &h, data, len);
}

static struct conn *find(uint32_t peer)
{
    for (int i = 0; i < MAXC; i++)
        if (conns[i].used && conns[i].peer_port == peer)
            return &conns[i];
    return NULL;
}

/* Echoes what the host's credit allows. */
static void flush(struct conn *c, uint32_t port)
{
    while (c->len) {
        uint32_t credit = c->peer_alloc - (c->tx_cnt - c->peer_fwd);
        uint32_t n = c->len < VVSOCK_TX_DATA ? c->len : VVSOCK_TX_DATA;
        if (n > credit)
            n = credit;
        if (c->head + n > BUF)
            n = BUF - c->head;
        if (!n)
            return;
        memcpy(out, c->buf + c->head, n);
        c->head = (c->head + n) % BUF;
        c->len -= n;
        c->tx_cnt += n;
        c->fwd_cnt += n;
        c->echoed += n;
        reply(port, c->peer_port, VSOCK_OP_RW, 0, c, out, n);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint32_t port = (uint32_t)virtio_cmdline_u64("port", 1234);
    uint64_t want = virtio_cmdline_u64("conns", 1), done = 0;
    if (vvsock_open(&vs, &o))
        return 1;
    if (vvsock_idle_start(&vs))
        return 2;
    printf("vsock_echo: listening on port %u\n", port);
    while (done < want) {
        struct vsock_hdr h;
        if (!vvsock_poll(&vs, &h, pkt)) {
            vvsock_idle(&vs);
            continue;
        }
        struct conn *c = find(h.src_port);
        if (h.dst_port != port || h.type != VSOCK_TYPE_STREAM) {
            if (h.op != VSOCK_OP_RST)
                reply(h.dst_port, h.src_port, VSOCK_OP_RST, 0, NULL, NULL, 0);
            continue;
        }
        if (c) {
            c->peer_alloc = h.buf_alloc;
            c->peer_fwd = h.fwd_cnt;
        }
        switch (h.op) {
        case VSOCK_OP_REQUEST:
            if (!c)
                for (int i = 0; i < MAXC && !c; i++)
                    if (!conns[i].used)
                        c = &conns[i];
            if (!c) {
                reply(port, h.src_port, VSOCK_OP_RST, 0, NULL, NULL, 0);
                break;
            }
            memset(c, 0, sizeof *c - sizeof c->buf);
            c->used = 1;
            c->peer_port = h.src_port;
            c->peer_alloc = h.buf_alloc;
            c->peer_fwd = h.fwd_cnt;
            reply(port, h.src_port, VSOCK_OP_RESPONSE, 0, c, NULL, 0);
            break;
        case VSOCK_OP_RW:
            if (!c || h.len > BUF - c->len) {
                reply(port, h.src_port, VSOCK_OP_RST, 0, NULL, NULL, 0);
                break;
            }
            for (uint32_t i = 0; i < h.len; i++)
                c->buf[(c->head + c->len + i) % BUF] = pkt[i];
            c->len += h.len;
            flush(c, port);
            break;
        case VSOCK_OP_CREDIT_UPDATE:
            if (c)
                flush(c, port);
            break;
        case VSOCK_OP_CREDIT_REQUEST:
            if (c)
                reply(port, c->peer_port, VSOCK_OP_CREDIT_UPDATE, 0, c, NULL, 0);
            break;
        case VSOCK_OP_SHUTDOWN:
        case VSOCK_OP_RST:
            if (!c)
                break;
            if (h.op == VSOCK_OP_SHUTDOWN)
                reply(port, c->peer_port, VSOCK_OP_RST, 0, c, NULL, 0);
            printf("vsock_echo: connection from port %u: %llu bytes echoed\n", c->peer_port,
                   (unsigned long long)c->echoed);
            c->used = 0;
            done++;
            break;
        }
    }
    vvsock_idle_stop(&vs);
    printf("vsock_echo: %llu connections served, %llu transport resets\n",
           (unsigned long long)done, (unsigned long long)vs.transport_resets);
    return 0;
}
