/* virtio-vsock device model: the connection table, credit flow and the packets of §5.10.
 * The host side is behind struct vsock_host_ops (virtio_vsock.h). */
#include "devices/virtio/virtio_vsock.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock_spec.h"
#include "devices/virtio/vsock_uds.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VSOCK_QUEUE_SIZE 256

/* What a connection still owes the guest, sent as rx buffers arrive. */
#define PEND_REQUEST  1u
#define PEND_RESPONSE 2u
#define PEND_CREDIT   4u
#define PEND_SHUTDOWN 8u

enum conn_state { CONN_REQUESTED, CONN_ESTABLISHED };

struct vsock_conn {
    struct vsock_dev *d;
    uint32_t local_port, peer_port;     /* local: the host's side; peer: the guest's */
    int host_initiated;
    enum conn_state state;
    void *hctx;
    unsigned pend;
    uint32_t shut_by_guest;             /* VSOCK_SHUTDOWN_* the guest sent */
    uint32_t shut_to_guest;             /* flags of the SHUTDOWN owed / sent to the guest */
    int host_readable, host_eof, host_shut_send;
    uint64_t deadline;                  /* clock time it is reset at (0: none) */
    /* Credit (§5.10.6.3). The guest's: */
    uint32_t peer_buf_alloc, peer_fwd_cnt;
    uint32_t tx_cnt;                    /* bytes sent to the guest */
    /* Ours: */
    uint32_t rx_cnt;                    /* guest bytes received */
    uint32_t fwd_cnt;                   /* guest bytes handed to the host */
    uint32_t fwd_cnt_sent;              /* fwd_cnt as last told to the guest */
    uint8_t *held;                      /* guest bytes the host has not taken yet */
    size_t held_len;
    size_t stage_len, stage_off;        /* host bytes read, not yet in an rx buffer */
    uint8_t stage[VSOCK_RX_STAGE];
};

struct vsock_rst { uint32_t local_port, peer_port; };

struct vsock_dev {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    uint64_t cid;
    const struct vsock_host_ops *host_ops;
    void *host;
    struct vsock_conn *conns[VSOCK_MAX_CONNS];
    unsigned nconns, rr;
    uint32_t next_host_port;
    struct vsock_rst rsts[VSOCK_RST_QUEUE];
    unsigned rst_head, rst_count;
    uint64_t rsts_dropped;
    int event_pending;                  /* TRANSPORT_RESET owed to the guest */
    int in_rx;                          /* rx processing is running (no re-entry) */
    int in_host;                        /* inside a host_ops call (host input is nested) */
    int64_t timer_id;                   /* one clock timer, at the earliest deadline */
    uint64_t timer_at;
    /* Replay: the result the recorded host gave for the call being replayed. */
    ssize_t replay_rc;
    size_t replay_len;
    uint8_t replay_data[VSOCK_RX_STAGE];
    /* One chain and packet buffer per direction: a host call made while a tx packet is
     * handled may fill rx buffers. */
    struct vq_chain tx_chain, rx_chain, ev_chain;
    uint8_t tx_pkt[VSOCK_HDR_SIZE + VSOCK_MAX_PKT];
    uint8_t rx_pkt[VSOCK_HDR_SIZE + VSOCK_RX_STAGE];
};

/* Trace messages (host-in / host-out data, devices/virtio/README.md): a letter, le32 local
 * port, le32 peer port, le32 value, then bytes. Host-in: what the host side made the device
 * do or returned to it; host-out: what the device asked of the host. */
#define VT_HDR 13
enum {
    VT_HOST_CONNECT = 'C', VT_READABLE = 'R', VT_WRITABLE = 'W', VT_HOST_CLOSE = 'X',
    VT_RESULT = '=', VT_RECV_DATA = 'D',
    VT_GUEST_CONNECT = 'c', VT_ESTABLISHED = 'e', VT_SEND = 's', VT_SHUTDOWN = 'h',
    VT_CLOSED = 'x', VT_RECV = 'r',
};

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void trace_io(struct vsock_dev *d, int dir, int op, uint32_t local, uint32_t peer,
                     int32_t val, const void *data, size_t len)
{
    uint8_t hdr[VT_HDR], *buf = hdr;

    if (!d->vd.env.host_io)
        return;
    if (len && !(buf = malloc(VT_HDR + len)))
        return;
    buf[0] = (uint8_t)op;
    put_le32(buf + 1, local);
    put_le32(buf + 5, peer);
    put_le32(buf + 9, (uint32_t)val);
    if (len)
        memcpy(buf + VT_HDR, data, len);
    /* A host answer (VT_RESULT, VT_RECV_DATA) is delivered inside the call it answers. */
    if (dir == DEVICE_HOST_IN && (d->in_host || op == VT_RESULT || op == VT_RECV_DATA))
        dir = DEVICE_HOST_IN_NESTED;
    d->vd.env.host_io(d->vd.env.host_io_opaque, dir, buf, VT_HDR + len);
    if (buf != hdr)
        free(buf);
}

