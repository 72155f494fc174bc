/* tap=NAME / tapfd=N: a Linux TAP interface, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR with
 * 12-byte headers (the virtio 1.x size, TUNSETVNETHDRSZ). Offloads (TUNSETOFFLOAD) follow
 * what the driver negotiated: TUN_F_CSUM when it took GUEST_CSUM, none before DRIVER_OK
 * and otherwise. The device offers no GUEST_TSO4/TSO6/UFO, so TSO and UFO are never set
 * and the kernel hands over no GSO frames. A frame with a partial checksum (NEEDS_CSUM in
 * its header) is completed here: the device's receive header carries no checksum flags
 * (the trace records frames, not headers), so the guest always gets whole checksums. The
 * device already completes NEEDS_CSUM frames from the guest; they go out with a zero header.
 *
 * The fd is non-blocking. On the software CPU it is read from a clock timer every
 * TAP_POLL_NS of virtual time (host input lands only at the clock's times). On KVM it sits
 * in an epoll set of its own, the backend's poll_fd, which the VMM watches: a frame from
 * the kernel is read when it arrives, as crosvm and Firecracker do, not up to 1 ms later
 * (the timer stays only where that epoll set cannot be had). When the device's receive
 * queue is full the frame just read is held and reading stops (the fd leaves the set, so
 * a readable TAP cannot wake the VMM in a loop; the kernel queue then fills and drops, as
 * for any slow reader) until the device resumes the backend: reading restarts at once, so
 * receive never stalls for good (Firecracker CVE-2020-16843 stopped reading for good when
 * both queues were full). */
#include "devices/net/net_backend.h"
#include "devices/net/net_csum.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define TAP_POLL_NS 1000000ull
#define TAP_HDR 12
#define TAP_FRAME_MAX 65536
#define TAP_READS_PER_ROUND 64

struct net_tap {
    struct net_backend be;              /* first */
    struct device_env env;
    int fd, own_fd;
    int epfd;                           /* KVM: an epoll set holding fd, or -1: the timer */
    int watched;                        /* fd is in epfd's interest (not held) */
    int64_t timer;
    int held;                           /* buf holds a frame the device refused */
    int reading;                        /* tap_read running: the device may resume us again */
    unsigned bad_logged;                /* frames with a header we cannot take */
    size_t held_len;
    uint8_t buf[TAP_HDR + TAP_FRAME_MAX];
};

static void tap_arm(struct net_tap *t);

/* The kernel's header for the frame in buf: a partial checksum is completed; GSO (never
 * enabled) or a bad checksum position drops the frame, said once. 0 or -EINVAL. */
static int tap_complete(struct net_tap *t, size_t len)
{
    uint8_t *h = t->buf, *frame = t->buf + TAP_HDR;
    uint16_t start = (uint16_t)(h[6] | h[7] << 8), off = (uint16_t)(h[8] | h[9] << 8);

    if (h[1] == 0 && (!(h[0] & 1) || net_csum_complete(frame, len, start, off) == 0))
        return 0;                       /* flags bit 0: VIRTIO_NET_HDR_F_NEEDS_CSUM */
    if (!t->bad_logged++ && t->env.log)
        fprintf(t->env.log, "virtio-net: tap: a %zu-byte frame with gso_type %u, flags %u, "
                "csum_start %u, csum_offset %u: dropped\n", len, h[1], h[0], start, off);
    return -EINVAL;
}

/* Reads frames into the device until the fd is empty, the device is full, or the round's
 * budget is spent. */
static void tap_read(struct net_tap *t)
{
    if (t->reading)
        return;
    t->reading = 1;
    for (int i = 0; i < TAP_READS_PER_ROUND; i++) {
        if (!t->held) {
            ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= TAP_HDR)
                break;
            if (tap_complete(t, (size_t)n - TAP_HDR))
                continue;
            t->held_len = (size_t)n - TAP_HDR;
            t->held = 1;
        }
        if (t->be.port.receive(t->be.port.opaque, t->buf + TAP_HDR, t->held_len) == -EAGAIN)
            break;                      /* kept in buf; resume brings us back */
        t->held = 0;
    }
    t->reading = 0;
}

static void tap_fire(void *arg)
{
    struct net_tap *t = arg;

    t->timer = 0;
    if (!t->held)
        tap_read(t);
    tap_arm(t);
}

/* The next read: on KVM the fd is watched while no frame is held; else a timer. */
static void tap_arm(struct net_tap *t)
{
    const struct clock *c = t->env.clock;

    if (t->epfd >= 0) {
        if (t->watched != !t->held) {
            struct epoll_event e = { .events = t->held ? 0 : EPOLLIN };
            if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->fd, &e) == 0)
                t->watched = !t->held;
        }
        return;
    }
    if (t->timer > 0 || t->held)
        return;
    int64_t id = c->schedule(c->opaque, clock_now_ns(c) + TAP_POLL_NS, tap_fire, t);
    t->timer = id > 0 ? id : 0;
}

static int tap_send(struct net_backend *be, const void *frame, size_t len)
{
    struct net_tap *t = (struct net_tap *)be;
    uint8_t hdr[TAP_HDR] = { 0 };
    struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)frame, len } };
    ssize_t n;

    do
        n = writev(t->fd, iov, 2);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;          /* EAGAIN: the interface is full, the frame is lost */
}

