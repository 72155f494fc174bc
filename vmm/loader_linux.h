/* Loads a Linux bzImage for the 64-bit boot protocol (Documentation/arch/x86/boot.rst):
 * the protected-mode kernel at 1 MiB, the zero page (boot_params) with an e820 map built
 * from the guest RAM ranges, the command line, and an initrd placed as high as the kernel
 * allows. The guest enters at startup_64 (load address + 0x200) in long mode, RSI pointing
 * at boot_params: cpu_boot mode CPU_BOOT_LINUX64. */
#ifndef VMLAB_LOADER_LINUX_H
#define VMLAB_LOADER_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_backend.h"
#include "guest_mem.h"
#include "memmap.h"

/* Where the loader puts things (the PVH boot data slots, which a Linux boot does not use). */
#define LINUX_BOOT_PARAMS_ADDR  MEMMAP_START_INFO_ADDR      /* the 4 KiB zero page */
#define LINUX_CMDLINE_ADDR      MEMMAP_CMDLINE_ADDR
#define LINUX_KERNEL_ADDR       MEMMAP_GUEST_LOAD_MIN       /* 1 MiB */

/* Files: reads `kernel` and optional `initrd` (NULL: none), then loader_linux_load_image,
 * or loader_linux_pvh_load_image for an ELF (a vmlinux) with rsdp. */
int loader_linux_load(struct guest_mem *mem, const char *kernel, const char *initrd,
                      const char *cmdline, uint64_t rsdp, struct cpu_boot *boot, char *err,
                      size_t errlen);

/* Buffers. Errors: -ENOEXEC for an image that is not a usable bzImage (the message names
 * the field and value), -E2BIG for a command line or initrd that does not fit, -ERANGE for
 * a kernel larger than RAM. */
int loader_linux_load_image(struct guest_mem *mem, const uint8_t *kernel, size_t klen,
                            const uint8_t *initrd, size_t ilen, const char *cmdline,
                            struct cpu_boot *boot, char *err, size_t errlen);

/* A vmlinux ELF with the PVH note instead of a bzImage (loader_linux_pvh.c): the kernel's
 * segments at their physical addresses, the initrd high in low RAM as hvm_start_info's
 * first module, rsdp (0: none) in its rsdp_paddr. Boots CPU_BOOT_PVH32. Same errors. */
int loader_linux_pvh_load_image(struct guest_mem *mem, const uint8_t *kernel, size_t klen,
                                const uint8_t *initrd, size_t ilen, const char *cmdline,
                                uint64_t rsdp, struct cpu_boot *boot, char *err, size_t errlen);

/* Tells the kernel where the ACPI RSDP is: boot_params.acpi_rsdp_addr (zero page offset
 * 0x070, read by kernels of boot protocol 2.14 and later; older ones scan the BIOS area).
 * Call after loader_linux_load*. */
int loader_linux_set_rsdp(struct guest_mem *mem, uint64_t rsdp);

#endif
