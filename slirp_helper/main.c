/* vmlab-slirp: libslirp (QEMU's -netdev user) for vmlab's --net user, in a process of its
 * own so that vmlab stays fully static: Debian ships libslirp (and the glib it needs) only
 * as shared libraries. vmlab starts it with the socket on fd 3 and speaks the protocol of
 * devices/net/slirp_proto.h; this program only answers, and its only clock is the time
 * vmlab sends, so slirp behaves exactly as it did inside vmlab.
 *
 * Addresses are QEMU's: network 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3, the guest
 * 10.0.2.15 by DHCP. IPv6 is off. restrict=on (vmlab's default) confines the guest to
 * slirp itself and the hostfwd rules: no outbound connections, no DNS forwarding;
 * restrict=off lets it out as QEMU's default does.
 * hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:PORT (repeatable) binds HOSTADDR,
 * 127.0.0.1 when empty.
 *
 * It dies with vmlab (PR_SET_PDEATHSIG, and end of stream on its socket), and once
 * configured runs under a seccomp allow-list (slirp_sandbox.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>


#include "devices/net/slirp_proto.h"
#include "slirp_helper/slirp_sandbox.h"

#define SOCK_FD 3
#define SHARED_FD 4                     /* with --rings or --watch: struct slirp_shared
                                         * (slirp_link.h) */
#define READY_FD 5                      /* with --ready: a pipe's write end (slirp_proto.h) */
#define POLL_BUSY_NS 10000ull           /* after a guest frame (FRAME arg 1): every 10 us,
                                         * then a quarter of the time since that frame, up
                                         * to SLIRP_LOOK_QUIET_NS (poll_delay) */
#define POLL_DRAIN 16                   /* passes in a row while a socket has more */
#define MAX_FDS 256
#define REQUEST_SPIN_NS 50000           /* host time spent looking for the next request
                                         * before sleeping (slirp_inbuf_take says why) */
#define WATCH_SPIN_NS 200000            /* the same with --watch: vmlab's looks no longer
                                         * reach the helper, so requests come further
                                         * apart (udp.elf's receive windows: about 110 us
                                         * of guest work between one window's last POLL
                                         * and the next window's request); a helper asleep
                                         * by then costs a wakeup of up to 45 us. Measured:
                                         * UDP receive 90 MiB/s with 50 us, 140 with 200. */

struct helper_timer {
    SlirpTimerCb cb;
    void *cb_opaque;
    uint64_t id;
    struct helper_timer *next;
};

static struct {
    Slirp *slirp;
    uint64_t now_ns;                    /* vmlab's time, from the request being answered */
    struct helper_timer *timers;
    uint64_t next_timer_id;
    struct pollfd fds[MAX_FDS];
    unsigned nfds;
    int overflow;
    uint64_t busy_since;                /* the last guest frame that asked to look again
                                         * soon (FRAME arg 1), while busy */
    int busy;
    int ready;                          /* --ready (KVM): ring READY_FD when a host
                                         * socket is ready while waiting for vmlab */
    struct slirp_shared *shm;           /* --watch (software CPU): set its host_ready
                                         * then; NULL without */
    char err[256];                      /* why CONFIG failed */
} h;

/* An answer is gathered here and written at once when it ends (DONE, ERROR): one write
 * and one wakeup of vmlab per request, not one per message. */
static uint8_t out[4 * (sizeof(struct slirp_msg) + SLIRP_MSG_PAYLOAD_MAX)];
static size_t out_len;

static struct slirp_link vmlab_link = { .fd = SOCK_FD };

/* vmlab is gone or no longer listening: nothing left to do. */
static void flush(void)
{
    struct iovec v = { out, out_len };

    if (slirp_link_send(&vmlab_link, &v, 1, -1))
        _exit(0);
    out_len = 0;
}

/* vmlab's shared memory on SHARED_FD: with --rings the stream's bytes go through it, with
 * --watch the host_ready flag is in it. */
static int map_shared(int rings, int watch)
{
    struct stat st;
    struct slirp_shared *shm;

    if (fstat(SHARED_FD, &st) < 0 || (size_t)st.st_size < sizeof(*shm))
        return -1;
    shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED, SHARED_FD, 0);
    if (shm == MAP_FAILED)
        return -1;
    close(SHARED_FD);
    if (rings) {
        vmlab_link.in = &shm->to_helper;
        vmlab_link.out = &shm->to_vmlab;
    }
    if (watch)
        h.shm = shm;
    return 0;
}

