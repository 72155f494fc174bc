/* i8254 PIT (devices/i8254.c): counts on the device clock at 1.193182 MHz, access modes,
 * counter latch, read-back, status byte, channel 0's interrupt, snapshots, bad args. The
 * clock here is a variable the test moves, as the virtual clock moves on the software CPU. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"

extern const struct device_type i8254_type;

static uint64_t now;
static struct { uint64_t at; clock_timer_fn fn; void *arg; int live; } timers[8];
static unsigned pulses, irq_level;

static uint64_t fake_now(void *o) { (void)o; return now; }

static int64_t fake_schedule(void *o, uint64_t at, clock_timer_fn fn, void *arg)
{
    (void)o;
    for (unsigned i = 0; i < 8; i++)
        if (!timers[i].live) {
            timers[i].at = at;
            timers[i].fn = fn;
            timers[i].arg = arg;
            timers[i].live = 1;
            return i + 1;
        }
    return -ENOSPC;
}

static int fake_cancel(void *o, int64_t id)
{
    (void)o;
    if (id < 1 || id > 8 || !timers[id - 1].live)
        return -ENOENT;
    timers[id - 1].live = 0;
    return 0;
}

static const struct clock fake_clock = { fake_now, fake_schedule, fake_cancel, NULL };

static void fake_irq(void *o, unsigned gsi, int level)
{
    (void)o;
    ck_assert_uint_eq(gsi, 0);
    if (level && !irq_level)
        pulses++;
    irq_level = (unsigned)level;
}

static const struct irq_sink sink = { fake_irq, NULL };

/* Moves the clock to t, firing due timers in time order. */
static void advance(uint64_t t)
{
    for (;;) {
        int best = -1;
        for (int i = 0; i < 8; i++)
            if (timers[i].live && timers[i].at <= t &&
                (best < 0 || timers[i].at < timers[best].at))
                best = i;
        if (best < 0)
            break;
        now = timers[best].at;
        timers[best].live = 0;
        timers[best].fn(timers[best].arg);
    }
    now = t;
}

static void *pit_new(int with_irq)
{
    struct device_env env = { .clock = &fake_clock };
    void *s = NULL;
    char err[128];

    now = 1000;
    memset(timers, 0, sizeof(timers));
    pulses = irq_level = 0;
    if (with_irq)
        env.irq = (struct irq_line){ &sink, 0 };
    ck_assert_int_eq(i8254_type.create("", &env, &s, err, sizeof(err)), 0);
    return s;
}

static void out8(void *s, unsigned port, uint8_t v)
{
    ck_assert_int_eq(i8254_type.ops->write(s, port - 0x40, 1, v), 0);
}

static uint8_t in8(void *s, unsigned port)
{
    uint64_t v = 0;
    ck_assert_int_eq(i8254_type.ops->read(s, port - 0x40, 1, &v), 0);
    return (uint8_t)v;
}

/* ns for n PIT clocks, rounded up */
static uint64_t clocks_ns(uint64_t n) { return (n * 1000000000ULL + 1193181) / 1193182; }

START_TEST(mode0_counts_down_lsb_then_msb)
{
    /* What Linux's quick_pit_calibrate does with channel 2: mode 0, count 0xffff, then
     * reads LSB and MSB back to back. */
    void *s = pit_new(0);
    out8(s, 0x43, 0xb0);                /* ch2, LSB then MSB, mode 0 */
    out8(s, 0x42, 0xff);
    out8(s, 0x42, 0xff);
    ck_assert_uint_eq(in8(s, 0x42), 0xff);
    ck_assert_uint_eq(in8(s, 0x42), 0xff);
    advance(now + clocks_ns(0x100));    /* 256 clocks: the MSB drops by one */
    ck_assert_uint_eq(in8(s, 0x42), 0xff);
    ck_assert_uint_eq(in8(s, 0x42), 0xfe);
    advance(now + 1000000);             /* 1 ms: 1193 clocks more */
    uint8_t lo = in8(s, 0x42), hi = in8(s, 0x42);
    ck_assert_uint_eq((unsigned)(hi << 8 | lo), 0xffff - 0x100 - 1193);
    i8254_type.destroy(s);
}
END_TEST

