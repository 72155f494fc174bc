/* The memory map table and guest memory bounds checking. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"

START_TEST(table_has_no_overlapping_mmio)
{
    for (const struct memmap_entry *a = memmap_table; a->name; a++)
        for (const struct memmap_entry *b = a + 1; b->name; b++) {
            if (a->kind != b->kind || a->kind == MEMMAP_RAM || !a->size || !b->size)
                continue;
            int overlap = a->base < b->base + b->size && b->base < a->base + a->size;
            ck_assert_msg(!overlap, "%s overlaps %s", a->name, b->name);
        }
}
END_TEST

START_TEST(boot_data_below_load_address_and_mmio_in_hole)
{
    for (const struct memmap_entry *e = memmap_table; e->name; e++) {
        if (e->kind == MEMMAP_BOOT)
            ck_assert_uint_le(e->base + e->size, MEMMAP_GUEST_LOAD_MIN);
        if (e->kind == MEMMAP_MMIO) {
            ck_assert_uint_ge(e->base, MEMMAP_MMIO_HOLE_START);
            ck_assert_uint_le(e->base + e->size, MEMMAP_MMIO_HOLE_END);
        }
    }
    ck_assert_ptr_nonnull(memmap_find("serial"));
    ck_assert_uint_eq(memmap_find("serial")->base, 0x3f8);
    ck_assert_ptr_null(memmap_find("nope"));
}
END_TEST

START_TEST(virtio_slots)
{
    uint64_t base;
    int irq;

    ck_assert_int_eq(memmap_virtio_slot(0, &base, &irq), 0);
    ck_assert_uint_eq(base, 0xd0000000ULL);
    ck_assert_int_eq(irq, 5);
    ck_assert_int_eq(memmap_virtio_slot(3, &base, &irq), 0);
    ck_assert_uint_eq(base, 0xd0003000ULL);
    ck_assert_int_eq(irq, 8);
    ck_assert_int_eq(memmap_virtio_slot(MEMMAP_VIRTIO_MMIO_SLOTS, &base, &irq), -EINVAL);
    /* Every slot's IRQ must exist on the I/O APIC. */
    ck_assert_int_eq(memmap_virtio_slot(MEMMAP_VIRTIO_MMIO_SLOTS - 1, &base, &irq), 0);
    ck_assert_int_lt(irq, MEMMAP_IOAPIC_PINS);
}
END_TEST

START_TEST(ram_split_around_hole)
{
    struct memmap_range r[2];

    ck_assert_int_eq(memmap_ram_ranges(0, r), -EINVAL);
    ck_assert_int_eq(memmap_ram_ranges(128 << 20, r), 1);
    ck_assert_uint_eq(r[0].size, 128 << 20);
    ck_assert_int_eq(memmap_ram_ranges(4ULL << 30, r), 2);
    ck_assert_uint_eq(r[0].size, MEMMAP_MMIO_HOLE_START);
    ck_assert_uint_eq(r[1].base, 4ULL << 30);
    ck_assert_uint_eq(r[0].size + r[1].size, 4ULL << 30);
}
END_TEST

START_TEST(guest_mem_bounds)
{
    struct guest_mem m;
    uint8_t buf[16] = { 1, 2, 3 };

    ck_assert_int_eq(guest_mem_init(&m, 4 << 20), 0);
    ck_assert_int_eq(guest_mem_write(&m, 0x1000, buf, 3), 0);
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(guest_mem_read(&m, 0x1000, buf, 3), 0);
    ck_assert_int_eq(buf[2], 3);
    ck_assert_int_eq(guest_mem_read(&m, (4 << 20) - 2, buf, 2), 0);
    ck_assert_int_eq(guest_mem_read(&m, (4 << 20) - 2, buf, 3), -EFAULT);
    ck_assert_int_eq(guest_mem_write(&m, ~0ULL - 1, buf, 4), -EFAULT);   /* wraps */
    ck_assert_int_eq(guest_mem_read(&m, 0xd0000000ULL, buf, 1), -EFAULT);
    ck_assert_int_eq(guest_mem_valid(&m, 4 << 20, 0), 1);
    ck_assert_int_eq(guest_mem_valid(&m, (4 << 20) + 1, 0), 0);
    ck_assert_ptr_null(guest_mem_host(&m, 4 << 20, 1));
    guest_mem_destroy(&m);
}
END_TEST

