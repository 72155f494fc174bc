/* ACPI tables for Linux boots (vmm/acpi_build.c) and the AML encoder under them
 * (vmm/acpi_aml.c): encodings checked byte by byte, the table tree checked structurally
 * (checksums, lengths, pointers, one LNRO0005 device per virtio window), and the tables
 * disassembled with ACPICA's iasl (acpica-tools, scripts/deps.sh) as a second parser. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"
#include "vmm/acpi_aml.h"
#include "vmm/acpi_build.h"
#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/loader_linux.h"
#include "vmm/machine.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"

#define GPA 0xe0000ULL

static uint8_t buf[0x10000];
static size_t used;
static char err[256];

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static const struct acpi_mmio_device three[] = {
    { 0xd0000000, 0x1000, 5 }, { 0xd0001000, 0x1000, 6 }, { 0xd0002000, 0x1000, 7 },
};

static struct acpi_config config(const struct acpi_mmio_device *v, unsigned n)
{
    return (struct acpi_config){
        .lapic_base = MEMMAP_LAPIC_BASE, .ioapic_base = MEMMAP_IOAPIC_BASE,
        .ioapic_pins = MEMMAP_IOAPIC_PINS, .serial_port = 0x3f8, .serial_gsi = 4,
        .virtio = v, .nvirtio = n,
    };
}

/* The table at guest address gpa, checked to lie inside what acpi_build wrote. */
static const uint8_t *table_at(uint64_t gpa, const char *sig)
{
    ck_assert_uint_ge(gpa, GPA);
    ck_assert_uint_le(gpa + 36, GPA + used);
    const uint8_t *t = buf + (gpa - GPA);
    ck_assert_msg(!memcmp(t, sig, 4), "table at %#llx is not %s", (unsigned long long)gpa, sig);
    ck_assert_uint_le(gpa + get32(t + 4), GPA + used);
    ck_assert_msg(acpi_checksum(t, get32(t + 4)) == 0, "%s checksum", sig);
    return t;
}

static size_t count(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    size_t c = 0;
    for (size_t i = 0; i + m <= n; i++)
        c += !memcmp(hay + i, needle, m);
    return c;
}

static const uint8_t *dsdt_of(void)
{
    const uint8_t *xsdt = table_at(get64(buf + 24), "XSDT");
    const uint8_t *fadt = table_at(get64(xsdt + 36), "FACP");
    return table_at(get64(fadt + 140), "DSDT");
}

/* ---- AML encoder --------------------------------------------------------------------- */

/* Decodes a PkgLength the way an AML interpreter does (ACPI 20.2.4). */
static size_t pkglength_decode(const uint8_t *p, size_t *nbytes)
{
    size_t n = (size_t)(p[0] >> 6) + 1;
    *nbytes = n;
    if (n == 1)
        return p[0] & 0x3f;
    size_t v = p[0] & 0x0f;
    for (size_t i = 1; i < n; i++)
        v |= (size_t)p[i] << (4 + 8 * (i - 1));
    return v;
}

START_TEST(pkglength_counts_itself_at_every_size_boundary)
{
    static const size_t bodies[] = { 0, 1, 61, 62, 63, 64, 4092, 4093, 4094, 4095,
                                     (1u << 20) - 4, (1u << 20) - 3, (1u << 28) - 5 };
    uint8_t enc[4];
    size_t n;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t len = aml_pkglength_encode(bodies[i], enc);
        ck_assert_uint_ge(len, 1);
        ck_assert_uint_eq(pkglength_decode(enc, &n), bodies[i] + len);
        ck_assert_uint_eq(n, len);
    }
    ck_assert_uint_eq(aml_pkglength_encode(62, enc), 1);
    ck_assert_uint_eq(enc[0], 0x3f);
    ck_assert_uint_eq(aml_pkglength_encode(63, enc), 2);
    ck_assert_uint_eq(enc[0], 0x41);                    /* 65 = 0x41: lead 0x40 | 1 */
    ck_assert_uint_eq(enc[1], 0x04);
    ck_assert_uint_eq(aml_pkglength_encode(1u << 28, enc), 0);
}
END_TEST

