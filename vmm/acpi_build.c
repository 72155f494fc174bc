#include "acpi_build.h"
#include "acpi_aml.h"
#include "bus.h"
#include "guest_mem.h"
#include "machine.h"
#include "memmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes and offsets from the ACPI 6.3 specification, chapter 5.2. */
#define RSDP_LEN            36
#define HDR_LEN             36          /* the system description table header */
#define FADT_LEN            276
#define FADT_FLAGS          112
#define FADT_CENTURY        108
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_MINOR_VERSION  131
#define FADT_X_DSDT         140
#define MADT_BODY           8           /* local APIC address + flags */

#define FADT_F_PWR_BUTTON   (1u << 4)   /* power button is not a fixed feature */
#define FADT_F_SLP_BUTTON   (1u << 5)
#define FADT_F_HW_REDUCED   (1u << 20)  /* no PM1/GPE blocks, SCI or legacy PIC */
#define IAPC_VGA_ABSENT     (1u << 2)
#define IAPC_CMOS_RTC_ABSENT (1u << 5)
#define RTC_CENTURY_REGISTER 0x32       /* devices/cmos_rtc.c REG_CENTURY */

#define AML_SLACK           16          /* > 3 nested packages x 3 reserved bytes */

#define MADT_LAPIC          0
#define MADT_IOAPIC         1
#define MADT_LAPIC_NMI      4

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }
static size_t align16(size_t v) { return (v + 15) & ~(size_t)15; }

uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static void set_checksum(uint8_t *t, size_t len, size_t at)
{
    t[at] = 0;
    t[at] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    wr32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "VMLAB ", 6);        /* OEM ID */
    memcpy(t + 16, "VMLAB   ", 8);      /* OEM table ID */
    wr32(t + 24, 1);                    /* OEM revision */
    memcpy(t + 28, "VMLB", 4);          /* creator ID */
    wr32(t + 32, 1);                    /* creator revision */
}

static int check_config(const struct acpi_config *cfg, char *err, size_t errlen)
{
    if (cfg->nvirtio > ACPI_MAX_MMIO_DEVICES) {
        snprintf(err, errlen, "acpi: %u virtio devices, the tables hold at most %d",
                 cfg->nvirtio, ACPI_MAX_MMIO_DEVICES);
        return -EINVAL;
    }
    if (cfg->serial_port >= 0 && cfg->serial_gsi >= cfg->ioapic_pins) {
        snprintf(err, errlen, "acpi: serial GSI %u is past the I/O APIC's %u pins",
                 cfg->serial_gsi, cfg->ioapic_pins);
        return -EINVAL;
    }
    for (unsigned i = 0; i < cfg->nvirtio; i++) {
        const struct acpi_mmio_device *d = &cfg->virtio[i];
        if (d->size == 0 || d->base >= 1ULL << 32 || d->size > (1ULL << 32) - d->base) {
            snprintf(err, errlen, "acpi: virtio window %#llx size %#llx is not within 4 GiB "
                     "(Memory32Fixed)", (unsigned long long)d->base,
                     (unsigned long long)d->size);
            return -EINVAL;
        }
        if (d->gsi >= cfg->ioapic_pins) {
            snprintf(err, errlen, "acpi: virtio window %#llx GSI %u is past the I/O APIC's "
                     "%u pins", (unsigned long long)d->base, d->gsi, cfg->ioapic_pins);
            return -EINVAL;
        }
    }
    return 0;
}

/* A device with _HID, _UID and a ResourceTemplate _CRS. `hid_eisa` selects EisaId() over a
 * string _HID. */
static void dsdt_device(struct aml *a, const char *name, const char *hid, int hid_eisa,
                        unsigned uid, const uint8_t *crs, size_t crs_len)
{
    size_t dev = aml_device_open(a, name);
    aml_name(a, "_HID");
    if (hid_eisa)
        aml_eisaid(a, hid);
    else
        aml_string(a, hid);
    aml_name(a, "_UID");
    aml_integer(a, uid);
    aml_name(a, "_CRS");
    aml_buffer(a, crs, crs_len);
    aml_close(a, dev);
}

