/* net=user: user-mode networking through libslirp (what QEMU's -netdev user uses): DHCP,
 * DNS, ICMP echo to the gateway, TCP/UDP through host sockets, hostfwd rules.
 *
 * Addresses are QEMU's: network 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3, the guest
 * 10.0.2.15 by DHCP. IPv6 is off. restrict=on (the default) confines the guest to slirp
 * itself and the hostfwd rules: no outbound connections, no DNS forwarding; restrict=off
 * lets it out as QEMU's default does. hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:PORT
 * (repeatable) binds HOSTADDR, 127.0.0.1 when empty.
 *
 * Time: slirp reads env->clock and its timers are env->clock timers, so on the software CPU
 * a guest that talks only to slirp (DHCP, ARP, ping of the gateway) sees the same frames at
 * the same virtual times on every run. Host sockets are polled (never blocking) from a
 * clock timer while slirp has any: every SLIRP_POLL_NS, and on the software CPU
 * SLIRP_POLL_BUSY_NS after a frame from the guest (a reply may follow), doubling back; and
 * since slirp takes one datagram per socket and round, a round repeats while a socket has
 * more (a fixed 1 ms round with one pass capped UDP receive at one datagram per millisecond
 * of guest time). On KVM, where each timer is a vCPU kick, rounds stay 1 ms apart. What
 * they bring is not deterministic, which is why the trace records every frame
 * (env->host_io). */
#include "devices/net/net_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLIRP_POLL_NS 1000000ull        /* host sockets, when quiet: 1 ms of the device's clock */
#define SLIRP_POLL_BUSY_NS 10000ull     /* ... after a guest frame on the software CPU: 10 us,
                                         * doubling back */
#define SLIRP_DRAIN 16                  /* rounds in a row while a socket has more */
#define SLIRP_MAX_FDS 256

struct slirp_timer {
    struct net_slirp *s;
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t id;                         /* clock timer, 0 if not armed */
};

