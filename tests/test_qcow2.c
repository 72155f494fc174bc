/* qcow2: images qemu-img writes read back byte for byte; images we write pass
 * `qemu-img check` and convert back to what we wrote; backing files; the corpus. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "devices/disk/disk.h"
#include "tests/check_run.h"
#include "tests/scratch.h"
#include "devices/disk/qcow2.h"

#define CORPUS "tests/data/disk/"
#define MiB (1024 * 1024)

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64_at(const uint8_t *p) { return (uint64_t)be32_at(p) << 32 | be32_at(p + 4); }
static void put_be64_at(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t rng = 12345;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A pattern with holes: 64 KiB blocks alternate data / zeroes / data with a hole. */
static uint8_t *pattern(size_t len)
{
    uint8_t *b = calloc(1, len);
    for (size_t i = 0; i < len; i++) {
        size_t blk = i / 65536;
        if (blk % 3 == 1)
            continue;
        if (blk % 3 == 2 && (i % 65536) < 20000)
            continue;
        b[i] = (uint8_t)((i * 131 + blk) ^ (i >> 9));
    }
    return b;
}

static void save(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

static uint8_t *load(const char *path, size_t len)
{
    uint8_t *b = malloc(len);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(b, 1, len, f), len);
    fclose(f);
    return b;
}

static void assert_disk_equals(struct disk *d, const uint8_t *want, size_t len)
{
    uint8_t *got = malloc(len);
    /* odd-sized, unaligned reads crossing clusters */
    size_t off = 0, step = 12345;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        ck_assert_int_eq(disk_read(d, off, got + off, n), 0);
        off += n;
    }
    ck_assert_msg(memcmp(got, want, len) == 0, "disk contents differ");
    free(got);
}

static void qemu_roundtrip(const char *opts)
{
    size_t len = 8 * MiB + 4096;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 %s %s %s", opts, scratch_path("src.raw"),
                        scratch_path("q.qcow2")), 0);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("q.qcow2"), 1, &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d->ops->format, "qcow2");
    ck_assert_uint_eq(d->size, len);
    assert_disk_equals(d, raw, len);
    disk_close(d);
    free(raw);
}

START_TEST(reads_qemu_image_v3_64k) { qemu_roundtrip(""); }
END_TEST
START_TEST(reads_qemu_image_v3_4k) { qemu_roundtrip("-o cluster_size=4096"); }
END_TEST
START_TEST(reads_qemu_image_v2_512) { qemu_roundtrip("-o compat=0.10,cluster_size=512"); }
END_TEST

/* Random writes of random sizes mirrored in memory; then qemu-img agrees. */
static void write_and_check(uint64_t cluster)
{
    size_t len = 4 * MiB;
    char err[256];
    ck_assert_int_eq(qcow2_create(scratch_path("w.qcow2"), len, cluster, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("w.qcow2")), 0);
    struct disk *d;
    ck_assert_int_eq(disk_open(scratch_path("w.qcow2"), 0, &d, err, sizeof(err)), 0);
    uint8_t *ref = calloc(1, len), *buf = malloc(200000);
    for (int i = 0; i < 300; i++) {
        size_t n = 1 + next_rand() % 150000;
        uint64_t off = next_rand() % (len - n);
        if (i % 10 == 9) {
            ck_assert_int_eq(disk_write_zeroes(d, off, n), 0);
            memset(ref + off, 0, n);
            continue;
        }
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)next_rand();
        ck_assert_int_eq(disk_write(d, off, buf, n), 0);
        memcpy(ref + off, buf, n);
    }
    ck_assert_int_eq(disk_flush(d), 0);
    assert_disk_equals(d, ref, len);
    ck_assert_int_eq(disk_write(d, len - 10, buf, 20), -EINVAL);
    disk_close(d);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("w.qcow2")), 0);
    ck_assert_int_eq(sh("qemu-img convert -f qcow2 -O raw %s %s", scratch_path("w.qcow2"),
                        scratch_path("w.raw")), 0);
    uint8_t *back = load(scratch_path("w.raw"), len);
    ck_assert_msg(memcmp(back, ref, len) == 0, "qemu-img sees other contents");
    free(back);
    free(ref);
    free(buf);
}

START_TEST(our_writes_pass_qemu_check_64k) { write_and_check(65536); }
END_TEST
START_TEST(our_writes_pass_qemu_check_4k) { write_and_check(4096); }
END_TEST
/* 512-byte clusters: a refcount block covers only 128 KiB, so writes allocate many
 * refcount blocks in the middle of data writes. */
START_TEST(our_writes_pass_qemu_check_512) { write_and_check(512); }
END_TEST

static void write_into_qemu_image(const char *opts)
{
    size_t len = 2 * MiB;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 %s %s %s", opts, scratch_path("src.raw"),
                        scratch_path("q.qcow2")), 0);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("q.qcow2"), 0, &d, err, sizeof(err)), 0);
    uint8_t w[70000];
    memset(w, 0xd7, sizeof(w));
    ck_assert_int_eq(disk_write(d, 60000, w, sizeof(w)), 0);       /* data then zero block */
    memcpy(raw + 60000, w, sizeof(w));
    ck_assert_int_eq(disk_write_zeroes(d, 3 * 65536, 65536), 0);    /* whole cluster */
    memset(raw + 3 * 65536, 0, 65536);
    disk_close(d);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("q.qcow2")), 0);
    ck_assert_int_eq(sh("qemu-img convert -f qcow2 -O raw %s %s", scratch_path("q.qcow2"),
                        scratch_path("back.raw")), 0);
    uint8_t *back = load(scratch_path("back.raw"), len);
    ck_assert(memcmp(back, raw, len) == 0);
    free(back);
    free(raw);
}

