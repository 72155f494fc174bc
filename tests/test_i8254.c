/* i8254 PIT (devices/i8254.c): counts on the device clock at 1.193182 MHz, access modes,
 * counter latch, read-back, status byte, channel 0's interrupt, port 0x61 (channel 2's gate,
 * its OUT, the refresh toggle), the layout of old machine descriptions, bad args. The
 * clock here is a variable the test moves, as the virtual clock moves on the software CPU. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "tests/check_run.h"
#include "tests/scratch.h"
#include "vmm/snapshot.h"

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
    out8(s, 0x61, (in8(s, 0x61) & ~0x02) | 0x01);     /* gate on, speaker off */
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
    out8(s, 0x61, 0x01);                /* channel 2's gate on */
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

/* Channel 2 in control word cw's mode (LSB then MSB), counting from `count`. */
static void program2(void *s, uint8_t cw, uint16_t count)
{
    out8(s, 0x43, cw);
    out8(s, 0x42, (uint8_t)count);
    out8(s, 0x42, (uint8_t)(count >> 8));
}

/* Port 0x61's bits under mask. */
static unsigned port_b(void *s, unsigned mask)
{
    return in8(s, 0x61) & mask;
}

/* Channel 2's OUT (port 0x61 bit 5) after each step's clocks. */
struct out2_step { uint64_t clocks; unsigned out; };

static void expect_out2(void *s, const struct out2_step *steps, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        advance(now + clocks_ns(steps[i].clocks));
        ck_assert_msg(port_b(s, 0x20) == steps[i].out, "step %u: OUT %#x", i, port_b(s, 0x20));
    }
}

static unsigned count2(void *s)
{
    out8(s, 0x43, 0x80);                /* latch ch2 */
    uint8_t lo = in8(s, 0x42), hi = in8(s, 0x42);
    return (unsigned)(hi << 8 | lo);
}

/* Port 0x61 bit 0 is channel 2's gate: at reset it is low and a mode 0 count holds; set, it
 * counts down; cleared, it holds where it was; set again, it goes on from there. */
START_TEST(gate_off_holds_gate_on_counts_down)
{
    void *s = pit_new(0);
    ck_assert_uint_eq(port_b(s, 0x01), 0);
    program2(s, 0xb0, 0xffff);                /* ch2 word mode 0 */
    advance(now + 1000000);             /* 1 ms with the gate low */
    ck_assert_uint_eq(count2(s), 0xffff);
    out8(s, 0x61, 0x01);
    ck_assert_uint_eq(port_b(s, 0x01), 1);
    advance(now + clocks_ns(1000));
    ck_assert_uint_eq(count2(s), 0xffff - 1000);
    out8(s, 0x61, 0x00);
    advance(now + 5000000);             /* held for 5 ms */
    ck_assert_uint_eq(count2(s), 0xffff - 1000);
    out8(s, 0x61, 0x01);
    advance(now + clocks_ns(500));
    ck_assert_uint_eq(count2(s), 0xffff - 1500);
    i8254_type.destroy(s);
}
END_TEST

/* What Linux's pit_calibrate_tsc waits on: port 0x61 bit 5, channel 2's OUT, which in mode
 * 0 is low from the count write to the terminal count and high from then on. */
START_TEST(mode0_out_rises_at_terminal_count_on_port_61_bit_5)
{
    void *s = pit_new(0);
    out8(s, 0x61, 0x01);
    program2(s, 0xb0, 0x64);
    /* clocks later: OUT; it stays high after the terminal count */
    static const struct out2_step steps[] = { { 0, 0 }, { 99, 0 }, { 1, 0x20 }, { 1193, 0x20 } };
    expect_out2(s, steps, 4);
    out8(s, 0x42, 100);                 /* a new count: low again */
    out8(s, 0x42, 0);
    ck_assert_uint_eq(port_b(s, 0x20), 0);
    i8254_type.destroy(s);
}
END_TEST

/* Bit 4 flips every 18 PIT clocks of the clock, not per read: the same instant reads the
 * same value (deterministic), and the bit changes as time passes. Bits 0-3 read back as
 * written; 6 and 7 (NMI causes) read 0. */
START_TEST(refresh_toggles_on_the_clock_and_bits_0_to_3_read_back)
{
    void *s = pit_new(0);
    now = clocks_ns(18 * 4) + 1;        /* inside an even period: bit 4 clear */
    ck_assert_uint_eq(in8(s, 0x61), in8(s, 0x61));
    for (unsigned period = 0; period < 4; period++, advance(now + clocks_ns(18)))
        ck_assert_uint_eq(port_b(s, 0x10), period & 1 ? 0x10 : 0);
    unsigned flips = 0, last = port_b(s, 0x10);
    for (unsigned i = 0; i < 1000; i++) {               /* 15.09 us a flip: 66 in 1 ms */
        advance(now + 1000);
        unsigned v = port_b(s, 0x10);
        flips += v != last;
        last = v;
    }
    ck_assert_uint_ge(flips, 65);
    ck_assert_uint_le(flips, 67);
    for (unsigned v = 0; v < 0x100; v += 0x55) {       /* 0x00, 0x55, 0xaa, 0xff */
        out8(s, 0x61, (uint8_t)v);
        ck_assert_uint_eq(port_b(s, 0xcf), v & 0x0f);
    }
    i8254_type.destroy(s);
}
END_TEST

/* Modes 2 and 3: a low gate stops the count with OUT high; the rising edge reloads.
 * Mode 1: the count waits for the gate's rising edge, OUT high until then. */