static void trace_in(struct vsock_dev *d, int op, const struct vsock_conn *c, int32_t val,
                     const void *data, size_t len)
{
    trace_io(d, DEVICE_HOST_IN, op, c ? c->local_port : 0, c ? c->peer_port : 0, val, data,
             len);
}

static void trace_out(struct vsock_dev *d, int op, const struct vsock_conn *c, int32_t val,
                      const void *data, size_t len)
{
    trace_io(d, DEVICE_HOST_OUT, op, c->local_port, c->peer_port, val, data, len);
}

/* Every call into the host goes through these, so the trace holds the request (host-out)
 * and what the host answered (nested host-in). */
static int host_connect(struct vsock_dev *d, struct vsock_conn *c, uint32_t port)
{
    trace_out(d, VT_GUEST_CONNECT, c, (int32_t)port, NULL, 0);
    d->in_host++;
    int rc = d->host_ops->connect(d->host, c, port, &c->hctx);
    d->in_host--;
    trace_in(d, VT_RESULT, c, rc < 0 ? rc : 0, NULL, 0);
    return rc;
}

static ssize_t host_send(struct vsock_dev *d, struct vsock_conn *c)
{
    trace_out(d, VT_SEND, c, 0, c->held, c->held_len);
    d->in_host++;
    ssize_t n = d->host_ops->send(d->host, c->hctx, c->held, c->held_len);
    d->in_host--;
    trace_in(d, VT_RESULT, c, (int32_t)n, NULL, 0);
    return n;
}

static ssize_t host_recv(struct vsock_dev *d, struct vsock_conn *c, size_t want)
{
    trace_out(d, VT_RECV, c, (int32_t)want, NULL, 0);
    d->in_host++;
    ssize_t n = d->host_ops->recv(d->host, c->hctx, c->stage, want);
    d->in_host--;
    if (n > (ssize_t)want)
        n = (ssize_t)want;
    trace_in(d, VT_RECV_DATA, c, (int32_t)n, c->stage, n > 0 ? (size_t)n : 0);
    return n;
}

static void host_shutdown(struct vsock_dev *d, struct vsock_conn *c, uint32_t flags)
{
    trace_out(d, VT_SHUTDOWN, c, (int32_t)flags, NULL, 0);
    if (d->host_ops->shutdown) {
        d->in_host++;
        d->host_ops->shutdown(d->host, c->hctx, flags);
        d->in_host--;
    }
}

static void rx_process(struct vsock_dev *d);
static void conn_reset(struct vsock_dev *d, struct vsock_conn *c, int tell_host);
static void deadlines_due(void *arg);

/* c is reset `after_ns` from now unless its deadline is cleared first. One timer per device
 * (at the earliest deadline), so a thousand waiting connections cost one timer. */
static void conn_set_deadline(struct vsock_dev *d, struct vsock_conn *c, uint64_t after_ns)
{
    const struct clock *clk = d->vd.env.clock;

    c->deadline = clock_now_ns(clk) + after_ns;
    if (d->timer_id > 0 && d->timer_at <= c->deadline)
        return;
    if (d->timer_id > 0)
        clk->cancel(clk->opaque, d->timer_id);
    int64_t id = clk->schedule(clk->opaque, c->deadline, deadlines_due, d);
    d->timer_id = id > 0 ? id : 0;
    d->timer_at = c->deadline;
}

