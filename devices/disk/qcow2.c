/* qcow2: a header, an L1 table of L2 tables mapping guest clusters to host clusters, and
 * a refcount table of refcount blocks counting users of each host cluster. We allocate
 * by appending at the end of the file and write metadata through at once, in the order
 * data -> refcount -> L2 -> L1, so a crash can leak a cluster but never point at garbage
 * (and `qemu-img check` sees consistent refcounts after every request).
 * Tables read at open (L1, refcount table and blocks' places) are checked at open; each L2
 * entry is checked when a request first uses it, and a bad one marks the image corrupt
 * for the rest of the run, as qemu does (but only in memory: nothing more is written). */
#include <endian.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "devices/disk/disk_internal.h"
#include "devices/disk/qcow2.h"
#include "devices/disk/qcow2_meta.h"
#include "devices/disk/qcow2_zip.h"

#define QCOW2_MAGIC 0x514649fbu
#define OFLAG_COPIED (1ULL << 63)
#define OFLAG_COMPRESSED (1ULL << 62)
#define OFLAG_ZERO 1ULL
#define OFFSET_MASK 0x00fffffffffffe00ULL
#define L1_RESERVED 0x7f000000000001ffULL
#define L2_RESERVED 0x3f000000000001feULL  /* bits 1-8, 56-61 of a standard entry */
#define INCOMPAT_DIRTY 1ULL
#define INCOMPAT_CORRUPT 2ULL
#define INCOMPAT_DATA_FILE 4ULL
#define INCOMPAT_COMPRESSION 8ULL
#define INCOMPAT_EXTL2 16ULL
#define EXT_BACKING_FORMAT 0xe2792acau
#define L2_CACHE 16
#define MAX_L1_ENTRIES (32u << 20) / 8  /* like qemu's 32 MiB L1 limit */
#define SUBCLUSTERS 32                  /* per cluster with extended L2 entries */

struct l2_slot {
    uint64_t off;               /* host offset of the table, 0 = empty slot */
    uint64_t *tbl;              /* host byte order */
    uint64_t used;
};

struct qcow2 {
    int fd;
    unsigned version, cluster_bits, l2_bits, refcount_order;
    unsigned ext_l2;            /* 128-bit L2 entries: 32 subclusters per cluster */
    unsigned sc_bits;           /* subcluster size bits (= cluster_bits without ext_l2) */
    unsigned compression;       /* compression_type: QCOW2_ZIP_ZLIB or QCOW2_ZIP_ZSTD */
    unsigned csize_shift;       /* compressed descriptor: sectors field position */
    uint64_t cs;                /* cluster size */
    uint32_t l1_size;
    uint64_t l1_offset, *l1;
    uint64_t rt_offset, rt_entries, *rt;
    uint64_t alloc_next;        /* where the next cluster is appended */
    uint64_t alloc_first;       /* alloc_next at open */
    uint64_t file_size;         /* at open */
    struct meta_map meta;       /* every metadata range, sorted */
    struct disk *backing;
    struct l2_slot l2c[L2_CACHE];
    uint64_t tick;
    uint8_t *buf;               /* one cluster of scratch for guest data */
    uint8_t *mbuf;              /* one cluster of scratch for new metadata clusters */
    struct qcow2_zip *zip;      /* decompressor, made on first use */
    uint8_t *zin, *zout;        /* compressed input (2 clusters) and the cluster it gave */
    uint64_t zkey;              /* the L2 entry whose cluster zout holds, 0 = none */
    int zip_logged;
    int corrupt;                /* a bad L2 entry was found: every request fails */
    char corrupt_msg[1536];
    char path[1024];
    char backing_name[1024], backing_fmt[32];
};

/* One L2 entry as found by map_entry. */
struct l2_ref {
    uint64_t *tbl;              /* the cached table, NULL when the L1 entry is empty */
    uint64_t l2off, l1i, idx;
    uint64_t e, bm;             /* the entry and (extended L2) its subcluster bitmap */
};

enum sc_type { SC_BACKING, SC_ZERO, SC_DATA, SC_COMPRESSED };

static struct qcow2 *qc(struct disk *d) { return d->priv; }

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put_be32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i)); }
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

static int write_be64_at(int fd, uint64_t v, uint64_t off)
{
    uint8_t b[8];
    put_be64(b, v);
    return disk__pwrite_full(fd, b, 8, off);
}

/* Everything below alloc_next once we have appended; the file's own size before. */
static uint64_t file_end(const struct qcow2 *q)
{
    return q->alloc_next > q->alloc_first ? q->alloc_next : q->file_size;
}

/* Marks the image corrupt and logs the one line saying why; the request fails with -EIO,
 * and so does every later one. */
__attribute__((format(printf, 2, 3)))
static int mark_corrupt(struct qcow2 *q, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(q->corrupt_msg, sizeof(q->corrupt_msg), "qcow2 '%s': %s; image marked corrupt",
             q->path, why);
    q->corrupt = 1;
    fprintf(stderr, "vmlab: %s\n", q->corrupt_msg);
    return -EIO;
}

/* ---- L2 tables ---- */

static int l2_load(struct qcow2 *q, uint64_t off, uint64_t **out)
{
    struct l2_slot *victim = &q->l2c[0];
    for (int i = 0; i < L2_CACHE; i++) {
        if (q->l2c[i].off == off) {
            q->l2c[i].used = ++q->tick;
            *out = q->l2c[i].tbl;
            return 0;
        }
        if (q->l2c[i].used < victim->used)
            victim = &q->l2c[i];
    }
    if (!victim->tbl && !(victim->tbl = malloc(q->cs)))
        return -ENOMEM;
    victim->off = 0;
    int r = disk__pread_full(q->fd, victim->tbl, q->cs, off);
    if (r)
        return r;
    uint64_t n = q->cs / 8;
    for (uint64_t i = 0; i < n; i++)
        victim->tbl[i] = be64toh(victim->tbl[i]);
    victim->off = off;
    victim->used = ++q->tick;
    *out = victim->tbl;
    return 0;
}
/* ---- refcounts (16-bit, the only width we write) ---- */

static int refcount_set_new(struct qcow2 *q, uint64_t host);

static int alloc_cluster(struct qcow2 *q, uint64_t *out)
{
    uint64_t off = q->alloc_next;
    q->alloc_next += q->cs;
    int r = refcount_set_new(q, off);
    if (r)
        return r;
    *out = off;
    return 0;
}

/* The refcount table is full: write a larger one at the end of the file, together with
 * the refcount blocks that count its own clusters, switch the header to it in one write,
 * then release the old table. Everything new lies in [start, end) past alloc_next. */
