/* Composite disks: the malformed corpus in tests/data/disk (each file its own error),
 * reads and writes across components, read-only extents, nesting, path forms. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "composite.pb-c.h"
#include "devices/disk/composite.h"
#include "devices/disk/disk.h"
#include "tests/check_run.h"
#include "tests/scratch.h"
#include "devices/disk/disk_internal.h"
#include "devices/disk/qcow2.h"

#define CORPUS "tests/data/disk/"

struct spec_comp { const char *path; uint64_t offset; int rw; uint64_t file_offset; };

static void write_spec(const char *name, uint64_t version, const struct spec_comp *c, size_t n,
                       uint64_t length)
{
    ComponentDisk comps[16];
    ComponentDisk *cp[16];
    for (size_t i = 0; i < n; i++) {
        comps[i] = (ComponentDisk)COMPONENT_DISK__INIT;
        comps[i].file_path = (char *)c[i].path;
        comps[i].offset = c[i].offset;
        comps[i].read_write_capability = c[i].rw ? READ_WRITE_CAPABILITY__READ_WRITE
                                                 : READ_WRITE_CAPABILITY__READ_ONLY;
        comps[i].file_offset = c[i].file_offset;
        cp[i] = &comps[i];
    }
    CompositeDisk m = COMPOSITE_DISK__INIT;
    m.version = version;
    m.n_component_disks = n;
    m.component_disks = cp;
    m.length = length;
    uint8_t buf[4096];
    size_t len = composite_disk__pack(&m, buf);
    FILE *f = fopen(scratch_path(name), "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(CDISK_MAGIC, 1, CDISK_MAGIC_LEN, f);
    fwrite(buf, 1, len, f);
    fclose(f);
}

static uint8_t byte_at(const char *name, long off)
{
    FILE *f = fopen(scratch_path(name), "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fclose(f);
    return (uint8_t)c;
}

/* ---- the corpus ---- */

static const struct {
    const char *file;
    int err;
    const char *msg;
} corpus[] = {
    { "truncated.cdisk", -EINVAL, "field 2 declares length 15 but only 2 bytes remain" },
    { "wrong_wiretype.cdisk", -EINVAL, "field 2 has wire type varint, expected length-delimited" },
    { "huge_length.cdisk", -EINVAL, "declares length 4611686018427387904" },
    { "bad_varint.cdisk", -EINVAL, "varint longer than 10 bytes" },
    { "group_wiretype.cdisk", -EINVAL, "field 7 uses unsupported wire type start-group" },
    { "overlap.cdisk", -EINVAL, "component 1 'comp_b.raw' overlaps component 0 'comp_a.raw' (both at offset 0)" },
    { "unsorted.cdisk", -EINVAL, "component 2 'comp_a.raw' offset 4096 is below component 1 'comp_b.raw' offset 8192" },
    { "gap.cdisk", -EINVAL, "gap after component 0 'comp_small.raw': it provides 1000 bytes from offset 0 but component 1 starts at 4096" },
    { "short_last.cdisk", -EINVAL, "component 1 'comp_small.raw' provides 1000 bytes, less than its extent of 4096" },
    { "not_at_zero.cdisk", -EINVAL, "component 0 'comp_a.raw' starts at offset 512, expected 0" },
    { "length_short.cdisk", -EINVAL, "declared length 4096 does not cover component 1 'comp_b.raw' at offset 4096" },
    { "empty_list.cdisk", -EINVAL, "component list is empty" },
    { "version3.cdisk", -EINVAL, "unsupported version 3 (expected 1 or 2)" },
    { "version0.cdisk", -EINVAL, "unsupported version 0" },
    { "self_cycle.cdisk", -ELOOP, "'" CORPUS "self_cycle.cdisk' includes itself" },
    { "cycle_a.cdisk", -ELOOP, "'" CORPUS "cycle_a.cdisk' includes itself" },
    { "missing_component.cdisk", -ENOENT, "component 1 'does_not_exist.raw': cannot open disk image" },
    { "bad_capability.cdisk", -EINVAL, "read_write_capability 7" },
    { "nest11.cdisk", -ELOOP, "nesting depth 11 exceeds the limit of 10" },
};

START_TEST(corpus_file_gives_its_error)
{
    char path[256], err[512] = "";
    struct disk *d = NULL;
    snprintf(path, sizeof(path), CORPUS "%s", corpus[_i].file);
    ck_assert_int_eq(access(path, R_OK), 0);
    int r = disk_open(path, 0, &d, err, sizeof(err));
    ck_assert_msg(r == corpus[_i].err, "%s: got %d (%s), want %d", corpus[_i].file, r, err,
                  corpus[_i].err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, corpus[_i].msg), "%s: message '%s' lacks '%s'", corpus[_i].file,
                  err, corpus[_i].msg);
}
END_TEST

