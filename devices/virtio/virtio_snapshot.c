/* Snapshot save/load of the virtio core and its queues (see virtio.h). */
#include "devices/virtio/virtio.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void virtio_dev_save(const struct virtio_dev *vd, struct snapshot_writer *w)
{
    snapshot_put_u32(w, vd->ops->device_id);
    snapshot_put_u64(w, vd->device_features);
    snapshot_put_u64(w, vd->driver_features);
    snapshot_put_u32(w, vd->device_features_sel);
    snapshot_put_u32(w, vd->driver_features_sel);
    snapshot_put_u32(w, vd->queue_sel);
    snapshot_put_u32(w, vd->shm_sel);
    snapshot_put_u32(w, vd->status);
    snapshot_put_u32(w, vd->isr);
    snapshot_put_u32(w, vd->config_generation);
    snapshot_put_u8(w, (uint8_t)(vd->irq_level ? 1 : 0));
    snapshot_put_u32(w, vd->log_lines);
    snapshot_put_u64(w, vd->queue_ready_count);
    snapshot_put_u32(w, vd->ops->num_queues);
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        const struct virtqueue *vq = &vd->vqs[q];
        snapshot_put_u16(w, vq->num);
        snapshot_put_u64(w, vq->desc);
        snapshot_put_u64(w, vq->driver);
        snapshot_put_u64(w, vq->device);
        snapshot_put_u8(w, (uint8_t)(vq->ready ? 1 : 0));
        snapshot_put_u8(w, (uint8_t)(vq->packed ? 1 : 0));
        snapshot_put_u8(w, (uint8_t)(vq->event_idx ? 1 : 0));
        snapshot_put_u8(w, (uint8_t)(vq->indirect ? 1 : 0));
        snapshot_put_u16(w, vq->last_avail);
        snapshot_put_u16(w, vq->used_idx);
        snapshot_put_u16(w, vq->next_avail);
        snapshot_put_u16(w, vq->next_used);
        snapshot_put_u8(w, vq->avail_wrap);
        snapshot_put_u8(w, vq->used_wrap);
        snapshot_put_u32(w, vq->added);
        snapshot_put_u64(w, vq->requests);
        snapshot_put_u64(w, vq->notifies);
    }
}

int virtio_dev_load(struct virtio_dev *vd, struct snapshot_reader *r, char *err,
                    size_t errlen)
{
    uint32_t id = snapshot_get_u32(r, "virtio device id");
    if (!r->bad && id != vd->ops->device_id)
        return snapshot_fail(r, err, errlen, "virtio device id %u, this device is %u", id,
                             vd->ops->device_id);
    uint64_t offered = snapshot_get_u64(r, "virtio device features");
    if (!r->bad && offered != vd->device_features)
        return snapshot_fail(r, err, errlen, "virtio device features %#llx differ from this "
                             "device's %#llx", (unsigned long long)offered,
                             (unsigned long long)vd->device_features);
    vd->driver_features = snapshot_get_u64(r, "virtio driver features");
    vd->device_features_sel = snapshot_get_u32(r, "virtio device_features_sel");
    vd->driver_features_sel = snapshot_get_u32(r, "virtio driver_features_sel");
    vd->queue_sel = snapshot_get_u32(r, "virtio queue_sel");
    vd->shm_sel = snapshot_get_u32(r, "virtio shm_sel");
    vd->status = snapshot_get_u32(r, "virtio status") & 0xff;
    vd->isr = snapshot_get_u32(r, "virtio interrupt status") & 3;
    vd->config_generation = snapshot_get_u32(r, "virtio config generation");
    vd->irq_level = snapshot_get_u8(r, "virtio irq level") ? 1 : 0;
    vd->log_lines = snapshot_get_u32(r, "virtio log lines");
    vd->queue_ready_count = snapshot_get_u64(r, "virtio queue ready count");
    uint32_t nq = snapshot_get_u32(r, "virtio queue count");
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    if (nq != vd->ops->num_queues)
        return snapshot_fail(r, err, errlen, "virtio queue count %u, this device has %u", nq,
                             vd->ops->num_queues);
    if (vd->driver_features & ~vd->device_features)
        return snapshot_fail(r, err, errlen, "virtio driver features %#llx not offered",
                             (unsigned long long)vd->driver_features);
    for (unsigned q = 0; q < nq; q++) {
        struct virtqueue *vq = &vd->vqs[q];
        vq->num = snapshot_get_u16(r, "queue size");
        vq->desc = snapshot_get_u64(r, "queue descriptor area");
        vq->driver = snapshot_get_u64(r, "queue driver area");
        vq->device = snapshot_get_u64(r, "queue device area");
        int ready = snapshot_get_u8(r, "queue ready");
        int packed = snapshot_get_u8(r, "queue packed") ? 1 : 0;
        int event_idx = snapshot_get_u8(r, "queue event_idx") ? 1 : 0;
        int indirect = snapshot_get_u8(r, "queue indirect") ? 1 : 0;
        uint16_t last_avail = snapshot_get_u16(r, "queue last_avail");
        uint16_t used_idx = snapshot_get_u16(r, "queue used_idx");
        uint16_t next_avail = snapshot_get_u16(r, "queue next_avail");
        uint16_t next_used = snapshot_get_u16(r, "queue next_used");
        uint8_t avail_wrap = snapshot_get_u8(r, "queue avail_wrap");
        uint8_t used_wrap = snapshot_get_u8(r, "queue used_wrap");
        uint32_t added = snapshot_get_u32(r, "queue added");
        vq->requests = snapshot_get_u64(r, "queue requests");
        vq->notifies = snapshot_get_u64(r, "queue notifies");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (vq->num > vq->num_max)
            return snapshot_fail(r, err, errlen, "queue %u size %u exceeds %u", q, vq->num,
                                 vq->num_max);
        vq->ready = 0;
        if (ready) {
            /* the same checks QueueReady makes; they reset the indexes, set just after */
            if (vq_enable(vq, vd->env.mem, packed, event_idx, indirect))
                return snapshot_fail(r, err, errlen, "queue %u: %s", q, vq->err);
            if (packed && (next_avail >= vq->num || next_used >= vq->num))
                return snapshot_fail(r, err, errlen, "queue %u packed index %u/%u beyond size "
                                     "%u", q, next_avail, next_used, vq->num);
            if (avail_wrap > 1 || used_wrap > 1 || added > 0xffff)
                return snapshot_fail(r, err, errlen, "queue %u wrap counters %u/%u or added "
                                     "%u out of range", q, avail_wrap, used_wrap, added);
        }
        vq->packed = packed;
        vq->event_idx = event_idx;
        vq->indirect = indirect;
        vq->last_avail = last_avail;
        vq->used_idx = used_idx;
        vq->next_avail = next_avail;
        vq->next_used = next_used;
        vq->avail_wrap = avail_wrap;
        vq->used_wrap = used_wrap;
        vq->added = added;
    }
    return 0;
}