START_TEST(names_integers_strings_and_eisa_ids)
{
    uint8_t b[64];
    struct aml a;

    aml_init(&a, b, sizeof(b));
    aml_namestring(&a, "\\_SB_");
    aml_namestring(&a, "\\_SB_.VR0");
    aml_namestring(&a, "A.B.C");
    ck_assert_int_eq(aml_finish(&a), 0);
    static const uint8_t names[] = { 0x5c, '_', 'S', 'B', '_',
                                     0x5c, 0x2e, '_', 'S', 'B', '_', 'V', 'R', '0', '_',
                                     0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_',
                                     'C', '_', '_', '_' };
    ck_assert_uint_eq(a.len, sizeof(names));
    ck_assert_mem_eq(b, names, sizeof(names));

    aml_init(&a, b, sizeof(b));
    aml_integer(&a, 0);
    aml_integer(&a, 1);
    aml_integer(&a, 0x12);
    aml_integer(&a, 0x1234);
    aml_integer(&a, 0xd0000000);
    aml_integer(&a, 0x100000000ULL);
    aml_string(&a, "LNRO0005");
    aml_eisaid(&a, "PNP0501");
    ck_assert_int_eq(aml_finish(&a), 0);
    static const uint8_t vals[] = { 0x00, 0x01, 0x0a, 0x12, 0x0b, 0x34, 0x12,
                                    0x0c, 0, 0, 0, 0xd0, 0x0e, 0, 0, 0, 0, 1, 0, 0, 0,
                                    0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0,
                                    0x0c, 0x41, 0xd0, 0x05, 0x01 };  /* EisaId = 0x0105D041 */
    ck_assert_uint_eq(a.len, sizeof(vals));
    ck_assert_mem_eq(b, vals, sizeof(vals));
}
END_TEST

START_TEST(malformed_names_and_ids_are_refused)
{
    static const char *bad_names[] = { "1ABC", "ABCDE", "ab", "A..B", "A.", "A-B" };
    static const char *bad_ids[] = { "PNP050", "pnp0501", "PNP05G1", "P1P0501" };
    uint8_t b[64];
    struct aml a;

    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        aml_init(&a, b, sizeof(b));
        aml_namestring(&a, bad_names[i]);
        ck_assert_msg(aml_finish(&a) == -EINVAL, "name '%s' accepted", bad_names[i]);
    }
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        aml_init(&a, b, sizeof(b));
        aml_eisaid(&a, bad_ids[i]);
        ck_assert_msg(aml_finish(&a) == -EINVAL, "EISA ID '%s' accepted", bad_ids[i]);
    }
}
END_TEST