START_TEST(corpus_bad_magic)
{
    char err[256];
    struct disk *d;
    /* by magic it is not a composite at all */
    ck_assert_str_eq(disk_probe(CORPUS "bad_magic.cdisk", err, sizeof(err)), "raw");
    /* and the composite opener itself refuses it */
    ck_assert_int_eq(disk_composite_open(CORPUS "bad_magic.cdisk", 1, NULL, &d, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "bad magic"));
}
END_TEST

START_TEST(corpus_good_and_nest10)
{
    char err[256];
    struct disk *d;
    uint8_t buf[8192];
    ck_assert_int_eq(disk_open(CORPUS "good.cdisk", 1, &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d->ops->format, "composite");
    ck_assert_uint_eq(d->size, 8192);
    ck_assert_int_eq(d->read_only, 1);
    ck_assert_uint_eq(disk_composite_count(d), 2);
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(buf[0], 0xa1);
    ck_assert_uint_eq(buf[4095], 0xa1);
    ck_assert_uint_eq(buf[4096], 0xb2);
    ck_assert_uint_eq(buf[8191], 0xb2);
    disk_close(d);
    ck_assert_int_eq(disk_open(CORPUS "nest10.cdisk", 1, &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(d->size, 4096);
    ck_assert_int_eq(disk_read(d, 4000, buf, 96), 0);
    ck_assert_uint_eq(buf[95], 0xa1);
    disk_close(d);
}
END_TEST

/* ---- I/O semantics ---- */

START_TEST(read_write_across_components)
{
    scratch_fill("a", 4096, 0x11);
    scratch_fill("b", 8192, 0x22);
    scratch_fill("c", 4096, 0x33);
    struct spec_comp c[] = { { "a", 0, 1, 0 }, { "b", 4096, 1, 0 }, { "c", 12288, 1, 0 } };
    write_spec("x.cdisk", 2, c, 3, 16384);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("x.cdisk"), 0, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d->read_only, 0);
    uint8_t buf[16384], w[10000];
    memset(w, 0x77, sizeof(w));
    /* one request spanning all three */
    ck_assert_int_eq(disk_write(d, 3000, w, sizeof(w)), 0);
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(buf[2999], 0x11);
    ck_assert_uint_eq(buf[3000], 0x77);
    ck_assert_uint_eq(buf[12999], 0x77);
    ck_assert_uint_eq(buf[13000], 0x33);
    ck_assert_uint_eq(byte_at("c", 711), 0x77);
    ck_assert_uint_eq(byte_at("c", 712), 0x33);
    ck_assert_int_eq(disk_write_zeroes(d, 4000, 200), 0);
    ck_assert_int_eq(disk_read(d, 4000, buf, 200), 0);
    for (int i = 0; i < 200; i++)
        ck_assert_uint_eq(buf[i], 0);
    ck_assert_int_eq(disk_discard(d, 8192, 4096), 0);
    ck_assert_int_eq(disk_flush(d), 0);
    ck_assert_int_eq(disk_read(d, 16000, buf, 1000), -EINVAL);
    ck_assert_int_eq(disk_resize(d, 1 << 20), -ENOTSUP);
    disk_close(d);
}
END_TEST

START_TEST(read_only_extent_all_or_nothing)
{
    scratch_fill("rw", 4096, 0x11);
    scratch_fill("ro", 4096, 0x22);
    struct spec_comp c[] = { { "rw", 0, 1, 0 }, { "ro", 4096, 0, 0 } };
    write_spec("m.cdisk", 2, c, 2, 8192);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("m.cdisk"), 0, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d->read_only, 0);
    uint8_t w[2048];
    memset(w, 0x99, sizeof(w));
    /* spans rw then ro: refused, and the rw part is untouched */
    ck_assert_int_eq(disk_write(d, 3072, w, sizeof(w)), -EROFS);
    ck_assert_uint_eq(byte_at("rw", 3072), 0x11);
    ck_assert_uint_eq(byte_at("ro", 0), 0x22);
    ck_assert_int_eq(disk_write_zeroes(d, 0, 8192), -EROFS);
    ck_assert_int_eq(disk_discard(d, 4096, 10), -EROFS);
    ck_assert_uint_eq(byte_at("rw", 0), 0x11);
    /* inside the rw extent: fine */
    ck_assert_int_eq(disk_write(d, 1024, w, sizeof(w)), 0);
    ck_assert_uint_eq(byte_at("rw", 1024), 0x99);
    disk_close(d);
    /* opened read-only, nothing is writable */
    ck_assert_int_eq(disk_open(scratch_path("m.cdisk"), 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d->read_only, 1);
    ck_assert_int_eq(disk_write(d, 0, w, 16), -EROFS);
    disk_close(d);
}
END_TEST

START_TEST(path_forms_version1_and_file_offset)
{
    scratch_fill("a", 8192, 0x44);
    scratch_fill("b", 4096, 0x55);
    int fd = open(scratch_path("b"), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    char procp[64], absp[160];
    snprintf(procp, sizeof(procp), "/proc/self/fd/%d", fd);
    snprintf(absp, sizeof(absp), "%s", scratch_path("a"));
    /* absolute path with a file offset, then /proc/self/fd/N; version 1 */
    struct spec_comp c[] = { { absp, 0, 0, 4096 }, { procp, 4096, 0, 0 } };
    write_spec("p.cdisk", 1, c, 2, 8192);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("p.cdisk"), 1, &d, err, sizeof(err)), 0);
    uint8_t buf[8192];
    ck_assert_int_eq(disk_read(d, 0, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(buf[0], 0x44);
    ck_assert_uint_eq(buf[4096], 0x55);
    ck_assert_uint_eq(disk_composite_version(d), 1);
    struct cdisk_component_info ci;
    ck_assert_int_eq(disk_composite_component(d, 0, &ci), 0);
    ck_assert_uint_eq(ci.file_offset, 4096);
    ck_assert_uint_eq(ci.length, 4096);
    disk_close(d);
    close(fd);
    /* file_offset that leaves too few bytes is a short component */
    struct spec_comp c2[] = { { absp, 0, 0, 6000 } };
    write_spec("q.cdisk", 2, c2, 1, 4096);
    ck_assert_int_eq(disk_open(scratch_path("q.cdisk"), 1, &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "provides 2192 bytes, less than its extent of 4096"));
}
END_TEST

/* Fuzz finding (fuzz/crashes/composite/crash-70a6be9b…): two writable components backed by
 * the same file aliased each other, so a write through one changed what the other read. */
START_TEST(same_file_twice_writable_is_refused)
{
    scratch_fill("a", 4096, 0x11);
    struct disk *d;
    char err[256];
    struct spec_comp c[] = { { "a", 0, 1, 0 }, { "a", 10, 1, 0 } };
    write_spec("dup.cdisk", 2, c, 2, 1000);
    ck_assert_int_eq(disk_open(scratch_path("dup.cdisk"), 0, &d, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "components 0 'a' and 1 'a' are the same file"));
    /* one of them writable is enough, whatever the name the file goes by */
    char absp[160];
    snprintf(absp, sizeof(absp), "%s", scratch_path("a"));
    struct spec_comp c2[] = { { "a", 0, 0, 0 }, { absp, 2048, 1, 2048 } };
    write_spec("dup2.cdisk", 2, c2, 2, 4096);
    ck_assert_int_eq(disk_open(scratch_path("dup2.cdisk"), 0, &d, err, sizeof(err)), -EINVAL);
    /* opened read-only nothing can be written: fine; so are read-only repeats */
    ck_assert_int_eq(disk_open(scratch_path("dup.cdisk"), 1, &d, err, sizeof(err)), 0);
    disk_close(d);
    struct spec_comp c3[] = { { "a", 0, 0, 0 }, { "a", 4096, 0, 0 } };
    write_spec("pad.cdisk", 2, c3, 2, 8192);
    ck_assert_int_eq(disk_open(scratch_path("pad.cdisk"), 0, &d, err, sizeof(err)), 0);
    disk_close(d);
}
END_TEST

START_TEST(nested_composite_writes_through)
{
    scratch_fill("leaf", 4096, 0x10);
    scratch_fill("other", 4096, 0x20);
    struct spec_comp in[] = { { "leaf", 0, 1, 0 } };
    write_spec("inner.cdisk", 2, in, 1, 4096);
    struct spec_comp out[] = { { "other", 0, 0, 0 }, { "inner.cdisk", 4096, 1, 0 } };
    write_spec("outer.cdisk", 2, out, 2, 8192);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("outer.cdisk"), 0, &d, err, sizeof(err)), 0);
    uint8_t w[100];
    memset(w, 0xab, sizeof(w));
    ck_assert_int_eq(disk_write(d, 5000, w, sizeof(w)), 0);
    ck_assert_uint_eq(byte_at("leaf", 904), 0xab);
    ck_assert_int_eq(disk_write(d, 4000, w, sizeof(w)), -EROFS);
    disk_close(d);
}
END_TEST

/* Seeded byte mutations of good.cdisk's spec: every result opens cleanly or fails with a
 * message; none crashes, hangs or leaks (ASan/UBSan build). */
START_TEST(mutated_specs_never_crash)
{
    uint8_t orig[256];
    FILE *f = fopen(CORPUS "good.cdisk", "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(orig, 1, sizeof(orig), f);
    fclose(f);
    scratch_fill("comp_a.raw", 4096, 0xa1);
    scratch_fill("comp_b.raw", 4096, 0xb2);
    uint64_t x = 99;
    int opened = 0;
    for (int iter = 0; iter < 400; iter++) {
        uint8_t m[256];
        memcpy(m, orig, n);
        int flips = iter ? 1 + iter % 4 : 0;       /* iteration 0: the original, opens */
        for (int k = 0; k < flips; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            if (iter % 2)   /* a single bit, or a whole random byte */
                m[CDISK_MAGIC_LEN + x % (n - CDISK_MAGIC_LEN)] ^= (uint8_t)(1u << ((x >> 32) % 8));
            else
                m[CDISK_MAGIC_LEN + x % (n - CDISK_MAGIC_LEN)] = (uint8_t)(x >> 32);
        }
        size_t len = iter % 7 == 6 ? n - 1 - (x >> 40) % 10 : n;    /* some truncated too */
        f = fopen(scratch_path("m.cdisk"), "wb");
        fwrite(m, 1, len, f);
        fclose(f);
        struct disk *d = NULL;
        char err[512] = "";
        int r = disk_open(scratch_path("m.cdisk"), 1, &d, err, sizeof(err));
        if (r) {
            ck_assert_ptr_null(d);
            ck_assert_msg(err[0], "iteration %d: error %d without a message", iter, r);
            continue;
        }
        opened++;
        uint8_t buf[8192];
        ck_assert_uint_le(d->size, 8192);
        ck_assert_int_eq(disk_read(d, 0, buf, (size_t)d->size), 0);
        disk_close(d);
    }
    ck_assert_int_gt(opened, 0);
}
END_TEST

START_TEST(qcow2_component_is_written_through)
{
    char err[256];
    scratch_fill("head", 4096, 0x01);
    ck_assert_int_eq(qcow2_create(scratch_path("part.qcow2"), 65536, 4096, NULL, err, sizeof(err)), 0);
    struct spec_comp c[] = { { "head", 0, 0, 0 }, { "part.qcow2", 4096, 1, 0 } };
    write_spec("q.cdisk", 2, c, 2, 4096 + 65536);
    struct disk *d;
    ck_assert_int_eq(disk_open(scratch_path("q.cdisk"), 0, &d, err, sizeof(err)), 0);
    struct cdisk_component_info ci;
    ck_assert_int_eq(disk_composite_component(d, 1, &ci), 0);
    ck_assert_str_eq(ci.format, "qcow2");
    uint8_t w[5000], r[5000];
    memset(w, 0x6b, sizeof(w));
    ck_assert_int_eq(disk_write(d, 4096 + 30000, w, sizeof(w)), 0);
    disk_close(d);
    /* reopen: the qcow2 itself holds the bytes */
    ck_assert_int_eq(disk_open(scratch_path("part.qcow2"), 1, &d, err, sizeof(err)), 0);
    ck_assert_int_eq(disk_read(d, 30000, r, sizeof(r)), 0);
    ck_assert_mem_eq(r, w, sizeof(r));
    disk_close(d);
}
END_TEST

Suite *composite_suite(void)
{
    Suite *s = suite_create("composite");
    TCase *tc = tcase_create("corpus");
    tcase_add_loop_test(tc, corpus_file_gives_its_error, 0, sizeof(corpus) / sizeof(corpus[0]));
    tcase_add_test(tc, corpus_bad_magic);
    tcase_add_test(tc, corpus_good_and_nest10);
    suite_add_tcase(s, tc);
    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, read_write_across_components);
    tcase_add_test(tc, read_only_extent_all_or_nothing);
    tcase_add_test(tc, path_forms_version1_and_file_offset);
    tcase_add_test(tc, nested_composite_writes_through);
    tcase_add_test(tc, mutated_specs_never_crash);
    tcase_add_test(tc, qcow2_component_is_written_through);
    tcase_add_test(tc, same_file_twice_writable_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(composite_suite());
}
