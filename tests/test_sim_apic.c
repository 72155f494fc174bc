/* The emulated local APIC and I/O APIC, driven through their MMIO registers and the
 * virtual clock, with no CPU: what a guest reads back and which vector it would get. */
#include <check.h>
#include <stdint.h>

#include "sim/ioapic.h"
#include "sim/lapic.h"
#include "sim/vclock.h"
#include "tests/check_run.h"

static struct vclock vc;
static struct lapic la;
static struct ioapic io;

static void setup(void)
{
    vclock_init(&vc);
    lapic_init(&la, &vc, 0);
    ioapic_init(&io, &la);
    la.on_eoi = ioapic_eoi;
    la.on_eoi_opaque = &io;
}

static void teardown(void)
{
    lapic_destroy(&la);
    vclock_destroy(&vc);
}

static uint32_t lr(uint64_t off)
{
    uint64_t v;
    ck_assert_int_eq(lapic_bus_ops.read(&la, off, 4, &v), 0);
    return (uint32_t)v;
}

static void lw(uint64_t off, uint32_t v) { ck_assert_int_eq(lapic_bus_ops.write(&la, off, 4, v), 0); }

static uint32_t ior(uint32_t reg)
{
    uint64_t v;
    ioapic_bus_ops.write(&io, 0, 4, reg);
    ioapic_bus_ops.read(&io, 0x10, 4, &v);
    return (uint32_t)v;
}

static void iow(uint32_t reg, uint32_t v)
{
    ioapic_bus_ops.write(&io, 0, 4, reg);
    ioapic_bus_ops.write(&io, 0x10, 4, v);
}

/* what the CPU does when it delivers */
static int take(void)
{
    int v = la.pending;
    if (v >= 0)
        lapic_ack(&la, (uint8_t)v);
    return v;
}

static void advance(uint64_t ns)
{
    vclock_advance_to(&vc, vclock_now(&vc) + ns);
    vclock_run_due(&vc);
}

START_TEST(lapic_identity)
{
    ck_assert_uint_eq(lr(0x30), LAPIC_VERSION);
    ck_assert_uint_eq(lr(0x20), 0);
    ck_assert_uint_eq(lr(0xf0), 0xff);           /* reset: software-disabled */
    ck_assert_uint_eq(lr(0x320) & (1u << 16), 1u << 16);
}
END_TEST

START_TEST(lapic_disabled_delivers_nothing)
{
    lapic_accept(&la, 0x40, 0);
    ck_assert_int_eq(la.pending, -1);
    lw(0xf0, 0x1ff);
    ck_assert_int_eq(la.pending, 0x40);          /* held in IRR until enabled */
}
END_TEST

START_TEST(lapic_priority_tpr_eoi)
{
    lw(0xf0, 0x1ff);
    lapic_accept(&la, 0x41, 0);
    lapic_accept(&la, 0x81, 0);
    ck_assert_int_eq(take(), 0x81);              /* highest first */
    ck_assert_int_eq(la.pending, -1);            /* 0x41 is below the in-service class */
    ck_assert_uint_eq(lr(0x100 + 0x10 * (0x81 / 32)), 1u << (0x81 % 32));
    lw(0xb0, 0);                                 /* EOI */
    ck_assert_uint_eq(lr(0x100 + 0x10 * (0x81 / 32)), 0);
    lw(0x80, 0x50);                              /* TPR masks class 4 */
    ck_assert_int_eq(la.pending, -1);
    ck_assert_uint_eq(lr(0xa0), 0x50);
    lw(0x80, 0);
    ck_assert_int_eq(take(), 0x41);
}
END_TEST

START_TEST(lapic_self_ipi)
{
    lw(0xf0, 0x1ff);
    lw(0x300, (1u << 18) | 0x66);                /* shorthand self, fixed */
    ck_assert_int_eq(la.pending, 0x66);
    ck_assert_uint_eq(lr(0x300) & (1u << 12), 0);  /* never "send pending" */
}
END_TEST

START_TEST(lapic_oneshot_timer)
{
    lw(0xf0, 0x1ff);
    lw(0x3e0, 0x3);                              /* divide by 16 */
    lw(0x320, 0x42);                             /* one-shot, vector 0x42 */
    lw(0x380, 1000);                             /* 16000 ns */
    ck_assert(lapic_timer_armed(&la));
    advance(8000);
    ck_assert_uint_eq(lr(0x390), 500);           /* half way */
    ck_assert_int_eq(la.pending, -1);
    advance(8000);
    ck_assert_int_eq(take(), 0x42);
    ck_assert_uint_eq(lr(0x390), 0);
    ck_assert(!lapic_timer_armed(&la));
}
END_TEST