/* The timer: connections past their deadline are reset; the timer moves to the next one. */
static void deadlines_due(void *arg)
{
    struct vsock_dev *d = arg;
    const struct clock *clk = d->vd.env.clock;
    uint64_t now = clock_now_ns(clk), next = 0;

    d->timer_id = 0;
    for (unsigned i = d->nconns; i-- > 0;) {    /* a reset moves the last entry to i */
        struct vsock_conn *c = d->conns[i];
        if (!c->deadline)
            continue;
        if (c->deadline > now) {
            next = next && next < c->deadline ? next : c->deadline;
            continue;
        }
        if (c->state == CONN_REQUESTED)
            virtio_dev_log(&d->vd, "virtio-vsock: guest port %u did not answer the connect "
                           "from host port %u within %llu ms: reset", c->peer_port,
                           c->local_port, VSOCK_REQUEST_TIMEOUT_NS / 1000000);
        else
            virtio_dev_log(&d->vd, "virtio-vsock: guest port %u shut down, the host did not "
                           "take its last %zu bytes within %llu ms: reset", c->peer_port,
                           c->held_len, VSOCK_SHUTDOWN_TIMEOUT_NS / 1000000);
        conn_reset(d, c, 1);
    }
    if (next) {
        int64_t id = clk->schedule(clk->opaque, next, deadlines_due, d);
        d->timer_id = id > 0 ? id : 0;
        d->timer_at = next;
    }
    rx_process(d);
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static struct vsock_conn *conn_find(struct vsock_dev *d, uint32_t local, uint32_t peer)
{
    for (unsigned i = 0; i < d->nconns; i++)
        if (d->conns[i]->local_port == local && d->conns[i]->peer_port == peer)
            return d->conns[i];
    return NULL;
}

static int local_port_used(const struct vsock_dev *d, uint32_t port)
{
    for (unsigned i = 0; i < d->nconns; i++)
        if (d->conns[i]->local_port == port)
            return 1;
    return 0;
}

static struct vsock_conn *conn_new(struct vsock_dev *d, uint32_t local, uint32_t peer)
{
    struct vsock_conn *c;

    if (d->nconns >= VSOCK_MAX_CONNS || !(c = calloc(1, sizeof(*c))))
        return NULL;
    c->d = d;
    c->local_port = local;
    c->peer_port = peer;
    d->conns[d->nconns++] = c;
    return c;
}

/* Unlinks and frees c; tells the host unless it closed the connection itself. */
static void conn_free(struct vsock_dev *d, struct vsock_conn *c, int tell_host)
{
    for (unsigned i = 0; i < d->nconns; i++)
        if (d->conns[i] == c) {
            d->conns[i] = d->conns[--d->nconns];
            break;
        }
    if (tell_host && c->hctx && d->host_ops) {
        trace_out(d, VT_CLOSED, c, 0, NULL, 0);
        if (d->host_ops->closed) {
            d->in_host++;
            d->host_ops->closed(d->host, c->hctx);
            d->in_host--;
        }
    }
    free(c->held);
    free(c);
}

/* An RST for (local, peer) waits for an rx buffer; a full queue drops it (a guest flooding
 * packets for connections that do not exist must not grow our memory). */
static void queue_rst(struct vsock_dev *d, uint32_t local, uint32_t peer)
{
    if (d->rst_count == VSOCK_RST_QUEUE) {
        if (d->rsts_dropped++ == 0)
            virtio_dev_log(&d->vd, "virtio-vsock: %u RSTs wait for rx buffers; dropping more",
                           VSOCK_RST_QUEUE);
        return;
    }
    d->rsts[(d->rst_head + d->rst_count++) % VSOCK_RST_QUEUE] =
        (struct vsock_rst){ local, peer };
}

/* Ends c towards both sides: RST to the guest, closed() to the host (if tell_host). A
 * host connect whose REQUEST the guest never saw ends without one. */
static void conn_reset(struct vsock_dev *d, struct vsock_conn *c, int tell_host)
{
    if (!(c->pend & PEND_REQUEST))
        queue_rst(d, c->local_port, c->peer_port);
    conn_free(d, c, tell_host);
}

/* Hands held guest bytes to the host. -errno: c was reset (the host failed, or both sides
 * are done) and is gone. */
static int conn_flush(struct vsock_dev *d, struct vsock_conn *c)
{
    while (c->held_len) {
        ssize_t n = host_send(d, c);
        if (n < 0) {
            conn_reset(d, c, 1);
            return -EPIPE;
        }
        if (n == 0)
            break;
        if ((size_t)n > c->held_len)
            n = (ssize_t)c->held_len;
        memmove(c->held, c->held + n, c->held_len - (size_t)n);
        c->held_len -= (size_t)n;
        c->fwd_cnt += (uint32_t)n;
    }
    if (!c->held_len) {
        free(c->held);
        c->held = NULL;
    }
    /* Tell the guest about freed space once half the buffer is free again. */
    if (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_BUF_ALLOC / 2)
        c->pend |= PEND_CREDIT;
    if (!c->held_len && (c->shut_by_guest & VSOCK_SHUTDOWN_SEND) && !c->host_shut_send) {
        c->host_shut_send = 1;
        host_shutdown(d, c, VSOCK_SHUTDOWN_SEND);
    }
    /* Both directions shut and everything delivered: the guest waits for our RST
     * (§5.10.6.6). */
    if (!c->held_len && c->shut_by_guest == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) {
        conn_reset(d, c, 1);
        return -ECONNRESET;
    }
    return 0;
}

/* Guest bytes for c: straight to the host, what it does not take is held. */
static void conn_take(struct vsock_dev *d, struct vsock_conn *c, const uint8_t *p, uint32_t n)
{
    if (c->rx_cnt - c->fwd_cnt + (uint64_t)n > VSOCK_BUF_ALLOC) {
        virtio_dev_log(&d->vd, "virtio-vsock: guest port %u sent %u bytes past the %u-byte "
                       "credit of host port %u: connection reset", c->peer_port, n,
                       VSOCK_BUF_ALLOC, c->local_port);
        conn_reset(d, c, 1);
        return;
    }
    c->rx_cnt += n;
    if (!c->held) {
        c->held = malloc(VSOCK_BUF_ALLOC);
        if (!c->held) {
            conn_reset(d, c, 1);
            return;
        }
    }
    memcpy(c->held + c->held_len, p, n);
    c->held_len += n;
    conn_flush(d, c);
}

static void pkt_from_guest(struct vsock_dev *d, const struct vsock_hdr *h, const uint8_t *data)
{
    struct vsock_conn *c = conn_find(d, h->dst_port, h->src_port);

    if (h->type != VSOCK_TYPE_STREAM || h->dst_cid != VSOCK_CID_HOST) {
        if (h->op != VSOCK_OP_RST)
            queue_rst(d, h->dst_port, h->src_port);
        return;
    }
    if (c) {
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
    }
    switch (h->op) {
    case VSOCK_OP_REQUEST: {
        if (c) {                        /* a second REQUEST on a live connection */
            conn_reset(d, c, 1);
            return;
        }
        if (d->nconns >= VSOCK_MAX_CONNS) {
            virtio_dev_log(&d->vd, "virtio-vsock: connection limit (%u) reached: guest port "
                           "%u to host port %u refused", VSOCK_MAX_CONNS, h->src_port,
                           h->dst_port);
            queue_rst(d, h->dst_port, h->src_port);
            return;
        }
        if (!d->host_ops || !d->host_ops->connect ||
            !(c = conn_new(d, h->dst_port, h->src_port))) {
            queue_rst(d, h->dst_port, h->src_port);
            return;
        }
        c->state = CONN_ESTABLISHED;
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
        if (host_connect(d, c, h->dst_port) < 0) {
            c->hctx = NULL;
            conn_reset(d, c, 0);
            return;
        }
        c->pend |= PEND_RESPONSE;
        return;
    }
    case VSOCK_OP_RESPONSE:
        if (!c) {
            queue_rst(d, h->dst_port, h->src_port);
        } else if (c->state != CONN_REQUESTED) {
            conn_reset(d, c, 1);
        } else {
            c->state = CONN_ESTABLISHED;
            c->pend &= ~PEND_REQUEST;
            c->deadline = 0;
            trace_out(d, VT_ESTABLISHED, c, 0, NULL, 0);
            if (d->host_ops->established) {
                d->in_host++;
                d->host_ops->established(d->host, c->hctx, c->local_port);
                d->in_host--;
            }
        }
        return;
    case VSOCK_OP_RST:
        /* Only the exact (local, peer) pair ends: a guest cannot free a connection, or a
         * host port, that is not its own. */
        if (c)
            conn_free(d, c, 1);
        return;
    case VSOCK_OP_SHUTDOWN:
        if (!c || c->state != CONN_ESTABLISHED) {
            if (c)
                conn_reset(d, c, 1);
            else
                queue_rst(d, h->dst_port, h->src_port);
            return;
        }
        c->shut_by_guest |= h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
        if (h->flags & VSOCK_SHUTDOWN_RCV)
            host_shutdown(d, c, VSOCK_SHUTDOWN_RCV);
        /* Still here with both ways shut: bytes wait for the host, for a bounded time. */
        if (!conn_flush(d, c) && c->shut_by_guest == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) &&
            !c->deadline)
            conn_set_deadline(d, c, VSOCK_SHUTDOWN_TIMEOUT_NS);
        return;
    case VSOCK_OP_RW:
        if (!c || c->state != CONN_ESTABLISHED || (c->shut_by_guest & VSOCK_SHUTDOWN_SEND)) {
            if (c)
                conn_reset(d, c, 1);
            else
                queue_rst(d, h->dst_port, h->src_port);
            return;
        }
        if (h->len)
            conn_take(d, c, data, h->len);
        return;
    case VSOCK_OP_CREDIT_UPDATE:
        if (!c)
            queue_rst(d, h->dst_port, h->src_port);
        return;
    case VSOCK_OP_CREDIT_REQUEST:
        if (c)
            c->pend |= PEND_CREDIT;
        else
            queue_rst(d, h->dst_port, h->src_port);
        return;
    default:
        virtio_dev_log(&d->vd, "virtio-vsock: op %u from guest port %u is not an operation",
                       h->op, h->src_port);
        if (c)
            conn_reset(d, c, 1);
        else
            queue_rst(d, h->dst_port, h->src_port);
        return;
    }
}

