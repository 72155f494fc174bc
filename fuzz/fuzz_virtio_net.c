/* Fuzz target: virtio-net (devices/virtio/virtio_net.c) with the loop backend (every frame
 * the guest sends comes back to it), receive, transmit and control queues, driven by the
 * mock virtio driver.
 *
 * Input: [option byte (fuzz/mock_common.h)][feature byte] then 3-byte ops [kind][a][b]:
 *   kind % 6 = 0: post a receive buffer of 1 + 8a bytes (b & 1: split over 2 descriptors)
 *              1: transmit a frame of 8a + (b >> 5) bytes; b & 3 picks the header: whole,
 *                 in its own descriptor, 8 bytes short, or device-writable; b & 4 sets
 *                 NEEDS_CSUM (csum_start a, csum_offset b >> 3), b & 8 a GSO type,
 *                 b & 16 addresses another station (filtered once promiscuous is off)
 *              2: control command class a % 4, command b % 4, (b >> 2) % 16 data bytes
 *                 (from the input), b & 0x80: no ack byte
 *              3: a frame of 8a bytes arrives from the host (dst by b % 3)
 *              4: config-space read at a % 16
 *              5: device reset and set up again
 *   At most MAX_OPS ops: longer inputs are ignored.
 *   Feature byte: bit 0 MRG_RXBUF, bit 1 CSUM, bit 2 CTRL_VQ + CTRL_RX + CTRL_MAC_ADDR.
 * Invariants (abort() on violation):
 *   - what the guest receives is a subsequence, in order and byte for byte, of the frames
 *     the device took from the host (drops allowed: filter, size, reset; never invented or
 *     altered), with a 12-byte header whose num_buffers matches the buffers used;
 *   - a used receive buffer's length never exceeds what was posted;
 *   - transmit buffers complete with used length 0 and the device never writes them;
 *   - control commands answer VIRTIO_NET_OK or VIRTIO_NET_ERR in one byte, or nothing
 *     when there was no byte to answer in;
 *   - the device status stays legal and the interrupt line follows InterruptStatus.
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h), host frames
 * included. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_net.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUN_SEED 1
#define HDR 12
#define RX_SLOTS 16
#define SLOT 2048
/* At most MAX_OPS operations per input (longer inputs are ignored): enough to fill and
 * drain the 64-frame receive queue and the backend's 64 held frames, and short enough for
 * >= 5000 exec/s. Frames remembered from the host side: every frame an input can make the
 * device take (at most one per op), so none is forgotten before it could arrive. */
#define MAX_OPS 160
#define MAX_INPUT (2 + 3 * MAX_OPS)
#define FIFO MAX_OPS
#define FRAME_MAX 1518

struct frame { uint32_t len; uint8_t data[FRAME_MAX]; };

static struct frame fifo[FIFO];     /* not cleared per input: only [head, head+count) counts */

static struct {
    unsigned head, count;
    uint64_t rx_gpa[MOCK_QUEUE_MAX];        /* posted receive buffer by id */
    uint32_t rx_len[MOCK_QUEUE_MAX];
    uint8_t slot_used[RX_SLOTS];
    unsigned slot_of[MOCK_QUEUE_MAX];
    uint8_t pending[FRAME_MAX + SLOT];       /* a mergeable frame being reassembled */
    uint32_t pend_len, pend_left;
} st;

static void host_io(void *opaque, int dir, const void *p, size_t len)
{
    fzt_host_io(opaque, dir, p, len);
    if (dir == DEVICE_HOST_OUT)
        return;
    if (len > FRAME_MAX)
        fz_abort();                         /* the device took more than an MTU frame */
    struct frame *f = &fifo[(st.head + st.count) % FIFO];
    if (st.count == FIFO)
        abort();                            /* MAX_INPUT keeps this from happening */
    memcpy(f->data, p, len);
    f->len = (uint32_t)len;
    st.count++;
}

/* A whole frame reached the guest: it must be one the host delivered, later than the last. */
static void frame_arrived(const uint8_t *p, uint32_t len)
{
    while (st.count) {
        struct frame *f = &fifo[st.head];
        st.head = (st.head + 1) % FIFO;
        st.count--;
        if (f->len == len && !memcmp(f->data, p, len))
            return;
    }
    fz_abort();                             /* invented, altered or out of order */
}

