/* ACPI tables for Linux guests: RSDP (revision 2) -> XSDT -> FADT (hardware-reduced, DSDT
 * through X_DSDT) and MADT (one local APIC, the I/O APIC); the DSDT describes COM1
 * (PNP0501) and one virtio-mmio device (LNRO0005, as QEMU microvm does) per window. Debian's
 * kernel finds virtio-mmio devices only this way (no device tree, no command-line devices).
 * Layout in the buffer: RSDP at offset 0, the tables after it, each 16-byte aligned. */
#ifndef VMLAB_ACPI_BUILD_H
#define VMLAB_ACPI_BUILD_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_MMIO_DEVICES 64

struct acpi_mmio_device {
    uint64_t base, size;
    unsigned gsi;
};

struct acpi_config {
    uint64_t lapic_base;
    uint64_t ioapic_base;
    unsigned ioapic_pins;           /* GSIs 0 .. pins-1, base 0 */
    int serial_port;                /* COM1 I/O port, or -1 for no serial device */
    unsigned serial_gsi;
    /* CMOS RTC (MC146818 at ports 0x70/0x71): 1 if the machine has one, which the FADT then
     * reports (no CMOS_RTC_NOT_PRESENT, CENTURY register 0x32), so Linux registers rtc_cmos;
     * 0: the FADT says it is absent. */
    int cmos_rtc;
    const struct acpi_mmio_device *virtio;
    unsigned nvirtio;
};

/* Writes the tables into buf[0..cap), which the guest sees at guest-physical `gpa` (below
 * 4 GiB); the RSDP is at gpa. *used gets the bytes written. Errors: -EINVAL for a device
 * the tables cannot describe (window above 4 GiB, GSI past the I/O APIC), -ENOSPC when cap
 * is too small; err names the field and value. */
int acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_config *cfg,
               size_t *used, char *err, size_t errlen);

struct guest_mem;
struct machine_config;

/* The tables for machine `mc` (its uart8250 as COM1, its cmos-rtc, its virtio-mmio windows) written to
 * guest RAM at MEMMAP_ACPI_ADDR, RSDP first. Errors as acpi_build. */
int acpi_install(struct guest_mem *mem, const struct machine_config *mc, char *err,
                 size_t errlen);

/* Sum of the bytes mod 256: 0 for a correct ACPI table. */
uint8_t acpi_checksum(const uint8_t *p, size_t n);

#endif