/* qemu-img's 512-byte-cluster image starts with a one-cluster refcount table (8 MiB of
 * host clusters): filling 16 MiB makes us grow the table, twice. */
START_TEST(grows_refcount_table_of_qemu_image)
{
    size_t len = 16 * MiB;
    ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=512 %s 16M", scratch_path("g.qcow2")), 0);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("g.qcow2"), 0, &d, err, sizeof(err)), 0);
    uint8_t *ref = malloc(len);
    for (size_t i = 0; i < len; i++)
        ref[i] = (uint8_t)(i * 7 + (i >> 12));
    for (size_t off = 0; off < len; off += 65536)
        ck_assert_int_eq(disk_write(d, off, ref + off, 65536), 0);
    assert_disk_equals(d, ref, len);
    disk_close(d);
    uint8_t *hdr = load(scratch_path("g.qcow2"), 64);
    uint32_t rt_clusters = (uint32_t)hdr[56] << 24 | hdr[57] << 16 | hdr[58] << 8 | hdr[59];
    ck_assert_uint_ge(rt_clusters, 4);          /* grew from 1 */
    free(hdr);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("g.qcow2")), 0);
    ck_assert_int_eq(sh("qemu-img convert -O raw %s %s", scratch_path("g.qcow2"), scratch_path("g.raw")), 0);
    uint8_t *back = load(scratch_path("g.raw"), len);
    ck_assert(memcmp(back, ref, len) == 0);
    free(back);
    free(ref);
}
END_TEST

START_TEST(writes_into_qemu_image_v3) { write_into_qemu_image(""); }
END_TEST
START_TEST(writes_into_qemu_image_v2) { write_into_qemu_image("-o compat=0.10"); }
END_TEST

START_TEST(backing_raw_and_qcow2_chain)
{
    size_t len = 1 * MiB;
    uint8_t *base = pattern(len);
    save(scratch_path("base.raw"), base, len);
    char err[256];
    /* overlay over raw, size taken from the backing file */
    ck_assert_int_eq(qcow2_create(scratch_path("mid.qcow2"), UINT64_MAX, 65536, "base.raw", err,
                                  sizeof(err)), 0);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("mid.qcow2")), 0);
    struct disk *d;
    ck_assert_int_eq(disk_open(scratch_path("mid.qcow2"), 0, &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(d->size, len);
    assert_disk_equals(d, base, len);
    uint8_t w[1000];
    memset(w, 0x3c, sizeof(w));
    ck_assert_int_eq(disk_write(d, 70000, w, sizeof(w)), 0);   /* copy-on-write of a cluster */
    memcpy(base + 70000, w, sizeof(w));
    ck_assert_int_eq(disk_write_zeroes(d, 0, 65536), 0);         /* zero flag over backing */
    memset(base, 0, 65536);
    assert_disk_equals(d, base, len);
    struct qcow2_info qi;
    ck_assert_int_eq(qcow2_get_info(d, &qi), 0);
    ck_assert_str_eq(qi.backing_file, "base.raw");
    ck_assert_str_eq(qi.backing_format, "raw");
    disk_close(d);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("mid.qcow2")), 0);
    /* a qcow2 over that qcow2, twice as large: the tail reads as zeroes */
    ck_assert_int_eq(qcow2_create(scratch_path("top.qcow2"), 2 * len, 65536, "mid.qcow2", err,
                                  sizeof(err)), 0);
    ck_assert_int_eq(disk_open(scratch_path("top.qcow2"), 1, &d, err, sizeof(err)), 0);
    uint8_t *want = calloc(1, 2 * len);
    memcpy(want, base, len);
    assert_disk_equals(d, want, 2 * len);
    disk_close(d);
    ck_assert_int_eq(sh("qemu-img convert -O raw %s %s", scratch_path("top.qcow2"), scratch_path("top.raw")), 0);
    uint8_t *back = load(scratch_path("top.raw"), 2 * len);
    ck_assert(memcmp(back, want, 2 * len) == 0);
    free(back);
    free(want);
    free(base);
}
END_TEST

START_TEST(resize_grows_l1_and_stays_consistent)
{
    char err[256];
    ck_assert_int_eq(qcow2_create(scratch_path("r.qcow2"), MiB, 4096, NULL, err, sizeof(err)), 0);
    struct disk *d;
    ck_assert_int_eq(disk_open(scratch_path("r.qcow2"), 0, &d, err, sizeof(err)), 0);
    uint8_t w[8192];
    memset(w, 0x61, sizeof(w));
    ck_assert_int_eq(disk_write(d, 5000, w, sizeof(w)), 0);
    ck_assert_int_eq(disk_resize(d, MiB / 2), -ENOTSUP);         /* never shrinks */
    ck_assert_int_eq(disk_resize(d, 2 * MiB), 0);                /* same L1 */
    ck_assert_int_eq(disk_resize(d, 64 * MiB), 0);               /* L1 1 -> 32 entries */
    ck_assert_uint_eq(d->size, 64 * MiB);
    memset(w, 0x62, sizeof(w));
    ck_assert_int_eq(disk_write(d, 60 * MiB + 3, w, sizeof(w)), 0);
    disk_close(d);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("r.qcow2")), 0);
    /* a raw twin with the same bytes; qemu-img compares them */
    FILE *f = fopen(scratch_path("r.raw"), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), 64 * MiB), 0);
    memset(w, 0x61, sizeof(w));
    fseek(f, 5000, SEEK_SET);
    fwrite(w, 1, sizeof(w), f);
    memset(w, 0x62, sizeof(w));
    fseek(f, 60 * MiB + 3, SEEK_SET);
    fwrite(w, 1, sizeof(w), f);
    fclose(f);
    ck_assert_int_eq(sh("qemu-img compare -q -f qcow2 -F raw %s %s", scratch_path("r.qcow2"),
                        scratch_path("r.raw")), 0);
}
END_TEST

