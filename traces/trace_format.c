/* Trace file writer and reader. Layout and rationale: traces/FORMAT.md. */
#include "trace_format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- CRC32 (IEEE) */

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_ready = 1;
}

/* Slicing-by-8: the CRC must not be what limits parse speed. */
uint32_t trace_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    if (!crc_ready)
        crc_init();
    crc = ~crc;
    while (len >= 8) {
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[3] << 24);
        crc = crc_table[7][a & 0xff] ^ crc_table[6][(a >> 8) & 0xff] ^
              crc_table[5][(a >> 16) & 0xff] ^ crc_table[4][a >> 24] ^
              crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---------------------------------------------------------------- little-endian helpers */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* 0 on success; -1 if the varint runs past end or is longer than 10 bytes / overflows. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;

    if (p < end && *p < 0x80) {     /* the common one-byte case */
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- names */

static const char *const kind_names[TRACE_EV_KIND_MAX + 1] = {
    [TRACE_EV_MMIO_READ] = "mmio-read", [TRACE_EV_MMIO_WRITE] = "mmio-write",
    [TRACE_EV_PIO_IN] = "pio-in",       [TRACE_EV_PIO_OUT] = "pio-out",
    [TRACE_EV_DMA_READ] = "dma-read",   [TRACE_EV_DMA_WRITE] = "dma-write",
    [TRACE_EV_IRQ] = "irq",             [TRACE_EV_NOTIFY] = "notify",
    [TRACE_EV_CONTROL] = "control",     [TRACE_EV_FAULT] = "fault",
    [TRACE_EV_END] = "end",
};

const char *trace_kind_name(unsigned kind)
{
    return kind >= 1 && kind <= TRACE_EV_KIND_MAX ? kind_names[kind] : "?";
}

uint32_t trace_kind_parse(const char *name)
{
    if (!strcmp(name, "mmio"))
        return 1u << TRACE_EV_MMIO_READ | 1u << TRACE_EV_MMIO_WRITE;
    if (!strcmp(name, "pio"))
        return 1u << TRACE_EV_PIO_IN | 1u << TRACE_EV_PIO_OUT;
    if (!strcmp(name, "bus"))
        return 0xfu << TRACE_EV_MMIO_READ;
    if (!strcmp(name, "dma"))
        return 1u << TRACE_EV_DMA_READ | 1u << TRACE_EV_DMA_WRITE;
    for (unsigned k = 1; k <= TRACE_EV_KIND_MAX; k++)
        if (!strcmp(name, kind_names[k]))
            return 1u << k;
    return 0;
}

/* ---------------------------------------------------------------- header encoding */

static int put_str(uint8_t **pp, const uint8_t *end, const char *s, size_t max, int wide)
{
    size_t n = strnlen(s, max + 1);

    if (n > max || (size_t)(end - *pp) < n + 2)
        return -1;
    if (wide) {
        put16(*pp, (uint16_t)n);
        *pp += 2;
    } else {
        *(*pp)++ = (uint8_t)n;
    }
    memcpy(*pp, s, n);
    *pp += n;
    return 0;
}

/* Encodes the whole header (fixed part, body, CRC) into buf. Returns its length or -1. */
static long header_encode(const struct trace_header *h, uint8_t *buf, size_t cap)
{
    const struct machine_config *mc = &h->machine;
    uint8_t *p = buf + TRACE_FILE_HDR_SIZE, *end = buf + cap - 4;

    if (mc->ndevices > MACHINE_MAX_DEVICES)
        return -1;
    if (put_str(&p, end, VMLAB_VERSION, TRACE_VERSION_STR_MAX, 0))
        return -1;
    if (end - p < 8) return -1;
    put64(p, mc->seed);
    p += 8;
    if (put_str(&p, end, mc->backend, sizeof(mc->backend) - 1, 0))
        return -1;
    if (end - p < 9) return -1;
    put64(p, mc->ram_size);
    p += 8;
    *p++ = (uint8_t)mc->ndevices;
    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        if (put_str(&p, end, d->kind, DEVICE_KIND_MAX - 1, 0) ||
            put_str(&p, end, d->args, DEVICE_ARGS_MAX - 1, 1) || end - p < 13)
            return -1;
        put64(p, d->base);
        put32(p + 8, (uint32_t)d->irq);
        p[12] = (uint8_t)d->space;
        p += 13;
    }
    memcpy(buf, TRACE_MAGIC, 8);
    put16(buf + 8, TRACE_VERSION);
    put16(buf + 10, (uint16_t)(h->flags & TRACE_FLAGS_KNOWN));
    put32(buf + 12, (uint32_t)(p - buf - TRACE_FILE_HDR_SIZE));
    put32(p, trace_crc32(0, buf, (size_t)(p - buf)));
    return (long)(p + 4 - buf);
}