static void say(uint32_t type, uint64_t arg, uint64_t at, const void *p, size_t len)
{
    struct slirp_msg m = { .type = type, .len = (uint32_t)len, .arg = arg, .at = at,
                           .cpu = slirp_this_cpu() };

    if (out_len + sizeof(m) + len > sizeof(out))
        flush();
    memcpy(out + out_len, &m, sizeof(m));
    if (len)
        memcpy(out + out_len + sizeof(m), p, len);
    out_len += sizeof(m) + len;
    if (type == SLIRP_MSG_DONE || type == SLIRP_MSG_ERROR)
        flush();
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    (void)opaque;
    if (len <= SLIRP_MSG_PAYLOAD_MAX)
        say(SLIRP_MSG_FRAME, 0, 0, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    say(SLIRP_MSG_LOG, 0, 0, msg, strnlen(msg, 1024));
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return (int64_t)h.now_ns;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct helper_timer *t = calloc(1, sizeof(*t));

    (void)opaque;
    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
        t->id = ++h.next_timer_id;
        t->next = h.timers;
        h.timers = t;
    }
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    for (struct helper_timer **p = &h.timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = (*p)->next;
            say(SLIRP_MSG_TIMER_FREE, ((struct helper_timer *)timer)->id, 0, NULL, 0);
            free(timer);
            return;
        }
    }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    struct helper_timer *t = timer;

    (void)opaque;
    say(SLIRP_MSG_TIMER_MOD, t->id, expire_ms < 0 ? 0 : (uint64_t)expire_ms * 1000000ull,
        NULL, 0);
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

static const SlirpCb callbacks = {
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

static int add_poll(int fd, int events, void *opaque)
{
    short ev = 0;

    (void)opaque;
    if (h.nfds == MAX_FDS) {
        h.overflow = 1;
        return -1;
    }
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    h.fds[h.nfds] = (struct pollfd){ .fd = fd, .events = ev };
    return (int)h.nfds++;
}

static int get_revents(int idx, void *opaque)
{
    short re;
    int r = 0;

    (void)opaque;
    if (idx < 0 || (unsigned)idx >= h.nfds)
        return 0;
    re = h.fds[idx].revents;
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

/* The delay to the next POLL, without --watch (each look a round trip from vmlab): after a
 * guest frame, slirp_look_delay's schedule from POLL_BUSY_NS, 26 looks in the 4 ms before
 * they are 1 ms apart again. (Doubling the delay took 7, but saw a reply late by up to as
 * long again as it took: one at 80 us was seen at 150 us, and with the guest spinning
 * meanwhile a host peer's every slow answer cost that twice.) */
static uint64_t poll_delay(void)
{
    uint64_t d = h.busy ? slirp_look_delay(h.now_ns - h.busy_since, POLL_BUSY_NS)
                        : SLIRP_LOOK_QUIET_NS;

    if (d == SLIRP_LOOK_QUIET_NS)
        h.busy = 0;
    return d;
}

/* One round of slirp's host side: its timeouts (TCP timers run inside pollfds_poll) and a
 * non-blocking look at its sockets. Returns when the next round is due: with --watch or
 * --ready for slirp's timeouts only (host_ready or the wake pipe says when a socket is
 * ready: on KVM a 1 ms look was a vCPU kick and a round trip a millisecond for nothing). */
static uint64_t slirp_round(void)
{
    uint32_t timeout_ms = UINT32_MAX;
    int err = 0;

    /* slirp takes one datagram per socket and pass: while a socket has more to read, look
     * again at once (a 1 ms round with one pass capped UDP receive at one datagram per
     * millisecond of guest time). */
    for (int pass = 0, more = 1; more && pass < POLL_DRAIN; pass++) {
        h.nfds = 0;
        h.overflow = 0;
        slirp_pollfds_fill(h.slirp, &timeout_ms, add_poll, NULL);
        if (h.nfds) {
            for (unsigned i = 0; i < h.nfds; i++)
                h.fds[i].revents = 0;
            err = poll(h.fds, h.nfds, 0) < 0;
        }
        slirp_pollfds_poll(h.slirp, err || h.overflow, get_revents, NULL);
        more = 0;
        for (unsigned i = 0; i < h.nfds && !more && !err; i++)
            more = (h.fds[i].revents & POLLIN) != 0;
    }
    /* More sockets than MAX_FDS: the watch cannot see them all; the timed looks stay. */
    int watched = (h.shm || h.ready) && !h.overflow;
    uint64_t next = h.nfds && !watched ? poll_delay() : UINT64_MAX;
    if (timeout_ms != UINT32_MAX && (uint64_t)timeout_ms * 1000000ull < next)
        next = (uint64_t)timeout_ms * 1000000ull;
    if (next == UINT64_MAX)
        return SLIRP_POLL_NONE;
    return h.now_ns + (next ? next : 1);
}

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

static int add_hostfwd(const char *rule)
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
        snprintf(h.err, sizeof(h.err), "virtio-net: hostfwd=%s is not "
                 "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", rule);
        return -EINVAL;
    }
    if (slirp_add_hostfwd(h.slirp, udp, haddr, hport, gaddr, gport) < 0) {
        int e = errno ? errno : EADDRINUSE;
        snprintf(h.err, sizeof(h.err), "virtio-net: hostfwd=%s: cannot listen on host port "
                 "%d: %s", rule, hport, strerror(e));
        return -e;
    }
    return 0;
}

