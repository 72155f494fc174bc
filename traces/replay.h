/* Replaying a trace against the device models, with no CPU: the recorded guest accesses
 * are issued to fresh buses in trace order, the devices' DMA reads are served from the
 * recorded bytes, and everything the devices do (values returned, DMA writes, interrupt
 * changes) is checked against the trace. The first difference stops the replay.
 *
 * Matching rule: the device-side events (dma-read, dma-write, irq) recorded between two
 * replayed guest accesses must be produced, in that order, by the timers that fall due
 * before the second access or by the second access itself (bus taps record an access
 * after its handler ran, so what a handler did precedes the access in the trace).
 * Accesses to regions no header device owns (LAPIC, IOAPIC) are not replayed. */
#ifndef VMLAB_TRACE_REPLAY_H
#define VMLAB_TRACE_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "devices/device.h"
#include "trace_format.h"

enum replay_status { REPLAY_MATCH = 0, REPLAY_DIVERGED = 1, REPLAY_BAD = 2 };

/* Builds one device (defaults to device_create with the replay env). Tests use it to
 * replay against device types that are not in the registry. */
typedef int (*replay_create_fn)(void *opaque, struct device *dev, const char *kind,
                                const char *args, const struct device_env *env,
                                struct bus *bus, char *err, size_t errlen);

struct replay_opts {
    const char *device;         /* replay only this device (trace_device_match); NULL: all */
    FILE *log;                  /* device log lines; NULL: discarded */
    replay_create_fn create;    /* NULL: device_create */
    void *create_opaque;
    int no_files;               /* refuse devices that open disk files (fuzzing) */
    /* The trace's disk records (trace_reader_disks): disks replay from them, no image. */
    const struct trace_disk_record *disks;
    size_t ndisks;
    /* Per device index: replay against this image instead (read-only, under an overlay). */
    const char *disk_images[MACHINE_MAX_DEVICES];
    FILE *notes;                /* "image differs" lines; NULL: not printed */
};

struct replay_result {
    enum replay_status status;
    uint64_t events;            /* trace events */
    uint64_t replayed;          /* guest accesses issued */
    uint64_t checked;           /* device-side events and read values compared */
    uint64_t diverged_at;       /* event index of the first difference */
    int exit_requested;         /* a device asked to end the run ... */
    int exit_status;            /* ... with this status */
    char message[512];          /* the difference, or why the trace could not be replayed */
};

/* Replays events [0, n) of a loaded trace. Returns the status (also in res->status). */
int trace_replay(const struct trace_header *h, const struct trace_event *ev, size_t n,
                 const struct replay_opts *opts, struct replay_result *res);

/* Prints the outcome the way `vmlab trace replay` does: for a divergence the event number,
 * what the trace has, what the device did, and the 5 events before it. */
void trace_replay_report(FILE *f, const struct trace_header *h, const struct trace_event *ev,
                         size_t n, const struct replay_result *res);

/* Fuzzing entry point: parses `data` as a trace (after fixing its CRCs in a private copy,
 * see trace_fix_crcs) and replays the events that parse. Never crashes on any input;
 * returns the replay status (or REPLAY_BAD). Disk paths are never opened: disks replay
 * from the trace's disk content (version 2) or are refused, mem= disks up to 64 MiB work. */
int trace_fuzz_one(const uint8_t *data, size_t size);

#endif
