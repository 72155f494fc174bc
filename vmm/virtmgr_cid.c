#include "virtmgr_cid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int virtmgr_write_atomic(const char *path, const void *buf, size_t len)
{
    char tmp[4096];
    int r = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (!r && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (!r && rename(tmp, path) < 0)
        r = -errno;
    if (r)
        unlink(tmp);
    return r;
}

int cid_alloc_init(struct cid_alloc *a, const char *state_dir, uint32_t first, uint32_t last,
                   char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (first < 3 || last < first) {
        snprintf(err, errlen, "CID range %u-%u: must be within 3..4294967295, first <= last",
                 first, last);
        return -EINVAL;
    }
    a->first = first;
    a->last = last;
    a->live = calloc((size_t)(last - first) + 1, 1);
    if (!a->live) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (!state_dir)
        return 0;
    size_t n = strlen(state_dir) + sizeof("/" VIRTMGR_CID_FILE);
    a->path = malloc(n);
    if (!a->path) {
        cid_alloc_free(a);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(a->path, n, "%s/" VIRTMGR_CID_FILE, state_dir);
    FILE *f = fopen(a->path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        snprintf(err, errlen, "%s: %s", a->path, strerror(e));
        cid_alloc_free(a);
        return -e;
    }
    char buf[32] = "";
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(buf, &end, 10);
    if (got == 0 || errno || (*end && strcmp(end, "\n")) || buf[0] == '-' ||
        v < first || v > last) {
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(err, errlen, "%s: '%s' is not a CID in %u..%u", a->path, buf, first, last);
        cid_alloc_free(a);
        return -EINVAL;
    }
    a->last_given = (uint32_t)v;
    return 0;
}

int cid_alloc_take(struct cid_alloc *a, uint32_t *cid, char *err, size_t errlen)
{
    uint64_t span = (uint64_t)a->last - a->first + 1;
    uint64_t start = a->last_given ? (uint64_t)a->last_given - a->first + 1 : 0;

    for (uint64_t k = 0; k < span; k++) {
        uint64_t i = (start + k) % span;
        if (a->live[i])
            continue;
        uint32_t c = (uint32_t)(a->first + i);
        if (a->path) {
            char buf[16];
            int len = snprintf(buf, sizeof(buf), "%u\n", c);
            int r = virtmgr_write_atomic(a->path, buf, (size_t)len);
            if (r) {
                snprintf(err, errlen, "%s: %s", a->path, strerror(-r));
                return r;
            }
        }
        a->live[i] = 1;
        a->last_given = c;
        *cid = c;
        return 0;
    }
    snprintf(err, errlen, "no free CID: all %llu CIDs in %u..%u are held by running VMs",
             (unsigned long long)span, a->first, a->last);
    return -EBUSY;
}

void cid_alloc_release(struct cid_alloc *a, uint32_t cid)
{
    if (cid >= a->first && cid <= a->last)
        a->live[cid - a->first] = 0;
}

unsigned cid_alloc_live(const struct cid_alloc *a)
{
    unsigned n = 0;
    for (uint64_t i = 0; i <= (uint64_t)a->last - a->first; i++)
        n += a->live[i];
    return n;
}

void cid_alloc_free(struct cid_alloc *a)
{
    free(a->live);
    free(a->path);
    a->live = NULL;
    a->path = NULL;
}
