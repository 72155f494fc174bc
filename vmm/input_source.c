#include "input_source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int input_source_open(struct input_source *s, const char *path, unsigned device, char *err,
                      size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->device = device;
    if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(s->path)) {
        snprintf(err, errlen, "--input path=%s: longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    memcpy(s->path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        int e = errno;
        snprintf(err, errlen, "--input path=%s: cannot connect: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    s->fd = fd;
    return 0;
}

int input_source_poll(struct input_source *s, input_deliver_fn deliver, void *opaque)
{
    uint8_t buf[INPUT_SOURCE_BATCH * INPUT_SOURCE_EVENT];

    if (s->fd < 0)
        return 0;
    /* Read only up to the batch, counting the partial event already held. */
    ssize_t n = read(s->fd, buf + s->npart, sizeof(buf) - s->npart);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 1;
    if (n <= 0) {
        fprintf(stderr, "vmlab: input %s: %s after %llu events%s\n", s->path,
                n < 0 ? strerror(errno) : "end of stream", (unsigned long long)s->events,
                s->npart ? " (a partial event was dropped)" : "");
        input_source_close(s);
        return 0;
    }
    memcpy(buf, s->part, s->npart);
    size_t have = s->npart + (size_t)n, whole = have - have % INPUT_SOURCE_EVENT;
    if (whole && deliver(opaque, s->device, buf, whole) == 0)
        s->events += whole / INPUT_SOURCE_EVENT;
    s->npart = (unsigned)(have - whole);
    memcpy(s->part, buf + whole, s->npart);
    return 1;
}

void input_source_close(struct input_source *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

int input_source_split_args(const char *spec, char *args, size_t argslen, char *path,
                            size_t pathlen)
{
    size_t o = 0;
    const char *p = spec;

    args[0] = path[0] = '\0';
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 5 && !strncmp(p, "path=", 5)) {
            if (len - 5 >= pathlen)
                return -EINVAL;
            memcpy(path, p + 5, len - 5);
            path[len - 5] = '\0';
        } else if (len) {
            if (o + len + 2 > argslen)
                return -EINVAL;
            if (o)
                args[o++] = ',';
            memcpy(args + o, p, len);
            o += len;
            args[o] = '\0';
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}
