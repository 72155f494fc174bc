/* IDT with all 256 vectors, per-vector C handlers, default exception report. */
#include "rt_internal.h"

struct idt_gate {
    uint16_t off_lo, sel, attr, off_mid;
    uint32_t off_hi, zero;
};

extern char rt_isr_stubs[];
void rt_isr_dispatch(struct rt_irq_frame *f);

static struct idt_gate idt[256] __attribute__((aligned(16)));
static rt_handler_fn handlers[256];
static uint64_t spurious;

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
    "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
    "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

void rt_idt_init(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uint64_t a = (uint64_t)(uintptr_t)rt_isr_stubs + 16 * v;
        idt[v] = (struct idt_gate){
            .off_lo = (uint16_t)a,
            .sel = 0x08,
            .attr = 0x8e00,     /* present, DPL 0, 64-bit interrupt gate (clears IF) */
            .off_mid = (uint16_t)(a >> 16),
            .off_hi = (uint32_t)(a >> 32),
        };
    }
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" ::"m"(idtr));
}

void rt_set_handler(unsigned vector, rt_handler_fn fn)
{
    if (vector < 256)
        handlers[vector] = fn;
}

uint64_t rt_spurious_count(void) { return spurious; }

void rt_isr_dispatch(struct rt_irq_frame *f)
{
    unsigned v = (unsigned)f->vector & 0xff;

    if (handlers[v]) {
        handlers[v](f);
        return;
    }
    if (v < 32) {
        uint64_t cr2;
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
        printf("UNHANDLED EXCEPTION %s vector=%u error=0x%llx rip=0x%llx cr2=0x%llx\n", exc_names[v], v,
               (unsigned long long)f->error_code, (unsigned long long)f->rip, (unsigned long long)cr2);
        rt_exit(RT_EXIT_EXCEPTION);
    }
    spurious++;
    /* the LAPIC spurious vector must not be EOI'd; anything else came through the LAPIC */
    if (v != LAPIC_SPURIOUS_VECTOR && rt_lapic_ready())
        lapic_eoi();
}

void rt_irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
void rt_irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
void rt_halt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
