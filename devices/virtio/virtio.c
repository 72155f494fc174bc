/* The virtio device core: status and feature negotiation, queue lifecycle, interrupts,
 * and the "needs reset" path every guest protocol violation ends in. */
#include "devices/virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LOG_LIMIT 64    /* guest-triggered lines per device before going quiet */

static const uint64_t core_features =
    VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) |
    VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_RING_PACKED) |
    VIRTIO_BIT(VIRTIO_F_RING_RESET);

static void vlog(struct virtio_dev *vd, const char *fmt, va_list ap)
{
    FILE *f = vd->env.log ? vd->env.log : stderr;

    if (vd->log_lines > LOG_LIMIT)
        return;
    if (vd->log_lines++ == LOG_LIMIT) {
        fprintf(f, "virtio@0x%llx: further messages suppressed\n",
                (unsigned long long)vd->env.base);
        return;
    }
    fprintf(f, "virtio@0x%llx: ", (unsigned long long)vd->env.base);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
}

void virtio_dev_log(struct virtio_dev *vd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(vd, fmt, ap);
    va_end(ap);
}

void virtio_dev_update_irq(struct virtio_dev *vd)
{
    int level = vd->isr != 0;

    if (level != vd->irq_level) {
        vd->irq_level = level;
        irq_line_set(&vd->env.irq, level);
    }
}

void virtio_dev_init(struct virtio_dev *vd, const struct virtio_dev_ops *ops,
                     const struct device_env *env, uint64_t model_features)
{
    memset(vd, 0, sizeof(*vd));
    vd->ops = ops;
    vd->env = *env;
    vd->device_features = model_features | core_features;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        vd->vqs[q].num_max = q < ops->num_queues ? ops->queue_max : 0;
        vd->vqs[q].mem = env->mem;
        vq_reset(&vd->vqs[q]);
    }
}

void virtio_dev_reset(struct virtio_dev *vd)
{
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        vq_reset(&vd->vqs[q]);
    vd->status = 0;
    vd->driver_features = 0;
    vd->device_features_sel = vd->driver_features_sel = 0;
    vd->queue_sel = vd->shm_sel = 0;
    vd->isr = 0;
    virtio_dev_update_irq(vd);
    if (vd->ops->reset)
        vd->ops->reset(vd);
}