START_TEST(create_errors)
{
    char err[256];
    ck_assert_int_eq(qcow2_create(scratch_path("x.qcow2"), MiB, 3000, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "cluster size 3000"));
    ck_assert_int_eq(qcow2_create(scratch_path("x.qcow2"), MiB, 65536, "missing.raw", err, sizeof(err)),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "backing file 'missing.raw'"));
}
END_TEST

/* ---- compressed clusters, extended L2, backing chains mixing them ---- */

/* qemu-img's own raw view of an image. */
static uint8_t *qemu_raw(const char *img, size_t len)
{
    ck_assert_int_eq(sh("qemu-img convert -O raw %s %s", img, scratch_path("view.raw")), 0);
    return load(scratch_path("view.raw"), len);
}

/* `pattern` made into a qcow2 by qemu-img with opts reads through vmlab byte for byte as
 * qemu-img's raw conversion of that image. */
static void reads_like_qemu(const char *opts, const char *compression, int ext_l2,
                            int compressed)
{
    size_t len = 8 * MiB + 4096;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 %s %s %s", opts,
                        scratch_path("src.raw"), scratch_path("q.qcow2")), 0);
    uint8_t *want = qemu_raw(scratch_path("q.qcow2"), len);
    ck_assert(memcmp(want, raw, len) == 0);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("q.qcow2"), 1, &d, err, sizeof(err)), 0);
    assert_disk_equals(d, want, len);
    struct qcow2_info qi;
    uint64_t nz = 0;
    ck_assert_int_eq(qcow2_get_info(d, &qi), 0);
    ck_assert_str_eq(qi.compression_type, compression);
    ck_assert_int_eq(qi.extended_l2, ext_l2);
    ck_assert_int_eq(qcow2_scan(d, &nz, err, sizeof(err)), 0);
    if (compressed)
        ck_assert_uint_gt(nz, 0);
    else
        ck_assert_uint_eq(nz, 0);
    disk_close(d);
    free(want);
    free(raw);
}

START_TEST(reads_compressed_zlib) { reads_like_qemu("-c", "zlib", 0, 1); }
END_TEST
START_TEST(reads_compressed_zstd) { reads_like_qemu("-c -o compression_type=zstd", "zstd", 0, 1); }
END_TEST
START_TEST(reads_compressed_zlib_4k) { reads_like_qemu("-c -o cluster_size=4096", "zlib", 0, 1); }
END_TEST
START_TEST(reads_compressed_zstd_512) { reads_like_qemu("-c -o cluster_size=512,compression_type=zstd", "zstd", 0, 1); }
END_TEST
START_TEST(reads_compressed_v2) { reads_like_qemu("-c -o compat=0.10", "zlib", 0, 1); }
END_TEST
START_TEST(reads_extended_l2) { reads_like_qemu("-o extended_l2=on", "zlib", 1, 0); }
END_TEST
START_TEST(reads_extended_l2_16k_compressed) { reads_like_qemu("-c -o extended_l2=on,cluster_size=16384", "zlib", 1, 1); }
END_TEST

/* Random writes and zeroes (unaligned, whole clusters, whole subclusters) mirrored in ref;
 * then vmlab reads ref back, `qemu-img check` finds no errors and `qemu-img compare`
 * against ref as a raw file passes. */
static void scribble_and_check(const char *img, uint8_t *ref, size_t len, uint64_t cs)
{
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(img, 0, &d, err, sizeof(err)), 0);
    uint8_t *buf = malloc(200000);
    for (int i = 0; i < 200; i++) {
        size_t n = 1 + next_rand() % 150000;
        uint64_t off = next_rand() % (len - n);
        if (i % 10 == 3) {                                  /* whole clusters */
            off = off / cs * cs;
            n = cs * (1 + i % 3);
            if (off + n > len)
                continue;
        } else if (i % 10 == 6) {                           /* whole subclusters (cs / 32) */
            off = off / (cs / 32) * (cs / 32);
            n = (cs / 32) * (1 + next_rand() % 40);
            if (off + n > len)
                continue;
        }
        if (i % 5 == 3) {
            ck_assert_int_eq(disk_write_zeroes(d, off, n), 0);
            memset(ref + off, 0, n);
            continue;
        }
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)next_rand();
        ck_assert_int_eq(disk_write(d, off, buf, n), 0);
        memcpy(ref + off, buf, n);
    }
    ck_assert_int_eq(disk_flush(d), 0);
    assert_disk_equals(d, ref, len);
    disk_close(d);
    free(buf);
    ck_assert_int_eq(sh("qemu-img check -q %s", img), 0);
    save(scratch_path("expected.raw"), ref, len);
    ck_assert_int_eq(sh("qemu-img compare -q -f qcow2 -F raw %s %s", img,
                        scratch_path("expected.raw")), 0);
}

