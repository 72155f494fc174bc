/* Control-socket server: a non-blocking Unix stream listener and a fixed table of clients,
 * each with its own input and output buffer, serviced by poll() from the VM's run loop.
 * Framing: one request per line (CONTROL.md); a connection may carry many requests. */
#include "control.h"
#include "control_proto.h"
#include "unix_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Requests handled per client per call, so one chatty client cannot hold the VM. */
#define REQUESTS_PER_ROUND 16
/* Connections accepted per call, for the same reason. */
#define ACCEPTS_PER_ROUND 64
#define OUT_LIMIT (1024 * 1024)

struct client {
    int fd;                 /* -1: free slot */
    char *in;               /* CONTROL_MAX_MESSAGE + 1 bytes once allocated */
    size_t inlen;
    char *out;
    size_t outlen, outoff;
    uint64_t last_ms;       /* host monotonic, for the idle limit only */
    int eof;                /* peer shut down its writing side */
    int closing;            /* close once the output is flushed */
    int watch_out;          /* EPOLLOUT is in its wake-set interest (output is pending) */
};

struct control_server {
    int lfd;
    /* The listener and every client, edge-triggered: readable when one of them has news
     * since the last serve, so the VMM can wake for it (control_server_wake_fd) instead of
     * serving at its periodic poll. -1: no wake-ups, the periodic poll still serves. */
    int epfd;
    /* In epfd: written when a round leaves requests already read but not yet served (past
     * REQUESTS_PER_ROUND), so the next round comes at once, not at the periodic poll. */
    int again_fd;
    char *path;
    struct stat st;         /* the socket file we created: unlink only that one */
    const struct control_vm_ops *ops;
    void *vm;
    int idle_ms;
    struct client clients[CONTROL_MAX_CLIENTS];
    struct pollfd pfds[CONTROL_MAX_CLIENTS + 1];
    int slot_of[CONTROL_MAX_CLIENTS + 1];   /* pfds index -> client slot */
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Best effort: a socket missing from the wake set is still served at the periodic poll. */
static void watch_fd(struct control_server *s, int fd, int op, int out)
{
    struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0) };

    if (s->epfd >= 0)
        epoll_ctl(s->epfd, op, fd, &e);
}

int control_server_open(struct control_server **out, const char *path,
                        const struct control_vm_ops *ops, void *vm, char *err, size_t errlen)
{
    struct control_server *s;
    struct stat st;
    unsigned i;
    int fd;

    *out = NULL;
    fd = unix_listen(path, SOCK_STREAM, "control socket", "a running VM", &st, err, errlen);
    if (fd < 0)
        return fd;
    s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    s->lfd = fd;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->again_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    watch_fd(s, fd, EPOLL_CTL_ADD, 0);
    if (s->again_fd >= 0)
        watch_fd(s, s->again_fd, EPOLL_CTL_ADD, 0);
    s->ops = ops;
    s->vm = vm;
    s->idle_ms = CONTROL_IDLE_MS;
    for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
        s->clients[i].fd = -1;
    s->st = st;
    *out = s;
    return 0;
}

int control_server_fd(const struct control_server *s)
{
    return s->lfd;
}

int control_server_wake_fd(const struct control_server *s)
{
    return s->epfd;
}

void control_server_set_idle_timeout(struct control_server *s, int ms)
{
    s->idle_ms = ms;
}

static void client_drop(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Sends what is pending without blocking. 0 when all is out or more must wait, -1 when
 * the peer is gone. */
static int client_flush(struct client *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->outoff += (size_t)n;
        c->last_ms = now_ms();
    }
    c->outoff = c->outlen = 0;
    return 0;
}

static int client_queue(struct client *c, char *line)
{
    size_t len;
    char *p;

    if (!line)
        return -1;
    len = strlen(line);
    if (c->outlen + len + 1 > OUT_LIMIT) {
        free(line);
        return -1;
    }
    p = realloc(c->out, c->outlen + len + 1);
    if (!p) {
        free(line);
        return -1;
    }
    memcpy(p + c->outlen, line, len);
    p[c->outlen + len] = '\n';
    c->out = p;
    c->outlen += len + 1;
    free(line);
    return 0;
}

