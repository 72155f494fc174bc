/* The `vmlab trace` tools over loaded traces: dump, diff, Chrome/Perfetto export and
 * delta-debugging minimisation. cmd_trace.c does the command line around them. */
#ifndef VMLAB_TRACE_TOOLS_H
#define VMLAB_TRACE_TOOLS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trace_format.h"

void trace_print_header(FILE *out, const struct trace_header *h);

struct trace_filter {
    uint32_t kinds;             /* mask of 1u << kind; 0: all */
    const char *device;         /* trace_device_match; NULL: all */
    uint64_t from_ns, to_ns;    /* inclusive; to_ns 0: no upper bound */
};

int trace_filter_match(const struct trace_header *h, const struct trace_event *ev,
                       const struct trace_filter *f);
/* Prints matching events, one line each; returns how many. */
size_t trace_dump(FILE *out, const struct trace_header *h, const struct trace_event *ev,
                  size_t n, const struct trace_filter *f);

/* Compares two traces: prints the first difference with 5 events of context.
 * Returns 0 when equal, 1 when they differ. */
int trace_diff(FILE *out, const struct trace_header *ha, const struct trace_event *a, size_t na,
               const struct trace_header *hb, const struct trace_event *b, size_t nb,
               int check_time);

/* Chrome trace-event JSON (Perfetto): one track per device, a slice per virtqueue request
 * from its notify to the interrupt that completed it, instants for interrupts, control
 * commands and faults. 0 or -errno. */
int trace_export_chrome(FILE *out, const struct trace_header *h, const struct trace_event *ev,
                        size_t n);

/* pcap (nanosecond timestamps, Ethernet) of every frame virtio-net devices exchanged with
 * their backends (host-in and host-out events), in trace order. *frames = how many.
 * 0 or -EIO. */
int trace_export_pcap(FILE *out, const struct trace_header *h, const struct trace_event *ev,
                      size_t n, size_t *frames);
/* 1 if ev is a host-in/host-out event of a virtio-net device. */
int trace_is_net_frame(const struct trace_header *h, const struct trace_event *ev);

/* Requests: event ranges [start[i], start[i+1]) ending at a NOTIFY (the last one holds the
 * rest); in a trace without notifies, each ending at a guest access. The END event is not
 * part of any request. Returns the count; *starts malloc'ed with count + 1 entries. */
size_t trace_requests(const struct trace_event *ev, size_t n, size_t **starts);

struct trace_minimize_opts {
    const char *check;          /* shell command; $TRACE names the candidate */
    const char *out;            /* where the result goes */
    unsigned max_tests;         /* 0: 2000 */
    FILE *log;                  /* progress lines; NULL: none */
    /* The trace's disk records: every candidate keeps them all (what a request read may
     * have been recorded in a request that is removed). */
    const struct trace_disk_record *disks;
    size_t ndisks;
};

/* ddmin over requests: keeps removing requests while `check` still exits non-zero.
 * 0 with the minimal trace written to opts->out; -errno with a message. */
int trace_minimize(const struct trace_header *h, const struct trace_event *ev, size_t n,
                   const struct trace_minimize_opts *o, char *err, size_t errlen);

#endif
