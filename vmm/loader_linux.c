#include "loader_linux.h"
#include "loader_pvh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Offsets in the bzImage / zero page (boot.rst, "The real-mode kernel header"). */
#define HDR_SETUP_SECTS     0x1f1
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_INIT_SIZE       0x260
#define BP_ACPI_RSDP_ADDR   0x070
#define BP_E820_ENTRIES     0x1e8
#define BP_E820_TABLE       0x2d0
#define BP_E820_MAX         128

#define LOADFLAGS_LOADED_HIGH 0x01
#define LOADFLAGS_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64       0x01
#define E820_RAM            1
#define E820_RESERVED       2
#define EBDA_START          0x9fc00ULL      /* conventional memory ends here on a PC */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static int add_e820(uint8_t *bp, uint64_t addr, uint64_t size, uint32_t type)
{
    unsigned n = bp[BP_E820_ENTRIES];
    if (n >= BP_E820_MAX || size == 0)
        return n >= BP_E820_MAX ? -ENOSPC : 0;
    uint8_t *e = bp + BP_E820_TABLE + 20 * n;
    wr64(e, addr);
    wr64(e + 8, size);
    wr32(e + 16, type);
    bp[BP_E820_ENTRIES] = (uint8_t)(n + 1);
    return 0;
}

/* RAM as the guest_mem ranges say, with the PC hole between 640 KiB and 1 MiB reserved. */
static void build_e820(const struct guest_mem *mem, uint8_t *bp)
{
    for (unsigned i = 0; i < mem->nranges; i++) {
        uint64_t b = mem->ranges[i].gpa, e = b + mem->ranges[i].size;
        if (b < EBDA_START && e > LINUX_KERNEL_ADDR) {
            add_e820(bp, b, EBDA_START - b, E820_RAM);
            add_e820(bp, EBDA_START, LINUX_KERNEL_ADDR - EBDA_START, E820_RESERVED);
            add_e820(bp, LINUX_KERNEL_ADDR, e - LINUX_KERNEL_ADDR, E820_RAM);
        } else {
            add_e820(bp, b, e - b, E820_RAM);
        }
    }
}

int loader_linux_load_image(struct guest_mem *mem, const uint8_t *k, size_t klen,
                            const uint8_t *initrd, size_t ilen, const char *cmdline,
                            struct cpu_boot *boot, char *err, size_t errlen)
{
    uint8_t bp[4096];

