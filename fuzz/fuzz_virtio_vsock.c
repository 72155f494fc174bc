/* Fuzz target: virtio-vsock (devices/virtio/virtio_vsock.c) with a fake host side, driven by
 * the mock virtio driver: guest packets on the tx queue, rx buffers of any size, host
 * connects, host data, host end of stream, host closes, blocked host writes, resets.
 *
 * Input: [option byte (fuzz/mock_common.h)] then 4-byte ops [kind][a][b][c]:
 *   kind % 8 = 0: guest packet: op a % 9, guest port GP[b & 3] -> host port HP[b >> 2 & 3],
 *                 dst_cid 2 unless b & 0x10 (then c), src_cid the guest's unless b & 0x20,
 *                 type 2 if b & 0x40, payload c * 17 bytes in a buffer of header + payload
 *                 (b & 0x80: half the payload is missing), flags c & 3, buf_alloc
 *                 4096 << (a >> 6), fwd_cnt honest (bytes received) unless a & 8
 *              1: post a % 4 + 1 rx buffers of 44 + b * 4 bytes (b < 4: b * 10 bytes)
 *              2: host connects to guest port GP[a & 3]
 *              3: host connection a has b * 32 more bytes for the guest
 *              4: host connection a blocks (b & 1) or takes guest bytes again
 *              5: host connection a reaches end of stream
 *              6: host connection a closes
 *              7: a == 0xff: device reset and set-up again; a == 0xfe: the clock moves
 *                 (b + 1) * 100 ms (request and shutdown timeouts); else the VMM's poll
 * Invariants (abort() on violation):
 *   - every rx packet fits its buffer, is addressed host -> guest CID, and its used length
 *     is header + hdr.len;
 *   - the device never sends a connection more payload than the guest's credit
 *     (buf_alloc - (bytes sent - fwd_cnt), as the guest last advertised it);
 *   - host bytes reach the guest in order, none lost or invented (a per-offset pattern);
 *   - the device's connections are exactly the host connections not yet closed: closed()
 *     comes once per connection, never for one the host closed itself, none leak;
 *   - device status legal, interrupt line follows InterruptStatus (mock_common.h).
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "devices/virtio/virtio_vsock.h"
#include "devices/virtio/vsock_spec.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUN_SEED 1
#define CID 3
#define NFAKE 64
#define NPAIR 64
#define MAXPAY (255 * 17)
#define RXPOOL 32                       /* the largest queue the option byte picks */
#define RXMAX (VSOCK_HDR_SIZE + 255 * 4)

static const uint32_t GP[4] = { 1024, 1025, 7, 0xffffffffu };
static const uint32_t HP[4] = { 80, 81, VSOCK_HOST_PORT_BASE, VSOCK_HOST_PORT_BASE + 1 };

/* Names the broken invariant on stderr, then stops like every target does. */
static void bad(const char *why)
{
    fprintf(stderr, "fuzz invariant violated: %s\n", why);
    fz_abort();
}

static uint8_t pattern(uint64_t off) { return (uint8_t)(off * 131 + 7); }

struct fake {
    int used, closed, gone;            /* closed: closed() came; gone: the host closed it */
    uint64_t avail, off;               /* host bytes offered / read so far */
    int eof, block;
    struct vsock_conn *vc;
};

static struct fake fakes[NFAKE];
static unsigned nfake;

/* The guest's view of one (host port, guest port) pair. */
static struct pair {
    uint32_t local, peer;
    uint32_t alloc, fwd;               /* last advertised by the guest */
    uint32_t sent;                     /* payload the device sent since the connection began */
    uint64_t got;                      /* host bytes received (pattern offset) */
} pairs[NPAIR];
static unsigned npair;

static struct pair *pair_of(uint32_t local, uint32_t peer)
{
    for (unsigned i = 0; i < npair; i++)
        if (pairs[i].local == local && pairs[i].peer == peer)
            return &pairs[i];
    if (npair == NPAIR)
        return NULL;
    pairs[npair] = (struct pair){ .local = local, .peer = peer };
    return &pairs[npair++];
}

static struct fake *fake_new(void)
{
    if (nfake == NFAKE)
        return NULL;
    struct fake *f = &fakes[nfake++];
    memset(f, 0, sizeof *f);
    f->used = 1;
    return f;
}

static int f_connect(void *host, struct vsock_conn *c, uint32_t port, void **hctx)
{
    (void)host;
    struct fake *f = port == 81 ? NULL : fake_new();   /* nobody listens on host port 81 */
    if (!f)
        return -ECONNREFUSED;
    f->vc = c;
    *hctx = f;
    return 0;
}

static void f_established(void *host, void *hctx, uint32_t host_port)
{
    (void)host;
    (void)host_port;
    struct fake *f = hctx;
    if (f->closed || f->gone)
        bad("host called on a closed connection");
}