static void tx_process(struct vsock_dev *d)
{
    struct virtio_dev *vd = &d->vd;
    int pushed = 0;

    while (virtio_dev_pop(vd, VSOCK_TX_Q, &d->tx_chain) > 0) {
        struct vq_chain *ch = &d->tx_chain;
        struct vsock_hdr h;

        if (ch->read_len < VSOCK_HDR_SIZE ||
            vq_chain_read(vd->env.mem, ch, 0, d->tx_pkt, VSOCK_HDR_SIZE)) {
            virtio_dev_log(vd, "virtio-vsock: %llu-byte tx buffer is shorter than the "
                           "%u-byte header: dropped", (unsigned long long)ch->read_len,
                           VSOCK_HDR_SIZE);
        } else {
            vsock_hdr_decode(d->tx_pkt, &h);
            if (h.len > VSOCK_MAX_PKT || h.len > ch->read_len - VSOCK_HDR_SIZE) {
                virtio_dev_log(vd, "virtio-vsock: hdr.len %u exceeds the %llu payload bytes "
                               "of its buffer (limit %u): dropped", h.len,
                               (unsigned long long)(ch->read_len - VSOCK_HDR_SIZE),
                               VSOCK_MAX_PKT);
            } else if (h.src_cid != d->cid) {
                virtio_dev_log(vd, "virtio-vsock: packet from src_cid %llu, the guest is %llu: "
                               "dropped", (unsigned long long)h.src_cid,
                               (unsigned long long)d->cid);
            } else if (h.op != VSOCK_OP_RW || h.len == 0 ||
                       !vq_chain_read(vd->env.mem, ch, VSOCK_HDR_SIZE,
                                      d->tx_pkt + VSOCK_HDR_SIZE, h.len)) {
                if (h.op != VSOCK_OP_RW)
                    h.len = 0;
                pkt_from_guest(d, &h, d->tx_pkt + VSOCK_HDR_SIZE);
            }
        }
        if (virtio_dev_push(vd, VSOCK_TX_Q, ch, 0))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VSOCK_TX_Q);
}