/* The value of key=... in a comma-separated list, or NULL; *n its length. Keys vmlab's
 * device takes (mac=, mtu=, ...) are not slirp's and are passed over. */
static const char *arg_next(const char **p, const char *key, size_t *n)
{
    size_t klen = strlen(key);

    while (*p && **p) {
        const char *item = *p, *end = strchr(item, ',');
        size_t len = end ? (size_t)(end - item) : strlen(item);
        *p = end ? end + 1 : NULL;
        if (len > klen && !strncmp(item, key, klen) && item[klen] == '=') {
            *n = len - klen - 1;
            return item + klen + 1;
        }
    }
    return NULL;
}

static int configure(const char *args)
{
    SlirpConfig cfg = { 0 };
    const char *p = args, *v;
    size_t n;

    v = arg_next(&p, "restrict", &n);
    cfg.version = 3;
    cfg.restricted = !(v && n == 3 && !strncmp(v, "off", 3));
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.vhostname = "vmlab";
    cfg.disable_dns = cfg.restricted;
    h.slirp = slirp_new(&cfg, &callbacks, NULL);
    if (!h.slirp) {
        snprintf(h.err, sizeof(h.err), "virtio-net: net=user: libslirp could not start");
        return -ENOMEM;
    }
    for (p = args; (v = arg_next(&p, "hostfwd", &n));) {
        char rule[128];
        if (n >= sizeof(rule)) {
            snprintf(h.err, sizeof(h.err), "virtio-net: hostfwd=%.*s is too long", (int)n, v);
            return -EINVAL;
        }
        memcpy(rule, v, n);
        rule[n] = 0;
        int rc = add_hostfwd(rule);
        if (rc)
            return rc;
    }
    return 0;
}

