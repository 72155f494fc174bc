/* virtio-input (§5.8). Kind "virtio-input", args
 *     kind=keyboard|mouse|single-touch|multi-touch[,width=W][,height=H][,name=N]
 *     [,serial=S][,id=ID]
 * The device offers what crosvm's devices of the same kinds offer (EV_KEY/EV_REL/EV_ABS
 * bitmaps, ABS_INFO for each axis, PROP_BITS); events come from the host through
 * device_type.host_input as whole 8-byte evdev events and wait in a bounded queue
 * (VIRTIO_INPUT_PENDING_MAX events, further ones are dropped and counted) until the driver
 * posts buffers. LED events the driver sends on the status queue are kept (keyboard). */
#ifndef VMLAB_VIRTIO_INPUT_H
#define VMLAB_VIRTIO_INPUT_H

#include <stdint.h>

#include "devices/device.h"

extern const struct device_type virtio_input_type;

#define VIRTIO_ID_INPUT 18

/* Config space: {u8 select, u8 subsel, u8 size, u8 reserved[5], u8 u[128]}. */
#define VIRTIO_INPUT_CFG_SELECT   0
#define VIRTIO_INPUT_CFG_SUBSEL   1
#define VIRTIO_INPUT_CFG_SIZE_OFF 2
#define VIRTIO_INPUT_CFG_DATA     8
#define VIRTIO_INPUT_CFG_SIZE     136

#define VIRTIO_INPUT_CFG_UNSET     0x00
#define VIRTIO_INPUT_CFG_ID_NAME   0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS   0x11
#define VIRTIO_INPUT_CFG_ABS_INFO  0x12

#define VIRTIO_INPUT_EVENT_Q  0
#define VIRTIO_INPUT_STATUS_Q 1
#define VIRTIO_INPUT_EVENT_SIZE 8

/* Events waiting for driver buffers; the rest are dropped (counted in `dropped`). */
#define VIRTIO_INPUT_PENDING_MAX 1024

/* Linux evdev numbers (linux/input-event-codes.h) the device kinds use. */
#define EV_SYN 0x00
#define EV_KEY 0x01
#define EV_REL 0x02
#define EV_ABS 0x03
#define EV_LED 0x11
#define SYN_REPORT 0
#define REL_X 0x00
#define REL_Y 0x01
#define REL_WHEEL 0x08
#define ABS_X 0x00
#define ABS_Y 0x01
#define ABS_MT_SLOT 0x2f
#define ABS_MT_POSITION_X 0x35
#define ABS_MT_POSITION_Y 0x36
#define ABS_MT_TRACKING_ID 0x39
#define BTN_LEFT 0x110
#define BTN_RIGHT 0x111
#define BTN_MIDDLE 0x112
#define BTN_TOUCH 0x14a
#define LED_NUML 0x00
#define LED_CAPSL 0x01
#define LED_SCROLLL 0x02
#define INPUT_PROP_POINTER 0x00
#define INPUT_PROP_DIRECT 0x01
#define BUS_VIRTUAL 0x06
#define VIRTIO_INPUT_MT_SLOTS 10
#define VIRTIO_INPUT_KEY_MAX 0x2ff     /* highest key code a keyboard offers (KEY_MAX) */

/* Counters a test or `stats` reads. */
struct virtio_input_counters {
    uint64_t injected;      /* events accepted from the host */
    uint64_t delivered;     /* events written to driver buffers */
    uint64_t dropped;       /* events refused because the pending queue was full */
    uint64_t discarded;     /* events pending when a driver that had started reset it */
    uint64_t status;        /* events received on the status queue */
    uint32_t pending;       /* events waiting now */
    uint32_t leds;          /* LED state the driver last set (bit n = LED n) */
};
void virtio_input_counters(const void *state, struct virtio_input_counters *out);

#endif
