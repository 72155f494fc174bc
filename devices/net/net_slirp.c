/* net=user: user-mode networking through libslirp (what QEMU's -netdev user uses): DHCP,
 * DNS, ICMP echo to the gateway, TCP/UDP through host sockets, hostfwd rules. Addresses,
 * restrict= and hostfwd= are slirp_helper/main.c's.
 *
 * libslirp runs in the helper process vmlab-slirp, found next to the running binary (or
 * one directory up, for the test builds in build/asan/, build/tests/...), so that vmlab
 * stays fully static; this file is vmlab's side of the stream (slirp_proto.h). The helper
 * gets the socket on fd 3, dies with vmlab, and seccomp-sandboxes itself.
 *
 * Time: every request carries env->clock's time, and slirp's timers are env->clock timers
 * here (TIMER_MOD/TIMER_FREE from the helper), fired by asking the helper to run them; each
 * request is answered before the guest runs on. So on the software CPU a guest that talks
 * only to slirp (DHCP, ARP, ping of the gateway) sees the same frames at the same virtual
 * times on every run. On the software CPU host sockets are looked at from a clock timer
 * while slirp has any: every 1 ms, and after a guest frame from LOOK_MIN_NS on, growing to
 * a quarter of the time since it (slirp_look_delay). With shared memory the helper
 * watches its sockets while it waits and sets host_ready (--watch), so a look is a load
 * and a POLL is asked for only when the flag is set; without shared memory each look is a
 * POLL, on the helper's schedule from 10 us. What host sockets bring is not
 * deterministic, which is why the trace records every frame. Each side spins briefly for
 * the other's next message before sleeping (slirp_inbuf_take). On KVM the helper also gets
 * a pipe (its fd 5, --ready) and writes a byte there when a host socket is ready while it
 * waits; the read end is the backend's poll_fd, in the VMM's epoll set, and the poll then
 * asks for a POLL at once; no POLL is asked for on a timer there but slirp's own.
 *
 * What the helper sends is checked: a message type, length or timer it has no business
 * sending, or an answer missing for HELPER_TIMEOUT_MS, is one error line in env->log;
 * vmlab then closes the stream (which ends the helper) and the device's frames are dropped
 * (the guest sees a dead link), the VM runs on. A frame shorter than an Ethernet header is
 * dropped with a line. */
#include "devices/net/net_backend.h"
#include "devices/net/slirp_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELPER_TIMEOUT_MS 10000
#define ANSWER_SPIN_NS 50000            /* host time spent looking for an answer before
                                         * sleeping (slirp_inbuf_take says why) */
#define MAX_TIMERS 64                   /* libslirp keeps a handful */
#define LOOK_MIN_NS 1000                /* --watch: the first look 1 us after a guest frame
                                         * (a look costs a timer and a load) */

extern char **environ;

struct slirp_timer {
    uint64_t helper_id;                 /* 0: slot free */
    int64_t clock_id;                   /* clock timer, 0 if not armed */
    struct net_slirp *s;
};

struct net_slirp {
    struct net_backend be;              /* first */
    struct device_env env;
    struct slirp_link link;             /* fd -1 once the helper is gone */
    struct slirp_shared *shm;           /* the rings, when shared with the helper */
    int64_t poll_timer;                 /* clock timer id, 0 if none */
    int watch;                          /* the helper sets shm->host_ready (--watch) */
    int looking;                        /* --watch: slirp has host sockets (DONE arg 1) */
    int64_t look_timer;                 /* clock timer id of the next look, 0 if none */
    int busy;                           /* a guest frame is recent: looks come quickly;
                                         * 0: the next look is a quiet one (1 ms): a POLL */
    uint64_t busy_since;                /* that frame's time */
    int ready_fd;                       /* KVM: the helper's wake pipe's read end, or -1 */
    struct slirp_timer timers[MAX_TIMERS];
    uint64_t dropped;                   /* frames the device had no room for */
    struct slirp_inbuf in;              /* the helper's answers, read as they come */
    char text[1025];                    /* a LOG or ERROR line, NUL-terminated */
};

static void cancel_all(struct net_slirp *s)
{
    const struct clock *c = s->env.clock;

    if (s->poll_timer > 0)
        c->cancel(c->opaque, s->poll_timer);
    s->poll_timer = 0;
    if (s->look_timer > 0)
        c->cancel(c->opaque, s->look_timer);
    s->look_timer = 0;
    s->looking = 0;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        if (s->timers[i].clock_id > 0)
            c->cancel(c->opaque, s->timers[i].clock_id);
        s->timers[i] = (struct slirp_timer){ 0 };
    }
}

