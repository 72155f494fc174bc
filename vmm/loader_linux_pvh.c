/* Linux by the PVH entry: a vmlinux ELF carrying the Xen PVH note (CONFIG_PVH; the ELF a
 * bzImage holds compressed, scripts/extract-vmlinux.py takes it out). Skips the bzImage's
 * decompressor, which is most of a boot's instructions on the software CPU (sim/README.md).
 * Linux's PVH entry (arch/x86/platform/pvh) takes its command line, memory map, initrd
 * (the first module) and ACPI RSDP from hvm_start_info, so the initrd goes where the module
 * list says and the RSDP in rsdp_paddr; no device tree. */
#include "loader_linux.h"
#include "loader_pvh.h"

#include <errno.h>
#include <stdio.h>

int loader_linux_pvh_load_image(struct guest_mem *mem, const uint8_t *k, size_t klen,
                                const uint8_t *initrd, size_t ilen, const char *cmdline,
                                uint64_t rsdp, struct cpu_boot *boot, char *err, size_t errlen)
{
    struct pvh_image pi;
    struct pvh_module mod = { 0, 0 };
    uint64_t start_info;
    int rc = loader_pvh_load(mem, k, klen, &pi, err, errlen);

    if (rc)
        return rc;
    if (initrd && ilen) {
        /* As high as low RAM goes (below 4 GiB), page aligned, above the kernel's memsz. */
        uint64_t top = mem->ranges[0].gpa + mem->ranges[0].size;
        uint64_t kend = (pi.load_end + 0xfff) & ~0xfffULL;
        if (ilen > UINT32_MAX || top < kend || top - kend < ilen) {
            snprintf(err, errlen, "initrd: %zu bytes does not fit in guest RAM between %#llx "
                     "and %#llx; give more --mem", ilen, (unsigned long long)kend,
                     (unsigned long long)top);
            return -E2BIG;
        }
        mod.paddr = (top - ilen) & ~0xfffULL;
        mod.size = ilen;
        if (guest_mem_write(mem, mod.paddr, initrd, ilen)) {
            snprintf(err, errlen, "initrd: cannot write %zu bytes at %#llx", ilen,
                     (unsigned long long)mod.paddr);
            return -ERANGE;
        }
    }
    rc = loader_pvh_start_info(mem, cmdline ? cmdline : "", &mod, mod.size ? 1 : 0, rsdp,
                               &start_info, err, errlen);
    if (rc)
        return rc;
    *boot = (struct cpu_boot){ CPU_BOOT_PVH32, pi.entry, start_info };
    return 0;
}
