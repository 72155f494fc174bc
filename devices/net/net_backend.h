/* Host sides of virtio-net: what a backend does with frames the guest sends and how it
 * hands frames to the device. Backends (chosen by the device's args):
 *   net=none   frames the guest sends are dropped, nothing arrives (replay uses it: the
 *              frames the backend delivered come from the trace)
 *   net=loop   every frame the guest sends comes back to it (tests, fuzzing, benchmarks)
 *   net=user   user-mode networking through libslirp in the helper process vmlab-slirp
 *              (net_slirp.c, slirp_helper/), hostfwd=... rules
 *   tap=NAME / tapfd=N   a Linux TAP interface (net_tap.c)
 * A backend runs on the thread that drives the device: timers on env->clock, host fds
 * polled from a timer, and on KVM also when its poll_fd turns readable (the device's
 * poll). Frames are Ethernet frames without the virtio header. */
#ifndef VMLAB_NET_BACKEND_H
#define VMLAB_NET_BACKEND_H

#include <stddef.h>

#include "devices/device.h"

/* The device side, as a backend sees it. */
struct net_port {
    /* A frame for the guest. 0: taken (delivered or queued); -EAGAIN: the device's queue is
     * full, keep the frame and offer it again after ops->resume; other -errno: dropped. */
    int (*receive)(void *opaque, const void *frame, size_t len);
    void *opaque;
};

struct net_backend;

struct net_backend_ops {
    const char *name;
    /* A frame from the guest. 0, or -errno when the frame was dropped. */
    int (*send)(struct net_backend *be, const void *frame, size_t len);
    /* Optional: the device has room again after refusing a frame with -EAGAIN. */
    void (*resume)(struct net_backend *be);
    /* Optional: the offloads the driver negotiated (a TAP sets them on the interface). */
    void (*set_offloads)(struct net_backend *be, int guest_csum);
    /* Optional, together (device_type.poll_fd and poll): an fd that turns readable when the
     * host side has something for the guest, or -1 (always -1 when env->deterministic: the
     * software CPU looks only at its own clock's times); and what to do then. */
    int (*poll_fd)(struct net_backend *be);
    void (*poll)(struct net_backend *be);
    void (*destroy)(struct net_backend *be);
};

struct net_backend {
    const struct net_backend_ops *ops;
    struct net_port port;
};

/* Builds the backend named by `args` (see above); keys it does not know are the device's.
 * 0 or -errno with one line in err naming the field and value. */
int net_backend_create(const char *args, const struct device_env *env,
                       const struct net_port *port, struct net_backend **out,
                       char *err, size_t errlen);

/* The backend kinds, each in its own file. */
int net_loop_create(const char *args, const struct device_env *env, struct net_backend **out,
                    char *err, size_t errlen);
int net_none_create(const char *args, const struct device_env *env, struct net_backend **out,
                    char *err, size_t errlen);
int net_slirp_create(const char *args, const struct device_env *env, struct net_backend **out,
                     char *err, size_t errlen);
/* net=user over a socket already connected to a slirp helper (net_slirp_create starts one;
 * tests play the helper): sends CONFIG with args, takes fd. ready_fd (taken; -1: none): the
 * read end of the helper's wake pipe, the poll_fd on KVM (closed when env->deterministic).
 * shm (taken: munmap'd at the end; NULL: none): memory shared with the helper, whose rings
 * then carry the stream and, when env->deterministic, whose host_ready the helper sets
 * (--watch). */
struct slirp_shared;
int net_slirp_attach(int fd, int ready_fd, struct slirp_shared *shm, const char *args,
                     const struct device_env *env, struct net_backend **out, char *err,
                     size_t errlen);
int net_tap_create(const char *args, const struct device_env *env, struct net_backend **out,
                   char *err, size_t errlen);

#endif
