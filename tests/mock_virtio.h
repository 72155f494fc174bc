/* A driver-less virtio driver for unit tests, fuzzers and benchmarks.
 *
 * It owns a host buffer wrapped as guest RAM (guest_mem_init_buffer, RAM at gpa 0), creates
 * a virtio device model from its device_type exactly like the VMM does, and plays the
 * driver's side of virtio-mmio by calling the type's bus_ops directly: register reads and
 * writes at window offsets, rings and buffers laid out in the guest RAM buffer, kicks
 * through QueueNotify, used entries collected from the rings, and the interrupt line
 * observed through a test irq_sink. No CPU, no bus, no VMM.
 *
 * Typical use:
 *     struct mock_virtio m;
 *     mock_virtio_init(&m, 1 << 20, 42);
 *     mock_virtio_create(&m, &virtio_blk_type, "mem=1M", err, sizeof(err));
 *     struct mock_virtio_opts o = { .packed = 1, .indirect = 1, .event_idx = 1 };
 *     mock_virtio_setup(&m, &o);                       // reset .. DRIVER_OK, all queues
 *     uint64_t buf = mock_virtio_alloc(&m, 4096, 16);  // guest buffer
 *     struct mock_buf bufs[] = { { hdr, 16, 0 }, { buf, 4096, 1 }, { st, 1, 1 } };
 *     uint32_t len;
 *     int id = mock_vq_request(&m, 0, bufs, 3, &len);  // add + kick + collect
 *     mock_virtio_destroy(&m);
 *
 * Everything is single-threaded and deterministic. Functions return 0 (or a count / id)
 * or -errno. */
#ifndef VMLAB_TESTS_MOCK_VIRTIO_H
#define VMLAB_TESTS_MOCK_VIRTIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "devices/device.h"
#include "devices/virtio/virtio_spec.h"

#define MOCK_MAX_QUEUES     8
#define MOCK_QUEUE_MAX      256     /* largest ring the mock lays out */
#define MOCK_INDIRECT_MAX   32      /* entries per indirect table (one table per id) */
#define MOCK_MAX_TIMERS     64
#define MOCK_HEAP_START     0x1000  /* gpa 0 page stays unused: 0 means "no address" */

/* One buffer element of a request: guest address, length, device-writable or not. */
struct mock_buf {
    uint64_t gpa;
    uint32_t len;
    int writable;
};

struct mock_vq {
    int enabled;
    uint16_t num;
    uint64_t desc, driver, device;  /* ring areas (gpa) */
    uint64_t indirect;              /* MOCK_QUEUE_MAX tables of MOCK_INDIRECT_MAX entries, by id */
    uint16_t alloc_num;             /* ring areas allocated for this size ... */
    int alloc_packed;               /* ... and this format */
    uint16_t num_free;
    uint16_t added;                 /* buffers made available since the last kick check */
    /* split */
    uint16_t avail_idx, last_used, free_head;
    uint16_t next_free[MOCK_QUEUE_MAX];     /* free list of descriptor indices */
    uint16_t chain_len[MOCK_QUEUE_MAX];     /* descriptors held by each head */
    /* packed */
    uint16_t next_avail, next_used;
    uint8_t avail_wrap, used_wrap;
    uint16_t id_free[MOCK_QUEUE_MAX], nid_free;   /* stack of free buffer ids */
    uint16_t id_ndesc[MOCK_QUEUE_MAX];            /* ring slots held by each id */
};

struct mock_timer {
    uint64_t at_ns;
    uint64_t seq;
    int64_t id;
    clock_timer_fn fn;
    void *arg;
};

struct mock_virtio {
    uint8_t *ram;
    uint64_t ram_size;
    int ram_borrowed;               /* RAM is the caller's (mock_virtio_init_buffer) */
    struct guest_mem mem;
    /* Interrupt line as the device drives it. */
    struct irq_sink sink;
    int irq_level;
    unsigned irq_raises;            /* low -> high transitions seen */
    /* A manual virtual clock: now_ns moves only with mock_virtio_advance(). */
    struct clock clock;
    uint64_t now_ns;
    struct mock_timer timers[MOCK_MAX_TIMERS];
    unsigned ntimers;
    uint64_t timer_seq;
    int64_t next_timer_id;
    /* Device log lines (env.log) are captured here; see mock_virtio_log(). */
    FILE *log;
    char *log_text;
    size_t log_size;
    struct device_env env;
    const struct device_type *type;
    void *state;
    /* Driver side. */
    uint64_t heap;                  /* next free gpa for mock_virtio_alloc */
    uint64_t features;              /* negotiated */
    int packed, indirect, event_idx;
    unsigned nqueues;
    struct mock_vq vqs[MOCK_MAX_QUEUES];
};

/* Options for mock_virtio_setup. Zero means: split, no indirect, no event idx, queues at
 * their QueueNumMax, no device-specific features. */
struct mock_virtio_opts {
    int packed, indirect, event_idx;
    uint16_t queue_size;            /* 0: QueueNumMax (capped at MOCK_QUEUE_MAX) */
    uint64_t device_features;       /* device-specific bits to accept if offered */
};

/* RAM of ram_size bytes (zeroed), clock at 0, env.seed = seed, env.log captured. */
int mock_virtio_init(struct mock_virtio *m, uint64_t ram_size, uint64_t seed);
/* The same over caller-owned RAM, which the caller zeroed and mock_virtio_destroy leaves
 * alone (fuzzers reuse one buffer instead of allocating and faulting in RAM per input). */