/* Reads host bytes into c's stage when the guest can take them. 0, or -1 if c is gone. */
static int conn_fill(struct vsock_dev *d, struct vsock_conn *c)
{
    uint32_t credit = peer_credit(c);

    if (c->state != CONN_ESTABLISHED || !c->host_readable || c->stage_off < c->stage_len ||
        !credit || c->host_eof || (c->shut_by_guest & VSOCK_SHUTDOWN_RCV))
        return 0;
    size_t want = credit < VSOCK_RX_STAGE ? credit : VSOCK_RX_STAGE;
    ssize_t n = host_recv(d, c, want);
    if (n == -EAGAIN) {
        c->host_readable = 0;
    } else if (n == 0) {
        c->host_eof = 1;
        c->host_readable = 0;
        c->shut_to_guest |= VSOCK_SHUTDOWN_SEND;
        c->pend |= PEND_SHUTDOWN;
    } else if (n < 0) {
        conn_reset(d, c, 1);
        return -1;
    } else {
        c->stage_off = 0;
        c->stage_len = (size_t)n > want ? want : (size_t)n;
    }
    return 0;
}

/* 1 if c has a packet for the guest now (filling its stage if it can). */
static int conn_has_packet(struct vsock_dev *d, struct vsock_conn *c)
{
    if (c->pend & (PEND_REQUEST | PEND_RESPONSE))
        return 1;
    if (conn_fill(d, c) < 0)
        return -1;
    if (c->stage_off < c->stage_len && peer_credit(c))
        return 1;
    return (c->pend & (PEND_CREDIT | PEND_SHUTDOWN)) != 0;
}

/* Builds c's next packet into d->rx_pkt for an rx buffer of `room` bytes. Returns its length. */
static uint32_t conn_packet(struct vsock_dev *d, struct vsock_conn *c, uint64_t room)
{
    struct vsock_hdr h = {
        .src_cid = VSOCK_CID_HOST, .dst_cid = d->cid, .src_port = c->local_port,
        .dst_port = c->peer_port, .type = VSOCK_TYPE_STREAM, .buf_alloc = VSOCK_BUF_ALLOC,
        .fwd_cnt = c->fwd_cnt,
    };

    if (c->pend & PEND_REQUEST) {
        h.op = VSOCK_OP_REQUEST;
        c->pend &= ~PEND_REQUEST;
        conn_set_deadline(d, c, VSOCK_REQUEST_TIMEOUT_NS);   /* the guest's time to answer */
    } else if (c->pend & PEND_RESPONSE) {
        h.op = VSOCK_OP_RESPONSE;
        c->pend &= ~PEND_RESPONSE;
    } else if (c->stage_off < c->stage_len && peer_credit(c)) {
        uint64_t n = c->stage_len - c->stage_off;
        if (n > peer_credit(c))
            n = peer_credit(c);
        if (n > room - VSOCK_HDR_SIZE)
            n = room - VSOCK_HDR_SIZE;
        h.op = VSOCK_OP_RW;
        h.len = (uint32_t)n;
        memcpy(d->rx_pkt + VSOCK_HDR_SIZE, c->stage + c->stage_off, n);
        c->stage_off += n;
        c->tx_cnt += (uint32_t)n;
        c->pend &= ~PEND_CREDIT;        /* the header carries fwd_cnt */
    } else if (c->pend & PEND_CREDIT) {
        h.op = VSOCK_OP_CREDIT_UPDATE;
        c->pend &= ~PEND_CREDIT;
    } else {
        h.op = VSOCK_OP_SHUTDOWN;
        h.flags = c->shut_to_guest;
        c->pend &= ~PEND_SHUTDOWN;
    }
    c->fwd_cnt_sent = c->fwd_cnt;
    vsock_hdr_encode(&h, d->rx_pkt);
    return VSOCK_HDR_SIZE + h.len;
}

