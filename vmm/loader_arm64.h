/* Linux arm64 boot (Documentation/arch/arm64/booting.rst): the Image's 64-byte header
 * (text_offset, image_size, flags, magic "ARM\x64" at 56), loaded at a 2 MiB-aligned base
 * plus text_offset; a gzip-compressed Image (Debian's vmlinuz) is inflated first. The
 * initrd goes page-aligned at the top of RAM. The FDT (X0) is the caller's. */
#ifndef VMLAB_LOADER_ARM64_H
#define VMLAB_LOADER_ARM64_H

#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"

#define ARM64_IMAGE_HEADER_SIZE 64
#define ARM64_IMAGE_MAGIC       0x644d5241u     /* "ARM\x64", little-endian */

struct arm64_image_header {
    uint64_t text_offset;
    uint64_t image_size;    /* bytes the kernel occupies from its load address, bss included */
    uint64_t flags;         /* bit 0 big-endian, bits 1-2 page size, bit 3 placement */
};

/* Checks an (uncompressed) Image's header; 0 or -ENOEXEC with the field in err. */
int loader_arm64_parse(const uint8_t *img, size_t len, struct arm64_image_header *h,
                       char *err, size_t errlen);

struct arm64_kernel {
    uint64_t entry;                 /* load address: the Image's first instruction */
    uint64_t initrd_addr, initrd_size;
};

/* Loads the kernel (and initrd, may be NULL) from files into guest RAM. Nothing is written
 * unless every check passed. 0 or -errno with one line in err. */
int loader_arm64_load(struct guest_mem *mem, const char *kernel_path, const char *initrd_path,
                      struct arm64_kernel *out, char *err, size_t errlen);

/* The same for an Image already in memory (tests). */
int loader_arm64_load_image(struct guest_mem *mem, const uint8_t *img, size_t len,
                            const uint8_t *initrd, size_t initrd_len, struct arm64_kernel *out,
                            char *err, size_t errlen);

#endif
