#include "loader_pvh.h"
#include "memmap.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u

/* Program headers of either class, widened to 64 bits. */
struct phdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz, align;
};

static int get_phdr(const uint8_t *img, size_t len, int is64, uint64_t phoff, unsigned i,
                    struct phdr *p, char *err, size_t errlen)
{
    size_t entsz = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    uint64_t at = phoff + (uint64_t)i * entsz;

    if (at > len || len - at < entsz) {
        snprintf(err, errlen, "ELF program header %u at offset %#llx is past the end of the "
                 "file (%zu bytes)", i, (unsigned long long)at, len);
        return -ENOEXEC;
    }
    if (is64) {
        Elf64_Phdr h;
        memcpy(&h, img + at, sizeof(h));
        *p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align };
    } else {
        Elf32_Phdr h;
        memcpy(&h, img + at, sizeof(h));
        *p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align };
    }
    return 0;
}

/* Finds the note (name, type) in one PT_NOTE segment: 1 with its descriptor, 0 not there,
 * <0 malformed. */
static int find_note(const uint8_t *img, const struct phdr *p, const char *want,
                     uint32_t want_type, const uint8_t **desc_out, uint32_t *descsz_out,
                     char *err, size_t errlen)
{
    const uint8_t *n = img + p->offset;
    uint64_t left = p->filesz;
    /* Notes are 4-byte aligned in practice; honour an 8-byte segment alignment too (GNU
     * property notes): there the descriptor and the next note start at multiples of 8 from
     * the note's start, the 12-byte header included (a 4-byte name needs no padding). */
    uint64_t align = p->align == 8 ? 8 : 4;
    size_t want_len = strlen(want) + 1;

    while (left >= 12) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, n, 4);
        memcpy(&descsz, n + 4, 4);
        memcpy(&type, n + 8, 4);
        uint64_t name_pad = ((12 + (uint64_t)namesz + align - 1) & ~(align - 1)) - 12;
        uint64_t desc_pad = ((uint64_t)descsz + align - 1) & ~(align - 1);
        if (name_pad > left - 12 || desc_pad > left - 12 - name_pad) {
            snprintf(err, errlen, "ELF note at file offset %#llx: namesz %u / descsz %u run "
                     "past the note segment", (unsigned long long)(n - img), namesz, descsz);
            return -ENOEXEC;
        }
        const uint8_t *name = n + 12;
        if (type == want_type && namesz == want_len && memcmp(name, want, want_len) == 0) {
            *desc_out = name + name_pad;
            *descsz_out = descsz;
            return 1;
        }
        n += 12 + name_pad + desc_pad;
        left -= 12 + name_pad + desc_pad;
    }
    return 0;
}

/* The PVH entry note. 1 found, 0 not, <0 malformed. */
static int find_pvh_note(const uint8_t *img, const struct phdr *p, uint64_t *entry,
                         char *err, size_t errlen)
{
    const uint8_t *desc;
    uint32_t descsz;
    int rc = find_note(img, p, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &desc, &descsz, err, errlen);

    if (rc <= 0)
        return rc;
    if (descsz == 4) {
        uint32_t e;
        memcpy(&e, desc, 4);
        *entry = e;
    } else if (descsz == 8) {
        memcpy(entry, desc, 8);
    } else {
        snprintf(err, errlen, "PVH entry note: descsz is %u, expected 4 or 8", descsz);
        return -ENOEXEC;
    }
    return 1;
}

/* arm64: a "vmlab" entry-EL note, if any, must ask for EL1, the level KVM starts the vCPU
 * at here (no nested virtualization). 0 or -ENOEXEC. */
static int check_entry_el_note(const uint8_t *img, const struct phdr *p, char *err,
                               size_t errlen)
{
    const uint8_t *desc;
    uint32_t descsz, el;
    int rc = find_note(img, p, "vmlab", VMLAB_ELFNOTE_ENTRY_EL, &desc, &descsz, err, errlen);

    if (rc <= 0)
        return rc;
    if (descsz != 4) {
        snprintf(err, errlen, "vmlab entry-EL note: descsz is %u, expected 4", descsz);
        return -ENOEXEC;
    }
    memcpy(&el, desc, 4);
    if (el != 1) {
        snprintf(err, errlen, "vmlab entry-EL note asks for EL%u: vmlab starts arm64 guests "
                 "at EL1 (no nested virtualization)", el);
        return -ENOEXEC;
    }
    return 0;
}