struct cursor { const uint8_t *p, *end; };

static int get_str(struct cursor *c, char *out, size_t max, int wide, const char *field,
                   char *err, size_t errlen)
{
    size_t n;

    if (c->end - c->p < (wide ? 2 : 1))
        goto short_;
    n = wide ? get16(c->p) : c->p[0];
    c->p += wide ? 2 : 1;
    if (n > max) {
        snprintf(err, errlen, "trace header: %s length %zu exceeds limit %zu", field, n, max);
        return -EINVAL;
    }
    if ((size_t)(c->end - c->p) < n)
        goto short_;
    memcpy(out, c->p, n);
    out[n] = '\0';
    if (strlen(out) != n) {
        snprintf(err, errlen, "trace header: %s contains a NUL byte", field);
        return -EINVAL;
    }
    c->p += n;
    return 0;
short_:
    snprintf(err, errlen, "trace header: body ends inside %s", field);
    return -EINVAL;
}

static int header_decode(const uint8_t *buf, size_t size, struct trace_header *h, size_t *hlen,
                         char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (size < 8 || memcmp(buf, TRACE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a vmlab trace: bad magic at offset 0 (expected \"%s\")",
                 TRACE_MAGIC);
        return -EINVAL;
    }
    if (size < TRACE_FILE_HDR_SIZE) {
        snprintf(err, errlen, "trace header truncated: file is %zu bytes, header needs %d",
                 size, TRACE_FILE_HDR_SIZE);
        return -EINVAL;
    }
    unsigned version = get16(buf + 8), flags = get16(buf + 10);
    uint32_t body = get32(buf + 12);
    if (version != TRACE_VERSION) {
        snprintf(err, errlen, "trace format version %u is not supported (this vmlab reads "
                 "version %d)", version, TRACE_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (flags & ~TRACE_FLAGS_KNOWN) {
        snprintf(err, errlen, "trace header: unknown flags 0x%x", flags);
        return -EINVAL;
    }
    if (body > TRACE_HEADER_MAX) {
        snprintf(err, errlen, "trace header: body length %" PRIu32 " exceeds limit %u", body,
                 TRACE_HEADER_MAX);
        return -EINVAL;
    }
    if (size - TRACE_FILE_HDR_SIZE < (size_t)body + 4) {
        snprintf(err, errlen, "trace header truncated: body of %" PRIu32 " bytes + CRC, "
                 "only %zu bytes follow", body, size - TRACE_FILE_HDR_SIZE);
        return -EINVAL;
    }
    size_t end = TRACE_FILE_HDR_SIZE + body;
    uint32_t stored = get32(buf + end), crc = trace_crc32(0, buf, end);
    if (stored != crc) {
        snprintf(err, errlen, "trace header: CRC mismatch at offset %zu (stored 0x%08" PRIx32
                 ", computed 0x%08" PRIx32 ")", end, stored, crc);
        return -EBADMSG;
    }

    struct cursor c = { buf + TRACE_FILE_HDR_SIZE, buf + end };
    struct machine_config *mc = &h->machine;
    int rc;
    h->version = version;
    h->flags = flags;
    if ((rc = get_str(&c, h->vmlab_version, TRACE_VERSION_STR_MAX, 0, "vmlab version", err, errlen)))
        return rc;
    if (c.end - c.p < 8)
        goto short_;
    mc->seed = get64(c.p);
    c.p += 8;
    if ((rc = get_str(&c, mc->backend, sizeof(mc->backend) - 1, 0, "backend", err, errlen)))
        return rc;
    if (c.end - c.p < 9)
        goto short_;
    mc->ram_size = get64(c.p);
    mc->ndevices = c.p[8];
    c.p += 9;
    if (mc->ndevices > MACHINE_MAX_DEVICES) {
        snprintf(err, errlen, "trace header: device count %u exceeds limit %d", mc->ndevices,
                 MACHINE_MAX_DEVICES);
        return -EINVAL;
    }
    for (unsigned i = 0; i < mc->ndevices; i++) {
        struct machine_device *d = &mc->devices[i];
        if ((rc = get_str(&c, d->kind, DEVICE_KIND_MAX - 1, 0, "device kind", err, errlen)) ||
            (rc = get_str(&c, d->args, DEVICE_ARGS_MAX - 1, 1, "device args", err, errlen)))
            return rc;
        if (c.end - c.p < 13)
            goto short_;
        d->base = get64(c.p);
        d->irq = (int)get32(c.p + 8);
        d->space = c.p[12];
        c.p += 13;
        if (d->space != BUS_MMIO && d->space != BUS_PIO) {
            snprintf(err, errlen, "trace header: device %u space %d is neither mmio nor pio",
                     i, d->space);
            return -EINVAL;
        }
    }
    if (c.p != c.end) {
        snprintf(err, errlen, "trace header: %zu unexpected bytes after the device list",
                 (size_t)(c.end - c.p));
        return -EINVAL;
    }
    *hlen = end + 4;
    return 0;
short_:
    snprintf(err, errlen, "trace header: body ends early (length %" PRIu32 ")", body);
    return -EINVAL;
}

/* ---------------------------------------------------------------- writer */

struct trace_writer {
    FILE *f;
    uint8_t *buf;           /* chunk header space + payload */
    size_t len, cap;        /* payload bytes after the header space */
    uint32_t nevents;
    uint64_t chunk_base_time, time, index, chunk_first;
    uint64_t last_addr, last_dma;
    uint64_t bytes;
    int error;
};

static int writer_reserve(struct trace_writer *w, size_t more)
{
    size_t need = TRACE_CHUNK_HDR_SIZE + w->len + more;

    if (need <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 2 * TRACE_CHUNK_TARGET;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(w->buf, cap);
    if (!p)
        return -ENOMEM;
    w->buf = p;
    w->cap = cap;
    return 0;
}

int trace_writer_open(struct trace_writer **out, const char *path, const struct trace_header *h,
                      char *err, size_t errlen)
{
    uint8_t hdr[TRACE_FILE_HDR_SIZE + 32 + MACHINE_MAX_DEVICES * (DEVICE_KIND_MAX + DEVICE_ARGS_MAX + 20) + 64];
    long hl = header_encode(h, hdr, sizeof(hdr));
    struct trace_writer *w;

    *out = NULL;
    if (hl < 0) {
        snprintf(err, errlen, "trace %s: machine description does not fit the header", path);
        return -EINVAL;
    }
    w = calloc(1, sizeof(*w));
    if (!w || writer_reserve(w, TRACE_CHUNK_TARGET)) {
        free(w);
        snprintf(err, errlen, "trace %s: out of memory", path);
        return -ENOMEM;
    }
    w->f = fopen(path, "wb");
    if (!w->f) {
        int e = errno;
        snprintf(err, errlen, "trace %s: %s", path, strerror(e));
        free(w->buf);
        free(w);
        return -e;
    }
    if (fwrite(hdr, 1, (size_t)hl, w->f) != (size_t)hl)
        w->error = -EIO;
    w->bytes = (uint64_t)hl;
    *out = w;
    return 0;
}

int trace_writer_flush(struct trace_writer *w)
{
    uint8_t *h = w->buf;

    if (!w->nevents)
        return w->error;
    put32(h, TRACE_CHUNK_MAGIC);
    put32(h + 4, (uint32_t)w->len);
    put32(h + 8, w->nevents);
    put64(h + 16, w->chunk_base_time);
    put64(h + 24, w->chunk_first);
    uint32_t crc = trace_crc32(0, h + 4, 8);
    crc = trace_crc32(crc, h + 16, 16 + w->len);
    put32(h + 12, crc);
    size_t total = TRACE_CHUNK_HDR_SIZE + w->len;
    if (!w->error && fwrite(h, 1, total, w->f) != total)
        w->error = -EIO;
    w->bytes += total;
    w->len = 0;
    w->nevents = 0;
    w->chunk_base_time = w->time;
    w->chunk_first = w->index;
    w->last_addr = w->last_dma = 0;
    return w->error;
}

int trace_writer_add(struct trace_writer *w, const struct trace_event *ev)
{
    unsigned k = ev->kind;
    uint32_t len = 0;

    if (k < 1 || k > TRACE_EV_KIND_MAX)
        return -EINVAL;
    if (k == TRACE_EV_DMA_READ || k == TRACE_EV_DMA_WRITE)
        len = ev->len;
    else if (k == TRACE_EV_CONTROL || k == TRACE_EV_FAULT)
        len = ev->len > TRACE_TEXT_MAX ? TRACE_TEXT_MAX : ev->len;   /* text is cut, not lost */
    if (len > TRACE_DATA_MAX)
        return -EMSGSIZE;
    if (writer_reserve(w, 64 + (size_t)len)) {
        w->error = -ENOMEM;
        return -ENOMEM;
    }

    uint8_t *start = w->buf + TRACE_CHUNK_HDR_SIZE + w->len, *p = start + 1;
    uint64_t t = ev->time_ns < w->time ? w->time : ev->time_ns;
    uint8_t b0 = (uint8_t)k;

    p = put_varint(p, t - w->time);
    w->time = t;
    if (ev->vcpu) {
        b0 |= 0x40;
        p = put_varint(p, ev->vcpu);
    }
    switch (k) {
    case TRACE_EV_MMIO_READ: case TRACE_EV_MMIO_WRITE: case TRACE_EV_PIO_IN: case TRACE_EV_PIO_OUT: {
        unsigned lg = ev->size >= 8 ? 3 : ev->size >= 4 ? 2 : ev->size >= 2 ? 1 : 0;
        uint64_t mask = lg == 3 ? ~0ULL : (1ULL << (8u << lg)) - 1;
        b0 |= (uint8_t)(lg << 4);
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, zigzag((int64_t)(ev->addr - w->last_addr)));
        w->last_addr = ev->addr;
        p = put_varint(p, ev->value & mask);
        break;
    }
    case TRACE_EV_DMA_READ: case TRACE_EV_DMA_WRITE:
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, zigzag((int64_t)(ev->addr - w->last_dma)));
        w->last_dma = ev->addr;
        p = put_varint(p, len);
        memcpy(p, ev->data, len);
        p += len;
        break;
    case TRACE_EV_IRQ:
        b0 |= (uint8_t)((ev->value ? 1 : 0) << 4);
        p = put_varint(p, ev->addr);
        break;
    case TRACE_EV_NOTIFY:
        p = put_varint(p, (uint64_t)(ev->device + 1));
        p = put_varint(p, ev->addr);
        break;
    case TRACE_EV_CONTROL: case TRACE_EV_FAULT:
        p = put_varint(p, len);
        if (len)
            memcpy(p, ev->data, len);
        p += len;
        break;
    case TRACE_EV_END:
        p = put_varint(p, zigzag((int64_t)ev->value));
        break;
    }
    *start = b0;
    w->len += (size_t)(p - start);
    w->nevents++;
    w->index++;
    if (w->len >= TRACE_CHUNK_TARGET)
        return trace_writer_flush(w);
    return 0;
}

uint64_t trace_writer_bytes(const struct trace_writer *w) { return w->bytes + w->len; }
uint64_t trace_writer_events(const struct trace_writer *w) { return w->index; }

int trace_writer_close(struct trace_writer *w, char *err, size_t errlen)
{
    int rc;

    if (!w)
        return 0;
    trace_writer_flush(w);
    if (fclose(w->f) && !w->error)
        w->error = -EIO;
    rc = w->error;
    if (rc)
        snprintf(err, errlen, "trace: writing failed: %s", strerror(-rc));
    free(w->buf);
    free(w);
    return rc;
}

int trace_write_file(const char *path, const struct trace_header *h,
                     const struct trace_event *ev, size_t n, char *err, size_t errlen)
{
    struct trace_writer *w;
    int rc = trace_writer_open(&w, path, h, err, errlen);

    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++)
        rc = trace_writer_add(w, &ev[i]);
    int rc2 = trace_writer_close(w, err, errlen);
    if (rc && !rc2)
        snprintf(err, errlen, "trace %s: %s", path, strerror(-rc));
    return rc ? rc : rc2;
}

/* ---------------------------------------------------------------- reader */

struct trace_reader {
    const uint8_t *buf;
    size_t size;
    int mapped;
    struct trace_header hdr;
    size_t pos;                 /* file offset of the next chunk */
    /* current chunk */
    const uint8_t *p, *end;
    uint32_t left;              /* events left in it */
    uint64_t chunk, chunk_off;  /* its index and offset */
    uint64_t time, last_addr, last_dma, index;
    int failed;
};

static int reader_init(struct trace_reader *r, char *err, size_t errlen)
{
    size_t hl;
    int rc = header_decode(r->buf, r->size, &r->hdr, &hl, err, errlen);

    if (rc)
        return rc;
    r->pos = hl;
    r->p = r->end = r->buf + hl;
    r->chunk = (uint64_t)-1;
    return 0;
}

int trace_reader_open_mem(struct trace_reader **out, const void *buf, size_t len,
                          char *err, size_t errlen)
{
    struct trace_reader *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r) {
        snprintf(err, errlen, "trace: out of memory");
        return -ENOMEM;
    }
    r->buf = buf;
    r->size = len;
    rc = reader_init(r, err, errlen);
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    void *map;

    *out = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "trace %s: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        snprintf(err, errlen, "trace %s: %s", path,
                 S_ISREG(st.st_mode) ? "file is empty" : "not a regular file");
        close(fd);
        return -EINVAL;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        rc = -errno;
        snprintf(err, errlen, "trace %s: mmap: %s", path, strerror(-rc));
        return rc;
    }
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    rc = trace_reader_open_mem(out, map, (size_t)st.st_size, err, errlen);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    (*out)->mapped = 1;
    return 0;
}