START_TEST(device_package_length_covers_its_contents)
{
    uint8_t b[512], crs[32];
    struct aml a, r;

    aml_init(&r, crs, sizeof(crs));
    aml_res_mem32_fixed(&r, 0xd0000000, 0x1000, 1);
    aml_res_interrupt(&r, 5, 1, 0, 0);
    aml_res_end(&r);
    static const uint8_t want_crs[] = { 0x86, 9, 0, 1, 0, 0, 0, 0xd0, 0, 0x10, 0, 0,
                                        0x89, 6, 0, 0x01, 1, 5, 0, 0, 0, 0x79, 0 };
    ck_assert_uint_eq(r.len, sizeof(want_crs));
    ck_assert_mem_eq(crs, want_crs, sizeof(want_crs));

    aml_init(&a, b, sizeof(b));
    size_t dev = aml_device_open(&a, "VR00");
    aml_name(&a, "_CRS");
    aml_buffer(&a, crs, r.len);
    /* Padding past 63 bytes makes the Device's PkgLength take two bytes. */
    for (int i = 0; i < 6; i++) {
        aml_name(&a, "PADX");
        aml_integer(&a, 0x12345678);
    }
    aml_close(&a, dev);
    ck_assert_int_eq(aml_finish(&a), 0);
    ck_assert_uint_eq(b[0], 0x5b);
    ck_assert_uint_eq(b[1], 0x82);
    size_t n, len = pkglength_decode(b + 2, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(2 + len, a.len);                  /* PkgLength runs to the end */
    ck_assert_mem_eq(b + 2 + n, "VR00", 4);
    ck_assert_uint_eq(b[2 + n + 4], 0x08);              /* NameOp _CRS */
    ck_assert_mem_eq(b + 2 + n + 5, "_CRS", 4);
    ck_assert_uint_eq(b[2 + n + 9], 0x11);              /* BufferOp */
    ck_assert_uint_eq(b[2 + n + 10], 1 + 2 + sizeof(want_crs));   /* PkgLength, ByteConst */
    ck_assert_uint_eq(b[2 + n + 11], 0x0a);
    ck_assert_uint_eq(b[2 + n + 12], sizeof(want_crs));
    ck_assert_mem_eq(b + 2 + n + 13, want_crs, sizeof(want_crs));
}
END_TEST

START_TEST(encoder_overflow_is_reported_not_written_past)
{
    uint8_t b[16] = { 0 };
    struct aml a;

    aml_init(&a, b, 8);
    size_t dev = aml_device_open(&a, "VR00");
    aml_string(&a, "a long string that does not fit");
    aml_close(&a, dev);
    ck_assert_int_eq(aml_finish(&a), -ENOSPC);
    ck_assert_uint_le(a.len, 8);
    for (int i = 8; i < 16; i++)
        ck_assert_uint_eq(b[i], 0);
}
END_TEST

/* ---- tables ---------------------------------------------------------------------------- */

START_TEST(rsdp_xsdt_fadt_madt_dsdt_chain_with_checksums)
{
    struct acpi_config c = config(three, 3);

    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), 0);
    ck_assert_mem_eq(buf, "RSD PTR ", 8);
    ck_assert_uint_eq(acpi_checksum(buf, 20), 0);
    ck_assert_uint_eq(acpi_checksum(buf, 36), 0);
    ck_assert_uint_eq(buf[15], 2);                      /* revision 2 */
    ck_assert_uint_eq(get32(buf + 20), 36);

    const uint8_t *xsdt = table_at(get64(buf + 24), "XSDT");
    ck_assert_uint_eq(get32(xsdt + 4), 36 + 2 * 8);
    const uint8_t *fadt = table_at(get64(xsdt + 36), "FACP");
    const uint8_t *madt = table_at(get64(xsdt + 44), "APIC");

    ck_assert_uint_eq(get32(fadt + 4), 276);
    ck_assert_uint_eq(fadt[8], 6);
    ck_assert_uint_ne(get32(fadt + 112) & (1u << 20), 0);     /* HW_REDUCED_ACPI */
    ck_assert_uint_eq(get32(fadt + 40), 0);                    /* DSDT only via X_DSDT */
    const uint8_t *dsdt = table_at(get64(fadt + 140), "DSDT");
    ck_assert_uint_eq(dsdt[8], 2);

    /* MADT: LAPIC address, local APIC 0 enabled, the I/O APIC at GSI base 0. */
    ck_assert_uint_eq(get32(madt + 36), MEMMAP_LAPIC_BASE);
    int lapic = 0, ioapic = 0;
    for (const uint8_t *e = madt + 44; e < madt + get32(madt + 4); e += e[1]) {
        ck_assert_uint_ge(e[1], 2);
        if (e[0] == 0) {
            lapic++;
            ck_assert_uint_eq(e[3], 0);
            ck_assert_uint_eq(get32(e + 4) & 1, 1);
        } else if (e[0] == 1) {
            ioapic++;
            ck_assert_uint_eq(get32(e + 4), MEMMAP_IOAPIC_BASE);
            ck_assert_uint_eq(get32(e + 8), 0);
        }
    }
    ck_assert_int_eq(lapic, 1);
    ck_assert_int_eq(ioapic, 1);
    /* Everything lies inside the area, RSDP first. */
    ck_assert_uint_le(used, sizeof(buf));
    ck_assert_uint_eq((size_t)(dsdt - buf) + get32(dsdt + 4), used);
}
END_TEST

