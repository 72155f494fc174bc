/* The two backends with no host side: "none" drops what the guest sends; "loop" returns
 * every frame to the guest, like a cable from the port back to itself. The loop holds up to
 * LOOP_HOLD frames the device refused (its receive queue was full) and offers them again,
 * oldest first, when the device resumes it: a bounded backend, as a TAP's queue is. */
#include "devices/net/net_backend.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_HOLD 64
#define LOOP_FRAME_MAX 9018

struct loop_frame {
    uint32_t len;
    uint8_t data[LOOP_FRAME_MAX];
};

struct net_loop {
    struct net_backend be;              /* first */
    void (*pull)(void *opaque);         /* replay: where recorded input comes in */
    void *pull_opaque;
    int draining;                       /* loop_drain running: the device may resume us again */
    struct loop_frame *held;            /* LOOP_HOLD of them, allocated on first need */
    unsigned head, count;
    uint64_t dropped;
};

/* In replay (env->host_pull set) the frames the recorded backend delivered at this point
 * come from the trace. */
static void none_pull(struct net_backend *be)
{
    struct net_loop *l = (struct net_loop *)be;

    if (l->pull)
        l->pull(l->pull_opaque);
}

static int none_send(struct net_backend *be, const void *frame, size_t len)
{
    (void)frame;
    (void)len;
    none_pull(be);
    return 0;
}

static void plain_destroy(struct net_backend *be)
{
    struct net_loop *l = (struct net_loop *)be;

    free(l->held);
    free(l);
}

/* Offers held frames, oldest first, until the device refuses one. */
static void loop_drain(struct net_loop *l)
{
    if (l->draining)
        return;
    l->draining = 1;
    while (l->count) {
        struct loop_frame *f = &l->held[l->head];
        if (l->be.port.receive(l->be.port.opaque, f->data, f->len) == -EAGAIN)
            break;
        l->head = (l->head + 1) % LOOP_HOLD;
        l->count--;
    }
    l->draining = 0;
}

static int loop_send(struct net_backend *be, const void *frame, size_t len)
{
    struct net_loop *l = (struct net_loop *)be;

    if (len > LOOP_FRAME_MAX)
        return -EMSGSIZE;
    if (!l->count && l->be.port.receive(l->be.port.opaque, frame, len) != -EAGAIN)
        return 0;
    if (!l->held && !(l->held = malloc(LOOP_HOLD * sizeof(*l->held))))
        return -ENOMEM;
    if (l->count == LOOP_HOLD) {
        l->dropped++;                   /* the "wire" is full: like a TAP queue, drop */
        return -ENOBUFS;
    }
    struct loop_frame *f = &l->held[(l->head + l->count) % LOOP_HOLD];
    memcpy(f->data, frame, len);
    f->len = (uint32_t)len;
    l->count++;
    return 0;
}

static void loop_resume(struct net_backend *be)
{
    loop_drain((struct net_loop *)be);
}

static const struct net_backend_ops none_ops = {
    .name = "none", .send = none_send, .resume = none_pull, .destroy = plain_destroy,
};

static const struct net_backend_ops loop_ops = {
    .name = "loop", .send = loop_send, .resume = loop_resume, .destroy = plain_destroy,
};

static int plain_create(const struct net_backend_ops *ops, struct net_backend **out,
                        char *err, size_t errlen)
{
    struct net_loop *l = calloc(1, sizeof(*l));

    if (!l) {
        snprintf(err, errlen, "virtio-net: out of memory");
        return -ENOMEM;
    }
    l->be.ops = ops;
    *out = &l->be;
    return 0;
}

static int no_hostfwd(const char *args, const char *kind, char *err, size_t errlen)
{
    char v[DEVICE_ARGS_MAX];

    if (device_arg_get(args, "hostfwd", v, sizeof(v)) != 0) {
        snprintf(err, errlen, "virtio-net: hostfwd=%s needs net=user, not net=%s", v, kind);
        return -EINVAL;
    }
    return 0;
}

int net_none_create(const char *args, const struct device_env *env, struct net_backend **out,
                    char *err, size_t errlen)
{
    int rc = no_hostfwd(args, "none", err, errlen);
    if (rc || (rc = plain_create(&none_ops, out, err, errlen)))
        return rc;
    ((struct net_loop *)*out)->pull = env->host_pull;
    ((struct net_loop *)*out)->pull_opaque = env->host_io_opaque;
    return 0;
}

int net_loop_create(const char *args, const struct device_env *env, struct net_backend **out,
                    char *err, size_t errlen)
{
    (void)env;
    int rc = no_hostfwd(args, "loop", err, errlen);
    return rc ? rc : plain_create(&loop_ops, out, err, errlen);
}
