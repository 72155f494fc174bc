/* vmlab's side of the slirp helper stream (devices/net/net_slirp.c, slirp_proto.h), with
 * the test playing the helper on a socketpair: requests carry the clock's time, the
 * helper's frames reach the device in order, its timers become clock timers that ask it
 * to run them; and what a broken or hostile helper sends (a short frame, an oversize
 * length, a type it never sends, too many timers, dying) gives one clear log line, a
 * backend that drops frames from then on, and nothing else. The real helper
 * (build/vmlab-slirp) is tested end to end by test_virtio_net and tests/cli/net.sh. The
 * shared-memory rings under the stream (slirp_link.h) are tested here alone. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/net_backend.h"
#include "devices/net/slirp_proto.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

struct fake {
    struct mock_virtio m;               /* its clock and its captured log */
    int peer;                           /* the helper's end */
    struct net_backend *be;
    unsigned frames;
    size_t last_len;
    uint8_t last[64];
    struct slirp_inbuf in;              /* what vmlab sent */
    struct slirp_shared *shm;           /* shared with vmlab (fake_open_shared), or NULL */
};

/* The fake helper's end of the stream: the socket, and the rings when memory is shared. */
static struct slirp_link helper_link(struct fake *f)
{
    return (struct slirp_link){ .fd = f->peer, .in = f->shm ? &f->shm->to_helper : NULL,
                                .out = f->shm ? &f->shm->to_vmlab : NULL };
}

static int take_frame(void *opaque, const void *frame, size_t len)
{
    struct fake *f = opaque;

    f->frames++;
    f->last_len = len;
    memcpy(f->last, frame, len < sizeof(f->last) ? len : sizeof(f->last));
    return 0;
}

static void reply(struct fake *f, uint32_t type, uint64_t arg, uint64_t at, const void *p,
                  size_t len)
{
    struct slirp_link l = helper_link(f);

    ck_assert_int_eq(slirp_msg_write(&l, type, arg, at, p, len, -1), 0);
}

/* What vmlab sent: one request header (and its payload into buf). */
static struct slirp_msg request(struct fake *f, void *buf, size_t buflen)
{
    struct slirp_link l = helper_link(f);
    struct slirp_msg m;
    const uint8_t *payload;

    ck_assert_int_eq(slirp_inbuf_take(&f->in, &l, &m, &payload, 0, 1000), 0);
    ck_assert_uint_le(m.len, buflen);
    memcpy(buf, payload, m.len);
    return m;
}

/* A backend attached to the fake helper, CONFIG answered with DONE (no poll); with
 * ready_fd (a wake pipe's read end, or -1) and the clock of a KVM run when !deterministic;
 * with memory shared with the helper (its rings and host_ready) when shared. */
static void fake_open_shared(struct fake *f, int ready_fd, int deterministic, int shared)
{
    char err[256] = "", args[64];
    int sv[2];

    memset(f, 0, sizeof(*f));
    if (shared) {                       /* vmlab munmaps it at the end */
        void *p = mmap(NULL, sizeof(*f->shm), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(p, MAP_FAILED);
        f->shm = p;
    }
    ck_assert_int_eq(mock_virtio_init(&f->m, 1 << 20, 1), 0);
    f->m.env.deterministic = deterministic;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    f->peer = sv[1];
    f->m.now_ns = 5000;
    reply(f, SLIRP_MSG_DONE, 0, SLIRP_POLL_NONE, NULL, 0);
    ck_assert_msg(net_slirp_attach(sv[0], ready_fd, f->shm, "net=user,restrict=on", &f->m.env,
                                   &f->be, err, sizeof(err)) == 0, "%s", err);
    f->be->port = (struct net_port){ .receive = take_frame, .opaque = f };
    struct slirp_msg m = request(f, args, sizeof(args) - 1);
    ck_assert_uint_eq(m.type, SLIRP_MSG_CONFIG);
    ck_assert_uint_eq(m.at, 5000);
    args[m.len] = 0;
    ck_assert_str_eq(args, "net=user,restrict=on");
}

static void fake_open_with(struct fake *f, int ready_fd, int deterministic)
{
    fake_open_shared(f, ready_fd, deterministic, 0);
}

static void fake_open(struct fake *f)
{
    fake_open_with(f, -1, 1);
}

/* Nothing vmlab sent that the fake helper has not taken. */
static int helper_idle(struct fake *f)
{
    struct slirp_link l = helper_link(f);

    return f->in.len == f->in.pos && slirp_link_sleep(&l, 0) == -ETIMEDOUT;
}

static void fake_close(struct fake *f)
{
    f->be->ops->destroy(f->be);
    close(f->peer);
    mock_virtio_destroy(&f->m);
}

static const uint8_t frame60[60] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x55, 10, 0, 2,
                                     2, 0x08, 0x06 };

