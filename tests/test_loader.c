/* The PVH ELF loader: good images load where they say, and every malformed image is
 * refused with a message naming the problem, before anything is written. */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/loader_linux.h"
#include "vmm/loader_pvh.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"

#define RAM (16u << 20)

struct img { uint8_t b[8192]; size_t len; };

/* ELF64: header, 3 program headers (LOAD code, LOAD second, NOTE), note, code bytes. */
struct elf_opts {
    uint16_t machine;
    uint64_t load_paddr, load_memsz, second_paddr, second_memsz;
    int note_type;      /* 18 = PVH; 0 = no note */
    uint32_t descsz;
    uint64_t entry;
};

static struct elf_opts defaults(void)
{
    return (struct elf_opts){ EM_X86_64, 0x100000, 0x1000, 0x200000, 0x2000, 18, 8, 0x100010 };
}

static void build(struct img *im, const struct elf_opts *o)
{
    Elf64_Ehdr *eh = (Elf64_Ehdr *)im->b;
    Elf64_Phdr *ph = (Elf64_Phdr *)(im->b + sizeof(*eh));
    size_t note_off = 0x200, code_off = 0x1000;

    memset(im, 0, sizeof(*im));
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = o->machine;
    eh->e_version = EV_CURRENT;
    eh->e_phoff = sizeof(*eh);
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(*ph);
    eh->e_phnum = 3;
    ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = code_off, .p_paddr = o->load_paddr,
                          .p_vaddr = o->load_paddr, .p_filesz = 0x100, .p_memsz = o->load_memsz };
    ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = code_off, .p_paddr = o->second_paddr,
                          .p_filesz = 0x10, .p_memsz = o->second_memsz };
    ph[2] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = 12 + 4 + 8,
                          .p_align = 4 };
    uint32_t note[3] = { 4, o->descsz, (uint32_t)o->note_type };
    memcpy(im->b + note_off, note, 12);
    memcpy(im->b + note_off + 12, "Xen", 4);
    memcpy(im->b + note_off + 16, &o->entry, 8);
    for (int i = 0; i < 0x100; i++)
        im->b[code_off + i] = (uint8_t)(0x90 + (i & 1));
    im->len = code_off + 0x100;
}

static int load(const struct img *im, struct guest_mem *m, struct pvh_image *pi, char *err)
{
    return loader_pvh_load(m, im->b, im->len, pi, err, 256);
}

START_TEST(good_image_loads)
{
    struct img im;
    struct elf_opts o = defaults();
    struct guest_mem m;
    struct pvh_image pi;
    char err[256] = "";
    uint8_t byte;

    build(&im, &o);
    ck_assert_int_eq(guest_mem_init(&m, RAM), 0);
    ck_assert_msg(load(&im, &m, &pi, err) == 0, "%s", err);
    ck_assert_uint_eq(pi.entry, 0x100010);
    ck_assert_uint_eq(pi.load_start, 0x100000);
    ck_assert_uint_eq(pi.load_end, 0x202000);
    guest_mem_read(&m, 0x100001, &byte, 1);
    ck_assert_int_eq(byte, 0x91);
    guest_mem_read(&m, 0x100200, &byte, 1);      /* bss part zeroed */
    ck_assert_int_eq(byte, 0);
    guest_mem_destroy(&m);
}
END_TEST

START_TEST(four_byte_desc_accepted)
{
    struct img im;
    struct elf_opts o = defaults();
    struct guest_mem m;
    struct pvh_image pi;
    char err[256] = "";

    o.descsz = 4;
    build(&im, &o);
    ck_assert_int_eq(guest_mem_init(&m, RAM), 0);
    ck_assert_msg(load(&im, &m, &pi, err) == 0, "%s", err);
    ck_assert_uint_eq(pi.entry, 0x100010);
    guest_mem_destroy(&m);
}
END_TEST

/* Each bad image must fail with `want_rc` and an error containing `want`, leaving RAM
 * untouched. */
static void expect_refused(struct img *im, int want_rc, const char *want)
{
    struct guest_mem m;
    struct pvh_image pi;
    char err[256] = "";
    uint8_t byte = 0;

    ck_assert_int_eq(guest_mem_init(&m, RAM), 0);
    int rc = load(im, &m, &pi, err);
    ck_assert_msg(rc == want_rc, "rc %d, want %d (%s)", rc, want_rc, err);
    ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
    guest_mem_read(&m, 0x100001, &byte, 1);
    ck_assert_int_eq(byte, 0);
    guest_mem_destroy(&m);
}

