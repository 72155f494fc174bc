/* Fuzz target: qcow2 images (devices/disk/qcow2.c): the input is a whole image file,
 * opened with disk_open from the scratch folder of fuzz/disk_common.h (its backing file
 * may only be a plain name there: backing.raw, comp_a.raw, ... or `image` itself), read and
 * written, closed, reopened.
 * Invariants (abort() on violation): open returns 0 or -errno with a reason; an opened
 * image reports version 2 or 3 and a power-of-two cluster size in 512..2M; acknowledged
 * writes read back, acknowledged write-zeroes read as zeroes; I/O past the end fails; the
 * image the driver leaves after writing and closing opens again and still holds the last
 * acknowledged write (no corruption, no lost write); no file descriptor leaks.
 * Seeds in fuzz/corpus/qcow2/seed-*: compressed clusters (zlib, zstd), extended L2, and
 * L2 entries caught on first use (data on the refcount table, compressed bytes on L1). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk/qcow2.h"
#include "fuzz/disk_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* 1 unless the header names a backing file that is not a plain name. */
static int backing_safe(const uint8_t *data, size_t size)
{
    if (size < 20 || memcmp(data, "QFI\xfb", 4))
        return 1;
    uint64_t off = be64(data + 8);
    uint32_t len = (uint32_t)be64(data + 12) & 0xffffffffu;

    if (off == 0 || len == 0)
        return 1;
    if (off >= size || len > size - off)
        return 1;   /* the name lies beyond the file: open fails reading it */
    return fzd_safe_name((const char *)data + off, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t wbuf[1024], rbuf[1024];
    char err[512];
    struct disk *d = NULL;
    struct qcow2_info qi;

    if (size > (1u << 20) || !backing_safe(data, size))
        return 0;
    const char *path = fzd_prepare(data, size);
    int fd0 = fzd_next_fd();
    err[0] = 0;
    int r = disk_open(path, 0, &d, err, sizeof err);
    if (r > 0 || (r < 0 && (d || !err[0])))
        abort();
    if (r == 0) {
        int is_qcow2 = !strcmp(d->ops->format, "qcow2");

        if (is_qcow2) {
            if (qcow2_get_info(d, &qi))
                abort();
            if ((qi.version != 2 && qi.version != 3) || qi.cluster_size < 512 ||
                qi.cluster_size > (2u << 20) || (qi.cluster_size & (qi.cluster_size - 1)))
                abort();
        }
        fzd_exercise(d, data + size - (size < 8 ? size : 8), size < 8 ? size : 8);

        /* Zeroes over part of a cluster, whole subclusters or whole clusters (the zero
         * flag, zero bits, a compressed cluster released) read back as zeroes. */
        if (d->size) {
            uint8_t s = data[size / 2];
            uint64_t zlen = 512 + (uint64_t)s * 64, zoff;
            if (zlen > d->size)
                zlen = d->size;
            zoff = (d->size - zlen) * (uint8_t)(s * 7) / 255 & ~511ull;
            if (disk_write_zeroes(d, zoff, zlen) == 0) {
                for (uint64_t o = 0; o < zlen; o += sizeof rbuf) {
                    uint64_t n = zlen - o < sizeof rbuf ? zlen - o : sizeof rbuf;
                    if (disk_read(d, zoff + o, rbuf, n))
                        fzd_die("zeroed range does not read back", NULL);
                    for (uint64_t k = 0; k < n; k++)
                        if (rbuf[k])
                            fzd_die("zeroed range reads non-zero bytes", NULL);
                }
            }
        }

        /* One more write, then close and reopen: the image must still open and hold it. */
        uint64_t len = d->size < sizeof wbuf ? d->size : sizeof wbuf;
        uint64_t off = (d->size - len) / 2 & ~511ull;
        for (uint64_t k = 0; k < len; k++)
            wbuf[k] = (uint8_t)(k * 11 + 5);
        int w = len ? disk_write(d, off, wbuf, len) : -1;
        if (w == 0 && disk_flush(d) != 0)
            w = -1;
        disk_close(d);
        d = NULL;
        if (w == 0 && is_qcow2) {
            err[0] = 0;
            if (disk_open(path, 1, &d, err, sizeof err))
                fzd_die("the image left after a write does not open again", err);
            if (disk_read(d, off, rbuf, len) || memcmp(wbuf, rbuf, len))
                fzd_die("an acknowledged, flushed write was lost after reopening", NULL);
            disk_close(d);
        }
    }
    if (fzd_next_fd() != fd0)
        abort();        /* a descriptor leaked */
    return 0;
}