static void writes_into_compressed(const char *opts, uint64_t cs)
{
    size_t len = 4 * MiB;
    uint8_t *ref = pattern(len);
    save(scratch_path("src.raw"), ref, len);
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 -c %s %s %s", opts,
                        scratch_path("src.raw"), scratch_path("c.qcow2")), 0);
    scribble_and_check(scratch_path("c.qcow2"), ref, len, cs);
    /* written clusters left the compressed set: fewer remain */
    struct disk *d;
    char err[256];
    uint64_t before, after;
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 -c %s %s %s", opts,
                        scratch_path("src.raw"), scratch_path("c0.qcow2")), 0);
    ck_assert_int_eq(disk_open(scratch_path("c0.qcow2"), 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(qcow2_scan(d, &before, err, sizeof(err)), 0);
    disk_close(d);
    ck_assert_int_eq(disk_open(scratch_path("c.qcow2"), 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(qcow2_scan(d, &after, err, sizeof(err)), 0);
    disk_close(d);
    ck_assert_uint_lt(after, before);
    free(ref);
}

START_TEST(writes_into_compressed_zlib) { writes_into_compressed("", 65536); }
END_TEST
START_TEST(writes_into_compressed_zstd_4k) { writes_into_compressed("-o compression_type=zstd,cluster_size=4096", 4096); }
END_TEST

START_TEST(writes_extended_l2)
{
    size_t len = 4 * MiB;
    ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=32768 %s 4M",
                        scratch_path("x.qcow2")), 0);
    uint8_t *ref = calloc(1, len);
    scribble_and_check(scratch_path("x.qcow2"), ref, len, 32768);
    free(ref);
}
END_TEST

/* A compressed zstd base under an extended-L2 overlay under a standard overlay: each
 * reads as qemu-img sees it, and writes to the top pass qemu-img's check and compare. */
START_TEST(backing_chain_compressed_base_ext_l2_overlays)
{
    size_t len = 4 * MiB;
    uint8_t *raw = pattern(len);
    save(scratch_path("base.raw"), raw, len);
    ck_assert_int_eq(sh("qemu-img convert -q -f raw -O qcow2 -c -o compression_type=zstd %s %s",
                        scratch_path("base.raw"), scratch_path("base.qcow2")), 0);
    ck_assert_int_eq(sh("cd %s && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "
                        "-o extended_l2=on mid.qcow2", scratch_dir), 0);
    /* one 512-byte write into the overlay allocates one 2 KiB subcluster, not the cluster */
    uint8_t w[512];
    memset(w, 0xa5, sizeof(w));
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("mid.qcow2"), 0, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(disk_write(d, 65536 + 4096, w, sizeof(w)), 0);
    memcpy(raw + 65536 + 4096, w, sizeof(w));
    assert_disk_equals(d, raw, len);
    disk_close(d);
    ck_assert_int_eq(sh("qemu-img map --output=json %s | grep -q '\"start\": 69632, \"length\": "
                        "2048, \"depth\": 0'", scratch_path("mid.qcow2")), 0);
    ck_assert_int_eq(sh("qemu-img check -q %s", scratch_path("mid.qcow2")), 0);
    uint8_t *want = qemu_raw(scratch_path("mid.qcow2"), len);
    ck_assert(memcmp(want, raw, len) == 0);
    free(want);
    scribble_and_check(scratch_path("mid.qcow2"), raw, len, 65536);
    ck_assert_int_eq(sh("cd %s && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2",
                        scratch_dir), 0);
    ck_assert_int_eq(disk_open(scratch_path("top.qcow2"), 1, &d, err, sizeof(err)), 0);
    assert_disk_equals(d, raw, len);
    disk_close(d);
    scribble_and_check(scratch_path("top.qcow2"), raw, len, 65536);
    /* the layers below the written one are untouched */
    ck_assert_int_eq(sh("qemu-img compare -q -f qcow2 -F raw %s %s", scratch_path("base.qcow2"),
                        scratch_path("base.raw")), 0);
    free(raw);
}
END_TEST

/* ---- hostile L2 entries: caught on first use ---- */

struct layout { uint64_t cs, l1, rt, rb, l2, e0; };

static struct layout image_layout(const char *img, int ext_l2)
{
    uint8_t *f = load(img, 4096);
    struct layout lo = { 0 };
    lo.cs = 1ULL << be32_at(f + 20);
    lo.l1 = be64_at(f + 40);
    lo.rt = be64_at(f + 48);
    free(f);
    FILE *fp = fopen(img, "rb");
    uint8_t b[8];
    ck_assert_int_eq(pread(fileno(fp), b, 8, (off_t)lo.rt), 8);
    lo.rb = be64_at(b);
    ck_assert_int_eq(pread(fileno(fp), b, 8, (off_t)lo.l1), 8);
    lo.l2 = be64_at(b) & 0x00fffffffffffe00ULL;
    ck_assert_int_eq(pread(fileno(fp), b, 8, (off_t)lo.l2), 8);
    lo.e0 = be64_at(b);
    fclose(fp);
    (void)ext_l2;
    return lo;
}

#define COPIED (1ULL << 63)
#define COMPRESSED (1ULL << 62)
enum { H_PLAIN, H_COMPRESSED, H_EXT };
static const struct hostile {
    const char *name;
    int kind;                   /* the image it patches */
    int what;                   /* which entry (below) */
    const char *msg;
} hostile[] = {
    { "unaligned", H_PLAIN, 0, "data cluster offset %llu is not cluster-aligned" },
    { "outside", H_PLAIN, 1, "data cluster at offset 1099511627776 is outside the file" },
    { "on L1", H_PLAIN, 2, "data cluster at offset %llu overlaps the L1 table" },
    { "on refcount table", H_PLAIN, 3, "data cluster at offset %llu overlaps the refcount table" },
    { "on refcount block", H_PLAIN, 4, "data cluster at offset %llu overlaps the refcount block" },
    { "on L2 table", H_PLAIN, 5, "data cluster at offset %llu overlaps the L2 table" },
    { "reserved bits", H_PLAIN, 6, "reserved bits 0x100000000000000 set" },
    { "compressed on header", H_COMPRESSED, 7, "compressed cluster at offset 64 (448 bytes) overlaps the header cluster at offset 0" },
    { "compressed on L1", H_COMPRESSED, 8, "overlaps the L1 table" },
    { "compressed outside", H_COMPRESSED, 1 | 0x100, "compressed cluster at offset 1099511627776 is outside the file" },
    { "compressed COPIED", H_COMPRESSED, 9, "compressed cluster with the COPIED flag" },
    { "subcluster alloc+zero", H_EXT, 10, "subclusters both allocated and zero" },
    { "subcluster alloc, no cluster", H_EXT, 11, "subclusters allocated in an unallocated cluster" },
    { "compressed with bitmap", H_EXT, 12, "compressed cluster with subcluster bitmap 0x0000000000000001" },
    { "ext L2 zero flag", H_EXT, 13, "reserved bits 0x1 set" },
};

START_TEST(hostile_entry_fails_on_first_use)
{
    const struct hostile *h = &hostile[_i];
    size_t len = 2 * MiB;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    free(raw);
    const char *opts = h->kind == H_COMPRESSED ? "-c" : h->kind == H_EXT ? "-o extended_l2=on" : "";
    const char *img = scratch_path("h.qcow2");
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 %s %s %s", opts, scratch_path("src.raw"),
                        img), 0);
    struct layout lo = image_layout(img, h->kind == H_EXT);
    uint64_t e = 0, bm = 0, host0 = lo.e0 & 0x00fffffffffffe00ULL;
    switch (h->what & 0xff) {
    case 0: e = COPIED | (host0 + 512); break;
    case 1: e = (h->what & 0x100 ? COMPRESSED : COPIED) | (1ULL << 40); break;
    case 2: e = COPIED | lo.l1; break;
    case 3: e = COPIED | lo.rt; break;
    case 4: e = COPIED | lo.rb; break;
    case 5: e = COPIED | lo.l2; break;
    case 6: e = lo.e0 | (1ULL << 56); break;
    case 7: e = COMPRESSED | 64; break;
    case 8: e = COMPRESSED | (lo.l1 + 8); break;
    case 9: e = lo.e0 | COPIED; break;
    case 10: e = lo.e0; bm = 1 | (1ULL << 32); break;
    case 11: e = 0; bm = 1; break;
    case 12: e = COMPRESSED | (host0 + 100); bm = 1; break;
    case 13: e = lo.e0 | 1; bm = 0xffffffffULL; break;
    }
    /* entry 1 (guest cluster 1) goes bad */
    uint8_t b[16];
    put_be64_at(b, e);
    put_be64_at(b + 8, bm);
    int ext = h->kind == H_EXT;
    FILE *fp = fopen(img, "r+b");
    ck_assert_int_eq(pwrite(fileno(fp), b, ext ? 16 : 8, (off_t)(lo.l2 + (ext ? 16 : 8))),
                     ext ? 16 : 8);
    fclose(fp);
    struct stat st;
    ck_assert_int_eq(stat(img, &st), 0);
    size_t flen = (size_t)st.st_size;
    uint8_t *before = load(img, flen);

    char want[256];
    snprintf(want, sizeof(want), h->msg, (unsigned long long)(e & 0x00fffffffffffe00ULL));
    char where[128];
    snprintf(where, sizeof(where), "L2 table at offset %llu (L1 index 0), entry 1: ",
             (unsigned long long)lo.l2);
    struct disk *d;
    char err[512];
    ck_assert_int_eq(disk_open(img, 0, &d, err, sizeof(err)), 0);
    /* cluster 0 is fine and still reads */
    uint8_t buf[8192];
    ck_assert_int_eq(disk_read(d, 0, buf, 4096), 0);
    /* a write over clusters 0 and 1 fails before writing anything */
    uint8_t *wbuf = malloc(2 * lo.cs);
    memset(wbuf, 0x77, 2 * lo.cs);
    ck_assert_int_eq(disk_write(d, 0, wbuf, 2 * lo.cs), -EIO);
    free(wbuf);
    struct qcow2_info qi;
    ck_assert_int_eq(qcow2_get_info(d, &qi), 0);
    ck_assert_msg(strstr(qi.corrupt, where) && strstr(qi.corrupt, want),
                  "%s: '%s' lacks '%s%s'", h->name, qi.corrupt, where, want);
    ck_assert_ptr_nonnull(strstr(qi.corrupt, "image marked corrupt"));
    /* marked corrupt: every later request fails the same way, nothing is written */
    ck_assert_int_eq(disk_read(d, 0, buf, 4096), -EIO);
    ck_assert_int_eq(disk_read(d, MiB, buf, 4096), -EIO);
    ck_assert_int_eq(disk_write(d, MiB, buf, 4096), -EIO);
    ck_assert_int_eq(disk_write_zeroes(d, 0, lo.cs), -EIO);
    ck_assert_int_eq(disk_discard(d, MiB, lo.cs), -EIO);
    ck_assert_int_eq(disk_resize(d, 4 * MiB), -EIO);
    ck_assert_int_eq(disk_flush(d), -EIO);
    disk_close(d);
    ck_assert_int_eq(stat(img, &st), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, flen);
    uint8_t *after = load(img, flen);
    ck_assert_msg(memcmp(before, after, flen) == 0, "%s: the file changed", h->name);
    free(before);
    free(after);
    /* a fresh open reading cluster 1 first fails the same way */
    ck_assert_int_eq(disk_open(img, 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(disk_read(d, lo.cs, buf, 512), -EIO);
    ck_assert_int_eq(qcow2_get_info(d, &qi), 0);
    ck_assert_ptr_nonnull(strstr(qi.corrupt, want));
    uint64_t nz;
    ck_assert_int_eq(qcow2_scan(d, &nz, err, sizeof(err)), -EIO);
    ck_assert_ptr_nonnull(strstr(err, want));
    disk_close(d);
}
END_TEST

START_TEST(header_compression_and_ext_l2_checks)
{
    size_t len = MiB;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    free(raw);
    const char *img = scratch_path("h.qcow2");
    struct { uint64_t incompat; uint8_t ctype; uint32_t cbits; const char *msg; } cases[] = {
        { 8, 0, 16, "compression_type 0 (zlib) disagrees with the compression type feature bit (set)" },
        { 0, 1, 16, "compression_type 1 (zstd) disagrees with the compression type feature bit (clear)" },
        { 8, 7, 16, "unknown compression_type 7 (0 zlib, 1 zstd)" },
        { 16, 0, 13, "extended L2 entries need clusters of 16 KiB or more (cluster_bits 14), image has cluster_bits 13" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 -o compression_type=zstd %s %s",
                            scratch_path("src.raw"), img), 0);
        uint8_t *h = load(img, 112);
        put_be64_at(h + 72, cases[i].incompat);
        h[104] = cases[i].ctype;
        h[20] = h[21] = h[22] = 0;
        h[23] = (uint8_t)cases[i].cbits;
        FILE *fp = fopen(img, "r+b");
        ck_assert_int_eq(fwrite(h, 1, 112, fp), 112);
        fclose(fp);
        free(h);
        struct disk *d = NULL;
        char err[512] = "";
        ck_assert_int_eq(disk_open(img, 0, &d, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(d);
        ck_assert_msg(strstr(err, cases[i].msg), "'%s' lacks '%s'", err, cases[i].msg);
    }
    /* reserved bits in an L1 entry: refused at open (the L1 table is read there) */
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 %s %s", scratch_path("src.raw"), img), 0);
    struct layout lo = image_layout(img, 0);
    uint8_t b[8];
    put_be64_at(b, lo.l2 | COPIED | (1ULL << 60));
    FILE *fp = fopen(img, "r+b");
    ck_assert_int_eq(pwrite(fileno(fp), b, 8, (off_t)lo.l1), 8);
    fclose(fp);
    struct disk *d = NULL;
    char err[512] = "";
    ck_assert_int_eq(disk_open(img, 1, &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "L1 index 0: reserved bits 0x1000000000000000 set"));
}
END_TEST

/* A compressed cluster whose host cluster has refcount 0: reading works (refcounts are
 * not needed), the write that would release it fails before writing anything. */
START_TEST(compressed_cluster_with_refcount_zero)
{
    size_t len = MiB;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    free(raw);
    const char *img = scratch_path("z.qcow2");
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 -c %s %s", scratch_path("src.raw"), img), 0);
    struct layout lo = image_layout(img, 0);
    ck_assert(lo.e0 & COMPRESSED);
    uint64_t coff = lo.e0 & ((1ULL << 54) - 1), host = coff & ~(lo.cs - 1);
    uint8_t zero[2] = { 0, 0 };
    FILE *fp = fopen(img, "r+b");
    ck_assert_int_eq(pwrite(fileno(fp), zero, 2, (off_t)(lo.rb + (host / lo.cs) * 2)), 2);
    fclose(fp);
    struct stat st;
    ck_assert_int_eq(stat(img, &st), 0);
    size_t flen = (size_t)st.st_size;
    uint8_t *before = load(img, flen);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(img, 0, &d, err, sizeof(err)), 0);
    uint8_t buf[4096];
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
    memset(buf, 0x11, sizeof(buf));
    ck_assert_int_eq(disk_write(d, 100, buf, sizeof(buf)), -EIO);
    struct qcow2_info qi;
    ck_assert_int_eq(qcow2_get_info(d, &qi), 0);
    char want[160];
    snprintf(want, sizeof(want), "compressed cluster at offset %llu: host cluster at offset %llu "
             "has refcount 0", (unsigned long long)coff, (unsigned long long)host);
    ck_assert_msg(strstr(qi.corrupt, want), "'%s' lacks '%s'", qi.corrupt, want);
    ck_assert_int_eq(disk_write_zeroes(d, 0, lo.cs), -EIO);
    disk_close(d);
    uint8_t *after = load(img, flen);
    ck_assert(memcmp(before, after, flen) == 0);
    free(before);
    free(after);
}
END_TEST

/* Bytes that do not decompress fail the read with -EIO (not corruption of metadata). */
START_TEST(bad_compressed_bytes_fail_the_read)
{
    size_t len = MiB;
    uint8_t *raw = pattern(len);
    save(scratch_path("src.raw"), raw, len);
    free(raw);
    const char *img = scratch_path("z.qcow2");
    ck_assert_int_eq(sh("qemu-img convert -f raw -O qcow2 -c %s %s", scratch_path("src.raw"), img), 0);
    struct layout lo = image_layout(img, 0);
    ck_assert(lo.e0 & COMPRESSED);
    uint64_t coff = lo.e0 & ((1ULL << 54) - 1);
    uint8_t junk[64];
    memset(junk, 0xff, sizeof(junk));
    FILE *fp = fopen(img, "r+b");
    ck_assert_int_eq(pwrite(fileno(fp), junk, sizeof(junk), (off_t)coff), (ssize_t)sizeof(junk));
    fclose(fp);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(img, 1, &d, err, sizeof(err)), 0);
    uint8_t buf[512];
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), -EIO);
    ck_assert_int_eq(disk_read(d, 3 * 65536, buf, sizeof(buf)), 0);   /* other clusters read */
    disk_close(d);
}
END_TEST

