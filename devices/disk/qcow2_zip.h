/* Compressed qcow2 clusters: one cluster of raw deflate (compression_type 0, zlib) or zstd
 * (compression_type 1), decompressed through zlib and libzstd. */
#ifndef VMLAB_QCOW2_ZIP_H
#define VMLAB_QCOW2_ZIP_H

#include <stddef.h>

enum { QCOW2_ZIP_ZLIB = 0, QCOW2_ZIP_ZSTD = 1 };

struct qcow2_zip;

/* A decompressor for `type`; NULL on out of memory. */
struct qcow2_zip *qcow2_zip_new(unsigned type);
void qcow2_zip_free(struct qcow2_zip *z);

/* Decompresses from `in` (inlen bytes, possibly followed by other data: the stream's end
 * is not marked in the image) until `out` holds exactly outlen bytes. 0, or -EIO when the
 * stream is malformed or ends before filling `out`. */
int qcow2_zip_decompress(struct qcow2_zip *z, const void *in, size_t inlen, void *out,
                         size_t outlen);

/* "zlib", "zstd", or NULL for an unknown type. */
const char *qcow2_zip_name(unsigned type);

#endif
