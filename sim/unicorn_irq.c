/* Interrupt and exception delivery by QEMU's own code, for guests that run at CPL 3.
 *
 * x86.c performs an interrupt gate by writing registers, which cannot change CPL or the
 * hidden segment state in unicorn 2.0.1 (register writes set only selectors), nor switch
 * to the TSS's RSP0. QEMU's delivery code is in the statically linked library:
 * x86_cpu_do_interrupt() (the exception QEMU just raised, with the error code QEMU
 * computed) and do_interrupt_x86_hardirq() (an external interrupt). Both need QEMU's
 * objects, which the link-time wrappers see go by: the CPUState in every TLB fill
 * (unicorn_mmu.c), the CPUX86State in every CPUID/WRMSR (unicorn_cpuid.c; LINUX64 boots
 * run a CPUID in their mode-switch stub so it is known from the first guest instruction).
 * They may only be called from a hook, inside QEMU's execution loop: a fault while
 * delivering (a bad kernel stack) raises the next exception the QEMU way, through the
 * loop's jump buffer. Writing RIP afterwards makes unicorn leave the translated block and
 * look up the handler's, with the new CS and flags. */
#include "sim_internal.h"

void x86_cpu_do_interrupt_x86_64(void *cs);
void do_interrupt_x86_hardirq_x86_64(void *env, int intno, int is_hw);

int sim_qemu_can_deliver(const struct cpu *c)
{
    return c->qemu_cs && c->qemu_env && sim_mmu_running() == c;
}

void sim_qemu_deliver(struct cpu *c, unsigned vector, uint64_t ret_rip)
{
    uint64_t rip = ret_rip;

    uc_reg_write(c->uc, UC_X86_REG_RIP, &rip);      /* the return address QEMU pushes */
    do_interrupt_x86_hardirq_x86_64(c->qemu_env, (int)vector, 1);
    uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
    uc_reg_write(c->uc, UC_X86_REG_RIP, &rip);      /* leave the block: CS and flags changed */
    c->mmu_valid = 0;
}

void sim_qemu_deliver_exception(struct cpu *c)
{
    uint64_t rip;

    x86_cpu_do_interrupt_x86_64(c->qemu_cs);        /* also clears old_exception */
    uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
    uc_reg_write(c->uc, UC_X86_REG_RIP, &rip);
    c->mmu_valid = 0;
}
