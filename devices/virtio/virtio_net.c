/* virtio-net device model: transmit and receive queues, the control queue, receive
 * filtering, and the bounded queue of frames waiting for guest buffers. The host side is a
 * backend (devices/net/net_backend.h); everything the backend delivers and everything the
 * device hands it goes through env.host_io so a trace can replay it without a backend. */
#include "devices/virtio/virtio_net.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "devices/net/net_backend.h"
#include "devices/net/net_csum.h"
#include "vmm/snapshot.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_QUEUE_SIZE 256
#define ETH_HLEN 14
#define ETH_VLAN_HLEN 18
#define FRAME_MAX (VIRTIO_NET_MTU_MAX + ETH_VLAN_HLEN)
#define CTRL_DATA_MAX (2 * (4 + 6 * VQ_MAX_SIZE))

struct mac_table {
    unsigned n;
    int overflow;                       /* more entries than fit: accept that whole class */
    uint8_t mac[VIRTIO_NET_MAC_TABLE][6];
};

struct vnet {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    struct net_backend *be;
    uint8_t mac[6], default_mac[6];
    uint16_t mtu;
    /* Receive filter (CTRL_RX / MAC_TABLE_SET); reset: promiscuous, as QEMU starts. */
    int promisc, allmulti;
    struct mac_table uni, multi;
    /* Frames from the backend waiting for receive buffers, oldest at head: slot i holds
     * plen[i] bytes at pdata + i * frame_max (sized by the MTU, not the largest MTU). */
    uint8_t *pdata;
    uint32_t plen[VIRTIO_NET_PENDING];
    unsigned phead, pcount;
    int in_flush;                       /* receive delivery running (re-entry from a backend) */
    int in_backend;                     /* inside a call into the backend (send, resume) */
    struct virtio_net_counters cnt;
    struct vq_chain rx_chain, rx_first, tx_chain, ctrl_chain;
    uint8_t tx_buf[VIRTIO_NET_HDR_SIZE + FRAME_MAX];
    uint8_t ctrl_buf[2 + CTRL_DATA_MAX];
};

static unsigned frame_max(const struct vnet *n)
{
    return (unsigned)n->mtu + ETH_VLAN_HLEN;
}

static void net_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    struct vnet *n = (struct vnet *)vd;
    uint8_t cfg[VIRTIO_NET_CFG_SIZE];
    uint16_t status = htole16(VIRTIO_NET_S_LINK_UP), pairs = htole16(1), mtu = htole16(n->mtu);

    memcpy(cfg + VIRTIO_NET_CFG_MAC, n->mac, 6);
    memcpy(cfg + VIRTIO_NET_CFG_STATUS, &status, 2);
    memcpy(cfg + VIRTIO_NET_CFG_MAX_PAIRS, &pairs, 2);
    memcpy(cfg + VIRTIO_NET_CFG_MTU, &mtu, 2);
    memcpy(buf, cfg + off, len);
}

static int net_validate_features(struct virtio_dev *vd, uint64_t f, char *err, size_t errlen)
{
    (void)vd;
    /* §5.1.3.1: the control-queue features need the control queue. */
    static const unsigned need_ctrl[] = { VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_MAC_ADDR };
    for (unsigned i = 0; i < 2; i++)
        if ((f >> need_ctrl[i] & 1) && !(f >> VIRTIO_NET_F_CTRL_VQ & 1)) {
            snprintf(err, errlen, "virtio-net: feature bit %u needs CTRL_VQ (bit %u)",
                     need_ctrl[i], VIRTIO_NET_F_CTRL_VQ);
            return -EINVAL;
        }
    return 0;
}

static void net_host_io(struct vnet *n, int dir, const void *data, size_t len)
{
    if (n->vd.env.host_io)
        n->vd.env.host_io(n->vd.env.host_io_opaque, dir, data, len);
}

static void backend_resume(struct vnet *n)
{
    if (n->be && n->be->ops->resume) {
        n->in_backend++;
        n->be->ops->resume(n->be);
        n->in_backend--;
    }
}

/* ---- receive ---- */

static int mac_in(const struct mac_table *t, const uint8_t *mac)
{
    for (unsigned i = 0; i < t->n; i++)
        if (!memcmp(t->mac[i], mac, 6))
            return 1;
    return 0;
}

