/* arm64 exceptions and interrupts: rt_trap (called by the vector stubs of boot.S) hands
 * synchronous exceptions to the handler of their ESR class, or reports them (and SErrors)
 * and exits 0x7e; IRQs are acknowledged at the GIC's CPU interface (v3 or v2: gic.c),
 * handed to the INTID's handler and ended. */
#include "../rt_internal.h"

static rt_handler_fn handlers[256];
static rt_handler_fn sync_handlers[64];
static uint64_t spurious;

#define INTID_SPURIOUS 1020u

void rt_trap(struct rt_irq_frame *f);

void rt_set_handler(unsigned intid, rt_handler_fn fn)
{
    if (intid < 256)
        handlers[intid] = fn;
}

void rt_set_sync_handler(unsigned ec, rt_handler_fn fn)
{
    if (ec < 64)
        sync_handlers[ec] = fn;
}

uint64_t rt_spurious_count(void) { return spurious; }

void rt_irq_enable(void) { __asm__ volatile("msr daifclr, #2" ::: "memory"); }
void rt_irq_disable(void) { __asm__ volatile("msr daifset, #2" ::: "memory"); }
/* WFI wakes on a pending interrupt even while it is masked; unmasking then takes it. */
void rt_halt(void) { __asm__ volatile("wfi; msr daifclr, #2" ::: "memory"); }
/* The runtime ends every interrupt at the GIC after its handler (irq below). */
void rt_irq_eoi(void) {}

static void irq(struct rt_irq_frame *f)
{
    uint32_t iar = gic_ack();
    unsigned intid = gic_intid(iar);
    if (intid >= INTID_SPURIOUS) {
        spurious++;
        return;
    }
    /* The timer's level stays up until its compare value moves: re-arm (periodic) or stop
     * (one-shot) before the EOI, or the interrupt comes straight back. */
    if (intid == GIC_PPI_VTIMER)
        rt_timer_fired();
    uint64_t vector = f->vector;
    f->vector = intid;
    if (intid < 256 && handlers[intid])
        handlers[intid](f);
    else
        spurious++;
    f->vector = vector;
    gic_eoi(iar);
}

void rt_trap(struct rt_irq_frame *f)
{
    /* Entries 5 and 9 are IRQs taken from EL1 (SP_EL1) and from EL0. */
    if (f->vector == 5 || f->vector == 9) {
        irq(f);
        return;
    }
    __asm__ volatile("mrs %0, esr_el1; mrs %1, far_el1" : "=r"(f->esr), "=r"(f->far));
    unsigned ec = (unsigned)(f->esr >> 26) & 0x3f;
    /* Entry 4 is a synchronous exception taken from EL1 with SP_EL1: the programs' own. */
    if (f->vector == 4 && sync_handlers[ec]) {
        sync_handlers[ec](f);
        return;
    }
    printf("UNHANDLED EXCEPTION entry=%llu esr=0x%llx (class 0x%x) elr=0x%llx far=0x%llx\n",
           (unsigned long long)f->vector, (unsigned long long)f->esr, ec,
           (unsigned long long)f->elr, (unsigned long long)f->far);
    rt_exit(RT_EXIT_EXCEPTION);
}
