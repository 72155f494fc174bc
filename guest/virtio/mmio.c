/* virtio-mmio version 2 transport: reset, feature negotiation, queue setup, DRIVER_OK,
 * config space and the interrupt handler. */
#include "virtq_impl.h"

#include "../rt/rt.h"

#define VIRTIO_IRQ_VECTOR_BASE 0x40
#define MAX_IRQ_DEVS 4

static struct virtio_dev *irq_devs[MAX_IRQ_DEVS];

static uint32_t rd(const struct virtio_dev *d, unsigned off) { return mmio_read32(d->base + off); }
static void wr(const struct virtio_dev *d, unsigned off, uint32_t v) { mmio_write32(d->base + off, v); }

uint32_t virtio_status(const struct virtio_dev *d) { return rd(d, VMMIO_STATUS); }

static int fail(struct virtio_dev *d, const char *why)
{
    printf("virtio: device at 0x%llx: %s\n", (unsigned long long)d->base, why);
    wr(d, VMMIO_STATUS, rd(d, VMMIO_STATUS) | VIRTIO_STATUS_FAILED);
    return -VIRTIO_EIO;
}

/* Turns off an option the device does not offer, saying so once. */
static void need_offer(int *opt, uint64_t offered, unsigned bit, const char *name)
{
    if (*opt && !((offered >> bit) & 1)) {
        printf("virtio: %s not offered by the device, not using it\n", name);
        *opt = 0;
    }
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_mmio_loc *loc, uint64_t want,
                    const struct virtio_opts *o)
{
    memset(d, 0, sizeof *d);
    d->base = loc->base;
    d->irq = loc->irq;
    d->scanned = loc->source == VIRTIO_LOC_SCAN;
    d->opts = *o;
    if (rd(d, VMMIO_MAGIC_VALUE) != VMMIO_MAGIC)
        return -VIRTIO_ENODEV;
    uint32_t version = rd(d, VMMIO_VERSION);
    if (version != 2) {
        printf("virtio: device at 0x%llx is virtio-mmio version %u; this driver needs 2 "
               "(QEMU: -global virtio-mmio.force-legacy=false)\n",
               (unsigned long long)d->base, version);
        return -VIRTIO_ENODEV;
    }
    d->device_id = rd(d, VMMIO_DEVICE_ID);

    wr(d, VMMIO_STATUS, 0);
    for (int i = 0; rd(d, VMMIO_STATUS) != 0; i++)
        if (i > 1000000)
            return fail(d, "reset did not complete");
    wr(d, VMMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(d, VMMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);

    wr(d, VMMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = rd(d, VMMIO_DEVICE_FEATURES);
    wr(d, VMMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)rd(d, VMMIO_DEVICE_FEATURES) << 32;
    if (!((offered >> VIRTIO_F_VERSION_1) & 1))
        return fail(d, "VIRTIO_F_VERSION_1 not offered");
    need_offer(&d->opts.packed, offered, VIRTIO_F_RING_PACKED, "ring=packed");
    need_offer(&d->opts.indirect, offered, VIRTIO_F_INDIRECT_DESC, "indirect=1");
    need_offer(&d->opts.event_idx, offered, VIRTIO_F_EVENT_IDX, "event_idx=1");

    uint64_t ring_bits = 1ull << VIRTIO_F_RING_PACKED | 1ull << VIRTIO_F_INDIRECT_DESC |
                         1ull << VIRTIO_F_EVENT_IDX;
    uint64_t drv = (want & offered & ~ring_bits) | 1ull << VIRTIO_F_VERSION_1;
    if (d->opts.packed)
        drv |= 1ull << VIRTIO_F_RING_PACKED;
    if (d->opts.indirect)
        drv |= 1ull << VIRTIO_F_INDIRECT_DESC;
    if (d->opts.event_idx)
        drv |= 1ull << VIRTIO_F_EVENT_IDX;
    wr(d, VMMIO_DRIVER_FEATURES_SEL, 0);
    wr(d, VMMIO_DRIVER_FEATURES, (uint32_t)drv);
    wr(d, VMMIO_DRIVER_FEATURES_SEL, 1);
    wr(d, VMMIO_DRIVER_FEATURES, (uint32_t)(drv >> 32));
    d->features = drv;
    d->offered = offered;

    wr(d, VMMIO_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(rd(d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
        return fail(d, "FEATURES_OK not accepted");
    return 0;
}

static unsigned pick_size(const struct virtio_dev *d, uint32_t max)
{
    if (d->opts.qsize)
        return d->opts.qsize;
    unsigned s = 128;
    while (s > max)     /* largest power of two that fits */
        s >>= 1;
    return s;
}

int virtio_queue_setup(struct virtio_dev *d, unsigned index, struct virtq **out)
{
    if (index >= VIRTIO_MAX_QUEUES)
        return -VIRTIO_EINVAL;
    wr(d, VMMIO_QUEUE_SEL, index);
    if (rd(d, VMMIO_QUEUE_READY))
        return fail(d, "queue already ready after reset");
    uint32_t max = rd(d, VMMIO_QUEUE_NUM_MAX);
    if (max == 0) {
        printf("virtio: device at 0x%llx has no queue %u\n", (unsigned long long)d->base, index);
        return -VIRTIO_ENODEV;
    }
    unsigned size = pick_size(d, max);
    if (size == 0 || size > max) {
        printf("virtio: qsize=%u exceeds QueueNumMax %u\n", size, max);
        return -VIRTIO_EINVAL;
    }
    struct virtq *q = &d->queues[index];
    memset(q, 0, sizeof *q);
    q->dev = d;
    q->index = (uint16_t)index;
    q->size = (uint16_t)size;
    q->packed = d->opts.packed;
    q->chain_len = virtio_alloc(2u * size, 2);
    if (!q->chain_len)
        return -VIRTIO_ENOSPC;
    if (d->opts.indirect) {
        q->indirect = virtio_alloc(16u * VIRTQ_MAX_SG * size, 16);
        if (!q->indirect)
            return -VIRTIO_ENOSPC;
    }
    int r = q->packed ? packed_init(q) : split_init(q);
    if (r)
        return r;
    uint64_t desc = q->packed ? (uintptr_t)q->pdesc : (uintptr_t)q->desc;
    uint64_t drv = q->packed ? (uintptr_t)q->drv_event : (uintptr_t)q->avail;
    uint64_t dev = q->packed ? (uintptr_t)q->dev_event : (uintptr_t)q->used;
    wr(d, VMMIO_QUEUE_NUM, size);
    wr(d, VMMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    wr(d, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    wr(d, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)drv);
    wr(d, VMMIO_QUEUE_DRIVER_HIGH, (uint32_t)(drv >> 32));
    wr(d, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)dev);
    wr(d, VMMIO_QUEUE_DEVICE_HIGH, (uint32_t)(dev >> 32));
    wr(d, VMMIO_QUEUE_READY, 1);
    if (index + 1 > d->nqueues)
        d->nqueues = index + 1;
    *out = q;
    return 0;
}

#if !defined(__aarch64__)
/* QEMU microvm with ACPI on puts virtio IRQs on a second IOAPIC at 0xfec10000, GSI base 24
 * (see guest/virtio/README.md); the runtime only drives the first one. */
#define IOAPIC2_BASE 0xfec10000ull
#define IOAPIC2_GSI_BASE 24u

static uint32_t ioapic2_read(unsigned reg)
{
    mmio_write32(IOAPIC2_BASE, reg);
    return mmio_read32(IOAPIC2_BASE + 0x10);
}

static void ioapic2_write(unsigned reg, uint32_t v)
{
    mmio_write32(IOAPIC2_BASE, reg);
    mmio_write32(IOAPIC2_BASE + 0x10, v);
}

/* Level-triggered, active high, fixed delivery to this CPU, unmasked. -1 if no such pin. */
static int ioapic2_route(unsigned gsi, uint8_t vector)
{
    if (gsi < IOAPIC2_GSI_BASE)
        return -1;
    unsigned pin = gsi - IOAPIC2_GSI_BASE, pins = ((ioapic2_read(1) >> 16) & 0xff) + 1;
    if (ioapic2_read(1) == 0xffffffffu || pin >= pins)
        return -1;
    ioapic2_write(0x11 + 2 * pin, lapic_id() << 24);
    ioapic2_write(0x10 + 2 * pin, vector | 1u << 15);
    return 0;
}

#endif

static void virtio_irq_handler(struct rt_irq_frame *f)
{
#if defined(__aarch64__)
    /* f->vector is the GIC INTID, which d->vector holds. */
    struct virtio_dev *d = NULL;
    for (unsigned slot = 0; slot < MAX_IRQ_DEVS; slot++)
        if (irq_devs[slot] && irq_devs[slot]->vector == f->vector)
            d = irq_devs[slot];
#else
    unsigned slot = (unsigned)f->vector - VIRTIO_IRQ_VECTOR_BASE;
    struct virtio_dev *d = slot < MAX_IRQ_DEVS ? irq_devs[slot] : NULL;
#endif
    if (d) {
        /* Ack before EOI so the level-triggered line is low when the IOAPIC looks again. */
        uint32_t isr = rd(d, VMMIO_INTERRUPT_STATUS);
        wr(d, VMMIO_INTERRUPT_ACK, isr);
        d->isr_seen |= isr;
        d->irq_count++;
    }
#if !defined(__aarch64__)
    lapic_eoi();        /* arm64: the runtime ends the interrupt at the GIC */
#endif
}

int virtio_dev_ready(struct virtio_dev *d)
{
    if (d->opts.irq) {
        unsigned slot = 0;
        while (slot < MAX_IRQ_DEVS && irq_devs[slot] && irq_devs[slot] != d)
            slot++;
        if (slot == MAX_IRQ_DEVS)
            return fail(d, "too many devices in irq mode");
        irq_devs[slot] = d;
#if defined(__aarch64__)
        /* SPI n is INTID 32 + n, level-triggered like the x86 pins. */
        if (d->irq > 255 - GIC_SPI_BASE) {
            irq_devs[slot] = NULL;
            return fail(d, "IRQ not routable");
        }
        d->vector = (uint8_t)(GIC_SPI_BASE + d->irq);
        rt_set_handler(d->vector, virtio_irq_handler);
        gic_route_spi(d->irq, 1);
#else
        d->vector = (uint8_t)(VIRTIO_IRQ_VECTOR_BASE + slot);
        rt_set_handler(d->vector, virtio_irq_handler);
        lapic_init();
        if (d->irq <= ioapic_max_gsi())
            ioapic_route(d->irq, d->vector, 1);
        else if (d->scanned && ioapic2_route(d->irq, d->vector) == 0)
            ;   /* QEMU microvm's second IOAPIC */
        else {
            printf("virtio: IRQ %u is beyond the IOAPIC's last GSI %u\n", d->irq,
                   ioapic_max_gsi());
            irq_devs[slot] = NULL;
            return fail(d, "IRQ not routable");
        }
#endif
    }
    wr(d, VMMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                            VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    uint32_t st = rd(d, VMMIO_STATUS);
    if (st & (VIRTIO_STATUS_FAILED | VIRTIO_STATUS_NEEDS_RESET) ||
        !(st & VIRTIO_STATUS_DRIVER_OK))
        return fail(d, "DRIVER_OK not accepted");
    return 0;
}

void virtio_dev_describe(const struct virtio_dev *d, const char *name)
{
    printf("virtio: %s ring=%s mode=%s indirect=%d event_idx=%d qsize=%u\n", name,
           d->opts.packed ? "packed" : "split", d->opts.irq ? "irq" : "poll",
           d->opts.indirect, d->opts.event_idx, d->nqueues ? d->queues[0].size : 0);
}

uint32_t virtio_config_read32(const struct virtio_dev *d, unsigned off)
{
    uint32_t g, v;
    do {
        g = rd(d, VMMIO_CONFIG_GENERATION);
        v = rd(d, VMMIO_CONFIG + off);
    } while (g != rd(d, VMMIO_CONFIG_GENERATION));
    return v;
}

uint64_t virtio_config_read64(const struct virtio_dev *d, unsigned off)
{
    uint32_t g, lo, hi;
    do {
        g = rd(d, VMMIO_CONFIG_GENERATION);
        lo = rd(d, VMMIO_CONFIG + off);
        hi = rd(d, VMMIO_CONFIG + off + 4);
    } while (g != rd(d, VMMIO_CONFIG_GENERATION));
    return (uint64_t)hi << 32 | lo;
}

uint8_t virtio_config_read8(const struct virtio_dev *d, unsigned off)
{
    return mmio_read8(d->base + VMMIO_CONFIG + off);
}

void virtio_config_write8(const struct virtio_dev *d, unsigned off, uint8_t v)
{
    mmio_write8(d->base + VMMIO_CONFIG + off, v);
}

void virtio_config_write32(const struct virtio_dev *d, unsigned off, uint32_t v)
{
    wr(d, VMMIO_CONFIG + off, v);
}
