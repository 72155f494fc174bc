/* CMOS RTC (devices/cmos_rtc.c): the date from its base on the device clock, BCD and
 * binary, 12 and 24 h, setting the time with SET, bad dates and bad args refused, CMOS RAM.
 * The clock here is a variable the test moves, as the virtual clock moves on the software
 * CPU. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "tests/check_run.h"

extern const struct device_type cmos_rtc_type;

static uint64_t now;

static uint64_t fake_now(void *o) { (void)o; return now; }
static int64_t fake_schedule(void *o, uint64_t at, clock_timer_fn fn, void *arg)
{
    (void)o; (void)at; (void)fn; (void)arg;
    return -ENOSPC;                     /* the RTC schedules nothing */
}
static int fake_cancel(void *o, int64_t id) { (void)o; (void)id; return -ENOENT; }
static const struct clock fake_clock = { fake_now, fake_schedule, fake_cancel, NULL };

static void *rtc_new(const char *args)
{
    struct device_env env = { .clock = &fake_clock };
    void *s = NULL;
    char err[160] = "";

    now = 5000000000ULL;                /* created 5 s into the run */
    ck_assert_msg(cmos_rtc_type.create(args, &env, &s, err, sizeof(err)) == 0, "%s", err);
    return s;
}

static uint8_t rd(void *s, uint8_t reg)
{
    uint64_t v = 0;
    ck_assert_int_eq(cmos_rtc_type.ops->write(s, 0, 1, reg), 0);
    ck_assert_int_eq(cmos_rtc_type.ops->read(s, 1, 1, &v), 0);
    return (uint8_t)v;
}

static void wr(void *s, uint8_t reg, uint8_t v)
{
    ck_assert_int_eq(cmos_rtc_type.ops->write(s, 0, 1, reg), 0);
    ck_assert_int_eq(cmos_rtc_type.ops->write(s, 1, 1, v), 0);
}

/* "YYYY-MM-DD hh:mm:ss wd" from the BCD registers */
static void date_bcd(void *s, char *out)
{
    sprintf(out, "%02x%02x-%02x-%02x %02x:%02x:%02x %x", rd(s, 0x32), rd(s, 9), rd(s, 8),
            rd(s, 7), rd(s, 4), rd(s, 2), rd(s, 0), rd(s, 6));
}

START_TEST(default_base_counts_on_the_clock)
{
    void *s = rtc_new("");
    char d[40];

    date_bcd(s, d);
    ck_assert_str_eq(d, "2026-01-01 00:00:00 5");          /* a Thursday: day 5 */
    ck_assert_uint_eq(rd(s, 0x0a) & 0x80, 0);               /* never updating */
    ck_assert_uint_eq(rd(s, 0x0b), 0x02);                   /* 24 h, BCD */
    ck_assert_uint_eq(rd(s, 0x0d), 0x80);                   /* valid RAM and time */
    now += 3661ULL * 1000000000ULL + 999999999ULL;          /* 1 h 1 min 1.999 s */
    date_bcd(s, d);
    ck_assert_str_eq(d, "2026-01-01 01:01:01 5");
    cmos_rtc_type.destroy(s);
}
END_TEST

START_TEST(base_arg_and_formats)
{
    void *s = rtc_new("base=1000000000");                  /* 2001-09-09 01:46:40 UTC */
    char d[40];

    date_bcd(s, d);
    ck_assert_str_eq(d, "2001-09-09 01:46:40 1");           /* a Sunday */
    now += 12ULL * 3600 * 1000000000ULL;                    /* 13:46:40 */
    wr(s, 0x0b, 0x04);                                      /* binary, 12 h */
    ck_assert_uint_eq(rd(s, 4), 0x80 | 1);                  /* 1 PM */
    ck_assert_uint_eq(rd(s, 2), 46);
    ck_assert_uint_eq(rd(s, 9), 1);
    ck_assert_uint_eq(rd(s, 0x32), 20);
    wr(s, 0x0b, 0x02);                                      /* back to BCD, 24 h */
    ck_assert_uint_eq(rd(s, 4), 0x13);
    cmos_rtc_type.destroy(s);
}
END_TEST

