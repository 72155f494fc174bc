/* The arm64 machine's device tree (libfdt): what Linux arm64 and the arm64 guest programs
 * read to find memory, the CPU (PSCI 0.2 through HVC), the GIC, the arch timer, the 16550
 * UART, the exit device and one virtio,mmio node per virtio device. Interrupts are GIC
 * triples: <0 n 4> is SPI n (GSI n), level high; the timer's are PPIs. */
#include "fdt_build.h"
#include "memmap.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#define TRY(call) do { int r_ = (call); if (r_ < 0) { failed = #call; rc = r_; goto out; } } while (0)

#define GIC_PHANDLE     1
#define GIC_SPI         0
#define GIC_PPI         1
#define IRQ_LEVEL_HIGH  4
#define IRQ_LEVEL_LOW   8
/* Arch timer PPIs (secure EL1, non-secure EL1, virtual, hypervisor), as on QEMU virt. */
static const uint32_t timer_ppis[4] = { 13, 14, 11, 10 };

static int prop_regs(void *fdt, const uint64_t *pairs, unsigned npairs)
{
    fdt64_t cells[4];
    for (unsigned i = 0; i < 2 * npairs && i < 4; i++)
        cells[i] = cpu_to_fdt64(pairs[i]);
    return fdt_property(fdt, "reg", cells, (int)(2 * npairs * sizeof(fdt64_t)));
}

static int prop_spi(void *fdt, unsigned spi)
{
    fdt32_t cells[3] = { cpu_to_fdt32(GIC_SPI), cpu_to_fdt32(spi), cpu_to_fdt32(IRQ_LEVEL_HIGH) };
    return fdt_property(fdt, "interrupts", cells, sizeof(cells));
}