/* Clears [p, p+len) writing only where something is not zero yet: guest RAM starts out as
 * untouched anonymous memory, and writing zeros over a large .bss would fault in every
 * page of it for nothing (reading maps the shared zero page instead). */
static void zero_fill(uint8_t *p, uint64_t len)
{
    static const uint8_t zeros[4096];

    while (len) {
        size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        if (memcmp(p, zeros, n) != 0)
            memset(p, 0, n);
        p += n;
        len -= n;
    }
}

/* arm64: an EM_AARCH64 executable entered at e_entry (no PVH note); else x86 PVH. */
static int elf_load(struct guest_mem *mem, const uint8_t *img, size_t len, int arm64,
                    struct pvh_image *out, char *err, size_t errlen)
{
    int is64, found = 0, rc;
    uint64_t phoff, entry = 0;
    unsigned phnum;
    struct phdr loads[64];
    unsigned nloads = 0;

    if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0) {
        snprintf(err, errlen, "not an ELF file (magic %02x %02x %02x %02x)",
                 len > 0 ? img[0] : 0, len > 1 ? img[1] : 0, len > 2 ? img[2] : 0,
                 len > 3 ? img[3] : 0);
        return -ENOEXEC;
    }
    if (img[EI_CLASS] != ELFCLASS32 && img[EI_CLASS] != ELFCLASS64) {
        snprintf(err, errlen, "ELF class is %u, expected 1 (32-bit) or 2 (64-bit)", img[EI_CLASS]);
        return -ENOEXEC;
    }
    is64 = img[EI_CLASS] == ELFCLASS64;
    if (img[EI_DATA] != ELFDATA2LSB) {
        snprintf(err, errlen, "ELF data encoding is %u, expected 1 (little-endian)", img[EI_DATA]);
        return -ENOEXEC;
    }
    if (len < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
        snprintf(err, errlen, "truncated ELF: %zu bytes, header needs %zu", len,
                 is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr));
        return -ENOEXEC;
    }
    uint16_t machine, type;
    if (is64) {
        Elf64_Ehdr h;
        memcpy(&h, img, sizeof(h));
        machine = h.e_machine; type = h.e_type; phoff = h.e_phoff; phnum = h.e_phnum;
        if (arm64) {
            entry = h.e_entry;
            found = 1;
        }
    } else {
        Elf32_Ehdr h;
        memcpy(&h, img, sizeof(h));
        machine = h.e_machine; type = h.e_type; phoff = h.e_phoff; phnum = h.e_phnum;
    }
    if (arm64 && machine != EM_AARCH64) {
        snprintf(err, errlen, "ELF machine is %u, expected 183 (AArch64) on this arm64 vmlab",
                 machine);
        return -ENOEXEC;
    }
    if (!arm64 && machine != EM_X86_64 && machine != EM_386) {
        snprintf(err, errlen, "ELF machine is %u, expected 62 (x86-64) or 3 (i386)", machine);
        return -ENOEXEC;
    }
    if (type != ET_EXEC) {
        snprintf(err, errlen, "ELF type is %u, expected 2 (executable)", type);
        return -ENOEXEC;
    }
    if (phnum == 0 || phnum > 64) {
        snprintf(err, errlen, "ELF e_phnum is %u, expected 1..64", phnum);
        return -ENOEXEC;
    }

    /* First pass: validate every header, find the note, collect the loads. */
    for (unsigned i = 0; i < phnum; i++) {
        struct phdr p;
        rc = get_phdr(img, len, is64, phoff, i, &p, err, errlen);
        if (rc)
            return rc;
        if (p.type != PT_LOAD && p.type != PT_NOTE)
            continue;
        if (p.offset > len || len - p.offset < p.filesz) {
            snprintf(err, errlen, "ELF segment %u: file range %#llx+%#llx is past the end of "
                     "the file (%zu bytes; truncated?)", i, (unsigned long long)p.offset,
                     (unsigned long long)p.filesz, len);
            return -ENOEXEC;
        }
        if (p.type == PT_NOTE) {
            if (arm64 && (rc = check_entry_el_note(img, &p, err, errlen)) < 0)
                return rc;
            if (!found && !arm64) {
                rc = find_pvh_note(img, &p, &entry, err, errlen);
                if (rc < 0)
                    return rc;
                found = rc;
            }
            continue;
        }
        if (p.filesz > p.memsz) {
            snprintf(err, errlen, "ELF segment %u: p_filesz %#llx exceeds p_memsz %#llx", i,
                     (unsigned long long)p.filesz, (unsigned long long)p.memsz);
            return -ENOEXEC;
        }
        if (p.memsz == 0)
            continue;
        if (p.paddr < MEMMAP_GUEST_LOAD_MIN || !guest_mem_valid(mem, p.paddr, p.memsz)) {
            snprintf(err, errlen, "ELF segment %u: guest range %#llx+%#llx is outside RAM "
                     "(loadable RAM is %#llx..%#llx)", i, (unsigned long long)p.paddr,
                     (unsigned long long)p.memsz, (unsigned long long)MEMMAP_GUEST_LOAD_MIN,
                     (unsigned long long)(mem->ranges[0].gpa + mem->ranges[0].size));
            return -ERANGE;
        }
        for (unsigned j = 0; j < nloads; j++) {
            if (p.paddr < loads[j].paddr + loads[j].memsz && loads[j].paddr < p.paddr + p.memsz) {
                snprintf(err, errlen, "ELF segment %u (%#llx+%#llx) overlaps an earlier "
                         "segment (%#llx+%#llx)", i, (unsigned long long)p.paddr,
                         (unsigned long long)p.memsz, (unsigned long long)loads[j].paddr,
                         (unsigned long long)loads[j].memsz);
                return -ENOEXEC;
            }
        }
        loads[nloads++] = p;
    }
    if (!found) {
        snprintf(err, errlen, "no PVH entry note (Xen ELF note type 18) in any PT_NOTE segment");
        return -ENOEXEC;
    }
    if (nloads == 0) {
        snprintf(err, errlen, "ELF has no loadable segment");
        return -ENOEXEC;
    }
    int entry_ok = 0;
    for (unsigned j = 0; j < nloads; j++)
        if (entry >= loads[j].paddr && entry < loads[j].paddr + loads[j].memsz)
            entry_ok = 1;
    if (!entry_ok || (!arm64 && entry > 0xffffffffULL)) {
        snprintf(err, errlen, "%s entry %#llx is not inside a loaded segment",
                 arm64 ? "ELF" : "PVH",
                 (unsigned long long)entry);
        return -ENOEXEC;
    }

    /* Second pass: copy. Nothing is written until everything was checked. */
    out->load_start = UINT64_MAX;
    out->load_end = 0;
    for (unsigned j = 0; j < nloads; j++) {
        uint8_t *dst = guest_mem_host(mem, loads[j].paddr, loads[j].memsz);
        if (!dst)
            return -EFAULT;
        memcpy(dst, img + loads[j].offset, loads[j].filesz);
        zero_fill(dst + loads[j].filesz, loads[j].memsz - loads[j].filesz);
        if (loads[j].paddr < out->load_start)
            out->load_start = loads[j].paddr;
        if (loads[j].paddr + loads[j].memsz > out->load_end)
            out->load_end = loads[j].paddr + loads[j].memsz;
    }
    out->entry = entry;
    return 0;
}

