/* Decompressing one qcow2 cluster. The image stores no compressed length exact to the
 * byte (only whole 512-byte sectors), so decompression stops when the cluster is full,
 * and a stream that ends or stalls before that is an error. One zlib stream / zstd
 * context per image, reset per cluster. */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include "devices/disk/qcow2_zip.h"

struct qcow2_zip {
    unsigned type;
    int zinit;                  /* z is initialised */
    z_stream z;
    ZSTD_DCtx *zd;
};

const char *qcow2_zip_name(unsigned type)
{
    return type == QCOW2_ZIP_ZLIB ? "zlib" : type == QCOW2_ZIP_ZSTD ? "zstd" : NULL;
}

struct qcow2_zip *qcow2_zip_new(unsigned type)
{
    struct qcow2_zip *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->type = type;
    if (type == QCOW2_ZIP_ZSTD) {
        if (!(z->zd = ZSTD_createDCtx())) {
            free(z);
            return NULL;
        }
    } else {
        /* Raw deflate with a 4 KiB window, as qemu writes (and reads) it. */
        if (inflateInit2(&z->z, -12) != Z_OK) {
            free(z);
            return NULL;
        }
        z->zinit = 1;
    }
    return z;
}

void qcow2_zip_free(struct qcow2_zip *z)
{
    if (!z)
        return;
    if (z->zinit)
        inflateEnd(&z->z);
    ZSTD_freeDCtx(z->zd);
    free(z);
}

static int inflate_cluster(struct qcow2_zip *z, const void *in, size_t inlen, void *out,
                           size_t outlen)
{
    if (inflateReset(&z->z) != Z_OK)
        return -EIO;
    z->z.next_in = (Bytef *)in;
    z->z.avail_in = (uInt)inlen;
    z->z.next_out = out;
    z->z.avail_out = (uInt)outlen;
    int r = inflate(&z->z, Z_FINISH);
    /* Z_BUF_ERROR with a full output: the cluster is complete, the rest is padding. */
    return (r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && z->z.avail_out == 0 ? 0 : -EIO;
}

static int zstd_cluster(struct qcow2_zip *z, const void *in, size_t inlen, void *out,
                        size_t outlen)
{
    ZSTD_inBuffer ib = { in, inlen, 0 };
    ZSTD_outBuffer ob = { out, outlen, 0 };
    if (ZSTD_isError(ZSTD_DCtx_reset(z->zd, ZSTD_reset_session_only)))
        return -EIO;
    while (ob.pos < ob.size) {
        size_t in0 = ib.pos, out0 = ob.pos;
        if (ZSTD_isError(ZSTD_decompressStream(z->zd, &ob, &ib)))
            return -EIO;
        if (ib.pos == in0 && ob.pos == out0)
            return -EIO;        /* no progress: the stream ended short */
    }
    return 0;
}

int qcow2_zip_decompress(struct qcow2_zip *z, const void *in, size_t inlen, void *out,
                         size_t outlen)
{
    return z->type == QCOW2_ZIP_ZSTD ? zstd_cluster(z, in, inlen, out, outlen)
                                     : inflate_cluster(z, in, inlen, out, outlen);
}