START_TEST(not_elf)
{
    struct img im = { .len = 64 };
    memcpy(im.b, "#!/bin/sh\necho hi\n", 18);
    expect_refused(&im, -ENOEXEC, "not an ELF file");
}
END_TEST

START_TEST(empty_file)
{
    struct img im = { .len = 0 };
    expect_refused(&im, -ENOEXEC, "not an ELF file");
}
END_TEST

START_TEST(truncated)
{
    struct img im;
    struct elf_opts o = defaults();
    build(&im, &o);
    im.len = 0x1000 + 0x10;     /* the code segment's bytes are cut off */
    expect_refused(&im, -ENOEXEC, "past the end of the file");
    im.len = 40;                /* inside the ELF header */
    expect_refused(&im, -ENOEXEC, "truncated ELF");
    im.len = sizeof(Elf64_Ehdr) + 10;   /* inside the program headers */
    expect_refused(&im, -ENOEXEC, "program header 0");
}
END_TEST

START_TEST(wrong_machine)
{
    struct img im;
    struct elf_opts o = defaults();
    o.machine = EM_AARCH64;
    build(&im, &o);
    expect_refused(&im, -ENOEXEC, "ELF machine is 183");
}
END_TEST

START_TEST(segment_outside_ram)
{
    struct img im;
    struct elf_opts o = defaults();
    o.second_paddr = RAM - 0x1000;      /* memsz 0x2000 runs past the end */
    build(&im, &o);
    expect_refused(&im, -ERANGE, "outside RAM");
    o = defaults();
    o.load_paddr = 0x1000;              /* below 1 MiB: would clobber boot data */
    o.entry = 0x1010;
    build(&im, &o);
    expect_refused(&im, -ERANGE, "outside RAM");
}
END_TEST

START_TEST(segments_overlap)
{
    struct img im;
    struct elf_opts o = defaults();
    o.second_paddr = 0x100800;
    build(&im, &o);
    expect_refused(&im, -ENOEXEC, "overlaps");
}
END_TEST

START_TEST(no_pvh_note)
{
    struct img im;
    struct elf_opts o = defaults();
    o.note_type = 1;
    build(&im, &o);
    expect_refused(&im, -ENOEXEC, "no PVH entry note");
}
END_TEST

START_TEST(entry_outside_segments)
{
    struct img im;
    struct elf_opts o = defaults();
    o.entry = 0x500000;
    build(&im, &o);
    expect_refused(&im, -ENOEXEC, "not inside a loaded segment");
}
END_TEST

START_TEST(note_sizes_hostile)
{
    struct img im;
    struct elf_opts o = defaults();
    build(&im, &o);
    uint32_t huge = 0xfffffff0u;
    memcpy(im.b + 0x200 + 4, &huge, 4);     /* descsz runs past the segment */
    expect_refused(&im, -ENOEXEC, "run past the note segment");
}
END_TEST

/* A vmlinux with the PVH note given as --kernel: Linux's PVH entry reads the initrd from the
 * first module, the RSDP from rsdp_paddr, and the memory map keeps the ACPI tables. */