static const struct {
    const char *file;
    int rw;
    int err;
    const char *msg;
} corpus[] = {
    { "qcow2_bad_version.qcow2", 0, -EINVAL, "unsupported version 1 (expected 2 or 3)" },
    { "qcow2_bad_cluster_bits.qcow2", 0, -EINVAL, "cluster_bits 30 out of range" },
    { "qcow2_truncated_header.qcow2", 0, -EINVAL, "file is 50 bytes, shorter than a header" },
    { "qcow2_l1_outside.qcow2", 0, -EINVAL, "L1 table at offset 1099511627776 (2 entries) is outside the file" },
    { "qcow2_l2_outside.qcow2", 0, -EINVAL, "L2 table at offset 1073741824 (L1 index 0) is outside the file" },
    { "qcow2_refcount_table_outside.qcow2", 0, -EINVAL, "refcount table at offset 1099511627776 (1 clusters) is outside" },
    { "qcow2_refcount_overflow.qcow2", 0, -EINVAL, "refcount overflow: refcount_order 7" },
    { "qcow2_encrypted.qcow2", 0, -EINVAL, "encrypted images are unsupported" },
    { "qcow2_corrupt_flag.qcow2", 0, -EINVAL, "marked corrupt" },
    { "qcow2_bad_header_length.qcow2", 0, -EINVAL, "header_length 50 invalid" },
    { "qcow2_dirty.qcow2", 1, -EINVAL, "image is dirty (refcounts need repair)" },
    { "qcow2_unknown_incompat.qcow2", 0, -EINVAL, "unknown incompatible features 0x10000000000" },
};

