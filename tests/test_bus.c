/* The bus: registration rules, dispatch, unclaimed accesses, and the tap. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "vmm/bus.h"
#include "tests/check_run.h"

struct fake { uint64_t last_off, last_val; unsigned last_size; int reads, writes; };

static int fake_read(void *o, uint64_t off, unsigned size, uint64_t *v)
{
    struct fake *f = o;
    f->reads++;
    f->last_off = off;
    f->last_size = size;
    *v = 0x1122334455667788ULL;
    return 0;
}

static int fake_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
    struct fake *f = o;
    f->writes++;
    f->last_off = off;
    f->last_size = size;
    f->last_val = v;
    return 0;
}

static const struct bus_ops fake_ops = { fake_read, fake_write };

START_TEST(dispatch_reaches_region_with_offset)
{
    struct bus b;
    struct fake f = { 0 };
    uint64_t v;

    bus_init(&b, BUS_MMIO);
    ck_assert_int_ge(bus_register(&b, 0x1000, 0x100, &fake_ops, &f, "a"), 0);
    ck_assert_int_eq(bus_write(&b, 0x1010, 4, 0xdeadbeefcafeULL), 0);
    ck_assert_uint_eq(f.last_off, 0x10);
    ck_assert_uint_eq(f.last_val, 0xbeefcafe);     /* truncated to the access size */
    ck_assert_int_eq(bus_read(&b, 0x10fe, 2, &v), 0);
    ck_assert_uint_eq(v, 0x7788);
    ck_assert_uint_eq(f.last_off, 0xfe);
}
END_TEST

/* A device with windows apart (the i8042's ports 0x60 and 0x64) sees offsets from its own
 * base in each; the port between belongs to whoever registers it. Unregistering a window
 * frees its range. */
START_TEST(windows_apart_see_offsets_from_the_device_base)
{
    struct bus b;
    struct fake f = { 0 }, g = { 0 };
    uint64_t v;

    bus_init(&b, BUS_PIO);
    ck_assert_int_ge(bus_register_window(&b, 0x60, 1, 0, &fake_ops, &f, "kbd"), 0);
    ck_assert_int_ge(bus_register_window(&b, 0x64, 1, 4, &fake_ops, &f, "kbd"), 0);
    ck_assert_int_ge(bus_register_window(&b, 0x61, 1, 0x21, &fake_ops, &g, "pit"), 0);
    ck_assert_int_eq(bus_write(&b, 0x64, 1, 0xfe), 0);
    ck_assert_uint_eq(f.last_off, 4);
    ck_assert_int_eq(bus_read(&b, 0x61, 1, &v), 0);
    ck_assert_uint_eq(g.last_off, 0x21);
    ck_assert_int_eq(g.reads, 1);
    ck_assert_int_eq(bus_read(&b, 0x62, 1, &v), -ENOENT);
    ck_assert_int_eq(bus_unregister(&b, 0x61), 0);
    ck_assert_int_eq(bus_unregister(&b, 0x61), -ENOENT);
    ck_assert_int_eq(bus_read(&b, 0x61, 1, &v), -ENOENT);
    ck_assert_int_ge(bus_register(&b, 0x61, 3, &fake_ops, &g, "b"), 0);
}
END_TEST

START_TEST(overlap_and_bad_ranges_rejected)
{
    struct bus b;
    struct fake f;

    bus_init(&b, BUS_PIO);
    ck_assert_int_ge(bus_register(&b, 0x100, 0x10, &fake_ops, &f, "a"), 0);
    ck_assert_int_eq(bus_register(&b, 0x10f, 1, &fake_ops, &f, "b"), -EEXIST);
    ck_assert_int_eq(bus_register(&b, 0xf0, 0x11, &fake_ops, &f, "c"), -EEXIST);
    ck_assert_int_eq(bus_register(&b, 0x0, 0x200, &fake_ops, &f, "d"), -EEXIST);
    ck_assert_int_eq(bus_register(&b, 0x200, 0, &fake_ops, &f, "e"), -EINVAL);
    ck_assert_int_eq(bus_register(&b, ~0ULL - 1, 4, &fake_ops, &f, "wrap"), -EINVAL);
    ck_assert_int_ge(bus_register(&b, 0x110, 0x10, &fake_ops, &f, "adjacent"), 0);
    ck_assert_int_ge(bus_register(&b, 0xf0, 0x10, &fake_ops, &f, "below"), 0);
    ck_assert_uint_eq(b.nregions, 3);
    ck_assert_uint_eq(b.regions[0].base, 0xf0);   /* kept sorted */
    ck_assert_uint_eq(b.regions[2].base, 0x110);
}
END_TEST