/* §5.1.6.5.1: what the driver asked to receive. */
static int rx_wanted(const struct vnet *n, const uint8_t *dst)
{
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    if (n->promisc || !memcmp(dst, bcast, 6))
        return 1;
    if (dst[0] & 1)
        return n->allmulti || n->multi.overflow || mac_in(&n->multi, dst);
    return !memcmp(dst, n->mac, 6) || n->uni.overflow || mac_in(&n->uni, dst);
}

static void rx_hdr(uint8_t *hdr, uint16_t num_buffers)
{
    uint16_t nb = htole16(num_buffers);

    memset(hdr, 0, VIRTIO_NET_HDR_SIZE);
    memcpy(hdr + 10, &nb, 2);
}

/* Puts the oldest pending frame into receive buffers. 1: delivered or dropped (go on);
 * 0: not enough buffers yet (the frame waits); <0: the device is broken. */
static int rx_one(struct vnet *n)
{
    struct virtio_dev *vd = &n->vd;
    struct virtqueue *vq = &vd->vqs[VIRTIO_NET_RX_Q];
    const uint8_t *fdata = n->pdata + (size_t)n->phead * frame_max(n);
    const uint32_t flen = n->plen[n->phead];
    int mrg = virtio_dev_has(vd, VIRTIO_NET_F_MRG_RXBUF);
    unsigned limit = mrg ? VIRTIO_NET_MRG_MAX : 1, nbuf = 0;
    uint16_t ids[VIRTIO_NET_MRG_MAX], nds[VIRTIO_NET_MRG_MAX];
    uint32_t lens[VIRTIO_NET_MRG_MAX];
    uint64_t placed = 0;                /* frame bytes written so far */
    struct vq_mark mark;
    uint8_t hdr[VIRTIO_NET_HDR_SIZE];

    vq_mark_save(vq, &mark);
    while (nbuf == 0 || placed < flen) {
        if (nbuf == limit) {
            /* The guest's buffers are too small for this frame: it is dropped, the
             * buffers stay with the device for the next one. */
            vq_mark_restore(vq, &mark);
            virtio_dev_log(vd, "virtio-net: %u-byte frame does not fit in %u receive "
                           "buffer(s) (%llu bytes fit): dropped", flen, limit,
                           (unsigned long long)placed);
            n->cnt.rx_dropped++;
            return 1;
        }
        struct vq_chain *c = nbuf ? &n->rx_chain : &n->rx_first;
        int r = virtio_dev_pop(vd, VIRTIO_NET_RX_Q, c);
        if (r < 0)
            return r;
        if (r == 0) {
            vq_mark_restore(vq, &mark);
            return 0;
        }
        if (c->nread) {
            virtio_dev_fail(vd, "virtio-net: receive buffer %u has device-readable "
                            "descriptors", c->id);
            return -EINVAL;
        }
        /* The header goes in last (num_buffers is known only then): the first buffer's
         * frame bytes start after it. */
        uint64_t skip = nbuf ? 0 : VIRTIO_NET_HDR_SIZE;
        if (c->write_len < skip) {
            virtio_dev_fail(vd, "virtio-net: receive buffer %u holds %llu bytes, less than "
                            "the %u-byte header", c->id, (unsigned long long)c->write_len,
                            VIRTIO_NET_HDR_SIZE);
            return -EINVAL;
        }
        uint64_t take = c->write_len - skip;
        if (take > flen - placed)
            take = flen - placed;
        if (take && vq_chain_write(vd->env.mem, c, skip, fdata + placed, take)) {
            virtio_dev_fail(vd, "virtio-net: receive buffer %u cannot be written", c->id);
            return -EFAULT;
        }
        placed += take;
        ids[nbuf] = c->id;
        nds[nbuf] = c->ndesc;
        lens[nbuf] = (uint32_t)(take + skip);
        nbuf++;
    }
    rx_hdr(hdr, (uint16_t)nbuf);
    if (vq_chain_write(vd->env.mem, &n->rx_first, 0, hdr, sizeof(hdr))) {
        virtio_dev_fail(vd, "virtio-net: receive buffer %u cannot be written", ids[0]);
        return -EFAULT;
    }
    for (unsigned i = 0; i < nbuf; i++)
        if (virtio_dev_push_id(vd, VIRTIO_NET_RX_Q, ids[i], nds[i], lens[i]))
            return -EFAULT;
    n->cnt.rx_frames++;
    return 1;
}