void virtio_dev_fail(struct virtio_dev *vd, const char *fmt, ...)
{
    va_list ap;

    if (vd->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    va_start(ap, fmt);
    vlog(vd, fmt, ap);
    va_end(ap);
    vd->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* §2.1.2: a device entering NEEDS_RESET after DRIVER_OK must send a configuration
     * change notification; we send it in every state so the driver never misses it. */
    vd->isr |= VIRTIO_MMIO_INT_CONFIG;
    virtio_dev_update_irq(vd);
}

void virtio_dev_config_changed(struct virtio_dev *vd)
{
    vd->config_generation++;
    vd->isr |= VIRTIO_MMIO_INT_CONFIG;
    virtio_dev_update_irq(vd);
}

int virtio_dev_pop(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
    if (q >= vd->ops->num_queues || !virtio_dev_live(vd))
        return 0;
    int r = vq_pop(&vd->vqs[q], c);
    if (r < 0) {
        virtio_dev_fail(vd, "queue %u: %s", q, vd->vqs[q].err);
        return r;
    }
    return r;
}

int virtio_dev_push(struct virtio_dev *vd, unsigned q, const struct vq_chain *c, uint32_t len)
{
    if (q >= vd->ops->num_queues)
        return -EINVAL;
    int r = vq_push(&vd->vqs[q], c, len);
    if (r)
        virtio_dev_fail(vd, "queue %u: %s", q, vd->vqs[q].err);
    return r;
}

int virtio_dev_push_id(struct virtio_dev *vd, unsigned q, uint16_t id, uint16_t ndesc,
                       uint32_t len)
{
    if (q >= vd->ops->num_queues)
        return -EINVAL;
    int r = vq_push_id(&vd->vqs[q], id, ndesc, len);
    if (r)
        virtio_dev_fail(vd, "queue %u: %s", q, vd->vqs[q].err);
    return r;
}

void virtio_dev_notify_used(struct virtio_dev *vd, unsigned q)
{
    if (q >= vd->ops->num_queues)
        return;
    if (vq_needs_notify(&vd->vqs[q])) {
        vd->isr |= VIRTIO_MMIO_INT_VRING;
        virtio_dev_update_irq(vd);
    }
}

uint32_t virtio_dev_read_device_features(const struct virtio_dev *vd, uint32_t sel)
{
    return sel == 0 ? (uint32_t)vd->device_features
         : sel == 1 ? (uint32_t)(vd->device_features >> 32) : 0;
}

void virtio_dev_write_driver_features(struct virtio_dev *vd, uint32_t sel, uint32_t value)
{
    if (vd->status & VIRTIO_STATUS_FEATURES_OK) {
        virtio_dev_log(vd, "DriverFeatures write 0x%x after FEATURES_OK ignored", value);
        return;
    }
    if (sel == 0)
        vd->driver_features = (vd->driver_features & ~0xffffffffULL) | value;
    else if (sel == 1)
        vd->driver_features = (vd->driver_features & 0xffffffffULL) | (uint64_t)value << 32;
    else if (value)
        virtio_dev_log(vd, "DriverFeatures word %u = 0x%x: no such features", sel, value);
}

static int features_ok(struct virtio_dev *vd)
{
    uint64_t f = vd->driver_features;
    char err[160] = "";

    if (f & ~vd->device_features) {
        virtio_dev_log(vd, "FEATURES_OK refused: driver features 0x%llx not offered",
                       (unsigned long long)(f & ~vd->device_features));
        return 0;
    }
    if (!(f & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
        virtio_dev_log(vd, "FEATURES_OK refused: VIRTIO_F_VERSION_1 not accepted "
                       "(legacy drivers are not supported)");
        return 0;
    }
    if (vd->ops->validate_features && vd->ops->validate_features(vd, f, err, sizeof(err))) {
        virtio_dev_log(vd, "FEATURES_OK refused: %s", err);
        return 0;
    }
    return 1;
}

static void kick_all(struct virtio_dev *vd)
{
    for (unsigned q = 0; q < vd->ops->num_queues && virtio_dev_live(vd); q++)
        if (vd->vqs[q].ready && vd->ops->queue_notify)
            vd->ops->queue_notify(vd, q);
}

void virtio_dev_write_status(struct virtio_dev *vd, uint32_t value)
{
    uint32_t old = vd->status, set;

    if (value == 0) {
        virtio_dev_reset(vd);
        return;
    }
    value &= 0xff;
    /* Bits the spec does not define are dropped (and logged), so that a later meaning for
     * them can never be mistaken for something a driver set today. */
    const uint32_t defined = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |
                             VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED;
    if (value & ~defined) {
        virtio_dev_log(vd, "Status 0x%x: undefined bits 0x%x dropped", value, value & ~defined);
        value &= defined;
    }
    /* NEEDS_RESET is the device's bit: the driver writes back what it read. */
    value = (value & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) |
            (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    if (old & ~value) {
        virtio_dev_log(vd, "Status 0x%x would clear bits of 0x%x: ignored", value, old);
        return;
    }
    set = value & ~old;
    if ((set & VIRTIO_STATUS_DRIVER) && !(value & VIRTIO_STATUS_ACKNOWLEDGE)) {
        virtio_dev_log(vd, "Status 0x%x: DRIVER without ACKNOWLEDGE ignored", value);
        return;
    }
    if (set & VIRTIO_STATUS_FEATURES_OK) {
        if (!(value & VIRTIO_STATUS_DRIVER)) {
            virtio_dev_log(vd, "Status 0x%x: FEATURES_OK without DRIVER ignored", value);
            value &= ~VIRTIO_STATUS_FEATURES_OK;
        } else if (!features_ok(vd)) {
            /* Leave FEATURES_OK clear: the driver reads Status back and gives up. */
            value &= ~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if ((set & VIRTIO_STATUS_DRIVER_OK) && !(value & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_dev_log(vd, "Status 0x%x: DRIVER_OK without FEATURES_OK ignored", value);
        value &= ~VIRTIO_STATUS_DRIVER_OK;
    }
    vd->status = value;
    if ((value & ~old) & VIRTIO_STATUS_DRIVER_OK) {
        if (vd->ops->driver_ok)
            vd->ops->driver_ok(vd);
        /* Buffers the driver queued (and kicked) before DRIVER_OK are served now. */
        kick_all(vd);
    }
}

void virtio_dev_queue_set_ready(struct virtio_dev *vd, unsigned q, uint32_t value)
{
    struct virtqueue *vq;

    if (q >= vd->ops->num_queues) {
        virtio_dev_log(vd, "QueueReady for absent queue %u ignored", q);
        return;
    }
    vq = &vd->vqs[q];
    if (value == 0) {
        /* Stops the queue; its configuration stays for the driver to rewrite. Whatever the
         * model still holds for the old ring (deferred completions) is dropped. */
        if (vq->ready && vd->ops->queue_reset)
            vd->ops->queue_reset(vd, q);
        vq->ready = 0;
        return;
    }
    if (vq->ready)
        return;
    if (!(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_dev_log(vd, "QueueReady for queue %u before FEATURES_OK ignored", q);
        return;
    }
    if (vq_enable(vq, vd->env.mem, virtio_dev_has(vd, VIRTIO_F_RING_PACKED),
                  virtio_dev_has(vd, VIRTIO_F_RING_EVENT_IDX),
                  virtio_dev_has(vd, VIRTIO_F_RING_INDIRECT_DESC))) {
        virtio_dev_fail(vd, "queue %u: %s", q, vq->err);
        return;
    }
    vd->queue_ready_count++;
}

void virtio_dev_queue_reset(struct virtio_dev *vd, unsigned q)
{
    if (q >= vd->ops->num_queues)
        return;
    if (!virtio_dev_has(vd, VIRTIO_F_RING_RESET)) {
        virtio_dev_log(vd, "QueueReset without VIRTIO_F_RING_RESET ignored");
        return;
    }
    vq_reset(&vd->vqs[q]);
    if (vd->ops->queue_reset)
        vd->ops->queue_reset(vd, q);
}

void virtio_dev_queue_notify(struct virtio_dev *vd, unsigned q)
{
    if (q >= vd->ops->num_queues) {
        virtio_dev_log(vd, "QueueNotify for absent queue %u ignored", q);
        return;
    }
    /* Before DRIVER_OK the kick is remembered by the ring itself: kick_all serves it. */
    if (!virtio_dev_live(vd) || !vd->vqs[q].ready || !vd->ops->queue_notify)
        return;
    vd->ops->queue_notify(vd, q);
}

void virtio_dev_ack(struct virtio_dev *vd, uint32_t bits)
{
    vd->isr &= ~bits;
    virtio_dev_update_irq(vd);
}

void virtio_dev_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    uint32_t size = vd->ops->config_size;

    memset(buf, 0, len);
    if (off >= size || !vd->ops->config_read)
        return;
    if (len > size - off)
        len = size - off;
    vd->ops->config_read(vd, off, buf, len);
}

void virtio_dev_config_write(struct virtio_dev *vd, uint32_t off, const void *buf,
                             unsigned len)
{
    uint32_t size = vd->ops->config_size;

    if (off >= size || len > size - off || !vd->ops->config_write) {
        virtio_dev_log(vd, "config write of %u bytes at 0x%x ignored", len, off);
        return;
    }
    vd->ops->config_write(vd, off, buf, len);
}

int virtio_dev_queue_stats(const void *state, unsigned q, uint64_t *requests,
                           uint64_t *notifies)
{
    const struct virtio_dev *vd = state;

    if (!vd || q >= vd->ops->num_queues)
        return -EINVAL;
    if (requests)
        *requests = vd->vqs[q].requests;
    if (notifies)
        *notifies = vd->vqs[q].notifies;
    return 0;
}

unsigned virtio_dev_num_queues(const void *state)
{
    const struct virtio_dev *vd = state;
    return vd ? vd->ops->num_queues : 0;
}
