/* Shared by the disk-image fuzz targets (composite, qcow2, GPT): a private scratch folder
 * holding the image under test and the only component / backing files it may name, a
 * file-descriptor leak probe, and a read/write exercise with its invariants. */
#ifndef VMLAB_FUZZ_DISK_COMMON_H
#define VMLAB_FUZZ_DISK_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/disk/disk.h"

static char fzd_dir[64];

/* An invariant failed: say which (with the library's message, if any) and abort. */
static inline void fzd_die(const char *why, const char *err)
{
    fprintf(stderr, "fuzz invariant violated: %s%s%s\n", why, err && *err ? ": " : "",
            err ? err : "");
    abort();
}

/* tmpfs when there is one: the formats fdatasync on flush, which costs milliseconds on disk. */
static inline const char *fzd_tmpdir(void)
{
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

static inline void fzd_cleanup(void)
{
    static const char *const names[] = { "image", "comp_a.raw", "comp_b.raw",
                                         "comp_small.raw", "backing.raw", NULL };
    char p[128];

    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", fzd_dir, names[i]);
        unlink(p);
    }
    rmdir(fzd_dir);
}

static inline void fzd_write_file(const char *name, const void *data, size_t len)
{
    char p[128];
    int fd;

    snprintf(p, sizeof p, "%s/%s", fzd_dir, name);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
        abort();
    close(fd);
}

/* (Re)creates the scratch folder's files: `image` holds the input; the fixed components are
 * rewritten each run because a previous run may have written to them. Returns the path of
 * `image`. The same names and contents as tests/data/disk (make_corpus.py). */
static inline const char *fzd_prepare(const uint8_t *data, size_t size)
{
    static uint8_t a[4096], b[4096], s[1000], bk[8192];
    static char path[128];

    if (!fzd_dir[0]) {
        snprintf(fzd_dir, sizeof fzd_dir, "%s/vmlab-fuzz-disk-XXXXXX", fzd_tmpdir());
        if (!mkdtemp(fzd_dir))
            abort();
        atexit(fzd_cleanup);
        memset(a, 0xa1, sizeof a);
        memset(b, 0xb2, sizeof b);
        memset(s, 0xc3, sizeof s);
        for (size_t i = 0; i < sizeof bk; i++)
            bk[i] = (uint8_t)(i * 13 + 1);
        snprintf(path, sizeof path, "%s/image", fzd_dir);
    }
    fzd_write_file("comp_a.raw", a, sizeof a);
    fzd_write_file("comp_b.raw", b, sizeof b);
    fzd_write_file("comp_small.raw", s, sizeof s);
    fzd_write_file("backing.raw", bk, sizeof bk);
    fzd_write_file("image", data, size);
    return path;
}

/* A file name an image may reference: a plain name inside the scratch folder (never a path
 * that could reach a host file, a FIFO or a device). */
static inline int fzd_safe_name(const char *name, size_t len)
{
    if (len == 0 || len > 64 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* The lowest free descriptor number: equal before and after a run unless a fd leaked. */
static inline int fzd_next_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        abort();
    close(fd);
    return fd;
}

/* Writes and reads back at a few offsets chosen by `sel`. Invariants: I/O inside the disk
 * returns 0 or -errno (never a positive value); a write that returned 0 reads back (no
 * lost acknowledged write); I/O past the end fails; reads of a read-only disk work
 * the same before and after refused writes. */
static inline void fzd_exercise(struct disk *d, const uint8_t *sel, size_t nsel)
{
    static uint8_t wbuf[4096], rbuf[4096];
    uint64_t size = d->size;

    if (size == 0)
        return;
    for (size_t i = 0; i < nsel && i < 8; i++) {
        uint64_t len = 1 + (uint64_t)sel[i] * 16 % sizeof wbuf;
        uint64_t off = size > len ? (size - len) * sel[i] / 255 : 0;
        int w, r;

        if (len > size)
            len = size;
        for (uint64_t k = 0; k < len; k++)
            wbuf[k] = (uint8_t)(k * 7 + sel[i] + i);
        w = disk_write(d, off, wbuf, len);
        if (w > 0)
            abort();
        r = disk_read(d, off, rbuf, len);
        if (r > 0)
            abort();
        if (w == 0 && (r != 0 || memcmp(wbuf, rbuf, len)))
            abort();    /* an acknowledged write did not read back */
    }
    if (disk_read(d, size, rbuf, 1) == 0 || disk_write(d, size, wbuf, 1) == 0)
        abort();        /* I/O past the end must fail */
    if (size < UINT64_MAX - 512 && disk_read(d, size - 1, rbuf, 512) == 0)
        abort();        /* straddling the end must fail */
    if (disk_flush(d) > 0)
        abort();
}

#endif