/* Delivers pending frames while the guest has buffers; resumes a backend that was told to
 * hold its frames once there is room again. */
static void rx_flush(struct vnet *n)
{
    struct virtio_dev *vd = &n->vd;
    int pushed = 0;

    if (n->in_flush)
        return;
    n->in_flush = 1;
    while (n->pcount && virtio_dev_live(vd) && vd->vqs[VIRTIO_NET_RX_Q].ready) {
        int r = rx_one(n);
        if (r <= 0)
            break;
        pushed = 1;
        n->phead = (n->phead + 1) % VIRTIO_NET_PENDING;
        n->pcount--;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_NET_RX_Q);
    n->in_flush = 0;
    /* Room again: the backend may deliver what it holds. Told after every delivery, not
     * only after a refusal, so replay (which sees no refusals) resumes at the same points. */
    if (pushed && n->pcount < VIRTIO_NET_PENDING)
        backend_resume(n);
}

static int net_port_receive(void *opaque, const void *frame, size_t len)
{
    struct vnet *n = opaque;

    if (len < ETH_HLEN || len > frame_max(n)) {
        n->cnt.rx_dropped++;
        virtio_dev_log(&n->vd, "virtio-net: %zu-byte frame from the host is outside "
                       "%u..%u bytes: dropped", len, ETH_HLEN, frame_max(n));
        return -EMSGSIZE;
    }
    if (n->pcount == VIRTIO_NET_PENDING) {
        n->cnt.rx_refused++;
        return -EAGAIN;
    }
    /* Recorded once taken: replay delivers exactly the frames the device accepted. */
    net_host_io(n, n->in_backend ? DEVICE_HOST_IN_NESTED : DEVICE_HOST_IN, frame, len);
    if (!virtio_dev_live(&n->vd) || !rx_wanted(n, frame)) {
        /* No driver to take it (QEMU drops too), or filtered out. */
        if (virtio_dev_live(&n->vd))
            n->cnt.rx_filtered++;
        else
            n->cnt.rx_dropped++;
        return 0;
    }
    unsigned slot = (n->phead + n->pcount) % VIRTIO_NET_PENDING;
    memcpy(n->pdata + (size_t)slot * frame_max(n), frame, len);
    n->plen[slot] = (uint32_t)len;
    n->pcount++;
    rx_flush(n);
    return 0;
}

int virtio_net_receive(void *state, const void *frame, size_t len)
{
    return net_port_receive(state, frame, len);
}

/* ---- transmit ---- */

/* VIRTIO_NET_HDR_F_NEEDS_CSUM (§5.1.6.2): the checksum over [csum_start, end), seeded by
 * the partial sum the driver left in place, stored at csum_start + csum_offset. */
static int tx_checksum(struct vnet *n, uint8_t *frame, size_t len, const uint8_t *hdr)
{
    uint16_t start, off;

    memcpy(&start, hdr + 6, 2);
    memcpy(&off, hdr + 8, 2);
    start = le16toh(start);
    off = le16toh(off);
    if (!virtio_dev_has(&n->vd, VIRTIO_NET_F_CSUM) ||
        net_csum_complete(frame, len, start, off)) {
        virtio_dev_log(&n->vd, "virtio-net: NEEDS_CSUM with csum_start %u csum_offset %u in "
                       "a %zu-byte frame%s: dropped", start, off, len,
                       virtio_dev_has(&n->vd, VIRTIO_NET_F_CSUM) ? "" : " without CSUM");
        return -EINVAL;
    }
    return 0;
}

