/* The arm64 CPU timer behind rt_timer_*: the EL1 virtual timer (CNTV_CVAL/CTL_EL0, PPI 27),
 * counting in the LAPIC's units (rt.h): count * divide ns of the virtual counter, whose rate
 * is CNTFRQ_EL0. The generic timer has no periodic mode: rt_timer_fired moves the compare
 * value on by one period from the interrupt, so ticks do not drift with handler latency. */
#include "../rt_internal.h"

#define CTL_ENABLE  1u
#define CTL_IMASK   2u
#define CTL_ISTATUS 4u

static uint64_t period;         /* counter ticks */
static unsigned div;
static int periodic;

static uint64_t cntvct(void) { return rt_rdtsc(); }
static uint64_t cntfrq(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(v));
    return v;
}
static void set_cval(uint64_t v) { __asm__ volatile("msr cntv_cval_el0, %0; isb" ::"r"(v) : "memory"); }
static uint64_t get_cval(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, cntv_cval_el0" : "=r"(v));
    return v;
}
static void set_ctl(uint64_t v) { __asm__ volatile("msr cntv_ctl_el0, %0; isb" ::"r"(v) : "memory"); }
static uint64_t get_ctl(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, cntv_ctl_el0" : "=r"(v));
    return v;
}

void rt_timer_init(void)
{
    set_ctl(0);
    gic_init();
    gic_enable_ppi(GIC_PPI_VTIMER);
}

void rt_timer_start(unsigned irq, uint32_t count, int is_periodic, unsigned divide)
{
    (void)irq;      /* always the virtual timer's PPI */
    if (!divide)
        divide = 1;
    /* count * divide ns in counter ticks; 128 * 2^32 ns fits in 64 bits times any rate
     * below 33 GHz. At least one tick, so a period never stands still. */
    period = (uint64_t)count * divide * cntfrq() / 1000000000u;
    if (!period)
        period = 1;
    periodic = is_periodic;
    div = divide;
    set_ctl(0);
    set_cval(cntvct() + period);
    set_ctl(CTL_ENABLE);
}

void rt_timer_stop(void)
{
    periodic = 0;
    set_ctl(0);
}

void rt_timer_fired(void)
{
    if (!periodic) {
        set_ctl(0);     /* fired: stopped, as a LAPIC one-shot at 0 */
        return;
    }
    uint64_t next = get_cval() + period, now = cntvct();
    if (next <= now)    /* a late interrupt: ticks missed are not made up */
        next = now + period;
    set_cval(next);
}

uint32_t rt_timer_current(void)
{
    uint64_t ctl = get_ctl(), now = cntvct(), cval = get_cval();
    if (!(ctl & CTL_ENABLE) || (ctl & CTL_ISTATUS) || cval <= now || !period)
        return 0;
    /* counter ticks left, back in the LAPIC's count of divide ns each */
    return (uint32_t)((cval - now) * 1000000000u / cntfrq() / div);
}
