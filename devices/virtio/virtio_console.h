/* virtio-console (§5.3), port 0 only (no MULTIPORT). Kind "virtio-console", args:
 *   out=stdio|none|PATH   where the guest's transmitq bytes go (default stdio)
 *   in=STRING             scripted input, delivered into receiveq buffers as soon as the
 *                         guest posts them (escapes: \n \r \t \\ \xHH; a comma is \x2c);
 *                         bytes already delivered are not replayed after a device reset
 * VIRTIO_CONSOLE_F_EMERG_WRITE is offered: a config write to emerg_wr outputs one byte. */
#ifndef VMLAB_VIRTIO_CONSOLE_H
#define VMLAB_VIRTIO_CONSOLE_H

#include "devices/device.h"

extern const struct device_type virtio_console_type;

/* Bytes of one transmit chain written out; the rest of a larger chain is dropped. */
#define VIRTIO_CONSOLE_TX_MAX (1u << 20)

#endif