static ssize_t f_send(void *host, void *hctx, const void *buf, size_t len)
{
    (void)host;
    (void)buf;
    struct fake *f = hctx;
    if (f->closed || f->gone)
        bad("host called on a closed connection");
    if (f->block)
        return 0;
    return (ssize_t)(len > 1000 ? 1000 : len);          /* partial writes */
}

static ssize_t f_recv(void *host, void *hctx, void *buf, size_t len)
{
    (void)host;
    struct fake *f = hctx;
    if (f->closed || f->gone)
        bad("host called on a closed connection");
    if (f->off == f->avail)
        return f->eof ? 0 : -EAGAIN;
    if (len > f->avail - f->off)
        len = (size_t)(f->avail - f->off);
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = pattern(f->off + i);
    f->off += len;
    return (ssize_t)len;
}

static void f_shutdown(void *host, void *hctx, uint32_t flags)
{
    (void)host;
    (void)flags;
    struct fake *f = hctx;
    if (f->closed || f->gone)
        bad("host called on a closed connection");
}

static void f_closed(void *host, void *hctx)
{
    (void)host;
    struct fake *f = hctx;
    if (f->closed || f->gone)
        bad("once, and never after the host closed it");
    f->closed = 1;
}

static const struct vsock_host_ops fake_ops = {
    .connect = f_connect, .established = f_established, .send = f_send, .recv = f_recv,
    .shutdown = f_shutdown, .closed = f_closed,
};

static struct fake *fake_at(unsigned a)
{
    if (!nfake)
        return NULL;
    struct fake *f = &fakes[a % nfake];
    return f->closed || f->gone ? NULL : f;
}

static void check_conns(struct vsock_dev *d)
{
    unsigned open = 0;
    for (unsigned i = 0; i < nfake; i++)
        open += !fakes[i].closed && !fakes[i].gone;
    if (open != vsock_dev_nconns(d) || open > VSOCK_MAX_CONNS)
        bad("device connections differ from the host's open ones");
}

static uint64_t rx_gpa[MOCK_QUEUE_MAX];
static uint32_t rx_len[MOCK_QUEUE_MAX];
static int rx_slot[MOCK_QUEUE_MAX];             /* pool slot of each posted buffer id */
static int slot_busy[RXPOOL];