START_TEST(guest_mem_high_range)
{
    struct guest_mem m;
    uint8_t b = 0x5a, r = 0;

    /* 3.25 GiB low + 64 MiB high: MAP_NORESERVE makes this cheap. */
    ck_assert_int_eq(guest_mem_init(&m, MEMMAP_MMIO_HOLE_START + (64 << 20)), 0);
    ck_assert_uint_eq(m.nranges, 2);
    ck_assert_int_eq(guest_mem_write(&m, MEMMAP_HIGH_RAM_START + 5, &b, 1), 0);
    ck_assert_int_eq(guest_mem_read(&m, MEMMAP_HIGH_RAM_START + 5, &r, 1), 0);
    ck_assert_int_eq(r, 0x5a);
    /* An access spanning the hole boundary is refused. */
    uint8_t two[2];
    ck_assert_int_eq(guest_mem_read(&m, MEMMAP_MMIO_HOLE_START - 1, two, 2), -EFAULT);
    guest_mem_destroy(&m);
}
END_TEST

struct tapped { int n; enum guest_mem_dir dir; uint64_t gpa; size_t len; };

static void tap(void *o, enum guest_mem_dir dir, uint64_t gpa, const void *d, size_t len)
{
    struct tapped *t = o;
    (void)d;
    t->n++;
    t->dir = dir;
    t->gpa = gpa;
    t->len = len;
}

START_TEST(guest_mem_tap_sees_only_successful_accesses)
{
    uint8_t ram[256], buf[8] = { 0 };
    struct guest_mem m;
    struct tapped t = { 0 };

    guest_mem_init_buffer(&m, ram, sizeof(ram));
    guest_mem_set_tap(&m, tap, &t);
    ck_assert_int_eq(guest_mem_write(&m, 8, buf, 8), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_int_eq(t.dir, GUEST_MEM_WRITE);
    ck_assert_uint_eq(t.gpa, 8);
    ck_assert_int_eq(guest_mem_read(&m, 250, buf, 8), -EFAULT);
    ck_assert_int_eq(t.n, 1);
}
END_TEST

START_TEST(guest_mem_write_tap_sees_writes_and_no_reads)
{
    uint8_t ram[256] = { 0 }, buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    struct guest_mem m;
    struct tapped t = { 0 };

    guest_mem_init_buffer(&m, ram, sizeof(ram));
    guest_mem_set_write_tap(&m, tap, &t);
    ck_assert_int_eq(guest_mem_read(&m, 0, buf, 8), 0);
    ck_assert_int_eq(t.n, 0);
    ck_assert_int_eq(guest_mem_write(&m, 16, buf, 4), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_int_eq(t.dir, GUEST_MEM_WRITE);
    ck_assert_uint_eq(t.gpa, 16);
    ck_assert_uint_eq(t.len, 4);
    /* The read-and-write tap replaces it, and NULL removes both. */
    guest_mem_set_tap(&m, tap, &t);
    ck_assert_int_eq(guest_mem_read(&m, 0, buf, 8), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_int_eq(t.dir, GUEST_MEM_READ);
    guest_mem_set_tap(&m, NULL, NULL);
    ck_assert_int_eq(guest_mem_write(&m, 0, buf, 8), 0);
    ck_assert_int_eq(t.n, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memmap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, table_has_no_overlapping_mmio);
    tcase_add_test(tc, boot_data_below_load_address_and_mmio_in_hole);
    tcase_add_test(tc, virtio_slots);
    tcase_add_test(tc, ram_split_around_hole);
    tcase_add_test(tc, guest_mem_bounds);
    tcase_add_test(tc, guest_mem_high_range);
    tcase_add_test(tc, guest_mem_tap_sees_only_successful_accesses);
    tcase_add_test(tc, guest_mem_write_tap_sees_writes_and_no_reads);
    suite_add_tcase(s, tc);
    return check_run(s);
}
