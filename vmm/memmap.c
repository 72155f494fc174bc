#include "memmap.h"

#include <errno.h>
#include <string.h>

const struct memmap_entry memmap_table[] = {
    { "ram-low",     MEMMAP_RAM,  0,                        MEMMAP_MMIO_HOLE_START, -1 },
    { "start-info",  MEMMAP_BOOT, MEMMAP_START_INFO_ADDR,   0x1000,                 -1 },
    { "cmdline",     MEMMAP_BOOT, MEMMAP_CMDLINE_ADDR,      MEMMAP_CMDLINE_MAX,     -1 },
    { "fdt",         MEMMAP_BOOT, MEMMAP_FDT_ADDR,          MEMMAP_FDT_MAX,         -1 },
    { "acpi",        MEMMAP_BOOT, MEMMAP_ACPI_ADDR,         MEMMAP_ACPI_MAX,        -1 },
    { "virtio-mmio", MEMMAP_MMIO, MEMMAP_VIRTIO_MMIO_BASE,
      MEMMAP_VIRTIO_MMIO_SIZE * MEMMAP_VIRTIO_MMIO_SLOTS,                           MEMMAP_VIRTIO_IRQ_BASE },
    { "ioapic",      MEMMAP_MMIO, MEMMAP_IOAPIC_BASE,       MEMMAP_IOAPIC_SIZE,     -1 },
    { "lapic",       MEMMAP_MMIO, MEMMAP_LAPIC_BASE,        MEMMAP_LAPIC_SIZE,      -1 },
    { "ram-high",    MEMMAP_RAM,  MEMMAP_HIGH_RAM_START,    0,                      -1 },
    { "serial",      MEMMAP_PIO,  MEMMAP_SERIAL_PORT,       8,                      MEMMAP_SERIAL_IRQ },
    { "debug-exit",  MEMMAP_PIO,  MEMMAP_DEBUG_EXIT_PORT,   4,                      -1 },
    { "i8042",       MEMMAP_PIO,  MEMMAP_I8042_PORT,        1,                      -1 },
    { "i8042-cmd",   MEMMAP_PIO,  MEMMAP_I8042_PORT + 4,    1,                      -1 },
    { "i8254",       MEMMAP_PIO,  MEMMAP_PIT_PORT,          4,                      -1 },
    { "port-b",      MEMMAP_PIO,  MEMMAP_PORT_B,            1,                      -1 },
    { "cmos-rtc",    MEMMAP_PIO,  MEMMAP_RTC_PORT,          2,                      -1 },
    { NULL, 0, 0, 0, -1 },
};

const struct memmap_entry *memmap_find(const char *name)
{
    for (const struct memmap_entry *e = memmap_table; e->name; e++)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

int memmap_virtio_slot(unsigned slot, uint64_t *base, int *irq)
{
    if (slot >= MEMMAP_VIRTIO_MMIO_SLOTS)
        return -EINVAL;
    *base = MEMMAP_VIRTIO_MMIO_BASE + (uint64_t)slot * MEMMAP_VIRTIO_MMIO_SIZE;
    *irq = MEMMAP_VIRTIO_IRQ_BASE + (int)slot;
    return 0;
}

int memmap_ram_ranges(uint64_t ram_size, struct memmap_range out[2])
{
    if (ram_size == 0)
        return -EINVAL;
    if (ram_size <= MEMMAP_MMIO_HOLE_START) {
        out[0] = (struct memmap_range){ 0, ram_size };
        return 1;
    }
    out[0] = (struct memmap_range){ 0, MEMMAP_MMIO_HOLE_START };
    out[1] = (struct memmap_range){ MEMMAP_HIGH_RAM_START, ram_size - MEMMAP_MMIO_HOLE_START };
    return 2;
}