START_TEST(dsdt_has_one_lnro0005_per_window_with_its_base_and_gsi)
{
    for (unsigned n = 0; n <= 3; n++) {
        struct acpi_config c = config(three, n);
        ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), 0);
        const uint8_t *dsdt = dsdt_of();
        size_t len = get32(dsdt + 4);
        ck_assert_uint_eq(count(dsdt, len, "LNRO0005", 8), n);
        for (unsigned i = 0; i < n; i++) {
            uint8_t mem[12] = { 0x86, 9, 0, 1 }, irq[9] = { 0x89, 6, 0, 0x01, 1 };
            memcpy(mem + 4, &(uint32_t){ (uint32_t)three[i].base }, 4);
            memcpy(mem + 8, &(uint32_t){ 0x1000 }, 4);
            memcpy(irq + 5, &(uint32_t){ three[i].gsi }, 4);
            ck_assert_uint_eq(count(dsdt, len, mem, sizeof(mem)), 1);
            ck_assert_uint_eq(count(dsdt, len, irq, sizeof(irq)), 1);   /* level, high */
        }
        /* COM1: EisaId PNP0501, IO 0x3f8 length 8, edge-triggered IRQ 4. */
        static const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };
        static const uint8_t io[] = { 0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8 };
        static const uint8_t irq4[] = { 0x89, 6, 0, 0x03, 1, 4, 0, 0, 0 };
        ck_assert_uint_eq(count(dsdt, len, pnp0501, sizeof(pnp0501)), 1);
        ck_assert_uint_eq(count(dsdt, len, io, sizeof(io)), 1);
        ck_assert_uint_eq(count(dsdt, len, irq4, sizeof(irq4)), 1);
    }
    struct acpi_config c = config(three, 3);
    c.serial_port = -1;
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), 0);
    ck_assert_uint_eq(count(dsdt_of(), get32(dsdt_of() + 4), "COM1", 4), 0);
}
END_TEST

START_TEST(sixteen_windows_fit_and_the_dsdt_package_grows)
{
    struct acpi_mmio_device v[16];
    for (unsigned i = 0; i < 16; i++)
        v[i] = (struct acpi_mmio_device){ 0xd0000000 + 0x1000ULL * i, 0x1000, 5 + i };
    struct acpi_config c = config(v, 16);
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), 0);
    const uint8_t *dsdt = dsdt_of();
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), "LNRO0005", 8), 16);
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), "VR0F", 4), 1);
    /* Scope(\_SB) right after the header, its PkgLength spanning the rest of the table. */
    ck_assert_uint_eq(dsdt[36], 0x10);
    size_t n, len = pkglength_decode(dsdt + 37, &n);
    ck_assert_uint_eq(36 + 1 + len, get32(dsdt + 4));
    ck_assert_uint_le(used, MEMMAP_ACPI_MAX);
}
END_TEST

START_TEST(devices_the_tables_cannot_describe_are_refused)
{
    struct acpi_mmio_device high = { 0x100000000ULL, 0x1000, 5 };
    struct acpi_mmio_device gsi = { 0xd0000000, 0x1000, 24 };
    struct acpi_config c = config(&high, 1);

    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "0x100000000") && strstr(err, "4 GiB"), "%s", err);
    c = config(&gsi, 1);
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "GSI 24"), "%s", err);
    c = config(three, ACPI_MAX_MMIO_DEVICES + 1);
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), -EINVAL);
    c = config(three, 3);
    c.serial_gsi = 99;
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "serial GSI 99"), "%s", err);
}
END_TEST

