/* Snapshot file: header, then chunks of (tag[4], le32 length, payload, le32 CRC-32 of tag,
 * length and payload). See vmm/SNAPSHOT.md. */
#include "snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER_SIZE 16u     /* magic[8], le32 version, le32 flags */
#define CHUNK_HDR 8u

uint32_t snapshot_crc32(uint32_t crc, const void *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    const uint8_t *b = p;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- writer ---- */

static int write_all(struct snapshot_writer *w, const void *p, size_t n)
{
    if (w->err)
        return w->err;
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->err = -EIO;
        return w->err;
    }
    w->offset += n;
    return 0;
}

int snapshot_writer_open(struct snapshot_writer *w, const char *path, char *err,
                         size_t errlen)
{
    uint8_t hdr[HEADER_SIZE];
    size_t plen = strlen(path);

    memset(w, 0, sizeof(*w));
    w->path = strdup(path);
    w->tmp_path = malloc(plen + 8);
    if (!w->path || !w->tmp_path) {
        free(w->path);
        free(w->tmp_path);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(w->tmp_path, plen + 8, "%s.part", path);
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        int e = errno;
        snprintf(err, errlen, "snapshot %s: cannot create: %s", path, strerror(e));
        free(w->path);
        free(w->tmp_path);
        return -e;
    }
    memcpy(hdr, SNAPSHOT_MAGIC, 8);
    le32(hdr + 8, SNAPSHOT_VERSION);
    le32(hdr + 12, 0);
    write_all(w, hdr, sizeof(hdr));
    return 0;
}

void snapshot_begin(struct snapshot_writer *w, const char *tag)
{
    memcpy(w->tag, tag, 4);
    w->tag[4] = 0;
    w->len = 0;
    w->in_chunk = 1;
}