static void collect_rx(struct mock_virtio *m, int mrg)
{
    uint32_t id, len;

    while (mock_vq_get_used(m, 0, &id, &len) == 1) {
        if (id >= MOCK_QUEUE_MAX || len > st.rx_len[id])
            fz_abort();
        const uint8_t *b = mock_virtio_host(m, st.rx_gpa[id], st.rx_len[id]);
        st.slot_used[st.slot_of[id]] = 0;
        if (st.pend_left) {                 /* a later buffer of a mergeable frame */
            memcpy(st.pending + st.pend_len, b, len);
            st.pend_len += len;
        } else {
            if (len < HDR)
                fz_abort();
            uint16_t nb = (uint16_t)(b[10] | b[11] << 8);
            if (nb < 1 || (!mrg && nb != 1) || b[0] != 0 || b[1] != 0)
                fz_abort();
            memcpy(st.pending, b + HDR, len - HDR);
            st.pend_len = len - HDR;
            st.pend_left = nb;
        }
        if (st.pend_len > FRAME_MAX)
            fz_abort();
        if (--st.pend_left == 0)
            frame_arrived(st.pending, st.pend_len);
    }
}

static void post_rx(struct mock_virtio *m, uint64_t area, unsigned a, unsigned b)
{
    unsigned slot, len = 1 + 8 * a;

    for (slot = 0; slot < RX_SLOTS && st.slot_used[slot]; slot++)
        ;
    if (slot == RX_SLOTS)
        return;
    uint64_t gpa = area + (uint64_t)slot * SLOT;
    struct mock_buf mb[2] = { { gpa, len, 1 }, { gpa, 0, 1 } };
    unsigned nb = 1;
    if ((b & 1) && len > 1) {
        mb[0].len = len / 2;
        mb[1] = (struct mock_buf){ gpa + len / 2, len - len / 2, 1 };
        nb = 2;
    }
    int id = mock_vq_add(m, 0, mb, nb);
    if (id < 0)
        return;
    st.slot_used[slot] = 1;
    st.slot_of[id] = slot;
    st.rx_gpa[id] = gpa;
    st.rx_len[id] = len;
    mock_vq_kick(m, 0);
}

static void make_frame(uint8_t *f, uint32_t len, unsigned who, unsigned seq)
{
    static const uint8_t dst[3][6] = { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
                                       { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
                                       { 0x52, 0x54, 0x00, 0x99, 0x99, 0x99 } };
    static uint8_t pattern[FRAME_MAX + 32];
    if (!pattern[1])
        for (unsigned i = 0; i < sizeof pattern; i++)
            pattern[i] = (uint8_t)(i * 13 + 1);
    memcpy(f, pattern, len);
    memcpy(f, dst[who % 3], len < 6 ? len : 6);
    if (len >= 10)
        memcpy(f + 6, &seq, 4);             /* frames differ: order is checkable */
}

static void transmit(struct mock_virtio *m, uint64_t tx, unsigned a, unsigned b, unsigned seq)
{
    uint32_t flen = 8 * a + (b >> 5), used;
    uint8_t *h = mock_virtio_host(m, tx, HDR + FRAME_MAX + 64);
    struct mock_buf mb[2];
    unsigned nb = 1;

    if (flen > FRAME_MAX + 32)
        flen = FRAME_MAX + 32;
    memset(h, 0, HDR);
    if (b & 4) {
        h[0] = 1;
        h[6] = (uint8_t)a;
        h[8] = (uint8_t)(b >> 3);
    }
    if (b & 8)
        h[1] = 1;
    make_frame(h + HDR, flen, (b & 16) ? 2 : 0, seq);
    switch (b & 3) {
    case 0: mb[0] = (struct mock_buf){ tx, HDR + flen, 0 }; break;
    case 1: mb[0] = (struct mock_buf){ tx, HDR, 0 };
            mb[1] = (struct mock_buf){ tx + HDR, flen, 0 }; nb = 2; break;
    case 2: mb[0] = (struct mock_buf){ tx, HDR - 8, 0 }; break;
    case 3: mb[0] = (struct mock_buf){ tx, 4, 0 };
            mb[1] = (struct mock_buf){ tx + 4, HDR - 4 + flen, 1 }; nb = 2; break;
    }
    static uint8_t before[HDR + FRAME_MAX + 64];
    memcpy(before, h, sizeof before);
    int r = mock_vq_request(m, 1, mb, nb, &used);
    if (r == -EAGAIN || (r >= 0 && used != 0))
        fz_abort();                         /* transmit buffers complete at once, unwritten */
    if ((b & 3) != 3 && memcmp(before, h, sizeof before))
        fz_abort();
}

static void control(struct mock_virtio *m, uint64_t c, unsigned a, unsigned b,
                    const uint8_t *src, size_t avail)
{
    size_t n = (b >> 2) % 16;
    uint8_t *p = mock_virtio_host(m, c, 2 + 16 + 1);
    uint32_t used;

    if (n > avail)
        n = avail;
    p[0] = (uint8_t)(a % 4);
    p[1] = (uint8_t)(b % 4);
    memcpy(p + 2, src, n);
    p[2 + n] = 0xee;
    struct mock_buf mb[2] = { { c, (uint32_t)(2 + n), 0 }, { c + 2 + n, 1, 1 } };
    int r = mock_vq_request(m, 2, mb, (b & 0x80) ? 1 : 2, &used);
    if (r == -EAGAIN)
        fz_abort();
    if (r >= 0 && (used > ((b & 0x80) ? 0u : 1u) ||
                   (used == 1 && p[2 + n] != 0 && p[2 + n] != 1)))
        fz_abort();
}

static uint64_t features(uint8_t f)
{
    uint64_t x = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MTU) |
                 VIRTIO_BIT(VIRTIO_NET_F_STATUS);
    if (f & 1)
        x |= VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
    if (f & 2)
        x |= VIRTIO_BIT(VIRTIO_NET_F_CSUM);
    if (f & 4)
        x |= VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
             VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
    return x;
}

