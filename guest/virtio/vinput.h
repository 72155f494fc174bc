/* virtio-input driver (§5.8): config queries, an event queue kept full of 8-byte buffers,
 * status (LED) events to the device. */
#ifndef GUEST_VINPUT_H
#define GUEST_VINPUT_H

#include "virtio.h"

#define VINPUT_CFG_ID_NAME   0x01
#define VINPUT_CFG_ID_SERIAL 0x02
#define VINPUT_CFG_ID_DEVIDS 0x03
#define VINPUT_CFG_PROP_BITS 0x10
#define VINPUT_CFG_EV_BITS   0x11
#define VINPUT_CFG_ABS_INFO  0x12
#define VINPUT_EVENTS        32     /* buffers kept on the event queue */

struct vinput_event {
    uint16_t type, code;
    uint32_t value;
};

struct vinput {
    struct virtio_dev dev;
    struct virtq *eventq, *statusq;
    struct vinput_event *ev;        /* VINPUT_EVENTS buffers, indexed by chain id */
    struct vinput_event *status;
    int ev_ids[VINPUT_EVENTS];
};

/* Finds input device `index`, negotiates, sets up both queues, fills the event queue and
 * sets DRIVER_OK. 0 or -errno. */
int vinput_init(struct vinput *in, unsigned index, const struct virtio_opts *o);
/* Selects (sel, subsel) and copies up to 128 bytes of the answer to out; returns its size. */
unsigned vinput_cfg(struct vinput *in, uint8_t sel, uint8_t subsel, uint8_t *out);
/* Takes one event if the device delivered one (its buffer goes back on the queue): 1 or 0. */
int vinput_poll(struct vinput *in, struct vinput_event *out);
/* Sends one event on the status queue and waits for the device to take it. */
void vinput_status(struct vinput *in, uint16_t type, uint16_t code, uint32_t value);

#endif