/* The DSDT's AML (after the header) into `a`. */
static void dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
    uint8_t crs[64];
    struct aml r;
    char name[12];

    size_t sb = aml_scope_open(a, "\\_SB_");
    if (cfg->serial_port >= 0) {
        aml_init(&r, crs, sizeof(crs));
        aml_res_io16(&r, (uint16_t)cfg->serial_port, 8);
        aml_res_interrupt(&r, cfg->serial_gsi, 0, 0, 0);       /* edge, active-high */
        aml_res_end(&r);
        dsdt_device(a, "COM1", "PNP0501", 1, 0, crs, r.len);
    }
    /* The RTC as PNP0B00 with its two ports and no IRQ (the model raises none): Linux's
     * rtc_cmos binds it through PNP. Without a PNP device Linux registers its platform
     * device with IRQ 8, which a hardware-reduced machine has not mapped, and the probe
     * fails (-EINVAL, measured on Debian's 6.1). */
    if (cfg->cmos_rtc) {
        aml_init(&r, crs, sizeof(crs));
        aml_res_io16(&r, MEMMAP_RTC_PORT, 2);
        aml_res_end(&r);
        dsdt_device(a, "RTC_", "PNP0B00", 1, 0, crs, r.len);
    }
    for (unsigned i = 0; i < cfg->nvirtio; i++) {
        const struct acpi_mmio_device *d = &cfg->virtio[i];
        aml_init(&r, crs, sizeof(crs));
        aml_res_mem32_fixed(&r, (uint32_t)d->base, (uint32_t)d->size, 1);
        aml_res_interrupt(&r, d->gsi, 1, 0, 0);                /* level, active-high */
        aml_res_end(&r);
        snprintf(name, sizeof(name), "VR%02X", i & 0xff);   /* i < ACPI_MAX_MMIO_DEVICES */
        dsdt_device(a, name, "LNRO0005", 0, i, crs, r.len);
    }
    aml_close(a, sb);
}

int acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_config *cfg,
               size_t *used, char *err, size_t errlen)
{
    int rc = check_config(cfg, err, errlen);
    if (rc)
        return rc;

    size_t madt_len = HDR_LEN + MADT_BODY + 8 + 12 + 6;
    size_t o_xsdt = align16(RSDP_LEN);
    size_t xsdt_len = HDR_LEN + 2 * 8;
    size_t o_fadt = align16(o_xsdt + xsdt_len);
    size_t o_madt = align16(o_fadt + FADT_LEN);
    size_t o_dsdt = align16(o_madt + madt_len);

    if (gpa + cap > 1ULL << 32 || cap < o_dsdt + HDR_LEN) {
        snprintf(err, errlen, "acpi: %zu bytes at %#llx cannot hold the tables", cap,
                 (unsigned long long)gpa);
        return gpa + cap > 1ULL << 32 ? -EINVAL : -ENOSPC;
    }
    memset(buf, 0, o_dsdt + HDR_LEN);

    /* DSDT first: its length is the one not known in advance. It is built aside: while a
     * package is open the encoder reserves the longest PkgLength (up to 9 bytes more than
     * the result for three nested packages), and the caller's area need not have that. */
    size_t room = cap - o_dsdt - HDR_LEN;
    uint8_t *aml_buf = malloc(room + AML_SLACK);
    if (!aml_buf)
        return -ENOMEM;
    struct aml a;
    aml_init(&a, aml_buf, room + AML_SLACK);
    dsdt_body(&a, cfg);
    rc = aml_finish(&a);
    if (!rc && a.len > room)
        rc = -ENOSPC;
    if (rc) {
        free(aml_buf);
        snprintf(err, errlen, "acpi: the DSDT for %u virtio devices does not fit in %zu bytes",
                 cfg->nvirtio, cap);
        return rc;
    }
    size_t dsdt_len = HDR_LEN + a.len;
    uint8_t *dsdt = buf + o_dsdt;
    memcpy(dsdt + HDR_LEN, aml_buf, a.len);
    free(aml_buf);
    header(dsdt, "DSDT", (uint32_t)dsdt_len, 2);       /* revision 2: 64-bit integers */
    set_checksum(dsdt, dsdt_len, 9);

    uint8_t *madt = buf + o_madt;
    header(madt, "APIC", (uint32_t)madt_len, 5);
    wr32(madt + HDR_LEN, (uint32_t)cfg->lapic_base);
    wr32(madt + HDR_LEN + 4, 0);        /* no PCAT_COMPAT: hardware-reduced, no 8259s */
    uint8_t *e = madt + HDR_LEN + MADT_BODY;
    e[0] = MADT_LAPIC; e[1] = 8; e[2] = 0; e[3] = 0;    /* processor UID 0, APIC ID 0 */
    wr32(e + 4, 1);                                     /* enabled */
    e += 8;
    e[0] = MADT_IOAPIC; e[1] = 12; e[2] = 0; e[3] = 0;  /* I/O APIC ID 0 (KVM's reset value) */
    wr32(e + 4, (uint32_t)cfg->ioapic_base);
    wr32(e + 8, 0);                                     /* GSI base */
    e += 12;
    e[0] = MADT_LAPIC_NMI; e[1] = 6; e[2] = 0xff;       /* all processors */
    wr16(e + 3, 0);                                     /* conforming polarity/trigger */
    e[5] = 1;                                           /* LINT1 */
    set_checksum(madt, madt_len, 9);

    uint8_t *fadt = buf + o_fadt;
    header(fadt, "FACP", FADT_LEN, 6);
    /* Linux registers its rtc_cmos device (and /dev/rtc0) only when the RTC is not declared
     * absent; CENTURY names the CMOS register holding the century (the model's 0x32). */
    wr16(fadt + FADT_IAPC_BOOT_ARCH, IAPC_VGA_ABSENT | (cfg->cmos_rtc ? 0 : IAPC_CMOS_RTC_ABSENT));
    fadt[FADT_CENTURY] = cfg->cmos_rtc ? RTC_CENTURY_REGISTER : 0;
    wr32(fadt + FADT_FLAGS, FADT_F_HW_REDUCED | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON);
    fadt[FADT_MINOR_VERSION] = 3;
    wr64(fadt + FADT_X_DSDT, gpa + o_dsdt);
    set_checksum(fadt, FADT_LEN, 9);

    uint8_t *xsdt = buf + o_xsdt;
    header(xsdt, "XSDT", (uint32_t)xsdt_len, 1);
    wr64(xsdt + HDR_LEN, gpa + o_fadt);
    wr64(xsdt + HDR_LEN + 8, gpa + o_madt);
    set_checksum(xsdt, xsdt_len, 9);

    uint8_t *rsdp = buf;
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "VMLAB ", 6);
    rsdp[15] = 2;                       /* revision 2: XSDT */
    wr32(rsdp + 16, 0);                 /* no RSDT */
    wr32(rsdp + 20, RSDP_LEN);
    wr64(rsdp + 24, gpa + o_xsdt);
    set_checksum(rsdp, 20, 8);          /* ACPI 1.0 part */
    set_checksum(rsdp, RSDP_LEN, 32);   /* the whole structure */

    *used = dsdt_len + o_dsdt;
    return 0;
}

