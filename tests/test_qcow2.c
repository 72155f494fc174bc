/* qcow2: images qemu-img writes read back byte for byte; images we write pass
 * `qemu-img check` and convert back to what we wrote; backing files; the corpus. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "devices/disk/disk.h"
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
    { "qcow2_data_outside.qcow2", 0, -EINVAL, "data cluster at offset 1073741824 (guest offset 0) is outside the file" },
    { "qcow2_refcount_table_outside.qcow2", 0, -EINVAL, "refcount table at offset 1099511627776 (1 clusters) is outside" },
    { "qcow2_refcount_overflow.qcow2", 0, -EINVAL, "refcount overflow: refcount_order 7" },
    { "qcow2_encrypted.qcow2", 0, -EINVAL, "encrypted images are unsupported" },
    { "qcow2_compressed.qcow2", 0, -EINVAL, "compressed clusters are unsupported" },
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
    { "fuzz/crashes/qcow2/l2-maps-data-onto-itself", "data cluster at offset 2048 (guest offset 19456) overlaps the L2 table at offset 2048" },
    { "fuzz/crashes/qcow2/l2-table-is-refcount-table", "L2 table at offset 512 overlaps the refcount table at offset 512" },
    { "fuzz/crashes/qcow2/refcount-block-is-l1-table", "refcount block at offset 1024 overlaps the L1 table at offset 1024" },
};

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
    suite_add_tcase(s, tc);
    tc = tcase_create("corpus");
    tcase_add_loop_test(tc, corpus_file_gives_its_error, 0, sizeof(corpus) / sizeof(corpus[0]));
    tcase_add_test(tc, corpus_good_reads);
    tcase_add_loop_test(tc, overlapping_metadata_refused, 0,
                        sizeof(overlap_cases) / sizeof(overlap_cases[0]));
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, mutated_images_never_crash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