START_TEST(linux_pvh_initrd_and_rsdp_in_start_info)
{
    struct img im;
    struct elf_opts o = defaults();
    struct guest_mem m;
    struct cpu_boot boot;
    char err[256] = "";
    uint8_t rd[5000];
    uint64_t si[8], mod[2], map[18];

    for (size_t i = 0; i < sizeof(rd); i++)
        rd[i] = (uint8_t)(i * 7);
    build(&im, &o);
    ck_assert_int_eq(guest_mem_init(&m, RAM), 0);
    ck_assert_msg(loader_linux_pvh_load_image(&m, im.b, im.len, rd, sizeof(rd), "quiet",
                                              MEMMAP_ACPI_ADDR, &boot, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(boot.mode, CPU_BOOT_PVH32);
    ck_assert_uint_eq(boot.entry, 0x100010);
    ck_assert_uint_eq(boot.arg, MEMMAP_START_INFO_ADDR);
    guest_mem_read(&m, MEMMAP_START_INFO_ADDR, si, sizeof(si));
    ck_assert_uint_eq(si[1] >> 32, 1);                          /* nr_modules */
    ck_assert_uint_eq(si[4], MEMMAP_ACPI_ADDR);                 /* rsdp_paddr */
    guest_mem_read(&m, si[2], mod, sizeof(mod));                /* modlist[0] */
    ck_assert_uint_eq(mod[1], sizeof(rd));
    ck_assert_uint_eq(mod[0] & 0xfff, 0);
    ck_assert_uint_ge(mod[0], 0x202000);                        /* above the kernel */
    ck_assert_uint_le(mod[0] + sizeof(rd), RAM);
    ck_assert_mem_eq(guest_mem_host(&m, mod[0], sizeof(rd)), rd, sizeof(rd));
    /* memmap: one entry holds the ACPI area, reserved (type 2) */
    unsigned n = (unsigned)si[6], acpi = 0;
    ck_assert_uint_le(n, 6);
    guest_mem_read(&m, si[5], map, n * 24);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = map[i * 3], len = map[i * 3 + 1];
        uint32_t type = (uint32_t)map[i * 3 + 2];
        if (a <= MEMMAP_ACPI_ADDR && MEMMAP_ACPI_ADDR < a + len) {
            ck_assert_uint_eq(type, 2);
            acpi = 1;
        }
    }
    ck_assert_int_eq(acpi, 1);
    /* an initrd larger than RAM is refused, naming it */
    static uint8_t huge[RAM];
    ck_assert_int_eq(loader_linux_pvh_load_image(&m, im.b, im.len, huge, sizeof(huge), "",
                                                 0, &boot, err, sizeof(err)), -E2BIG);
    ck_assert_ptr_nonnull(strstr(err, "initrd"));
    guest_mem_destroy(&m);
}
END_TEST

/* A note segment aligned to 8 (as GNU property notes are) holding such a note, 32 bytes
 * with no padding after its 4-byte name, then the PVH note: found (it was refused as
 * "run past the note segment" when the name was padded to 8). */
START_TEST(pvh_note_after_gnu_property_note_in_8_aligned_segment)
{
    struct img im;
    struct elf_opts o = defaults();
    struct guest_mem m;
    struct pvh_image pi;
    char err[256] = "";

    build(&im, &o);
    Elf64_Phdr *ph = (Elf64_Phdr *)(im.b + sizeof(Elf64_Ehdr));
    uint8_t *n = im.b + 0x200;
    uint32_t gnu[3] = { 4, 16, 5 };                 /* NT_GNU_PROPERTY_TYPE_0 */
    uint32_t xen[3] = { 4, 8, 18 };
    memset(n, 0, 64);
    memcpy(n, gnu, 12);
    memcpy(n + 12, "GNU", 4);                       /* desc at 16, 16 bytes: next at 32 */
    memcpy(n + 32, xen, 12);
    memcpy(n + 44, "Xen", 4);
    memcpy(n + 48, &o.entry, 8);
    ph[2].p_filesz = 56;
    ph[2].p_align = 8;
    ck_assert_int_eq(guest_mem_init(&m, RAM), 0);
    ck_assert_msg(load(&im, &m, &pi, err) == 0, "%s", err);
    ck_assert_uint_eq(pi.entry, 0x100010);
    guest_mem_destroy(&m);
}
END_TEST

START_TEST(start_info_written)
{
    struct guest_mem m;
    uint64_t si;
    char err[256];
    uint32_t magic;
    char cmd[16];
    struct pvh_module mod = { MEMMAP_FDT_ADDR, 0x100 };

    ck_assert_int_eq(guest_mem_init(&m, RAM), 0);
    ck_assert_int_eq(loader_pvh_start_info(&m, "a b", &mod, 1, 0, &si, err, sizeof(err)), 0);
    ck_assert_uint_eq(si, MEMMAP_START_INFO_ADDR);
    guest_mem_read(&m, si, &magic, 4);
    ck_assert_uint_eq(magic, 0x336ec578u);
    guest_mem_read(&m, MEMMAP_CMDLINE_ADDR, cmd, 4);
    ck_assert_str_eq(cmd, "a b");
    char big[MEMMAP_CMDLINE_MAX + 10];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ck_assert_int_eq(loader_pvh_start_info(&m, big, NULL, 0, 0, &si, err, sizeof(err)), -E2BIG);
    guest_mem_destroy(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("pvh");
    tcase_add_test(tc, good_image_loads);
    tcase_add_test(tc, four_byte_desc_accepted);
    tcase_add_test(tc, not_elf);
    tcase_add_test(tc, empty_file);
    tcase_add_test(tc, truncated);
    tcase_add_test(tc, wrong_machine);
    tcase_add_test(tc, segment_outside_ram);
    tcase_add_test(tc, segments_overlap);
    tcase_add_test(tc, no_pvh_note);
    tcase_add_test(tc, entry_outside_segments);
    tcase_add_test(tc, note_sizes_hostile);
    tcase_add_test(tc, start_info_written);
    tcase_add_test(tc, linux_pvh_initrd_and_rsdp_in_start_info);
    tcase_add_test(tc, pvh_note_after_gnu_property_note_in_8_aligned_segment);
    suite_add_tcase(s, tc);
    return check_run(s);
}
