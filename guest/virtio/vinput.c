/* virtio-input driver: see vinput.h. */
#include "vinput.h"
#include "rt.h"

int vinput_init(struct vinput *in, unsigned index, const struct virtio_opts *o)
{
    struct virtio_mmio_loc loc;
    int rc;

    if ((rc = virtio_find(VIRTIO_ID_INPUT, index, &loc)))
        return rc;
    if ((rc = virtio_dev_init(&in->dev, &loc, 0, o)) ||
        (rc = virtio_queue_setup(&in->dev, 0, &in->eventq)) ||
        (rc = virtio_queue_setup(&in->dev, 1, &in->statusq)))
        return rc;
    in->ev = virtio_alloc(sizeof(*in->ev) * in->eventq->size, 8);
    in->status = virtio_alloc(sizeof(*in->status), 8);
    if (!in->ev || !in->status)
        return -VIRTIO_ENOSPC;
    /* Buffers go on before DRIVER_OK: events pending in the device arrive at once. */
    for (unsigned i = 0; i < VINPUT_EVENTS && i < in->eventq->size; i++) {
        struct virtq_buf b = { &in->ev[i], sizeof(in->ev[i]), 1 };
        int id = virtq_add(in->eventq, &b, 1);
        if (id < 0)
            return id;
        in->ev_ids[i] = id;
    }
    virtq_kick(in->eventq);
    return virtio_dev_ready(&in->dev);
}

unsigned vinput_cfg(struct vinput *in, uint8_t sel, uint8_t subsel, uint8_t *out)
{
    virtio_config_write8(&in->dev, 0, sel);
    virtio_config_write8(&in->dev, 1, subsel);
    unsigned size = virtio_config_read8(&in->dev, 2);
    for (unsigned i = 0; i < size && i < 128; i++)
        out[i] = virtio_config_read8(&in->dev, 8 + i);
    return size;
}

int vinput_poll(struct vinput *in, struct vinput_event *out)
{
    uint16_t id;
    uint32_t len;

    if (!virtq_get_used(in->eventq, &id, &len))
        return 0;
    /* Chain ids are not buffer indexes in general: find the buffer by id. */
    unsigned i;
    for (i = 0; i < VINPUT_EVENTS && in->ev_ids[i] != id; i++)
        ;
    GUEST_ASSERT(i < VINPUT_EVENTS);
    GUEST_ASSERT(len == sizeof(*out));
    *out = in->ev[i];
    struct virtq_buf b = { &in->ev[i], sizeof(in->ev[i]), 1 };
    in->ev_ids[i] = virtq_add(in->eventq, &b, 1);
    GUEST_ASSERT(in->ev_ids[i] >= 0);
    virtq_kick(in->eventq);
    return 1;
}

void vinput_status(struct vinput *in, uint16_t type, uint16_t code, uint32_t value)
{
    uint16_t id;
    uint32_t len;

    in->status->type = type;
    in->status->code = code;
    in->status->value = value;
    struct virtq_buf b = { in->status, sizeof(*in->status), 0 };
    GUEST_ASSERT(virtq_add(in->statusq, &b, 1) >= 0);
    virtq_kick(in->statusq);
    virtq_wait_used(in->statusq, &id, &len);
}
