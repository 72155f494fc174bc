/* The machine's memory and port map: the one table the loader, the FDT, the kernel
 * command line, the bus and both CPU backends read. Nothing else hard-codes an address. */
#ifndef VMLAB_MEMMAP_H
#define VMLAB_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

enum memmap_kind {
    MEMMAP_RAM,        /* guest RAM (size set by --mem) */
    MEMMAP_BOOT,       /* inside low RAM: where the loader puts boot data */
    MEMMAP_MMIO,       /* memory-mapped device window */
    MEMMAP_PIO,        /* x86 I/O port range */
};

struct memmap_entry {
    const char *name;
    enum memmap_kind kind;
    uint64_t base;
    uint64_t size;
    int irq;           /* GSI on the I/O APIC, or -1 */
};

/* Low RAM ends where the MMIO hole starts; RAM beyond that continues at 4 GiB. */
#define MEMMAP_MMIO_HOLE_START   0xd0000000ULL
#define MEMMAP_MMIO_HOLE_END     0x100000000ULL
#define MEMMAP_HIGH_RAM_START    0x100000000ULL

/* Boot data in low RAM, below the 1 MiB where guest programs load. */
#define MEMMAP_START_INFO_ADDR   0x6000ULL     /* struct hvm_start_info + module list */
#define MEMMAP_CMDLINE_ADDR      0x7000ULL
#define MEMMAP_CMDLINE_MAX       0x1000ULL
#define MEMMAP_FDT_ADDR          0x10000ULL
#define MEMMAP_FDT_MAX           0x10000ULL
#define MEMMAP_GUEST_LOAD_MIN    0x100000ULL   /* ELF segments must start at or above */
/* ACPI tables of Linux boots (RSDP first): in the BIOS area, where Linux also scans for the
 * RSDP, inside the 640 KiB - 1 MiB hole the zero page's e820 marks reserved. */
#define MEMMAP_ACPI_ADDR         0xe0000ULL
#define MEMMAP_ACPI_MAX          0x10000ULL

/* virtio-mmio: one 4 KiB window each from 0xd0000000, IRQ 5 + slot. */
#define MEMMAP_VIRTIO_MMIO_BASE  0xd0000000ULL
#define MEMMAP_VIRTIO_MMIO_SIZE  0x1000ULL
#define MEMMAP_VIRTIO_MMIO_SLOTS 16
#define MEMMAP_VIRTIO_IRQ_BASE   5

#define MEMMAP_IOAPIC_BASE       0xfec00000ULL
#define MEMMAP_IOAPIC_SIZE       0x1000ULL
#define MEMMAP_IOAPIC_PINS       24
#define MEMMAP_LAPIC_BASE        0xfee00000ULL
#define MEMMAP_LAPIC_SIZE        0x1000ULL

#define MEMMAP_SERIAL_PORT       0x3f8
#define MEMMAP_SERIAL_IRQ        4
#define MEMMAP_DEBUG_EXIT_PORT   0xf4
#define MEMMAP_I8042_PORT        0x60          /* and its command port, 0x64 */
#define MEMMAP_PIT_PORT          0x40          /* 0x40-0x43, and port B (0x61) */
#define MEMMAP_PORT_B            0x61          /* system control port B: the PIT's */
#define MEMMAP_RTC_PORT          0x70

/* The arm64 machine (KVM on aarch64 hosts): RAM, boot data and the virtio windows are where
 * they are on x86 (so guest programs load at the same address and their device traffic
 * matches), with no port space: the 16550 UART and the exit device sit in the MMIO hole,
 * and the GIC takes the APICs' place. GSI n is SPI n (INTID 32 + n). */
#define MEMMAP_ARM64_SERIAL_BASE     0xfe000000ULL   /* ns16550a, reg-shift 0, 8 bytes */
#define MEMMAP_ARM64_DEBUG_EXIT_BASE 0xfe001000ULL   /* 4 bytes, as isa-debug-exit */
#define MEMMAP_ARM64_GICD_BASE       0xfef00000ULL   /* distributor, 64 KiB */
#define MEMMAP_ARM64_GICD_SIZE       0x10000ULL
#define MEMMAP_ARM64_GICC_BASE       0xfef10000ULL   /* v2 CPU interface, 8 KiB */
#define MEMMAP_ARM64_GICC_SIZE       0x2000ULL
#define MEMMAP_ARM64_GICR_BASE       0xfef20000ULL   /* v3 redistributor of vCPU 0, 128 KiB */
#define MEMMAP_ARM64_GICR_SIZE       0x20000ULL
#define MEMMAP_ARM64_GIC_NR_IRQS     64              /* 32 private + 32 SPIs (GSI 0..31) */
/* Linux arm64 Image: loaded at a 2 MiB-aligned base plus its text_offset. */
#define MEMMAP_ARM64_KERNEL_BASE     0x200000ULL

/* The whole table, terminated by an entry with name == NULL. */
extern const struct memmap_entry memmap_table[];

/* Finds an entry by name; NULL if absent. */
const struct memmap_entry *memmap_find(const char *name);

/* Guest-physical base and IRQ of virtio-mmio slot `slot`; -EINVAL past the last slot. */
int memmap_virtio_slot(unsigned slot, uint64_t *base, int *irq);

/* RAM layout for `ram_size` bytes: up to two ranges (below the hole, above 4 GiB).
 * Returns the number of ranges (1 or 2), or -EINVAL for a zero size. */
struct memmap_range { uint64_t base, size; };
int memmap_ram_ranges(uint64_t ram_size, struct memmap_range out[2]);

#endif