    if (klen < 0x400 || klen < HDR_JUMP + 2) {
        snprintf(err, errlen, "kernel: %zu bytes is too small for a bzImage", klen);
        return -ENOEXEC;
    }
    if (rd16(k + HDR_BOOT_FLAG) != 0xaa55) {
        snprintf(err, errlen, "kernel: boot_flag is %#x, not 0xaa55: not a bzImage",
                 rd16(k + HDR_BOOT_FLAG));
        return -ENOEXEC;
    }
    if (rd32(k + HDR_MAGIC) != 0x53726448) {
        snprintf(err, errlen, "kernel: header magic is %#x, not \"HdrS\": not a bzImage",
                 rd32(k + HDR_MAGIC));
        return -ENOEXEC;
    }
    uint16_t version = rd16(k + HDR_VERSION);
    if (version < 0x020c) {
        snprintf(err, errlen, "kernel: boot protocol version %u.%02u, need 2.12 or later",
                 version >> 8, version & 0xff);
        return -ENOEXEC;
    }
    if (!(k[HDR_LOADFLAGS] & LOADFLAGS_LOADED_HIGH)) {
        snprintf(err, errlen, "kernel: loadflags %#x: a zImage (loaded low), not a bzImage",
                 k[HDR_LOADFLAGS]);
        return -ENOEXEC;
    }
    if (!(rd16(k + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        snprintf(err, errlen, "kernel: xloadflags %#x lacks XLF_KERNEL_64: no 64-bit entry",
                 rd16(k + HDR_XLOADFLAGS));
        return -ENOEXEC;
    }
    unsigned setup_sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4;
    size_t setup_size = (size_t)(setup_sects + 1) * 512;
    size_t hdr_end = HDR_JUMP + 2 + k[HDR_JUMP + 1];
    if (setup_size >= klen || hdr_end > setup_size || hdr_end > sizeof(bp)) {
        snprintf(err, errlen, "kernel: setup_sects %u does not fit a %zu-byte image",
                 setup_sects, klen);
        return -ENOEXEC;
    }
    size_t pm_size = klen - setup_size;
    uint64_t init_size = hdr_end > HDR_INIT_SIZE + 4 ? rd32(k + HDR_INIT_SIZE) : 0;
    uint64_t kernel_end = LINUX_KERNEL_ADDR + (init_size > pm_size ? init_size : pm_size);
    if (!guest_mem_valid(mem, LINUX_KERNEL_ADDR, kernel_end - LINUX_KERNEL_ADDR)) {
        snprintf(err, errlen, "kernel: needs %llu MiB from 1 MiB (init_size %llu), more than "
                 "the guest RAM", (unsigned long long)((kernel_end - LINUX_KERNEL_ADDR) >> 20),
                 (unsigned long long)init_size);
        return -ERANGE;
    }

    size_t clen = cmdline ? strlen(cmdline) : 0;
    uint32_t cmax = rd32(k + HDR_CMDLINE_SIZE);
    if (cmax == 0 || cmax > MEMMAP_CMDLINE_MAX - 1)
        cmax = MEMMAP_CMDLINE_MAX - 1;
    if (clen > cmax) {
        snprintf(err, errlen, "cmdline: %zu bytes, the kernel takes at most %u", clen, cmax);
        return -E2BIG;
    }

    /* Zero page: the setup header copied from the image, then what the loader fills in. */
    memset(bp, 0, sizeof(bp));
    memcpy(bp + HDR_SETUP_SECTS, k + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
    bp[HDR_TYPE_OF_LOADER] = 0xff;                      /* undefined loader */
    bp[HDR_LOADFLAGS] = (uint8_t)(bp[HDR_LOADFLAGS] | LOADFLAGS_CAN_USE_HEAP);
    wr16(bp + HDR_HEAP_END_PTR, 0xfe00);
    wr32(bp + HDR_CMD_LINE_PTR, (uint32_t)LINUX_CMDLINE_ADDR);
    build_e820(mem, bp);

    if (initrd && ilen) {
        /* As high as allowed: below initrd_addr_max and the end of low RAM, above the
         * kernel's whole init_size, page aligned. */
        uint64_t max = rd32(k + HDR_INITRD_ADDR_MAX);
        uint64_t top = mem->ranges[0].gpa + mem->ranges[0].size;
        if (max == 0)
            max = 0x37ffffff;                           /* the protocol's old default */
        if (top > max + 1)
            top = max + 1;
        uint64_t kend = (kernel_end + 0xfff) & ~0xfffULL;
        if (ilen > UINT32_MAX || top < kend || top - kend < ilen) {
            snprintf(err, errlen, "initrd: %zu bytes does not fit in guest RAM between %#llx "
                     "and %#llx (initrd_addr_max %#llx); give more --mem", ilen,
                     (unsigned long long)kend, (unsigned long long)top,
                     (unsigned long long)max);
            return -E2BIG;
        }
        uint64_t at = (top - ilen) & ~0xfffULL;
        if (guest_mem_write(mem, at, initrd, ilen)) {
            snprintf(err, errlen, "initrd: cannot write %zu bytes at %#llx", ilen,
                     (unsigned long long)at);
            return -ERANGE;
        }
        wr32(bp + HDR_RAMDISK_IMAGE, (uint32_t)at);
        wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)ilen);
    }

    char zero = 0;
    if (guest_mem_write(mem, LINUX_KERNEL_ADDR, k + setup_size, pm_size) ||
        (clen && guest_mem_write(mem, LINUX_CMDLINE_ADDR, cmdline, clen)) ||
        guest_mem_write(mem, LINUX_CMDLINE_ADDR + clen, &zero, 1) ||
        guest_mem_write(mem, LINUX_BOOT_PARAMS_ADDR, bp, sizeof(bp))) {
        snprintf(err, errlen, "kernel: guest RAM too small for the boot data");
        return -ERANGE;
    }
    *boot = (struct cpu_boot){ CPU_BOOT_LINUX64, LINUX_KERNEL_ADDR + 0x200,
                               LINUX_BOOT_PARAMS_ADDR };
    return 0;
}

int loader_linux_set_rsdp(struct guest_mem *mem, uint64_t rsdp)
{
    uint8_t v[8];
    wr64(v, rsdp);
    return guest_mem_write(mem, LINUX_BOOT_PARAMS_ADDR + BP_ACPI_RSDP_ADDR, v, sizeof(v))
               ? -ERANGE : 0;
}

int loader_linux_load(struct guest_mem *mem, const char *kernel, const char *initrd,
                      const char *cmdline, uint64_t rsdp, struct cpu_boot *boot, char *err,
                      size_t errlen)
{
    uint8_t *k = NULL, *i = NULL;
    size_t klen = 0, ilen = 0;
    char msg[256];
    int rc = loader_read_file(kernel, &k, &klen, msg, sizeof(msg));

    if (rc) {
        snprintf(err, errlen, "--kernel %s: %s", kernel, msg);
        return rc;
    }
    if (initrd) {
        rc = loader_read_file(initrd, &i, &ilen, msg, sizeof(msg));
        if (rc) {
            snprintf(err, errlen, "--initrd %s: %s", initrd, msg);
            free(k);
            return rc;
        }
    }
    if (klen >= 4 && !memcmp(k, "\177ELF", 4))
        rc = loader_linux_pvh_load_image(mem, k, klen, i, ilen, cmdline, rsdp, boot, msg,
                                         sizeof(msg));
    else
        rc = loader_linux_load_image(mem, k, klen, i, ilen, cmdline, boot, msg, sizeof(msg));
    if (rc)
        snprintf(err, errlen, "%s: %s", !strncmp(msg, "initrd", 6) ? initrd : kernel, msg);
    free(k);
    free(i);
    return rc;
}
