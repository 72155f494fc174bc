#include "unix_listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *what, const char *path,
                    const char *op, int e)
{
    if (err && errlen)
        snprintf(err, errlen, "%s %s: %s: %s", what, path, op, strerror(e));
}

/* An existing path may be replaced only if it is a socket nobody listens on. */
static int check_existing(const char *path, const char *what, const char *owner, char *err,
                          size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st, now;
    int fd, rc;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        rc = -errno;
        set_err(err, errlen, what, path, "cannot inspect", -rc);
        return rc;
    }
    if (!S_ISSOCK(st.st_mode)) {
        if (err && errlen)
            snprintf(err, errlen, "%s %s: refusing to replace an existing file that is not a "
                     "socket", what, path);
        return -EEXIST;
    }
    /* Non-blocking: a live server with a full backlog answers EAGAIN at once instead of
     * blocking us; only ECONNREFUSED (nobody listens) marks the socket stale. The probe
     * uses the socket's own type: a connect of the wrong type is refused even when live. */
    int types[2] = { SOCK_STREAM, SOCK_SEQPACKET };
    for (int t = 0; t < 2; t++) {
        fd = socket(AF_UNIX, types[t] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            set_err(err, errlen, what, path, "socket", -rc);
            return rc;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? errno : 0;
        close(fd);
        if (rc == 0 || rc == EAGAIN || rc == EINPROGRESS) {
            if (err && errlen)
                snprintf(err, errlen, "%s %s: in use by %s", what, path, owner);
            return -EADDRINUSE;
        }
        if (rc == EPROTOTYPE)
            continue;
        if (rc != ECONNREFUSED) {
            if (err && errlen)
                snprintf(err, errlen, "%s %s: refusing to replace a socket that cannot be "
                         "probed: %s", what, path, strerror(rc));
            return -rc;
        }
    }
    /* Remove exactly the socket file probed, not one put there since. */
    if (lstat(path, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
        if (err && errlen)
            snprintf(err, errlen, "%s %s: replaced while being checked", what, path);
        return -EEXIST;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        rc = -errno;
        set_err(err, errlen, what, path, "cannot remove the stale socket", -rc);
        return rc;
    }
    return 0;
}

int unix_listen(const char *path, int type, const char *what, const char *owner,
                struct stat *st, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int rc, fd;

    if (!path || !path[0] || strlen(path) >= sizeof sa.sun_path) {
        if (err && errlen)
            snprintf(err, errlen, "%s \"%s\": path must be 1..%zu bytes", what,
                     path ? path : "", sizeof sa.sun_path - 1);
        return path && path[0] ? -ENAMETOOLONG : -EINVAL;
    }
    rc = check_existing(path, what, owner, err, errlen);
    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        set_err(err, errlen, what, path, "socket", -rc);
        return rc;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* No window in which another user could connect: the file is born 0600. */
    mode_t old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0) {
        rc = -errno;
        set_err(err, errlen, what, path, "bind", -rc);
        close(fd);
        return rc;
    }
    if (chmod(path, 0600) < 0 || lstat(path, st) < 0) {
        rc = -errno;
        set_err(err, errlen, what, path, "chmod", -rc);
        unlink(path);
        close(fd);
        return rc;
    }
    if (listen(fd, 128) < 0) {
        rc = -errno;
        set_err(err, errlen, what, path, "listen", -rc);
        unlink(path);
        close(fd);
        return rc;
    }
    return fd;
}

void unix_listen_unlink(const char *path, const struct stat *st)
{
    struct stat now;

    if (lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino)
        unlink(path);
}

int unix_peer_same_uid(int fd, long *uid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;

    if (uid)
        *uid = -1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    if (uid)
        *uid = (long)cred.uid;
    return cred.uid == geteuid();
}