static struct helper_timer *timer_find(uint64_t id)
{
    for (struct helper_timer *t = h.timers; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static uint64_t host_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* vmlab's next request. With --ready (KVM) or --watch (the software CPU) the helper also
 * watches slirp's host sockets for the events slirp asked for in its last round, as QEMU's
 * main loop does, through its spin (REQUEST_SPIN_NS, WATCH_SPIN_NS with --watch; a look
 * at both each time; host time bounds it and is never part of a message) and its sleep:
 * when one is ready first it writes a byte to READY_FD (vmlab's KVM epoll set watches the
 * read end) or sets host_ready (vmlab looks at it on the virtual clock's schedule), once,
 * then waits for the request alone; a socket that stays ready is looked at again only
 * after the next request, so it cannot make the helper repeat itself. */
static int take_request(struct slirp_inbuf *in, struct slirp_msg *m, const uint8_t **payload)
{
    static struct pollfd watch[MAX_FDS];
    int spin = in->peer_cpu && in->peer_cpu != slirp_this_cpu();
    uint64_t spin_ns = h.shm ? WATCH_SPIN_NS : REQUEST_SPIN_NS;
    uint64_t until = spin ? host_ns() + spin_ns : 0;
    int rc;

    if (!(h.ready || h.shm) || !h.nfds)
        return slirp_inbuf_take(in, &vmlab_link, m, payload, spin_ns, -1);
    for (;;) {
        rc = slirp_inbuf_take(in, &vmlab_link, m, payload, 0, 0);
        if (rc != -ETIMEDOUT)
            return rc;
        memcpy(watch, h.fds, h.nfds * sizeof(*watch));
        rc = slirp_link_wait(&vmlab_link, until && host_ns() < until ? 0 : -1, watch, h.nfds);
        if (rc == 1)
            break;
        if (rc < 0 && rc != -ETIMEDOUT)
            return rc;
    }
    /* A full pipe already holds a wake; a closed one: vmlab's stream ends next. */
    if (h.ready)
        (void)!write(READY_FD, "r", 1);
    if (h.shm)
        atomic_store(&h.shm->host_ready, 1);
    return slirp_inbuf_take(in, &vmlab_link, m, payload, spin_ns, -1);
}

static int usage(FILE *f)
{
    fprintf(f, "usage: " SLIRP_HELPER_NAME " --parent PID [--rings] [--watch | --ready]\n"
            "       (started by vmlab run --net user, its socket on fd 3, with --rings or "
            "--watch\n       its shared memory on fd 4, with --ready a pipe to wake it on "
            "fd 5)\n\n"
            "libslirp user networking for vmlab in a process of its own; speaks the protocol "
            "of\ndevices/net/slirp_proto.h and exits when vmlab does.\n");
    return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    static struct slirp_inbuf in;
    static char config[SLIRP_MSG_PAYLOAD_MAX + 1];
    const uint8_t *payload;
    struct slirp_msg m;
    int rings = 0, watch = 0;
    pid_t parent = argc >= 3 && !strcmp(argv[1], "--parent") ? (pid_t)atol(argv[2]) : 0;

    for (int i = 3; parent && i < argc; i++) {
        if (!strcmp(argv[i], "--rings"))
            rings = 1;
        else if (!strcmp(argv[i], "--ready"))
            h.ready = 1;
        else if (!strcmp(argv[i], "--watch"))
            watch = 1;
        else
            parent = 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--help"))
        return usage(stdout);
    if (!parent)
        return usage(stderr);
    /* Die with vmlab even if it is killed; it may already be gone. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    if (watch && h.ready)
        return usage(stderr);
    if ((rings || watch) && map_shared(rings, watch))
        return 1;
    for (;;) {
        if (take_request(&in, &m, &payload))
            return 0;                   /* vmlab closed the socket or broke the protocol */
        h.now_ns = m.at;
        uint64_t next = SLIRP_POLL_KEEP;
        switch (m.type) {
        case SLIRP_MSG_CONFIG:
            memcpy(config, payload, m.len);
            config[m.len] = 0;
            if (h.slirp || configure(config) || slirp_sandbox_enter(h.err, sizeof(h.err))) {
                if (!h.err[0])
                    snprintf(h.err, sizeof(h.err), "virtio-net: slirp helper configured twice");
                say(SLIRP_MSG_ERROR, 0, 0, h.err, strlen(h.err));
                return 1;
            }
            next = slirp_round();       /* hostfwd sockets are polled from the start */
            break;
        case SLIRP_MSG_FRAME:
            if (!h.slirp)
                return 1;
            slirp_input(h.slirp, payload, (int)m.len);
            if (m.arg == 1) {
                h.busy = 1;
                h.busy_since = h.now_ns;
            }
            next = slirp_round();
            break;
        case SLIRP_MSG_TIMER: {
            struct helper_timer *t = timer_find(m.arg);
            if (t)
                t->cb(t->cb_opaque);
            break;
        }
        case SLIRP_MSG_POLL:
            if (!h.slirp)
                return 1;
            next = slirp_round();
            break;
        default:
            return 1;
        }
        say(SLIRP_MSG_DONE, h.shm && h.nfds ? 1 : 0, next, NULL, 0);
    }
}
