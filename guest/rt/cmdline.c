/* Boot information kept after rt_main: the cmdline copy, the FDT, the RAM end. */
#include "rt_internal.h"

static const char *cmdline = "";
static const void *fdt_blob;
static uint64_t ram_end;

void rt_cmdline_set(const char *s) { cmdline = s ? s : ""; }
void rt_fdt_set(const void *fdt) { fdt_blob = fdt; }
void rt_ram_end_set(uint64_t end) { ram_end = end; }

const char *rt_cmdline(void) { return cmdline; }
const void *rt_fdt(void) { return fdt_blob; }
uint64_t rt_ram_end(void) { return ram_end; }

int rt_cmdline_get(const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *p = cmdline;

    if (!kl)
        return 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        size_t wl = (size_t)(p - w);
        if (wl < kl || memcmp(w, key, kl) != 0 || (wl > kl && w[kl] != '='))
            continue;
        if (out && outlen) {
            const char *v = wl > kl ? w + kl + 1 : w + wl;
            size_t vl = (size_t)(p - v);
            if (vl > outlen - 1)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
        }
        return 1;
    }
    return 0;
}
