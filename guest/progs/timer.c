/* timer: the CPU timer (rt.h: x86 LAPIC, arm64 CNTV), periodic, wakes the halted CPU N times,
 * then a one-shot fires once and stops at 0. Options: ticks=N (10), count=C (initial count,
 * 100000), div=D (divide, 16). Output does not depend on time: equal across VMMs, machines. */
#include "rt.h"

#define TIMER_IRQ RT_TIMER_IRQ(0x40)

static volatile uint64_t ticks;

static void on_timer(struct rt_irq_frame *f)
{
    (void)f;
    ticks++;
    rt_irq_eoi();
}

static uint64_t opt_u(const char *key, uint64_t def)
{
    char buf[24];
    if (!rt_cmdline_get(key, buf, sizeof buf) || !buf[0])
        return def;
    return strtoull(buf, NULL, 0);
}

/* halt until `ticks` reaches n; sti;hlt is atomic (wfi wakes on a masked IRQ): no tick is lost */
static void wait_ticks(uint64_t n)
{
    rt_irq_disable();
    while (ticks < n)
        rt_halt(), rt_irq_disable();
    rt_irq_enable();
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint64_t n = opt_u("ticks", 10);
    uint32_t count = (uint32_t)opt_u("count", 100000);
    unsigned div = (unsigned)opt_u("div", 16);
    uint64_t khz = rt_tsc_khz();

    if (!count || n == 0 || n > 1000000) {
        printf("timer: bad option (ticks=%llu count=%u)\n", (unsigned long long)n, count);
        return 2;
    }
    rt_set_handler(TIMER_IRQ, on_timer);
    rt_timer_init();

    uint64_t t0 = rt_rdtsc();
    rt_timer_start(TIMER_IRQ, count, 1, div);
    wait_ticks(n);
    rt_timer_stop();
    uint64_t t1 = rt_rdtsc();
    uint64_t got = ticks;
    printf("timer: %llu ticks\n", (unsigned long long)n);
    if (rt_cmdline_get("verbose", NULL, 0)) {
        if (khz)
            printf("timer: %llu us per tick\n", (unsigned long long)((t1 - t0) * 1000 / khz / n));
        else
            printf("timer: %llu TSC ticks per tick\n", (unsigned long long)((t1 - t0) / n));
    }

    /* one-shot: exactly one more interrupt, and the counter stays at 0 afterwards */
    ticks = 0;
    rt_timer_start(TIMER_IRQ, count, 0, div);
    wait_ticks(1);
    uint32_t cur = rt_timer_current();
    printf("timer: one-shot fired, current count %u\n", cur);
    GUEST_ASSERT(got >= n);
    GUEST_ASSERT_EQ(cur, 0);
    return 0;
}