START_TEST(unclaimed_reads_all_ones)
{
    struct bus b;
    uint64_t v = 0;

    bus_init(&b, BUS_MMIO);
    ck_assert_int_eq(bus_read(&b, 0x5000, 4, &v), -ENOENT);
    ck_assert_uint_eq(v, 0xffffffffu);
    ck_assert_int_eq(bus_write(&b, 0x5000, 4, 1), -ENOENT);
}
END_TEST

START_TEST(straddling_and_bad_sizes)
{
    struct bus b;
    struct fake f = { 0 };
    uint64_t v;

    bus_init(&b, BUS_MMIO);
    bus_register(&b, 0x1000, 0x10, &fake_ops, &f, "a");
    ck_assert_int_eq(bus_read(&b, 0x100e, 4, &v), -EINVAL);
    ck_assert_int_eq(bus_write(&b, 0x1000, 3, 0), -EINVAL);
    ck_assert_int_eq(f.reads + f.writes, 0);
}
END_TEST

START_TEST(many_regions_binary_search)
{
    struct bus b;
    struct fake f[BUS_MAX_REGIONS];
    uint64_t v;

    bus_init(&b, BUS_MMIO);
    /* Insert in a scrambled order; lookups must still find each one. */
    for (unsigned i = 0; i < BUS_MAX_REGIONS; i++) {
        unsigned k = (i * 37) % BUS_MAX_REGIONS;
        f[k] = (struct fake){ 0 };
        ck_assert_int_ge(bus_register(&b, 0x10000 + k * 0x1000, 0x1000, &fake_ops, &f[k], "r"), 0);
    }
    ck_assert_int_eq(bus_register(&b, 0x900000, 1, &fake_ops, &f[0], "full"), -ENOSPC);
    for (unsigned k = 0; k < BUS_MAX_REGIONS; k++) {
        ck_assert_int_eq(bus_read(&b, 0x10000 + k * 0x1000 + 0x123, 1, &v), 0);
        ck_assert_int_eq(f[k].reads, 1);
        ck_assert_uint_eq(f[k].last_off, 0x123);
    }
}
END_TEST

struct tap_log { int n; int is_write; uint64_t addr, value; int region; };

static void tap(void *o, enum bus_space s, int is_write, uint64_t addr, unsigned size,
                uint64_t value, int region)
{
    struct tap_log *t = o;
    (void)s;
    (void)size;
    t->n++;
    t->is_write = is_write;
    t->addr = addr;
    t->value = value;
    t->region = region;
}

START_TEST(tap_sees_every_access)
{
    struct bus b;
    struct fake f = { 0 };
    struct tap_log t = { 0 };
    uint64_t v;

    bus_init(&b, BUS_PIO);
    bus_register(&b, 0x3f8, 8, &fake_ops, &f, "uart");
    bus_set_tap(&b, tap, &t);
    bus_write(&b, 0x3f8, 1, 'A');
    ck_assert_int_eq(t.n, 1);
    ck_assert_int_eq(t.is_write, 1);
    ck_assert_uint_eq(t.value, 'A');
    ck_assert_int_eq(t.region, 0);
    bus_read(&b, 0x80, 1, &v);
    ck_assert_int_eq(t.n, 2);
    ck_assert_int_eq(t.region, -1);
    ck_assert_uint_eq(t.value, 0xff);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, dispatch_reaches_region_with_offset);
    tcase_add_test(tc, windows_apart_see_offsets_from_the_device_base);
    tcase_add_test(tc, overlap_and_bad_ranges_rejected);
    tcase_add_test(tc, unclaimed_reads_all_ones);
    tcase_add_test(tc, straddling_and_bad_sizes);
    tcase_add_test(tc, many_regions_binary_search);
    tcase_add_test(tc, tap_sees_every_access);
    suite_add_tcase(s, tc);
    return check_run(s);
}