static int refcount_table_grow(struct qcow2 *q, uint64_t need_rti)
{
    uint64_t per_block = q->cs / 2, cb = q->cluster_bits;
    uint64_t entries = q->rt_entries * 2 > need_rti + 1 ? q->rt_entries * 2 : need_rti + 1;
    uint64_t tcl = (entries * 8 + q->cs - 1) / q->cs;
    entries = tcl * q->cs / 8;
    if (tcl > (1u << 20))
        return -ENOSPC;
    uint64_t start = q->alloc_next, nb = 0, end;
    /* How many new blocks: enough to count the table and themselves (a fixpoint). */
    for (;;) {
        end = start + (tcl + nb) * q->cs;
        uint64_t want = 0;
        for (uint64_t rti = (start >> cb) / per_block; rti <= ((end - 1) >> cb) / per_block; rti++)
            want += rti >= q->rt_entries || !q->rt[rti];
        if (want <= nb)
            break;
        nb = want;
    }
    uint64_t *rt = calloc(entries, 8);
    uint8_t *raw = calloc(tcl, q->cs);
    uint8_t *blk = malloc(q->cs);
    int r = (!rt || !raw || !blk) ? -ENOMEM : 0;
    if (!r) {
        memcpy(rt, q->rt, q->rt_entries * 8);
        /* Hand out the new blocks to the ranges lacking one, spares to the next ranges. */
        uint64_t next_block = start + tcl * q->cs, rti = (start >> cb) / per_block;
        for (uint64_t i = 0; i < nb; rti++) {
            if (rti >= entries) {
                r = -ENOSPC;
                break;
            }
            if (!rt[rti]) {
                rt[rti] = next_block;
                next_block += q->cs;
                i++;
            }
        }
    }
    /* Write each touched block: fresh ones whole, existing ones entry by entry. */
    for (uint64_t rti = (start >> cb) / per_block; !r && rti <= ((end - 1) >> cb) / per_block; rti++) {
        uint64_t lo = rti * per_block, hi = lo + per_block;     /* cluster indices */
        uint64_t a = (start >> cb) > lo ? (start >> cb) : lo;
        uint64_t b = (end >> cb) < hi ? (end >> cb) : hi;
        int fresh = rti >= q->rt_entries || !q->rt[rti];
        if (fresh) {
            memset(blk, 0, q->cs);
            for (uint64_t c = a; c < b; c++)
                blk[(c - lo) * 2 + 1] = 1;
            r = disk__pwrite_full(q->fd, blk, q->cs, rt[rti]);
        } else {
            for (uint64_t c = a; !r && c < b; c++)
                r = disk__pwrite_full(q->fd, "\0\1", 2, rt[rti] + (c - lo) * 2);
        }
    }
    /* Spare blocks beyond `end`'s range (if any) cover nothing yet: zero them. */
    for (uint64_t rti = ((end - 1) >> cb) / per_block + 1; !r && rti < entries; rti++) {
        if (rt[rti] >= start && rt[rti] < end && (rti >= q->rt_entries || !q->rt[rti])) {
            memset(blk, 0, q->cs);
            r = disk__pwrite_full(q->fd, blk, q->cs, rt[rti]);
        }
    }
    if (!r) {
        for (uint64_t i = 0; i < entries; i++)
            put_be64(raw + i * 8, rt[i]);
        r = disk__pwrite_full(q->fd, raw, tcl * q->cs, start);
    }
    if (!r && fdatasync(q->fd) < 0)
        r = -errno;
    if (!r) {
        uint8_t h[12];
        put_be64(h, start);
        put_be32(h + 8, (uint32_t)tcl);
        r = disk__pwrite_full(q->fd, h, sizeof(h), 48);
    }
    if (!r) {
        uint64_t old_off = q->rt_offset, old_cl = q->rt_entries * 8 / q->cs;
        free(q->rt);
        q->rt = rt;
        rt = NULL;
        q->rt_entries = entries;
        q->rt_offset = start;
        q->alloc_next = end;
        r = meta_insert(&q->meta, start, tcl * q->cs, "refcount table");
        for (uint64_t i = 0; !r && i < nb; i++)
            r = meta_insert(&q->meta, start + (tcl + i) * q->cs, q->cs, "refcount block");
        for (uint64_t i = 0; !r && i < old_cl; i++) {
            uint64_t ci = (old_off >> cb) + i;
            if (ci / per_block < q->rt_entries && q->rt[ci / per_block])
                r = disk__pwrite_full(q->fd, "\0\0", 2,
                                      q->rt[ci / per_block] + (ci % per_block) * 2);
        }
    }
    free(rt);
    free(raw);
    free(blk);
    return r;
}

/* Marks host cluster `host` as used once (its refcount must be 0 before). */
static int refcount_set_new(struct qcow2 *q, uint64_t host)
{
    uint64_t per_block = q->cs / 2;
    uint64_t ci = host >> q->cluster_bits;
    uint64_t rti = ci / per_block;
    if (rti >= q->rt_entries) {
        int r = refcount_table_grow(q, rti);
        if (r)
            return r;
    }
    uint64_t rb = q->rt[rti];
    if (!rb) {
        /* A new refcount block, appended; it counts itself when it covers itself. */
        rb = q->alloc_next;
        q->alloc_next += q->cs;
        if (meta_insert(&q->meta, rb, q->cs, "refcount block"))
            return -ENOMEM;
        memset(q->mbuf, 0, q->cs);
        uint64_t rbi = rb >> q->cluster_bits;
        int self = rbi / per_block == rti;
        if (self) {
            q->mbuf[(rbi % per_block) * 2] = 0;
            q->mbuf[(rbi % per_block) * 2 + 1] = 1;
        }
        int r = disk__pwrite_full(q->fd, q->mbuf, q->cs, rb);
        if (!r && !self)
            r = refcount_set_new(q, rb);
        if (!r)
            r = write_be64_at(q->fd, rb, q->rt_offset + rti * 8);
        if (r)
            return r;
        q->rt[rti] = rb;
    }
    uint8_t v[2];
    uint64_t at = rb + (ci % per_block) * 2;
    int r = disk__pread_full(q->fd, v, 2, at);
    if (r)
        return r;
    if (v[0] || v[1])
        return -EIO;                    /* the cluster we append at is already in use: corrupt */
    v[1] = 1;
    return disk__pwrite_full(q->fd, v, 2, at);
}

/* The 16-bit refcount entry of host cluster `host`: its file offset, or 0 when no refcount
 * block covers it. */
static uint64_t refcount_at(const struct qcow2 *q, uint64_t host)
{
    uint64_t per_block = q->cs / 2, ci = host >> q->cluster_bits, rti = ci / per_block;
    if (rti >= q->rt_entries || !q->rt[rti])
        return 0;
    return (q->rt[rti] & ~(q->cs - 1)) + (ci % per_block) * 2;
}

/* The host clusters [first, last] a compressed cluster's bytes lie in. */
static void compressed_span(const struct qcow2 *q, uint64_t e, uint64_t *coff, uint64_t *csize)
{
    uint64_t mask = (1ULL << (q->cluster_bits - 8)) - 1;
    *coff = e & ((1ULL << q->csize_shift) - 1);
    *csize = (((e >> q->csize_shift) & mask) + 1) * 512 - (*coff & 511);
}

/* Releases a compressed cluster: one reference less on each host cluster its bytes touch
 * (qemu counts a host cluster once per compressed cluster in it). With apply 0 it only
 * checks that each count can drop (callers check before writing anything, so a bad count
 * changes nothing). */