START_TEST(latch_freezes_the_count)
{
    void *s = pit_new(0);
    out8(s, 0x43, 0x34);                /* ch0, word, mode 2 */
    out8(s, 0x40, 0x00);
    out8(s, 0x40, 0x10);                /* 0x1000 */
    advance(now + clocks_ns(0x10));
    out8(s, 0x43, 0x00);                /* latch ch0 */
    advance(now + clocks_ns(0x200));    /* counting goes on, the latch does not */
    out8(s, 0x43, 0x00);                /* a second latch before the read: ignored */
    ck_assert_uint_eq(in8(s, 0x40), 0xf0);
    ck_assert_uint_eq(in8(s, 0x40), 0x0f);
    /* then the live count again */
    uint8_t lo = in8(s, 0x40), hi = in8(s, 0x40);
    ck_assert_uint_eq((unsigned)(hi << 8 | lo), 0x1000 - 0x210);
    i8254_type.destroy(s);
}
END_TEST

START_TEST(mode2_reloads_periodically)
{
    void *s = pit_new(0);
    out8(s, 0x43, 0x14);                /* ch0, LSB only, mode 2 */
    out8(s, 0x40, 100);
    advance(now + clocks_ns(99));
    ck_assert_uint_eq(in8(s, 0x40), 1);
    advance(now + clocks_ns(1));
    ck_assert_uint_eq(in8(s, 0x40), 100);
    advance(now + clocks_ns(250));
    ck_assert_uint_eq(in8(s, 0x40), 50);
    i8254_type.destroy(s);
}
END_TEST

START_TEST(readback_status_and_count)
{
    void *s = pit_new(0);
    out8(s, 0x43, 0xb0);                /* ch2 word mode 0 */
    /* programmed, no count yet: null count set, OUT low */
    out8(s, 0x43, 0xe8);                /* read-back status only, ch2 */
    ck_assert_uint_eq(in8(s, 0x42), 0x40 | 0x30 | 0);
    out8(s, 0x42, 0x10);
    out8(s, 0x42, 0x00);                /* 16 */
    advance(now + clocks_ns(20));       /* past terminal count: OUT high */
    out8(s, 0x43, 0xc8);                /* read-back count and status, ch2 */
    ck_assert_uint_eq(in8(s, 0x42), 0x80 | 0x30);       /* status first */
    ck_assert_uint_eq(in8(s, 0x42), 0xfc);              /* 16 - 20 wraps to 0xfffc */
    ck_assert_uint_eq(in8(s, 0x42), 0xff);
    ck_assert_uint_eq(in8(s, 0x43), 0xff);              /* control port: write-only */
    i8254_type.destroy(s);
}
END_TEST

START_TEST(channel0_interrupts_at_its_rate)
{
    void *s = pit_new(1);
    out8(s, 0x43, 0x34);                /* ch0 word mode 2 */
    out8(s, 0x40, 0x9b);
    out8(s, 0x40, 0x2e);                /* 11931 clocks: 9.9993 ms */
    advance(now + 1000000000ULL);       /* one second */
    ck_assert_uint_eq(pulses, 100);
    out8(s, 0x43, 0x30);                /* reprogrammed, no count: silent */
    advance(now + 1000000000ULL);
    ck_assert_uint_eq(pulses, 100);
    out8(s, 0x40, 0x00);                /* mode 0, one-shot 256 clocks */
    out8(s, 0x40, 0x01);
    advance(now + 1000000000ULL);
    ck_assert_uint_eq(pulses, 101);
    i8254_type.destroy(s);
}
END_TEST

START_TEST(bad_args_refused)
{
    struct device_env env = { .clock = &fake_clock };
    void *s = NULL;
    char err[128] = "";
    ck_assert_int_eq(i8254_type.create("rate=5", &env, &s, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "rate"));
}
END_TEST

static Suite *i8254_suite(void)
{
    Suite *s = suite_create("i8254");
    TCase *tc = tcase_create("pit");
    tcase_add_test(tc, mode0_counts_down_lsb_then_msb);
    tcase_add_test(tc, latch_freezes_the_count);
    tcase_add_test(tc, mode2_reloads_periodically);
    tcase_add_test(tc, readback_status_and_count);
    tcase_add_test(tc, channel0_interrupts_at_its_rate);
    tcase_add_test(tc, bad_args_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(i8254_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