int loader_pvh_load(struct guest_mem *mem, const uint8_t *img, size_t len,
                    struct pvh_image *out, char *err, size_t errlen)
{
    return elf_load(mem, img, len, 0, out, err, errlen);
}

int loader_arm64_elf_load(struct guest_mem *mem, const uint8_t *img, size_t len,
                          struct pvh_image *out, char *err, size_t errlen)
{
    return elf_load(mem, img, len, 1, out, err, errlen);
}

int loader_read_file(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    *data = NULL;
    *len = 0;
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > LOADER_MAX_IMAGE) {
        snprintf(err, errlen, "%s: %lld bytes is larger than the %u MiB limit", path,
                 (long long)st.st_size, LOADER_MAX_IMAGE >> 20);
        close(fd);
        return -EFBIG;
    }
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            snprintf(err, errlen, "%s: read failed: %s", path, strerror(-rc));
            free(buf);
            close(fd);
            return rc;
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
}

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry { uint64_t paddr, size, cmdline_paddr, reserved; };
struct hvm_memmap_entry { uint64_t addr, size; uint32_t type, reserved; };

#define MODLIST_OFFSET 0x40
#define MEMMAP_OFFSET  0x200
#define MAX_MODULES    ((MEMMAP_OFFSET - MODLIST_OFFSET) / sizeof(struct hvm_modlist_entry))