int acpi_install(struct guest_mem *mem, const struct machine_config *mc, char *err,
                 size_t errlen)
{
    struct acpi_mmio_device virtio[MACHINE_MAX_DEVICES];
    struct acpi_config cfg = {
        .lapic_base = MEMMAP_LAPIC_BASE,
        .ioapic_base = MEMMAP_IOAPIC_BASE,
        .ioapic_pins = MEMMAP_IOAPIC_PINS,
        .serial_port = -1,
        .virtio = virtio,
    };
    size_t used;

    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        if (d->space == BUS_MMIO && d->irq >= 0) {
            virtio[cfg.nvirtio++] = (struct acpi_mmio_device){ d->base,
                                                               MEMMAP_VIRTIO_MMIO_SIZE,
                                                               (unsigned)d->irq };
        } else if (d->space == BUS_PIO && !strcmp(d->kind, "uart8250") && d->irq >= 0 &&
                   d->base == MEMMAP_SERIAL_PORT) {
            cfg.serial_port = (int)d->base;
            cfg.serial_gsi = (unsigned)d->irq;
        } else if (d->space == BUS_PIO && !strcmp(d->kind, "cmos-rtc") &&
                   d->base == MEMMAP_RTC_PORT) {
            cfg.cmos_rtc = 1;
        }
    }
    uint8_t *buf = guest_mem_host(mem, MEMMAP_ACPI_ADDR, MEMMAP_ACPI_MAX);
    if (!buf) {
        snprintf(err, errlen, "acpi: guest RAM does not reach %#llx",
                 (unsigned long long)(MEMMAP_ACPI_ADDR + MEMMAP_ACPI_MAX));
        return -ERANGE;
    }
    return acpi_build(buf, MEMMAP_ACPI_MAX, MEMMAP_ACPI_ADDR, &cfg, &used, err, errlen);
}
