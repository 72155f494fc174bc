/* RDTSC and RDTSCP read the virtual clock (Debian 12's unicorn 2.0.1).
 *
 * UC_HOOK_INSN refuses RDTSC in unicorn 2.0.1. vmlab used to hook every rdtsc address with
 * a UC_HOOK_CODE hook that wrote EAX/EDX and then RIP to skip the instruction, which ends
 * the translated block: about 66 M such exits in a Linux boot (its TSC delay loops),
 * sim/README.md. The linker's --wrap (Makefile, UNICORN_WRAP) now routes QEMU's own helpers
 * through this file: the real helper runs first (CR4.TSD's #GP, RDTSCP's ECX = TSC_AUX),
 * then EAX/EDX get the virtual time of the instruction (QEMU syncs RIP to it before the
 * call), and the block runs on. --tsc host keeps QEMU's value (the host TSC). */
#include "sim_internal.h"

void __real_helper_rdtsc_x86_64(void *env);
void __real_helper_rdtscp_x86_64(void *env);
void __wrap_helper_rdtsc_x86_64(void *env);
void __wrap_helper_rdtscp_x86_64(void *env);

static void virtual_tsc(void)
{
    struct cpu *c = sim_mmu_running();
    uint64_t rip;

    if (!c || c->env.host_tsc)
        return;
    uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
    uint64_t tsc = sim_rdtsc_now(c, rip), rax = (uint32_t)tsc, rdx = tsc >> 32;
    uc_reg_write(c->uc, UC_X86_REG_RAX, &rax);
    uc_reg_write(c->uc, UC_X86_REG_RDX, &rdx);
}

void __wrap_helper_rdtsc_x86_64(void *env)
{
    __real_helper_rdtsc_x86_64(env);
    virtual_tsc();
}

void __wrap_helper_rdtscp_x86_64(void *env)
{
    __real_helper_rdtscp_x86_64(env);
    virtual_tsc();
}