START_TEST(frames_timers_and_time)
{
    struct fake f;
    uint8_t buf[128];

    fake_open(&f);
    /* The guest sends a frame at 7000 ns: the helper answers with two frames, a timer due
     * at 9000 and a poll due at 12000. */
    f.m.now_ns = 7000;
    reply(&f, SLIRP_MSG_FRAME, 0, 0, frame60, 60);
    reply(&f, SLIRP_MSG_TIMER_MOD, 42, 9000, NULL, 0);
    reply(&f, SLIRP_MSG_FRAME, 0, 0, frame60, 42);
    reply(&f, SLIRP_MSG_DONE, 0, 12000, NULL, 0);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), 0);
    struct slirp_msg m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_FRAME);
    ck_assert_uint_eq(m.at, 7000);
    ck_assert_uint_eq(m.len, 60);
    ck_assert_uint_eq(f.frames, 2);
    ck_assert_uint_eq(f.last_len, 42);
    /* At 9000 the timer asks the helper to run timer 42, at 12000 the poll comes. */
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_KEEP, NULL, 0);
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_NONE, NULL, 0);
    mock_virtio_advance(&f.m, 2000);
    m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_TIMER);
    ck_assert_uint_eq(m.arg, 42);
    ck_assert_uint_eq(m.at, 9000);
    mock_virtio_advance(&f.m, 3000);
    m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_POLL);
    ck_assert_uint_eq(m.at, 12000);
    /* A timer freed before it is due never fires. */
    reply(&f, SLIRP_MSG_TIMER_MOD, 7, 20000, NULL, 0);
    reply(&f, SLIRP_MSG_TIMER_FREE, 7, 0, NULL, 0);
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_NONE, NULL, 0);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), 0);
    request(&f, buf, sizeof(buf));
    mock_virtio_advance(&f.m, 100000);
    struct slirp_link l = { .fd = f.peer };
    ck_assert_int_eq(slirp_link_sleep(&l, 0), -ETIMEDOUT);
    ck_assert_str_eq(mock_virtio_log(&f.m), "");
    fake_close(&f);
}
END_TEST

START_TEST(short_frame_is_dropped)
{
    struct fake f;
    uint8_t buf[128];

    fake_open(&f);
    reply(&f, SLIRP_MSG_FRAME, 0, 0, frame60, 3);
    reply(&f, SLIRP_MSG_FRAME, 0, 0, frame60, 60);
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_NONE, NULL, 0);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), 0);
    request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(f.frames, 1);
    ck_assert_uint_eq(f.last_len, 60);
    ck_assert_ptr_nonnull(strstr(mock_virtio_log(&f.m), "frame of 3 bytes is shorter than an "
                                 "Ethernet header; dropped"));
    /* The link is still up. */
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_NONE, NULL, 0);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), 0);
    fake_close(&f);
}
END_TEST

/* Each of these ends the link: one line naming what was wrong, frames dropped from then on,
 * nothing delivered, and the line said once. */
START_TEST(hostile_helper)
{
    struct fake f;
    uint8_t buf[128];
    struct slirp_msg huge = { .type = SLIRP_MSG_FRAME, .len = 1u << 30 };
    static const char *const want[] = {
        "message length 1073741824 is over 65536",
        "message type 77 is not one it sends",
        "timer 65: more than 64 timers",
        "timer 0: bad id",
        "it exited (end of its stream)",
        "it exited (end of its stream)",
    };

    fake_open(&f);
    switch (_i) {
    case 0:
        ck_assert_int_eq(write(f.peer, &huge, sizeof(huge)), (ssize_t)sizeof(huge));
        break;
    case 1:
        reply(&f, 77, 0, 0, NULL, 0);
        break;
    case 2:
        for (uint64_t id = 1; id <= 65; id++)
            reply(&f, SLIRP_MSG_TIMER_MOD, id, 1u << 20, NULL, 0);
        break;
    case 3:
        reply(&f, SLIRP_MSG_TIMER_MOD, 0, 1, NULL, 0);
        break;
    case 4:                             /* the frame cut short, then the helper is gone */
        ck_assert_int_eq(write(f.peer, &huge, 8), 8);
        shutdown(f.peer, SHUT_WR);
        break;
    case 5:
        shutdown(f.peer, SHUT_WR);
        break;
    }
    ck_assert_int_lt(f.be->ops->send(f.be, frame60, 60), 0);
    ck_assert_uint_eq(f.frames, 0);
    const char *log = mock_virtio_log(&f.m);
    ck_assert_msg(strstr(log, want[_i]) && strstr(log, "virtio-net has no link from now on"),
                  "log: %s", log);
    size_t len = strlen(log);
    /* No more asking: sends fail at once, timers the helper set are gone, nothing logged. */
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), -EPIPE);
    mock_virtio_advance(&f.m, 1u << 21);
    ck_assert_uint_eq(strlen(mock_virtio_log(&f.m)), len);
    (void)buf;
    fake_close(&f);
}
END_TEST

