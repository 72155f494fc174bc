/* PAUSE costs virtual time (Debian 12's unicorn 2.0.1).
 *
 * QEMU's PAUSE helper ends the translated block and leaves the CPU loop (a longjmp out of
 * cpu_exec and back in), a yield meant for other vCPU threads. Linux's TSC delay loop
 * (delay_tsc) runs PAUSE then RDTSC each round; on a virtual clock that advances one ns
 * per instruction, a round took about 10 ns, so udelay() spun through 66 M rounds and as
 * many exits per boot (sim/README.md). On silicon PAUSE is slow on purpose: Intel's
 * optimization manual gives about 140 cycles from Skylake on. The linker's --wrap
 * (Makefile, UNICORN_WRAP) routes QEMU's helper through this file, which charges the
 * vCPU's clock those 140 cycles (the virtual CPU runs at 1 GHz) and then runs the real
 * helper. Time stays a function of the instructions run: deterministic. */
#include "sim_internal.h"

void __real_helper_pause_x86_64(void *env, int next_eip_addend);
void __wrap_helper_pause_x86_64(void *env, int next_eip_addend);

void __wrap_helper_pause_x86_64(void *env, int next_eip_addend)
{
    struct cpu *c = sim_mmu_running();

    /* the block's own instructions are committed at the next block, on top of this */
    if (c)
        vclock_advance_to(&c->vc, c->vc.now + VCLOCK_NS_PER_PAUSE);
    __real_helper_pause_x86_64(env, next_eip_addend);
}
