/* virtio-mmio transport, version 2 (§4.2.2): one 4 KiB register window per device.
 * A virtio device type uses `&virtio_mmio_ops` as its bus ops, with its state (which
 * begins with struct virtio_dev) as the opaque pointer, and VIRTIO_MMIO_WINDOW_SIZE as
 * its window size. Registers other than the config space take 32-bit accesses only; the
 * config space (0x100..) takes 1, 2, 4 and 8-byte accesses. Illegal accesses are ignored
 * (reads return 0) with a log line. */
#ifndef VMLAB_VIRTIO_MMIO_H
#define VMLAB_VIRTIO_MMIO_H

#include "vmm/bus.h"

extern const struct bus_ops virtio_mmio_ops;

#endif
