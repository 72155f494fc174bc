/* Disk content in traces: the recording wrapper (traces/disk_tap.c) reports each sector the
 * first time it is read unless it was overwritten first, and each refused request; the
 * replay disk (traces/replay_disk.c) serves exactly that, notices reads of sectors it does
 * not have, fails the recorded requests, and compares an image with what was recorded. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk/disk.h"
#include "traces/disk_tap.h"
#include "traces/replay.h"
#include "traces/replay_disk.h"
#include "tests/check_run.h"

#define SECT 512u
#define DISK_SIZE (64u * 1024)

/* What the sink received: records as a trace would hold them (data copied). */
struct capture {
    struct trace_disk_record rec[64];
    uint8_t data[64][8192];
    size_t n;
};

static void cap_content(void *opaque, unsigned dev, uint64_t offset, const void *data, size_t len)
{
    struct capture *c = opaque;
    ck_assert_uint_lt(c->n, 64);
    ck_assert_uint_le(len, sizeof(c->data[0]));
    ck_assert_uint_eq(offset % SECT, 0);
    memcpy(c->data[c->n], data, len);
    c->rec[c->n] = (struct trace_disk_record){ .kind = TRACE_DISK_SECTORS, .device = (int16_t)dev,
                                               .a = offset / SECT, .data = c->data[c->n],
                                               .len = (uint32_t)len };
    c->n++;
}

static void cap_error(void *opaque, unsigned dev, uint64_t request, unsigned op, int err)
{
    struct capture *c = opaque;
    ck_assert_uint_lt(c->n, 64);
    c->rec[c->n++] = (struct trace_disk_record){ .kind = TRACE_DISK_ERROR, .device = (int16_t)dev,
                                                 .a = request, .op = (uint8_t)op,
                                                 .b = (uint64_t)err };
}

static uint8_t pattern(uint64_t off) { return (uint8_t)(off * 7 + (off >> 9) * 3 + 1); }

/* A 64 KiB in-memory disk with a pattern, wrapped by the tap. */
static struct disk *tapped(struct disk_tap_sink *sink, struct disk **inner_out)
{
    struct disk *inner, *d;
    static uint8_t buf[DISK_SIZE];

    ck_assert_int_eq(disk_open_mem(DISK_SIZE, &inner), 0);
    for (uint64_t i = 0; i < DISK_SIZE; i++)
        buf[i] = pattern(i);
    ck_assert_int_eq(disk_write(inner, 0, buf, DISK_SIZE), 0);
    ck_assert_int_eq(disk_tap_wrap(inner, sink, &d), 0);
    *inner_out = inner;
    return d;
}

static void attach(struct disk_tap_sink *s, struct capture *c)
{
    memset(c, 0, sizeof(*c));
    s->content = cap_content;
    s->error = cap_error;
    s->opaque = c;
    s->generation++;
}

static void expect_sectors(const struct capture *c, size_t i, uint64_t sector, uint32_t len)
{
    ck_assert_uint_lt(i, c->n);
    ck_assert_uint_eq(c->rec[i].kind, TRACE_DISK_SECTORS);
    ck_assert_uint_eq(c->rec[i].a, sector);
    ck_assert_uint_eq(c->rec[i].len, len);
    for (uint32_t k = 0; k < len; k++)
        ck_assert_uint_eq(c->rec[i].data[k], pattern(sector * SECT + k));
}

static struct capture cap;