/* The helper is gone or misbehaved: said once, then nothing more is asked of it. Closing
 * the socket ends a helper still running (a hung one dies with vmlab); the sandboxed VMM
 * may not signal it. */
static void helper_lost(struct net_slirp *s)
{
    cancel_all(s);
    if (s->link.fd >= 0)
        close(s->link.fd);
    s->link.fd = -1;
    if (s->ready_fd >= 0)               /* leaves the VMM's epoll set with it */
        close(s->ready_fd);
    s->ready_fd = -1;
}

static void timer_fire(void *arg);
static void poll_fire(void *arg);
static void look_fire(void *arg);

static struct slirp_timer *timer_slot(struct net_slirp *s, uint64_t id, int create)
{
    struct slirp_timer *free_slot = NULL;

    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        if (s->timers[i].helper_id == id)
            return &s->timers[i];
        if (!s->timers[i].helper_id && !free_slot)
            free_slot = &s->timers[i];
    }
    if (!create || !free_slot)
        return NULL;
    *free_slot = (struct slirp_timer){ .helper_id = id, .s = s };
    return free_slot;
}

static void arm_poll(struct net_slirp *s, uint64_t at)
{
    const struct clock *c = s->env.clock;

    if (at == SLIRP_POLL_KEEP)
        return;
    if (s->poll_timer > 0)
        c->cancel(c->opaque, s->poll_timer);
    s->poll_timer = 0;
    if (at != SLIRP_POLL_NONE) {
        int64_t id = c->schedule(c->opaque, at, poll_fire, s);
        s->poll_timer = id > 0 ? id : 0;
    }
}

/* --watch: the next look at host_ready, on slirp_look_delay's schedule. */
static void arm_look(struct net_slirp *s)
{
    const struct clock *c = s->env.clock;
    uint64_t now = clock_now_ns(c);
    uint64_t d = s->busy ? slirp_look_delay(now - s->busy_since, LOOK_MIN_NS)
                         : SLIRP_LOOK_QUIET_NS;

    if (d == SLIRP_LOOK_QUIET_NS)
        s->busy = 0;
    if (s->look_timer > 0)
        c->cancel(c->opaque, s->look_timer);
    int64_t id = c->schedule(c->opaque, now + d, look_fire, s);
    s->look_timer = id > 0 ? id : 0;
}

/* --watch: DONE's arg says whether slirp has host sockets to look at. */
static void set_looking(struct net_slirp *s, int on)
{
    const struct clock *c = s->env.clock;

    if (on && !s->looking) {
        s->looking = 1;
        arm_look(s);
    } else if (!on && s->looking) {
        s->looking = 0;
        if (s->look_timer > 0)
            c->cancel(c->opaque, s->look_timer);
        s->look_timer = 0;
    }
}

