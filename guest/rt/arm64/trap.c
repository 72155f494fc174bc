/* arm64 exceptions and interrupts: rt_trap (called by the vector stubs of boot.S) reports
 * synchronous exceptions and SErrors and exits 0x7e; IRQs are acknowledged at the GICv3 CPU
 * interface, handed to the INTID's handler and ended. */
#include "../rt_internal.h"

static rt_handler_fn handlers[256];
static uint64_t spurious;

#define INTID_SPURIOUS 1020u

void rt_trap(struct rt_irq_frame *f);

void rt_set_handler(unsigned intid, rt_handler_fn fn)
{
    if (intid < 256)
        handlers[intid] = fn;
}

uint64_t rt_spurious_count(void) { return spurious; }

void rt_irq_enable(void) { __asm__ volatile("msr daifclr, #2" ::: "memory"); }
void rt_irq_disable(void) { __asm__ volatile("msr daifset, #2" ::: "memory"); }
/* WFI wakes on a pending interrupt even while it is masked; unmasking then takes it. */
void rt_halt(void) { __asm__ volatile("wfi; msr daifclr, #2" ::: "memory"); }

static void irq(struct rt_irq_frame *f)
{
    uint64_t iar;
    __asm__ volatile("mrs %0, icc_iar1_el1" : "=r"(iar));
    unsigned intid = (unsigned)(iar & 0xffffff);
    if (intid >= INTID_SPURIOUS) {
        spurious++;
        return;
    }
    uint64_t vector = f->vector;
    f->vector = intid;
    if (intid < 256 && handlers[intid])
        handlers[intid](f);
    else
        spurious++;
    f->vector = vector;
    __asm__ volatile("msr icc_eoir1_el1, %0; isb" ::"r"(iar) : "memory");
}

void rt_trap(struct rt_irq_frame *f)
{
    /* Entries 5 and 9 are IRQs taken from EL1 (SP_EL1) and from EL0. */
    if (f->vector == 5 || f->vector == 9) {
        irq(f);
        return;
    }
    uint64_t esr, far;
    __asm__ volatile("mrs %0, esr_el1; mrs %1, far_el1" : "=r"(esr), "=r"(far));
    printf("UNHANDLED EXCEPTION entry=%llu esr=0x%llx (class 0x%llx) elr=0x%llx far=0x%llx\n",
           (unsigned long long)f->vector, (unsigned long long)esr,
           (unsigned long long)(esr >> 26), (unsigned long long)f->elr,
           (unsigned long long)far);
    rt_exit(RT_EXIT_EXCEPTION);
}