/* One transmit chain: header checks, checksum, then the backend. */
static void tx_one(struct vnet *n, const struct vq_chain *c)
{
    struct virtio_dev *vd = &n->vd;
    uint8_t *hdr = n->tx_buf, *frame = n->tx_buf + VIRTIO_NET_HDR_SIZE;
    uint64_t len;

    if (c->read_len < VIRTIO_NET_HDR_SIZE) {
        virtio_dev_log(vd, "virtio-net: transmit buffer %u has %llu readable bytes, less "
                       "than the %u-byte header: dropped", c->id,
                       (unsigned long long)c->read_len, VIRTIO_NET_HDR_SIZE);
        goto drop;
    }
    len = c->read_len - VIRTIO_NET_HDR_SIZE;
    if (len < ETH_HLEN || len > frame_max(n)) {
        virtio_dev_log(vd, "virtio-net: %llu-byte transmit frame is outside %u..%u bytes "
                       "(mtu %u): dropped", (unsigned long long)len, ETH_HLEN, frame_max(n),
                       n->mtu);
        goto drop;
    }
    if (vq_chain_read(vd->env.mem, c, 0, n->tx_buf, VIRTIO_NET_HDR_SIZE + len)) {
        virtio_dev_log(vd, "virtio-net: transmit buffer %u cannot be read: dropped", c->id);
        goto drop;
    }
    if (hdr[1] != VIRTIO_NET_HDR_GSO_NONE) {
        virtio_dev_log(vd, "virtio-net: gso_type %u without a GSO feature: dropped", hdr[1]);
        goto drop;
    }
    if ((hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) && tx_checksum(n, frame, len, hdr))
        goto drop;
    net_host_io(n, DEVICE_HOST_OUT, frame, len);
    n->cnt.tx_frames++;
    if (n->be) {
        n->in_backend++;
        n->be->ops->send(n->be, frame, len);
        n->in_backend--;
    }
    return;
drop:
    n->cnt.tx_dropped++;
}

static void net_tx(struct vnet *n)
{
    struct virtio_dev *vd = &n->vd;
    int pushed = 0;

    while (virtio_dev_pop(vd, VIRTIO_NET_TX_Q, &n->tx_chain) > 0) {
        tx_one(n, &n->tx_chain);
        if (virtio_dev_push(vd, VIRTIO_NET_TX_Q, &n->tx_chain, 0))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_NET_TX_Q);
}

/* ---- control queue (§5.1.6.5) ---- */

/* One MAC table of a MAC_TABLE_SET: le32 entries, then 6 bytes each. Bytes used, or -1. */
static long mac_table_parse(const uint8_t *p, size_t len, struct mac_table *t)
{
    uint32_t cnt;

    if (len < 4)
        return -1;
    memcpy(&cnt, p, 4);
    cnt = le32toh(cnt);
    if (cnt > (len - 4) / 6)
        return -1;
    t->overflow = cnt > VIRTIO_NET_MAC_TABLE;
    t->n = t->overflow ? 0 : cnt;
    for (unsigned i = 0; i < t->n; i++)
        memcpy(t->mac[i], p + 4 + 6 * i, 6);
    return 4 + 6 * (long)cnt;
}

static uint8_t ctrl_command(struct vnet *n, uint8_t cls, uint8_t cmd, const uint8_t *d,
                            size_t len)
{
    struct virtio_dev *vd = &n->vd;

    if (cls == VIRTIO_NET_CTRL_RX && virtio_dev_has(vd, VIRTIO_NET_F_CTRL_RX) &&
        (cmd == VIRTIO_NET_CTRL_RX_PROMISC || cmd == VIRTIO_NET_CTRL_RX_ALLMULTI)) {
        if (len != 1)
            goto bad_size;
        *(cmd == VIRTIO_NET_CTRL_RX_PROMISC ? &n->promisc : &n->allmulti) = d[0] != 0;
        return VIRTIO_NET_OK;
    }
    if (cls == VIRTIO_NET_CTRL_MAC && cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET &&
        virtio_dev_has(vd, VIRTIO_NET_F_CTRL_RX)) {
        struct mac_table uni, multi;
        long a = mac_table_parse(d, len, &uni), b = -1;
        if (a >= 0)
            b = mac_table_parse(d + a, len - (size_t)a, &multi);
        if (a < 0 || b < 0 || (size_t)(a + b) != len)
            goto bad_size;
        n->uni = uni;
        n->multi = multi;
        return VIRTIO_NET_OK;
    }
    if (cls == VIRTIO_NET_CTRL_MAC && cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET &&
        virtio_dev_has(vd, VIRTIO_NET_F_CTRL_MAC_ADDR)) {
        if (len != 6)
            goto bad_size;
        memcpy(n->mac, d, 6);
        return VIRTIO_NET_OK;
    }
    virtio_dev_log(vd, "virtio-net: control class %u command %u is not supported", cls, cmd);
    return VIRTIO_NET_ERR;
bad_size:
    virtio_dev_log(vd, "virtio-net: control class %u command %u with %zu data bytes: refused",
                   cls, cmd, len);
    return VIRTIO_NET_ERR;
}

