/* TSC rate: the vmlab FDT's /cpus tsc-frequency-khz, else cmdline tsc_khz=N, else unknown. */
#include <libfdt.h>

#include "rt_internal.h"

uint64_t rt_tsc_khz(void)
{
    const void *fdt = rt_fdt();
    if (fdt) {
        int node = fdt_path_offset(fdt, "/cpus");
        int len = 0;
        const fdt32_t *p = node >= 0 ? fdt_getprop(fdt, node, "tsc-frequency-khz", &len) : NULL;
        if (p && len == 4 && fdt32_to_cpu(*p))
            return fdt32_to_cpu(*p);
    }
    char buf[24];
    if (rt_cmdline_get("tsc_khz", buf, sizeof buf))
        return strtoull(buf, NULL, 10);
    return 0;
}