void trace_reader_close(struct trace_reader *r)
{
    if (!r)
        return;
    if (r->mapped)
        munmap((void *)r->buf, r->size);
    free(r);
}

const struct trace_header *trace_reader_header(const struct trace_reader *r) { return &r->hdr; }
uint64_t trace_reader_index(const struct trace_reader *r) { return r->index; }
uint64_t trace_reader_chunks(const struct trace_reader *r) { return r->chunk + 1; }

static int chunk_open(struct trace_reader *r, char *err, size_t errlen)
{
    uint64_t idx = r->chunk + 1;
    size_t off = r->pos, left = r->size - off;
    const uint8_t *h = r->buf + off;

    if (left < TRACE_CHUNK_HDR_SIZE) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: truncated header (%zu of %d "
                 "bytes)", idx, off, left, TRACE_CHUNK_HDR_SIZE);
        return -EPIPE;
    }
    uint32_t magic = get32(h), plen = get32(h + 4), nev = get32(h + 8), stored = get32(h + 12);
    if (magic != TRACE_CHUNK_MAGIC) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: bad chunk magic 0x%08" PRIx32,
                 idx, off, magic);
        return -EBADMSG;
    }
    if (plen > TRACE_CHUNK_MAX) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: payload length %" PRIu32
                 " exceeds limit %u", idx, off, plen, TRACE_CHUNK_MAX);
        return -EBADMSG;
    }
    if (plen > left - TRACE_CHUNK_HDR_SIZE) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: truncated (payload needs %"
                 PRIu32 " bytes, %zu remain)", idx, off, plen, left - TRACE_CHUNK_HDR_SIZE);
        return -EPIPE;
    }
    uint32_t crc = trace_crc32(0, h + 4, 8);
    crc = trace_crc32(crc, h + 16, 16 + (size_t)plen);
    if (crc != stored) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: CRC mismatch (stored 0x%08"
                 PRIx32 ", computed 0x%08" PRIx32 ")", idx, off, stored, crc);
        return -EBADMSG;
    }
    if (nev == 0 || nev > plen / 3) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: event count %" PRIu32
                 " impossible for %" PRIu32 " payload bytes", idx, off, nev, plen);
        return -EBADMSG;
    }
    uint64_t first = get64(h + 24), base = get64(h + 16);
    if (first != r->index) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: first event index %" PRIu64
                 ", expected %" PRIu64 " (chunk missing or out of order)", idx, off, first,
                 r->index);
        return -EBADMSG;
    }
    if (base < r->time) {
        snprintf(err, errlen, "chunk %" PRIu64 " at offset %zu: start time %" PRIu64
                 " ns is before the previous event (%" PRIu64 " ns)", idx, off, base, r->time);
        return -EBADMSG;
    }
    r->chunk = idx;
    r->chunk_off = off;
    r->p = h + TRACE_CHUNK_HDR_SIZE;
    r->end = r->p + plen;
    r->left = nev;
    r->time = base;
    r->last_addr = r->last_dma = 0;
    r->pos = off + TRACE_CHUNK_HDR_SIZE + plen;
    return 0;
}