int mock_virtio_init_buffer(struct mock_virtio *m, void *ram, uint64_t ram_size,
                            uint64_t seed);
/* Creates the device (type->create with the mock's env). -errno with err filled. */
int mock_virtio_create(struct mock_virtio *m, const struct device_type *type,
                       const char *args, char *err, size_t errlen);
/* Destroys the device (if any) and frees RAM (unless it was the caller's). */
void mock_virtio_destroy(struct mock_virtio *m);

/* Register access at a window offset through the type's bus_ops. */
int mock_virtio_read(struct mock_virtio *m, uint64_t off, unsigned size, uint64_t *value);
int mock_virtio_write(struct mock_virtio *m, uint64_t off, unsigned size, uint64_t value);
uint32_t mock_virtio_read32(struct mock_virtio *m, uint64_t off);
void mock_virtio_write32(struct mock_virtio *m, uint64_t off, uint32_t value);

/* The whole virtio-mmio initialisation (§3.1.1): reset, ACKNOWLEDGE, DRIVER, feature
 * negotiation, FEATURES_OK (read back), every queue set up and ready, DRIVER_OK.
 * -EPROTO if the device refused FEATURES_OK or a queue, -ENOMEM if RAM ran out. */
int mock_virtio_setup(struct mock_virtio *m, const struct mock_virtio_opts *o);
/* The steps of mock_virtio_setup, for tests that go off the happy path. */
int mock_virtio_negotiate(struct mock_virtio *m, const struct mock_virtio_opts *o);
int mock_virtio_queue_setup(struct mock_virtio *m, unsigned q, uint16_t size);
int mock_virtio_driver_ok(struct mock_virtio *m);
/* Status = 0 and forget the driver-side queue state (rings stay allocated in RAM). */
void mock_virtio_reset(struct mock_virtio *m);

/* Bump allocator over guest RAM (never freed; mock_virtio_reset keeps it). Returns the
 * gpa, or 0 when RAM is exhausted. */
uint64_t mock_virtio_alloc(struct mock_virtio *m, uint64_t size, uint64_t align);
/* Host pointer to guest RAM at gpa (the test's view of guest memory); NULL if outside. */
void *mock_virtio_host(struct mock_virtio *m, uint64_t gpa, uint64_t len);

/* Makes a buffer of n elements available on queue q (readable elements first). Uses one
 * indirect table when indirect was negotiated and 1 < n <= MOCK_INDIRECT_MAX. Returns the
 * buffer id (split: head index; packed: buffer id) or -ENOSPC / -EINVAL. Does not kick. */
int mock_vq_add(struct mock_virtio *m, unsigned q, const struct mock_buf *bufs, unsigned n);
/* 1 if the device's suppression state (used flags / avail_event / device event
 * suppression) asks for a notification for what was added since the last check. */
int mock_vq_kick_needed(struct mock_virtio *m, unsigned q);
/* Writes QueueNotify = q. */
void mock_vq_kick(struct mock_virtio *m, unsigned q);
/* Collects one used buffer: 1 with *id and *len set, 0 if none. */
int mock_vq_get_used(struct mock_virtio *m, unsigned q, uint32_t *id, uint32_t *len);
/* add + kick + get_used: the buffer id, or -EAGAIN if the device did not complete it. */
int mock_vq_request(struct mock_virtio *m, unsigned q, const struct mock_buf *bufs,
                    unsigned n, uint32_t *len);

/* Driver-side notification suppression. Split without event idx: VIRTQ_AVAIL_F_NO_INTERRUPT
 * on/off; split with event idx: used_event; packed: driver event suppression. */
void mock_vq_set_no_interrupt(struct mock_virtio *m, unsigned q, int on);
void mock_vq_set_used_event(struct mock_virtio *m, unsigned q, uint16_t idx);
void mock_vq_set_driver_event(struct mock_virtio *m, unsigned q, uint16_t flags,
                              uint16_t off_wrap);

/* Raw ring writes for malformed-ring tests and fuzzers. Split: descriptor idx of the
 * table, and publishing a head in the available ring (avail idx += 1). */
void mock_vq_split_write_desc(struct mock_virtio *m, unsigned q, uint16_t idx, uint64_t addr,
                              uint32_t len, uint16_t flags, uint16_t next);
void mock_vq_split_publish(struct mock_virtio *m, unsigned q, uint16_t head);
void mock_vq_split_set_avail_idx(struct mock_virtio *m, unsigned q, uint16_t idx);
/* Packed: writes n descriptors at the driver's next positions with the AVAIL/USED bits of
 * the current wrap counter added to flags (first descriptor's flags written last), and
 * advances. Ids and other flags are taken as given. */
struct mock_raw_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;
    uint16_t flags;     /* for split rings: flags; `id` is then `next` */
};
void mock_vq_packed_publish(struct mock_virtio *m, unsigned q, const struct mock_raw_desc *d,
                            unsigned n);
/* Writes a raw table of n descriptors at gpa (16 bytes each, split or packed layout). */
void mock_write_desc_table(struct mock_virtio *m, uint64_t gpa, const struct mock_raw_desc *d,
                           unsigned n);

/* Reads InterruptStatus, writes it to InterruptACK, returns it. */
uint32_t mock_virtio_ack_irq(struct mock_virtio *m);
/* Moves the mock clock forward, running due timers in (time, scheduling) order. */
void mock_virtio_advance(struct mock_virtio *m, uint64_t ns);
/* Everything the device logged so far (NUL-terminated). */
const char *mock_virtio_log(struct mock_virtio *m);

#endif
