/* GPT building and create-composite: layout, CRCs, deterministic GUIDs, errors. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "devices/disk/cdisk_create.h"
#include "devices/disk/composite.h"
#include "devices/disk/disk.h"
#include "tests/check_run.h"
#include "tests/scratch.h"
#include "devices/disk/gpt.h"

static size_t slurp(const char *path, uint8_t *buf, size_t max)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, max, f);
    fclose(f);
    return n;
}

/* Fuzz finding (fuzz/crashes/gpt/partition-past-disk-end): a header with valid CRCs whose
 * usable range or partitions lie past the disk was returned as-is; now refused. */
START_TEST(partitions_outside_the_disk_refused)
{
    struct disk *d = NULL;
    struct gpt_part parts[8];
    char err[256] = "";

    ck_assert_int_eq(disk_open("fuzz/crashes/gpt/partition-past-disk-end", 1, &d, err,
                               sizeof(err)), 0);
    ck_assert_int_eq(gpt_read(d, parts, 8, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "LBA 34..94 is invalid for a disk of 34 sectors") != NULL, "%s",
                  err);
    disk_close(d);
}
END_TEST

START_TEST(crc32_and_guid_text)
{
    ck_assert_uint_eq(gpt_crc32("123456789", 9), 0xcbf43926u);
    struct gpt_guid g;
    char s[37];
    ck_assert_int_eq(gpt_guid_parse("0fc63daf-8483-4772-8e79-3d69d8477de4", &g), 0);
    ck_assert_mem_eq(&g, &GPT_TYPE_LINUX_FS, sizeof(g));
    gpt_guid_format(&GPT_TYPE_EFI_SYSTEM, s);
    ck_assert_str_eq(s, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    ck_assert_int_eq(gpt_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93", &g), -EINVAL);
    ck_assert_int_eq(gpt_guid_parse("C12A7328+F81F-11D2-BA4B-00A0C93EC93B", &g), -EINVAL);
    ck_assert_int_eq(gpt_guid_parse("G12A7328-F81F-11D2-BA4B-00A0C93EC93B", &g), -EINVAL);
    /* on disk the first three fields are little-endian */
    uint8_t raw[16];
    gpt_guid_to_disk(&GPT_TYPE_LINUX_FS, raw);
    ck_assert_uint_eq(raw[0], 0xaf);
    ck_assert_uint_eq(raw[3], 0x0f);
    ck_assert_uint_eq(raw[4], 0x83);
    ck_assert_uint_eq(raw[8], 0x8e);
    /* name-derived GUIDs: stable, distinct, version 8 */
    struct gpt_guid a, b, c;
    gpt_guid_from_names(&a, "x", "boot", "a.img");
    gpt_guid_from_names(&b, "x", "boot", "a.img");
    gpt_guid_from_names(&c, "x", "boot", "b.img");
    ck_assert_mem_eq(&a, &b, sizeof(a));
    ck_assert(memcmp(&a, &c, sizeof(a)) != 0);
    ck_assert_uint_eq(a.b[6] >> 4, 8);
    ck_assert_uint_eq(a.b[8] >> 6, 2);
}
END_TEST

static int create3(const char *out)
{
    struct cdisk_partition p[3] = {
        { .label = "boot", .path = scratch_path("boot.img"), .has_type = 1, .type = GPT_TYPE_EFI_SYSTEM },
        { .label = "sys", .path = scratch_path("sys.img") },
        { .label = "data", .path = scratch_path("data.img"), .writable = 1 },
    };
    char err[256];
    int r = cdisk_create(out, "vmlab-test", p, 3, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(r == 0, "create: %s", err);
    return r;
}

START_TEST(create_layout_and_gpt)
{
    scratch_fill("boot.img", 65536, 0xb0);
    scratch_fill("sys.img", 10000, 0x5e);      /* not 4 KiB: padded with the filler */
    scratch_fill("data.img", 1 << 20, 0xda);
    create3(scratch_path("disk.cdisk"));
    ck_assert_int_eq(access(scratch_path("disk.cdisk.header.img"), R_OK), 0);
    ck_assert_int_eq(access(scratch_path("disk.cdisk.footer.img"), R_OK), 0);
    ck_assert_int_eq(access(scratch_path("disk.cdisk.filler.img"), R_OK), 0);

    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("disk.cdisk"), 0, &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(d->size % 65536, 0);
    ck_assert_uint_eq(disk_composite_count(d), 6);  /* header, boot, sys, filler, data, footer */
    struct gpt_part parts[8];
    struct gpt_guid dg;
    int n = gpt_read(d, parts, 8, &dg, err, sizeof(err));
    ck_assert_msg(n == 3, "gpt_read: %d %s", n, err);
    ck_assert_str_eq(parts[0].name, "boot");
    ck_assert_str_eq(parts[1].name, "sys");
    ck_assert_str_eq(parts[2].name, "data");
    ck_assert_mem_eq(&parts[0].type, &GPT_TYPE_EFI_SYSTEM, 16);
    ck_assert_mem_eq(&parts[1].type, &GPT_TYPE_LINUX_FS, 16);
    ck_assert_uint_eq(parts[0].first_lba, 40);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(parts[i].first_lba % 8, 0);           /* 4 KiB aligned */
        ck_assert_uint_eq((parts[i].last_lba + 1) % 8, 0);
    }
    ck_assert_uint_eq(parts[1].first_lba, parts[0].last_lba + 1);
    ck_assert_uint_eq(parts[1].last_lba - parts[1].first_lba + 1, 24);  /* 10000 -> 12288 */
    /* partition contents sit where the GPT says; the padding reads as zeroes */
    uint8_t b[4];
    ck_assert_int_eq(disk_read(d, parts[0].first_lba * 512, b, 1), 0);
    ck_assert_uint_eq(b[0], 0xb0);
    ck_assert_int_eq(disk_read(d, parts[1].first_lba * 512 + 9999, b, 2), 0);
    ck_assert_uint_eq(b[0], 0x5e);
    ck_assert_uint_eq(b[1], 0);
    ck_assert_int_eq(disk_read(d, parts[2].last_lba * 512 + 511, b, 1), 0);
    ck_assert_uint_eq(b[0], 0xda);
    /* only the data partition is writable */
    ck_assert_int_eq(disk_write(d, parts[2].first_lba * 512, "hi", 2), 0);
    ck_assert_int_eq(disk_write(d, parts[1].first_lba * 512, "hi", 2), -EROFS);
    ck_assert_int_eq(disk_write(d, 512, "hi", 2), -EROFS);     /* the GPT itself */
    /* backup header on the last sector, pointing back at LBA 1 */
    uint8_t sec[512];
    ck_assert_int_eq(disk_read(d, d->size - 512, sec, 512), 0);
    ck_assert_mem_eq(sec, "EFI PART", 8);
    ck_assert_uint_eq(sec[32], 1);
    disk_close(d);
}
END_TEST

START_TEST(create_is_deterministic)
{
    scratch_fill("boot.img", 65536, 1);
    scratch_fill("sys.img", 4096, 2);
    scratch_fill("data.img", 8192, 3);
    create3(scratch_path("one.cdisk"));
    create3(scratch_path("two.cdisk"));
    static uint8_t a[1 << 17], b[1 << 17];
    const char *sfx[] = { ".header.img", ".footer.img" };
    for (int i = 0; i < 2; i++) {
        char pa[200], pb[200];
        snprintf(pa, sizeof(pa), "%s%s", scratch_path("one.cdisk"), sfx[i]);
        snprintf(pb, sizeof(pb), "%s%s", scratch_path("two.cdisk"), sfx[i]);
        size_t na = slurp(pa, a, sizeof(a)), nb = slurp(pb, b, sizeof(b));
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na);
    }
    /* the specs differ only in the header/footer names ("one" vs "two") */
    size_t na = slurp(scratch_path("one.cdisk"), a, sizeof(a)), nb = slurp(scratch_path("two.cdisk"), b, sizeof(b));
    ck_assert_uint_eq(na, nb);
    size_t diff = 0;
    for (size_t i = 0; i < na; i++)
        diff += a[i] != b[i];
    ck_assert_uint_eq(diff, 6);
}
END_TEST

START_TEST(create_errors)
{
    char err[256];
    scratch_fill("odd.img", 5000, 1);
    scratch_fill("ok.img", 4096, 1);
    scratch_fill("empty.img", 0, 0);
    struct cdisk_partition p[2] = { { .label = "a", .path = scratch_path("odd.img"), .writable = 1 } };
    ck_assert_int_eq(cdisk_create(scratch_path("x.cdisk"), "l", p, 1, NULL, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "writable image"));
    ck_assert_ptr_nonnull(strstr(err, "5000 bytes, not a multiple of 4096"));
    p[0] = (struct cdisk_partition){ .label = "a", .path = scratch_path("ok.img") };
    p[1] = (struct cdisk_partition){ .label = "a", .path = scratch_path("ok.img") };
    ck_assert_int_eq(cdisk_create(scratch_path("x.cdisk"), "l", p, 2, NULL, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "duplicate partition label 'a'"));
    p[1].label = "this-label-is-much-longer-than-36-characters";
    ck_assert_int_eq(cdisk_create(scratch_path("x.cdisk"), "l", p, 2, NULL, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "does not fit 36"));
    p[1] = (struct cdisk_partition){ .label = "e", .path = scratch_path("empty.img") };
    ck_assert_int_eq(cdisk_create(scratch_path("x.cdisk"), "l", p, 2, NULL, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is empty"));
    p[1] = (struct cdisk_partition){ .label = "m", .path = scratch_path("missing.img") };
    ck_assert_int_eq(cdisk_create(scratch_path("x.cdisk"), "l", p, 2, NULL, NULL, NULL, err, sizeof(err)),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "partition 'm'"));
    ck_assert_int_eq(access(scratch_path("x.cdisk"), F_OK), -1);    /* nothing half-written */
    /* writing the composite over a partition's own image is refused */
    p[0] = (struct cdisk_partition){ .label = "a", .path = scratch_path("ok.img") };
    ck_assert_int_eq(cdisk_create(scratch_path("ok.img"), "l", p, 1, NULL, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is the image of partition 'a'"));
    FILE *f = fopen(scratch_path("ok.img"), "rb");
    fseek(f, 0, SEEK_END);
    ck_assert_int_eq(ftell(f), 4096);                          /* untouched */
    fclose(f);
}
END_TEST

START_TEST(gpt_read_rejects_bad_crc)
{
    scratch_fill("boot.img", 4096, 1);
    scratch_fill("sys.img", 4096, 2);
    scratch_fill("data.img", 4096, 3);
    create3(scratch_path("c.cdisk"));
    /* flip a byte of the primary header's disk GUID */
    char hp[200];
    snprintf(hp, sizeof(hp), "%s.header.img", scratch_path("c.cdisk"));
    FILE *f = fopen(hp, "r+b");
    fseek(f, 512 + 60, SEEK_SET);
    fputc(0x42, f);
    fclose(f);
    struct disk *d;
    char err[256];
    ck_assert_int_eq(disk_open(scratch_path("c.cdisk"), 1, &d, err, sizeof(err)), 0);
    struct gpt_part parts[4];
    ck_assert_int_eq(gpt_read(d, parts, 4, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "GPT header CRC32"));
    disk_close(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gpt");
    TCase *tc = tcase_create("gpt");
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, crc32_and_guid_text);
    tcase_add_test(tc, partitions_outside_the_disk_refused);
    tcase_add_test(tc, create_layout_and_gpt);
    tcase_add_test(tc, create_is_deterministic);
    tcase_add_test(tc, create_errors);
    tcase_add_test(tc, gpt_read_rejects_bad_crc);
    suite_add_tcase(s, tc);
    return check_run(s);
}