static int bad_event(struct trace_reader *r, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "chunk %" PRIu64 " at offset %" PRIu64 ", event %" PRIu64
             " (payload offset %zu): %s", r->chunk, r->chunk_off, r->index,
             (size_t)(r->p - (r->buf + r->chunk_off + TRACE_CHUNK_HDR_SIZE)), what);
    r->failed = 1;
    return -EBADMSG;
}

int trace_reader_next(struct trace_reader *r, struct trace_event *ev, char *err, size_t errlen)
{
    if (r->failed) {
        snprintf(err, errlen, "trace reader: already failed");
        return -EINVAL;
    }
    if (!r->left) {
        if (r->p != r->end)
            return bad_event(r, "bytes left over after the chunk's last event", err, errlen);
        if (r->pos == r->size)
            return 0;
        int rc = chunk_open(r, err, errlen);
        if (rc) {
            r->failed = 1;
            return rc;
        }
    }

    const uint8_t *p = r->p, *end = r->end;
    uint64_t dt, v, dev = 0;
    uint8_t b0;

    if (p >= end)
        return bad_event(r, "payload ends before the declared event count", err, errlen);
    b0 = *p++;
    unsigned k = b0 & 0x0f;
    if (k < 1 || k > TRACE_EV_KIND_MAX || (b0 & 0x80))
        return bad_event(r, "unknown event kind byte", err, errlen);
    if ((b0 & 0x30) && !trace_kind_is_bus(k) && k != TRACE_EV_IRQ)
        return bad_event(r, "size bits set on a non-access event", err, errlen);
    if (get_varint(&p, end, &dt))
        goto trunc;
    if (dt > UINT64_MAX - r->time)
        return bad_event(r, "time overflows", err, errlen);
    ev->time_ns = r->time + dt;
    ev->vcpu = 0;
    if (b0 & 0x40) {
        if (get_varint(&p, end, &v))
            goto trunc;
        if (v > 0xffff)
            return bad_event(r, "vcpu index out of range", err, errlen);
        ev->vcpu = (uint32_t)v;
    }
    ev->kind = (uint8_t)k;
    ev->size = 0;
    ev->device = -1;
    ev->addr = ev->value = 0;
    ev->data = NULL;
    ev->len = 0;
    switch (k) {
    case TRACE_EV_MMIO_READ: case TRACE_EV_MMIO_WRITE: case TRACE_EV_PIO_IN: case TRACE_EV_PIO_OUT: {
        unsigned lg = (b0 >> 4) & 3;
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &v))
            goto trunc;
        ev->addr = r->last_addr + (uint64_t)unzigzag(v);
        r->last_addr = ev->addr;
        if (get_varint(&p, end, &ev->value))
            goto trunc;
        ev->size = (uint8_t)(1u << lg);
        if (lg < 3 && ev->value >> (8u << lg))
            return bad_event(r, "access value wider than its size", err, errlen);
        break;
    }
    case TRACE_EV_DMA_READ: case TRACE_EV_DMA_WRITE:
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &v))
            goto trunc;
        ev->addr = r->last_dma + (uint64_t)unzigzag(v);
        r->last_dma = ev->addr;
        if (get_varint(&p, end, &v))
            goto trunc;
        if (v > TRACE_DATA_MAX)
            return bad_event(r, "DMA length exceeds the limit", err, errlen);
        if (v > (uint64_t)(end - p))
            goto trunc;
        ev->len = (uint32_t)v;
        ev->data = p;
        p += v;
        break;
    case TRACE_EV_IRQ:
        if (get_varint(&p, end, &ev->addr))
            goto trunc;
        ev->value = (b0 >> 4) & 3;
        if (ev->value > 1)
            return bad_event(r, "IRQ level is neither 0 nor 1", err, errlen);
        break;
    case TRACE_EV_NOTIFY:
        if (get_varint(&p, end, &dev) || get_varint(&p, end, &ev->addr))
            goto trunc;
        break;
    case TRACE_EV_CONTROL: case TRACE_EV_FAULT:
        if (get_varint(&p, end, &v))
            goto trunc;
        if (v > TRACE_TEXT_MAX)
            return bad_event(r, "text length exceeds the limit", err, errlen);
        if (v > (uint64_t)(end - p))
            goto trunc;
        ev->len = (uint32_t)v;
        ev->data = p;
        p += v;
        break;
    case TRACE_EV_END:
        if (get_varint(&p, end, &v))
            goto trunc;
        ev->value = (uint64_t)unzigzag(v);
        break;
    }
    if (dev > r->hdr.machine.ndevices)
        return bad_event(r, "device index beyond the header's device list", err, errlen);
    ev->device = (int16_t)((int)dev - 1);
    r->time = ev->time_ns;
    r->p = p;
    r->left--;
    r->index++;
    return 1;