START_TEST(lapic_periodic_timer)
{
    lw(0xf0, 0x1ff);
    lw(0x3e0, 0xb);                              /* divide by 1 */
    lw(0x320, 0x20043);
    lw(0x380, 5000);
    for (int i = 0; i < 4; i++) {
        advance(5000);
        ck_assert_int_eq(take(), 0x43);
        lw(0xb0, 0);
    }
    ck_assert_uint_eq(la.timer_fired, 4);
    lw(0x380, 0);                                /* stop */
    advance(50000);
    ck_assert_int_eq(la.pending, -1);
    ck_assert_uint_eq(la.timer_fired, 4);
}
END_TEST

START_TEST(lapic_masked_timer_counts_silently)
{
    lw(0xf0, 0x1ff);
    lw(0x3e0, 0xb);
    lw(0x320, 0x10044);                          /* masked one-shot */
    lw(0x380, 100);
    advance(200);
    ck_assert_uint_eq(la.timer_fired, 1);
    ck_assert_int_eq(la.pending, -1);
}
END_TEST

START_TEST(lapic_periodic_minimum_period)
{
    lw(0xf0, 0x1ff);
    lw(0x3e0, 0xb);
    lw(0x320, 0x20045);
    lw(0x380, 1);                                /* 1 ns asked, clamped */
    advance(LAPIC_MIN_PERIOD_NS * 10);
    ck_assert_uint_eq(la.timer_fired, 10);
}
END_TEST

START_TEST(ioapic_identity)
{
    ck_assert_uint_eq(ior(1), ((MEMMAP_IOAPIC_PINS - 1) << 16) | IOAPIC_VERSION);
    ck_assert_uint_eq(ior(0x10) & (1u << 16), 1u << 16);   /* masked at reset */
    iow(0x10 + 2 * 3, 0x4055 | (1u << 14) | (1u << 12));   /* RO bits ignored */
    ck_assert_uint_eq(ior(0x10 + 2 * 3), 0x4055 & ~(1u << 14));
    iow(0x11 + 2 * 3, 0xff000000);
    ck_assert_uint_eq(ior(0x11 + 2 * 3), 0xff000000);
    ck_assert_uint_eq(ior(0x99), 0xffffffff);
}
END_TEST

START_TEST(ioapic_edge_and_masked_latch)
{
    lw(0xf0, 0x1ff);
    iow(0x10 + 2 * 4, 0x60);                     /* edge, unmasked */
    io.sink.set_level(io.sink.opaque, 4, 1);
    io.sink.set_level(io.sink.opaque, 4, 0);
    ck_assert_int_eq(take(), 0x60);
    lw(0xb0, 0);
    iow(0x10 + 2 * 4, 0x60 | (1u << 16));        /* masked: the edge is latched */
    io.sink.set_level(io.sink.opaque, 4, 1);
    io.sink.set_level(io.sink.opaque, 4, 0);
    ck_assert_int_eq(la.pending, -1);
    iow(0x10 + 2 * 4, 0x60);                     /* unmask: delivered now */
    ck_assert_int_eq(take(), 0x60);
    io.sink.set_level(io.sink.opaque, 99, 1);    /* no such pin: ignored */
}
END_TEST

START_TEST(ioapic_level_remote_irr)
{
    lw(0xf0, 0x1ff);
    iow(0x10 + 2 * 9, 0x61 | (1u << 15));        /* level */
    io.sink.set_level(io.sink.opaque, 9, 1);
    ck_assert_int_eq(take(), 0x61);
    ck_assert_uint_eq(ior(0x10 + 2 * 9) & (1u << 14), 1u << 14);   /* remote IRR */
    io.sink.set_level(io.sink.opaque, 9, 1);     /* still high: no second message */
    ck_assert_int_eq(la.pending, -1);
    lw(0xb0, 0);                                 /* EOI while high: fires again */
    ck_assert_int_eq(take(), 0x61);
    io.sink.set_level(io.sink.opaque, 9, 0);
    lw(0xb0, 0);                                 /* EOI after the device lowered it */
    ck_assert_uint_eq(ior(0x10 + 2 * 9) & (1u << 14), 0);
    ck_assert_int_eq(la.pending, -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_apic");
    TCase *tc = tcase_create("apic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lapic_identity);
    tcase_add_test(tc, lapic_disabled_delivers_nothing);
    tcase_add_test(tc, lapic_priority_tpr_eoi);
    tcase_add_test(tc, lapic_self_ipi);
    tcase_add_test(tc, lapic_oneshot_timer);
    tcase_add_test(tc, lapic_periodic_timer);
    tcase_add_test(tc, lapic_masked_timer_counts_silently);
    tcase_add_test(tc, lapic_periodic_minimum_period);
    tcase_add_test(tc, ioapic_identity);
    tcase_add_test(tc, ioapic_edge_and_masked_latch);
    tcase_add_test(tc, ioapic_level_remote_irr);
    suite_add_tcase(s, tc);
    return check_run(s);
}