static void tap_resume(struct net_backend *be)
{
    struct net_tap *t = (struct net_tap *)be;

    tap_read(t);
    tap_arm(t);
}

/* KVM: the TAP has frames (epfd turned readable in the VMM's epoll set). */
static void tap_poll(struct net_backend *be)
{
    struct net_tap *t = (struct net_tap *)be;

    if (!t->held)
        tap_read(t);
    tap_arm(t);
}

static int tap_poll_fd(struct net_backend *be)
{
    return ((struct net_tap *)be)->epfd;
}

static void tap_destroy(struct net_backend *be)
{
    struct net_tap *t = (struct net_tap *)be;

    if (t->timer > 0)
        t->env.clock->cancel(t->env.clock->opaque, t->timer);
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->own_fd && t->fd >= 0)
        close(t->fd);
    free(t);
}

/* The driver reached DRIVER_OK: offloads follow its GUEST_CSUM. */
static void tap_set_offloads(struct net_backend *be, int guest_csum)
{
    struct net_tap *t = (struct net_tap *)be;
    unsigned long off = guest_csum ? TUN_F_CSUM : 0;

    if (ioctl(t->fd, TUNSETOFFLOAD, off) < 0 && t->env.log)
        fprintf(t->env.log, "virtio-net: tap: TUNSETOFFLOAD %#lx: %s\n", off, strerror(errno));
}

static const struct net_backend_ops tap_ops = {
    .name = "tap", .send = tap_send, .resume = tap_resume,
    .set_offloads = tap_set_offloads, .destroy = tap_destroy,
    .poll_fd = tap_poll_fd, .poll = tap_poll,
};

static int tap_setup_fd(struct net_tap *t, const char *what, char *err, size_t errlen)
{
    int hdr = TAP_HDR, fl;
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(t->fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_TAP) ||
        !(ifr.ifr_flags & IFF_NO_PI) || !(ifr.ifr_flags & IFF_VNET_HDR)) {
        snprintf(err, errlen, "virtio-net: %s is not a TAP opened with IFF_TAP|IFF_NO_PI|"
                 "IFF_VNET_HDR", what);
        return -EINVAL;
    }
    if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(t->fd, TUNSETOFFLOAD, 0) < 0 ||
        (fl = fcntl(t->fd, F_GETFL)) < 0 || fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        snprintf(err, errlen, "virtio-net: %s: cannot set up the TAP: %s", what, strerror(e));
        return -e;
    }
    return 0;
}

int net_tap_create(const char *args, const struct device_env *env, struct net_backend **out,
                   char *err, size_t errlen)
{
    char name[DEVICE_ARGS_MAX], fdarg[DEVICE_ARGS_MAX], what[DEVICE_ARGS_MAX + 8];
    int has_name = device_arg_get(args, "tap", name, sizeof(name)) == 1;
    int has_fd = device_arg_get(args, "tapfd", fdarg, sizeof(fdarg)) == 1;
    struct net_tap *t;
    int rc;

    if (has_name && has_fd) {
        snprintf(err, errlen, "virtio-net: tap=%s and tapfd=%s cannot be combined", name,
                 fdarg);
        return -EINVAL;
    }
    if (device_arg_get(args, "hostfwd", what, sizeof(what)) != 0) {
        snprintf(err, errlen, "virtio-net: hostfwd= needs net=user, not a tap");
        return -EINVAL;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "virtio-net: out of memory");
        return -ENOMEM;
    }
    t->env = *env;
    t->be.ops = &tap_ops;
    t->fd = -1;
    t->epfd = -1;
    if (has_fd) {
        char *end;
        long fd = strtol(fdarg, &end, 10);
        snprintf(what, sizeof(what), "tapfd=%s", fdarg);
        if (!*fdarg || *end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) {
            snprintf(err, errlen, "virtio-net: tapfd=%s is not an open file descriptor",
                     fdarg);
            free(t);
            return -EBADF;
        }
        t->fd = (int)fd;
        t->own_fd = 1;                  /* handed over, as crosvm's tap-fd is */
    } else {
        struct ifreq ifr;
        snprintf(what, sizeof(what), "tap=%s", name);
        if (strlen(name) >= IFNAMSIZ || !*name) {
            snprintf(err, errlen, "virtio-net: tap=%s is not an interface name (1..%d "
                     "characters)", name, IFNAMSIZ - 1);
            free(t);
            return -EINVAL;
        }
        t->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (t->fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "virtio-net: tap=%s: /dev/net/tun: %s", name,
                     strerror(errno));
            free(t);
            return rc;
        }
        t->own_fd = 1;
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        memcpy(ifr.ifr_name, name, strlen(name));
        if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
            rc = -errno;
            snprintf(err, errlen, "virtio-net: tap=%s: cannot attach: %s", name,
                     strerror(errno));
            tap_destroy(&t->be);
            return rc;
        }
    }
    if ((rc = tap_setup_fd(t, what, err, errlen))) {
        tap_destroy(&t->be);
        return rc;
    }
    if (!env->deterministic) {
        struct epoll_event e = { .events = EPOLLIN };
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (t->epfd >= 0 && epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->fd, &e) < 0) {
            close(t->epfd);
            t->epfd = -1;
        }
        t->watched = t->epfd >= 0;
    }
    tap_arm(t);
    *out = &t->be;
    return 0;
}