trunc:
    return bad_event(r, "event runs past the end of its chunk", err, errlen);
}

int trace_reader_load(struct trace_reader *r, struct trace_event **evs, size_t *n,
                      char *err, size_t errlen)
{
    size_t cap = 1024, cnt = 0;
    struct trace_event *a = malloc(cap * sizeof(*a));
    int rc;

    *evs = NULL;
    *n = 0;
    if (!a) {
        snprintf(err, errlen, "trace: out of memory");
        return -ENOMEM;
    }
    for (;;) {
        if (cnt == cap) {
            struct trace_event *b = realloc(a, 2 * cap * sizeof(*a));
            if (!b) {
                rc = -ENOMEM;
                snprintf(err, errlen, "trace: out of memory after %zu events", cnt);
                break;
            }
            a = b;
            cap *= 2;
        }
        rc = trace_reader_next(r, &a[cnt], err, errlen);
        if (rc <= 0)
            break;
        cnt++;
    }
    if (rc == 0 && (cnt == 0 || a[cnt - 1].kind != TRACE_EV_END)) {
        snprintf(err, errlen, "trace ends after %zu events (%" PRIu64 " chunks, offset %zu) "
                 "without a run-end event: truncated", cnt, r->chunk + 1, r->pos);
        rc = -EPIPE;
    }
    *evs = a;
    *n = cnt;
    return rc;
}

