/* The bzImage loader (vmm/loader_linux.c) on hand-made images: what lands in the zero page,
 * where the kernel, command line and initrd go, and the errors for bad input. No CPU. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/loader_linux.h"
#include "tests/check_run.h"

#define RAM (16u << 20)

static struct guest_mem mem;
static uint8_t img[1024 + 8192];
static char err[256];
static struct cpu_boot boot;

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A minimal bzImage: 1 setup sector after the boot sector, 8 KiB of "kernel". */
static void setup(void)
{
    ck_assert_int_eq(guest_mem_init(&mem, RAM), 0);
    memset(img, 0, sizeof(img));
    img[0x1f1] = 1;                         /* setup_sects */
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x66;                      /* header ends at 0x268 */
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, 0x020f);
    img[0x211] = 0x01;                      /* LOADED_HIGH */
    put32(img + 0x22c, 0x7fffffff);         /* initrd_addr_max */
    put16(img + 0x236, 0x0003);             /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
    put32(img + 0x238, 2047);               /* cmdline_size */
    put32(img + 0x260, 0x40000);            /* init_size: 256 KiB */
    for (size_t i = 1024; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 7);
    memset(err, 0, sizeof(err));
}

static void teardown(void)
{
    guest_mem_destroy(&mem);
}

static const uint8_t *zero_page(void)
{
    return guest_mem_host(&mem, LINUX_BOOT_PARAMS_ADDR, 4096);
}

START_TEST(loads_kernel_zero_page_and_cmdline)
{
    const char *cmd = "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5";
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, cmd, &boot, err,
                                             sizeof(err)), 0);
    ck_assert_int_eq(boot.mode, CPU_BOOT_LINUX64);
    ck_assert_uint_eq(boot.entry, 0x100200);
    ck_assert_uint_eq(boot.arg, LINUX_BOOT_PARAMS_ADDR);
    ck_assert_mem_eq(guest_mem_host(&mem, 0x100000, 8192), img + 1024, 8192);
    const uint8_t *bp = zero_page();
    ck_assert_uint_eq(bp[0x210], 0xff);                         /* type_of_loader */
    ck_assert_mem_eq(bp + 0x202, "HdrS", 4);                    /* header copied */
    ck_assert_uint_eq(get32(bp + 0x228), LINUX_CMDLINE_ADDR);   /* cmd_line_ptr */
    ck_assert_str_eq((const char *)guest_mem_host(&mem, LINUX_CMDLINE_ADDR, 1), cmd);
    ck_assert_uint_eq(get32(bp + 0x218), 0);                    /* no initrd */
    /* e820: low RAM, the 640K-1M hole reserved, RAM from 1 MiB to the end. */
    ck_assert_uint_eq(bp[0x1e8], 3);
    const uint8_t *e = bp + 0x2d0;
    ck_assert_uint_eq(get64(e), 0);
    ck_assert_uint_eq(get64(e + 8), 0x9fc00);
    ck_assert_uint_eq(get32(e + 16), 1);
    ck_assert_uint_eq(get64(e + 20), 0x9fc00);
    ck_assert_uint_eq(get32(e + 36), 2);
    ck_assert_uint_eq(get64(e + 40), 0x100000);
    ck_assert_uint_eq(get64(e + 48), RAM - 0x100000);
    ck_assert_uint_eq(get32(e + 56), 1);
}
END_TEST

START_TEST(initrd_goes_high_and_page_aligned)
{
    uint8_t rd[5000];
    for (size_t i = 0; i < sizeof(rd); i++)
        rd[i] = (uint8_t)(i ^ 0x5a);
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), rd, sizeof(rd), "", &boot,
                                             err, sizeof(err)), 0);
    const uint8_t *bp = zero_page();
    uint32_t at = get32(bp + 0x218), size = get32(bp + 0x21c);
    ck_assert_uint_eq(size, sizeof(rd));
    ck_assert_uint_eq(at & 0xfff, 0);
    ck_assert_uint_le(at + size, RAM);
    ck_assert_uint_ge(at, RAM - 0x3000);                        /* as high as it goes */
    ck_assert_mem_eq(guest_mem_host(&mem, at, size), rd, sizeof(rd));
}
END_TEST

