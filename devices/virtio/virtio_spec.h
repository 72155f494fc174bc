/* Numbers from the virtio 1.2 specification that both the device side (devices/virtio)
 * and the mock driver (tests/mock_virtio) use: status bits, feature bits, ring layouts,
 * virtio-mmio register offsets. Section numbers refer to virtio-v1.2-cs01. */
#ifndef VMLAB_VIRTIO_SPEC_H
#define VMLAB_VIRTIO_SPEC_H

#include <stdint.h>

/* §2.1 device status */
#define VIRTIO_STATUS_ACKNOWLEDGE        0x01
#define VIRTIO_STATUS_DRIVER             0x02
#define VIRTIO_STATUS_DRIVER_OK          0x04
#define VIRTIO_STATUS_FEATURES_OK        0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* §6 reserved feature bits */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32
#define VIRTIO_F_ACCESS_PLATFORM    33
#define VIRTIO_F_RING_PACKED        34
#define VIRTIO_F_IN_ORDER           35
#define VIRTIO_F_NOTIFICATION_DATA  38
#define VIRTIO_F_RING_RESET         40
#define VIRTIO_BIT(b) (1ULL << (b))

/* §5 device IDs */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

/* §2.7 split virtqueue: 16-byte descriptors {le64 addr, le32 len, le16 flags, le16 next};
 * avail {le16 flags, le16 idx, le16 ring[num], le16 used_event};
 * used {le16 flags, le16 idx, {le32 id, le32 len} ring[num], le16 avail_event}. */
#define VIRTQ_DESC_F_NEXT           1
#define VIRTQ_DESC_F_WRITE          2
#define VIRTQ_DESC_F_INDIRECT       4
#define VIRTQ_AVAIL_F_NO_INTERRUPT  1
#define VIRTQ_USED_F_NO_NOTIFY      1
#define VIRTQ_DESC_SIZE             16
#define VIRTQ_AVAIL_SIZE(num)       (6u + 2u * (num))
#define VIRTQ_USED_SIZE(num)        (6u + 8u * (num))

/* §2.8 packed virtqueue: 16-byte descriptors {le64 addr, le32 len, le16 id, le16 flags};
 * event suppression {le16 off_wrap (bit 15 = wrap), le16 flags}. */
#define VIRTQ_DESC_F_AVAIL          (1u << 7)
#define VIRTQ_DESC_F_USED           (1u << 15)
#define VIRTQ_EVENT_F_ENABLE        0
#define VIRTQ_EVENT_F_DISABLE       1
#define VIRTQ_EVENT_F_DESC          2
#define VIRTQ_EVENT_SUPPRESS_SIZE   4

/* §2.7.7.2 the event-index test: should an index move from old to new_idx signal `event`? */
static inline int virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* §4.2.2 virtio-mmio (version 2) register offsets */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_QUEUE_RESET         0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100
#define VIRTIO_MMIO_WINDOW_SIZE         0x1000

#define VIRTIO_MMIO_MAGIC               0x74726976u   /* "virt" */
#define VIRTIO_MMIO_VERSION_2           2
#define VIRTIO_MMIO_VENDOR_VMLAB        0x424c4d56u   /* "VMLB" */

#define VIRTIO_MMIO_INT_VRING           1   /* InterruptStatus: used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG          2   /* InterruptStatus: configuration change */

/* §5.2 block device */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define VIRTIO_BLK_ID_BYTES       20
#define VIRTIO_BLK_SECTOR_SIZE    512
#define VIRTIO_BLK_WZ_F_UNMAP     1

/* config offsets (§5.2.4) */
#define VIRTIO_BLK_CFG_CAPACITY              0
#define VIRTIO_BLK_CFG_SIZE_MAX              8
#define VIRTIO_BLK_CFG_SEG_MAX               12
#define VIRTIO_BLK_CFG_BLK_SIZE              20
#define VIRTIO_BLK_CFG_WRITEBACK             32
#define VIRTIO_BLK_CFG_NUM_QUEUES            34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS   36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG       40
#define VIRTIO_BLK_CFG_DISCARD_ALIGNMENT     44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS        48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG            52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP          56
#define VIRTIO_BLK_CFG_SIZE                  60

/* §5.3 console */
#define VIRTIO_CONSOLE_F_SIZE        0
#define VIRTIO_CONSOLE_F_MULTIPORT   1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2
#define VIRTIO_CONSOLE_CFG_COLS      0
#define VIRTIO_CONSOLE_CFG_ROWS      2
#define VIRTIO_CONSOLE_CFG_MAX_PORTS 4
#define VIRTIO_CONSOLE_CFG_EMERG_WR  8
#define VIRTIO_CONSOLE_CFG_SIZE      12
#define VIRTIO_CONSOLE_RX_Q          0
#define VIRTIO_CONSOLE_TX_Q          1

/* §5.1 network device. Header (virtio 1.x, 12 bytes): u8 flags, u8 gso_type, le16 hdr_len,
 * le16 gso_size, le16 csum_start, le16 csum_offset, le16 num_buffers. Config: u8 mac[6],
 * le16 status, le16 max_virtqueue_pairs, le16 mtu. Control commands: u8 class, u8 command,
 * data, then one device-writable u8 ack. */
#define VIRTIO_NET_F_CSUM            0
#define VIRTIO_NET_F_GUEST_CSUM      1
#define VIRTIO_NET_F_MTU             3
#define VIRTIO_NET_F_MAC             5
#define VIRTIO_NET_F_MRG_RXBUF       15
#define VIRTIO_NET_F_STATUS          16
#define VIRTIO_NET_F_CTRL_VQ         17
#define VIRTIO_NET_F_CTRL_RX         18
#define VIRTIO_NET_F_CTRL_MAC_ADDR   23
#define VIRTIO_NET_HDR_SIZE          12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM  1
#define VIRTIO_NET_HDR_F_DATA_VALID  2
#define VIRTIO_NET_HDR_GSO_NONE      0
#define VIRTIO_NET_S_LINK_UP         1
#define VIRTIO_NET_CFG_MAC           0
#define VIRTIO_NET_CFG_STATUS        6
#define VIRTIO_NET_CFG_MAX_PAIRS     8
#define VIRTIO_NET_CFG_MTU           10
#define VIRTIO_NET_CFG_SIZE          12
#define VIRTIO_NET_RX_Q              0
#define VIRTIO_NET_TX_Q              1
#define VIRTIO_NET_CTRL_Q            2
#define VIRTIO_NET_OK                0
#define VIRTIO_NET_ERR               1
#define VIRTIO_NET_CTRL_RX           0
#define VIRTIO_NET_CTRL_RX_PROMISC   0
#define VIRTIO_NET_CTRL_RX_ALLMULTI  1
#define VIRTIO_NET_CTRL_MAC          1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1

#endif