int loader_pvh_start_info(struct guest_mem *mem, const char *cmdline,
                          const struct pvh_module *mods, unsigned nmods, uint64_t rsdp,
                          uint64_t *start_info, char *err, size_t errlen)
{
    size_t clen = strlen(cmdline);
    struct hvm_start_info si = { .magic = HVM_START_MAGIC, .version = 1 };
    struct memmap_range r[2];
    int nr = memmap_ram_ranges(mem->ram_size, r);

    if (clen >= MEMMAP_CMDLINE_MAX) {
        snprintf(err, errlen, "command line is %zu bytes, the limit is %llu", clen,
                 (unsigned long long)MEMMAP_CMDLINE_MAX - 1);
        return -E2BIG;
    }
    if (nmods > MAX_MODULES || nr < 0)
        return -EINVAL;
    if (guest_mem_write(mem, MEMMAP_CMDLINE_ADDR, cmdline, clen + 1))
        return -EFAULT;
    for (unsigned i = 0; i < nmods; i++) {
        struct hvm_modlist_entry m = { mods[i].paddr, mods[i].size, 0, 0 };
        if (guest_mem_write(mem, MEMMAP_START_INFO_ADDR + MODLIST_OFFSET + i * sizeof(m),
                            &m, sizeof(m)))
            return -EFAULT;
    }
    /* E820-style map: RAM below the boot-data page is usable, boot data is reserved so the
     * guest does not reuse it, then the rest of RAM (around the ACPI tables, if any). */
    struct hvm_memmap_entry map[6];
    unsigned n = 0;
    uint64_t after_boot = MEMMAP_FDT_ADDR + MEMMAP_FDT_MAX;
    map[n++] = (struct hvm_memmap_entry){ 0, MEMMAP_START_INFO_ADDR, 1, 0 };
    map[n++] = (struct hvm_memmap_entry){ MEMMAP_START_INFO_ADDR,
                                         after_boot - MEMMAP_START_INFO_ADDR, 2, 0 };
    if (rsdp) {
        map[n++] = (struct hvm_memmap_entry){ after_boot, MEMMAP_ACPI_ADDR - after_boot, 1, 0 };
        map[n++] = (struct hvm_memmap_entry){ MEMMAP_ACPI_ADDR, MEMMAP_ACPI_MAX, 2, 0 };
        after_boot = MEMMAP_ACPI_ADDR + MEMMAP_ACPI_MAX;
    }
    map[n++] = (struct hvm_memmap_entry){ after_boot, r[0].size - after_boot, 1, 0 };
    if (nr == 2)
        map[n++] = (struct hvm_memmap_entry){ r[1].base, r[1].size, 1, 0 };
    if (guest_mem_write(mem, MEMMAP_START_INFO_ADDR + MEMMAP_OFFSET, map, n * sizeof(map[0])))
        return -EFAULT;
    si.nr_modules = nmods;
    si.modlist_paddr = nmods ? MEMMAP_START_INFO_ADDR + MODLIST_OFFSET : 0;
    si.cmdline_paddr = MEMMAP_CMDLINE_ADDR;
    si.rsdp_paddr = rsdp;
    si.memmap_paddr = MEMMAP_START_INFO_ADDR + MEMMAP_OFFSET;
    si.memmap_entries = n;
    if (guest_mem_write(mem, MEMMAP_START_INFO_ADDR, &si, sizeof(si)))
        return -EFAULT;
    *start_info = MEMMAP_START_INFO_ADDR;
    return 0;
}
