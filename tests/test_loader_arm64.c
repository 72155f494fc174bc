/* The arm64 side that needs no arm64 CPU: the Linux Image loader (vmm/loader_arm64.c) on
 * hand-made Images, the arm64 ELF loader, and the arm64 device tree (vmm/fdt_arm64.c) read
 * back with libfdt. The KVM part runs in make test-kvm-arm64. */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/fdt_build.h"
#include "vmm/loader_arm64.h"
#include "vmm/loader_pvh.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"

#define RAM (64u << 20)

static struct guest_mem mem;
static uint8_t img[8192];
static char err[256];
static struct arm64_kernel k;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* An Image header for 8 KiB of "kernel" that occupies image_size bytes. */
static void make_image(uint64_t text_offset, uint64_t image_size)
{
    memset(img, 0, sizeof(img));
    put32(img, 0x14000010);                 /* b +64 */
    put64(img + 8, text_offset);
    put64(img + 16, image_size);
    put64(img + 24, 0xa);                   /* LE, 4 KiB pages, anywhere */
    put32(img + 56, ARM64_IMAGE_MAGIC);
    for (size_t i = 64; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 5);
}

static void setup(void)
{
    ck_assert_int_eq(guest_mem_init(&mem, RAM), 0);
    make_image(0, 1 << 20);
    memset(err, 0, sizeof(err));
}

static void teardown(void)
{
    guest_mem_destroy(&mem);
}

START_TEST(loads_image_at_2m_plus_text_offset_and_zeroes_bss)
{
    make_image(0x80000, 1 << 20);
    uint8_t *dst = guest_mem_host(&mem, MEMMAP_ARM64_KERNEL_BASE + 0x80000, 1 << 20);
    memset(dst, 0xaa, 1 << 20);
    ck_assert_int_eq(loader_arm64_load_image(&mem, img, sizeof(img), NULL, 0, &k, err,
                                             sizeof(err)), 0);
    ck_assert_uint_eq(k.entry, MEMMAP_ARM64_KERNEL_BASE + 0x80000);
    ck_assert_uint_eq(k.initrd_size, 0);
    ck_assert_int_eq(memcmp(dst, img, sizeof(img)), 0);
    static const uint8_t zero[(1u << 20) - sizeof(img)];
    ck_assert_int_eq(memcmp(dst + sizeof(img), zero, sizeof(zero)), 0);
}
END_TEST

START_TEST(initrd_goes_page_aligned_at_the_top_of_ram)
{
    uint8_t rd[5000];
    memset(rd, 0x5a, sizeof(rd));
    ck_assert_int_eq(loader_arm64_load_image(&mem, img, sizeof(img), rd, sizeof(rd), &k, err,
                                             sizeof(err)), 0);
    ck_assert_uint_eq(k.initrd_addr, RAM - 0x2000);
    ck_assert_uint_eq(k.initrd_size, sizeof(rd));
    ck_assert_int_eq(memcmp(guest_mem_host(&mem, k.initrd_addr, sizeof(rd)), rd, sizeof(rd)), 0);
}
END_TEST

/* Each bad Image: -ENOEXEC or -ERANGE, the field and value in the message, RAM untouched. */
static void refused(int want_rc, const char *want_text, size_t len)
{
    uint8_t *dst = guest_mem_host(&mem, MEMMAP_ARM64_KERNEL_BASE, 4096);
    ck_assert_int_eq(loader_arm64_load_image(&mem, img, len, NULL, 0, &k, err, sizeof(err)),
                     want_rc);
    ck_assert_msg(strstr(err, want_text), "error '%s' lacks '%s'", err, want_text);
    static const uint8_t zero[4096];
    ck_assert_int_eq(memcmp(dst, zero, sizeof(zero)), 0);
}

START_TEST(wrong_magic_is_refused)
{
    put32(img + 56, 0x12345678);
    refused(-ENOEXEC, "magic at offset 56 is 0x12345678, expected 0x644d5241", sizeof(img));
}
END_TEST

START_TEST(truncated_header_is_refused)
{
    refused(-ENOEXEC, "arm64 Image: 40 bytes, the header needs 64", 40);
}
END_TEST

START_TEST(image_size_beyond_ram_is_refused)
{
    make_image(0, 1ULL << 30);
    refused(-ERANGE, "image_size 0x40000000 at 0x200000 goes past the end of RAM", sizeof(img));
}
END_TEST