START_TEST(tap_reports_first_reads_only)
{
    struct disk_tap_sink sink = { .dev = 3 };
    struct disk *inner, *d = tapped(&sink, &inner);
    uint8_t buf[8192], junk[1024];

    ck_assert_int_eq(sink.used, 1);
    ck_assert_uint_eq(sink.size, DISK_SIZE);
    /* Not recording: nothing reported. */
    ck_assert_int_eq(disk_read(d, 0, buf, 2048), 0);
    attach(&sink, &cap);
    ck_assert_int_eq(disk_read(d, 0, buf, 2048), 0);            /* sectors 0-3 */
    ck_assert_uint_eq(cap.n, 1);
    expect_sectors(&cap, 0, 0, 2048);
    ck_assert_int_eq(cap.rec[0].device, 3);
    ck_assert_int_eq(disk_read(d, 1024, buf, 2048), 0);         /* 2-5: only 4-5 are new */
    ck_assert_uint_eq(cap.n, 2);
    expect_sectors(&cap, 1, 4, 1024);
    /* Sectors 10-11 overwritten whole before any read: not needed, not reported. */
    memset(junk, 0xab, sizeof(junk));
    ck_assert_int_eq(disk_write(d, 10 * SECT, junk, 1024), 0);
    ck_assert_int_eq(disk_read(d, 9 * SECT, buf, 4 * SECT), 0);
    ck_assert_uint_eq(cap.n, 4);
    expect_sectors(&cap, 2, 9, SECT);
    expect_sectors(&cap, 3, 12, SECT);
    /* A read of part of sector 13: the whole sector is reported. */
    ck_assert_int_eq(disk_read(d, 13 * SECT + 40, buf, 100), 0);
    ck_assert_uint_eq(cap.n, 5);
    expect_sectors(&cap, 4, 13, SECT);
    /* A write of part of sector 15: its old content first (replay needs the rest). */
    ck_assert_int_eq(disk_write(d, 15 * SECT + 8, junk, 10), 0);
    ck_assert_uint_eq(cap.n, 6);
    expect_sectors(&cap, 5, 15, SECT);
    ck_assert_int_eq(disk_read(d, 15 * SECT, buf, SECT), 0);
    ck_assert_uint_eq(cap.n, 6);
    /* A refused request: reported with its number (requests since attach, from 0). */
    ck_assert_int_ne(disk_read(d, DISK_SIZE - 512, buf, 1024), 0);
    ck_assert_uint_eq(cap.n, 7);
    ck_assert_uint_eq(cap.rec[6].kind, TRACE_DISK_ERROR);
    ck_assert_uint_eq(cap.rec[6].a, 7);
    ck_assert_uint_eq(cap.rec[6].op, TRACE_DISK_OP_READ);
    ck_assert_uint_eq(cap.rec[6].b, EINVAL);
    /* A new recording starts afresh. */
    attach(&sink, &cap);
    ck_assert_int_eq(disk_read(d, 0, buf, SECT), 0);
    ck_assert_uint_eq(cap.n, 1);
    expect_sectors(&cap, 0, 0, SECT);
    sink.opaque = NULL;
    disk_close(d);
    ck_assert_int_eq(sink.used, 0);
}
END_TEST

static uint64_t missed = UINT64_MAX;
static void on_miss(void *opaque, uint64_t sector)
{
    (void)opaque;
    missed = sector;
}

/* Records as the tap makes them for: read sectors 0-7, write 8-9, read 8-11; an error. */
static size_t recorded(struct trace_disk_record *r)
{
    struct disk_tap_sink sink = { .dev = 0 };
    struct disk *inner, *d = tapped(&sink, &inner);
    uint8_t buf[4096];

    attach(&sink, &cap);
    ck_assert_int_eq(disk_read(d, 0, buf, 8 * SECT), 0);
    memset(buf, 0x5c, 2 * SECT);
    ck_assert_int_eq(disk_write(d, 8 * SECT, buf, 2 * SECT), 0);
    ck_assert_int_eq(disk_read(d, 8 * SECT, buf, 4 * SECT), 0);
    disk_close(d);
    r[0] = (struct trace_disk_record){ .kind = TRACE_DISK_INFO, .a = DISK_SIZE };
    memcpy(r + 1, cap.rec, cap.n * sizeof(*r));
    /* request 3 (the 4th) was refused in the run */
    r[1 + cap.n] = (struct trace_disk_record){ .kind = TRACE_DISK_ERROR, .a = 3,
                                               .op = TRACE_DISK_OP_WRITE, .b = EROFS };
    return cap.n + 2;
}

