/* A tight loop for measuring the software CPU's speed: n=N iterations (default 50 M) of a
 * three-instruction loop, then exit 0. `vmlab run --stats` gives the instruction count;
 * the benchmark divides it by wall time. */
#include "rt.h"

int main(int argc, char **argv)
{
    char v[24];
    uint64_t n = 50000000;

    (void)argc;
    (void)argv;
    if (rt_cmdline_get("n", v, sizeof(v)))
        n = strtoull(v, NULL, 0);
    __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
    printf("spin: done\n");
    return 0;
}