/* Fills rx buffers: queued RSTs first, then connections in turn. */
static void rx_process(struct vsock_dev *d)
{
    struct virtio_dev *vd = &d->vd;
    int pushed = 0;

    if (d->in_rx || !virtio_dev_live(vd) || !vd->vqs[VSOCK_RX_Q].ready)
        return;
    d->in_rx = 1;
    for (;;) {
        struct vsock_conn *c = NULL;
        struct vsock_rst rst = { 0, 0 };

        if (!d->rst_count) {
            for (unsigned k = 0; k < d->nconns && !c; k++) {
                unsigned i = (d->rr + k) % d->nconns;
                int has = conn_has_packet(d, d->conns[i]);
                if (has < 0) {          /* the connection was reset: rescan */
                    k = (unsigned)-1;
                    if (!d->nconns)
                        break;
                    continue;
                }
                if (has)
                    c = d->conns[i], d->rr = (i + 1) % d->nconns;
            }
            if (!c && !d->rst_count)
                break;
        }
        if (virtio_dev_pop(vd, VSOCK_RX_Q, &d->rx_chain) <= 0)
            break;
        uint64_t room = d->rx_chain.write_len, len;
        if (room < VSOCK_HDR_SIZE) {
            virtio_dev_log(vd, "virtio-vsock: %llu-byte rx buffer cannot hold the %u-byte "
                           "header: returned empty", (unsigned long long)room, VSOCK_HDR_SIZE);
            len = 0;
        } else if (d->rst_count) {
            rst = d->rsts[d->rst_head];
            d->rst_head = (d->rst_head + 1) % VSOCK_RST_QUEUE;
            d->rst_count--;
            struct vsock_hdr h = {
                .src_cid = VSOCK_CID_HOST, .dst_cid = d->cid, .src_port = rst.local_port,
                .dst_port = rst.peer_port, .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
            };
            vsock_hdr_encode(&h, d->rx_pkt);
            len = VSOCK_HDR_SIZE;
        } else {
            len = conn_packet(d, c, room);
        }
        if (len && vq_chain_write(vd->env.mem, &d->rx_chain, 0, d->rx_pkt, len))
            len = 0;
        if (virtio_dev_push(vd, VSOCK_RX_Q, &d->rx_chain, (uint32_t)len))
            break;
        pushed = 1;
    }
    d->in_rx = 0;
    if (pushed)
        virtio_dev_notify_used(vd, VSOCK_RX_Q);
}

static void event_process(struct vsock_dev *d)
{
    struct virtio_dev *vd = &d->vd;
    uint8_t ev[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };

    if (!d->event_pending || !virtio_dev_live(vd) || !vd->vqs[VSOCK_EVENT_Q].ready)
        return;
    if (virtio_dev_pop(vd, VSOCK_EVENT_Q, &d->ev_chain) <= 0)
        return;
    uint32_t len = d->ev_chain.write_len >= sizeof(ev) &&
                   !vq_chain_write(vd->env.mem, &d->ev_chain, 0, ev, sizeof(ev)) ? sizeof(ev) : 0;
    d->event_pending = 0;
    if (!virtio_dev_push(vd, VSOCK_EVENT_Q, &d->ev_chain, len))
        virtio_dev_notify_used(vd, VSOCK_EVENT_Q);
}

static void vsock_notify(struct virtio_dev *vd, unsigned q)
{
    struct vsock_dev *d = (struct vsock_dev *)vd;

    if (q == VSOCK_TX_Q)
        tx_process(d);
    event_process(d);
    rx_process(d);
}

static void vsock_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    struct vsock_dev *d = (struct vsock_dev *)vd;
    uint8_t cfg[VSOCK_CFG_SIZE];

    for (unsigned i = 0; i < VSOCK_CFG_SIZE; i++)
        cfg[i] = (uint8_t)(d->cid >> (8 * i));
    memcpy(buf, cfg + off, len);
}

static void drop_all(struct vsock_dev *d)
{
    while (d->nconns)
        conn_free(d, d->conns[d->nconns - 1], 1);
    d->rst_head = d->rst_count = 0;
    d->rr = 0;
}

/* Device reset: connections end, except host connections whose REQUEST the guest has not
 * seen yet (a client that connected while the guest was still booting waits for the
 * driver that is being set up instead of being closed by its first reset). */
static void vsock_reset(struct virtio_dev *vd)
{
    struct vsock_dev *d = (struct vsock_dev *)vd;

    for (unsigned i = d->nconns; i-- > 0;) {
        struct vsock_conn *c = d->conns[i];
        if (!(c->state == CONN_REQUESTED && (c->pend & PEND_REQUEST)))
            conn_free(d, c, 1);
    }
    d->rst_head = d->rst_count = 0;
    d->rr = 0;
}

static const struct virtio_dev_ops vsock_ops = {
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .queue_max = VSOCK_QUEUE_SIZE,
    .config_size = VSOCK_CFG_SIZE,
    .config_read = vsock_config_read,
    .queue_notify = vsock_notify,
    .reset = vsock_reset,
};

/* Host side API. */
void vsock_dev_set_host(struct vsock_dev *d, const struct vsock_host_ops *ops, void *host)
{
    drop_all(d);
    if (d->host_ops && d->host_ops->destroy)
        d->host_ops->destroy(d->host);
    d->host_ops = ops;
    d->host = host;
}

uint64_t vsock_dev_cid(const struct vsock_dev *d)
{
    return d->cid;
}

unsigned vsock_dev_nconns(const struct vsock_dev *d)
{
    return d->nconns;
}

int vsock_host_connect(struct vsock_dev *d, uint32_t port, void *hctx,
                       struct vsock_conn **out)
{
    struct vsock_conn *c;
    uint32_t local = d->next_host_port;