/* One message of the helper's answer. 1: DONE, 0: more follow, -errno: helper lost (said). */
static int take_message(struct net_slirp *s, int config, char *err, size_t errlen)
{
    const struct clock *c = s->env.clock;
    struct slirp_msg m;
    const uint8_t *payload;
    int rc = slirp_inbuf_take(&s->in, &s->link, &m, &payload, ANSWER_SPIN_NS,
                              HELPER_TIMEOUT_MS);

    if (rc == -EMSGSIZE) {
        snprintf(err, errlen, "virtio-net: slirp helper: message length %u is over %u",
                 m.len, SLIRP_MSG_PAYLOAD_MAX);
        return -EPROTO;
    }
    if (rc == -EPIPE) {
        snprintf(err, errlen, "virtio-net: slirp helper: it exited (end of its stream)");
        return rc;
    }
    if (rc == -ETIMEDOUT) {
        snprintf(err, errlen, "virtio-net: slirp helper: no answer in %d ms",
                 HELPER_TIMEOUT_MS);
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "virtio-net: slirp helper: reading its stream: %s",
                 strerror(-rc));
        return rc;
    }
    /* The payload is in the buffer until the next take: a frame is handed on from it. */
    if (m.type == SLIRP_MSG_LOG || m.type == SLIRP_MSG_ERROR) {
        size_t n = m.len < sizeof(s->text) - 1 ? m.len : sizeof(s->text) - 1;
        memcpy(s->text, payload, n);
        s->text[n] = 0;
    }
    switch (m.type) {
    case SLIRP_MSG_FRAME:
        if (m.len < SLIRP_FRAME_MIN) {
            if (s->env.log)
                fprintf(s->env.log, "virtio-net: slirp helper: frame of %u bytes is shorter "
                        "than an Ethernet header; dropped\n", m.len);
            return 0;
        }
        /* slirp cannot hold a frame: one the device refuses is lost, as on a wire (TCP
         * retransmits; what the guest sees is a drop, never a stall). */
        if (!config && s->be.port.receive(s->be.port.opaque, payload, m.len))
            s->dropped++;
        return 0;
    case SLIRP_MSG_LOG:
        if (s->env.log)
            fprintf(s->env.log, "virtio-net: slirp: %s\n", s->text);
        return 0;
    case SLIRP_MSG_TIMER_MOD:
    case SLIRP_MSG_TIMER_FREE: {
        struct slirp_timer *t = m.arg ? timer_slot(s, m.arg, m.type == SLIRP_MSG_TIMER_MOD)
                                      : NULL;
        if (!t && m.type == SLIRP_MSG_TIMER_FREE && m.arg)
            return 0;                   /* never armed */
        if (!t) {
            snprintf(err, errlen, "virtio-net: slirp helper: timer %llu: %s",
                     (unsigned long long)m.arg, m.arg ? "more than 64 timers" : "bad id");
            return -EPROTO;
        }
        if (t->clock_id > 0)
            c->cancel(c->opaque, t->clock_id);
        t->clock_id = 0;
        if (m.type == SLIRP_MSG_TIMER_FREE) {
            t->helper_id = 0;
            return 0;
        }
        int64_t id = c->schedule(c->opaque, m.at, timer_fire, t);
        t->clock_id = id > 0 ? id : 0;
        return 0;
    }
    case SLIRP_MSG_DONE:
        arm_poll(s, m.at);
        if (s->watch)
            set_looking(s, m.arg == 1);
        return 1;
    case SLIRP_MSG_ERROR:
        if (config) {
            snprintf(err, errlen, "%s", s->text);
            return -EINVAL;
        }
        /* fall through */
    default:
        snprintf(err, errlen, "virtio-net: slirp helper: message type %u is not one it "
                 "sends", m.type);
        return -EPROTO;
    }
}

/* Sends one request and takes the answer. 0 or -errno (helper lost, err filled). */
static int ask(struct net_slirp *s, uint32_t type, uint64_t arg, const void *p, size_t len,
               char *err, size_t errlen)
{
    int rc;

    if (s->link.fd < 0)
        return -EPIPE;
    rc = slirp_msg_write(&s->link, type, arg, clock_now_ns(s->env.clock), p, len,
                         HELPER_TIMEOUT_MS);
    if (rc) {
        snprintf(err, errlen, "virtio-net: slirp helper: it exited (writing to it: %s)",
                 strerror(-rc));
    } else {
        while ((rc = take_message(s, type == SLIRP_MSG_CONFIG, err, errlen)) == 0)
            ;
        if (rc == 1)
            return 0;
    }
    helper_lost(s);
    return rc;
}

/* ask() from the running VM: a lost helper is said in the log. */
static int ask_logged(struct net_slirp *s, uint32_t type, uint64_t arg, const void *p,
                      size_t len)
{
    char err[256];
    int was_up = s->link.fd >= 0;
    int rc = ask(s, type, arg, p, len, err, sizeof(err));

    if (rc && was_up && s->env.log)
        fprintf(s->env.log, "%s; virtio-net has no link from now on\n", err);
    return rc;
}

static void timer_fire(void *arg)
{
    struct slirp_timer *t = arg;

    t->clock_id = 0;
    ask_logged(t->s, SLIRP_MSG_TIMER, t->helper_id, NULL, 0);
}

static void poll_fire(void *arg)
{
    struct net_slirp *s = arg;

    s->poll_timer = 0;
    ask_logged(s, SLIRP_MSG_POLL, 0, NULL, 0);
}

/* The flag is cleared before the POLL: the helper sets it again only while it waits for the
 * next request, so nothing it sees after this POLL's round is missed. */