void trace_fix_crcs(uint8_t *b, size_t len)
{
    if (len < TRACE_FILE_HDR_SIZE)
        return;
    uint32_t body = get32(b + 12);
    if (body > TRACE_HEADER_MAX || (size_t)body + TRACE_FILE_HDR_SIZE + 4 > len)
        return;
    size_t pos = TRACE_FILE_HDR_SIZE + body;
    put32(b + pos, trace_crc32(0, b, pos));
    pos += 4;
    while (len - pos >= TRACE_CHUNK_HDR_SIZE) {
        uint32_t plen = get32(b + pos + 4);
        if (plen > len - pos - TRACE_CHUNK_HDR_SIZE)
            break;
        uint32_t crc = trace_crc32(0, b + pos + 4, 8);
        put32(b + pos + 12, trace_crc32(crc, b + pos + 16, 16 + (size_t)plen));
        pos += TRACE_CHUNK_HDR_SIZE + plen;
    }
}

/* ---------------------------------------------------------------- formatting */

void trace_device_label(const struct trace_header *h, int dev, char *out, size_t outlen)
{
    char id[DEVICE_NAME_MAX];

    if (dev < 0 || (unsigned)dev >= h->machine.ndevices) {
        snprintf(out, outlen, "-");
        return;
    }
    const struct machine_device *d = &h->machine.devices[dev];
    if (device_arg_get(d->args, "id", id, sizeof(id)) == 1 && id[0])
        snprintf(out, outlen, "%s#%d(%s)", d->kind, dev, id);
    else
        snprintf(out, outlen, "%s#%d", d->kind, dev);
}

