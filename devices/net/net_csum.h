/* Completing a partial checksum (virtio's NEEDS_CSUM, a TAP's CHECKSUM_PARTIAL): the
 * Internet checksum over [start, len) of the frame, seeded by the partial sum already at
 * start + offset, stored there. Used by the device for the guest's frames and by the TAP
 * backend for the kernel's. */
#ifndef VMLAB_NET_CSUM_H
#define VMLAB_NET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -EINVAL when [start, start + offset + 2) is not inside the frame. */
int net_csum_complete(uint8_t *frame, size_t len, uint16_t start, uint16_t offset);

#endif
