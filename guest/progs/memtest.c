/* memtest: pattern, address-in-address and walking-ones passes over a RAM range.
 * Default range: 8 MiB starting at the first 2 MiB boundary past the program image.
 * Options: size=MiB, start=ADDR, inject=WORD (flip a bit of that word between the write and
 * the check of the address pass: shows the checker catches a bad word). Prints "memtest: N MiB OK"; on a mismatch prints the
 * address, wrote and read values, and exits 1. */
#include "rt.h"

#define MIB (1024ull * 1024)

static int fail(uint64_t addr, uint64_t want, uint64_t got)
{
    printf("memtest: MISMATCH at 0x%llx wrote 0x%llx read 0x%llx\n", (unsigned long long)addr,
           (unsigned long long)want, (unsigned long long)got);
    return 1;
}

/* value written to word i by each pass */
static uint64_t pattern(int pass, volatile uint64_t *p, uint64_t i)
{
    switch (pass) {
    case 0: return 0x5555555555555555ull;
    case 1: return 0xaaaaaaaaaaaaaaaaull;
    case 2: return (uint64_t)(uintptr_t)p;          /* address in address */
    case 3: return 1ull << (i & 63);                /* walking ones */
    default: return ~(1ull << (i & 63));            /* walking zeros */
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char buf[32];
    uint64_t size_mib = 8;
    uint64_t start = ((uint64_t)(uintptr_t)__image_end + 2 * MIB - 1) & ~(2 * MIB - 1);

    if (rt_cmdline_get("size", buf, sizeof buf))
        size_mib = strtoull(buf, NULL, 0);
    if (rt_cmdline_get("start", buf, sizeof buf))
        start = strtoull(buf, NULL, 0) & ~7ull;
    uint64_t end = start + size_mib * MIB;
    uint64_t ram_end = rt_ram_end();

    if (size_mib == 0 || size_mib > 4096 || end > 0x100000000ull || (ram_end && end > ram_end) ||
        start < (uint64_t)(uintptr_t)__image_end) {
        printf("memtest: range 0x%llx-0x%llx is not free RAM (RAM ends at 0x%llx)\n", (unsigned long long)start,
               (unsigned long long)end, (unsigned long long)ram_end);
        return 2;
    }

    volatile uint64_t *base = (volatile uint64_t *)(uintptr_t)start;
    uint64_t words = (end - start) / 8;
    int inject = rt_cmdline_get("inject", buf, sizeof buf);
    uint64_t inject_word = inject ? strtoull(buf, NULL, 0) % words : 0;
    for (int pass = 0; pass < 5; pass++) {
        for (uint64_t i = 0; i < words; i++)
            base[i] = pattern(pass, &base[i], i);
        if (inject && pass == 2)
            base[inject_word] ^= 1ull << 17;
        for (uint64_t i = 0; i < words; i++) {
            uint64_t want = pattern(pass, &base[i], i), got = base[i];
            if (got != want)
                return fail((uint64_t)(uintptr_t)&base[i], want, got);
        }
    }
    printf("memtest: %llu MiB OK\n", (unsigned long long)size_mib);
    return 0;
}