START_TEST(bad_header_fields_are_refused)
{
    make_image(0, 0);
    refused(-ENOEXEC, "image_size is 0", sizeof(img));
    make_image(0, 4096);
    refused(-ENOEXEC, "image_size 0x1000 is smaller than the file's 8192 bytes", sizeof(img));
    make_image(0x1234, 1 << 20);
    refused(-ENOEXEC, "text_offset 0x1234 is not a page-aligned offset below 2 MiB", sizeof(img));
    make_image(0, 1 << 20);
    put64(img + 24, 0xb);
    refused(-ENOEXEC, "flags 0xb ask for a big-endian kernel", sizeof(img));
}
END_TEST

START_TEST(initrd_too_large_is_refused)
{
    static uint8_t rd[RAM];
    ck_assert_int_eq(loader_arm64_load_image(&mem, img, sizeof(img), rd, sizeof(rd), &k, err,
                                             sizeof(err)), -ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "initrd of 67108864 bytes does not fit in RAM above the kernel"));
}
END_TEST

START_TEST(x86_elf_is_refused_by_the_arm64_elf_loader)
{
    uint8_t elf[sizeof(Elf64_Ehdr)] = { 0 };
    Elf64_Ehdr h = { .e_type = ET_EXEC, .e_machine = EM_X86_64 };
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    memcpy(elf, &h, sizeof(h));
    struct pvh_image pi;
    ck_assert_int_eq(loader_arm64_elf_load(&mem, elf, sizeof(elf), &pi, err, sizeof(err)),
                     -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "ELF machine is 62, expected 183 (AArch64)"));
}
END_TEST

/* An EM_AARCH64 executable: one PT_LOAD of 16 bytes at 1 MiB (entry there) and a PT_NOTE
 * holding the "vmlab" entry-EL note asking for `el`. */
static size_t make_elf(uint8_t *out, uint32_t el)
{
    Elf64_Ehdr h = { .e_type = ET_EXEC, .e_machine = EM_AARCH64, .e_version = EV_CURRENT,
                     .e_entry = 0x100000, .e_phoff = sizeof(Elf64_Ehdr),
                     .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
                     .e_phnum = 2 };
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    size_t code = sizeof(h) + 2 * sizeof(Elf64_Phdr), note = code + 16;
    Elf64_Phdr ph[2] = {
        { .p_type = PT_LOAD, .p_offset = code, .p_paddr = 0x100000, .p_vaddr = 0x100000,
          .p_filesz = 16, .p_memsz = 16, .p_align = 4096 },
        { .p_type = PT_NOTE, .p_offset = note, .p_filesz = 24, .p_align = 4 },
    };
    memcpy(out, &h, sizeof(h));
    memcpy(out + sizeof(h), ph, sizeof(ph));
    memset(out + code, 0xd5, 16);
    uint32_t n[3] = { 6, 4, VMLAB_ELFNOTE_ENTRY_EL };
    memcpy(out + note, n, 12);
    memcpy(out + note + 12, "vmlab\0\0\0", 8);
    memcpy(out + note + 20, &el, 4);
    return note + 24;
}

START_TEST(program_asking_for_el2_is_refused)
{
    uint8_t elf[512] = { 0 };
    struct pvh_image pi;
    size_t len = make_elf(elf, 2);
    ck_assert_int_eq(loader_arm64_elf_load(&mem, elf, len, &pi, err, sizeof(err)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err, "vmlab entry-EL note asks for EL2: vmlab starts arm64 "
                                      "guests at EL1"));
    len = make_elf(elf, 1);
    ck_assert_int_eq(loader_arm64_elf_load(&mem, elf, len, &pi, err, sizeof(err)), 0);
    ck_assert_uint_eq(pi.entry, 0x100000);
}
END_TEST

static int prop_u32(const void *fdt, const char *path, const char *name, int cell)
{
    int node = fdt_path_offset(fdt, path), len = 0;
    const fdt32_t *p = node >= 0 ? fdt_getprop(fdt, node, name, &len) : NULL;
    return p && len >= 4 * (cell + 1) ? (int)fdt32_to_cpu(p[cell]) : -1;
}