static int client_reply_error(struct client *c, const char *msg)
{
    return client_queue(c, control_error_response(msg));
}

/* Handles complete lines in the input buffer, up to REQUESTS_PER_ROUND, each once the
 * previous response has gone out (a client that does not read its answers is not served
 * on). -1: drop. */
static int client_process(struct control_server *s, struct client *c)
{
    unsigned done = 0;

    while (!c->closing && done < REQUESTS_PER_ROUND) {
        if (c->outlen) {
            if (client_flush(c) < 0)
                return -1;
            if (c->outlen)
                return 0;   /* the client is not reading yet: wait for POLLOUT */
        }
        char *nl = c->inlen ? memchr(c->in, '\n', c->inlen) : NULL;
        size_t len;

        if (!nl) {
            if (c->inlen > CONTROL_MAX_MESSAGE) {
                char msg[96];

                snprintf(msg, sizeof msg, "request exceeds the limit of %d bytes",
                         CONTROL_MAX_MESSAGE);
                c->closing = 1;     /* no way to find the next message boundary */
                return client_reply_error(c, msg);
            }
            if (c->eof) {
                /* The last message may end at the end of the stream instead of a newline. */
                c->closing = 1;
                if (c->inlen == 0)
                    return 0;
                if (client_queue(c, control_handle_message(s->ops, s->vm, c->in, c->inlen)))
                    return -1;
                c->inlen = 0;
            }
            return 0;
        }
        len = (size_t)(nl - c->in);
        if (client_queue(c, control_handle_message(s->ops, s->vm, c->in, len)) < 0)
            return -1;
        memmove(c->in, nl + 1, c->inlen - len - 1);
        c->inlen -= len + 1;
        done++;
    }
    return 0;
}

/* Reads what is available (never more than one message plus its newline). -1: drop. */
static int client_read(struct client *c)
{
    if (!c->in) {
        c->in = malloc(CONTROL_MAX_MESSAGE + 1);
        if (!c->in)
            return -1;
    }
    while (!c->eof && c->inlen < CONTROL_MAX_MESSAGE + 1) {
        ssize_t n = recv(c->fd, c->in + c->inlen, CONTROL_MAX_MESSAGE + 1 - c->inlen,
                         MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;      /* reset by the peer, killed mid-request, ... */
        }
        if (n == 0) {
            c->eof = 1;
            break;
        }
        c->inlen += (size_t)n;
        c->last_ms = now_ms();
        if (memchr(c->in + c->inlen - (size_t)n, '\n', (size_t)n))
            break;          /* serve it before reading on */
    }
    return 0;
}

static int client_has_work(const struct client *c)
{
    return c->outlen == 0 && !c->closing &&
           ((c->inlen && memchr(c->in, '\n', c->inlen)) || c->eof ||
            c->inlen > CONTROL_MAX_MESSAGE);
}

static void client_serve(struct control_server *s, struct client *c, short revents)
{
    if (revents & POLLOUT || c->outlen) {
        if (client_flush(c) < 0)
            goto drop;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->eof && c->outlen == 0 && !c->closing) {
        if (client_read(c) < 0)
            goto drop;
    }
    if (client_process(s, c) < 0 || client_flush(c) < 0)
        goto drop;
    if (c->closing && c->outlen == 0)
        goto drop;
    if (c->eof && c->inlen == 0 && c->outlen == 0)
        goto drop;
    if (c->watch_out != (c->outlen != 0)) {     /* wake when a slow reader makes room */
        c->watch_out = c->outlen != 0;
        watch_fd(s, c->fd, EPOLL_CTL_MOD, c->watch_out);
    }
    return;
drop:
    client_drop(c);
}