static void forget_driver_state(void)
{
    memset(st.slot_used, 0, sizeof st.slot_used);
    st.pend_len = st.pend_left = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char args[] = "net=loop,mtu=1500";
    struct mock_virtio m;
    char err[256];
    uint8_t host_frame[FRAME_MAX];

    if (size < 2 || size > MAX_INPUT)
        return 0;
    memset(&st, 0, sizeof st);
    if (fz_mock_init(&m, fz_mock_ram(data[0], 3) + 64 * 1024, 0) < 0)
        abort();
    fzt_begin(&m, &virtio_net_type, args, RUN_SEED);
    m.env.host_io = host_io;
    if (mock_virtio_create(&m, &virtio_net_type, args, err, sizeof err) < 0)
        abort();    /* a well-formed argument string must be accepted */
    fzt_route(&m);
    uint64_t feat = features(data[1]);
    int mrg = data[1] & 1;
    if (fz_mock_setup(&m, data[0], feat) < 0)
        abort();
    uint64_t rx = mock_virtio_alloc(&m, (uint64_t)RX_SLOTS * SLOT, 64);
    uint64_t tx = mock_virtio_alloc(&m, HDR + FRAME_MAX + 64, 64);
    uint64_t ctl = mock_virtio_alloc(&m, 64, 16);
    if (!rx || !tx || !ctl)
        abort();

    for (size_t p = 2; p + 3 <= size; p += 3) {
        unsigned kind = data[p] % 6, a = data[p + 1], b = data[p + 2];
        if (!fz_live(&m) && kind != 5)
            continue;
        switch (kind) {
        case 0: post_rx(&m, rx, a, b); break;
        case 1: transmit(&m, tx, a, b, (unsigned)p); break;
        case 2:
            if (feat & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ))
                control(&m, ctl, a, b, data + p + 3, size - p - 3);
            break;
        case 3: {
            uint32_t len = 8u * a > FRAME_MAX ? FRAME_MAX : 8u * a;
            make_frame(host_frame, len, b, (unsigned)p);
            virtio_net_receive(m.state, host_frame, len);
            break;
        }
        case 4: {
            uint64_t v;
            mock_virtio_read(&m, VIRTIO_MMIO_CONFIG + a % 16, 1u << (b % 4), &v);
            break;
        }
        case 5:
            mock_virtio_reset(&m);
            forget_driver_state();
            st.count = 0;                   /* frames queued for the old driver are gone */
            if (fz_mock_setup(&m, data[0], feat) < 0)
                abort();
            break;
        }
        if (fz_live(&m))
            collect_rx(&m, mrg);
        fz_check_status(&m);
    }
    fz_check_status(&m);
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