START_TEST(initrd_respects_initrd_addr_max)
{
    uint8_t rd[100] = { 1 };
    put32(img + 0x22c, 0x7fffff);                               /* below 8 MiB */
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), rd, sizeof(rd), "", &boot,
                                             err, sizeof(err)), 0);
    const uint8_t *bp = zero_page();
    ck_assert_uint_le(get32(bp + 0x218) + sizeof(rd), 0x800000);
}
END_TEST

START_TEST(initrd_too_large_for_ram_is_refused)
{
    size_t big = RAM - 0x100000;          /* more than is left above the kernel's init_size */
    uint8_t *rd = calloc(1, big);
    ck_assert_ptr_nonnull(rd);
    int rc = loader_linux_load_image(&mem, img, sizeof(img), rd, big, "", &boot, err,
                                     sizeof(err));
    free(rd);
    ck_assert_int_eq(rc, -E2BIG);
    ck_assert_ptr_nonnull(strstr(err, "initrd"));
    ck_assert_ptr_nonnull(strstr(err, "does not fit"));
}
END_TEST

START_TEST(not_a_bzimage_is_refused)
{
    uint8_t elf[2048] = { 0x7f, 'E', 'L', 'F' };
    ck_assert_int_eq(loader_linux_load_image(&mem, elf, sizeof(elf), NULL, 0, "", &boot, err,
                                             sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "not a bzImage"));
    put16(img + 0x1fe, 0xaa55);
    memcpy(img + 0x202, "HdrX", 4);
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, "", &boot, err,
                                             sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "HdrS"));
    ck_assert_int_eq(loader_linux_load_image(&mem, img, 100, NULL, 0, "", &boot, err,
                                             sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "too small"));
}
END_TEST

START_TEST(old_protocol_and_32bit_only_kernels_are_refused)
{
    put16(img + 0x206, 0x020b);
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, "", &boot, err,
                                             sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "2.11"));
    put16(img + 0x206, 0x020f);
    put16(img + 0x236, 0);
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, "", &boot, err,
                                             sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "XLF_KERNEL_64"));
    put16(img + 0x236, 1);
    img[0x1f1] = 40;                                            /* setup beyond the file */
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, "", &boot, err,
                                             sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "setup_sects"));
}
END_TEST

START_TEST(kernel_larger_than_ram_is_refused)
{
    put32(img + 0x260, RAM);                                    /* init_size: all of RAM */
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, "", &boot, err,
                                             sizeof(err)), -ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "init_size"));
}
END_TEST

START_TEST(command_line_too_long_is_refused)
{
    char cmd[3000];
    memset(cmd, 'a', sizeof(cmd) - 1);
    cmd[sizeof(cmd) - 1] = 0;
    ck_assert_int_eq(loader_linux_load_image(&mem, img, sizeof(img), NULL, 0, cmd, &boot, err,
                                             sizeof(err)), -E2BIG);
    ck_assert_ptr_nonnull(strstr(err, "cmdline: 2999 bytes"));
}
END_TEST

START_TEST(missing_files_are_named)
{
    int rc = loader_linux_load(&mem, "/nonexistent/bzImage", NULL, "", 0, &boot, err, sizeof(err));
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/bzImage"));
}
END_TEST

static Suite *loader_linux_suite(void)
{
    Suite *s = suite_create("loader_linux");
    TCase *tc = tcase_create("loader_linux");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, loads_kernel_zero_page_and_cmdline);
    tcase_add_test(tc, initrd_goes_high_and_page_aligned);
    tcase_add_test(tc, initrd_respects_initrd_addr_max);
    tcase_add_test(tc, initrd_too_large_for_ram_is_refused);
    tcase_add_test(tc, not_a_bzimage_is_refused);
    tcase_add_test(tc, old_protocol_and_32bit_only_kernels_are_refused);
    tcase_add_test(tc, kernel_larger_than_ram_is_refused);
    tcase_add_test(tc, command_line_too_long_is_refused);
    tcase_add_test(tc, missing_files_are_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(loader_linux_suite());
}
