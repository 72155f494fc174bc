/* How the VMM (and the trace replayer, and fuzzers) create device models without knowing
 * them: a registry of device types, each built from a kind name and an argument string,
 * e.g. kind "virtio-blk", args "path=disk.img,ro,id=root". The same (kind, args, base, irq)
 * tuple is what a trace header stores, so replay rebuilds exactly the recorded machine.
 * Device models include only this header and the narrow vmm/ interfaces it names. */
#ifndef VMLAB_DEVICE_H
#define VMLAB_DEVICE_H

#include <stdint.h>
#include <stdio.h>

#include "vmm/bus.h"
#include "vmm/clock.h"
#include "vmm/guest_mem.h"
#include "vmm/irq.h"

struct disk;
struct snapshot_writer;
struct snapshot_reader;
struct balloon_report;

#define DEVICE_KIND_MAX 24
#define DEVICE_ARGS_MAX 512
#define DEVICE_NAME_MAX 32
#define DEVICE_MAX_WINDOWS 4

/* One bus window of a device: `size` bytes (MMIO) or ports (PIO) at `offset` from the
 * device's base. Accesses reach the device's ops with offsets from its base, whichever
 * window they hit. */
struct device_window {
    uint64_t offset, size;
};

/* Everything a device may use. */
struct device_env {
    struct guest_mem *mem;
    const struct clock *clock;
    struct irq_line irq;            /* gsi from the memory map slot */
    uint64_t base;                  /* bus address of the device's (first) window */
    /* The windows this instance has, as the machine description recorded them (a trace or
     * snapshot of an older layout keeps it: the i8042 once held port 0x61, which is the PIT's
     * now). NULL: the type's own layout. */
    const struct device_window *windows;
    unsigned nwindows;
    uint64_t seed;                  /* per-device seed derived from the run's --seed */
    int deterministic;              /* 1 on the software CPU and in replay */
    FILE *log;                      /* where device log lines go (stderr by default) */
    /* Ask the VMM to end the run with this exit status (guest exit devices). */
    void (*request_exit)(void *opaque, int status);
    void *request_exit_opaque;
    /* Disks a device names are opened through this (the replayer substitutes a
     * copy-on-write overlay so replay never writes a real file). NULL: disk_open(). */
    int (*open_disk)(void *opaque, const char *path, int read_only, struct disk **out,
                     char *err, size_t errlen);
    void *open_disk_opaque;
    /* Other files a device opens (console output, ...): replay redirects them. NULL: open(2). */
    int (*open_file)(void *opaque, const char *path, int flags);
    void *open_file_opaque;
    /* What a device exchanges with a host backend (network frames), dir one of
     * DEVICE_HOST_*. The trace records it, so replay needs no backend. NULL: not recorded. */
    void (*host_io)(void *opaque, int dir, const void *data, size_t len);
    /* Replay only (NULL elsewhere): a backend standing in for the recorded one asks, where
     * a real backend could deliver (after a send, on resume), for the host input the trace
     * has next; it arrives through the device type's host_input. */
    void (*host_pull)(void *opaque);
    void *host_io_opaque;
};

/* host_io directions. Input is "nested" when the backend delivered it inside a call the
 * device made into it (a send, a resume): replay must deliver it at that same point. */
#define DEVICE_HOST_IN         0
#define DEVICE_HOST_OUT        1
#define DEVICE_HOST_IN_NESTED  2

struct device;