START_TEST(fdt_describes_the_arm64_machine)
{
    static uint8_t buf[MEMMAP_FDT_MAX];
    struct machine_config mc = { .ram_size = RAM, .ndevices = 3 };
    mc.devices[0] = (struct machine_device){ .kind = "uart8250", .space = BUS_MMIO,
                                             .base = MEMMAP_ARM64_SERIAL_BASE, .irq = 4 };
    mc.devices[1] = (struct machine_device){ .kind = "debug-exit", .space = BUS_MMIO,
                                             .base = MEMMAP_ARM64_DEBUG_EXIT_BASE, .irq = -1 };
    mc.devices[2] = (struct machine_device){ .kind = "virtio-blk", .space = BUS_MMIO,
                                             .base = MEMMAP_VIRTIO_MMIO_BASE, .irq = 5 };
    struct fdt_arm64_config cfg = { .mc = &mc, .cmdline = "console=ttyS0", .gic_version = 3,
                                    .timer_khz = 62500, .initrd_addr = 0x3000000,
                                    .initrd_size = 0x1000 };
    ck_assert_int_eq(fdt_build_arm64(buf, sizeof(buf), &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(fdt_check_header(buf), 0);
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/chosen"), "bootargs", NULL),
                     "console=ttyS0");
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/chosen"), "stdout-path", NULL),
                     "/uart@fe000000");
    ck_assert_int_eq(prop_u32(buf, "/chosen", "linux,initrd-start", 1), 0x3000000);
    ck_assert_int_eq(prop_u32(buf, "/chosen", "linux,initrd-end", 1), 0x3001000);
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/psci"), "method", NULL), "hvc");
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/cpus/cpu@0"), "enable-method", NULL),
                     "psci");
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/intc@fef00000"), "compatible", NULL),
                     "arm,gic-v3");
    ck_assert_int_eq(prop_u32(buf, "/intc@fef00000", "#interrupt-cells", 0), 3);
    ck_assert_uint_eq((uint32_t)prop_u32(buf, "/intc@fef00000", "reg", 5), 0xfef20000u);   /* GICR */
    ck_assert_int_eq(prop_u32(buf, "/timer", "interrupts", 1), 13);
    ck_assert_int_eq(prop_u32(buf, "/uart@fe000000", "interrupts", 1), 4);
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/virtio_mmio@d0000000"),
                                 "compatible", NULL), "virtio,mmio");
    ck_assert_int_eq(prop_u32(buf, "/virtio_mmio@d0000000", "interrupts", 1), 5);
    ck_assert_int_eq(prop_u32(buf, "/memory@0", "reg", 3), (int)RAM);
    ck_assert_int_eq(prop_u32(buf, "/cpus", "tsc-frequency-khz", 0), 62500);
}
END_TEST

START_TEST(fdt_gicv2_and_errors)
{
    static uint8_t buf[MEMMAP_FDT_MAX];
    struct machine_config mc = { .ram_size = RAM, .ndevices = 1 };
    mc.devices[0] = (struct machine_device){ .kind = "uart8250", .space = BUS_MMIO,
                                             .base = MEMMAP_ARM64_SERIAL_BASE, .irq = 4 };
    struct fdt_arm64_config cfg = { .mc = &mc, .cmdline = "", .gic_version = 2 };
    ck_assert_int_eq(fdt_build_arm64(buf, sizeof(buf), &cfg, err, sizeof(err)), 0);
    ck_assert_str_eq(fdt_getprop(buf, fdt_path_offset(buf, "/intc@fef00000"), "compatible", NULL),
                     "arm,cortex-a15-gic");
    ck_assert_uint_eq((uint32_t)prop_u32(buf, "/intc@fef00000", "reg", 5), 0xfef10000u);   /* GICC */
    /* A tree that does not fit its area: -ENOSPC and a message, not a truncated tree. */
    ck_assert_int_eq(fdt_build_arm64(buf, 256, &cfg, err, sizeof(err)), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(err, "device tree: larger than its area"));
    mc.devices[0].space = BUS_PIO;
    ck_assert_int_eq(fdt_build_arm64(buf, sizeof(buf), &cfg, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "the arm64 machine has no port space"));
    cfg.gic_version = 4;
    ck_assert_int_eq(fdt_build_arm64(buf, sizeof(buf), &cfg, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "GIC version 4 is not 2 or 3"));
}
END_TEST

static Suite *loader_arm64_suite(void)
{
    Suite *s = suite_create("loader_arm64");
    TCase *tc = tcase_create("loader_arm64");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, loads_image_at_2m_plus_text_offset_and_zeroes_bss);
    tcase_add_test(tc, initrd_goes_page_aligned_at_the_top_of_ram);
    tcase_add_test(tc, wrong_magic_is_refused);
    tcase_add_test(tc, truncated_header_is_refused);
    tcase_add_test(tc, image_size_beyond_ram_is_refused);
    tcase_add_test(tc, bad_header_fields_are_refused);
    tcase_add_test(tc, initrd_too_large_is_refused);
    tcase_add_test(tc, x86_elf_is_refused_by_the_arm64_elf_loader);
    tcase_add_test(tc, program_asking_for_el2_is_refused);
    tcase_add_test(tc, fdt_describes_the_arm64_machine);
    tcase_add_test(tc, fdt_gicv2_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(loader_arm64_suite());
}
