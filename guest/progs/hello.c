/* hello: the smallest check that boot, serial, the cmdline and exit work.
 * Output is identical on vmlab and QEMU unless the `fdt` flag asks for device-tree facts.
 * (`fdt` also prints rt_tsc_khz(), 0 when unknown.)
 * Flag `fmt` prints a fixed line exercising the printf conversions (checked by the tests). */
#include <libfdt.h>

#include "rt.h"

static int count_nodes(const void *fdt)
{
    int n = 0, depth = 0;
    for (int off = 0; off >= 0; off = fdt_next_node(fdt, off, &depth))
        n++;
    return n;
}

int main(int argc, char **argv)
{
    printf("hello from vmlab guest\n");
    printf("args:");
    if (argc <= 1)
        printf(" (none)");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    if (rt_cmdline_get("fmt", NULL, 0)) {
        char small[8];
        int n = snprintf(small, sizeof small, "%s", "truncated");
        printf("fmt: [%4d] [%-4d] [%05d] [%i] [%u] [%x] [%lx] [%llu] [%lu] [%p] [%s] [%-3s] [%c] [%%] [%s %d]\n", 42,
               42, 42, -7, 4000000000u, 0xbeefu, 0xfedcba9876543210ul, 18446744073709551615ull, 123456789012ul,
               (void *)0x1f, "abc", "ab", 'x', small, n);
    }
    if (rt_cmdline_get("fdt", NULL, 0)) {
        const void *fdt = rt_fdt();
        if (fdt)
            printf("fdt: yes (%d nodes)\n", count_nodes(fdt));
        else
            printf("fdt: no\n");
        printf("tsc: %llu kHz\n", (unsigned long long)rt_tsc_khz());
    }
    return 0;
}
