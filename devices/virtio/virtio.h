/* The virtio device core: what every virtio device model shares, independent of the
 * transport. A model embeds `struct virtio_dev` as its FIRST member, fills a
 * `struct virtio_dev_ops`, and uses `virtio_mmio_ops` (devices/virtio/mmio.h) as its
 * device_type's bus ops with the model's state as opaque. Future devices (net, vsock,
 * balloon) slot in the same way; a virtio-pci transport would drive the same core.
 *
 * Threading: none. Everything runs on the thread that dispatches the bus access. */
#ifndef VMLAB_VIRTIO_H
#define VMLAB_VIRTIO_H

#include <stdint.h>

#include "devices/device.h"
#include "devices/virtio/virtio_spec.h"
#include "devices/virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;

struct virtio_dev_ops {
    uint32_t device_id;         /* VIRTIO_ID_* */
    unsigned num_queues;        /* <= VIRTIO_MAX_QUEUES */
    uint16_t queue_max;         /* QueueNumMax of every queue, <= VQ_MAX_SIZE */
    uint32_t config_size;       /* bytes of device config space (at 0x100 on mmio) */
    /* Device-specific configuration space. The core clips [off, off+len) to config_size. */
    void (*config_read)(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len);
    /* Optional: NULL makes config writes read-only (ignored and logged). */
    void (*config_write)(struct virtio_dev *vd, uint32_t off, const void *buf, unsigned len);
    /* Optional: refuse a feature set at FEATURES_OK (return -EINVAL, reason in err). The
     * core has already checked VERSION_1 and that only offered bits are set. */
    int (*validate_features)(struct virtio_dev *vd, uint64_t features, char *err,
                             size_t errlen);
    /* The driver notified queue q (QueueNotify), or the device became DRIVER_OK. Only
     * called for a ready queue of a live (DRIVER_OK, not NEEDS_RESET) device. */
    void (*queue_notify)(struct virtio_dev *vd, unsigned q);
    /* Optional: DRIVER_OK was just set. */
    void (*driver_ok)(struct virtio_dev *vd);
    /* Device reset (Status = 0): drop all device-specific runtime state. */
    void (*reset)(struct virtio_dev *vd);
    /* Optional: queue q was reset on its own (VIRTIO_F_RING_RESET) or stopped
     * (QueueReady = 0): forget anything held for its old ring. */
    void (*queue_reset)(struct virtio_dev *vd, unsigned q);
};

struct virtio_dev {
    const struct virtio_dev_ops *ops;
    struct device_env env;
    uint64_t device_features;   /* offered: model bits plus the ring/version bits */
    uint64_t driver_features;   /* written by the driver; meaningful once FEATURES_OK */
    uint32_t device_features_sel, driver_features_sel, queue_sel, shm_sel;
    uint32_t status;
    uint32_t isr;               /* InterruptStatus: VIRTIO_MMIO_INT_VRING | _CONFIG */
    uint32_t config_generation;
    int irq_level;              /* level currently driven on env.irq */
    unsigned log_lines;         /* rate limit for guest-triggered messages */
    struct virtqueue vqs[VIRTIO_MAX_QUEUES];
    uint64_t queue_ready_count; /* times any queue became ready (diagnostics) */
};

/* Sets up the core: offered features = model_features | VERSION_1 | RING_INDIRECT_DESC |
 * RING_EVENT_IDX | RING_PACKED | RING_RESET. Copies *env. */
void virtio_dev_init(struct virtio_dev *vd, const struct virtio_dev_ops *ops,
                     const struct device_env *env, uint64_t model_features);

/* Device reset as if the driver wrote Status = 0. */
void virtio_dev_reset(struct virtio_dev *vd);

/* 1 if `bit` was negotiated (FEATURES_OK accepted). */
static inline int virtio_dev_has(const struct virtio_dev *vd, unsigned bit)
{
    return (vd->status & VIRTIO_STATUS_FEATURES_OK) && (vd->driver_features >> bit) & 1;
}

