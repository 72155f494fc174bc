/* The device tree vmlab builds, read back with libfdt as a guest would. */
#include <check.h>
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/fdt_build.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"

/* Properties are only 4-byte aligned: read 64-bit cells with memcpy. */
static uint64_t cell64(const void *prop, int index)
{
    fdt64_t v;
    memcpy(&v, (const uint8_t *)prop + 8 * index, 8);
    return fdt64_to_cpu(v);
}

static struct machine_config sample(void)
{
    struct machine_config mc = { .ram_size = 256ULL << 20, .seed = 1, .backend = "sim" };
    mc.devices[0] = (struct machine_device){ "uart8250", "out=stdio", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    mc.devices[1] = (struct machine_device){ "debug-exit", "", 0xf4, -1, BUS_PIO, .nwindows = 0 };
    mc.devices[2] = (struct machine_device){ "virtio-blk", "mem=1M", 0xd0000000, 5, BUS_MMIO, .nwindows = 0 };
    mc.devices[3] = (struct machine_device){ "virtio-rng", "", 0xd0001000, 6, BUS_MMIO, .nwindows = 0 };
    mc.ndevices = 4;
    return mc;
}

START_TEST(tree_describes_machine)
{
    static uint8_t buf[MEMMAP_FDT_MAX];
    struct machine_config mc = sample();
    char err[256];
    int len;

    ck_assert_int_eq(fdt_build(buf, sizeof(buf), &mc, "hello world", 1000000, err,
                               sizeof(err)), 0);
    ck_assert_int_eq(fdt_check_header(buf), 0);
    ck_assert_uint_le(fdt_totalsize(buf), sizeof(buf));

    int chosen = fdt_path_offset(buf, "/chosen");
    ck_assert_int_ge(chosen, 0);
    ck_assert_str_eq(fdt_getprop(buf, chosen, "bootargs", &len), "hello world");

    int mem = fdt_path_offset(buf, "/memory@0");
    ck_assert_int_ge(mem, 0);
    const void *reg = fdt_getprop(buf, mem, "reg", &len);
    ck_assert_int_eq(len, 16);
    ck_assert_uint_eq(cell64(reg, 1), 256ULL << 20);

    int cpus = fdt_path_offset(buf, "/cpus");
    const fdt32_t *khz = fdt_getprop(buf, cpus, "tsc-frequency-khz", &len);
    ck_assert_ptr_nonnull(khz);
    ck_assert_uint_eq(fdt32_to_cpu(*khz), 1000000);

    /* virtio nodes, found the way a guest finds them: by compatible. */
    int n = 0;
    uint64_t bases[4];
    for (int off = fdt_node_offset_by_compatible(buf, -1, "virtio,mmio"); off >= 0;
         off = fdt_node_offset_by_compatible(buf, off, "virtio,mmio")) {
        reg = fdt_getprop(buf, off, "reg", &len);
        bases[n++] = cell64(reg, 0);
        ck_assert_uint_eq(cell64(reg, 1), 0x1000);
    }
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(bases[0], 0xd0000000ULL);
    ck_assert_uint_eq(bases[1], 0xd0001000ULL);
    int blk = fdt_path_offset(buf, "/virtio_mmio@d0000000");
    const fdt32_t *irq = fdt_getprop(buf, blk, "interrupts", &len);
    ck_assert_uint_eq(fdt32_to_cpu(*irq), 5);
    ck_assert_str_eq(fdt_getprop(buf, blk, "vmlab,kind", &len), "virtio-blk");
    ck_assert_int_ge(fdt_path_offset(buf, "/serial@3f8"), 0);
}
END_TEST

START_TEST(high_memory_gets_second_node)
{
    static uint8_t buf[MEMMAP_FDT_MAX];
    struct machine_config mc = sample();
    char err[256];

    mc.ram_size = 4ULL << 30;
    ck_assert_int_eq(fdt_build(buf, sizeof(buf), &mc, "", 0, err, sizeof(err)), 0);
    ck_assert_int_ge(fdt_path_offset(buf, "/memory@100000000"), 0);
}
END_TEST

START_TEST(too_small_buffer_is_enospc)
{
    static uint8_t buf[256];
    struct machine_config mc = sample();
    char err[256] = "";

    ck_assert_int_eq(fdt_build(buf, sizeof(buf), &mc, "", 0, err, sizeof(err)), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(err, "larger than"));
}
END_TEST

START_TEST(same_input_same_bytes)
{
    static uint8_t a[MEMMAP_FDT_MAX], b[MEMMAP_FDT_MAX];
    struct machine_config mc = sample();
    char err[256];

    memset(a, 0x11, sizeof(a));
    memset(b, 0x22, sizeof(b));
    fdt_build(a, sizeof(a), &mc, "x", 1, err, sizeof(err));
    fdt_build(b, sizeof(b), &mc, "x", 1, err, sizeof(err));
    ck_assert_int_eq(memcmp(a, b, fdt_totalsize(a)), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fdt");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, tree_describes_machine);
    tcase_add_test(tc, high_memory_gets_second_node);
    tcase_add_test(tc, too_small_buffer_is_enospc);
    tcase_add_test(tc, same_input_same_bytes);
    suite_add_tcase(s, tc);
    return check_run(s);
}
