/* Guest-side virtio driver library: device discovery, virtio-mmio (version 2) transport,
 * split and packed virtqueues, polled or interrupt-driven completion. One CPU, identity
 * mapped memory, no allocator: everything comes from a static arena. See README.md. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

#include "virtio_spec.h"

/* errno values (Linux numbering), without needing a libc header */
#define VIRTIO_EIO 5
#define VIRTIO_ENODEV 19
#define VIRTIO_EINVAL 22
#define VIRTIO_ENOSPC 28

/* ---- discovery ---- */
enum virtio_loc_source { VIRTIO_LOC_FDT, VIRTIO_LOC_CMDLINE, VIRTIO_LOC_SCAN };

struct virtio_mmio_loc {
    uint64_t base;
    uint64_t size;
    unsigned irq;           /* GSI */
    uint32_t device_id;
    enum virtio_loc_source source;
};

/* Finds the index-th (0-based) virtio-mmio transport whose DeviceID is device_id.
 * Sources, first that has any entry wins: the FDT ("virtio,mmio" nodes), the cmdline
 * (virtio_mmio.device=<size>@<base>:<irq>), then a scan of QEMU microvm's transports.
 * Returns 0 or -VIRTIO_ENODEV. */
int virtio_find(uint32_t device_id, unsigned index, struct virtio_mmio_loc *out);
const char *virtio_loc_source_name(enum virtio_loc_source s);

/* ---- options (from the cmdline) ---- */
struct virtio_opts {
    int packed;             /* ring=split|packed */
    int irq;                /* mode=poll|irq */
    int indirect;           /* indirect=0|1 */
    int event_idx;          /* event_idx=0|1 */
    unsigned qsize;         /* qsize=N (power of two for split), 0: min(QueueNumMax, 128) */
    int trace;              /* vtrace=1: print every add and used element */
};

/* Parses ring= mode= indirect= event_idx= qsize= vtrace= (defaults: split, poll, 0, 0, 0, 0).
 * Prints a message naming the bad word and returns -VIRTIO_EINVAL on a bad value. */
int virtio_opts_parse(struct virtio_opts *o);

/* ---- device and queues ---- */
#define VIRTQ_MAX_SG    8       /* buffers per chain */
#define VIRTIO_MAX_QUEUES 4

struct virtio_dev;

struct virtq {
    struct virtio_dev *dev;
    uint16_t index;
    uint16_t size;
    int packed;
    uint16_t num_free;
    uint16_t num_added;         /* chains added since the last kick */
    /* split ring */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t free_head;
    uint16_t avail_idx;         /* shadow of avail->idx, incl. unpublished chains */
    uint16_t avail_pub;         /* value last written to avail->idx */
    uint16_t last_used;
    /* packed ring */
    struct vring_packed_desc *pdesc;
    struct vring_packed_event *drv_event;   /* written by us */
    struct vring_packed_event *dev_event;   /* written by the device */
    uint16_t next_avail;
    uint16_t next_used;
    uint8_t avail_wrap;
    uint8_t used_wrap;
    uint16_t pub_head;          /* first slot of the unpublished chains */
    uint16_t pub_flags;         /* its flags, written at kick time */
    uint16_t free_id;           /* packed: free buffer-ID list head */
    uint16_t *id_next;          /* packed: free buffer-ID links */
    /* both */
    uint16_t *chain_len;        /* per head/ID: descriptors (ring slots) used */
    void *indirect;             /* per head/ID: VIRTQ_MAX_SG descriptor table, or NULL */
    uint64_t notifies;          /* QueueNotify writes done */
    uint64_t kicks_suppressed;  /* kicks the device asked us to skip */
    uint64_t irq_at_notify;     /* irq mode: dev->irq_count before the last notify */
    int await_irq;              /* irq mode: that notify's interrupt not yet seen */
};

struct virtio_dev {
    uint64_t base;
    unsigned irq;
    int scanned;                /* found by the QEMU microvm scan */
    uint32_t device_id;
    uint64_t features;          /* negotiated */
    uint64_t offered;           /* what the device offered */
    struct virtio_opts opts;    /* as effective after negotiation */
    uint8_t vector;             /* IDT vector in irq mode */
    volatile uint64_t irq_count;
    volatile uint32_t isr_seen; /* OR of InterruptStatus values acked */
    unsigned nqueues;
    struct virtq queues[VIRTIO_MAX_QUEUES];
};

/* Resets the device, negotiates VERSION_1 plus (device_features & want) plus the ring
 * features the options ask for and the device offers. Options that cannot be honoured
 * (packed/indirect/event_idx not offered) are turned off in dev->opts with a note on the
 * console. Returns 0, -VIRTIO_ENODEV (not version 2 / wrong magic) or -VIRTIO_EIO. */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_mmio_loc *loc, uint64_t want,
                    const struct virtio_opts *o);
/* Sets up queue `index` (size from opts, bounded by QueueNumMax). 0 or -errno. */
int virtio_queue_setup(struct virtio_dev *d, unsigned index, struct virtq **out);
/* DRIVER_OK; in irq mode also routes the IRQ and installs the handler. 0 or -VIRTIO_EIO. */
int virtio_dev_ready(struct virtio_dev *d);
/* Prints "virtio: <name> ... ring=.. mode=.. indirect=.. event_idx=.." once. */
void virtio_dev_describe(const struct virtio_dev *d, const char *name);
static inline int virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
    return (d->features >> bit) & 1;
}
uint32_t virtio_status(const struct virtio_dev *d);
/* Device config space, read with the generation-counter protocol. */
uint32_t virtio_config_read32(const struct virtio_dev *d, unsigned off);
uint64_t virtio_config_read64(const struct virtio_dev *d, unsigned off);
uint8_t virtio_config_read8(const struct virtio_dev *d, unsigned off);
void virtio_config_write8(const struct virtio_dev *d, unsigned off, uint8_t v);
void virtio_config_write32(const struct virtio_dev *d, unsigned off, uint32_t v);

/* One element of a chain: the device reads (write=0) or writes (write=1) [addr, addr+len). */
struct virtq_buf {
    const void *addr;
    uint32_t len;
    int write;
};

/* Adds a chain of n (1..VIRTQ_MAX_SG) buffers, device-readable ones first. The chain is
 * not visible to the device until virtq_kick(). Returns the chain's id (>= 0) or
 * -VIRTIO_ENOSPC / -VIRTIO_EINVAL. */
int virtq_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n);
/* Makes added chains visible and notifies the device unless it suppressed notifications. */
void virtq_kick(struct virtq *q);
/* Takes one used chain if there is one: returns 1 and fills id/len, else 0. */
int virtq_get_used(struct virtq *q, uint16_t *id, uint32_t *len);
/* Waits for one used chain: spins (poll mode) or halts until an interrupt (irq mode). */
void virtq_wait_used(struct virtq *q, uint16_t *id, uint32_t *len);

/* ---- small helpers ---- */
/* Static DMA arena (identity mapped); never freed. NULL when exhausted. */
void *virtio_alloc(size_t size, size_t align);
/* Cmdline number: value of key= parsed as decimal or 0x-hex, def if absent. */
uint64_t virtio_cmdline_u64(const char *key, uint64_t def);
/* FNV-1a 64-bit, continuing from h (start with VIRTIO_FNV_INIT). */
#define VIRTIO_FNV_INIT 0xcbf29ce484222325ull
uint64_t virtio_fnv1a(uint64_t h, const void *p, size_t n);

#endif