START_TEST(corpus_file_gives_its_error)
{
    char path[256], err[512] = "";
    struct disk *d = NULL;
    snprintf(path, sizeof(path), CORPUS "%s", corpus[_i].file);
    ck_assert_int_eq(access(path, R_OK), 0);
    int r = disk_open(path, !corpus[_i].rw, &d, err, sizeof(err));
    ck_assert_msg(r == corpus[_i].err, "%s: got %d (%s)", corpus[_i].file, r, err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, corpus[_i].msg), "%s: '%s' lacks '%s'", corpus[_i].file, err,
                  corpus[_i].msg);
}
END_TEST

START_TEST(corpus_good_reads)
{
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(CORPUS "qcow2_good.qcow2", 1, &d, err, sizeof(err)), 0);
    uint8_t buf[1024];
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(buf[0], 0x5a);
    ck_assert_uint_eq(buf[511], 0x5a);
    ck_assert_uint_eq(buf[512], 0);
    disk_close(d);
    /* a dirty image still reads */
    ck_assert_int_eq(disk_open(CORPUS "qcow2_dirty.qcow2", 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(disk_read(d, 0, buf, 1), 0);
    ck_assert_uint_eq(buf[0], 0x5a);
    disk_close(d);
}
END_TEST

/* Seeded byte mutations of a small valid image (header, tables, data): each opens or
 * fails with a message; opened ones read and write without crashing (ASan/UBSan). */
START_TEST(mutated_images_never_crash)
{
    uint8_t orig[4096];
    FILE *f = fopen(CORPUS "qcow2_good.qcow2", "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(orig, 1, sizeof(orig), f);
    fclose(f);
    uint64_t x = 7;
    int opened = 0;
    for (int iter = 0; iter < 400; iter++) {
        uint8_t m[4096];
        memcpy(m, orig, n);
        int flips = 1 + iter % 3;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            /* mostly the header and the tables (first 2.5 KiB) */
            size_t at = iter % 2 ? x % 112 : x % (n - 512);
            m[at] = (uint8_t)(x >> 32);
        }
        save(scratch_path("m.qcow2"), m, n);
        for (int rw = 0; rw < 2; rw++) {
            struct disk *d = NULL;
            char err[512] = "";
            int r = disk_open(scratch_path("m.qcow2"), !rw, &d, err, sizeof(err));
            if (r) {
                ck_assert_ptr_null(d);
                ck_assert_msg(err[0], "iteration %d: error %d without a message", iter, r);
                continue;
            }
            opened++;
            uint8_t buf[4096];
            uint64_t span = d->size < 65536 ? d->size : 65536;
            for (uint64_t off = 0; off + 1000 <= span; off += 1000)
                (void)disk_read(d, off, buf, 1000);
            if (rw && d->size >= 4096) {
                memset(buf, 0x42, sizeof(buf));
                (void)disk_write(d, (x >> 20) % (d->size - 4095), buf, 4096);
                (void)disk_write_zeroes(d, 0, 4096);
            }
            disk_close(d);
        }
    }
    ck_assert_int_gt(opened, 0);
}

/* Fuzz findings (fuzz/crashes/qcow2/): metadata that overlaps other metadata or data let
 * guest writes and allocations overwrite the image's own tables. Refused at open now. */
static const struct { const char *file, *want; } overlap_cases[] = {
    { "fuzz/crashes/qcow2/l2-table-is-refcount-table", "L2 table at offset 512 overlaps the refcount table at offset 512" },
    { "fuzz/crashes/qcow2/refcount-block-is-l1-table", "refcount block at offset 1024 overlaps the L1 table at offset 1024" },
};

/* Opened (the L1 table is sound), failing on the first use of the bad L2 entry. */
static const struct { const char *file; uint64_t guest; const char *want; } lazy_cases[] = {
    { "fuzz/crashes/qcow2/l2-maps-data-onto-itself", 19456, "L2 table at offset 2048 (L1 index 0), entry 38: data cluster at offset 2048 overlaps the L2 table at offset 2048" },
    { CORPUS "qcow2_data_outside.qcow2", 0, "L2 table at offset 2048 (L1 index 0), entry 0: data cluster at offset 1073741824 is outside the file (size 3072)" },
    { CORPUS "qcow2_compressed.qcow2", 0, "L2 table at offset 2048 (L1 index 0), entry 0: compressed cluster with the COPIED flag" },
};

START_TEST(corpus_file_fails_on_first_use)
{
    struct disk *d = NULL;
    char err[512] = "";
    ck_assert_int_eq(disk_open(lazy_cases[_i].file, 1, &d, err, sizeof(err)), 0);
    uint8_t buf[512];
    ck_assert_int_eq(disk_read(d, lazy_cases[_i].guest, buf, sizeof(buf)), -EIO);
    struct qcow2_info qi;
    ck_assert_int_eq(qcow2_get_info(d, &qi), 0);
    ck_assert_msg(strstr(qi.corrupt, lazy_cases[_i].want), "'%s' lacks '%s'", qi.corrupt,
                  lazy_cases[_i].want);
    disk_close(d);
}
END_TEST

START_TEST(overlapping_metadata_refused)
{
    struct disk *d = NULL;
    char err[512] = "";
    int rc = disk_open(overlap_cases[_i].file, 0, &d, err, sizeof(err));

    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, overlap_cases[_i].want) != NULL, "error '%s' lacks '%s'", err,
                  overlap_cases[_i].want);
}
END_TEST

