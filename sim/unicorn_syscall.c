/* SYSCALL for unicorn 2.0.1 (Debian 12's version).
 *
 * unicorn replaces QEMU's SYSCALL helper with a call of its UC_HOOK_INSN syscall hooks
 * followed by `rip += 2`: the instruction does nothing else, so a 64-bit Linux user
 * program's first system call (glibc's brk) "returned" its own number and busybox died
 * at once (measured: `init[1]: segfault at 370 ... in busybox`, its TLS block put at 0).
 * SYSRET is QEMU's and works.
 *
 * The linker's --wrap (Makefile, UNICORN_WRAP) routes the helper through this file, which
 * does what QEMU's own helper does in long mode: RCX = the next RIP, R11 = RFLAGS,
 * RFLAGS &= ~(FMASK | RF), CS and SS from STAR[47:32] with the hidden state of flat CPL 0
 * segments, RIP = LSTAR (CSTAR from compatibility mode). General registers, flags and MSRs
 * go through the API; the hidden segment state, RIP and the translation flags (hflags)
 * are written in QEMU's CPUX86State at QEMU 5's offsets, checked against what the API
 * reads before the first use (a mismatch stops the guest with a clear error instead).
 * Outside long mode, or with EFER.SCE clear, it raises #UD as the CPU would. */
#include "sim_internal.h"

#include <stdio.h>
#include <string.h>

/* QEMU 5's CPUX86State (target/i386/cpu.h): regs[16], eip, eflags, cc_dst, cc_src,
 * cc_src2, cc_op, df, hflags, hflags2, segs[6] of { u32 selector; u64 base; u32 limit;
 * u32 flags } */
#define ENV_EIP       128
#define ENV_HFLAGS    176
#define ENV_SEGS      184
#define SEG_SIZE      24
#define SEG_CS        1
#define SEG_SS        2

#define HF_CPL_MASK   3u
#define HF_CS32       (1u << 4)
#define HF_SS32       (1u << 5)
#define HF_ADDSEG     (1u << 6)
#define HF_LMA        (1u << 14)
#define HF_CS64       (1u << 15)

#define DESC_A   (1u << 8)
#define DESC_W   (1u << 9)          /* data: writable; code: readable */
#define DESC_CS  (1u << 11)
#define DESC_S   (1u << 12)
#define DESC_P   (1u << 15)
#define DESC_L   (1u << 21)
#define DESC_B   (1u << 22)
#define DESC_G   (1u << 23)

#define MSR_EFER  0xc0000080u
#define MSR_STAR  0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_FMASK 0xc0000084u
#define EFER_SCE  1ull

void __wrap_helper_syscall_x86_64(void *env, int next_eip_addend);
void raise_exception_err_ra_x86_64(void *env, int exception_index, int error_code,
                                   uintptr_t retaddr);

static uint64_t msr(struct cpu *c, uint32_t id)
{
    uc_x86_msr m = { .rid = id };
    uc_reg_read(c->uc, UC_X86_REG_MSR, &m);
    return m.value;
}

static void put32(uint8_t *env, size_t off, uint32_t v) { memcpy(env + off, &v, 4); }
static void put64(uint8_t *env, size_t off, uint64_t v) { memcpy(env + off, &v, 8); }
static uint32_t get32(const uint8_t *env, size_t off)
{
    uint32_t v;
    memcpy(&v, env + off, 4);
    return v;
}

/* 1 when the offsets above hold for this engine: RIP, CS, SS and CPL as the API sees them */
static int layout_ok(struct cpu *c, const uint8_t *env)
{
    uint64_t rip = 0, cs = 0, ss = 0, eip;

    uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
    uc_reg_read(c->uc, UC_X86_REG_CS, &cs);
    uc_reg_read(c->uc, UC_X86_REG_SS, &ss);
    memcpy(&eip, env + ENV_EIP, 8);
    uint32_t hf = get32(env, ENV_HFLAGS);
    return eip == rip && get32(env, ENV_SEGS + SEG_CS * SEG_SIZE) == (cs & 0xffff) &&
           get32(env, ENV_SEGS + SEG_SS * SEG_SIZE) == (ss & 0xffff) &&
           (hf & HF_CPL_MASK) == (cs & 3) && (hf & HF_LMA);
}

static void load_seg(uint8_t *env, unsigned seg, uint32_t selector, uint32_t flags)
{
    size_t o = ENV_SEGS + seg * SEG_SIZE;
    put32(env, o, selector);
    put64(env, o + 8, 0);
    put32(env, o + 16, 0xffffffffu);
    put32(env, o + 20, flags);
}

void __wrap_helper_syscall_x86_64(void *envp, int next_eip_addend)
{
    struct cpu *c = sim_mmu_running();
    uint8_t *env = envp;

    if (!c)
        return;                         /* not a vmlab run: unicorn's own behaviour */
    if (!c->syscall_checked) {
        c->syscall_checked = layout_ok(c, env) ? 1 : -1;
        if (c->syscall_checked < 0)
            fprintf(stderr, "sim: SYSCALL: unicorn's CPU state layout is not QEMU 5's: the "
                            "guest gets #UD\n");
    }
    uint32_t hf = get32(env, ENV_HFLAGS);
    if (c->syscall_checked < 0 || !(msr(c, MSR_EFER) & EFER_SCE) || !(hf & HF_LMA)) {
        /* legacy-mode SYSCALL is AMD-only and unused by Linux: #UD, as with SCE clear */
        raise_exception_err_ra_x86_64(env, 6, 0, 0);
        return;
    }
    uint64_t rip, fl, star = msr(c, MSR_STAR);
    uint64_t target = msr(c, (hf & HF_CS64) ? MSR_LSTAR : MSR_CSTAR), fmask = msr(c, MSR_FMASK);
    memcpy(&rip, env + ENV_EIP, 8);
    uc_reg_read(c->uc, UC_X86_REG_EFLAGS, &fl);
    uint64_t rcx = rip + (uint64_t)next_eip_addend, r11 = fl & ~0x10000ull;
    uc_reg_write(c->uc, UC_X86_REG_RCX, &rcx);
    uc_reg_write(c->uc, UC_X86_REG_R11, &r11);
    fl &= ~(fmask | 0x10000ull);
    uc_reg_write(c->uc, UC_X86_REG_EFLAGS, &fl);
    uint32_t sel = (uint32_t)(star >> 32) & 0xffff;
    load_seg(env, SEG_CS, sel & 0xfffc, DESC_G | DESC_P | DESC_S | DESC_CS | DESC_W | DESC_A |
                                        DESC_L);
    load_seg(env, SEG_SS, (sel + 8) & 0xfffc, DESC_G | DESC_B | DESC_P | DESC_S | DESC_W |
                                              DESC_A);
    /* 64-bit code at CPL 0: what QEMU's cpu_x86_load_seg_cache leaves in hflags */
    hf = (hf & ~(HF_CPL_MASK | HF_ADDSEG)) | HF_CS32 | HF_SS32 | HF_CS64;
    put32(env, ENV_HFLAGS, hf);
    put64(env, ENV_EIP, target);
    c->mmu_valid = 0;
}