START_TEST(config_error_is_the_helpers_line)
{
    struct mock_virtio m;
    struct net_backend *be = NULL;
    char err[256] = "";
    int sv[2];
    static const char line[] = "virtio-net: hostfwd=x is not [tcp|udp]:...";

    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct slirp_link l = { .fd = sv[1] };
    ck_assert_int_eq(slirp_msg_write(&l, SLIRP_MSG_ERROR, 0, 0, line, strlen(line), -1), 0);
    ck_assert_int_eq(net_slirp_attach(sv[0], -1, NULL, "net=user,hostfwd=x", &m.env, &be, err,
                                      sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, line);
    ck_assert_ptr_null(be);
    close(sv[1]);
    mock_virtio_destroy(&m);
}
END_TEST

/* KVM: the helper's wake pipe is the backend's poll_fd; a byte there makes the poll ask
 * for a POLL at once, whose frames reach the device; a poll with nothing rung asks
 * nothing; the pipe is left empty (level-triggered epoll would spin otherwise). */
START_TEST(ready_pipe_asks_for_a_poll)
{
    struct fake f;
    uint8_t buf[128];
    int pipefd[2];
    char left;

    ck_assert_int_eq(pipe(pipefd), 0);
    fake_open_with(&f, pipefd[0], 0);
    ck_assert_int_eq(f.be->ops->poll_fd(f.be), pipefd[0]);
    f.be->ops->poll(f.be);
    ck_assert(helper_idle(&f));
    ck_assert_int_eq(write(pipefd[1], "rr", 2), 2);
    f.m.now_ns = 8000;
    reply(&f, SLIRP_MSG_FRAME, 0, 0, frame60, 60);
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_KEEP, NULL, 0);
    f.be->ops->poll(f.be);
    struct slirp_msg m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_POLL);
    ck_assert_uint_eq(m.at, 8000);
    ck_assert_uint_eq(f.frames, 1);
    ck_assert(helper_idle(&f));         /* one POLL for the two bytes */
    ck_assert_int_eq(read(pipefd[0], &left, 1), -1);
    ck_assert_int_eq(errno, EAGAIN);
    f.be->ops->poll(f.be);
    ck_assert(helper_idle(&f));
    ck_assert_str_eq(mock_virtio_log(&f.m), "");
    close(pipefd[1]);
    fake_close(&f);
}
END_TEST

/* The helper's end of the pipe closing (it died) is one line, no link, and the pipe leaves
 * the epoll set (closed: poll_fd -1); a later poll asks nothing and logs nothing. */
START_TEST(ready_pipe_closed_is_a_lost_helper)
{
    struct fake f;
    int pipefd[2];

    ck_assert_int_eq(pipe(pipefd), 0);
    fake_open_with(&f, pipefd[0], 0);
    close(pipefd[1]);
    f.be->ops->poll(f.be);
    const char *log = mock_virtio_log(&f.m);
    ck_assert_msg(strstr(log, "slirp helper: it exited (end of its wake pipe); virtio-net has "
                         "no link from now on"), "log: %s", log);
    ck_assert_int_eq(f.be->ops->poll_fd(f.be), -1);
    size_t len = strlen(log);
    f.be->ops->poll(f.be);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), -EPIPE);
    ck_assert_uint_eq(strlen(mock_virtio_log(&f.m)), len);
    fake_close(&f);
}
END_TEST

/* The software CPU: no wake pipe is kept (one handed in is closed), the poll asks nothing,
 * whatever a helper writes: host sockets are looked at only at the clock's times. */
START_TEST(software_cpu_has_no_ready_pipe)
{
    struct fake f;
    int pipefd[2];

    ck_assert_int_eq(pipe(pipefd), 0);
    signal(SIGPIPE, SIG_IGN);
    fake_open_with(&f, pipefd[0], 1);
    ck_assert_int_eq(f.be->ops->poll_fd(f.be), -1);
    ck_assert_int_eq(write(pipefd[1], "r", 1), -1);    /* the read end is gone */
    ck_assert_int_eq(errno, EPIPE);
    f.be->ops->poll(f.be);
    ck_assert(helper_idle(&f));
    close(pipefd[1]);
    fake_close(&f);
}
END_TEST

