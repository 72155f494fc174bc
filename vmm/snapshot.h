/* The snapshot file format (vmm/SNAPSHOT.md): a versioned, little-endian file of chunks,
 * each with a four-character tag, a capped length and a CRC-32. Writers build one chunk at a
 * time in memory and append it; readers load one chunk at a time, check its CRC and hand
 * out fields with bounds checks. Every read error names the chunk and its file offset.
 * Device models and CPU backends only put/get fields; the VM decides the chunk order. */
#ifndef VMLAB_SNAPSHOT_H
#define VMLAB_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SNAPSHOT_MAGIC "VMLABSNP"          /* 8 bytes, not terminated in the file */
#define SNAPSHOT_VERSION 2u                 /* 2: MACH lists each device's bus windows */
#define SNAPSHOT_VERSION_OLDEST 1u          /* 1: one window per device (its type's then) */
#define SNAPSHOT_CHUNK_MAX (64u << 20)      /* payload bytes of one chunk at most */
#define SNAPSHOT_STR_MAX 4096u              /* a string field at most (json, args) */

struct snapshot_writer {
    FILE *f;
    char *path, *tmp_path;                  /* written to tmp_path, renamed on close */
    uint8_t *buf;                           /* payload of the chunk being built */
    size_t len, cap;
    char tag[5];
    int in_chunk;
    int err;                                /* first error (-errno), sticky */
    uint64_t offset;                        /* bytes written to the file so far */
    uint64_t chunks;
};

struct snapshot_reader {
    FILE *f;
    char path[256];
    uint8_t *buf;                           /* payload of the current chunk */
    uint32_t len, pos;
    char tag[5];
    uint64_t chunk_offset;                  /* file offset of the current chunk's header */
    uint64_t offset;                        /* file offset of the next chunk */
    uint64_t chunks;
    uint64_t file_size;
    uint32_t version;                       /* the file's format version */
    int bad;                                /* a get_* ran past the end of the chunk */
    char bad_field[48];
};

/* ---- writing ---- */
int snapshot_writer_open(struct snapshot_writer *w, const char *path, char *err,
                         size_t errlen);
void snapshot_begin(struct snapshot_writer *w, const char *tag);
void snapshot_put_u8(struct snapshot_writer *w, uint8_t v);
void snapshot_put_u16(struct snapshot_writer *w, uint16_t v);
void snapshot_put_u32(struct snapshot_writer *w, uint32_t v);
void snapshot_put_u64(struct snapshot_writer *w, uint64_t v);
void snapshot_put_bytes(struct snapshot_writer *w, const void *p, size_t n);
/* u32 length + bytes (no terminator). */
void snapshot_put_str(struct snapshot_writer *w, const char *s);
/* Appends the chunk to the file. 0 or -errno (also kept in w->err). */
int snapshot_end(struct snapshot_writer *w);
/* Writes the END chunk, flushes and renames into place. 0 or -errno with a message. */
int snapshot_writer_close(struct snapshot_writer *w, char *err, size_t errlen);
/* Drops the partial file. */
void snapshot_writer_abort(struct snapshot_writer *w);

/* ---- reading ---- */
int snapshot_reader_open(struct snapshot_reader *r, const char *path, char *err,
                         size_t errlen);
void snapshot_reader_close(struct snapshot_reader *r);
/* Loads the next chunk, which must carry `tag` (NULL: any tag; the caller looks at r->tag).
 * 0, or -EINVAL/-EIO with a message naming the chunk and offset. */
int snapshot_next(struct snapshot_reader *r, const char *tag, char *err, size_t errlen);
/* The getters never fail loudly: past the end they return zeros and mark the reader bad;
 * snapshot_check() then reports it. `field` names what was being read. */
uint8_t snapshot_get_u8(struct snapshot_reader *r, const char *field);
uint16_t snapshot_get_u16(struct snapshot_reader *r, const char *field);
uint32_t snapshot_get_u32(struct snapshot_reader *r, const char *field);
uint64_t snapshot_get_u64(struct snapshot_reader *r, const char *field);
void snapshot_get_bytes(struct snapshot_reader *r, void *p, size_t n, const char *field);
/* Pointer to n bytes inside the chunk (NULL when short: reader marked bad). */
const void *snapshot_get_ptr(struct snapshot_reader *r, size_t n, const char *field);
/* A string into out (outlen includes the terminator); too long or short: bad. */
void snapshot_get_str(struct snapshot_reader *r, char *out, size_t outlen, const char *field);
/* 0 if every get so far fitted, else -EINVAL with "snapshot FILE: chunk 'TAG' at offset N:
 * truncated reading FIELD". */
int snapshot_check(struct snapshot_reader *r, char *err, size_t errlen);
/* 0 if the whole chunk was consumed (and nothing was short). */
int snapshot_check_done(struct snapshot_reader *r, char *err, size_t errlen);
/* Formats a semantic error about the current chunk: "snapshot FILE: chunk 'TAG' at offset
 * N: MESSAGE". Returns -EINVAL. */
int snapshot_fail(struct snapshot_reader *r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

uint32_t snapshot_crc32(uint32_t crc, const void *p, size_t n);

#endif