static void net_ctrl(struct vnet *n)
{
    struct virtio_dev *vd = &n->vd;
    struct vq_chain *c = &n->ctrl_chain;
    int pushed = 0;

    while (virtio_dev_pop(vd, VIRTIO_NET_CTRL_Q, c) > 0) {
        uint32_t written = 0;
        if (c->read_len < 2 || c->write_len < 1 || c->read_len > sizeof(n->ctrl_buf)) {
            virtio_dev_log(vd, "virtio-net: control buffer %u with %llu readable and %llu "
                           "writable bytes: dropped", c->id, (unsigned long long)c->read_len,
                           (unsigned long long)c->write_len);
        } else if (vq_chain_read(vd->env.mem, c, 0, n->ctrl_buf, c->read_len)) {
            virtio_dev_log(vd, "virtio-net: control buffer %u cannot be read: dropped", c->id);
        } else {
            uint8_t ack = ctrl_command(n, n->ctrl_buf[0], n->ctrl_buf[1], n->ctrl_buf + 2,
                                       (size_t)c->read_len - 2);
            if (!vq_chain_write(vd->env.mem, c, 0, &ack, 1))
                written = 1;
        }
        if (virtio_dev_push(vd, VIRTIO_NET_CTRL_Q, c, written))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_NET_CTRL_Q);
}

static void net_notify(struct virtio_dev *vd, unsigned q)
{
    struct vnet *n = (struct vnet *)vd;

    if (q == VIRTIO_NET_RX_Q)
        rx_flush(n);
    else if (q == VIRTIO_NET_TX_Q)
        net_tx(n);
    else if (q == VIRTIO_NET_CTRL_Q)
        net_ctrl(n);
}

static void net_filter_reset(struct vnet *n)
{
    n->promisc = 1;
    n->allmulti = 0;
    memset(&n->uni, 0, sizeof(n->uni));
    memset(&n->multi, 0, sizeof(n->multi));
    memcpy(n->mac, n->default_mac, 6);
}

static void net_reset(struct virtio_dev *vd)
{
    struct vnet *n = (struct vnet *)vd;

    /* Frames queued for the old driver go (QEMU purges them too); the backend may send
     * again. */
    n->cnt.rx_dropped += n->pcount;
    n->phead = n->pcount = 0;
    net_filter_reset(n);
    if (n->be && n->be->ops->set_offloads)
        n->be->ops->set_offloads(n->be, 0);     /* until the next driver negotiates */
    backend_resume(n);
}

static void net_driver_ok(struct virtio_dev *vd)
{
    struct vnet *n = (struct vnet *)vd;

    if (n->be && n->be->ops->set_offloads)
        n->be->ops->set_offloads(n->be, virtio_dev_has(vd, VIRTIO_NET_F_GUEST_CSUM));
}

static const struct virtio_dev_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .num_queues = 3,
    .queue_max = NET_QUEUE_SIZE,
    .config_size = VIRTIO_NET_CFG_SIZE,
    .config_read = net_config_read,
    .validate_features = net_validate_features,
    .queue_notify = net_notify,
    .driver_ok = net_driver_ok,
    .reset = net_reset,
};

void virtio_net_get_counters(const void *state, struct virtio_net_counters *out)
{
    *out = ((const struct vnet *)state)->cnt;
}

unsigned virtio_net_pending(const void *state)
{
    return ((const struct vnet *)state)->pcount;
}

static void net_destroy(void *state)
{
    struct vnet *n = state;

    if (!n)
        return;
    if (n->be)
        n->be->ops->destroy(n->be);
    free(n->pdata);
    free(n);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    int used = 0;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &used) != 6 || s[used] || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return (mac[0] & 1) ? -EINVAL : 0;  /* a station address is never multicast */
}

