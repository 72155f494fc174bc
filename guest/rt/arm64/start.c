/* arm64 C entry: the FDT in X0 gives the command line (/chosen/bootargs) and the RAM that
 * holds the program (/memory@...); then main, as on x86 (start.c: rt_run_main). */
#include <libfdt.h>

#include "../rt_internal.h"

void rt_main_fdt(const void *fdt);

static void find_ram_end(const void *fdt)
{
    uint64_t img = (uint64_t)(uintptr_t)__image_end;
    int node;

    fdt_for_each_subnode(node, fdt, 0) {
        int len = 0;
        const char *type = fdt_getprop(fdt, node, "device_type", &len);
        const fdt64_t *reg = fdt_getprop(fdt, node, "reg", &len);
        if (!type || strcmp(type, "memory") || !reg || len < 16)
            continue;
        uint64_t base = fdt64_to_cpu(reg[0]), size = fdt64_to_cpu(reg[1]);
        if (base < img && img <= base + size)
            rt_ram_end_set(base + size);
    }
}

void rt_main_fdt(const void *fdt)
{
    const char *cmdline = "";

    if (fdt && fdt_magic(fdt) == FDT_MAGIC && fdt_check_header(fdt) == 0) {
        rt_fdt_set(fdt);
        int chosen = fdt_path_offset(fdt, "/chosen");
        const char *b = chosen >= 0 ? fdt_getprop(fdt, chosen, "bootargs", NULL) : NULL;
        if (b)
            cmdline = b;
        find_ram_end(fdt);
    }
    rt_run_main(cmdline);
}
