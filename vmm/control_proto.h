/* The control protocol without the socket: parsing and validating one request, running it
 * against a VM's control_vm_ops, and building the response. Pure functions of the message
 * bytes and the VM, so tests, the fuzzer and the clients use them directly. */
#ifndef VMLAB_CONTROL_PROTO_H
#define VMLAB_CONTROL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "stats.h"

enum control_cmd {
    CONTROL_STOP,
    CONTROL_SUSPEND,
    CONTROL_RESUME,
    CONTROL_STATS,
    CONTROL_DISK_RESIZE,
    CONTROL_SNAPSHOT_TAKE,
    CONTROL_FAULT_INJECT,
    CONTROL_TRACE_START,
    CONTROL_TRACE_STOP,
    CONTROL_INPUT,
    CONTROL_BALLOON,
    CONTROL_BALLOON_STATS,
    CONTROL_CMD_COUNT
};

#define CONTROL_MAX_PATH 4096   /* bytes of "path", NUL included */
#define CONTROL_MAX_PLAN 4096   /* bytes of "plan", NUL included */
#define CONTROL_MAX_INDEX 0xffffffffu
#define CONTROL_MAX_EVENTS 1024 /* input events in one request */
#define CONTROL_EVENT_SIZE 8    /* {le16 type, le16 code, le32 value} */

struct control_request {
    enum control_cmd cmd;
    unsigned index;             /* disk resize: "index"; fault inject: "disk" */
    uint64_t size;              /* disk resize */
    char path[CONTROL_MAX_PATH];    /* snapshot take, trace start */
    char plan[CONTROL_MAX_PLAN];    /* fault inject */
    /* input: "events" [[type, code, value], ...] encoded as the device takes them, and
     * the optional "frame_ns": the events form frames ending in SYN_REPORT, frame k is
     * delivered k * frame_ns of virtual time after the request (0: all at once). */
    uint8_t events[CONTROL_MAX_EVENTS * CONTROL_EVENT_SIZE];
    unsigned nevents;
    uint64_t frame_ns;
};

/* "stop", "disk resize", ...: the command as a user types it. */
const char *control_cmd_name(enum control_cmd cmd);

/* Parses and validates one message (no framing newline). 0, or -EINVAL with a one-line
 * reason naming the field and the offending value in err. */
int control_request_parse(const char *msg, size_t len, struct control_request *req,
                          char *err, size_t errlen);

/* The request in canonical form (what clients send and what the trace records).
 * Caller owns the object; NULL on allocation failure. */
struct json_object *control_request_to_json(const struct control_request *req);

/* Parses `msg`, runs it against the VM and returns the response as one line of JSON
 * without the newline (malloc'd; NULL only when memory runs out). The VM's ops are called
 * only for a valid request, so a bad request changes nothing. */
char *control_handle_message(const struct control_vm_ops *ops, void *vm,
                             const char *msg, size_t len);

/* The error response for a message the framing layer rejected (oversized, ...). */
char *control_error_response(const char *error);

/* The common part of a stats answer: "state", "virtual_ns", "insns", "exits" {kind: n}. */
int control_stats_fill(struct json_object *out, const char *state, const struct vm_stats *st);

#endif