static int compressed_release(struct qcow2 *q, uint64_t e, int apply)
{
    uint64_t coff, csize;
    compressed_span(q, e, &coff, &csize);
    uint64_t first = coff >> q->cluster_bits, last = (coff + csize - 1) >> q->cluster_bits;
    uint8_t v[3][2];                    /* up to 2 clusters of data from mid-cluster */
    for (uint64_t c = first; c <= last; c++) {
        uint64_t at = refcount_at(q, c << q->cluster_bits);
        int r = at ? disk__pread_full(q->fd, v[c - first], 2, at) : -EIO;
        if (r || !(v[c - first][0] | v[c - first][1]))
            return mark_corrupt(q, "compressed cluster at offset %llu: host cluster at offset "
                                "%llu has refcount 0", (unsigned long long)coff,
                                (unsigned long long)(c << q->cluster_bits));
    }
    for (uint64_t c = first; apply && c <= last; c++) {
        uint16_t n = (uint16_t)((v[c - first][0] << 8 | v[c - first][1]) - 1);
        uint8_t b[2] = { (uint8_t)(n >> 8), (uint8_t)n };
        int r = disk__pwrite_full(q->fd, b, 2, refcount_at(q, c << q->cluster_bits));
        if (r)
            return r;
    }
    if (q->zkey == e)
        q->zkey = 0;
    return 0;
}

/* ---- mapping ---- */

/* A bad L2 entry: its place in the log line, formatted only when it is bad. */
#define BAD_ENTRY(fmt, ...) \
    mark_corrupt(q, "L2 table at offset %llu (L1 index %llu), entry %llu: " fmt, \
                 (unsigned long long)ref->l2off, (unsigned long long)ref->l1i, \
                 (unsigned long long)ref->idx, __VA_ARGS__)

/* Checks an L2 entry on its use: a data cluster aligned, inside the file and off every
 * metadata cluster, compressed bytes off the metadata too, no reserved bits, a coherent
 * subcluster bitmap. 0, or -EIO with the image marked corrupt. */
static int check_entry(struct qcow2 *q, const struct l2_ref *ref)
{
    uint64_t e = ref->e, bm = ref->bm;
    const struct meta_range *m;
    if (e & OFLAG_COMPRESSED) {
        uint64_t coff, csize;
        compressed_span(q, e, &coff, &csize);
        if (e & OFLAG_COPIED)
            return BAD_ENTRY("compressed cluster with the COPIED flag (entry 0x%016llx)",
                             (unsigned long long)e);
        if (coff >> 56)
            return BAD_ENTRY("compressed cluster offset %llu has reserved bits set",
                             (unsigned long long)coff);
        if (bm)
            return BAD_ENTRY("compressed cluster with subcluster bitmap 0x%016llx",
                             (unsigned long long)bm);
        if (coff >= file_end(q))
            return BAD_ENTRY("compressed cluster at offset %llu is outside the file "
                             "(size %llu)", (unsigned long long)coff,
                             (unsigned long long)file_end(q));
        if ((m = meta_overlap(&q->meta, coff, csize)))
            return BAD_ENTRY("compressed cluster at offset %llu (%llu bytes) overlaps "
                             "the %s at offset %llu", (unsigned long long)coff,
                             (unsigned long long)csize, m->what, (unsigned long long)m->start);
        return 0;
    }
    uint64_t reserved = L2_RESERVED | (q->version < 3 || q->ext_l2 ? OFLAG_ZERO : 0);
    if (e & reserved)
        return BAD_ENTRY("reserved bits 0x%llx set (entry 0x%016llx)",
                         (unsigned long long)(e & reserved), (unsigned long long)e);
    uint64_t host = e & OFFSET_MASK;
    if (host % q->cs)
        return BAD_ENTRY("data cluster offset %llu is not cluster-aligned",
                         (unsigned long long)host);
    if (host && host >= file_end(q))
        return BAD_ENTRY("data cluster at offset %llu is outside the file (size %llu)",
                         (unsigned long long)host, (unsigned long long)file_end(q));
    if (host && (m = meta_overlap(&q->meta, host, q->cs)))
        return BAD_ENTRY("data cluster at offset %llu overlaps the %s at offset %llu",
                         (unsigned long long)host, m->what,
                         (unsigned long long)m->start);
    if (q->ext_l2 && ((bm >> 32) & bm))
        return BAD_ENTRY("subclusters both allocated and zero (bitmap 0x%016llx)",
                         (unsigned long long)bm);
    if (q->ext_l2 && !host && (uint32_t)bm)
        return BAD_ENTRY("subclusters allocated in an unallocated cluster (bitmap "
                         "0x%016llx)", (unsigned long long)bm);
    return 0;
}

/* Looks up (and checks) the L2 entry for guest offset `off`. ref->tbl is NULL when no L2
 * table exists (and allocate is 0). */
static int map_entry(struct qcow2 *q, uint64_t off, int allocate, struct l2_ref *ref)
{
    uint64_t l1i = off >> (q->cluster_bits + q->l2_bits);
    *ref = (struct l2_ref){ .l1i = l1i, .idx = (off >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1) };
    if (q->corrupt)
        return -EIO;
    if (l1i >= q->l1_size)
        return -EIO;
    uint64_t l2 = q->l1[l1i] & OFFSET_MASK;
    if (!l2) {
        if (!allocate)
            return 0;
        int r = alloc_cluster(q, &l2);
        if (!r)
            r = meta_insert(&q->meta, l2, q->cs, "L2 table");
        if (r)
            return r;
        memset(q->mbuf, 0, q->cs);
        r = disk__pwrite_full(q->fd, q->mbuf, q->cs, l2);
        if (!r)
            r = write_be64_at(q->fd, l2 | OFLAG_COPIED, q->l1_offset + l1i * 8);
        if (r)
            return r;
        q->l1[l1i] = l2 | OFLAG_COPIED;
    }
    ref->l2off = l2;
    int r = l2_load(q, l2, &ref->tbl);
    if (r)
        return r;
    ref->e = ref->tbl[ref->idx << q->ext_l2];
    ref->bm = q->ext_l2 ? ref->tbl[(ref->idx << 1) + 1] : 0;
    return check_entry(q, ref);
}

static enum sc_type sc_type(const struct qcow2 *q, const struct l2_ref *ref, unsigned sc)
{
    uint64_t e = ref->e;
    if (e & OFLAG_COMPRESSED)
        return SC_COMPRESSED;
    if (q->ext_l2)
        return ref->bm >> (32 + sc) & 1 ? SC_ZERO : ref->bm >> sc & 1 ? SC_DATA : SC_BACKING;
    if (q->version >= 3 && (e & OFLAG_ZERO))
        return SC_ZERO;
    return e & OFFSET_MASK ? SC_DATA : SC_BACKING;
}

/* An allocated cluster may end past the end of the file (qemu does not always write
 * whole clusters): those bytes read as zeroes. */