    *out = NULL;
    trace_io(d, DEVICE_HOST_IN, VT_HOST_CONNECT, 0, port, 0, NULL, 0);
    if (d->nconns >= VSOCK_MAX_CONNS) {
        virtio_dev_log(&d->vd, "virtio-vsock: connection limit (%u) reached: host connect "
                       "to guest port %u refused", VSOCK_MAX_CONNS, port);
        return -EMFILE;
    }
    /* Local ports are unique among live connections; fewer than 2^32 of them exist. */
    while (local < VSOCK_HOST_PORT_BASE || local_port_used(d, local))
        local = local + 1 < VSOCK_HOST_PORT_BASE ? VSOCK_HOST_PORT_BASE : local + 1;
    d->next_host_port = local + 1;
    if (!(c = conn_new(d, local, port)))
        return -ENOMEM;
    c->host_initiated = 1;
    c->state = CONN_REQUESTED;
    c->hctx = hctx;
    c->pend = PEND_REQUEST;
    *out = c;
    rx_process(d);
    return 0;
}

void vsock_host_readable(struct vsock_dev *d, struct vsock_conn *c)
{
    trace_in(d, VT_READABLE, c, 0, NULL, 0);
    c->host_readable = 1;
    rx_process(d);
}

void vsock_host_writable(struct vsock_dev *d, struct vsock_conn *c)
{
    trace_in(d, VT_WRITABLE, c, 0, NULL, 0);
    if (!conn_flush(d, c))
        rx_process(d);
}

void vsock_host_close(struct vsock_dev *d, struct vsock_conn *c)
{
    trace_in(d, VT_HOST_CLOSE, c, 0, NULL, 0);
    conn_reset(d, c, 0);
    rx_process(d);
}

int vsock_conn_wants_recv(const struct vsock_conn *c)
{
    return c->state == CONN_ESTABLISHED && c->stage_off >= c->stage_len && peer_credit(c) &&
           !c->host_eof && !(c->shut_by_guest & VSOCK_SHUTDOWN_RCV);
}

int vsock_conn_wants_send(const struct vsock_conn *c)
{
    return c->held_len != 0;
}

/* Every host event the poll finds fills rx buffers itself (vsock_host_readable, ...), as a
 * guest notify or a timer does: the poll touches guest memory only for those and for a
 * TRANSPORT_RESET owed since a restore, so a trace, which records the events and not the
 * polls, replays it. */
static void vsock_poll(void *state)
{
    struct vsock_dev *d = state;

    event_process(d);
    if (d->host_ops && d->host_ops->poll)
        d->host_ops->poll(d->host);
}

static int vsock_poll_fd(void *state)
{
    struct vsock_dev *d = state;

    return d->host_ops && d->host_ops->poll_fd ? d->host_ops->poll_fd(d->host) : -1;
}

static void vsock_destroy(void *state)
{
    struct vsock_dev *d = state;

    if (!d)
        return;
    vsock_dev_set_host(d, NULL, NULL);
    if (d->timer_id > 0)
        d->vd.env.clock->cancel(d->vd.env.clock->opaque, d->timer_id);
    free(d);
}

/* Without uds= every guest connect is refused; going through a host that refuses keeps the
 * trace the same whether or not replay (which drops uds=) knows there was none. */
static int refuse_connect(void *host, struct vsock_conn *c, uint32_t port, void **hctx)
{
    (void)host;
    (void)c;
    (void)port;
    (void)hctx;
    return -ECONNREFUSED;
}

static const struct vsock_host_ops refuse_host_ops = { .connect = refuse_connect };

/* Replay: the device has no host socket; each host call asks the replayer for what the
 * recorded host answered at this point (a nested host-in, handed to vsock_host_input). */
static void replay_pull(struct vsock_dev *d, ssize_t none)
{
    d->replay_rc = none;
    d->replay_len = 0;
    d->vd.env.host_pull(d->vd.env.host_io_opaque);
}

static int replay_connect(void *host, struct vsock_conn *c, uint32_t port, void **hctx)
{
    (void)port;
    replay_pull(host, -ECONNREFUSED);
    *hctx = c;
    return (int)((struct vsock_dev *)host)->replay_rc;
}

static ssize_t replay_send(void *host, void *hctx, const void *buf, size_t len)
{
    (void)hctx;
    (void)buf;
    (void)len;
    replay_pull(host, -EPIPE);
    return ((struct vsock_dev *)host)->replay_rc;
}

static ssize_t replay_recv(void *host, void *hctx, void *buf, size_t len)
{
    struct vsock_dev *d = host;

    (void)hctx;
    replay_pull(d, -ECONNRESET);
    if (d->replay_rc > 0) {
        if (d->replay_len < len)
            len = d->replay_len;
        memcpy(buf, d->replay_data, len);
        return (ssize_t)len;
    }
    return d->replay_rc;
}

static const struct vsock_host_ops replay_host_ops = {
    .connect = replay_connect,
    .send = replay_send,
    .recv = replay_recv,
};

/* device_type.host_input: the recorded host events (the letters above trace_io), replay
 * only; a live device's host side is its socket. */
