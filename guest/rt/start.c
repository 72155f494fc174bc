/* C entry: read hvm_start_info (x86 PVH; arm64/start.c reads the FDT and calls rt_run_main
 * instead), split the cmdline into argv, run main, exit with its value. */
#include <libfdt.h>

#include "rt_internal.h"

#define RT_MAX_ARGS 32
#define RT_CMDLINE_MAX 4096

static char cmdline_copy[RT_CMDLINE_MAX];
static char arg_buf[RT_CMDLINE_MAX];
static char *argv_tab[RT_MAX_ARGS + 1];

void rt_main(const struct hvm_start_info *si);

/* Kernel-style "module.param=value" entries (virtio_mmio.device=...) describe the machine,
 * and a VMM may add them: they are not program arguments, so argv leaves them out. */
static int is_kernel_param(const char *w)
{
    for (; *w && *w != '='; w++)
        if (*w == '.')
            return 1;
    return 0;
}

static int split_args(void)
{
    int argc = 0;
    char *p = arg_buf;

    argv_tab[argc++] = "guest";
    memcpy(arg_buf, cmdline_copy, strlen(cmdline_copy) + 1);
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        if (*p)
            *p++ = 0;
        if (!is_kernel_param(w) && argc < RT_MAX_ARGS)
            argv_tab[argc++] = w;
    }
    argv_tab[argc] = NULL;
    return argc;
}

static void copy_cmdline(const char *c)
{
    size_t n = strnlen(c, sizeof cmdline_copy - 1);
    memcpy(cmdline_copy, c, n);
    cmdline_copy[n] = 0;
}

static _Noreturn void run_main(void)
{
    int argc = split_args();
    int rc = main(argc, argv_tab);
    rt_exit((unsigned)rc);
}

#if defined(__aarch64__)
_Noreturn void rt_run_main(const char *cmdline)
{
    copy_cmdline(cmdline);
    rt_cmdline_set(cmdline_copy);
    run_main();
}
#else
static void find_ram_end(const struct hvm_start_info *si)
{
    if (si->version < 1 || !si->memmap_paddr)
        return;
    const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
    uint64_t img = (uint64_t)(uintptr_t)__image_end;
    for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++) {
        /* QEMU appends an all-zero entry: size 0 never matches */
        if (e[i].type == HVM_MEMMAP_RAM && e[i].size && e[i].addr < img &&
            img <= e[i].addr + e[i].size)
            rt_ram_end_set(e[i].addr + e[i].size);
    }
}

void rt_main(const struct hvm_start_info *si)
{
    rt_idt_init();
    if (!si || si->magic != HVM_START_MAGIC) {
        printf("rt: bad hvm_start_info magic\n");
        rt_exit(RT_EXIT_EXCEPTION);
    }
    if (si->cmdline_paddr)
        copy_cmdline((const char *)(uintptr_t)si->cmdline_paddr);
    rt_cmdline_set(cmdline_copy);
    if (si->nr_modules >= 1 && si->modlist_paddr) {
        const struct hvm_modlist_entry *m = (const void *)(uintptr_t)si->modlist_paddr;
        const void *fdt = (const void *)(uintptr_t)m[0].paddr;
        if (m[0].paddr && m[0].size >= sizeof(struct fdt_header) && fdt_magic(fdt) == FDT_MAGIC &&
            fdt_check_header(fdt) == 0 && fdt_totalsize(fdt) <= m[0].size)
            rt_fdt_set(fdt);
    }
    find_ram_end(si);
    run_main();
}
#endif
