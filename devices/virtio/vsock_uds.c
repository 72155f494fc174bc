/* Firecracker's hybrid Unix socket as virtio-vsock's host side (vsock_uds.h). */
#include "devices/virtio/vsock_uds.h"
#include "devices/virtio/virtio_vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define UDS_MAX_CLIENTS (VSOCK_MAX_CONNS + VSOCK_UDS_MAX_HANDSHAKES)
#define UDS_ACCEPTS_PER_POLL 16

enum uds_state { UDS_HANDSHAKE, UDS_WAIT_OK, UDS_OPEN };

struct uds_client {
    struct vsock_uds *u;
    int fd;                             /* -1 once closed */
    enum uds_state state;
    struct vsock_conn *conn;
    char line[VSOCK_UDS_LINE_MAX];
    size_t line_len;
    char reply[24];                     /* "OK <port>\n" not yet written */
    size_t reply_len, reply_off;
    int watch_out;                      /* EPOLLOUT is in its epoll interest */
};

struct vsock_uds {
    struct vsock_dev *d;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int lfd;
    /* Every socket, edge-triggered: readable when one of them has news since the last
     * poll, so the VMM can wake for it (poll_fd) instead of polling on a timer. */
    int epfd;
    dev_t dev;
    ino_t ino;
    struct uds_client *clients[UDS_MAX_CLIENTS];
    unsigned n;
    struct pollfd pfds[UDS_MAX_CLIENTS + 1];
};

int vsock_uds_parse_connect(const char *line, size_t len, uint32_t *port)
{
    static const char verb[] = "CONNECT ";
    uint64_t v = 0;
    size_t i = sizeof(verb) - 1;

    if (len <= i || memcmp(line, verb, i) || len - i > 10)
        return -EINVAL;
    for (; i < len; i++) {
        if (line[i] < '0' || line[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(line[i] - '0');
    }
    if (v > UINT32_MAX)
        return -EINVAL;
    *port = (uint32_t)v;
    return 0;
}

static void client_close(struct uds_client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    cl->conn = NULL;
}

/* Drops closed clients from the table. */
static void compact(struct vsock_uds *u)
{
    unsigned k = 0;

    for (unsigned i = 0; i < u->n; i++) {
        if (u->clients[i]->fd >= 0)
            u->clients[k++] = u->clients[i];
        else
            free(u->clients[i]);
    }
    u->n = k;
}

/* Edges only: a socket that stays readable while the device has no room for its bytes
 * does not keep waking the VMM; the device reads it at a later poll. Writable edges only
 * while bytes wait for room (every read by the peer would be one). A failure leaves the
 * socket to the periodic poll. */
static void watch_fd(struct vsock_uds *u, int fd, int op, int out)
{
    struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0) };

    if (u->epfd >= 0)
        epoll_ctl(u->epfd, op, fd, &e);
}

static void watch_out(struct uds_client *cl, int out)
{
    if (cl->fd >= 0 && cl->watch_out != out) {
        watch_fd(cl->u, cl->fd, EPOLL_CTL_MOD, out);
        cl->watch_out = out;
    }
}

static struct uds_client *client_add(struct vsock_uds *u, int fd, enum uds_state state)
{
    struct uds_client *cl;

    if (u->n == UDS_MAX_CLIENTS)
        compact(u);
    if (u->n == UDS_MAX_CLIENTS || !(cl = calloc(1, sizeof(*cl))))
        return NULL;
    watch_fd(u, fd, EPOLL_CTL_ADD, 0);
    cl->u = u;
    cl->fd = fd;
    cl->state = state;
    u->clients[u->n++] = cl;
    return cl;
}

static void write_reply(struct uds_client *cl)
{
    while (cl->reply_off < cl->reply_len) {
        ssize_t w = send(cl->fd, cl->reply + cl->reply_off, cl->reply_len - cl->reply_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch_out(cl, 1);
            return;
        }
        if (w <= 0) {
            struct vsock_conn *c = cl->conn;
            client_close(cl);
            if (c)
                vsock_host_close(cl->u->d, c);
            return;
        }
        cl->reply_off += (size_t)w;
    }
}

