/* virtio-mmio version 2 register decoding on top of the virtio core. */
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static struct virtqueue *sel_vq(struct virtio_dev *vd)
{
    return vd->queue_sel < vd->ops->num_queues ? &vd->vqs[vd->queue_sel] : NULL;
}

static int mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    struct virtio_dev *vd = opaque;
    struct virtqueue *vq = sel_vq(vd);

    *value = 0;
    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t v = 0;
        if (off >= VIRTIO_MMIO_WINDOW_SIZE || size > 8)
            return 0;
        virtio_dev_config_read(vd, (uint32_t)(off - VIRTIO_MMIO_CONFIG), &v, size);
        *value = le64toh(v);
        return 0;
    }
    if (size != 4 || off % 4) {
        virtio_dev_log(vd, "%u-byte read at register 0x%llx ignored", size,
                       (unsigned long long)off);
        return 0;
    }
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE:   *value = VIRTIO_MMIO_MAGIC; break;
    case VIRTIO_MMIO_VERSION:       *value = VIRTIO_MMIO_VERSION_2; break;
    case VIRTIO_MMIO_DEVICE_ID:     *value = vd->ops->device_id; break;
    case VIRTIO_MMIO_VENDOR_ID:     *value = VIRTIO_MMIO_VENDOR_VMLAB; break;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        *value = virtio_dev_read_device_features(vd, vd->device_features_sel);
        break;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: *value = vq ? vq->num_max : 0; break;
    case VIRTIO_MMIO_QUEUE_READY:   *value = vq ? (uint32_t)vq->ready : 0; break;
    case VIRTIO_MMIO_INTERRUPT_STATUS: *value = vd->isr; break;
    case VIRTIO_MMIO_STATUS:        *value = vd->status; break;
    /* Queue reset is synchronous, so it is never seen in progress. */
    case VIRTIO_MMIO_QUEUE_RESET:   *value = 0; break;
    case VIRTIO_MMIO_CONFIG_GENERATION: *value = vd->config_generation; break;
    /* No shared memory regions: every region reads as absent (length -1). */
    case VIRTIO_MMIO_SHM_LEN_LOW: case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW: case VIRTIO_MMIO_SHM_BASE_HIGH:
        *value = 0xffffffffu;
        break;
    default:
        virtio_dev_log(vd, "read of write-only or unknown register 0x%llx ignored",
                       (unsigned long long)off);
        break;
    }
    return 0;
}

/* Queue configuration registers may only change while the queue is stopped. */
static struct virtqueue *cfg_vq(struct virtio_dev *vd, uint64_t off)
{
    struct virtqueue *vq = sel_vq(vd);

    if (!vq) {
        virtio_dev_log(vd, "register 0x%llx write for absent queue %u ignored",
                       (unsigned long long)off, vd->queue_sel);
        return NULL;
    }
    if (vq->ready) {
        virtio_dev_log(vd, "register 0x%llx write while queue %u is ready ignored",
                       (unsigned long long)off, vd->queue_sel);
        return NULL;
    }
    return vq;
}

static void set_half(uint64_t *field, int high, uint32_t v)
{
    *field = high ? (*field & 0xffffffffULL) | (uint64_t)v << 32
                  : (*field & ~0xffffffffULL) | v;
}

static int mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct virtio_dev *vd = opaque;
    struct virtqueue *vq;
    uint32_t v = (uint32_t)value;

    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t le = htole64(value);
        if (off < VIRTIO_MMIO_WINDOW_SIZE && size <= 8)
            virtio_dev_config_write(vd, (uint32_t)(off - VIRTIO_MMIO_CONFIG), &le, size);
        return 0;
    }
    if (size != 4 || off % 4) {
        virtio_dev_log(vd, "%u-byte write at register 0x%llx ignored", size,
                       (unsigned long long)off);
        return 0;
    }
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: vd->device_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        virtio_dev_write_driver_features(vd, vd->driver_features_sel, v);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: vd->driver_features_sel = v; break;
    case VIRTIO_MMIO_QUEUE_SEL:     vd->queue_sel = v; break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if ((vq = cfg_vq(vd, off))) {
            if (v == 0 || v > vq->num_max)
                virtio_dev_log(vd, "QueueNum %u for queue %u not in 1..%u", v,
                               vd->queue_sel, vq->num_max);
            /* Kept as written (16 bits): QueueReady validates it. */
            vq->num = v > 0xffff ? 0 : (uint16_t)v;
        }
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        virtio_dev_queue_set_ready(vd, vd->queue_sel, v);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Without VIRTIO_F_NOTIFICATION_DATA the value is just the queue index. */
        virtio_dev_queue_notify(vd, v);
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK: virtio_dev_ack(vd, v); break;
    case VIRTIO_MMIO_STATUS:        virtio_dev_write_status(vd, v); break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if ((vq = cfg_vq(vd, off)))
            set_half(&vq->desc, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
        break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW: case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        if ((vq = cfg_vq(vd, off)))
            set_half(&vq->driver, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, v);
        break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW: case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        if ((vq = cfg_vq(vd, off)))
            set_half(&vq->device, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v);
        break;
    case VIRTIO_MMIO_SHM_SEL:       vd->shm_sel = v; break;
    case VIRTIO_MMIO_QUEUE_RESET:
        if (v == 1)
            virtio_dev_queue_reset(vd, vd->queue_sel);
        else
            virtio_dev_log(vd, "QueueReset value %u ignored", v);
        break;
    default:
        virtio_dev_log(vd, "write 0x%x to read-only or unknown register 0x%llx ignored", v,
                       (unsigned long long)off);
        break;
    }
    return 0;
}

const struct bus_ops virtio_mmio_ops = {
    .read = mmio_read,
    .write = mmio_write,
};