END_TEST

Suite *qcow2_suite(void)
{
    Suite *s = suite_create("qcow2");
    TCase *tc = tcase_create("qemu");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, reads_qemu_image_v3_64k);
    tcase_add_test(tc, reads_qemu_image_v3_4k);
    tcase_add_test(tc, reads_qemu_image_v2_512);
    tcase_add_test(tc, our_writes_pass_qemu_check_64k);
    tcase_add_test(tc, our_writes_pass_qemu_check_4k);
    tcase_add_test(tc, our_writes_pass_qemu_check_512);
    tcase_add_test(tc, writes_into_qemu_image_v3);
    tcase_add_test(tc, grows_refcount_table_of_qemu_image);
    tcase_add_test(tc, writes_into_qemu_image_v2);
    tcase_add_test(tc, backing_raw_and_qcow2_chain);
    tcase_add_test(tc, resize_grows_l1_and_stays_consistent);
    tcase_add_test(tc, create_errors);
    tcase_add_test(tc, reads_compressed_zlib);
    tcase_add_test(tc, reads_compressed_zstd);
    tcase_add_test(tc, reads_compressed_zlib_4k);
    tcase_add_test(tc, reads_compressed_zstd_512);
    tcase_add_test(tc, reads_compressed_v2);
    tcase_add_test(tc, reads_extended_l2);
    tcase_add_test(tc, reads_extended_l2_16k_compressed);
    tcase_add_test(tc, writes_into_compressed_zlib);
    tcase_add_test(tc, writes_into_compressed_zstd_4k);
    tcase_add_test(tc, writes_extended_l2);
    tcase_add_test(tc, backing_chain_compressed_base_ext_l2_overlays);
    tcase_add_test(tc, header_compression_and_ext_l2_checks);
    tcase_add_test(tc, bad_compressed_bytes_fail_the_read);
    tcase_add_test(tc, compressed_cluster_with_refcount_zero);
    tcase_add_loop_test(tc, hostile_entry_fails_on_first_use, 0, sizeof(hostile) / sizeof(hostile[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("corpus");
    tcase_add_loop_test(tc, corpus_file_gives_its_error, 0, sizeof(corpus) / sizeof(corpus[0]));
    tcase_add_test(tc, corpus_good_reads);
    tcase_add_loop_test(tc, corpus_file_fails_on_first_use, 0,
                        sizeof(lazy_cases) / sizeof(lazy_cases[0]));
    tcase_add_loop_test(tc, overlapping_metadata_refused, 0,
                        sizeof(overlap_cases) / sizeof(overlap_cases[0]));
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, mutated_images_never_crash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(qcow2_suite());
}