START_TEST(too_small_an_area_is_enospc_and_nothing_past_it_is_written)
{
    struct acpi_config c = config(three, 3);
    size_t need;

    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &need, err, sizeof(err)), 0);
    for (size_t cap = 0; cap < need; cap += 7) {
        memset(buf, 0xa5, sizeof(buf));
        ck_assert_int_eq(acpi_build(buf, cap, GPA, &c, &used, err, sizeof(err)), -ENOSPC);
        size_t i = cap;
        while (i < sizeof(buf) && buf[i] == 0xa5)
            i++;
        ck_assert_msg(i == sizeof(buf), "cap %zu: byte %zu written", cap, i);
    }
    ck_assert_int_eq(acpi_build(buf, need, GPA, &c, &used, err, sizeof(err)), 0);
    ck_assert_uint_eq(used, need);
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), 0xfffff000ULL, &c, &used, err, sizeof(err)),
                     -EINVAL);
}
END_TEST

/* The tables of a real machine config land at MEMMAP_ACPI_ADDR, where a BIOS-area scan
 * (16-byte steps from 0xe0000) finds the RSDP, and the zero page points at it. */
START_TEST(install_puts_rsdp_in_the_bios_area_and_the_zero_page_points_at_it)
{
    struct guest_mem mem;
    struct machine_config mc = { .ram_size = 16 << 20 };

    ck_assert_int_eq(guest_mem_init(&mem, mc.ram_size), 0);
    mc.devices[mc.ndevices++] = (struct machine_device){ "uart8250", "", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    mc.devices[mc.ndevices++] = (struct machine_device){ "i8042", "", 0x60, -1, BUS_PIO, .nwindows = 0 };
    mc.devices[mc.ndevices++] = (struct machine_device){ "virtio-blk", "", 0xd0000000, 5,
                                                          BUS_MMIO, .nwindows = 0 };
    ck_assert_int_eq(acpi_install(&mem, &mc, err, sizeof(err)), 0);
    const uint8_t *ram = guest_mem_host(&mem, 0, 1 << 20);
    uint64_t found = 0;
    for (uint64_t a = 0xe0000; a < 0x100000 && !found; a += 16)
        if (!memcmp(ram + a, "RSD PTR ", 8) && acpi_checksum(ram + a, 20) == 0)
            found = a;
    ck_assert_uint_eq(found, MEMMAP_ACPI_ADDR);
    memcpy(buf, ram + MEMMAP_ACPI_ADDR, sizeof(buf));
    used = MEMMAP_ACPI_MAX;
    const uint8_t *dsdt = dsdt_of();
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), "LNRO0005", 8), 1);
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), "COM1", 4), 1);

    ck_assert_int_eq(loader_linux_set_rsdp(&mem, MEMMAP_ACPI_ADDR), 0);
    ck_assert_uint_eq(get64(ram + LINUX_BOOT_PARAMS_ADDR + 0x70), MEMMAP_ACPI_ADDR);
    guest_mem_destroy(&mem);
}
END_TEST

/* The FADT says "no CMOS RTC" (IAPC_BOOT_ARCH bit 5, no CENTURY register) unless the machine
 * has the cmos-rtc at port 0x70: Linux then registers rtc_cmos and /dev/rtc0. */
static const uint8_t *installed_fadt(struct guest_mem *mem, struct machine_config *mc)
{
    ck_assert_int_eq(acpi_install(mem, mc, err, sizeof(err)), 0);
    memcpy(buf, guest_mem_host(mem, MEMMAP_ACPI_ADDR, MEMMAP_ACPI_MAX), sizeof(buf));
    used = MEMMAP_ACPI_MAX;
    return table_at(get64(table_at(get64(buf + 24), "XSDT") + 36), "FACP");
}