void snapshot_put_bytes(struct snapshot_writer *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (!w->in_chunk || w->len + n > SNAPSHOT_CHUNK_MAX) {
        w->err = -E2BIG;
        return;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->err = -ENOMEM;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void snapshot_put_u8(struct snapshot_writer *w, uint8_t v) { snapshot_put_bytes(w, &v, 1); }

void snapshot_put_u16(struct snapshot_writer *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    snapshot_put_bytes(w, b, 2);
}

void snapshot_put_u32(struct snapshot_writer *w, uint32_t v)
{
    uint8_t b[4];
    le32(b, v);
    snapshot_put_bytes(w, b, 4);
}

void snapshot_put_u64(struct snapshot_writer *w, uint64_t v)
{
    snapshot_put_u32(w, (uint32_t)v);
    snapshot_put_u32(w, (uint32_t)(v >> 32));
}

void snapshot_put_str(struct snapshot_writer *w, const char *s)
{
    size_t n = strlen(s);
    if (n > SNAPSHOT_STR_MAX) {
        w->err = w->err ? w->err : -E2BIG;
        return;
    }
    snapshot_put_u32(w, (uint32_t)n);
    snapshot_put_bytes(w, s, n);
}

int snapshot_end(struct snapshot_writer *w)
{
    uint8_t hdr[CHUNK_HDR], crcb[4];

    if (w->err)
        return w->err;
    memcpy(hdr, w->tag, 4);
    le32(hdr + 4, (uint32_t)w->len);
    uint32_t crc = snapshot_crc32(0, hdr, sizeof(hdr));
    crc = snapshot_crc32(crc, w->buf, w->len);
    le32(crcb, crc);
    write_all(w, hdr, sizeof(hdr));
    write_all(w, w->buf, w->len);
    write_all(w, crcb, 4);
    w->in_chunk = 0;
    w->chunks++;
    return w->err;
}

static void writer_free(struct snapshot_writer *w)
{
    free(w->buf);
    free(w->path);
    free(w->tmp_path);
    w->buf = NULL;
    w->path = w->tmp_path = NULL;
}

int snapshot_writer_close(struct snapshot_writer *w, char *err, size_t errlen)
{
    snapshot_begin(w, "END ");
    snapshot_end(w);
    if (!w->err && (fflush(w->f) || fsync(fileno(w->f))))
        w->err = -errno;
    if (fclose(w->f) && !w->err)
        w->err = -EIO;
    w->f = NULL;
    if (!w->err && rename(w->tmp_path, w->path))
        w->err = -errno;
    int rc = w->err;
    if (rc) {
        snprintf(err, errlen, "snapshot %s: writing failed: %s", w->path,
                 rc == -E2BIG ? "a section is larger than the format allows" : strerror(-rc));
        unlink(w->tmp_path);
    }
    writer_free(w);
    return rc;
}

void snapshot_writer_abort(struct snapshot_writer *w)
{
    if (w->f)
        fclose(w->f);
    w->f = NULL;
    if (w->tmp_path)
        unlink(w->tmp_path);
    writer_free(w);
}

/* ---- reader ---- */

int snapshot_reader_open(struct snapshot_reader *r, const char *path, char *err,
                         size_t errlen)
{
    uint8_t hdr[HEADER_SIZE];

    memset(r, 0, sizeof(*r));
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->f = fopen(path, "rb");
    if (!r->f) {
        int e = errno;
        snprintf(err, errlen, "snapshot %s: %s", path, strerror(e));
        return -e;
    }
    size_t n = fread(hdr, 1, sizeof(hdr), r->f);
    if (n < 8 || memcmp(hdr, SNAPSHOT_MAGIC, 8)) {
        snprintf(err, errlen, "snapshot %s: header at offset 0: not a vmlab snapshot (bad magic)",
                 path);
        goto bad;
    }
    if (n < sizeof(hdr)) {
        snprintf(err, errlen, "snapshot %s: header at offset 0: truncated (%zu of %u bytes)",
                 path, n, HEADER_SIZE);
        goto bad;
    }
    uint32_t version = rd32(hdr + 8), flags = rd32(hdr + 12);
    if (version < SNAPSHOT_VERSION_OLDEST || version > SNAPSHOT_VERSION) {
        snprintf(err, errlen, "snapshot %s: header at offset 8: format version %u, this vmlab "
                 "reads versions %u to %u", path, version, SNAPSHOT_VERSION_OLDEST,
                 SNAPSHOT_VERSION);
        goto bad;
    }
    r->version = version;
    if (flags) {
        snprintf(err, errlen, "snapshot %s: header at offset 12: unknown flags %#x", path, flags);
        goto bad;
    }
    if (fseek(r->f, 0, SEEK_END) == 0) {
        long end = ftell(r->f);
        r->file_size = end > 0 ? (uint64_t)end : 0;
    }
    fseek(r->f, HEADER_SIZE, SEEK_SET);
    r->offset = HEADER_SIZE;
    return 0;
bad:
    fclose(r->f);
    r->f = NULL;
    return -EINVAL;
}

void snapshot_reader_close(struct snapshot_reader *r)
{
    if (r->f)
        fclose(r->f);
    r->f = NULL;
    free(r->buf);
    r->buf = NULL;
}

static void printable_tag(char out[5], const uint8_t *t)
{
    for (int i = 0; i < 4; i++)
        out[i] = t[i] >= 0x20 && t[i] < 0x7f ? (char)t[i] : '?';
    out[4] = 0;
}

int snapshot_next(struct snapshot_reader *r, const char *tag, char *err, size_t errlen)
{
    uint8_t hdr[CHUNK_HDR], crcb[4];
    uint64_t at = r->offset;

    r->chunk_offset = at;
    r->bad = 0;
    r->pos = r->len = 0;
    size_t n = fread(hdr, 1, sizeof(hdr), r->f);
    if (n != sizeof(hdr)) {
        snprintf(err, errlen, "snapshot %s: chunk %llu at offset %llu: file truncated%s%s%s",
                 r->path, (unsigned long long)r->chunks, (unsigned long long)at,
                 tag ? " (expected '" : "", tag ? tag : "", tag ? "')" : "");
        return -EINVAL;
    }
    printable_tag(r->tag, hdr);
    uint32_t len = rd32(hdr + 4);
    if (tag && memcmp(hdr, tag, 4)) {
        snprintf(err, errlen, "snapshot %s: chunk '%s' at offset %llu: expected chunk '%s'",
                 r->path, r->tag, (unsigned long long)at, tag);
        return -EINVAL;
    }
    if (len > SNAPSHOT_CHUNK_MAX) {
        snprintf(err, errlen, "snapshot %s: chunk '%s' at offset %llu: length %u exceeds the "
                 "limit of %u bytes", r->path, r->tag, (unsigned long long)at, len,
                 SNAPSHOT_CHUNK_MAX);
        return -EINVAL;
    }
    if ((uint64_t)len + 4 > r->file_size - (at + CHUNK_HDR) && r->file_size >= at + CHUNK_HDR) {
        snprintf(err, errlen, "snapshot %s: chunk '%s' at offset %llu: length %u runs past the "
                 "end of the file (%llu bytes): truncated", r->path, r->tag,
                 (unsigned long long)at, len, (unsigned long long)r->file_size);
        return -EINVAL;
    }
    free(r->buf);
    r->buf = malloc(len ? len : 1);
    if (!r->buf) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (fread(r->buf, 1, len, r->f) != len || fread(crcb, 1, 4, r->f) != 4) {
        snprintf(err, errlen, "snapshot %s: chunk '%s' at offset %llu: file truncated inside "
                 "the chunk (length %u)", r->path, r->tag, (unsigned long long)at, len);
        return -EINVAL;
    }
    uint32_t crc = snapshot_crc32(snapshot_crc32(0, hdr, sizeof(hdr)), r->buf, len);
    if (crc != rd32(crcb)) {
        snprintf(err, errlen, "snapshot %s: chunk '%s' at offset %llu: CRC mismatch (stored "
                 "%08x, computed %08x): the file is corrupt", r->path, r->tag,
                 (unsigned long long)at, rd32(crcb), crc);
        return -EINVAL;
    }
    r->len = len;
    r->offset = at + CHUNK_HDR + len + 4;
    r->chunks++;
    return 0;
}

static const uint8_t *take(struct snapshot_reader *r, size_t n, const char *field)
{
    if (r->bad || n > r->len - r->pos) {
        if (!r->bad)
            snprintf(r->bad_field, sizeof(r->bad_field), "%s", field);
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += (uint32_t)n;
    return p;
}

uint8_t snapshot_get_u8(struct snapshot_reader *r, const char *field)
{
    const uint8_t *p = take(r, 1, field);
    return p ? p[0] : 0;
}

uint16_t snapshot_get_u16(struct snapshot_reader *r, const char *field)
{
    const uint8_t *p = take(r, 2, field);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t snapshot_get_u32(struct snapshot_reader *r, const char *field)
{
    const uint8_t *p = take(r, 4, field);
    return p ? rd32(p) : 0;
}

uint64_t snapshot_get_u64(struct snapshot_reader *r, const char *field)
{
    const uint8_t *p = take(r, 8, field);
    return p ? rd32(p) | (uint64_t)rd32(p + 4) << 32 : 0;
}

void snapshot_get_bytes(struct snapshot_reader *r, void *out, size_t n, const char *field)
{
    const uint8_t *p = take(r, n, field);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

const void *snapshot_get_ptr(struct snapshot_reader *r, size_t n, const char *field)
{
    return take(r, n, field);
}

void snapshot_get_str(struct snapshot_reader *r, char *out, size_t outlen, const char *field)
{
    uint32_t n = snapshot_get_u32(r, field);
    out[0] = 0;
    if (r->bad)
        return;
    if (n >= outlen) {
        snprintf(r->bad_field, sizeof(r->bad_field), "%s (length %u)", field, n);
        r->bad = 2;
        return;
    }
    const uint8_t *p = take(r, n, field);
    if (!p)
        return;
    memcpy(out, p, n);
    out[n] = 0;
    if (memchr(out, 0, n)) {
        snprintf(r->bad_field, sizeof(r->bad_field), "%s (embedded NUL)", field);
        r->bad = 2;
    }
}

int snapshot_fail(struct snapshot_reader *r, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "snapshot %s: chunk '%s' at offset %llu: %s", r->path, r->tag,
             (unsigned long long)r->chunk_offset, msg);
    return -EINVAL;
}

int snapshot_check(struct snapshot_reader *r, char *err, size_t errlen)
{
    if (!r->bad)
        return 0;
    if (r->bad == 2)
        return snapshot_fail(r, err, errlen, "bad field %s", r->bad_field);
    return snapshot_fail(r, err, errlen, "chunk too short reading %s", r->bad_field);
}

int snapshot_check_done(struct snapshot_reader *r, char *err, size_t errlen)
{
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    if (r->pos != r->len)
        return snapshot_fail(r, err, errlen, "%u unexpected bytes after the last field",
                             r->len - r->pos);
    return 0;
}