static void collect(struct mock_virtio *m)
{
    uint32_t id, used;

    while (mock_vq_get_used(m, VSOCK_RX_Q, &id, &used)) {
        if (id >= MOCK_QUEUE_MAX || used > rx_len[id])
            bad("used length past the rx buffer");
        slot_busy[rx_slot[id]] = 0;
        if (!used)
            continue;                   /* a buffer too small for a header comes back empty */
        const uint8_t *p = mock_virtio_host(m, rx_gpa[id], used);
        struct vsock_hdr h;
        if (used < VSOCK_HDR_SIZE || !p)
            bad("rx packet shorter than a header");
        vsock_hdr_decode(p, &h);
        if (used != VSOCK_HDR_SIZE + h.len || h.src_cid != VSOCK_CID_HOST || h.dst_cid != CID ||
            h.type != VSOCK_TYPE_STREAM)
            bad("rx packet header: length, CIDs or type wrong");
        struct pair *pr = pair_of(h.src_port, h.dst_port);
        if (!pr)
            continue;
        if (h.op == VSOCK_OP_REQUEST || h.op == VSOCK_OP_RESPONSE) {
            pr->sent = 0;               /* a connection begins: host stream offset 0 */
            pr->got = 0;
        }
        if (h.op != VSOCK_OP_RW) {
            if (h.len)
                bad("control packet with a payload");
            continue;
        }
        uint32_t in_flight = pr->sent - pr->fwd;
        if (in_flight >= pr->alloc || h.len > pr->alloc - in_flight)
            bad("past the guest's credit");
        for (uint32_t i = 0; i < h.len; i++)
            if (p[VSOCK_HDR_SIZE + i] != pattern(pr->got + i))
                bad("host bytes out of order, lost or invented");
        pr->sent += h.len;
        pr->got += h.len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pay[MAXPAY];
    struct mock_virtio m;
    char err[256];
    const char *args = "cid=3";

    if (size < 1)
        return 0;
    nfake = npair = 0;
    memset(slot_busy, 0, sizeof slot_busy);
    if (fz_mock_init(&m, fz_mock_ram(data[0], 3), 0) < 0)
        abort();
    fzt_begin(&m, &virtio_vsock_type, args, RUN_SEED);
    if (mock_virtio_create(&m, &virtio_vsock_type, args, err, sizeof err) < 0)
        abort();
    fzt_route(&m);
    struct vsock_dev *d = m.state;
    vsock_dev_set_host(d, &fake_ops, NULL);
    if (fz_mock_setup(&m, data[0], 0) < 0)
        abort();
    uint64_t txbuf = mock_virtio_alloc(&m, VSOCK_HDR_SIZE + MAXPAY, 16);
    uint64_t rxbuf = mock_virtio_alloc(&m, (uint64_t)RXPOOL * RXMAX, 16);
    if (!txbuf || !rxbuf)
        abort();

    for (size_t p = 1; p + 4 <= size; p += 4) {
        unsigned kind = data[p] % 8, a = data[p + 1], b = data[p + 2], c = data[p + 3];
        struct fake *f;
        switch (kind) {
        case 0: {
            if (!fz_live(&m))
                break;
            uint32_t gp = GP[b & 3], hp = HP[(b >> 2) & 3], len = c * 17;
            struct pair *pr = pair_of(hp, gp);
            struct vsock_hdr h = {
                .src_cid = (b & 0x20) ? 7 : CID, .dst_cid = (b & 0x10) ? c : VSOCK_CID_HOST,
                .src_port = gp, .dst_port = hp, .len = len,
                .type = (b & 0x40) ? 2 : VSOCK_TYPE_STREAM, .op = (uint16_t)(a % 9),
                .flags = c & 3, .buf_alloc = 4096u << (a >> 6),
                .fwd_cnt = (a & 8) || !pr ? (uint32_t)(c * 977) : (uint32_t)(pr ? pr->got : 0),
            };
            /* What the device will believe, if this pair is (or becomes) a connection. */
            if (pr && h.src_cid == CID && h.dst_cid == VSOCK_CID_HOST &&
                h.type == VSOCK_TYPE_STREAM && (!(b & 0x80) || !len)) {
                pr->alloc = h.buf_alloc;
                pr->fwd = h.fwd_cnt;
            }
            uint8_t *host = mock_virtio_host(&m, txbuf, VSOCK_HDR_SIZE + len);
            vsock_hdr_encode(&h, host);
            memcpy(host + VSOCK_HDR_SIZE, pay, len);
            struct mock_buf mb = { txbuf, VSOCK_HDR_SIZE + ((b & 0x80) ? len / 2 : len), 0 };
            uint32_t used;
            if (mock_vq_request(&m, VSOCK_TX_Q, &mb, 1, &used) == -EAGAIN && fz_live(&m))
                bad("tx buffers always complete");
            break;
        }
        case 1:
            for (unsigned i = 0; i < a % 4 + 1; i++) {
                uint32_t len = b < 4 ? b * 10 : VSOCK_HDR_SIZE + b * 4;
                int slot = -1;
                for (int k = 0; k < RXPOOL && slot < 0; k++)
                    if (!slot_busy[k])
                        slot = k;
                if (slot < 0)
                    break;
                uint64_t gpa = rxbuf + (uint64_t)slot * RXMAX;
                struct mock_buf mb = { gpa, len ? len : 1, 1 };
                int id = mock_vq_add(&m, VSOCK_RX_Q, &mb, 1);
                if (id < 0)
                    break;
                slot_busy[slot] = 1;
                rx_slot[id] = slot;
                rx_gpa[id] = gpa;
                rx_len[id] = mb.len;
            }
            mock_vq_kick(&m, VSOCK_RX_Q);
            break;
        case 2: {
            struct vsock_conn *c2;
            if (!(f = fake_new()))
                break;
            if (vsock_host_connect(d, GP[a & 3], f, &c2))
                f->gone = 1;            /* refused: the host never had it */
            else
                f->vc = c2;
            break;
        }
        case 3:
            if ((f = fake_at(a))) {
                f->avail += b * 32u;
                vsock_host_readable(d, f->vc);
            }
            break;
        case 4:
            if ((f = fake_at(a))) {
                f->block = b & 1;
                vsock_host_writable(d, f->vc);
            }
            break;
        case 5:
            if ((f = fake_at(a))) {
                f->eof = 1;
                vsock_host_readable(d, f->vc);
            }
            break;
        case 6:
            if ((f = fake_at(a))) {
                f->gone = 1;
                vsock_host_close(d, f->vc);
            }
            break;
        case 7:
            if (a == 0xff) {
                collect(&m);
                mock_virtio_reset(&m);
                memset(slot_busy, 0, sizeof slot_busy);   /* the new rings start empty */
                if (fz_mock_setup(&m, data[0], 0) < 0)
                    bad("set-up after reset refused");
                for (unsigned i = 0; i < npair; i++)
                    pairs[i].alloc = 0;   /* nothing advertised on the new driver */
            } else if (a == 0xfe) {
                mock_virtio_advance(&m, (b + 1) * 100000000ull);
            } else {
                virtio_vsock_type.poll(m.state);
            }
            break;
        }
        collect(&m);
        check_conns(d);
        fz_check_status(&m);
    }
    fz_check_status(&m);
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