/* 1 while the device processes queues: DRIVER_OK set and NEEDS_RESET not set. */
static inline int virtio_dev_live(const struct virtio_dev *vd)
{
    return (vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
           VIRTIO_STATUS_DRIVER_OK;
}

/* Pops the next chain of queue q. 1: got one; 0: none (or device not live); <0: the ring
 * was malformed and the device is now in DEVICE_NEEDS_RESET (models just stop). */
int virtio_dev_pop(struct virtio_dev *vd, unsigned q, struct vq_chain *c);

/* Pushes a chain as used; on failure the device goes to DEVICE_NEEDS_RESET. */
int virtio_dev_push(struct virtio_dev *vd, unsigned q, const struct vq_chain *c, uint32_t len);

/* The same by id (deferred completions, see vq_push_id). */
int virtio_dev_push_id(struct virtio_dev *vd, unsigned q, uint16_t id, uint16_t ndesc,
                       uint32_t len);

/* After a batch of pushes: sends the used buffer notification if the driver wants one. */
void virtio_dev_notify_used(struct virtio_dev *vd, unsigned q);

/* The device-specific config changed: bumps ConfigGeneration, raises a config interrupt. */
void virtio_dev_config_changed(struct virtio_dev *vd);

/* The guest broke the protocol: sets DEVICE_NEEDS_RESET, raises a configuration change
 * interrupt and logs one line. The device ignores its queues until reset. */
void virtio_dev_fail(struct virtio_dev *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A rate-limited line to env.log for guest-caused oddities (bad register accesses...). */
void virtio_dev_log(struct virtio_dev *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Re-evaluates the interrupt line: level-triggered, high while InterruptStatus != 0. */
void virtio_dev_update_irq(struct virtio_dev *vd);

/* Transport side: what a transport calls after decoding a register access. */
/* Status write (value 0 resets). Refuses illegal transitions with a log line. */
void virtio_dev_write_status(struct virtio_dev *vd, uint32_t value);
/* Driver features word `sel` (0: bits 0-31, 1: bits 32-63); ignored after FEATURES_OK. */
void virtio_dev_write_driver_features(struct virtio_dev *vd, uint32_t sel, uint32_t value);
uint32_t virtio_dev_read_device_features(const struct virtio_dev *vd, uint32_t sel);
/* QueueReady for queue q: 1 validates and starts it, 0 stops it. */
void virtio_dev_queue_set_ready(struct virtio_dev *vd, unsigned q, uint32_t value);
/* QueueReset (VIRTIO_F_RING_RESET): the queue returns to its post-reset state. */
void virtio_dev_queue_reset(struct virtio_dev *vd, unsigned q);
/* QueueNotify for queue q. */
void virtio_dev_queue_notify(struct virtio_dev *vd, unsigned q);
/* InterruptACK. */
void virtio_dev_ack(struct virtio_dev *vd, uint32_t bits);
/* Config space access, clipped to config_size (reads beyond it see zeros). */
void virtio_dev_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len);
void virtio_dev_config_write(struct virtio_dev *vd, uint32_t off, const void *buf,
                             unsigned len);

/* Per-queue statistics for the control socket's `stats`, in the shape of
 * device_type.num_queues / queue_stats: `state` is the state of any virtio device (it
 * starts with struct virtio_dev). requests = chains popped since the device was created,
 * notifies = used buffer notifications sent. 0, or -EINVAL if q is not a queue. */
unsigned virtio_dev_num_queues(const void *state);
int virtio_dev_queue_stats(const void *state, unsigned q, uint64_t *requests,
                           uint64_t *notifies);

/* Snapshots (vmm/SNAPSHOT.md, devices/virtio/virtio_snapshot.c): the transport and core
 * state (status, features, selectors, InterruptStatus, config generation, IRQ level) and
 * every queue (size, areas, ready, ring format, indexes, wrap counters, counters). Models
 * call these from their device_type save/load, then add their own fields. load validates
 * ready queues as QueueReady would; 0 or -EINVAL with a message naming the field. */
struct snapshot_writer;
struct snapshot_reader;
void virtio_dev_save(const struct virtio_dev *vd, struct snapshot_writer *w);
int virtio_dev_load(struct virtio_dev *vd, struct snapshot_reader *r, char *err,
                    size_t errlen);

#endif