int trace_device_match(const struct trace_header *h, int dev, const char *name)
{
    char id[DEVICE_NAME_MAX], buf[DEVICE_KIND_MAX + 16];

    if (dev < 0 || (unsigned)dev >= h->machine.ndevices)
        return 0;
    const struct machine_device *d = &h->machine.devices[dev];
    if (!strcmp(name, d->kind))
        return 1;
    if (device_arg_get(d->args, "id", id, sizeof(id)) == 1 && !strcmp(name, id))
        return 1;
    snprintf(buf, sizeof(buf), "%d", dev);
    if (!strcmp(name, buf) || (name[0] == '#' && !strcmp(name + 1, buf)))
        return 1;
    snprintf(buf, sizeof(buf), "%s#%d", d->kind, dev);
    return !strcmp(name, buf);
}

static void hex_bytes(const uint8_t *d, size_t n, char *out, size_t outlen)
{
    size_t show = n > 16 ? 16 : n, o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < show && o + 3 < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%02x", d[i]);
    if (n > show && o + 4 < outlen)
        snprintf(out + o, outlen - o, "...");
}

static void text_escape(const uint8_t *d, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < outlen; i++) {
        uint8_t c = d[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

void trace_event_format(const struct trace_header *h, uint64_t index, const struct trace_event *ev,
                        char *out, size_t outlen)
{
    char dev[64], extra[200];
    int n = snprintf(out, outlen, "#%" PRIu64 " %" PRIu64 "ns cpu%" PRIu32 " %s", index,
                     ev->time_ns, ev->vcpu, trace_kind_name(ev->kind));
    size_t o = n < 0 ? 0 : (size_t)n >= outlen ? outlen - 1 : (size_t)n;

    trace_device_label(h, ev->device, dev, sizeof(dev));
    switch (ev->kind) {
    case TRACE_EV_MMIO_READ: case TRACE_EV_MMIO_WRITE: case TRACE_EV_PIO_IN: case TRACE_EV_PIO_OUT: {
        uint64_t off = ev->addr;
        if (ev->device >= 0 && (unsigned)ev->device < h->machine.ndevices)
            off -= h->machine.devices[ev->device].base;
        snprintf(out + o, outlen - o, " %s 0x%" PRIx64 " (+0x%" PRIx64 ") size=%u value=0x%"
                 PRIx64, dev, ev->addr, off, ev->size, ev->value);
        break;
    }
    case TRACE_EV_DMA_READ: case TRACE_EV_DMA_WRITE:
        hex_bytes(ev->data, ev->len, extra, sizeof(extra));
        snprintf(out + o, outlen - o, " gpa=0x%" PRIx64 " len=%" PRIu32 " data=%s", ev->addr,
                 ev->len, extra);
        break;
    case TRACE_EV_IRQ:
        snprintf(out + o, outlen - o, " gsi=%" PRIu64 " %s", ev->addr,
                 ev->value ? "raised" : "lowered");
        break;
    case TRACE_EV_NOTIFY:
        snprintf(out + o, outlen - o, " %s queue=%" PRIu64, dev, ev->addr);
        break;
    case TRACE_EV_CONTROL: case TRACE_EV_FAULT:
        text_escape(ev->data, ev->len, extra, sizeof(extra));
        snprintf(out + o, outlen - o, " %s", extra);
        break;
    case TRACE_EV_END:
        snprintf(out + o, outlen - o, " status=%" PRId64, (int64_t)ev->value);
        break;
    }
}

int trace_event_equal(const struct trace_event *a, const struct trace_event *b, int check_time)
{
    if (a->kind != b->kind || a->addr != b->addr || a->value != b->value || a->len != b->len ||
        a->vcpu != b->vcpu || a->device != b->device || a->size != b->size)
        return 0;
    if (check_time && a->time_ns != b->time_ns)
        return 0;
    return a->len == 0 || memcmp(a->data, b->data, a->len) == 0;
}