struct device_type {
    const char *kind;               /* "virtio-blk", "uart8250", ... */
    enum bus_space space;           /* bus the window lives on */
    uint64_t window_size;           /* bytes (MMIO) or ports (PIO) at base */
    /* Optional: a model whose registers lie apart (the i8042 at ports 0x60 and 0x64, the PIT
     * at 0x40-0x43 and 0x61) lists its windows, the first at offset 0; window_size is then
     * the first one's size. NULL: one window of window_size. */
    const struct device_window *windows;
    unsigned nwindows;
    /* Parse args, allocate, return state via *state. Errors: -errno and a one-line message
     * in err naming the field and value. */
    int (*create)(const char *args, const struct device_env *env, void **state,
                  char *err, size_t errlen);
    const struct bus_ops *ops;      /* register access; opaque = state */
    void (*destroy)(void *state);
    /* Optional: virtio device ID for the FDT / cmdline, 0 if not virtio. */
    uint32_t virtio_id;
    /* Optional run-time operations the control socket reaches (NULL: not supported).
     * 0 or -errno with a message naming the field and value; a failure changes nothing. */
    int (*resize)(void *state, uint64_t new_size, char *err, size_t errlen);
    int (*inject_fault)(void *state, const char *plan, char *err, size_t errlen);
    /* Optional: a message from the host side to the device (virtio-input: whole 8-byte
     * evdev events {le16 type, le16 code, le32 value}; virtio-balloon: a new target or a
     * stats request, see virtio_balloon.h; virtio-net: a frame, as its backend delivers it).
     * Everything the host makes a device do goes through here or through host_io: the VMM
     * records the bytes in the trace (an `input` event, or host-in), and replay passes the
     * same bytes at the same point, the device created without its backend. 0 or -errno with
     * a message; a refusal changes nothing. */
    int (*host_input)(void *state, const uint8_t *data, size_t len, char *err, size_t errlen);
    /* Optional: what the memory balloon (virtio-balloon) reports; reads only. */
    int (*balloon_query)(void *state, struct balloon_report *out);
    /* Optional: queue statistics for `stats` (virtio devices). */
    unsigned (*num_queues)(const void *state);
    int (*queue_stats)(const void *state, unsigned q, uint64_t *requests, uint64_t *notifies);
    /* Optional: snapshots (vmm/snapshot.h, vmm/SNAPSHOT.md). save appends the device's
     * run-time state as fields of the current chunk (or refuses with -ENOTSUP and a message);
     * load reads them into a device just created from the same kind and args. Neither may
     * raise interrupts or touch guest memory: the I/O APIC's saved line levels already
     * reflect the device's. NULL: the device cannot be snapshotted. */
    int (*save)(void *state, struct snapshot_writer *w, char *err, size_t errlen);
    int (*load)(void *state, struct snapshot_reader *r, char *err, size_t errlen);
    /* Optional: host-side sockets to serve (virtio-vsock). Called from the VMM's poll on
     * the vCPU thread, like every other device entry point. NULL: nothing to poll. */
    void (*poll)(void *state);
    /* Optional, with poll: an fd that turns readable when poll has host work (an epoll set
     * of the device's sockets), or -1. On KVM it wakes the vCPU loop to poll at once; the
     * software CPU still polls only at its deterministic points. NULL: polled on a timer. */
    int (*poll_fd)(void *state);
};

struct device {
    const struct device_type *type;
    void *state;
    char kind[DEVICE_KIND_MAX];
    char args[DEVICE_ARGS_MAX];
    char name[DEVICE_NAME_MAX];
    uint64_t base;
    int irq;
};

/* The registry: every type linked into this binary. */
const struct device_type *device_type_find(const char *kind);
/* Iterate: index 0.. until NULL. */
const struct device_type *device_type_at(unsigned index);

/* The windows of type t (its list, or one of window_size) into out; returns their count. */
unsigned device_type_windows(const struct device_type *t,
                             struct device_window out[DEVICE_MAX_WINDOWS]);

/* Creates a device of `kind` at env->base and registers its windows (env->windows, or the
 * type's) on `bus`.
 * Returns 0 or -errno with a message in err. */
int device_create(struct device *dev, const char *kind, const char *args,
                  const struct device_env *env, struct bus *bus, char *err, size_t errlen);
void device_destroy(struct device *dev);

/* save/load for devices with no run-time state (their snapshot chunk is empty). */
int device_save_stateless(void *state, struct snapshot_writer *w, char *err, size_t errlen);
int device_load_stateless(void *state, struct snapshot_reader *r, char *err, size_t errlen);

/* Argument-string helpers shared by device models: "key=value,flag,key2=value2". */
/* Copies the value of `key` into out; 1 if found, 0 if absent, -EINVAL if too long. */
int device_arg_get(const char *args, const char *key, char *out, size_t outlen);
/* 1 if `flag` appears as a bare word or as flag=on/true/1, else 0. */
int device_arg_flag(const char *args, const char *flag);
/* Rejects any key not in the NULL-terminated `allowed` list: -EINVAL naming it in err. */
int device_args_check(const char *args, const char *const *allowed, char *err, size_t errlen);

#endif