START_TEST(gate_edges_in_modes_1_2_3)
{
    void *s = pit_new(0);
    out8(s, 0x61, 0x01);
    program2(s, 0xb6, 0x64);                /* ch2 word mode 3: the PC speaker's square wave */
    advance(now + clocks_ns(60));       /* second half: OUT low */
    ck_assert_uint_eq(port_b(s, 0x20), 0);
    out8(s, 0x61, 0x00);                /* gate low: OUT high at once */
    ck_assert_uint_eq(port_b(s, 0x20), 0x20);
    advance(now + clocks_ns(1000));
    out8(s, 0x61, 0x01);                /* rising edge: reloaded, first half */
    ck_assert_uint_eq(count2(s), 100);
    advance(now + clocks_ns(10));
    ck_assert_uint_eq(count2(s), 80);
    ck_assert_uint_eq(port_b(s, 0x20), 0x20);

    program2(s, 0xb2, 0x32);                /* ch2 word mode 1 */
    advance(now + clocks_ns(200));      /* gate already high: no edge, nothing counts */
    ck_assert_uint_eq(count2(s), 50);
    ck_assert_uint_eq(port_b(s, 0x20), 0x20);
    out8(s, 0x61, 0x00);
    out8(s, 0x61, 0x01);                /* the trigger: OUT low while counting */
    static const struct out2_step trig[] = { { 0, 0 }, { 20, 0 } }, end[] = { { 30, 0x20 } };
    expect_out2(s, trig, 2);
    ck_assert_uint_eq(count2(s), 30);
    expect_out2(s, end, 1);
    i8254_type.destroy(s);
}
END_TEST

/* A machine described before the PIT had port 0x61 (an old trace or snapshot: one window,
 * 0x40-0x43) keeps that PIT: channel 2 counts from its count write, as it did then. */
START_TEST(without_port_61_channel_2_gate_is_tied_high)
{
    static const struct device_window old[] = { { 0, 4 } };
    struct device_env env = { .clock = &fake_clock, .windows = old, .nwindows = 1 };
    void *s = NULL;
    char err[128];

    now = 1000;
    ck_assert_int_eq(i8254_type.create("", &env, &s, err, sizeof(err)), 0);
    program2(s, 0xb0, 0xffff);
    advance(now + clocks_ns(1000));
    ck_assert_uint_eq(count2(s), 0xffff - 1000);
    i8254_type.destroy(s);
}
END_TEST

static void save_to(void *s, const char *path)
{
    struct snapshot_writer w;
    char err[256];

    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "DEV ");
    ck_assert_int_eq(i8254_type.save(s, &w, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);
}

static int load_from(void *s, const char *path, char *err, size_t errlen)
{
    struct snapshot_reader r;

    ck_assert_int_eq(snapshot_reader_open(&r, path, err, errlen), 0);
    ck_assert_int_eq(snapshot_next(&r, "DEV ", err, errlen), 0);
    int rc = i8254_type.load(s, &r, err, errlen);
    if (!rc)
        rc = snapshot_check_done(&r, err, errlen);
    snapshot_reader_close(&r);
    return rc;
}

/* A snapshot keeps port 0x61 and channel 2 held by its gate: the restored PIT reads the
 * same count, holds while the gate stays low and goes on from there. A PIT without port
 * 0x61 (an old machine description) has no such fields, and a chunk with a gate that port
 * 0x61 does not show is refused. */
START_TEST(snapshot_keeps_port_61_and_a_held_count)
{
    const char *path = scratch_path("pit.snap");
    char err[256];
    void *a = pit_new(0);

    out8(a, 0x61, 0x03);
    program2(a, 0xb0, 0xffff);
    advance(now + clocks_ns(300));
    out8(a, 0x61, 0x02);                /* gate low: held at 0xffff - 300 */
    save_to(a, path);
    uint64_t t = now;
    void *b = pit_new(0);
    now = t;
    ck_assert_msg(load_from(b, path, err, sizeof(err)) == 0, "%s", err);
    advance(now + 1000000);
    ck_assert_uint_eq(port_b(b, 0x0f), 0x02);
    ck_assert_uint_eq(count2(b), 0xffff - 300);
    out8(b, 0x61, 0x03);
    advance(now + clocks_ns(100));
    ck_assert_uint_eq(count2(b), 0xffff - 400);

    static const struct device_window old[] = { { 0, 4 } };
    struct device_env env = { .clock = &fake_clock, .windows = old, .nwindows = 1 };
    void *c = NULL;
    ck_assert_int_eq(i8254_type.create("", &env, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(load_from(c, path, err, sizeof(err)), -EINVAL);   /* fields left over */
    save_to(c, path);
    ck_assert_msg(load_from(c, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(load_from(b, path, err, sizeof(err)), -EINVAL);   /* fields missing */
    i8254_type.destroy(a);
    i8254_type.destroy(b);
    i8254_type.destroy(c);
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
    tcase_add_test(tc, gate_off_holds_gate_on_counts_down);
    tcase_add_test(tc, mode0_out_rises_at_terminal_count_on_port_61_bit_5);
    tcase_add_test(tc, refresh_toggles_on_the_clock_and_bits_0_to_3_read_back);
    tcase_add_test(tc, gate_edges_in_modes_1_2_3);
    tcase_add_test(tc, without_port_61_channel_2_gate_is_tied_high);
    tcase_add_test(tc, bad_args_refused);
    suite_add_tcase(s, tc);
    TCase *snap = tcase_create("snapshot");
    tcase_add_checked_fixture(snap, scratch_setup, scratch_teardown);
    tcase_add_test(snap, snapshot_keeps_port_61_and_a_held_count);
    suite_add_tcase(s, snap);
    return s;
}

int main(void)
{
    return check_run(i8254_suite());
}
