/* The control socket: `vmlab run --socket PATH` serves JSON requests (vmm/CONTROL.md) on a
 * Unix stream socket, from inside the VM's run loop. The server never blocks the VM: every
 * socket is non-blocking, each client has its own buffers, and idle or misbehaving clients
 * are dropped. Commands reach the VM through control_vm_ops, always on the thread that
 * calls control_server_poll()/control_server_wait() (the vCPU thread), so on the software
 * CPU a command takes effect between two slices of guest execution. */
#ifndef VMLAB_CONTROL_H
#define VMLAB_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct control_server;

/* Implemented by the VM. Each returns 0 or -errno; the ones that can fail because of the
 * request fill err with one line naming the field and value (it becomes the "error" of
 * the response). A NULL op makes the command answer "not supported". An op that fails
 * must leave the VM as it was. */
struct control_vm_ops {
    int (*stop)(void *vm, char *err, size_t errlen);
    int (*suspend)(void *vm, char *err, size_t errlen);
    int (*resume)(void *vm, char *err, size_t errlen);
    /* Adds members to `out` (an empty JSON object that becomes the response's "stats"):
     * see control_stats_fill() in control_proto.h for the common part. */
    int (*stats)(void *vm, struct json_object *out, char *err, size_t errlen);
    int (*disk_resize)(void *vm, unsigned index, uint64_t size, char *err, size_t errlen);
    int (*snapshot_take)(void *vm, const char *path, char *err, size_t errlen);
    int (*fault_inject)(void *vm, unsigned disk, const char *plan, char *err, size_t errlen);
    int (*trace_start)(void *vm, const char *path, char *err, size_t errlen);
    int (*trace_stop)(void *vm, char *err, size_t errlen);
    /* Input device `index` (in --input order) gets n 8-byte events; with frame_ns, the
     * k-th frame (events up to a SYN_REPORT) k * frame_ns of virtual time from now. */
    int (*input)(void *vm, unsigned index, const uint8_t *events, unsigned n,
                 uint64_t frame_ns, char *err, size_t errlen);
    /* The balloon's target size in bytes; its report as members of `out`. */
    int (*balloon)(void *vm, uint64_t size, char *err, size_t errlen);
    int (*balloon_stats)(void *vm, struct json_object *out, char *err, size_t errlen);
    /* Optional: called after every well-formed request was handled, with the command in
     * canonical one-line JSON and the outcome (0 or the op's -errno); where the VM writes
     * the control-socket event into its trace. */
    void (*record)(void *vm, const char *request_json, int result);
};

/* Limits, part of the protocol (CONTROL.md). */
#define CONTROL_MAX_MESSAGE   (64 * 1024)   /* bytes of one request, newline excluded */
#define CONTROL_MAX_CLIENTS   256           /* at once; a new one evicts the longest idle */
#define CONTROL_IDLE_MS       10000         /* a client silent this long is dropped */

/* Creates the socket at `path` (mode 0600; an existing stale socket is replaced, any other
 * existing file is refused with -EEXIST) and listens. `ops` and `vm` must outlive the
 * server. 0 or -errno with a one-line reason in err. */
int control_server_open(struct control_server **out, const char *path,
                        const struct control_vm_ops *ops, void *vm, char *err, size_t errlen);

/* Non-blocking: accepts pending connections and serves whatever is ready. Call it from
 * the run loop (cpu_env.poll). */
void control_server_poll(struct control_server *s);

/* Blocking variant for a suspended VM: waits up to timeout_ms (-1: forever) for activity,
 * then serves it. 1 if something was served, 0 on timeout, -errno on failure. */
int control_server_wait(struct control_server *s, int timeout_ms);

/* Overrides CONTROL_IDLE_MS (tests); -1 keeps idle clients forever. */
void control_server_set_idle_timeout(struct control_server *s, int ms);

/* The listening descriptor, for a VMM that multiplexes several sources with poll(). */
int control_server_fd(const struct control_server *s);

/* An epoll fd that turns readable when the server has news (a connection, a request, room
 * for a pending answer) since the last control_server_poll/wait, or when that call left
 * requests it had read unserved (more than 16 pipelined by one client), or -1. Edge-triggered
 * inside, so a client that stays readable (at end of stream, or not reading its answers)
 * wakes it once, not in a loop. The KVM backend wakes its vCPU loop on it (cpu_env.wake_fd). */
int control_server_wake_fd(const struct control_server *s);

/* Pushes out pending responses (best effort), closes every client, unlinks the socket. */
void control_server_close(struct control_server *s);

#endif