struct net_slirp {
    struct net_backend be;              /* first */
    const struct device_env *env;
    struct device_env env_copy;
    Slirp *slirp;
    int64_t poll_timer;                 /* clock timer id, 0 if none */
    struct pollfd fds[SLIRP_MAX_FDS];
    unsigned nfds;
    int overflow;                       /* more fds than fit: told slirp they errored */
    uint64_t dropped;                   /* frames the device had no room for */
    uint64_t poll_ns;                   /* the next round's delay while sockets are open */
};

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *s = opaque;

    /* slirp cannot hold a frame: one the device refuses is lost, as on a wire (TCP
     * retransmits; what the guest sees is a drop, never a stall). */
    if (s->be.port.receive(s->be.port.opaque, buf, len))
        s->dropped++;
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    struct net_slirp *s = opaque;

    if (s->env->log)
        fprintf(s->env->log, "virtio-net: slirp: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    struct net_slirp *s = opaque;
    return (int64_t)clock_now_ns(s->env->clock);
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct slirp_timer *t = calloc(1, sizeof(*t));

    if (t) {
        t->s = opaque;
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void timer_disarm(struct slirp_timer *t)
{
    if (t->id > 0)
        t->s->env->clock->cancel(t->s->env->clock->opaque, t->id);
    t->id = 0;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer) {
        timer_disarm(timer);
        free(timer);
    }
}

static void timer_fire(void *arg)
{
    struct slirp_timer *t = arg;

    t->id = 0;
    t->cb(t->cb_opaque);
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    struct slirp_timer *t = timer;
    const struct clock *c;

    (void)opaque;
    timer_disarm(t);
    c = t->s->env->clock;
    int64_t id = c->schedule(c->opaque, expire_ms < 0 ? 0 : (uint64_t)expire_ms * 1000000ull,
                             timer_fire, t);
    t->id = id > 0 ? id : 0;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_notify(void *opaque)
{
    (void)opaque;
}

static int add_poll(int fd, int events, void *opaque)
{
    struct net_slirp *s = opaque;
    short ev = 0;

    if (s->nfds == SLIRP_MAX_FDS) {
        s->overflow = 1;
        return -1;
    }
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    s->fds[s->nfds] = (struct pollfd){ .fd = fd, .events = ev };
    return (int)s->nfds++;
}

static int get_revents(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    short re;
    int r = 0;

    if (idx < 0 || (unsigned)idx >= s->nfds)
        return 0;
    re = s->fds[idx].revents;
    if (re & POLLIN)
        r |= SLIRP_POLL_IN;
    if (re & POLLOUT)
        r |= SLIRP_POLL_OUT;
    if (re & POLLPRI)
        r |= SLIRP_POLL_PRI;
    if (re & (POLLERR | POLLNVAL))
        r |= SLIRP_POLL_ERR;
    if (re & POLLHUP)
        r |= SLIRP_POLL_HUP;
    return r;
}

static void poll_fire(void *arg);

/* One round of slirp's host side: its timeouts (TCP timers run inside pollfds_poll) and
 * a non-blocking look at its sockets; then the next round is armed. */
static void slirp_round(struct net_slirp *s)
{
    const struct clock *c = s->env->clock;
    uint32_t timeout_ms = UINT32_MAX;
    int err = 0;

    if (s->poll_timer > 0)
        c->cancel(c->opaque, s->poll_timer);
    s->poll_timer = 0;
    /* slirp takes one datagram per socket and round: while a socket has more to read, look
     * again at once (up to SLIRP_DRAIN times) rather than a round later. */
    for (int pass = 0, more = 1; more && pass < SLIRP_DRAIN; pass++) {
        s->nfds = 0;
        s->overflow = 0;
        slirp_pollfds_fill(s->slirp, &timeout_ms, add_poll, s);
        if (s->nfds) {
            for (unsigned i = 0; i < s->nfds; i++)
                s->fds[i].revents = 0;
            err = poll(s->fds, s->nfds, 0) < 0;
        }
        slirp_pollfds_poll(s->slirp, err || s->overflow, get_revents, s);
        more = 0;
        for (unsigned i = 0; i < s->nfds && !more && !err; i++)
            more = (s->fds[i].revents & POLLIN) != 0;
    }
    s->poll_ns = s->poll_ns * 2 > SLIRP_POLL_NS ? SLIRP_POLL_NS : s->poll_ns * 2;
    uint64_t next = s->nfds ? s->poll_ns : UINT64_MAX;
    if (timeout_ms != UINT32_MAX && (uint64_t)timeout_ms * 1000000ull < next)
        next = (uint64_t)timeout_ms * 1000000ull;
    if (next != UINT64_MAX) {
        if (next == 0)
            next = 1;
        int64_t id = c->schedule(c->opaque, clock_now_ns(c) + next, poll_fire, s);
        s->poll_timer = id > 0 ? id : 0;
    }
}

static void poll_fire(void *arg)
{
    struct net_slirp *s = arg;

    s->poll_timer = 0;
    slirp_round(s);
}

static int slirp_send(struct net_backend *be, const void *frame, size_t len)
{
    struct net_slirp *s = (struct net_slirp *)be;

    slirp_input(s->slirp, frame, (int)len);
    /* A reply may follow soon: on the software CPU look again quickly (its clock runs on
     * while the guest spins or idles). On KVM the clock is real time and each timer a vCPU
     * kick: rounds stay every SLIRP_POLL_NS there. */
    if (s->env->deterministic)
        s->poll_ns = SLIRP_POLL_BUSY_NS / 2;
    slirp_round(s);
    return 0;
}

static void slirp_destroy(struct net_backend *be)
{
    struct net_slirp *s = (struct net_slirp *)be;

    if (s->poll_timer > 0)
        s->env->clock->cancel(s->env->clock->opaque, s->poll_timer);
    if (s->slirp)
        slirp_cleanup(s->slirp);
    free(s);
}

static const struct net_backend_ops slirp_ops = {
    .name = "user", .send = slirp_send, .destroy = slirp_destroy,
};

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_register_poll_fd,
    .notify = cb_notify,
};

/* "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" as QEMU spells it. */
static int parse_port(const char *s, size_t n, int *out)
{
    char buf[8];
    char *end;

    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = 0;
    long v = strtol(buf, &end, 10);
    if (*end || v < 1 || v > 65535)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int parse_addr(const char *s, size_t n, const char *dflt, struct in_addr *out)
{
    char buf[INET_ADDRSTRLEN];

    if (n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = 0;
    return inet_pton(AF_INET, n ? buf : dflt, out) == 1 ? 0 : -EINVAL;
}

static int add_hostfwd(struct net_slirp *s, const char *rule, char *err, size_t errlen)
{
    const char *p = rule, *colon, *dash, *gcolon;
    int udp = 0, hport, gport;
    struct in_addr haddr, gaddr;

    if (!strncmp(p, "tcp:", 4))
        p += 4;
    else if (!strncmp(p, "udp:", 4)) {
        udp = 1;
        p += 4;
    }
    colon = strchr(p, ':');
    dash = strchr(p, '-');
    if (!dash || (colon && colon > dash))
        colon = NULL;
    gcolon = dash ? strrchr(dash, ':') : NULL;
    if (!dash || !gcolon ||
        parse_addr(p, colon ? (size_t)(colon - p) : 0, "127.0.0.1", &haddr) ||
        parse_port(colon ? colon + 1 : p, (size_t)(dash - (colon ? colon + 1 : p)), &hport) ||
        parse_addr(dash + 1, (size_t)(gcolon - dash - 1), "0.0.0.0", &gaddr) ||
        parse_port(gcolon + 1, strlen(gcolon + 1), &gport)) {
        snprintf(err, errlen, "virtio-net: hostfwd=%s is not "
                 "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", rule);
        return -EINVAL;
    }
    if (slirp_add_hostfwd(s->slirp, udp, haddr, hport, gaddr, gport) < 0) {
        int e = errno ? errno : EADDRINUSE;
        snprintf(err, errlen, "virtio-net: hostfwd=%s: cannot listen on host port %d: %s",
                 rule, hport, strerror(e));
        return -e;
    }
    return 0;
}

/* Every hostfwd=... of the args, in order (the key may repeat). */
static int add_all_hostfwd(struct net_slirp *s, const char *args, char *err, size_t errlen)
{
    const char *p = args;

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 8 && !strncmp(p, "hostfwd=", 8)) {
            char rule[128];
            if (n - 8 >= sizeof(rule)) {
                snprintf(err, errlen, "virtio-net: hostfwd=%.*s is too long", (int)(n - 8),
                         p + 8);
                return -EINVAL;
            }
            memcpy(rule, p + 8, n - 8);
            rule[n - 8] = 0;
            int rc = add_hostfwd(s, rule, err, errlen);
            if (rc)
                return rc;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int net_slirp_create(const char *args, const struct device_env *env, struct net_backend **out,
                     char *err, size_t errlen)
{
    char v[DEVICE_ARGS_MAX] = "on";
    struct net_slirp *s;
    SlirpConfig cfg = { 0 };
    int rc;

    if (device_arg_get(args, "restrict", v, sizeof(v)) < 0 ||
        (strcmp(v, "on") && strcmp(v, "off"))) {
        snprintf(err, errlen, "virtio-net: restrict=%s is not on or off", v);
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "virtio-net: out of memory");
        return -ENOMEM;
    }
    s->env_copy = *env;
    s->env = &s->env_copy;
    s->be.ops = &slirp_ops;
    s->poll_ns = SLIRP_POLL_NS;
    cfg.version = 3;
    cfg.restricted = !strcmp(v, "on");
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.vhostname = "vmlab";
    cfg.disable_dns = cfg.restricted;
    s->slirp = slirp_new(&cfg, &slirp_callbacks, s);
    if (!s->slirp) {
        snprintf(err, errlen, "virtio-net: net=user: libslirp could not start");
        free(s);
        return -ENOMEM;
    }
    if ((rc = add_all_hostfwd(s, args, err, errlen))) {
        slirp_destroy(&s->be);
        return rc;
    }
    slirp_round(s);                     /* hostfwd sockets are polled from the start */
    *out = &s->be;
    return 0;
}