static int net_create(const char *args, const struct device_env *env, void **state,
                      char *err, size_t errlen)
{
    static const char *const allowed[] = { "mac", "mtu", "net", "tap", "tapfd", "hostfwd",
                                           "restrict", "id", NULL };
    static const uint8_t qemu_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    char v[DEVICE_ARGS_MAX];
    struct vnet *n;
    int rc;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "virtio-net: out of memory");
        return -ENOMEM;
    }
    memcpy(n->default_mac, qemu_mac, 6);
    n->mtu = 1500;
    if (device_arg_get(args, "mac", v, sizeof(v)) == 1 && parse_mac(v, n->default_mac)) {
        snprintf(err, errlen, "virtio-net: mac=%s is not a unicast address like "
                 "52:54:00:12:34:56", v);
        free(n);
        return -EINVAL;
    }
    if (device_arg_get(args, "mtu", v, sizeof(v)) == 1) {
        char *end;
        unsigned long m = strtoul(v, &end, 10);
        if (!*v || *end || m < VIRTIO_NET_MTU_MIN || m > VIRTIO_NET_MTU_MAX) {
            snprintf(err, errlen, "virtio-net: mtu=%s is outside %u..%u", v,
                     VIRTIO_NET_MTU_MIN, VIRTIO_NET_MTU_MAX);
            free(n);
            return -EINVAL;
        }
        n->mtu = (uint16_t)m;
    }
    net_filter_reset(n);
    n->pdata = malloc((size_t)VIRTIO_NET_PENDING * frame_max(n));
    if (!n->pdata) {
        snprintf(err, errlen, "virtio-net: out of memory");
        free(n);
        return -ENOMEM;
    }
    virtio_dev_init(&n->vd, &net_ops, env,
                    VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
                    VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                    VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                    VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
                    VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR));
    struct net_port port = { net_port_receive, n };
    if ((rc = net_backend_create(args, env, &port, &n->be, err, errlen))) {
        net_destroy(n);
        return rc;
    }
    *state = n;
    return 0;
}

/* Snapshots: the core and queues, the MAC and MTU, the receive filter, the counters and the
 * frames waiting for receive buffers, oldest first. The backend's host side is not saved:
 * the restored device gets a fresh backend from its args (a new slirp helper, as QEMU's
 * user net has no connection state after migration; the TAP named again), and a backend's
 * own frames in flight (net=loop's hold) are gone. */
static void put_table(struct snapshot_writer *w, const struct mac_table *t)
{
    snapshot_put_u32(w, t->n);
    snapshot_put_u8(w, (uint8_t)(t->overflow ? 1 : 0));
    snapshot_put_bytes(w, t->mac, (size_t)t->n * 6);
}

static void get_table(struct snapshot_reader *r, struct mac_table *t, const char *field)
{
    t->n = snapshot_get_u32(r, field);
    t->overflow = snapshot_get_u8(r, field);
    if (!r->bad && t->n > VIRTIO_NET_MAC_TABLE)
        t->n = VIRTIO_NET_MAC_TABLE + 1;        /* refused by the caller */
    else
        snapshot_get_bytes(r, t->mac, (size_t)t->n * 6, field);
}

static int net_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vnet *n = state;

    (void)err;
    (void)errlen;
    virtio_dev_save(&n->vd, w);
    snapshot_put_bytes(w, n->mac, 6);
    snapshot_put_u16(w, n->mtu);
    snapshot_put_u8(w, (uint8_t)(n->promisc ? 1 : 0));
    snapshot_put_u8(w, (uint8_t)(n->allmulti ? 1 : 0));
    put_table(w, &n->uni);
    put_table(w, &n->multi);
    const uint64_t *c = &n->cnt.tx_frames;
    for (unsigned i = 0; i < sizeof(n->cnt) / sizeof(uint64_t); i++)
        snapshot_put_u64(w, c[i]);
    snapshot_put_u32(w, n->pcount);
    for (unsigned i = 0; i < n->pcount; i++) {
        unsigned slot = (n->phead + i) % VIRTIO_NET_PENDING;
        snapshot_put_u32(w, n->plen[slot]);
        snapshot_put_bytes(w, n->pdata + (size_t)slot * frame_max(n), n->plen[slot]);
    }
    return 0;
}

