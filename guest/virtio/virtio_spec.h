/* Facts from the virtio 1.2 specification that the guest driver needs: virtio-mmio
 * (version 2) register offsets, status bits, feature bits and the split and packed ring
 * layouts. Device-specific request formats live with their users. */
#ifndef GUEST_VIRTIO_SPEC_H
#define GUEST_VIRTIO_SPEC_H

#include <stdint.h>

/* virtio-mmio registers (spec 4.2.2) */
#define VMMIO_MAGIC_VALUE        0x000
#define VMMIO_VERSION            0x004
#define VMMIO_DEVICE_ID          0x008
#define VMMIO_VENDOR_ID          0x00c
#define VMMIO_DEVICE_FEATURES    0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES    0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL          0x030
#define VMMIO_QUEUE_NUM_MAX      0x034
#define VMMIO_QUEUE_NUM          0x038
#define VMMIO_QUEUE_READY        0x044
#define VMMIO_QUEUE_NOTIFY       0x050
#define VMMIO_INTERRUPT_STATUS   0x060
#define VMMIO_INTERRUPT_ACK      0x064
#define VMMIO_STATUS             0x070
#define VMMIO_QUEUE_DESC_LOW     0x080
#define VMMIO_QUEUE_DESC_HIGH    0x084
#define VMMIO_QUEUE_DRIVER_LOW   0x090
#define VMMIO_QUEUE_DRIVER_HIGH  0x094
#define VMMIO_QUEUE_DEVICE_LOW   0x0a0
#define VMMIO_QUEUE_DEVICE_HIGH  0x0a4
#define VMMIO_CONFIG_GENERATION  0x0fc
#define VMMIO_CONFIG             0x100

#define VMMIO_MAGIC              0x74726976u  /* "virt" */

#define VMMIO_INT_VRING          1u
#define VMMIO_INT_CONFIG         2u

/* device status (spec 2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER      2u
#define VIRTIO_STATUS_DRIVER_OK   4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED      128u

/* transport feature bits (spec 6) */
#define VIRTIO_F_INDIRECT_DESC   28
#define VIRTIO_F_EVENT_IDX       29
#define VIRTIO_F_VERSION_1       32
#define VIRTIO_F_RING_PACKED     34

/* device IDs (spec 5) */
#define VIRTIO_ID_BLOCK          2
#define VIRTIO_ID_CONSOLE        3
#define VIRTIO_ID_RNG            4
#define VIRTIO_ID_NET            1
#define VIRTIO_ID_BALLOON        5
#define VIRTIO_ID_INPUT          18

/* split ring (spec 2.7) */
#define VRING_DESC_F_NEXT        1
#define VRING_DESC_F_WRITE       2
#define VRING_DESC_F_INDIRECT    4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY   1

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];    /* then uint16_t used_event (EVENT_IDX) */
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];   /* then uint16_t avail_event (EVENT_IDX) */
};

/* packed ring (spec 2.8) */
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED  (1u << 15)
#define VRING_PACKED_EVENT_F_ENABLE  0
#define VRING_PACKED_EVENT_F_DISABLE 1
#define VRING_PACKED_EVENT_F_DESC    2

struct vring_packed_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;
    uint16_t flags;
};

struct vring_packed_event {
    uint16_t off_wrap;  /* bits 0..14 offset, bit 15 wrap counter */
    uint16_t flags;
};

/* EVENT_IDX rule (spec 2.7.10): notify/interrupt if new_idx passed event_idx since old. */
static inline int vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