START_TEST(fadt_reports_the_cmos_rtc_only_where_the_machine_has_it)
{
    struct guest_mem mem;
    struct machine_config mc = { .ram_size = 16 << 20 };

    ck_assert_int_eq(guest_mem_init(&mem, mc.ram_size), 0);
    mc.devices[mc.ndevices++] = (struct machine_device){ "uart8250", "", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    mc.devices[mc.ndevices++] = (struct machine_device){ "i8042", "", 0x60, -1, BUS_PIO, .nwindows = 0 };
    const uint8_t *fadt = installed_fadt(&mem, &mc);
    ck_assert_uint_eq(fadt[109] & (1u << 5), 1u << 5);         /* CMOS_RTC_NOT_PRESENT */
    ck_assert_uint_eq(fadt[108], 0);                           /* no CENTURY register */
    static const uint8_t pnp0b00[] = { 0x0c, 0x41, 0xd0, 0x0b, 0x00 };
    static const uint8_t io70[] = { 0x47, 1, 0x70, 0, 0x70, 0, 1, 2 };
    const uint8_t *dsdt = dsdt_of();
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), pnp0b00, sizeof(pnp0b00)), 0);
    mc.devices[mc.ndevices++] = (struct machine_device){ "cmos-rtc", "", 0x70, -1, BUS_PIO, .nwindows = 0 };
    fadt = installed_fadt(&mem, &mc);
    ck_assert_uint_eq(fadt[109] & (1u << 5), 0);
    ck_assert_uint_eq(fadt[109] & (1u << 2), 1u << 2);         /* still no VGA */
    ck_assert_uint_eq(fadt[108], 0x32);
    /* and the DSDT has it as PNP0B00 at ports 0x70-0x71, with no interrupt resource */
    dsdt = dsdt_of();
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), pnp0b00, sizeof(pnp0b00)), 1);
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), io70, sizeof(io70)), 1);
    ck_assert_uint_eq(count(dsdt, get32(dsdt + 4), (const uint8_t[]){ 0x89, 6 }, 2), 1);
    guest_mem_destroy(&mem);
}
END_TEST

/* ---- ACPICA's disassembler as a second opinion ---------------------------------------- */

static int have_iasl(void)
{
    return system("command -v iasl >/dev/null 2>&1") == 0;
}