static int net_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct vnet *n = state;
    struct virtio_net_counters cnt;
    uint8_t mac[6];
    int rc = virtio_dev_load(&n->vd, r, err, errlen);

    if (rc)
        return rc;
    snapshot_get_bytes(r, mac, 6, "net mac");
    uint16_t mtu = snapshot_get_u16(r, "net mtu");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (mtu != n->mtu)
        return snapshot_fail(r, err, errlen, "net mtu %u does not match this device's mtu=%u",
                             mtu, n->mtu);
    if (mac[0] & 1)
        return snapshot_fail(r, err, errlen, "net mac %02x:%02x:%02x:%02x:%02x:%02x is not a "
                             "unicast address", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    memcpy(n->mac, mac, 6);
    n->promisc = snapshot_get_u8(r, "net promisc") != 0;
    n->allmulti = snapshot_get_u8(r, "net allmulti") != 0;
    get_table(r, &n->uni, "net unicast table");
    get_table(r, &n->multi, "net multicast table");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (n->uni.n > VIRTIO_NET_MAC_TABLE || n->multi.n > VIRTIO_NET_MAC_TABLE)
        return snapshot_fail(r, err, errlen, "net mac table of %u entries (at most %u)",
                             n->uni.n > VIRTIO_NET_MAC_TABLE ? n->uni.n : n->multi.n,
                             VIRTIO_NET_MAC_TABLE);
    uint64_t *c = &cnt.tx_frames;
    for (unsigned i = 0; i < sizeof(cnt) / sizeof(uint64_t); i++)
        c[i] = snapshot_get_u64(r, "net counters");
    uint32_t pending = snapshot_get_u32(r, "net pending frames");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (pending > VIRTIO_NET_PENDING)
        return snapshot_fail(r, err, errlen, "net pending frames %u (at most %u)", pending,
                             VIRTIO_NET_PENDING);
    for (unsigned i = 0; i < pending; i++) {
        uint32_t len = snapshot_get_u32(r, "net pending frame length");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (len < ETH_HLEN || len > frame_max(n))
            return snapshot_fail(r, err, errlen, "net pending frame %u of %u bytes is outside "
                                 "%u..%u", i, len, ETH_HLEN, frame_max(n));
        snapshot_get_bytes(r, n->pdata + (size_t)i * frame_max(n), len, "net pending frame");
        n->plen[i] = len;
    }
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    n->cnt = cnt;
    n->phead = 0;
    n->pcount = pending;
    /* The new backend learns the offloads the driver negotiated before the snapshot. */
    if ((n->vd.status & VIRTIO_STATUS_DRIVER_OK) && n->be && n->be->ops->set_offloads)
        n->be->ops->set_offloads(n->be, virtio_dev_has(&n->vd, VIRTIO_NET_F_GUEST_CSUM));
    return 0;
}

/* KVM: the backend's host side has something (its poll_fd is in the VMM's epoll set). What
 * it delivers now is host input like a timer's, not nested in a guest request. */
static void net_poll(void *state)
{
    struct vnet *n = state;

    if (n->be && n->be->ops->poll)
        n->be->ops->poll(n->be);
}

static int net_poll_fd(void *state)
{
    struct vnet *n = state;

    return n->be && n->be->ops->poll_fd ? n->be->ops->poll_fd(n->be) : -1;
}

/* Replay's way in: a frame, as the backend would have delivered it. */
static int net_host_input(void *state, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    int rc = virtio_net_receive(state, data, len);

    if (rc < 0)
        snprintf(err, errlen, "virtio-net: frame of %zu bytes not taken: %s", len, strerror(-rc));
    return rc;
}

const struct device_type virtio_net_type = {
    .kind = "virtio-net",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = net_create,
    .ops = &virtio_mmio_ops,
    .destroy = net_destroy,
    .save = net_save,
    .load = net_load,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_NET,
    .host_input = net_host_input,
    .poll = net_poll,
    .poll_fd = net_poll_fd,
};
