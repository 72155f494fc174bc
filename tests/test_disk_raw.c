/* Raw images, probing by magic, and the fault-plan wrapper. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "devices/disk/disk.h"
#include "tests/check_run.h"
#include "tests/scratch.h"

/* Creates scratch_dir/name with len bytes, byte i = (i * 7 + seed) & 0xff. */
static const char *mkfile(const char *name, size_t len, int seed)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", scratch_dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < len; i++)
        fputc((int)((i * 7 + (size_t)seed) & 0xff), f);
    fclose(f);
    return path;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

START_TEST(raw_read_write_roundtrip)
{
    const char *p = mkfile("a.img", 65536, 3);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(p, 0, &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d->ops->format, "raw");
    ck_assert_uint_eq(d->size, 65536);
    ck_assert_int_eq(d->read_only, 0);
    uint8_t buf[4096], back[4096];
    ck_assert_int_eq(disk_read(d, 4096, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        ck_assert_uint_eq(buf[i], ((4096 + i) * 7 + 3) & 0xff);
    memset(buf, 0x5a, sizeof(buf));
    ck_assert_int_eq(disk_write(d, 8192 + 100, buf, sizeof(buf)), 0);
    ck_assert_int_eq(disk_flush(d), 0);
    ck_assert_int_eq(disk_read(d, 8192 + 100, back, sizeof(back)), 0);
    ck_assert_mem_eq(buf, back, sizeof(buf));
    disk_close(d);
}
END_TEST

START_TEST(raw_bounds_and_read_only)
{
    const char *p = mkfile("a.img", 8192, 1);
    struct disk *d;
    char err[256];
    uint8_t buf[512] = { 0 };
    ck_assert_int_eq(disk_open(p, 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d->read_only, 1);
    ck_assert_int_eq(disk_write(d, 0, buf, sizeof(buf)), -EROFS);
    ck_assert_int_eq(disk_discard(d, 0, 512), -EROFS);
    ck_assert_int_eq(disk_write_zeroes(d, 0, 512), -EROFS);
    ck_assert_int_eq(disk_read(d, 8192 - 256, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(disk_read(d, UINT64_MAX - 10, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(disk_read(d, 8192 - 512, buf, sizeof(buf)), 0);
    disk_close(d);
    /* nothing changed on disk */
    ck_assert_uint_eq(file_size(p), 8192);
}
END_TEST

START_TEST(raw_discard_zeroes_resize)
{
    const char *p = mkfile("a.img", 1 << 20, 9);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(p, 0, &d, err, sizeof(err)), 0);
    uint8_t buf[8192], zero[8192] = { 0 };
    ck_assert_int_eq(disk_discard(d, 65536, 8192), 0);
    ck_assert_int_eq(disk_read(d, 65536, buf, sizeof(buf)), 0);
    ck_assert_mem_eq(buf, zero, sizeof(buf));
    ck_assert_int_eq(disk_write_zeroes(d, 1000, 3000), 0);
    ck_assert_int_eq(disk_read(d, 1000, buf, 3000), 0);
    ck_assert_mem_eq(buf, zero, 3000);
    /* bytes around the range keep their values */
    ck_assert_int_eq(disk_read(d, 999, buf, 1), 0);
    ck_assert_uint_eq(buf[0], (999 * 7 + 9) & 0xff);
    ck_assert_int_eq(disk_read(d, 4000, buf, 1), 0);
    ck_assert_uint_eq(buf[0], (4000 * 7 + 9) & 0xff);
    ck_assert_int_eq(disk_discard(d, (1 << 20) - 512, 1024), -EINVAL);
    ck_assert_int_eq(disk_resize(d, 2 << 20), 0);
    ck_assert_uint_eq(d->size, 2 << 20);
    ck_assert_int_eq(disk_read(d, (2 << 20) - 8192, buf, sizeof(buf)), 0);
    ck_assert_mem_eq(buf, zero, sizeof(buf));
    disk_close(d);
    ck_assert_uint_eq(file_size(p), 2 << 20);
}
END_TEST

START_TEST(probe_uses_magic_not_extension)
{
    char err[256];
    struct disk *d;
    /* A raw file named like a qcow2 is raw. */
    const char *p = mkfile("looks.qcow2", 4096, 0);
    ck_assert_int_eq(disk_open(p, 1, &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d->ops->format, "raw");
    disk_close(d);
    /* qcow2 magic in a file named .img is probed as qcow2 (and this one is too short). */
    p = mkfile("looks.img", 0, 0);
    FILE *f = fopen(p, "wb");
    fwrite("QFI\xfb\0\0\0\3", 1, 8, f);
    fclose(f);
    ck_assert_str_eq(disk_probe(p, err, sizeof(err)), "qcow2");
    ck_assert_int_eq(disk_open(p, 1, &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "shorter than a header"));
    /* composite magic in a .raw file */
    p = mkfile("looks.raw", 0, 0);
    f = fopen(p, "wb");
    fwrite("composite_disk\x1d", 1, 15, f);
    fclose(f);
    ck_assert_str_eq(disk_probe(p, err, sizeof(err)), "composite");
    /* An empty file is an empty raw disk. */
    p = mkfile("empty.bin", 0, 0);
    ck_assert_int_eq(disk_open(p, 1, &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d->ops->format, "raw");
    ck_assert_uint_eq(d->size, 0);
    disk_close(d);
}
END_TEST

START_TEST(open_missing_names_path)
{
    struct disk *d;
    char err[256] = "";
    char p[128];
    snprintf(p, sizeof(p), "%s/nope.img", scratch_dir);
    ck_assert_int_eq(disk_open(p, 0, &d, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "nope.img"));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    ck_assert_int_eq(disk_open(scratch_dir, 0, &d, err, sizeof(err)), -EISDIR);
    /* a FIFO would block an open for reading: refused up front */
    snprintf(p, sizeof(p), "%s/fifo", scratch_dir);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    ck_assert_int_eq(disk_open(p, 1, &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file or block device"));
}
END_TEST

static struct disk *faulty(const char *plan, size_t size)
{
    const char *p = mkfile("f.img", size, 5);
    struct disk *in, *d;
    char err[256];
    ck_assert_int_eq(disk_open(p, 0, &in, err, sizeof(err)), 0);
    ck_assert_int_eq(disk_fault_wrap(in, plan, &d, err, sizeof(err)), 0);
    return d;
}

START_TEST(fault_eio_nth_and_range)
{
    struct disk *d = faulty("eio-nth=3,eio-range=100-199,latency-ns=20000", 1 << 20);
    uint8_t buf[512];
    ck_assert_int_eq(disk_read(d, 0, buf, 512), 0);          /* 1 */
    ck_assert_uint_eq(disk_latency_ns(d), 20000);
    ck_assert_int_eq(disk_read(d, 512, buf, 512), 0);        /* 2 */
    ck_assert_int_eq(disk_read(d, 0, buf, 512), -EIO);       /* 3: the Nth */
    ck_assert_int_eq(disk_read(d, 0, buf, 512), 0);          /* 4 */
    ck_assert_int_eq(disk_read(d, 99 * 512, buf, 512), 0);   /* sector 99: outside */
    ck_assert_int_eq(disk_read(d, 99 * 512 + 1, buf, 512), -EIO);  /* touches 100 */
    ck_assert_int_eq(disk_write(d, 199 * 512, buf, 512), -EIO);
    ck_assert_int_eq(disk_write(d, 200 * 512, buf, 512), 0);
    disk_close(d);
}
END_TEST

START_TEST(fault_torn_write_is_prefix)
{
    struct disk *d = faulty("torn-nth=2,seed=7", 65536);
    uint8_t before[8192], buf[8192], after[8192];
    ck_assert_int_eq(disk_read(d, 0, before, sizeof(before)), 0);   /* 1 */
    memset(buf, 0xee, sizeof(buf));
    ck_assert_int_eq(disk_write(d, 0, buf, sizeof(buf)), -EIO);      /* 2: torn */
    ck_assert_int_eq(disk_read(d, 0, after, sizeof(after)), 0);
    size_t n = 0;
    while (n < sizeof(after) && after[n] == 0xee)
        n++;
    ck_assert_uint_lt(n, sizeof(buf));                /* not all of it */
    ck_assert_uint_eq(n % 512, 0);                    /* whole sectors */
    ck_assert_mem_eq(after + n, before + n, sizeof(after) - n);
    disk_close(d);

    /* same plan, same requests: same tear */
    d = faulty("torn-nth=2,seed=7", 65536);
    ck_assert_int_eq(disk_read(d, 0, before, sizeof(before)), 0);
    ck_assert_int_eq(disk_write(d, 0, buf, sizeof(buf)), -EIO);
    ck_assert_int_eq(disk_read(d, 0, after, sizeof(after)), 0);
    size_t m = 0;
    while (m < sizeof(after) && after[m] == 0xee)
        m++;
    ck_assert_uint_eq(m, n);
    disk_close(d);
}
END_TEST

START_TEST(fault_short_read)
{
    struct disk *d = faulty("short-nth=1,seed=3", 65536);
    uint8_t buf[4096];
    memset(buf, 0xcc, sizeof(buf));
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), -EIO);
    /* the untransferred tail is untouched */
    ck_assert_uint_eq(buf[sizeof(buf) - 1], 0xcc);
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(buf[sizeof(buf) - 1], ((4095 * 7) + 5) & 0xff);
    disk_close(d);
}
END_TEST

START_TEST(fault_jitter_is_seeded)
{
    uint64_t a[8], b[8];
    uint8_t buf[512];
    for (int run = 0; run < 2; run++) {
        struct disk *d = faulty("latency-ns=1000,latency-jitter-ns=500,seed=42", 8192);
        for (int i = 0; i < 8; i++) {
            ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
            (run ? b : a)[i] = disk_latency_ns(d);
            ck_assert_uint_ge((run ? b : a)[i], 1000);
            ck_assert_uint_le((run ? b : a)[i], 1500);
        }
        disk_close(d);
    }
    ck_assert_mem_eq(a, b, sizeof(a));
}
END_TEST

START_TEST(fault_plan_errors)
{
    const char *p = mkfile("g.img", 4096, 0);
    struct disk *in, *d;
    char err[256];
    ck_assert_int_eq(disk_open(p, 0, &in, err, sizeof(err)), 0);
    ck_assert_int_eq(disk_fault_wrap(in, "eio-nth=x", &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "eio-nth"));
    ck_assert_int_eq(disk_fault_wrap(in, "bogus=1", &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown key 'bogus'"));
    ck_assert_int_eq(disk_fault_wrap(in, "eio-range=9-3", &d, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(disk_fault_wrap(in, "seed", &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "key=value"));
    ck_assert_int_eq(disk_fault_wrap(in, "", &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(disk_latency_ns(d), 0);
    disk_close(d);          /* closes `in` too */
}
END_TEST

Suite *disk_raw_suite(void)
{
    Suite *s = suite_create("disk_raw");
    TCase *tc = tcase_create("raw");
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, raw_read_write_roundtrip);
    tcase_add_test(tc, raw_bounds_and_read_only);
    tcase_add_test(tc, raw_discard_zeroes_resize);
    tcase_add_test(tc, probe_uses_magic_not_extension);
    tcase_add_test(tc, open_missing_names_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("fault");
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, fault_eio_nth_and_range);
    tcase_add_test(tc, fault_torn_write_is_prefix);
    tcase_add_test(tc, fault_short_read);
    tcase_add_test(tc, fault_jitter_is_seeded);
    tcase_add_test(tc, fault_plan_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(disk_raw_suite());
}
