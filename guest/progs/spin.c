/* A tight loop for measuring the software CPU's speed: n=N iterations (default 50 M) of a
 * three-instruction loop, then exit 0. `vmlab run --stats` gives the instruction count;
 * the benchmark divides it by wall time. x87=1: three values on the x87 register stack and
 * a control word of its own before the loop, printed after it ("spin: x87 ..."), so that a
 * snapshot taken during the loop must carry the x87 state (tests/cli/snapshot_restore.sh). */
#include "rt.h"

#define X87_CW 0x0f7f                   /* round toward zero, every exception masked */

static void x87_load(void)
{
    uint16_t cw = X87_CW;

    __asm__ volatile("fninit\n\tfldcw %0\n\tfldpi\n\tfld1\n\tfldl2e" : : "m"(cw));
}

static void x87_print(void)
{
    uint8_t st[3][10];
    uint16_t cw = 0, sw = 0;

    __asm__ volatile("fnstcw %0\n\tfnstsw %1" : "=m"(cw), "=m"(sw));
    __asm__ volatile("fstpt %0\n\tfstpt %1\n\tfstpt %2" : "=m"(st[0]), "=m"(st[1]), "=m"(st[2]));
    printf("spin: x87 cw %04x sw %04x", cw, sw);
    for (int i = 0; i < 3; i++) {
        printf(" st%d ", i);
        for (int b = 9; b >= 0; b--)
            printf("%02x", st[i][b]);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    char v[24];
    uint64_t n = 50000000;

    (void)argc;
    (void)argv;
    if (rt_cmdline_get("n", v, sizeof(v)))
        n = strtoull(v, NULL, 0);
    int x87 = rt_cmdline_get("x87", v, sizeof(v)) && v[0] == '1';
    if (x87)
        x87_load();
    __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
    if (x87)
        x87_print();
    printf("spin: done\n");
    return 0;
}