/* The software CPU with memory shared with the helper (--watch): while slirp has host
 * sockets (DONE arg 1) vmlab looks at host_ready from 1 us after a guest frame, the looks
 * growing to a quarter of the time since it, and asks for a POLL only when the flag is set
 * (clearing it first), or at the quiet 1 ms looks once the frame is 4 ms old; without host
 * sockets (DONE arg 0) it stops looking. */
START_TEST(watch_asks_only_when_host_ready)
{
    struct fake f;
    uint8_t buf[128];
    struct slirp_msg m;

    fake_open_shared(&f, -1, 1, 1);
    f.m.now_ns = 7000;
    reply(&f, SLIRP_MSG_DONE, 1, SLIRP_POLL_NONE, NULL, 0);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), 0);
    m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_FRAME);
    ck_assert_uint_eq(m.arg, 1);
    /* Looks at 8000, 9000, ...: nothing asked while the flag is clear. */
    mock_virtio_advance(&f.m, 3000);
    ck_assert(helper_idle(&f));
    /* The helper saw a host socket ready: the next look (11000) asks, once. */
    atomic_store(&f.shm->host_ready, 1);
    reply(&f, SLIRP_MSG_FRAME, 0, 0, frame60, 60);
    reply(&f, SLIRP_MSG_DONE, 1, SLIRP_POLL_NONE, NULL, 0);
    mock_virtio_advance(&f.m, 1000);
    m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_POLL);
    ck_assert_uint_eq(m.at, 11000);
    ck_assert_uint_eq(f.frames, 1);
    ck_assert_uint_eq(atomic_load(&f.shm->host_ready), 0);
    ck_assert(helper_idle(&f));
    /* Looks only until the frame is 4 ms old: then the quiet look, 1 ms on, is a POLL
     * whatever the flag says; the helper now has no host sockets, so nothing after it. */
    mock_virtio_advance(&f.m, 3990000);
    ck_assert(helper_idle(&f));
    reply(&f, SLIRP_MSG_DONE, 0, SLIRP_POLL_NONE, NULL, 0);
    mock_virtio_advance(&f.m, 1100000);
    m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_POLL);
    ck_assert_uint_ge(m.at, 7000 + 4000000 + 1000000);
    ck_assert_uint_le(m.at, 7000 + 5000000 + 1250000);
    atomic_store(&f.shm->host_ready, 1);
    mock_virtio_advance(&f.m, 10000000);
    ck_assert(helper_idle(&f));
    ck_assert_str_eq(mock_virtio_log(&f.m), "");
    fake_close(&f);
}
END_TEST

/* KVM with shared memory: the rings carry the stream, but host_ready means nothing there
 * (the wake pipe does that job): no looks, the helper's own POLL times stand. */
START_TEST(kvm_does_not_look_at_host_ready)
{
    struct fake f;
    uint8_t buf[128];

    fake_open_shared(&f, -1, 0, 1);
    f.m.now_ns = 7000;
    atomic_store(&f.shm->host_ready, 1);
    reply(&f, SLIRP_MSG_DONE, 1, SLIRP_POLL_NONE, NULL, 0);
    ck_assert_int_eq(f.be->ops->send(f.be, frame60, 60), 0);
    struct slirp_msg m = request(&f, buf, sizeof(buf));
    ck_assert_uint_eq(m.type, SLIRP_MSG_FRAME);
    ck_assert_uint_eq(m.arg, 0);
    mock_virtio_advance(&f.m, 10000000);
    ck_assert(helper_idle(&f));
    fake_close(&f);
}
END_TEST

/* Two ends of a shared-memory link (slirp_link.h) in one process: a's out is b's in. */
struct ring_pair {
    struct slirp_shared *shm;
    struct slirp_link a, b;
};

static void ring_pair_open(struct ring_pair *p)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->shm = calloc(1, sizeof(*p->shm));
    ck_assert_ptr_nonnull(p->shm);
    p->a = (struct slirp_link){ .fd = sv[0], .out = &p->shm->to_helper,
                                .in = &p->shm->to_vmlab };
    p->b = (struct slirp_link){ .fd = sv[1], .out = &p->shm->to_vmlab,
                                .in = &p->shm->to_helper };
}

static void ring_pair_close(struct ring_pair *p)
{
    if (p->a.fd >= 0)
        close(p->a.fd);
    if (p->b.fd >= 0)
        close(p->b.fd);
    free(p->shm);
}