static void look_fire(void *arg)
{
    struct net_slirp *s = arg;

    s->look_timer = 0;
    if (atomic_exchange(&s->shm->host_ready, 0) || !s->busy)
        ask_logged(s, SLIRP_MSG_POLL, 0, NULL, 0);
    if (s->looking)
        arm_look(s);
}

/* KVM: the helper rang its pipe (a host socket is ready): a POLL now. Its end of the pipe
 * closing means it is gone. */
static void slirp_poll(struct net_backend *be)
{
    struct net_slirp *s = (struct net_slirp *)be;
    char bytes[64];
    ssize_t n, got = 0;

    if (s->ready_fd < 0)
        return;
    while ((n = read(s->ready_fd, bytes, sizeof(bytes))) > 0)
        got += n;
    if (n == 0) {
        if (s->env.log && s->link.fd >= 0)
            fprintf(s->env.log, "virtio-net: slirp helper: it exited (end of its wake pipe); "
                    "virtio-net has no link from now on\n");
        helper_lost(s);
    } else if (got) {
        ask_logged(s, SLIRP_MSG_POLL, 0, NULL, 0);
    }
}

static int slirp_poll_fd(struct net_backend *be)
{
    return ((struct net_slirp *)be)->ready_fd;
}

static int slirp_send(struct net_backend *be, const void *frame, size_t len)
{
    struct net_slirp *s = (struct net_slirp *)be;

    if (len > SLIRP_MSG_PAYLOAD_MAX)
        return -EMSGSIZE;
    /* A reply may follow soon: on the software CPU the looks come quickly again (the
     * clock runs on while the guest spins or idles). On KVM the wake pipe brings replies. */
    int rc = ask_logged(s, SLIRP_MSG_FRAME, s->env.deterministic ? 1 : 0, frame, len);
    if (!rc && s->watch) {
        s->busy = 1;
        s->busy_since = clock_now_ns(s->env.clock);
        if (s->looking)
            arm_look(s);
    }
    return rc;
}

/* Closing the socket ends the helper; it is not waited for (the sandboxed VMM may not), the
 * kernel reaps it when vmlab exits. */
static void slirp_destroy(struct net_backend *be)
{
    struct net_slirp *s = (struct net_slirp *)be;

    cancel_all(s);
    if (s->link.fd >= 0)
        close(s->link.fd);
    if (s->ready_fd >= 0)
        close(s->ready_fd);
    if (s->shm)
        munmap(s->shm, sizeof(*s->shm));
    free(s);
}

static const struct net_backend_ops slirp_ops = {
    .name = "user", .send = slirp_send, .destroy = slirp_destroy,
    .poll_fd = slirp_poll_fd, .poll = slirp_poll,
};

int net_slirp_attach(int fd, int ready_fd, struct slirp_shared *shm, const char *args,
                     const struct device_env *env, struct net_backend **out, char *err,
                     size_t errlen)
{
    struct net_slirp *s = calloc(1, sizeof(*s));
    int rc;

    if (env->deterministic && ready_fd >= 0) {
        close(ready_fd);                /* the software CPU looks only at its own times */
        ready_fd = -1;
    }
    if (!s) {
        close(fd);
        if (ready_fd >= 0)
            close(ready_fd);
        if (shm)
            munmap(shm, sizeof(*shm));
        snprintf(err, errlen, "virtio-net: out of memory");
        return -ENOMEM;
    }
    s->env = *env;
    s->be.ops = &slirp_ops;
    s->link.fd = fd;
    s->ready_fd = ready_fd;
    if (ready_fd >= 0)                  /* the poll takes what is there, never waits */
        fcntl(ready_fd, F_SETFL, O_NONBLOCK);
    s->shm = shm;
    if (shm) {
        s->link.out = &shm->to_helper;
        s->link.in = &shm->to_vmlab;
        s->watch = env->deterministic;
    }
    rc = ask(s, SLIRP_MSG_CONFIG, 0, args, strlen(args), err, errlen);
    if (rc) {
        slirp_destroy(&s->be);
        return rc;
    }
    *out = &s->be;
    return 0;
}

/* The rings the helper gets as its fd 4: a memfd of struct slirp_shared, mapped here at
 * *shm. The fd (close-on-exec, above 4), or -1 when there is none to be had: the socket
 * then carries the bytes, only slower. */