int fdt_build_arm64(void *buf, size_t buflen, const struct fdt_arm64_config *cfg, char *err,
                    size_t errlen)
{
    const struct machine_config *mc = cfg->mc;
    const char *failed = NULL;
    int rc = 0;
    char name[64];
    struct memmap_range ram[2];
    int nram = memmap_ram_ranges(mc->ram_size, ram);

    if (nram < 0)
        return nram;
    if (cfg->gic_version != 2 && cfg->gic_version != 3) {
        snprintf(err, errlen, "device tree: GIC version %d is not 2 or 3", cfg->gic_version);
        return -EINVAL;
    }
    TRY(fdt_create(buf, (int)buflen));
    TRY(fdt_finish_reservemap(buf));
    TRY(fdt_begin_node(buf, ""));
    TRY(fdt_property(buf, "compatible", "vmlab,arm64\0linux,dummy-virt",
                     sizeof("vmlab,arm64\0linux,dummy-virt")));
    TRY(fdt_property_string(buf, "model", "vmlab " VMLAB_VERSION));
    TRY(fdt_property_u32(buf, "#address-cells", 2));
    TRY(fdt_property_u32(buf, "#size-cells", 2));
    TRY(fdt_property_u32(buf, "interrupt-parent", GIC_PHANDLE));

    TRY(fdt_begin_node(buf, "chosen"));
    TRY(fdt_property_string(buf, "bootargs", cfg->cmdline ? cfg->cmdline : ""));
    snprintf(name, sizeof(name), "/uart@%llx", (unsigned long long)MEMMAP_ARM64_SERIAL_BASE);
    TRY(fdt_property_string(buf, "stdout-path", name));
    if (cfg->initrd_size) {
        TRY(fdt_property_u64(buf, "linux,initrd-start", cfg->initrd_addr));
        TRY(fdt_property_u64(buf, "linux,initrd-end", cfg->initrd_addr + cfg->initrd_size));
    }
    TRY(fdt_end_node(buf));

    for (int i = 0; i < nram; i++) {
        snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)ram[i].base);
        TRY(fdt_begin_node(buf, name));
        TRY(fdt_property_string(buf, "device_type", "memory"));
        TRY(prop_regs(buf, (uint64_t[]){ ram[i].base, ram[i].size }, 1));
        TRY(fdt_end_node(buf));
    }

    TRY(fdt_begin_node(buf, "cpus"));
    TRY(fdt_property_u32(buf, "#address-cells", 1));
    TRY(fdt_property_u32(buf, "#size-cells", 0));
    /* Guest programs read the counter rate here, as on x86 they read the TSC's. */
    TRY(fdt_property_u32(buf, "tsc-frequency-khz", (uint32_t)cfg->timer_khz));
    TRY(fdt_begin_node(buf, "cpu@0"));
    TRY(fdt_property_string(buf, "device_type", "cpu"));
    TRY(fdt_property_string(buf, "compatible", "arm,arm-v8"));
    TRY(fdt_property_u32(buf, "reg", 0));
    TRY(fdt_property_string(buf, "enable-method", "psci"));
    TRY(fdt_end_node(buf));
    TRY(fdt_end_node(buf));

    TRY(fdt_begin_node(buf, "psci"));
    TRY(fdt_property(buf, "compatible", "arm,psci-0.2\0arm,psci", sizeof("arm,psci-0.2\0arm,psci")));
    TRY(fdt_property_string(buf, "method", "hvc"));
    TRY(fdt_end_node(buf));

    snprintf(name, sizeof(name), "intc@%llx", (unsigned long long)MEMMAP_ARM64_GICD_BASE);
    TRY(fdt_begin_node(buf, name));
    if (cfg->gic_version == 3) {
        TRY(fdt_property_string(buf, "compatible", "arm,gic-v3"));
        TRY(prop_regs(buf, (uint64_t[]){ MEMMAP_ARM64_GICD_BASE, MEMMAP_ARM64_GICD_SIZE,
                                         MEMMAP_ARM64_GICR_BASE, MEMMAP_ARM64_GICR_SIZE }, 2));
    } else {
        TRY(fdt_property_string(buf, "compatible", "arm,cortex-a15-gic"));
        TRY(prop_regs(buf, (uint64_t[]){ MEMMAP_ARM64_GICD_BASE, MEMMAP_ARM64_GICD_SIZE,
                                         MEMMAP_ARM64_GICC_BASE, MEMMAP_ARM64_GICC_SIZE }, 2));
    }
    TRY(fdt_property_u32(buf, "#interrupt-cells", 3));
    TRY(fdt_property(buf, "interrupt-controller", NULL, 0));
    TRY(fdt_property_u32(buf, "phandle", GIC_PHANDLE));
    TRY(fdt_end_node(buf));

    TRY(fdt_begin_node(buf, "timer"));
    TRY(fdt_property_string(buf, "compatible", "arm,armv8-timer"));
    {
        fdt32_t cells[12];
        /* GICv2 PPIs name their target CPUs in bits 8..15: CPU 0 only. */
        uint32_t flags = cfg->gic_version == 2 ? (IRQ_LEVEL_LOW | 1u << 8) : IRQ_LEVEL_LOW;
        for (unsigned i = 0; i < 4; i++) {
            cells[3 * i] = cpu_to_fdt32(GIC_PPI);
            cells[3 * i + 1] = cpu_to_fdt32(timer_ppis[i]);
            cells[3 * i + 2] = cpu_to_fdt32(flags);
        }
        TRY(fdt_property(buf, "interrupts", cells, sizeof(cells)));
    }
    TRY(fdt_property(buf, "always-on", NULL, 0));
    TRY(fdt_end_node(buf));

    /* Devices, in machine order (never host-address order). */
    for (unsigned i = 0; i < mc->ndevices; i++) {
        const struct machine_device *d = &mc->devices[i];
        int is_virtio = strncmp(d->kind, "virtio-", 7) == 0;
        if (d->space != BUS_MMIO) {
            snprintf(err, errlen, "device tree: %s at port %#llx: the arm64 machine has no "
                     "port space", d->kind, (unsigned long long)d->base);
            return -EINVAL;
        }
        if (!strcmp(d->kind, "uart8250")) {
            snprintf(name, sizeof(name), "uart@%llx", (unsigned long long)d->base);
            TRY(fdt_begin_node(buf, name));
            TRY(fdt_property_string(buf, "compatible", "ns16550a"));
            TRY(prop_regs(buf, (uint64_t[]){ d->base, 8 }, 1));
            TRY(fdt_property_u32(buf, "clock-frequency", 1843200));
        } else {
            snprintf(name, sizeof(name), "%s@%llx", is_virtio ? "virtio_mmio" : d->kind,
                     (unsigned long long)d->base);
            TRY(fdt_begin_node(buf, name));
            TRY(fdt_property_string(buf, "compatible", is_virtio ? "virtio,mmio"
                                    : !strcmp(d->kind, "debug-exit") ? "vmlab,debug-exit"
                                    : d->kind));
            TRY(prop_regs(buf, (uint64_t[]){ d->base, is_virtio ? MEMMAP_VIRTIO_MMIO_SIZE : 4 },
                          1));
            if (is_virtio)
                TRY(fdt_property(buf, "dma-coherent", NULL, 0));
        }
        TRY(fdt_property_string(buf, "vmlab,kind", d->kind));
        if (d->irq >= 0)
            TRY(prop_spi(buf, (unsigned)d->irq));
        TRY(fdt_end_node(buf));
    }

    TRY(fdt_end_node(buf));
    TRY(fdt_finish(buf));
out:
    if (failed) {
        snprintf(err, errlen, "device tree: %s (%s)",
                 rc == -FDT_ERR_NOSPACE ? "larger than its area" : fdt_strerror(rc), failed);
        return rc == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
    }
    return 0;
}
