/* The CPU model the software CPU reports, for unicorn 2.0.1 (Debian 12's version).
 *
 * unicorn 2.0.1 resets QEMU's feature words to a bare set whatever the CPU model
 * (x86_reg_reset: CPUID.1 EDX 0x07088100 = CX8 CMOV CLFLUSH FXSR SSE SSE2, 0x80000001 EDX
 * 0xa8000000 = 3DNOW RDTSCP LM): no FPU, TSC, APIC, PAE, PGE, PAT, SEP, SYSCALL or NX,
 * although TCG implements them all. A kernel then finds no local APIC, and since QEMU's
 * WRMSR lets EFER.SCE/NXE through only when those words have SYSCALL/NX, it cannot enable
 * SYSCALL or no-execute pages either. The words live in CPUX86State just past the part a
 * uc_context holds, so no API reaches them.
 *
 * The linker's --wrap (Makefile, UNICORN_WRAP) routes the CPUID helper through this file:
 * it receives QEMU's env, and before the first CPUID of each engine the feature words are
 * found (the reset pattern, a few dozen bytes past the context's end) and completed with
 * the features below. QEMU's own CPUID then reports them, and its WRMSR accepts SCE and
 * NXE; nothing else changes, so one model holds for CPUID, MSRs and translation.
 * Not added: MCE/MCA and MTRR (their MSR banks are not set up by unicorn), x2APIC and the
 * TSC-deadline timer (sim/lapic.c models neither), the hypervisor bit. */
#include "sim_internal.h"

#include <stdio.h>
#include <string.h>

/* CPUID.1 EDX */
#define F1_FPU   (1u << 0)
#define F1_DE    (1u << 2)
#define F1_PSE   (1u << 3)
#define F1_TSC   (1u << 4)
#define F1_MSR   (1u << 5)
#define F1_PAE   (1u << 6)
#define F1_APIC  (1u << 9)
#define F1_SEP   (1u << 11)
#define F1_PGE   (1u << 13)
#define F1_PAT   (1u << 16)
#define F1_MMX   (1u << 23)
/* CPUID.80000001 EDX */
#define FX_SYSCALL (1u << 11)
#define FX_NX      (1u << 20)

/* unicorn's x86_reg_reset values (64-bit mode adds LM) */
#define RESET_1_EDX 0x07088100u
#define RESET_X_EDX 0xa8000000u
/* QEMU 5's FeatureWord order: FEAT_1_EDX is 0, FEAT_8000_0001_EDX is 6 (64-bit words) */
#define FEAT_1_EDX 0
#define FEAT_X_EDX 6
/* how far past the context's end the words are searched (they are about 80 bytes in) */
#define SEARCH_BYTES 1024
/* a uc_context's header before the copy of env: size_t and two enums (uc_priv.h) */
#define UC_CONTEXT_HEADER 16

void __real_helper_cpuid_x86_64(void *env);
void __real_helper_wrmsr_x86_64(void *env);
void __wrap_helper_cpuid_x86_64(void *env);
void __wrap_helper_wrmsr_x86_64(void *env);

/* Byte offset of the feature words in env, or -1. */
static long features_find(struct cpu *c, const uint8_t *env)
{
    size_t from = (uc_context_size(c->uc) - UC_CONTEXT_HEADER + 7) & ~(size_t)7;

    for (size_t off = from; off + 8 * (FEAT_X_EDX + 1) <= from + SEARCH_BYTES; off += 8) {
        uint64_t w1, wx;
        memcpy(&w1, env + off + 8 * FEAT_1_EDX, 8);
        memcpy(&wx, env + off + 8 * FEAT_X_EDX, 8);
        if (w1 == RESET_1_EDX && wx == RESET_X_EDX)
            return (long)off;
    }
    return -1;
}

static void cpu_model(struct cpu *c, void *env)
{
    uint8_t *e = env;
    long off = features_find(c, e);

    c->cpuid_done = 1;
    if (off < 0) {
        fprintf(stderr, "sim: warning: cannot locate QEMU's CPUID feature words: the guest "
                        "sees no APIC, TSC, PAE, SYSCALL or NX\n");
        return;
    }
    uint64_t w;
    memcpy(&w, e + off + 8 * FEAT_1_EDX, 8);
    w |= F1_FPU | F1_DE | F1_PSE | F1_TSC | F1_MSR | F1_PAE | F1_APIC | F1_SEP | F1_PGE |
         F1_PAT | F1_MMX;
    memcpy(e + off + 8 * FEAT_1_EDX, &w, 8);
    memcpy(&w, e + off + 8 * FEAT_X_EDX, 8);
    w |= FX_SYSCALL | FX_NX;
    memcpy(e + off + 8 * FEAT_X_EDX, &w, 8);
}

void __wrap_helper_cpuid_x86_64(void *env)
{
    struct cpu *c = sim_mmu_running();

    if (c)
        c->qemu_env = env;              /* for QEMU's interrupt delivery (unicorn_irq.c) */
    if (c && !c->cpuid_done)
        cpu_model(c, env);
    __real_helper_cpuid_x86_64(env);
}

/* a guest may set EFER.NXE without asking CPUID first */
void __wrap_helper_wrmsr_x86_64(void *env)
{
    struct cpu *c = sim_mmu_running();

    if (c)
        c->qemu_env = env;
    if (c && !c->cpuid_done)
        cpu_model(c, env);
    __real_helper_wrmsr_x86_64(env);
}