static void accept_clients(struct control_server *s)
{
    unsigned n;

    for (n = 0; n < ACCEPTS_PER_ROUND; n++) {
        struct client *c = NULL, *oldest = NULL;
        unsigned i;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;     /* EAGAIN, or EMFILE and friends: try again next round */
        }
        if (!unix_peer_same_uid(fd, NULL)) {
            static const char msg[] =
                "{\"ok\":false,\"error\":\"peer uid differs from the VM's uid\"}\n";
            send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        for (i = 0; i < CONTROL_MAX_CLIENTS; i++) {
            struct client *k = &s->clients[i];

            if (k->fd < 0) {
                c = k;
                break;
            }
            if (!oldest || k->last_ms < oldest->last_ms)
                oldest = k;
        }
        if (!c) {
            /* Full: the longest-silent client makes room, so idle connections can never
             * lock everyone out. */
            client_drop(oldest);
            c = oldest;
        }
        c->fd = fd;
        c->last_ms = now_ms();
        watch_fd(s, fd, EPOLL_CTL_ADD, 0);
        /* Most clients write their request right after connecting: serve it now rather
         * than one poll round later. */
        client_serve(s, c, POLLIN);
    }
}

/* One round: poll with `timeout_ms`, accept, serve, expire idle clients. */
static int serve_round(struct control_server *s, int timeout_ms)
{
    unsigned i, n = 0;
    uint64_t now = now_ms();
    int rc, served = 0;
    struct epoll_event evs[64];

    /* Consume the edges first: news that comes while this round serves is a new edge, so
     * no wake-up is lost. The poll below looks at every socket anyway. */
    while (s->epfd >= 0 && epoll_wait(s->epfd, evs, 64, 0) == 64)
        ;
    if (s->again_fd >= 0) {
        uint64_t v;
        (void)!read(s->again_fd, &v, sizeof v);
    }
    s->pfds[n] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
    s->slot_of[n++] = -1;
    for (i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];

        if (c->fd < 0)
            continue;
        if (client_has_work(c))
            timeout_ms = 0;
        if (s->idle_ms >= 0) {
            /* Wake up in time to drop this client if it stays silent. */
            uint64_t due = c->last_ms + (uint64_t)s->idle_ms + 1;
            int left = due > now ? (int)(due - now) : 0;

            if (timeout_ms < 0 || left < timeout_ms)
                timeout_ms = left;
        }
        s->pfds[n] = (struct pollfd){
            .fd = c->fd,
            .events = (short)((c->outlen ? POLLOUT : 0) |
                              (!c->eof && !c->outlen && !c->closing ? POLLIN : 0)),
        };
        s->slot_of[n++] = (int)i;
    }
    rc = poll(s->pfds, n, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (s->pfds[0].revents & POLLIN) {
        accept_clients(s);
        served = 1;
    }
    for (i = 1; i < n; i++) {
        struct client *c = &s->clients[s->slot_of[i]];

        if (c->fd != s->pfds[i].fd)
            continue;   /* evicted by accept_clients() in this round; slot reused */
        if (s->pfds[i].revents || client_has_work(c)) {
            client_serve(s, c, s->pfds[i].revents);
            served = 1;
        }
    }
    now = now_ms();
    int again = 0;
    for (i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];

        if (c->fd >= 0 && s->idle_ms >= 0 && now > c->last_ms &&
            now - c->last_ms > (uint64_t)s->idle_ms)
            client_drop(c);
        again |= c->fd >= 0 && client_has_work(c);
    }
    if (again && s->again_fd >= 0) {
        uint64_t one = 1;
        (void)!write(s->again_fd, &one, sizeof one);
    }
    return served;
}

void control_server_poll(struct control_server *s)
{
    serve_round(s, 0);
}

int control_server_wait(struct control_server *s, int timeout_ms)
{
    return serve_round(s, timeout_ms);
}

void control_server_close(struct control_server *s)
{
    unsigned i;

    if (!s)
        return;
    for (i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];

        if (c->fd < 0)
            continue;
        if (c->outlen)
            client_flush(c);    /* e.g. the answer to "stop" */
        /* Unread input would make close() reset the connection, and the client would see
         * "connection reset" instead of a clean end of stream. */
        for (int k = 0; k < 16; k++) {
            char sink[4096];

            if (recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
                break;
        }
        client_drop(c);
    }
    close(s->lfd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->again_fd >= 0)
        close(s->again_fd);
    unix_listen_unlink(s->path, &s->st);
    free(s->path);
    free(s);
}