START_TEST(set_time_with_set_bit)
{
    void *s = rtc_new("");
    char d[40];

    wr(s, 0x0b, 0x82);                  /* SET: the clock stops updating the registers */
    wr(s, 0x09, 0x99);
    wr(s, 0x08, 0x12);
    wr(s, 0x07, 0x31);
    wr(s, 0x04, 0x23);
    wr(s, 0x02, 0x59);
    wr(s, 0x00, 0x58);
    now += 10ULL * 1000000000ULL;       /* still held while SET */
    ck_assert_uint_eq(rd(s, 0), 0x58);
    wr(s, 0x0b, 0x02);                  /* counts from here */
    now += 3ULL * 1000000000ULL;
    date_bcd(s, d);
    ck_assert_str_eq(d, "2100-01-01 00:00:01 6");           /* 2099-12-31 23:59:58 + 3 s */
    cmos_rtc_type.destroy(s);
}
END_TEST

START_TEST(bad_date_changes_nothing)
{
    void *s = rtc_new("");
    char d[40];

    wr(s, 0x0b, 0x82);
    wr(s, 0x08, 0x13);                  /* month 13 */
    wr(s, 0x0b, 0x02);
    date_bcd(s, d);
    ck_assert_str_eq(d, "2026-01-01 00:00:00 5");
    wr(s, 0x07, 0x30);                  /* running: 30 January */
    date_bcd(s, d);
    ck_assert_str_eq(d, "2026-01-30 00:00:00 6");
    wr(s, 0x08, 0x02);                  /* 30 February: refused */
    date_bcd(s, d);
    ck_assert_str_eq(d, "2026-01-30 00:00:00 6");
    cmos_rtc_type.destroy(s);
}
END_TEST

START_TEST(cmos_ram_and_read_only_registers)
{
    void *s = rtc_new("");
    uint64_t v = 0;

    wr(s, 0x40, 0xa5);
    ck_assert_uint_eq(rd(s, 0x40), 0xa5);
    wr(s, 0x0d, 0x00);                  /* D is read-only */
    ck_assert_uint_eq(rd(s, 0x0d), 0x80);
    wr(s, 0x0a, 0xa6);                  /* UIP cannot be set */
    ck_assert_uint_eq(rd(s, 0x0a), 0x26);
    ck_assert_int_eq(cmos_rtc_type.ops->write(s, 0, 1, 0x8f), 0);  /* NMI-mask bit dropped */
    ck_assert_int_eq(cmos_rtc_type.ops->read(s, 0, 1, &v), 0);
    ck_assert_uint_eq(v, 0x0f);
    cmos_rtc_type.destroy(s);
}
END_TEST

START_TEST(bad_args_refused)
{
    struct device_env env = { .clock = &fake_clock };
    const char *bad[] = { "base=abc", "base=-1", "base=4102444800", "base=", "rate=5" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        void *s = NULL;
        char err[160] = "";
        ck_assert_int_eq(cmos_rtc_type.create(bad[i], &env, &s, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, i < 4 ? "base" : "rate") != NULL, "%s: %s", bad[i], err);
        ck_assert_ptr_null(s);
    }
}
END_TEST

static Suite *cmos_rtc_suite(void)
{
    Suite *s = suite_create("cmos_rtc");
    TCase *tc = tcase_create("rtc");
    tcase_add_test(tc, default_base_counts_on_the_clock);
    tcase_add_test(tc, base_arg_and_formats);
    tcase_add_test(tc, set_time_with_set_bit);
    tcase_add_test(tc, bad_date_changes_nothing);
    tcase_add_test(tc, cmos_ram_and_read_only_registers);
    tcase_add_test(tc, bad_args_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cmos_rtc_suite());
}
