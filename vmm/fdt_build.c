#include "fdt_build.h"
#include "memmap.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#include "vmm/bus.h"

/* Each libfdt call returns 0 or a negative FDT_ERR_*; stop at the first failure. */
#define TRY(call) do { int r_ = (call); if (r_ < 0) { failed = #call; rc = r_; goto out; } } while (0)

static int prop_reg(void *fdt, uint64_t base, uint64_t size)
{
    fdt64_t cells[2] = { cpu_to_fdt64(base), cpu_to_fdt64(size) };
    return fdt_property(fdt, "reg", cells, sizeof(cells));
}

int fdt_build(void *buf, size_t buflen, const struct machine_config *mc, const char *cmdline,
              uint64_t tsc_khz, char *err, size_t errlen)
{
    const char *failed = NULL;
    int rc = 0;
    char name[64];
    struct memmap_range ram[2];
    int nram = memmap_ram_ranges(mc->ram_size, ram);

    if (nram < 0)
        return nram;
    TRY(fdt_create(buf, (int)buflen));
    TRY(fdt_finish_reservemap(buf));
    TRY(fdt_begin_node(buf, ""));
    TRY(fdt_property_string(buf, "compatible", "vmlab,x86_64"));
    TRY(fdt_property_string(buf, "model", "vmlab " VMLAB_VERSION));
    TRY(fdt_property_u32(buf, "#address-cells", 2));
    TRY(fdt_property_u32(buf, "#size-cells", 2));

    TRY(fdt_begin_node(buf, "chosen"));
    TRY(fdt_property_string(buf, "bootargs", cmdline));
    TRY(fdt_property_string(buf, "stdout-path", "/serial@3f8"));
    TRY(fdt_end_node(buf));

    for (int i = 0; i < nram; i++) {
        snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)ram[i].base);
        TRY(fdt_begin_node(buf, name));
        TRY(fdt_property_string(buf, "device_type", "memory"));
        TRY(prop_reg(buf, ram[i].base, ram[i].size));
        TRY(fdt_end_node(buf));
    }

    TRY(fdt_begin_node(buf, "cpus"));
    TRY(fdt_property_u32(buf, "#address-cells", 1));
    TRY(fdt_property_u32(buf, "#size-cells", 0));
    TRY(fdt_property_u32(buf, "tsc-frequency-khz", (uint32_t)tsc_khz));
    TRY(fdt_begin_node(buf, "cpu@0"));
    TRY(fdt_property_string(buf, "device_type", "cpu"));
    TRY(fdt_property_string(buf, "compatible", "x86_64"));
    TRY(fdt_property_u32(buf, "reg", 0));
    TRY(fdt_end_node(buf));
    TRY(fdt_end_node(buf));

    snprintf(name, sizeof(name), "interrupt-controller@%llx",
             (unsigned long long)MEMMAP_IOAPIC_BASE);
    TRY(fdt_begin_node(buf, name));
    TRY(fdt_property_string(buf, "compatible", "intel,ce4100-ioapic"));
    TRY(fdt_property(buf, "interrupt-controller", NULL, 0));
    TRY(fdt_property_u32(buf, "#interrupt-cells", 1));
    TRY(fdt_property_u32(buf, "phandle", 1));
    TRY(prop_reg(buf, MEMMAP_IOAPIC_BASE, MEMMAP_IOAPIC_SIZE));
    TRY(fdt_end_node(buf));

    snprintf(name, sizeof(name), "lapic@%llx", (unsigned long long)MEMMAP_LAPIC_BASE);
    TRY(fdt_begin_node(buf, name));
    TRY(fdt_property_string(buf, "compatible", "intel,ce4100-lapic"));
    TRY(prop_reg(buf, MEMMAP_LAPIC_BASE, MEMMAP_LAPIC_SIZE));
    TRY(fdt_end_node(buf));

    TRY(fdt_property_u32(buf, "interrupt-parent", 1));

    /* Devices, in machine order (never host-address order). Port devices carry their port
     * in "vmlab,port"; MMIO devices a normal reg. */
    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        int is_virtio = strncmp(d->kind, "virtio-", 7) == 0;
        if (d->space == BUS_PIO) {
            if (!strcmp(d->kind, "uart8250"))
                snprintf(name, sizeof(name), "serial@%llx", (unsigned long long)d->base);
            else
                snprintf(name, sizeof(name), "%s@%llx", d->kind, (unsigned long long)d->base);
            TRY(fdt_begin_node(buf, name));
            if (!strcmp(d->kind, "uart8250"))
                TRY(fdt_property_string(buf, "compatible", "ns16550a"));
            else if (!strcmp(d->kind, "debug-exit"))
                TRY(fdt_property_string(buf, "compatible", "qemu,isa-debug-exit"));
            TRY(fdt_property_u32(buf, "vmlab,port", (uint32_t)d->base));
        } else {
            snprintf(name, sizeof(name), "%s@%llx", is_virtio ? "virtio_mmio" : d->kind,
                     (unsigned long long)d->base);
            TRY(fdt_begin_node(buf, name));
            TRY(fdt_property_string(buf, "compatible", is_virtio ? "virtio,mmio" : d->kind));
            TRY(prop_reg(buf, d->base, MEMMAP_VIRTIO_MMIO_SIZE));
        }
        TRY(fdt_property_string(buf, "vmlab,kind", d->kind));
        if (d->irq >= 0)
            TRY(fdt_property_u32(buf, "interrupts", (uint32_t)d->irq));
        TRY(fdt_end_node(buf));
    }

    TRY(fdt_end_node(buf));
    TRY(fdt_finish(buf));
out:
    if (failed) {
        snprintf(err, errlen, "device tree: %s (%s)",
                 rc == -FDT_ERR_NOSPACE ? "larger than its 64 KiB area" : fdt_strerror(rc),
                 failed);
        return rc == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
    }
    return 0;
}