static void write_table(const char *name, const uint8_t *t)
{
    FILE *f = fopen(scratch_path(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(t, 1, get32(t + 4), f), get32(t + 4));
    fclose(f);
}

static char *slurp(const char *path)
{
    static char text[1 << 16];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing", path);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        c++;
    return c;
}

START_TEST(iasl_disassembles_every_table)
{
    char cmd[512];

    /* make deps installs iasl: without it this check fails, it does not pass quietly. */
    ck_assert_msg(have_iasl(), "iasl not installed (acpica-tools; run make deps)");
    struct acpi_config c = config(three, 3);
    c.cmos_rtc = 1;
    ck_assert_int_eq(acpi_build(buf, sizeof(buf), GPA, &c, &used, err, sizeof(err)), 0);
    const uint8_t *xsdt = table_at(get64(buf + 24), "XSDT");
    const uint8_t *fadt = table_at(get64(xsdt + 36), "FACP");
    write_table("xsdt.dat", xsdt);
    write_table("facp.dat", fadt);
    write_table("apic.dat", table_at(get64(xsdt + 44), "APIC"));
    write_table("dsdt.dat", table_at(get64(fadt + 140), "DSDT"));
    /* (iasl -d takes no bare RSDP: its checksums and pointer are checked above.) */
    static const char *names[] = { "xsdt", "facp", "apic", "dsdt" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >%s.log 2>&1", scratch_dir,
                 names[i], names[i]);
        ck_assert_msg(system(cmd) == 0, "iasl -d %s.dat failed", names[i]);
        char dslname[16];
        snprintf(dslname, sizeof(dslname), "%s.dsl", names[i]);
        const char *dsl = slurp(scratch_path(dslname));
        ck_assert_msg(!strstr(dsl, "**** Unknown") && !strstr(dsl, "Invalid"),
                      "%s.dsl: %.1500s", names[i], dsl);
    }
    const char *dsl = slurp(scratch_path("dsdt.dsl"));
    ck_assert_uint_eq(count_str(dsl, "Name (_HID, \"LNRO0005\")"), 3);
    ck_assert_uint_eq(count_str(dsl, "Name (_HID, EisaId (\"PNP0501\")"), 1);
    ck_assert_uint_eq(count_str(dsl, "Memory32Fixed (ReadWrite,"), 3);
    ck_assert_uint_eq(count_str(dsl, "Interrupt (ResourceConsumer, Level, ActiveHigh, "
                                     "Exclusive, ,, )"), 3);
    ck_assert_uint_eq(count_str(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, "
                                     "Exclusive, ,, )"), 1);
    ck_assert_msg(strstr(dsl, "0xD0002000,") && strstr(dsl, "0x00000007,"), "%.1500s", dsl);
    const char *fdsl = slurp(scratch_path("facp.dsl"));
    ck_assert_msg(strstr(fdsl, "Hardware Reduced (V5) : 1"), "%.1500s", fdsl);
    ck_assert_msg(strstr(fdsl, "CMOS RTC Not Present (V5) : 0") &&
                  strstr(fdsl, "RTC Century Index : 32"),
                  "%.1500s", fdsl);
    dsl = slurp(scratch_path("dsdt.dsl"));         /* (slurp's buffer is shared) */
    ck_assert_uint_eq(count_str(dsl, "Name (_HID, EisaId (\"PNP0B00\")"), 1);
    ck_assert_msg(strstr(dsl, "0x0070,             // Range Minimum"), "%.1500s", dsl);
    const char *mdsl = slurp(scratch_path("apic.dsl"));
    ck_assert_msg(strstr(mdsl, "Address : FEC00000"), "%.1500s", mdsl);

    /* acpiexec loads the namespace as a kernel would and evaluates a _CRS (5 devices: COM1,
     * the RTC, three virtio windows). */
    snprintf(cmd, sizeof(cmd), "cd %s && timeout 30 acpiexec -b 'evaluate \\_SB.VR02._CRS' "
             "facp.dat dsdt.dat apic.dat >exec.log 2>&1", scratch_dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *log = slurp(scratch_path("exec.log"));
    ck_assert_msg(strstr(log, "with   5 Devices") &&
                  strstr(log, "1 ACPI AML tables successfully acquired and loaded") &&
                  strstr(log, "86 09 00 01 00 20 00 D0 00 10 00 00 89 06 00 01") &&
                  !strstr(log, "Error") && !strstr(log, "Warning"), "%.1500s", log);
}
END_TEST

static Suite *acpi_suite(void)
{
    Suite *s = suite_create("acpi");
    TCase *aml = tcase_create("aml");
    tcase_add_test(aml, pkglength_counts_itself_at_every_size_boundary);
    tcase_add_test(aml, names_integers_strings_and_eisa_ids);
    tcase_add_test(aml, malformed_names_and_ids_are_refused);
    tcase_add_test(aml, device_package_length_covers_its_contents);
    tcase_add_test(aml, encoder_overflow_is_reported_not_written_past);
    suite_add_tcase(s, aml);
    TCase *tables = tcase_create("tables");
    tcase_add_test(tables, rsdp_xsdt_fadt_madt_dsdt_chain_with_checksums);
    tcase_add_test(tables, dsdt_has_one_lnro0005_per_window_with_its_base_and_gsi);
    tcase_add_test(tables, sixteen_windows_fit_and_the_dsdt_package_grows);
    tcase_add_test(tables, devices_the_tables_cannot_describe_are_refused);
    tcase_add_test(tables, too_small_an_area_is_enospc_and_nothing_past_it_is_written);
    tcase_add_test(tables, install_puts_rsdp_in_the_bios_area_and_the_zero_page_points_at_it);
    tcase_add_test(tables, fadt_reports_the_cmos_rtc_only_where_the_machine_has_it);
    suite_add_tcase(s, tables);
    TCase *iasl = tcase_create("iasl");
    tcase_add_checked_fixture(iasl, scratch_setup, scratch_teardown);
    tcase_set_timeout(iasl, 60);
    tcase_add_test(iasl, iasl_disassembles_every_table);
    suite_add_tcase(s, iasl);
    return s;
}

int main(void)
{
    return check_run(acpi_suite());
}