static int pread_zfill(int fd, void *buf, size_t len, uint64_t off)
{
    char *b = buf;
    while (len) {
        ssize_t n = pread(fd, b, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            memset(b, 0, len);
            return 0;
        }
        b += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Guest bytes of an unallocated cluster: the backing file's, zero past its end. */
static int read_backing(struct qcow2 *q, uint64_t off, void *buf, size_t n)
{
    uint64_t have = 0;
    if (q->backing && off < q->backing->size)
        have = q->backing->size - off < n ? q->backing->size - off : n;
    if (have) {
        int r = disk_read(q->backing, off, buf, (size_t)have);
        if (r)
            return r;
    }
    memset((char *)buf + have, 0, n - have);
    return 0;
}

/* The whole guest cluster of compressed entry e, into q->zout (kept for the next request:
 * a guest reading a cluster in 4 KiB pieces decompresses it once). */
static int read_compressed(struct qcow2 *q, uint64_t e)
{
    if (q->zkey == e)
        return 0;
    uint64_t coff, csize;
    compressed_span(q, e, &coff, &csize);
    if (!q->zip && !(q->zip = qcow2_zip_new(q->compression)))
        return -ENOMEM;
    q->zkey = 0;
    int r = pread_zfill(q->fd, q->zin, csize, coff);
    if (r)
        return r;
    if (qcow2_zip_decompress(q->zip, q->zin, csize, q->zout, q->cs)) {
        if (!q->zip_logged++)
            fprintf(stderr, "vmlab: qcow2 '%s': compressed cluster at offset %llu (%llu bytes) "
                    "does not decompress (%s) to a whole cluster\n", q->path,
                    (unsigned long long)coff, (unsigned long long)csize,
                    qcow2_zip_name(q->compression));
        return -EIO;
    }
    q->zkey = e;
    return 0;
}

/* Fills buf with the guest bytes [in, in+n) of the cluster at guest offset base, as the
 * entry says, a run of subclusters of the same kind at a time. */
static int read_cluster(struct qcow2 *q, const struct l2_ref *ref, uint64_t base, uint64_t in,
                        char *buf, size_t n)
{
    uint64_t pos = in, end = in + n, scs = 1ULL << q->sc_bits;
    while (pos < end) {
        enum sc_type t = sc_type(q, ref, (unsigned)(pos >> q->sc_bits));
        uint64_t stop = ((pos >> q->sc_bits) + 1) << q->sc_bits;
        while (stop < end && sc_type(q, ref, (unsigned)(stop >> q->sc_bits)) == t)
            stop += scs;
        if (stop > end)
            stop = end;
        char *b = buf + (pos - in);
        size_t len = (size_t)(stop - pos);
        int r = 0;
        if (t == SC_DATA)
            r = pread_zfill(q->fd, b, len, (ref->e & OFFSET_MASK) + pos);
        else if (t == SC_ZERO)
            memset(b, 0, len);
        else if (t == SC_BACKING)
            r = read_backing(q, base + pos, b, len);
        else if (!(r = read_compressed(q, ref->e)))
            memcpy(b, q->zout + pos, len);
        if (r)
            return r;
        pos = stop;
    }
    return 0;
}

static int q_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    struct qcow2 *q = qc(d);
    int r = disk__check_range(d, off, len);
    if (r)
        return r;
    char *b = buf;
    while (len) {
        uint64_t in = off & (q->cs - 1);
        size_t n = q->cs - in < len ? (size_t)(q->cs - in) : len;
        struct l2_ref ref;
        r = map_entry(q, off, 0, &ref);
        if (!r)
            r = read_cluster(q, &ref, off - in, in, b, n);
        if (r)
            return r;
        b += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int set_l2(struct qcow2 *q, const struct l2_ref *ref, uint64_t e, uint64_t bm)
{
    uint8_t b[16];
    put_be64(b, e);
    put_be64(b + 8, bm);
    int r = disk__pwrite_full(q->fd, b, 8u << q->ext_l2, ref->l2off + (ref->idx << (3 + q->ext_l2)));
    if (!r) {
        ref->tbl[ref->idx << q->ext_l2] = e;
        if (q->ext_l2)
            ref->tbl[(ref->idx << 1) + 1] = bm;
    }
    return r;
}

/* Allocation bits of subclusters s0..s1. */
static uint64_t sc_mask(unsigned s0, unsigned s1)
{
    return (s1 >= 31 ? 0xffffffffULL : (1ULL << (s1 + 1)) - 1) & ~((1ULL << s0) - 1);
}

/* A write into a compressed cluster: the cluster, decompressed and updated, goes to a new
 * cluster (copy-on-write, as qemu does), then the compressed bytes are released. */
static int write_compressed(struct qcow2 *q, struct l2_ref *ref, uint64_t in, const char *data,
                            size_t n)
{
    uint64_t e = ref->e, host;
    int r = read_compressed(q, e);
    if (!r)
        r = compressed_release(q, e, 0);
    if (r)
        return r;
    memcpy(q->buf, q->zout, q->cs);
    if (data)
        memcpy(q->buf + in, data, n);
    else
        memset(q->buf + in, 0, n);
    if ((r = alloc_cluster(q, &host)) || (r = disk__pwrite_full(q->fd, q->buf, q->cs, host)) ||
        (r = set_l2(q, ref, host | OFLAG_COPIED, q->ext_l2 ? 0xffffffffULL : 0)))
        return r;
    return compressed_release(q, e, 1);
}

/* Writes n bytes (within one cluster) at guest offset off; data NULL writes zeroes.
 * Subclusters partly written get their old bytes (backing, zeroes or data) around the
 * new ones; with extended L2 only the subclusters written become allocated. */
static int write_chunk(struct qcow2 *q, uint64_t off, const char *data, size_t n)
{
    uint64_t in = off & (q->cs - 1), base = off - in;
    struct l2_ref ref;
    int r = map_entry(q, off, 1, &ref);
    if (r)
        return r;
    if (ref.e & OFLAG_COMPRESSED)
        return write_compressed(q, &ref, in, data, n);
    uint64_t host = ref.e & OFFSET_MASK;
    if (host && !(ref.e & OFLAG_COPIED))
        return -EROFS;                  /* shared with a snapshot: copy-on-write not supported */
    unsigned s0 = (unsigned)(in >> q->sc_bits), s1 = (unsigned)((in + n - 1) >> q->sc_bits);
    int in_place = 1;
    for (unsigned s = s0; s <= s1; s++)
        in_place &= sc_type(q, &ref, s) == SC_DATA;
    if (in_place) {
        if (!data) {
            memset(q->buf, 0, n);
            data = (const char *)q->buf;
        }
        return disk__pwrite_full(q->fd, data, n, host + in);
    }
    uint64_t lo = (uint64_t)s0 << q->sc_bits, hi = (uint64_t)(s1 + 1) << q->sc_bits;
    uint64_t scs = 1ULL << q->sc_bits;
    if (in != lo)
        r = read_cluster(q, &ref, base, lo, (char *)q->buf, scs);
    if (!r && in + n != hi && (s1 != s0 || in == lo))
        r = read_cluster(q, &ref, base, hi - scs, (char *)q->buf + (hi - scs - lo), scs);
    if (r)
        return r;
    if (data)
        memcpy(q->buf + (in - lo), data, n);
    else
        memset(q->buf + (in - lo), 0, n);
    if (!host && (r = alloc_cluster(q, &host)))
        return r;
    if ((r = disk__pwrite_full(q->fd, q->buf, hi - lo, host + lo)))
        return r;
    uint64_t bm = 0;
    if (q->ext_l2) {
        uint64_t mask = sc_mask(s0, s1);
        bm = (ref.bm | mask) & ~(mask << 32);
    }
    return set_l2(q, &ref, host | OFLAG_COPIED, bm);
}

/* Before a write touches the file, every L2 entry it will use is checked, so a request
 * meeting a corrupt entry writes nothing at all. */
static int check_range(struct qcow2 *q, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;
    for (uint64_t o = off & ~(q->cs - 1); o < end; o += q->cs) {
        struct l2_ref ref;
        int r = map_entry(q, o, 0, &ref);
        if (r)
            return r;
    }
    return 0;
}

static int q_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    if (d->read_only)
        return -EROFS;
    struct qcow2 *q = qc(d);
    int r = disk__check_range(d, off, len);
    if (!r)
        r = check_range(q, off, len);
    const char *b = buf;
    while (!r && len) {
        size_t n = q->cs - (off & (q->cs - 1)) < len ? (size_t)(q->cs - (off & (q->cs - 1))) : len;
        r = write_chunk(q, off, b, n);
        b += n;
        off += n;
        len -= n;
    }
    return r;
}

/* Whole subclusters [in, in+n) of one cluster read as zeroes from now on: the zero flag
 * (or zero bits), keeping any allocation for reuse; a compressed cluster zeroed whole is
 * released. */
static int zero_subclusters(struct qcow2 *q, uint64_t off, uint64_t n)
{
    uint64_t in = off & (q->cs - 1);
    struct l2_ref ref;
    int r = map_entry(q, off, q->backing != NULL, &ref);
    if (r || !ref.tbl)
        return r;
    uint64_t e = ref.e;
    if (e & OFLAG_COMPRESSED) {
        if (n != q->cs)
            return write_chunk(q, off, NULL, (size_t)n);
        if ((r = compressed_release(q, e, 0)) ||
            (r = set_l2(q, &ref, q->ext_l2 ? 0 : OFLAG_ZERO, q->ext_l2 ? 0xffffffffULL << 32 : 0)))
            return r;
        return compressed_release(q, e, 1);
    }
    if ((e & OFFSET_MASK) && !(e & OFLAG_COPIED))
        return -EROFS;                  /* shared with a snapshot */
    if (!q->ext_l2) {
        if (e & OFFSET_MASK)
            return set_l2(q, &ref, (e & OFFSET_MASK) | OFLAG_COPIED | OFLAG_ZERO, 0);
        return q->backing ? set_l2(q, &ref, OFLAG_ZERO, 0) : 0;
    }
    uint64_t mask = sc_mask((unsigned)(in >> q->sc_bits), (unsigned)((in + n - 1) >> q->sc_bits));
    uint64_t bm = (ref.bm & ~mask) | (mask << 32);
    return bm == ref.bm ? 0 : set_l2(q, &ref, e, bm);
}

static int q_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    if (d->read_only)
        return -EROFS;
    struct qcow2 *q = qc(d);
    int r = disk__check_range(d, off, len);
    if (!r)
        r = check_range(q, off, len);
    uint64_t scs = 1ULL << q->sc_bits;
    while (!r && len) {
        uint64_t in = off & (q->cs - 1);
        uint64_t n = q->cs - in < len ? q->cs - in : len;
        /* whole subclusters in the middle, partial ones at the ends written as data */
        uint64_t a = (in + scs - 1) & ~(scs - 1), b = (in + n) & ~(scs - 1);
        if (q->version < 3 || a >= b) {
            r = write_chunk(q, off, NULL, (size_t)n);
        } else {
            if (a > in)
                r = write_chunk(q, off, NULL, (size_t)(a - in));
            if (!r)
                r = zero_subclusters(q, off - in + a, b - a);
            if (!r && in + n > b)
                r = write_chunk(q, off - in + b, NULL, (size_t)(in + n - b));
        }
        off += n;
        len -= n;
    }
    return r;
}

static int q_flush(struct disk *d)
{
    if (qc(d)->corrupt)
        return -EIO;
    if (d->read_only)
        return 0;
    return fdatasync(qc(d)->fd) < 0 ? -errno : 0;
}
/* Growing only (shrinking would drop guest data). A larger L1 table, when needed, is
 * written in full at the end of the file before one header write switches to it; the
 * old table's clusters are then released. */
static int q_resize(struct disk *d, uint64_t new_size)
{
    struct qcow2 *q = qc(d);
    if (d->read_only)
        return -EROFS;
    if (q->corrupt)
        return -EIO;
    if (new_size < d->size)
        return -ENOTSUP;
    if (new_size > (1ULL << 61))
        return -EINVAL;
    uint64_t per_l2 = q->cs << q->l2_bits;
    uint64_t need = (new_size + per_l2 - 1) / per_l2;
    if (need > MAX_L1_ENTRIES)
        return -EFBIG;
    uint8_t hdr[24];
    put_be64(hdr, new_size);
    put_be32(hdr + 8, 0);                           /* crypt_method */
    if (need <= q->l1_size) {
        int r = disk__pwrite_full(q->fd, hdr, 8, 24);
        if (!r)
            d->size = new_size;
        return r;
    }

    uint64_t bytes = need * 8, ncl = (bytes + q->cs - 1) / q->cs;
    uint64_t *l1 = calloc(ncl, q->cs);
    uint8_t *raw = calloc(ncl, q->cs);
    int r = (!l1 || !raw) ? -ENOMEM : 0;
    /* Reserve the range first so refcount blocks land after it, keeping it contiguous. */
    uint64_t newoff = q->alloc_next;
    if (!r) {
        q->alloc_next += ncl * q->cs;
        r = meta_insert(&q->meta, newoff, ncl * q->cs, "L1 table");
    }
    for (uint64_t i = 0; !r && i < ncl; i++)
        r = refcount_set_new(q, newoff + i * q->cs);
    if (!r) {
        memcpy(l1, q->l1, (size_t)q->l1_size * 8);
        for (uint64_t i = 0; i < need; i++)
            put_be64(raw + i * 8, l1[i]);
        r = disk__pwrite_full(q->fd, raw, ncl * q->cs, newoff);
    }
    if (!r && fdatasync(q->fd) < 0)
        r = -errno;
    if (!r) {
        put_be32(hdr + 12, (uint32_t)need);
        put_be64(hdr + 16, newoff);
        r = disk__pwrite_full(q->fd, hdr, sizeof(hdr), 24);
    }
    if (!r) {
        /* release the old table (refcount 1 -> 0) */
        uint64_t oldcl = ((uint64_t)q->l1_size * 8 + q->cs - 1) / q->cs;
        for (uint64_t i = 0; !r && i < oldcl; i++) {
            uint64_t ci = (q->l1_offset >> q->cluster_bits) + i, per_block = q->cs / 2;
            uint64_t rb = ci / per_block < q->rt_entries ? q->rt[ci / per_block] : 0;
            if (rb)
                r = disk__pwrite_full(q->fd, "\0\0", 2, rb + (ci % per_block) * 2);
        }
        free(q->l1);
        q->l1 = l1;
        l1 = NULL;
        q->l1_size = (uint32_t)need;
        q->l1_offset = newoff;
        d->size = new_size;
    }
    free(l1);
    free(raw);
    return r;
}

static void q_free(struct qcow2 *q)
{
    for (int i = 0; i < L2_CACHE; i++)
        free(q->l2c[i].tbl);
    free(q->l1);
    free(q->rt);
    free(q->buf);
    free(q->mbuf);
    free(q->zin);
    free(q->zout);
    qcow2_zip_free(q->zip);
    meta_free(&q->meta);
    if (q->backing)
        disk_close(q->backing);
    if (q->fd >= 0)
        close(q->fd);
}

static void q_close(struct disk *d)
{
    q_free(qc(d));
    free(d);
}

static const struct disk_ops qcow2_ops = {
    .format = "qcow2",
    .read = q_read,
    .write = q_write,
    .flush = q_flush,
    .discard = q_write_zeroes,          /* reads after discard return zeroes */
    .write_zeroes = q_write_zeroes,
    .resize = q_resize,
    .close = q_close,
};

int qcow2_get_info(struct disk *d, struct qcow2_info *out)
{
    if (d->ops != &qcow2_ops)
        return -EINVAL;
    struct qcow2 *q = qc(d);
    out->version = q->version;
    out->cluster_size = q->cs;
    snprintf(out->backing_file, sizeof(out->backing_file), "%s", q->backing_name);
    snprintf(out->backing_format, sizeof(out->backing_format), "%s", q->backing_fmt);
    snprintf(out->compression_type, sizeof(out->compression_type), "%s",
             qcow2_zip_name(q->compression));
    out->extended_l2 = q->ext_l2;
    snprintf(out->corrupt, sizeof(out->corrupt), "%s", q->corrupt ? q->corrupt_msg : "");
    return 0;
}

int qcow2_scan(struct disk *d, uint64_t *compressed, char *err, size_t errlen)
{
    if (d->ops != &qcow2_ops)
        return -EINVAL;
    struct qcow2 *q = qc(d);
    uint64_t per_l2 = 1ULL << q->l2_bits, n = 0;
    int r = 0;
    for (uint64_t i = 0; !r && i < q->l1_size; i++) {
        if (!(q->l1[i] & OFFSET_MASK))
            continue;
        for (uint64_t j = 0; !r && j < per_l2; j++) {
            struct l2_ref ref;
            r = map_entry(q, (i << (q->cluster_bits + q->l2_bits)) | (j << q->cluster_bits), 0, &ref);
            n += !r && (ref.e & OFLAG_COMPRESSED);
        }
    }
    if (r)
        disk__err(err, errlen, "%s", q->corrupt ? q->corrupt_msg : strerror(-r));
    *compressed = n;
    return r;
}

/* ---- opening ---- */

#define BAD(...) do { disk__err(err, errlen, __VA_ARGS__); r = -EINVAL; goto fail; } while (0)

static int table_in_file(uint64_t off, uint64_t bytes, uint64_t file_size)
{
    return off <= file_size && bytes <= file_size - off;
}

int disk_qcow2_open(const char *path, int read_only, const struct disk_open_ctx *ctx,
                    struct disk **out, char *err, size_t errlen)
{
    *out = NULL;
    int r;
    struct disk *d = disk__alloc(&qcow2_ops, sizeof(struct qcow2));
    if (!d) {
        disk__err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    struct qcow2 *q = qc(d);
    snprintf(q->path, sizeof(q->path), "%s", path);
    q->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (q->fd < 0) {
        r = -errno;
        disk__err(err, errlen, "cannot open qcow2 image '%s': %s", path, strerror(-r));
        goto fail;
    }
    struct stat st;
    if (fstat(q->fd, &st) < 0) {
        r = -errno;
        goto fail;
    }
    q->file_size = (uint64_t)st.st_size;
    uint8_t h[112] = { 0 };
    if (q->file_size < 72)
        BAD("qcow2 '%s': file is %llu bytes, shorter than a header (72)", path,
            (unsigned long long)q->file_size);
    if ((r = disk__pread_full(q->fd, h, q->file_size < sizeof(h) ? (size_t)q->file_size : sizeof(h), 0)))
        goto fail;
    if (be32(h) != QCOW2_MAGIC)
        BAD("qcow2 '%s': bad magic 0x%08x", path, be32(h));
    q->version = be32(h + 4);
    if (q->version != 2 && q->version != 3)
        BAD("qcow2 '%s': unsupported version %u (expected 2 or 3)", path, q->version);
    uint64_t backing_off = be64(h + 8);
    uint32_t backing_len = be32(h + 16);
    q->cluster_bits = be32(h + 20);
    uint64_t size = be64(h + 24);
    uint32_t crypt = be32(h + 32);
    q->l1_size = be32(h + 36);
    q->l1_offset = be64(h + 40);
    q->rt_offset = be64(h + 48);
    uint32_t rt_clusters = be32(h + 56);
    uint32_t nb_snapshots = be32(h + 60);
    uint64_t incompat = 0;
    uint32_t header_len = 72;
    q->refcount_order = 4;
    if (q->cluster_bits < 9 || q->cluster_bits > 21)
        BAD("qcow2 '%s': cluster_bits %u out of range 9..21", path, q->cluster_bits);
    q->cs = 1ULL << q->cluster_bits;
    if (q->version == 3) {
        if (q->file_size < 104)
            BAD("qcow2 '%s': file is %llu bytes, shorter than a v3 header (104)", path,
                (unsigned long long)q->file_size);
        incompat = be64(h + 72);
        q->refcount_order = be32(h + 96);
        header_len = be32(h + 100);
        if (header_len < 104 || header_len > q->cs || header_len % 8)
            BAD("qcow2 '%s': header_length %u invalid (104..cluster size, multiple of 8)", path,
                header_len);
        if (header_len > 104)
            q->compression = h[104];
    }
    if (crypt)
        BAD("qcow2 '%s': encrypted images are unsupported (crypt_method %u)", path, crypt);
    if (incompat & INCOMPAT_DATA_FILE)
        BAD("qcow2 '%s': external data files are unsupported", path);
    if (incompat & INCOMPAT_CORRUPT)
        BAD("qcow2 '%s': image is marked corrupt (run qemu-img check -r)", path);
    if (incompat & ~(INCOMPAT_DIRTY | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2))
        BAD("qcow2 '%s': unknown incompatible features 0x%llx", path,
            (unsigned long long)(incompat & ~0x1fULL));
    if (!qcow2_zip_name(q->compression))
        BAD("qcow2 '%s': unknown compression_type %u (0 zlib, 1 zstd)", path, q->compression);
    if (!!(incompat & INCOMPAT_COMPRESSION) != (q->compression != QCOW2_ZIP_ZLIB))
        BAD("qcow2 '%s': compression_type %u (%s) disagrees with the compression type "
            "feature bit (%s)", path, q->compression, qcow2_zip_name(q->compression),
            incompat & INCOMPAT_COMPRESSION ? "set" : "clear");
    q->ext_l2 = !!(incompat & INCOMPAT_EXTL2);
    if (q->ext_l2 && q->cluster_bits < 14)
        BAD("qcow2 '%s': extended L2 entries need clusters of 16 KiB or more (cluster_bits "
            "14), image has cluster_bits %u", path, q->cluster_bits);
    q->l2_bits = q->cluster_bits - 3 - q->ext_l2;
    q->sc_bits = q->cluster_bits - (q->ext_l2 ? 5 : 0);
    q->csize_shift = 62 - (q->cluster_bits - 8);
    if (q->refcount_order > 6)
        BAD("qcow2 '%s': refcount overflow: refcount_order %u gives %u-bit refcounts, at most 64",
            path, q->refcount_order, q->refcount_order < 31 ? 1u << q->refcount_order : 0);
    if (size > (1ULL << 61))
        BAD("qcow2 '%s': size %llu too large", path, (unsigned long long)size);
    uint64_t per_l2 = q->cs << q->l2_bits;
    uint64_t need_l1 = (size + per_l2 - 1) / per_l2;
    if (q->l1_size > MAX_L1_ENTRIES)
        BAD("qcow2 '%s': l1_size %u exceeds the limit %u", path, q->l1_size, MAX_L1_ENTRIES);
    if (q->l1_size < need_l1)
        BAD("qcow2 '%s': l1_size %u too small for size %llu (needs %llu)", path, q->l1_size,
            (unsigned long long)size, (unsigned long long)need_l1);
    if (q->l1_offset % q->cs || !table_in_file(q->l1_offset, (uint64_t)q->l1_size * 8, q->file_size))
        BAD("qcow2 '%s': L1 table at offset %llu (%u entries) is outside the file (size %llu) "
            "or unaligned", path, (unsigned long long)q->l1_offset, q->l1_size,
            (unsigned long long)q->file_size);
    if (!rt_clusters || rt_clusters > (1u << 24) || q->rt_offset % q->cs ||
        !table_in_file(q->rt_offset, (uint64_t)rt_clusters << q->cluster_bits, q->file_size))
        BAD("qcow2 '%s': refcount table at offset %llu (%u clusters) is outside the file "
            "(size %llu) or unaligned", path, (unsigned long long)q->rt_offset, rt_clusters,
            (unsigned long long)q->file_size);
    if (!read_only && (incompat & INCOMPAT_DIRTY))
        BAD("qcow2 '%s': image is dirty (refcounts need repair); open it read-only or run "
            "qemu-img check -r", path);
    if (!read_only && q->refcount_order != 4)
        BAD("qcow2 '%s': writing needs 16-bit refcounts (refcount_order 4), image has %u", path,
            q->refcount_order);
    if (!read_only && nb_snapshots)
        BAD("qcow2 '%s': writing images with snapshots (%u) is unsupported", path, nb_snapshots);

    q->buf = malloc(q->cs);
    q->mbuf = malloc(q->cs);
    q->zin = malloc(2 * q->cs);         /* a compressed cluster spans at most 2 clusters */
    q->zout = malloc(q->cs);
    q->l1 = malloc((size_t)q->l1_size * 8 + 8);
    q->rt_entries = ((uint64_t)rt_clusters << q->cluster_bits) / 8;
    q->rt = malloc(q->rt_entries * 8);
    if (!q->buf || !q->mbuf || !q->zin || !q->zout || !q->l1 || !q->rt) {
        disk__err(err, errlen, "out of memory");
        r = -ENOMEM;
        goto fail;
    }
    if ((r = disk__pread_full(q->fd, q->l1, (size_t)q->l1_size * 8, q->l1_offset)) ||
        (r = disk__pread_full(q->fd, q->rt, q->rt_entries * 8, q->rt_offset))) {
        disk__err(err, errlen, "qcow2 '%s': cannot read tables: %s", path, strerror(-r));
        goto fail;
    }
    for (uint32_t i = 0; i < q->l1_size; i++) {
        q->l1[i] = be64toh(q->l1[i]);
        uint64_t l2 = q->l1[i] & OFFSET_MASK;
        if (q->l1[i] & L1_RESERVED)
            BAD("qcow2 '%s': L1 index %u: reserved bits 0x%llx set (entry 0x%016llx)", path, i,
                (unsigned long long)(q->l1[i] & L1_RESERVED), (unsigned long long)q->l1[i]);
        if (l2 && (l2 % q->cs || !table_in_file(l2, q->cs, q->file_size)))
            BAD("qcow2 '%s': L2 table at offset %llu (L1 index %u) is outside the file (size %llu) "
                "or unaligned", path, (unsigned long long)l2, i, (unsigned long long)q->file_size);
    }
    for (uint64_t i = 0; i < q->rt_entries; i++) {
        q->rt[i] = be64toh(q->rt[i]);
        uint64_t rb = q->rt[i] & ~(q->cs - 1);
        if (q->rt[i] && (q->rt[i] % q->cs || !table_in_file(rb, q->cs, q->file_size)))
            BAD("qcow2 '%s': refcount block at offset %llu (refcount table index %llu) is outside "
                "the file (size %llu) or unaligned", path, (unsigned long long)q->rt[i],
                (unsigned long long)i, (unsigned long long)q->file_size);
    }

    /* Metadata must not overlap: an L2 table, refcount block or data cluster sitting on
     * other metadata lets a guest write (or an allocation) overwrite the image's own tables.
     * qemu refuses such writes with its overlap check; we refuse the image at open, and
     * check each data cluster against this map when an L2 entry is first used. */
    struct meta_map *meta = &q->meta;
    r = meta_add(meta, 0, q->cs, "header cluster");
    if (!r)
        r = meta_add(meta, q->l1_offset, ((uint64_t)q->l1_size * 8 + q->cs - 1) & ~(q->cs - 1),
                     "L1 table");
    if (!r)
        r = meta_add(meta, q->rt_offset, (uint64_t)rt_clusters << q->cluster_bits,
                     "refcount table");
    for (uint64_t i = 0; !r && i < q->rt_entries; i++)
        if (q->rt[i])
            r = meta_add(meta, q->rt[i] & ~(q->cs - 1), q->cs, "refcount block");
    for (uint32_t i = 0; !r && i < q->l1_size; i++)
        if (q->l1[i] & OFFSET_MASK)
            r = meta_add(meta, q->l1[i] & OFFSET_MASK, q->cs, "L2 table");
    if (r) {
        disk__err(err, errlen, "out of memory");
        goto fail;
    }
    const struct meta_range *ov1, *ov2;
    if (meta_sort_check(meta, &ov1, &ov2))
        BAD("qcow2 '%s': %s at offset %llu overlaps the %s at offset %llu", path, ov2->what,
            (unsigned long long)ov2->start, ov1->what, (unsigned long long)ov1->start);

    /* Header extensions: only the backing format matters to us. */
    uint64_t ext = header_len;
    uint8_t *hc = malloc(q->cs);
    if (!hc) {
        r = -ENOMEM;
        goto fail;
    }
    uint64_t hlen = q->file_size < q->cs ? q->file_size : q->cs;
    r = disk__pread_full(q->fd, hc, (size_t)hlen, 0);
    while (!r && ext + 8 <= hlen) {
        uint32_t type = be32(hc + ext), elen = be32(hc + ext + 4);
        if (type == 0)
            break;
        if (elen > hlen - ext - 8) {
            free(hc);
            BAD("qcow2 '%s': header extension 0x%08x length %u runs past the first cluster", path,
                type, elen);
        }
        if (type == EXT_BACKING_FORMAT)
            snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%.*s",
                     (int)(elen < sizeof(q->backing_fmt) ? elen : sizeof(q->backing_fmt) - 1),
                     (char *)hc + ext + 8);
        ext += 8 + ((elen + 7ULL) & ~7ULL);
    }
    if (!r && backing_off) {
        if (backing_len == 0 || backing_len > 1023 || backing_off > hlen ||
            backing_len > hlen - backing_off) {
            free(hc);
            BAD("qcow2 '%s': backing file name (offset %llu, %u bytes) invalid", path,
                (unsigned long long)backing_off, backing_len);
        }
        memcpy(q->backing_name, hc + backing_off, backing_len);
        q->backing_name[backing_len] = 0;
    }
    free(hc);
    if (r)
        goto fail;
    if (q->backing_name[0]) {
        char full[4096], why[512];
        if (disk__resolve_path(path, q->backing_name, full, sizeof(full)))
            BAD("qcow2 '%s': backing path too long", path);
        if (strcmp(q->backing_fmt, "raw") == 0)
            r = disk_raw_open(full, 1, &q->backing, why, sizeof(why));
        else if (!q->backing_fmt[0] || strcmp(q->backing_fmt, "qcow2") == 0)
            r = disk_open_nested(full, 1, ctx, &q->backing, why, sizeof(why));
        else
            BAD("qcow2 '%s': backing format '%s' unsupported (raw or qcow2)", path, q->backing_fmt);
        if (r) {
            disk__err(err, errlen, "qcow2 '%s': backing file '%s': %s", path, q->backing_name, why);
            goto fail;
        }
    }
    q->alloc_next = (q->file_size + q->cs - 1) & ~(q->cs - 1);
    q->alloc_first = q->alloc_next;
    d->size = size;
    d->read_only = read_only;
    *out = d;
    return 0;
fail:
    q_free(q);
    free(d);
    return r;
}

/* ---- creating ---- */

int qcow2_create(const char *path, uint64_t size, uint64_t cluster_size, const char *backing,
                 char *err, size_t errlen)
{
    unsigned cb = 0;
    while (cb < 63 && (1ULL << cb) < cluster_size)
        cb++;
    if (cluster_size != (1ULL << cb) || cb < 9 || cb > 21) {
        disk__err(err, errlen, "cluster size %llu is not a power of two from 512 to 2M",
                  (unsigned long long)cluster_size);
        return -EINVAL;
    }
    const char *bfmt = NULL;
    if (backing) {
        char full[4096], why[512];
        if (strlen(backing) > 1023 || disk__resolve_path(path, backing, full, sizeof(full))) {
            disk__err(err, errlen, "backing file name '%s' too long", backing);
            return -EINVAL;
        }
        struct disk *b;
        int r = disk_open(full, 1, &b, why, sizeof(why));
        if (r) {
            disk__err(err, errlen, "backing file '%s': %s", backing, why);
            return r;
        }
        bfmt = b->ops->format;
        uint64_t bsize = b->size;
        disk_close(b);
        if (strcmp(bfmt, "raw") && strcmp(bfmt, "qcow2")) {
            disk__err(err, errlen, "backing file '%s' is %s; only raw or qcow2 can back a qcow2",
                      backing, bfmt);
            return -EINVAL;
        }
        if (size == UINT64_MAX)
            size = bsize;
    }
    if (size == UINT64_MAX || size > (1ULL << 61)) {
        disk__err(err, errlen, "size %llu out of range", (unsigned long long)size);
        return -EINVAL;
    }
    uint64_t cs = cluster_size, per_l2 = cs * (cs / 8), per_rb = cs / 2;
    uint64_t l1_size = (size + per_l2 - 1) / per_l2;
    if (!l1_size)
        l1_size = 1;
    uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
    if (l1_size > MAX_L1_ENTRIES) {
        disk__err(err, errlen, "size %llu needs too large an L1 table for cluster size %llu",
                  (unsigned long long)size, (unsigned long long)cs);
        return -EINVAL;
    }
    /* The refcount table is sized for the fully written image (we never grow it):
     * data + L2 tables + metadata + the refcount blocks themselves, with slack. */
    uint64_t data_cl = (size + cs - 1) / cs, most = data_cl + l1_size + l1_clusters + 64;
    most += most / (per_rb - 1) + 2;
    uint64_t rt_clusters = ((most + per_rb - 1) / per_rb * 8 + cs - 1) / cs;
    /* header, refcount table, initial refcount blocks, L1 */
    uint64_t rb_n = 1, meta;
    for (;;) {
        meta = 1 + rt_clusters + rb_n + l1_clusters;
        if ((meta + per_rb - 1) / per_rb <= rb_n)
            break;
        rb_n = (meta + per_rb - 1) / per_rb;
    }
    if (rt_clusters > (1u << 20) || rb_n > rt_clusters * (cs / 8)) {
        disk__err(err, errlen, "size %llu is too large for cluster size %llu",
                  (unsigned long long)size, (unsigned long long)cs);
        return -EINVAL;
    }
    uint8_t *img = calloc(meta, cs);
    if (!img) {
        disk__err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    uint64_t rt_off = cs, rb_off = rt_off + rt_clusters * cs, l1_off = rb_off + rb_n * cs;
    uint8_t *h = img;
    put_be32(h, QCOW2_MAGIC);
    put_be32(h + 4, 3);
    put_be32(h + 20, cb);
    put_be64(h + 24, size);
    put_be32(h + 36, (uint32_t)l1_size);
    put_be64(h + 40, l1_off);
    put_be64(h + 48, rt_off);
    put_be32(h + 56, (uint32_t)rt_clusters);
    put_be32(h + 96, 4);
    put_be32(h + 100, 104);
    uint64_t p = 104;
    if (backing) {
        size_t fl = strlen(bfmt);
        put_be32(h + p, EXT_BACKING_FORMAT);
        put_be32(h + p + 4, (uint32_t)fl);
        memcpy(h + p + 8, bfmt, fl);
        p += 8 + ((fl + 7) & ~7ULL);
        p += 8;                                     /* end-of-extensions marker: zeroes */
        put_be64(h + 8, p);
        put_be32(h + 16, (uint32_t)strlen(backing));
        memcpy(h + p, backing, strlen(backing));
    }
    for (uint64_t i = 0; i < rb_n; i++)
        put_be64(img + rt_off + i * 8, rb_off + i * cs);
    for (uint64_t i = 0; i < meta; i++)
        img[rb_off + 2 * i + 1] = 1;                /* every metadata cluster: refcount 1 */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int r = fd < 0 ? -errno : disk__pwrite_full(fd, img, meta * cs, 0);
    if (!r && fsync(fd) < 0)
        r = -errno;
    if (fd >= 0)
        close(fd);
    free(img);
    if (r)
        disk__err(err, errlen, "cannot write '%s': %s", path, strerror(-r));
    return r;
}
