/* The TAP backend (devices/net/net_tap.c) against a real TAP, in a network namespace of the
 * test's own (unshare: each Check test runs in a child of its own, so nothing leaves it).
 * Frames reach the TAP's reader when a packet socket transmits them on the interface. On
 * KVM the backend's poll_fd turns readable when the TAP has a frame and its poll hands the
 * frame over with no clock timer involved; a frame the device refuses is held, the poll_fd
 * goes quiet meanwhile (a readable TAP must not wake the VMM in a loop), and resume hands
 * it over and watches again. On the software CPU there is no poll_fd: frames come at the
 * virtual clock's 1 ms reads. Frames of the kernel's own (IPv6 neighbour discovery on a new
 * link) are taken and not counted. Skipped where the namespace or /dev/net/tun cannot be had. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/net_backend.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"
#include "tests/skip.h"

#define TAP_NAME "vmlabtap0"

struct tap_fixture {
    struct mock_virtio m;
    struct net_backend *be;
    int refuse;                         /* receive answers -EAGAIN */
    unsigned frames;
    uint8_t last[64];
    int wire;                           /* a packet socket on the TAP: transmits frames */
    int ifindex;
};

static int take_frame(void *opaque, const void *frame, size_t len)
{
    struct tap_fixture *f = opaque;

    if (f->refuse)
        return -EAGAIN;
    const uint8_t *b = frame;
    if (len < 15 || b[12] != 0x88 || b[13] != 0xb5)
        return 0;                       /* the kernel's own (IPv6 neighbour discovery...) */
    f->frames++;
    memcpy(f->last, frame, len < sizeof(f->last) ? len : sizeof(f->last));
    return 0;
}

/* A namespace, the backend on a new TAP (deterministic: the software CPU's clock), the link
 * up and a packet socket on it. Returns a reason to skip, or NULL. */
static const char *tap_open(struct tap_fixture *f, int deterministic)
{
    char err[256] = "";
    struct ifreq ifr;

    memset(f, 0, sizeof(*f));
    if (unshare(CLONE_NEWNET) < 0)
        return "unshare(CLONE_NEWNET) refused: a network namespace needs root";
    if (access("/dev/net/tun", R_OK | W_OK) < 0)
        return "no /dev/net/tun";
    ck_assert_int_eq(mock_virtio_init(&f->m, 1 << 20, 1), 0);
    f->m.env.deterministic = deterministic;
    ck_assert_msg(net_tap_create("tap=" TAP_NAME, &f->m.env, &f->be, err, sizeof(err)) == 0,
                  "%s", err);
    f->be->port = (struct net_port){ .receive = take_frame, .opaque = f };
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(s, 0);
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, TAP_NAME);
    ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
    f->ifindex = (int)if_nametoindex(TAP_NAME);
    ck_assert_int_gt(f->ifindex, 0);
    f->wire = socket(AF_PACKET, SOCK_RAW, 0);
    ck_assert_int_ge(f->wire, 0);
    return NULL;
}

/* The interface transmits one 60-byte frame (ethertype 0x88b5, the local experimental one)
 * tagged `tag`: the TAP's reader gets it. */
static void wire_send(struct tap_fixture *f, uint8_t tag)
{
    uint8_t frame[60] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5 };
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = f->ifindex,
                              .sll_halen = ETH_ALEN };

    frame[14] = tag;
    memcpy(to.sll_addr, frame, ETH_ALEN);
    ck_assert_int_eq(sendto(f->wire, frame, sizeof(frame), 0, (struct sockaddr *)&to,
                            sizeof(to)), (ssize_t)sizeof(frame));
}

static int readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, ms) == 1;
}

static void tap_close(struct tap_fixture *f)
{
    f->be->ops->destroy(f->be);
    close(f->wire);
    mock_virtio_destroy(&f->m);
}

START_TEST(kvm_reads_when_the_tap_has_a_frame)
{
    struct tap_fixture f;
    const char *why = tap_open(&f, 0);

    if (why)
        SKIP_TEST("%s", why);
    int fd = f.be->ops->poll_fd ? f.be->ops->poll_fd(f.be) : -1;
    ck_assert_msg(fd >= 0, "no poll_fd on KVM: frames would wait for a 1 ms timer");
    ck_assert_uint_eq(f.m.ntimers, 0);
    ck_assert(!readable(fd, 0));
    wire_send(&f, 1);
    ck_assert(readable(fd, 2000));
    f.be->ops->poll(f.be);
    ck_assert_uint_eq(f.frames, 1);
    ck_assert_uint_eq(f.last[14], 1);
    ck_assert(!readable(fd, 0));
    /* The device is full: the frame is held and the TAP, readable with the next one, does
     * not make the poll_fd readable; resume hands both over and watching starts again. */
    f.refuse = 1;
    wire_send(&f, 2);
    ck_assert(readable(fd, 2000));
    f.be->ops->poll(f.be);
    ck_assert_uint_eq(f.frames, 1);
    wire_send(&f, 3);
    ck_assert(!readable(fd, 50));
    f.refuse = 0;
    f.be->ops->resume(f.be);
    ck_assert_uint_eq(f.frames, 3);
    ck_assert_uint_eq(f.last[14], 3);
    wire_send(&f, 4);
    ck_assert(readable(fd, 2000));
    f.be->ops->poll(f.be);
    ck_assert_uint_eq(f.frames, 4);
    ck_assert_uint_eq(f.m.ntimers, 0);
    ck_assert_str_eq(mock_virtio_log(&f.m), "");
    tap_close(&f);
}
END_TEST

START_TEST(software_cpu_reads_on_its_clock)
{
    struct tap_fixture f;
    const char *why = tap_open(&f, 1);

    if (why)
        SKIP_TEST("%s", why);
    ck_assert_int_eq(f.be->ops->poll_fd ? f.be->ops->poll_fd(f.be) : -1, -1);
    wire_send(&f, 7);
    usleep(20000);                      /* the kernel has queued it: it still waits */
    ck_assert_uint_eq(f.frames, 0);
    mock_virtio_advance(&f.m, 999999);
    ck_assert_uint_eq(f.frames, 0);
    mock_virtio_advance(&f.m, 1);
    ck_assert_uint_eq(f.frames, 1);
    ck_assert_uint_eq(f.last[14], 7);
    tap_close(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("net_tap");
    TCase *t = tcase_create("tap");

    tcase_add_test(t, kvm_reads_when_the_tap_has_a_frame);
    tcase_add_test(t, software_cpu_reads_on_its_clock);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
