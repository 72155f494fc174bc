/* virtio-vsock packets over the driver library (vvsock.h). */
#include "vvsock.h"

#include "../rt/rt.h"

#define RXSZ (VSOCK_HDR_SIZE + VVSOCK_RX_DATA)
#define TIMER_VECTOR 0x30      /* x86; arm64: the virtual timer's PPI (RT_TIMER_IRQ) */

static void post_rx(struct vvsock *v, unsigned slot)
{
    struct virtq_buf b = { v->rxbuf + (size_t)slot * RXSZ, RXSZ, 1 };
    int id = virtq_add(v->rx, &b, 1);
    GUEST_ASSERT(id >= 0);
    v->slot_of_id[id] = (int16_t)slot;
}

static void post_event(struct vvsock *v)
{
    struct virtq_buf b = { v->evbuf, 4, 1 };
    GUEST_ASSERT(virtq_add(v->ev, &b, 1) >= 0);
}

int vvsock_open(struct vvsock *v, const struct virtio_opts *o)
{
    struct virtio_mmio_loc loc;
    int r;

    memset(v, 0, sizeof *v);
    if (virtio_find(VIRTIO_ID_VSOCK, 0, &loc)) {
        printf("virtio: no virtio-vsock device found\n");
        return -VIRTIO_ENODEV;
    }
    printf("virtio: vsock at 0x%llx irq %u (%s)\n", (unsigned long long)loc.base, loc.irq,
           virtio_loc_source_name(loc.source));
    if ((r = virtio_dev_init(&v->dev, &loc, 0, o)))
        return r;
    v->cid = virtio_config_read64(&v->dev, 0);
    if ((r = virtio_queue_setup(&v->dev, VSOCK_RX_Q, &v->rx)) ||
        (r = virtio_queue_setup(&v->dev, VSOCK_TX_Q, &v->tx)) ||
        (r = virtio_queue_setup(&v->dev, VSOCK_EVENT_Q, &v->ev)))
        return r;
    v->rxbuf = virtio_alloc((size_t)VVSOCK_NRX * RXSZ, 64);
    v->txbuf = virtio_alloc(VSOCK_HDR_SIZE + VVSOCK_TX_DATA, 64);
    v->evbuf = virtio_alloc(4, 4);
    v->slot_of_id = virtio_alloc(2u * v->rx->size, 2);
    if (!v->rxbuf || !v->txbuf || !v->evbuf || !v->slot_of_id)
        return -VIRTIO_ENOSPC;
    for (unsigned i = 0; i < VVSOCK_NRX && i < v->rx->size; i++)
        post_rx(v, i);
    post_event(v);
    if ((r = virtio_dev_ready(&v->dev)))
        return r;
    virtq_kick(v->rx);
    virtq_kick(v->ev);
    virtio_dev_describe(&v->dev, "vsock");
    printf("vsock: guest cid %llu\n", (unsigned long long)v->cid);
    return 0;
}

void vvsock_send(struct vvsock *v, struct vsock_hdr *h, const void *data, uint32_t len)
{
    GUEST_ASSERT(len <= VVSOCK_TX_DATA);
    h->src_cid = v->cid;
    h->len = len;
    vsock_hdr_encode(h, v->txbuf);
    if (len)
        memcpy(v->txbuf + VSOCK_HDR_SIZE, data, len);
    struct virtq_buf b = { v->txbuf, VSOCK_HDR_SIZE + len, 0 };
    GUEST_ASSERT(virtq_add(v->tx, &b, 1) >= 0);
    virtq_kick(v->tx);
    uint16_t id;
    uint32_t used;
    virtq_wait_used(v->tx, &id, &used);
}

int vvsock_poll(struct vvsock *v, struct vsock_hdr *h, void *data)
{
    uint16_t id;
    uint32_t len;

    if (virtq_get_used(v->ev, &id, &len)) {
        v->transport_resets++;
        post_event(v);
        virtq_kick(v->ev);
    }
    if (!virtq_get_used(v->rx, &id, &len))
        return 0;
    unsigned slot = (unsigned)v->slot_of_id[id];
    GUEST_ASSERT(slot < VVSOCK_NRX && len >= VSOCK_HDR_SIZE && len <= RXSZ);
    const uint8_t *p = v->rxbuf + (size_t)slot * RXSZ;
    vsock_hdr_decode(p, h);
    GUEST_ASSERT(h->len == len - VSOCK_HDR_SIZE);
    if (h->len)
        memcpy(data, p + VSOCK_HDR_SIZE, h->len);
    post_rx(v, slot);
    virtq_kick(v->rx);
    return 1;
}

static void on_timer(struct rt_irq_frame *f)
{
    (void)f;
    rt_irq_eoi();
}

int vvsock_idle_start(struct vvsock *v)
{
    uint64_t tick = virtio_cmdline_u64("tick", 10000);

    if (tick > 0xffffffffu) {
        printf("vsock: bad tick=%llu (0..4294967295)\n", (unsigned long long)tick);
        return -VIRTIO_EINVAL;
    }
    v->tick = (uint32_t)tick;
    if (v->tick) {
        rt_set_handler(RT_TIMER_IRQ(TIMER_VECTOR), on_timer);
        rt_timer_init();
        rt_timer_start(RT_TIMER_IRQ(TIMER_VECTOR), v->tick, 1, 1);
    }
    return 0;
}

void vvsock_idle(struct vvsock *v)
{
    if (v->tick)
        rt_halt();
}

void vvsock_idle_stop(struct vvsock *v)
{
    if (v->tick)
        rt_timer_stop();
}
