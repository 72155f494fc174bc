#include "virtmgr_msg.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int vmsg_send(int sock, struct json_object *msg, const int *fds, unsigned nfds)
{
    size_t len;
    const char *text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    union {
        char buf[CMSG_SPACE(sizeof(int) * VIRTMGR_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = (void *)text, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (len > VIRTMGR_MAX_MESSAGE || nfds > VIRTMGR_MAX_FDS)
        return -EMSGSIZE;
    if (nfds) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int vmsg_send_error(int sock, const char *message)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(message));
    int r = vmsg_send(sock, o, NULL, 0);
    json_object_put(o);
    return r;
}

static void close_all(int *fds, unsigned *nfds)
{
    for (unsigned i = 0; i < *nfds; i++)
        close(fds[i]);
    *nfds = 0;
}

int vmsg_recv(int sock, struct json_object **msg, int *fds, unsigned *nfds, char *err,
              size_t errlen)
{
    static char buf[VIRTMGR_MAX_MESSAGE + 1];
    union {
        char buf[CMSG_SPACE(sizeof(int) * VIRTMGR_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf) };
    ssize_t n;

    *msg = NULL;
    *nfds = 0;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int e = errno;
        snprintf(err, errlen, "receive: %s", strerror(e));
        return -e;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (unsigned i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < VIRTMGR_MAX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        close_all(fds, nfds);
        snprintf(err, errlen, "more than %d file descriptors in one message", VIRTMGR_MAX_FDS);
        return -E2BIG;
    }
    if (n == 0 && *nfds == 0)
        return 0;
    if ((size_t)n > VIRTMGR_MAX_MESSAGE) {
        close_all(fds, nfds);
        snprintf(err, errlen, "message of %zd bytes exceeds the limit of %d bytes", n,
                 VIRTMGR_MAX_MESSAGE);
        return -EMSGSIZE;
    }
    buf[n] = '\0';
    enum json_tokener_error je = json_tokener_success;
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
    if (tok) {
        je = json_tokener_get_error(tok);
        if (o && tok->char_offset < n && buf[tok->char_offset + strspn(buf + tok->char_offset,
                                                                       " \t\r\n")]) {
            json_object_put(o);
            o = NULL;
            je = json_tokener_error_parse_unexpected;
        }
        json_tokener_free(tok);
    }
    if (!o || !json_object_is_type(o, json_type_object)) {
        const char *why = o ? "another JSON type"
                          : je == json_tokener_continue ? "the message ends inside it"
                                                        : json_tokener_error_desc(je);
        json_object_put(o);
        close_all(fds, nfds);
        snprintf(err, errlen, "message is not a JSON object (%s)", why);
        return -EINVAL;
    }
    *msg = o;
    return 1;
}

void virtmgr_default_socket(char *buf, size_t len)
{
    const char *env = getenv("VMLAB_VIRTMGR_SOCKET");
    const char *run = getenv("XDG_RUNTIME_DIR");

    if (env && *env)
        snprintf(buf, len, "%s", env);
    else if (run && *run)
        snprintf(buf, len, "%s/vmlab-virtmgr.sock", run);
    else
        snprintf(buf, len, "/tmp/vmlab-virtmgr-%u.sock", (unsigned)getuid());
}
