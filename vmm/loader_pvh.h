/* Loads PVH guest programs: ELF32 or ELF64 x86 executables carrying a Xen ELF note of type
 * 18 (XEN_ELFNOTE_PHYS32_ENTRY) that names the 32-bit entry point. Also writes the
 * hvm_start_info block the entry receives in EBX. */
#ifndef VMLAB_LOADER_PVH_H
#define VMLAB_LOADER_PVH_H

#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"

#define LOADER_MAX_IMAGE (256u << 20)

struct pvh_image {
    uint64_t entry;         /* from the PVH note */
    uint64_t load_start;    /* lowest loaded guest-physical address */
    uint64_t load_end;      /* one past the highest (memsz included) */
};

/* Parses and loads `img` into guest memory. Every check failure is -ENOEXEC (or -ERANGE
 * for a segment outside RAM) with a one-line message naming the field and value. */
int loader_pvh_load(struct guest_mem *mem, const uint8_t *img, size_t len,
                    struct pvh_image *out, char *err, size_t errlen);

/* The arm64 guest programs' loader: the same checks and copy for an EM_AARCH64 ELF
 * executable, entered at e_entry at EL1 with the FDT address in X0 (CPU_BOOT_ARM64). A
 * PT_NOTE "vmlab" of type VMLAB_ELFNOTE_ENTRY_EL (4-byte descriptor: the exception level
 * the program wants at entry) other than 1 is refused. */
#define VMLAB_ELFNOTE_ENTRY_EL 1
int loader_arm64_elf_load(struct guest_mem *mem, const uint8_t *img, size_t len,
                          struct pvh_image *out, char *err, size_t errlen);

/* Reads a whole file (at most LOADER_MAX_IMAGE bytes) into a malloc'ed buffer. */
int loader_read_file(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen);

struct pvh_module { uint64_t paddr, size; };

/* Writes hvm_start_info (version 1, with the memory map), the command line and the module
 * list at their memory-map addresses. Returns the start_info address via *start_info.
 * rsdp: 0, or the ACPI RSDP the caller put at MEMMAP_ACPI_ADDR: its address goes in
 * rsdp_paddr and the tables' area is reserved in the memory map. */
int loader_pvh_start_info(struct guest_mem *mem, const char *cmdline,
                          const struct pvh_module *mods, unsigned nmods, uint64_t rsdp,
                          uint64_t *start_info, char *err, size_t errlen);

#endif
