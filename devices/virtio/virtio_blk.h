/* virtio-blk (§5.2) over virtio-mmio. Kind "virtio-blk", args:
 *   path=FILE   disk image opened with disk_open() (raw, composite, qcow2)
 *   mem=SIZE    in-memory disk of SIZE bytes (K/M/G suffixes) instead of a file
 *   ro          read-only: VIRTIO_BLK_F_RO offered, writes fail with IOERR
 *   id=NAME     serial returned by GET_ID (at most 20 bytes)
 * Requests are served synchronously on QueueNotify, through the disk ops table only. */
#ifndef VMLAB_VIRTIO_BLK_H
#define VMLAB_VIRTIO_BLK_H

#include "devices/device.h"

extern const struct device_type virtio_blk_type;

/* Largest data transfer of one request: seg_max * size_max as offered in config space. */
#define VIRTIO_BLK_SEG_MAX   254
#define VIRTIO_BLK_SIZE_MAX  (128u * 1024)
#define VIRTIO_BLK_MAX_DISCARD_SEG 16

#endif