START_TEST(replay_disk_serves_what_was_recorded)
{
    struct trace_disk_record r[32];
    size_t n = recorded(r);
    struct replay_disk_content c;
    struct disk *d;
    char err[200];
    uint8_t buf[4096], w[SECT];

    ck_assert_uint_eq(n, 4);        /* info, sectors 0-7, sectors 10-11, the error */
    ck_assert_int_eq(replay_disk_content_init(&c, r, n, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(replay_disk_open(&c, NULL, 0, on_miss, NULL, &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(d->size, DISK_SIZE);
    /* request 0: what the run read */
    ck_assert_int_eq(disk_read(d, 0, buf, 8 * SECT), 0);
    for (unsigned k = 0; k < 8 * SECT; k++)
        ck_assert_uint_eq(buf[k], pattern(k));
    /* request 1: the run's write; request 2: reading it back with 10-11 from the trace */
    memset(w, 0x5c, sizeof(w));
    ck_assert_int_eq(disk_write(d, 8 * SECT, w, SECT), 0);
    ck_assert_int_eq(disk_read(d, 8 * SECT, buf, SECT), 0);
    ck_assert_uint_eq(buf[0], 0x5c);
    ck_assert_uint_eq(missed, UINT64_MAX);
    /* request 3 was refused in the run: refused here, whatever it is */
    ck_assert_int_eq(disk_write(d, 8 * SECT, w, SECT), -EROFS);
    ck_assert_int_eq(disk_read(d, 10 * SECT, buf, 2 * SECT), 0);
    ck_assert_uint_eq(buf[0], pattern(10 * SECT));
    /* a sector the run never read: the miss is reported, the read fails */
    ck_assert_int_eq(disk_read(d, 20 * SECT, buf, SECT), -EIO);
    ck_assert_uint_eq(missed, 20);
    /* ... but one written whole first reads back what was written */
    ck_assert_int_eq(disk_write(d, 30 * SECT, w, SECT), 0);
    ck_assert_int_eq(disk_read(d, 30 * SECT, buf, SECT), 0);
    ck_assert_uint_eq(buf[SECT - 1], 0x5c);
    /* ... and one written in part needs its old content: a miss */
    missed = UINT64_MAX;
    ck_assert_int_ne(disk_write(d, 40 * SECT + 3, w, 10), 0);
    ck_assert_uint_eq(missed, 40);
    disk_close(d);
    replay_disk_content_free(&c);
}
END_TEST

START_TEST(bad_content_is_refused_by_name)
{
    static uint8_t data[2048];
    struct replay_disk_content c;
    char err[200];
    const struct trace_disk_record info = { .kind = TRACE_DISK_INFO, .device = 2, .a = 4096 };
    struct { struct trace_disk_record r[3]; size_t n; const char *want; } cases[] = {
        { { { .kind = TRACE_DISK_SECTORS, .device = 2, .a = 1, .data = data, .len = 512 } }, 1,
          "sectors without a disk description" },
        { { info, { .kind = TRACE_DISK_SECTORS, .device = 2, .a = 7, .data = data, .len = 1024 } },
          2, "1024 bytes at sector 7 lie beyond the end of the disk" },
        { { info, { .kind = TRACE_DISK_SECTORS, .device = 2, .a = 1, .data = data, .len = 100 } },
          2, "are not whole sectors" },
        { { info, { .kind = TRACE_DISK_SECTORS, .device = 2, .a = 2, .data = data, .len = 1024 },
            { .kind = TRACE_DISK_SECTORS, .device = 2, .a = 3, .data = data, .len = 512 } },
          3, "1024 bytes at sector 2 overlap the next record" },
        { { info, { .kind = TRACE_DISK_ERROR, .device = 2, .a = 5, .op = 1, .b = 5 },
            { .kind = TRACE_DISK_ERROR, .device = 2, .a = 5, .op = 2, .b = 5 } },
          3, "request 5 failed twice" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_ne(replay_disk_content_init(&c, cases[i].r, cases[i].n, 2, err,
                                                  sizeof(err)), 0);
        ck_assert_msg(strstr(err, "disk content of device 2: ") && strstr(err, cases[i].want),
                      "case %zu: %s", i, err);
    }
    /* Another device's records are not this one's. */
    const struct trace_disk_record two[] = { info, info };
    ck_assert_int_eq(replay_disk_content_init(&c, two, 2, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(c.has_info, 0);
    struct disk *d;
    ck_assert_int_eq(replay_disk_open(&c, NULL, 0, NULL, NULL, &d, err, sizeof(err)), -ENOENT);
    replay_disk_content_free(&c);
    /* A resize records a second description: the first is the disk's size, content may
     * lie up to the largest. */
    const struct trace_disk_record grown[] = {
        info, { .kind = TRACE_DISK_INFO, .device = 2, .a = 8192 },
        { .kind = TRACE_DISK_SECTORS, .device = 2, .a = 10, .data = data, .len = 1024 } };
    ck_assert_msg(replay_disk_content_init(&c, grown, 3, 2, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.size, 4096);
    ck_assert_uint_eq(c.nsectors, 1);
    replay_disk_content_free(&c);
}
END_TEST

START_TEST(compare_names_the_first_difference)
{
    struct trace_disk_record r[32];
    size_t n = recorded(r);
    struct replay_disk_content c;
    struct disk_tap_sink sink = { 0 };
    struct disk *inner, *img = tapped(&sink, &inner);
    char err[200], line[300];

    ck_assert_int_eq(replay_disk_content_init(&c, r, n, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(replay_disk_compare(&c, img, line, sizeof(line)), 0);
    uint8_t x = 0;
    ck_assert_int_eq(disk_write(img, 11 * SECT + 5, &x, 1), 0);
    ck_assert_int_eq(replay_disk_compare(&c, img, line, sizeof(line)), 1);
    ck_assert_str_eq(line, "1 of the 10 sectors the trace recorded differ, the first at sector 11");
    disk_close(img);
    ck_assert_int_eq(disk_open_mem(DISK_SIZE / 2, &img), 0);
    ck_assert_int_eq(replay_disk_compare(&c, img, line, sizeof(line)), 1);
    ck_assert_str_eq(line, "its size is 32768 bytes, the trace saw 65536");
    disk_close(img);
    replay_disk_content_free(&c);
}
END_TEST

/* The golden trace of a run on a 64 KiB file disk (traces/golden/record.sh) replays with
 * no file opened, as the fuzzer runs it; without its disk content it cannot. */
START_TEST(golden_file_disk_trace_replays_without_files)
{
    FILE *f = fopen("traces/golden/blk-file-64k.trace", "rb");
    static uint8_t b[1 << 20];

    ck_assert_ptr_nonnull(f);
    size_t len = fread(b, 1, sizeof(b), f);
    fclose(f);
    ck_assert_uint_gt(len, 65536);
    ck_assert_uint_lt(len, sizeof(b));
    ck_assert_int_eq(trace_fuzz_one(b, len), REPLAY_MATCH);
    /* The same trace without its TDSK chunks (the first bytes of each chunk name it). */
    size_t pos = 16 + (b[12] | b[13] << 8 | (size_t)b[14] << 16 | (size_t)b[15] << 24) + 4;
    size_t out = pos, dropped = 0;
    while (pos + 32 <= len) {
        size_t plen = b[pos + 4] | b[pos + 5] << 8 | (size_t)b[pos + 6] << 16 |
                      (size_t)b[pos + 7] << 24, whole = 32 + plen;
        if (memcmp(b + pos, "TDSK", 4)) {
            memmove(b + out, b + pos, whole);
            out += whole;
        } else {
            dropped++;
        }
        pos += whole;
    }
    ck_assert_uint_gt(dropped, 0);
    ck_assert_int_eq(trace_fuzz_one(b, out), REPLAY_BAD);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("trace_disk");
    TCase *t = tcase_create("disk");

    tcase_add_test(t, tap_reports_first_reads_only);
    tcase_add_test(t, replay_disk_serves_what_was_recorded);
    tcase_add_test(t, bad_content_is_refused_by_name);
    tcase_add_test(t, compare_names_the_first_difference);
    tcase_add_test(t, golden_file_disk_trace_replays_without_files);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