/* Messages cross a ring whole, across its wrap-around, in order; a reader with nothing to
 * take sleeps on the socket and one that is asleep is rung (one byte) by the writer. */
START_TEST(ring_carries_messages_and_rings_a_sleeper)
{
    static struct slirp_inbuf in;
    struct ring_pair p;
    static uint8_t big[SLIRP_MSG_PAYLOAD_MAX];
    const uint8_t *payload;
    struct slirp_msg m;
    char bell[8];

    ring_pair_open(&p);
    memset(&in, 0, sizeof(in));
    for (unsigned i = 0; i < 20; i++) {     /* 20 x 64 KiB: the 512 KiB ring wraps */
        memset(big, (int)i, sizeof(big));
        ck_assert_int_eq(slirp_msg_write(&p.a, SLIRP_MSG_FRAME, i, 1000 + i, big,
                                         sizeof(big) - i, 0), 0);
        ck_assert_int_eq(slirp_inbuf_take(&in, &p.b, &m, &payload, 0, 0), 0);
        ck_assert_uint_eq(m.arg, i);
        ck_assert_uint_eq(m.at, 1000 + i);
        ck_assert_uint_eq(m.len, sizeof(big) - i);
        ck_assert_uint_eq(payload[0], i);
        ck_assert_uint_eq(payload[m.len - 1], i);
    }
    ck_assert_int_eq(slirp_link_sleep(&p.b, 0), -ETIMEDOUT);
    ck_assert_int_eq(recv(p.b.fd, bell, sizeof(bell), MSG_DONTWAIT), -1);
    atomic_store(&p.shm->to_helper.sleeping, 1);
    ck_assert_int_eq(slirp_msg_write(&p.a, SLIRP_MSG_POLL, 0, 5, NULL, 0, 0), 0);
    ck_assert_int_eq(recv(p.b.fd, bell, sizeof(bell), MSG_DONTWAIT), 1);
    atomic_store(&p.shm->to_helper.sleeping, 0);
    ck_assert_int_eq(slirp_inbuf_take(&in, &p.b, &m, &payload, 0, 0), 0);
    ck_assert_uint_eq(m.type, SLIRP_MSG_POLL);
    ring_pair_close(&p);
}
END_TEST

/* A ring whose index claims more than it holds is refused both ways, and a sleeper whose
 * peer is gone learns it from the socket. */
START_TEST(broken_ring_index_and_gone_peer)
{
    struct ring_pair p;
    uint8_t buf[64];
    struct iovec v = { buf, sizeof(buf) };

    ring_pair_open(&p);
    atomic_store(&p.shm->to_helper.head, SLIRP_RING_BYTES + 1);
    ck_assert_int_eq(slirp_link_recv(&p.b, buf, sizeof(buf)), -EPROTO);
    ck_assert_int_eq(slirp_link_send(&p.a, &v, 1, 0), -EPROTO);
    atomic_store(&p.shm->to_helper.head, 0);
    atomic_store(&p.shm->to_helper.tail, 5);    /* a reader ahead of the writer */
    ck_assert_int_eq(slirp_link_recv(&p.b, buf, sizeof(buf)), -EPROTO);
    atomic_store(&p.shm->to_helper.tail, 0);
    /* Last words, then gone: the words are read before the end is seen. */
    ck_assert_int_eq(slirp_link_send(&p.a, &v, 1, 0), 0);
    close(p.a.fd);
    p.a.fd = -1;
    ck_assert_int_eq(slirp_link_sleep(&p.b, 1000), 0);
    ck_assert_int_eq(slirp_link_recv(&p.b, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    ck_assert_int_eq(slirp_link_sleep(&p.b, 1000), -EPIPE);
    ring_pair_close(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("net_slirp");
    TCase *t = tcase_create("helper stream");

    tcase_add_test(t, frames_timers_and_time);
    tcase_add_test(t, short_frame_is_dropped);
    tcase_add_loop_test(t, hostile_helper, 0, 6);
    tcase_add_test(t, config_error_is_the_helpers_line);
    tcase_add_test(t, ready_pipe_asks_for_a_poll);
    tcase_add_test(t, ready_pipe_closed_is_a_lost_helper);
    tcase_add_test(t, software_cpu_has_no_ready_pipe);
    tcase_add_test(t, watch_asks_only_when_host_ready);
    tcase_add_test(t, kvm_does_not_look_at_host_ready);
    tcase_add_test(t, ring_carries_messages_and_rings_a_sleeper);
    tcase_add_test(t, broken_ring_index_and_gone_peer);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