static int vsock_host_input(void *state, const uint8_t *data, size_t len, char *err,
                            size_t errlen)
{
    struct vsock_dev *d = state;
    struct vsock_conn *c = NULL;

    if (d->host_ops != &replay_host_ops) {
        snprintf(err, errlen, "virtio-vsock: host messages are taken in replay only (the "
                 "host side is uds=)");
        return -ENOTSUP;
    }
    if (len < VT_HDR) {
        snprintf(err, errlen, "virtio-vsock: host message of %zu bytes (at least %d)", len,
                 VT_HDR);
        return -EINVAL;
    }
    uint32_t local = get_le32(data + 1), peer = get_le32(data + 5);
    int32_t val = (int32_t)get_le32(data + 9);
    switch (data[0]) {
    case VT_HOST_CONNECT:
        return vsock_host_connect(d, peer, d, &c);
    case VT_RESULT:
        d->replay_rc = val;
        return 0;
    case VT_RECV_DATA:
        if (len - VT_HDR > VSOCK_RX_STAGE || (val > 0 && (size_t)val != len - VT_HDR)) {
            snprintf(err, errlen, "virtio-vsock: host read of %d with %zu bytes (at most "
                     "%u)", val, len - VT_HDR, VSOCK_RX_STAGE);
            return -EINVAL;
        }
        d->replay_rc = val;
        d->replay_len = len - VT_HDR;
        memcpy(d->replay_data, data + VT_HDR, d->replay_len);
        return 0;
    case VT_READABLE:
    case VT_WRITABLE:
    case VT_HOST_CLOSE:
        if (!(c = conn_find(d, local, peer))) {
            snprintf(err, errlen, "virtio-vsock: host message '%c' for connection %u:%u, "
                     "which does not exist", data[0], local, peer);
            return -ENOENT;
        }
        if (data[0] == VT_READABLE)
            vsock_host_readable(d, c);
        else if (data[0] == VT_WRITABLE)
            vsock_host_writable(d, c);
        else
            vsock_host_close(d, c);
        return 0;
    default:
        snprintf(err, errlen, "virtio-vsock: host message kind 0x%02x unknown", data[0]);
        return -EINVAL;
    }
}

static int parse_cid(const char *s, uint64_t *out)
{
    char *end;

    if (!*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v < 3 || v > 0xfffffffeULL)
        return -EINVAL;
    *out = v;
    return 0;
}

static int vsock_create(const char *args, const struct device_env *env, void **state,
                        char *err, size_t errlen)
{
    static const char *const allowed[] = { "cid", "uds", "id", NULL };
    char cid[64] = "", uds[DEVICE_ARGS_MAX] = "";
    struct vsock_dev *d;
    int rc;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    if (device_arg_get(args, "cid", cid, sizeof(cid)) != 1) {
        snprintf(err, errlen, "virtio-vsock: cid= is required (3..4294967294)");
        return -EINVAL;
    }
    if (device_arg_get(args, "uds", uds, sizeof(uds)) < 0) {
        snprintf(err, errlen, "virtio-vsock: uds= is too long");
        return -EINVAL;
    }
    /* The packet buffers (68 KiB) are written before they are read: only the state before
     * them is cleared, so a device costs no page faults for buffers it never uses (a
     * fuzzer creates one per input). */
    if (!(d = malloc(sizeof(*d)))) {
        snprintf(err, errlen, "virtio-vsock: out of memory");
        return -ENOMEM;
    }
    memset(d, 0, offsetof(struct vsock_dev, tx_pkt));
    if (parse_cid(cid, &d->cid)) {
        snprintf(err, errlen, "virtio-vsock: cid=%s is not a guest CID (3..4294967294; 0, 1, "
                 "2 and 4294967295 are reserved)", cid);
        free(d);
        return -EINVAL;
    }
    d->next_host_port = VSOCK_HOST_PORT_BASE;
    virtio_dev_init(&d->vd, &vsock_ops, env, 0);
    if (uds[0] && (rc = vsock_uds_open(d, uds, err, errlen))) {
        free(d);
        return rc;
    }
    if (!uds[0])
        vsock_dev_set_host(d, env->host_pull ? &replay_host_ops : &refuse_host_ops, d);
    *state = d;
    return 0;
}

/* Snapshots: the core and the CID. Host sockets do not survive a restore, so connections
 * are not saved: the restored device has none and tells the guest with TRANSPORT_RESET. */
static int vsock_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vsock_dev *d = state;

    (void)err;
    (void)errlen;
    virtio_dev_save(&d->vd, w);
    snapshot_put_u64(w, d->cid);
    return 0;
}

static int vsock_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct vsock_dev *d = state;
    int rc = virtio_dev_load(&d->vd, r, err, errlen);

    if (rc)
        return rc;
    uint64_t cid = snapshot_get_u64(r, "vsock guest CID");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (cid != d->cid)
        return snapshot_fail(r, err, errlen, "vsock guest CID %llu does not match this "
                             "device's cid=%llu", (unsigned long long)cid,
                             (unsigned long long)d->cid);
    drop_all(d);
    d->event_pending = 1;
    return 0;
}

const struct device_type virtio_vsock_type = {
    .kind = "virtio-vsock",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = vsock_create,
    .ops = &virtio_mmio_ops,
    .destroy = vsock_destroy,
    .save = vsock_save,
    .load = vsock_load,
    .poll = vsock_poll,
    .poll_fd = vsock_poll_fd,
    .host_input = vsock_host_input,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_VSOCK,
};