/* Reads the CONNECT line, never past its newline: what follows is stream data. */
static void handshake_read(struct uds_client *cl)
{
    struct vsock_uds *u = cl->u;
    char buf[VSOCK_UDS_LINE_MAX];
    size_t room = sizeof(cl->line) - cl->line_len;
    ssize_t n = recv(cl->fd, buf, room, MSG_PEEK | MSG_DONTWAIT);
    uint32_t port;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {                       /* end of stream or error before the newline */
        client_close(cl);
        return;
    }
    char *nl = memchr(buf, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
    if (recv(cl->fd, cl->line + cl->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
        client_close(cl);
        return;
    }
    cl->line_len += take;
    if (!nl) {
        if (cl->line_len == sizeof(cl->line))  /* longer than any CONNECT line */
            client_close(cl);
        return;
    }
    if (vsock_uds_parse_connect(cl->line, cl->line_len - 1, &port) ||
        vsock_host_connect(u->d, port, cl, &cl->conn)) {
        client_close(cl);
        return;
    }
    cl->state = UDS_WAIT_OK;
}

static int uds_connect(void *host, struct vsock_conn *c, uint32_t port, void **hctx)
{
    struct vsock_uds *u = host;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct uds_client *cl;
    int fd, rc;

    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", u->path, port) >=
        (int)sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (!(cl = client_add(u, fd, UDS_OPEN))) {
        close(fd);
        return -EMFILE;
    }
    cl->conn = c;
    *hctx = cl;
    return 0;
}

static void uds_established(void *host, void *hctx, uint32_t host_port)
{
    struct uds_client *cl = hctx;

    (void)host;
    cl->state = UDS_OPEN;
    cl->reply_len = (size_t)snprintf(cl->reply, sizeof(cl->reply), "OK %u\n", host_port);
    cl->reply_off = 0;
    write_reply(cl);
}

static ssize_t uds_send(void *host, void *hctx, const void *buf, size_t len)
{
    struct uds_client *cl = hctx;

    (void)host;
    if (cl->fd < 0)
        return -EPIPE;
    if (cl->reply_off < cl->reply_len)
        return 0;                       /* the OK line goes first */
    for (;;) {
        ssize_t w = send(cl->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            watch_out(cl, 1);
            return 0;
        }
        return -errno;
    }
}

static ssize_t uds_recv(void *host, void *hctx, void *buf, size_t len)
{
    struct uds_client *cl = hctx;

    (void)host;
    if (cl->fd < 0)
        return -EPIPE;
    for (;;) {
        ssize_t r = recv(cl->fd, buf, len, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static void uds_shutdown(void *host, void *hctx, uint32_t flags)
{
    struct uds_client *cl = hctx;

    (void)host;
    if (cl->fd >= 0 && (flags & VSOCK_SHUTDOWN_SEND))
        shutdown(cl->fd, SHUT_WR);
}

static void uds_closed(void *host, void *hctx)
{
    (void)host;
    client_close(hctx);
}

static void accept_clients(struct vsock_uds *u)
{
    for (int i = 0; i < UDS_ACCEPTS_PER_POLL; i++) {
        int fd = accept4(u->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        unsigned handshakes = 0;

        if (fd < 0)
            return;
        for (unsigned k = 0; k < u->n; k++)
            handshakes += u->clients[k]->fd >= 0 && u->clients[k]->state == UDS_HANDSHAKE;
        /* Past the limits the client is closed at once: the backlog never fills with
         * connections nobody will serve. */
        if (handshakes >= VSOCK_UDS_MAX_HANDSHAKES || !client_add(u, fd, UDS_HANDSHAKE))
            close(fd);
    }
}

static void uds_poll(void *host)
{
    struct vsock_uds *u = host;
    struct epoll_event evs[64];
    unsigned n;

    /* Consume the edges first: news that comes while this poll serves is a new edge, so
     * no wake-up is lost. The poll below looks at every socket anyway. */
    while (u->epfd >= 0 && epoll_wait(u->epfd, evs, 64, 0) == 64)
        ;
    compact(u);
    n = u->n;
    for (unsigned i = 0; i < n; i++) {
        struct uds_client *cl = u->clients[i];
        short ev = 0;
        if (cl->state == UDS_HANDSHAKE)
            ev = POLLIN;
        else if (cl->state == UDS_OPEN && cl->conn)
            ev = (short)((vsock_conn_wants_recv(cl->conn) ? POLLIN : 0) |
                         (cl->reply_off < cl->reply_len || vsock_conn_wants_send(cl->conn)
                          ? POLLOUT : 0));
        u->pfds[i] = (struct pollfd){ .fd = ev ? cl->fd : -1, .events = ev };
    }
    u->pfds[n] = (struct pollfd){ .fd = u->lfd, .events = POLLIN };
    if (poll(u->pfds, n + 1, 0) <= 0)
        return;
    for (unsigned i = 0; i < n; i++) {
        struct uds_client *cl = u->clients[i];
        short re = u->pfds[i].revents;
        if (!re || cl->fd < 0)
            continue;
        if (cl->state == UDS_HANDSHAKE) {
            handshake_read(cl);
            continue;
        }
        if ((re & POLLOUT) && cl->reply_off < cl->reply_len)
            write_reply(cl);
        if (cl->fd >= 0 && cl->conn && (re & POLLOUT))
            vsock_host_writable(u->d, cl->conn);
        if (cl->fd >= 0 && cl->conn && (re & (POLLIN | POLLHUP | POLLERR)))
            vsock_host_readable(u->d, cl->conn);
    }
    if (u->pfds[n].revents)
        accept_clients(u);
    for (unsigned i = 0; i < u->n; i++) {      /* writable edges no longer needed */
        struct uds_client *cl = u->clients[i];
        if (cl->watch_out && !(cl->reply_off < cl->reply_len ||
                               (cl->conn && vsock_conn_wants_send(cl->conn))))
            watch_out(cl, 0);
    }
}

static void uds_destroy(void *host)
{
    struct vsock_uds *u = host;
    struct stat st;

    for (unsigned i = 0; i < u->n; i++) {
        client_close(u->clients[i]);
        free(u->clients[i]);
    }
    /* Remove the socket only if it is still the one we bound. */
    if (stat(u->path, &st) == 0 && st.st_dev == u->dev && st.st_ino == u->ino)
        unlink(u->path);
    close(u->lfd);
    if (u->epfd >= 0)
        close(u->epfd);
    free(u);
}

static int uds_poll_fd(void *host)
{
    return ((struct vsock_uds *)host)->epfd;
}

static const struct vsock_host_ops uds_ops = {
    .connect = uds_connect,
    .established = uds_established,
    .send = uds_send,
    .recv = uds_recv,
    .shutdown = uds_shutdown,
    .closed = uds_closed,
    .poll = uds_poll,
    .destroy = uds_destroy,
    .poll_fd = uds_poll_fd,
};

int vsock_uds_open(struct vsock_dev *d, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct vsock_uds *u;
    struct stat st;
    int rc;

    /* PATH_<port> must fit too, for guest-initiated connections. */
    if (strlen(path) + 11 >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "virtio-vsock: uds=%s: longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 12);
        return -ENAMETOOLONG;
    }
    if (!(u = calloc(1, sizeof(*u)))) {
        snprintf(err, errlen, "virtio-vsock: out of memory");
        return -ENOMEM;
    }
    u->d = d;
    memcpy(u->path, path, strlen(path) + 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    u->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->lfd < 0 || bind(u->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(u->lfd, 64) < 0 || stat(path, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "virtio-vsock: uds=%s: %s%s", path, strerror(-rc),
                 rc == -EADDRINUSE ? " (remove the old socket first)" : "");
        if (u->lfd >= 0)
            close(u->lfd);
        free(u);
        return rc;
    }
    u->dev = st.st_dev;
    u->ino = st.st_ino;
    u->epfd = epoll_create1(EPOLL_CLOEXEC);
    watch_fd(u, u->lfd, EPOLL_CTL_ADD, 0);
    vsock_dev_set_host(d, &uds_ops, u);
    return 0;
}