static int shared_rings(struct slirp_shared **shm)
{
    int fd = memfd_create("vmlab-slirp-rings", MFD_CLOEXEC), high = -1;

    *shm = NULL;
    if (fd >= 0 && ftruncate(fd, sizeof(**shm)) == 0)
        high = fcntl(fd, F_DUPFD_CLOEXEC, 5);
    if (fd >= 0)
        close(fd);
    if (high >= 0) {
        void *p = mmap(NULL, sizeof(**shm), PROT_READ | PROT_WRITE, MAP_SHARED, high, 0);
        if (p != MAP_FAILED) {
            *shm = p;
            return high;
        }
        close(high);
    }
    return -1;
}

/* The helper's path: next to this binary, else one directory up. */
static int helper_path(char *path, size_t len, char *err, size_t errlen)
{
    char self[4096], dir[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n < 0) {
        snprintf(err, errlen, "virtio-net: net=user: /proc/self/exe: %s", strerror(errno));
        return -errno;
    }
    self[n] = 0;
    snprintf(dir, sizeof(dir), "%s", dirname(self));
    snprintf(path, len, "%s/%s", dir, SLIRP_HELPER_NAME);
    if (access(path, X_OK) == 0)
        return 0;
    snprintf(path, len, "%s/../%s", dir, SLIRP_HELPER_NAME);
    if (access(path, X_OK) == 0)
        return 0;
    snprintf(err, errlen, "virtio-net: net=user needs %s next to vmlab (%s/): %s",
             SLIRP_HELPER_NAME, dir, strerror(errno));
    return -ENOENT;
}

int net_slirp_create(const char *args, const struct device_env *env, struct net_backend **out,
                     char *err, size_t errlen)
{
    char v[DEVICE_ARGS_MAX] = "on", path[4200], parent[24];
    posix_spawn_file_actions_t fa;
    int sv[2], rc;
    pid_t pid;

    if (device_arg_get(args, "restrict", v, sizeof(v)) < 0 ||
        (strcmp(v, "on") && strcmp(v, "off"))) {
        snprintf(err, errlen, "virtio-net: restrict=%s is not on or off", v);
        return -EINVAL;
    }
    if ((rc = helper_path(path, sizeof(path), err, errlen)))
        return rc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        snprintf(err, errlen, "virtio-net: net=user: socketpair: %s", strerror(errno));
        return rc;
    }
    /* The helper's end goes to its fd 3, the rings to its fd 4, on KVM the wake pipe's
     * write end to its fd 5 (dup2 clears close-on-exec there); all are above 4 here and
     * the pipe's above 5, so no dup2 undoes another. */
    struct slirp_shared *shm;
    int rings = shared_rings(&shm), ready[2] = { -1, -1 }, ready_w = -1;
    if (!env->deterministic && pipe2(ready, O_CLOEXEC | O_NONBLOCK) == 0) {
        ready_w = fcntl(ready[1], F_DUPFD_CLOEXEC, 6);
        close(ready[1]);
        if (ready_w < 0) {
            close(ready[0]);
            ready[0] = -1;
        }
    }
    int child = fcntl(sv[1], F_DUPFD_CLOEXEC, 5);
    snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    char *argv[6] = { path, "--parent", parent }, **more = argv + 3;
    if (rings >= 0)
        *more++ = "--rings";
    if (rings >= 0 && env->deterministic)
        *more++ = "--watch";
    if (ready_w >= 0)
        *more++ = "--ready";
    *more = NULL;
    rc = child < 0 ? errno : posix_spawn_file_actions_init(&fa);
    if (!rc) {
        rc = posix_spawn_file_actions_adddup2(&fa, child, 3);
        if (!rc && rings >= 0)
            rc = posix_spawn_file_actions_adddup2(&fa, rings, 4);
        if (!rc && ready_w >= 0)
            rc = posix_spawn_file_actions_adddup2(&fa, ready_w, 5);
        if (!rc)
            rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    if (child >= 0)
        close(child);
    if (rings >= 0)
        close(rings);
    if (ready_w >= 0)
        close(ready_w);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        if (ready[0] >= 0)
            close(ready[0]);
        if (shm)
            munmap(shm, sizeof(*shm));
        snprintf(err, errlen, "virtio-net: net=user: starting %s: %s", path, strerror(rc));
        return -rc;
    }
    rc = net_slirp_attach(sv[0], ready[0], shm, args, env, out, err, errlen);
    if (rc) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return rc;
    }
    return 0;
}
