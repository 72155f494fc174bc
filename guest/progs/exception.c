/* exception: CPU exceptions reach the program's own handlers with the right vector, error
 * code and RIP, and register changes made in a handler take effect on return.
 *   #DE from `div %rcx` (48 f7 f1, 3 bytes): fault, RIP at the div; the handler skips it.
 *   #UD from `ud2` (0f 0b): fault, RIP at the ud2; the handler skips it and sets RAX.
 *   #BP from `int3` (cc): trap, RIP after it.
 * Option rounds=N repeats the three checks N times (lines after the first round only on failure).
 * Flag `late`: after the rounds, spin for 3 M loop iterations (more than 2 ms of vmlab's
 *   virtual time, so the software CPU has restarted its run loop a few times), then take a
 *   handled #PF from `mov (%rdi), %eax` (8b 07) at 64 MiB, whose 2 MiB page it marks not
 *   present first (RAM behind it, so only the page tables make it fault): vector 14,
 *   error 0, CR2 the address, RIP at the instruction; the handler skips it.
 * Flags (each ends the run after the three checks):
 *   `unhandled`  a second ud2 with the default handler back: report, status (0x7e<<1)|1
 *   `pagefault`  a read beyond the 4 GiB identity map: unhandled #PF, same status
 *   `assert`     a failing GUEST_ASSERT_EQ: status (0x7f<<1)|1
 * arm64 (same driver, the sites its own): synchronous exceptions to the handlers of their
 * ESR class, each with ELR at the instruction (arm64 reports a brk there, unlike int3):
 *   a data abort (class 0x25) from `ldr w0, [x0]` at 8 GiB, past the 4 GiB map: FAR the
 *   address; an undefined instruction (class 0x00) from `udf #0`, the handler sets X0;
 *   `brk #0x3c` (class 0x3c, the immediate in ESR). Each handler steps over the instruction.
 *   `late` spins as on x86, then takes the data abort again; `unhandled` is a second udf,
 *   `pagefault` a read past the map, both reported by the runtime (ESR, class, ELR, FAR). */
#include "rt.h"

#if defined(__aarch64__)
/* Fixed encodings, at known labels, so the expected ELRs are exact. */
__asm__(".text\n"
        ".globl exc_do_read\n"
        "exc_do_read:\n"
        ".globl exc_read_insn\n"
        "exc_read_insn:\n"
        "  ldr w0, [x0]\n"
        "  ret\n"
        ".globl exc_do_udf\n"
        "exc_do_udf:\n"
        "  mov x0, #0\n"
        ".globl exc_udf_insn\n"
        "exc_udf_insn:\n"
        "  udf #0\n"
        "  ret\n"                           /* returns the X0 the handler set */
        ".globl exc_do_udf_unhandled\n"
        "exc_do_udf_unhandled:\n"
        "  udf #1\n"                        /* its own site for the default-report check */
        "  ret\n"
        ".globl exc_do_brk\n"
        "exc_do_brk:\n"
        ".globl exc_brk_insn\n"
        "exc_brk_insn:\n"
        "  brk #0x3c\n"
        "  ret\n");

uint32_t exc_do_read(uint64_t addr);
uint64_t exc_do_udf(void);
void exc_do_udf_unhandled(void);
void exc_do_brk(void);
extern char exc_read_insn[], exc_udf_insn[], exc_brk_insn[];

#define EXC_KINDS 64                    /* ESR exception classes */
#define EXC_KIND_FMT "class 0x%02x"
#define EXC_BAD_ADDR 0x200000000ull     /* 8 GiB: past the runtime's 4 GiB map */
#define EXC_BRK_IMM 0x3c

static volatile int hits[EXC_KINDS];
static volatile uint64_t last_vector, last_error, last_rip_off;
static volatile uint64_t expect_rip;

/* last_error: what ESR and FAR say beyond the class, 0 when it is what the site did (the
 * brk's immediate, the abort's address). */
static void on_exception(struct rt_irq_frame *f)
{
    unsigned ec = (unsigned)(f->esr >> 26) & 0x3f;
    hits[ec]++;
    last_vector = ec;
    last_error = ec == RT_EC_BRK ? (f->esr & 0xffff) ^ EXC_BRK_IMM
               : ec == RT_EC_DABT_CUR ? f->far ^ EXC_BAD_ADDR : 0;
    last_rip_off = f->elr - expect_rip;
    f->elr += 4;
    if (ec == RT_EC_UNKNOWN)
        f->x[0] = 0x600d;
}

static int check(const char *name, unsigned vector, int after, int quiet);

/* one round of the three exceptions; returns how many behaved */
static int run_round(int quiet)
{
    int ok = 0;

    for (int i = 0; i < EXC_KINDS; i++)
        hits[i] = 0;
    expect_rip = (uintptr_t)exc_read_insn;
    (void)exc_do_read(EXC_BAD_ADDR);
    ok += check("a data abort", RT_EC_DABT_CUR, 0, quiet);

    expect_rip = (uintptr_t)exc_udf_insn;
    uint64_t x0 = exc_do_udf();
    ok += check("an undefined instruction", RT_EC_UNKNOWN, 0, quiet);
    if (x0 != 0x600d) {
        printf("exception: X0 set by the udf handler was not restored (0x%llx)\n", (unsigned long long)x0);
        ok--;
    }

    expect_rip = (uintptr_t)exc_brk_insn;
    exc_do_brk();
    ok += check("brk #0x3c", RT_EC_BRK, 0, quiet);
    return ok;
}

static void exc_install(void)
{
    rt_set_sync_handler(RT_EC_UNKNOWN, on_exception);
    rt_set_sync_handler(RT_EC_DABT_CUR, on_exception);
    rt_set_sync_handler(RT_EC_BRK, on_exception);
}
#else
/* Fixed encodings, at known labels, so the expected RIPs are exact. */
__asm__(".text\n"
        ".globl exc_do_div0\n"
        "exc_do_div0:\n"
        "  xor %ecx, %ecx\n"
        "  mov $1, %eax\n"
        "  xor %edx, %edx\n"
        ".globl exc_div_insn\n"
        "exc_div_insn:\n"
        "  .byte 0x48, 0xf7, 0xf1\n"        /* div %rcx */
        "  ret\n"
        ".globl exc_do_ud2\n"
        "exc_do_ud2:\n"
        "  xor %eax, %eax\n"
        ".globl exc_ud2_insn\n"
        "exc_ud2_insn:\n"
        "  .byte 0x0f, 0x0b\n"              /* ud2 */
        "  ret\n"                           /* returns the RAX the handler set */
        ".globl exc_do_ud2_unhandled\n"
        "exc_do_ud2_unhandled:\n"
        "  .byte 0x0f, 0x0b\n"              /* ud2, its own site for the default-handler check */
        "  ret\n"
        ".globl exc_do_read\n"
        "exc_do_read:\n"
        "  xor %eax, %eax\n"
        ".globl exc_read_insn\n"
        "exc_read_insn:\n"
        "  .byte 0x8b, 0x07\n"              /* mov (%rdi), %eax */
        "  ret\n"
        ".globl exc_do_int3\n"
        "exc_do_int3:\n"
        ".globl exc_int3_insn\n"
        "exc_int3_insn:\n"
        "  .byte 0xcc\n"                    /* int3 */
        "  ret\n");

void exc_do_div0(void);
uint64_t exc_do_ud2(void);
void exc_do_ud2_unhandled(void);
void exc_do_int3(void);
uint32_t exc_do_read(uint64_t addr);
extern char exc_div_insn[], exc_ud2_insn[], exc_int3_insn[], exc_read_insn[];

/* a 2 MiB page of the runtime's identity map (guest/rt/boot.S) the `late` check marks not
 * present */
#define EXC_LATE_ADDR 0x4000000ull
extern uint64_t rt_pml4[];

/* the page-directory entry mapping EXC_LATE_ADDR (the tables are identity-mapped) */
static volatile uint64_t *late_pde(void)
{
    uint64_t *pdpt = (uint64_t *)(uintptr_t)(rt_pml4[0] & ~0xfffull);
    uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[0] & ~0xfffull);
    return &pd[EXC_LATE_ADDR >> 21];
}

#define EXC_KINDS 32
#define EXC_KIND_FMT "vector %u"

static volatile int hits[EXC_KINDS];
static volatile uint64_t last_vector, last_error, last_rip_off;
static volatile uint64_t expect_rip;
static volatile uint64_t last_cr2;

static void on_exception(struct rt_irq_frame *f)
{
    hits[f->vector & 31]++;
    last_vector = f->vector;
    last_error = f->error_code;
    last_rip_off = f->rip - expect_rip;     /* 0 = exactly where expected */
    if (f->vector == 0)
        f->rip += 3;
    else if (f->vector == 6) {
        f->rip += 2;
        f->rax = 0x600d;
    } else if (f->vector == 14) {
        __asm__ volatile("mov %%cr2, %0" : "=r"(last_cr2));
        f->rip += 2;
    }
}

#endif

static int check(const char *name, unsigned vector, int after, int quiet)
{
    int ok = hits[vector] == 1 && last_vector == vector && last_error == 0 && last_rip_off == 0;
    if (!quiet || !ok)
        printf("exception: caught %s (" EXC_KIND_FMT ") %s the instruction: %s\n", name, vector, after ? "after" : "at",
               ok ? "recovered" : "WRONG");
    if (!ok)
        printf("exception:   hits=%d vector=%llu error=0x%llx rip-expected=%lld\n", hits[vector],
               (unsigned long long)last_vector, (unsigned long long)last_error, (long long)last_rip_off);
    return ok;
}

#if !defined(__aarch64__)
/* one round of the three exceptions; returns how many behaved */
static int run_round(int quiet)
{
    int ok = 0;

    for (int i = 0; i < 32; i++)
        hits[i] = 0;
    expect_rip = (uintptr_t)exc_div_insn;
    exc_do_div0();
    ok += check("#DE", 0, 0, quiet);

    expect_rip = (uintptr_t)exc_ud2_insn;
    uint64_t rax = exc_do_ud2();
    ok += check("#UD", 6, 0, quiet);
    if (rax != 0x600d) {
        printf("exception: RAX set by the #UD handler was not restored (0x%llx)\n", (unsigned long long)rax);
        ok--;
    }

    expect_rip = (uintptr_t)exc_int3_insn + 1;
    exc_do_int3();
    ok += check("#BP", 3, 1, quiet);
    return ok;
}
#endif

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char buf[16];
    int rounds = 1, ok = 0;

    if (rt_cmdline_get("rounds", buf, sizeof buf))
        rounds = (int)strtoul(buf, NULL, 0);
    if (rounds < 1 || rounds > 100000) {
        printf("exception: bad rounds=%s\n", buf);
        return 2;
    }
#if defined(__aarch64__)
    exc_install();
#else
    rt_set_handler(0, on_exception);
    rt_set_handler(3, on_exception);
    rt_set_handler(6, on_exception);
#endif
    for (int r = 0; r < rounds; r++)
        ok += run_round(r > 0);
    printf("exception: %d of %d OK\n", ok, 3 * rounds);
    if (ok != 3 * rounds)
        return 1;

    if (rt_cmdline_get("late", NULL, 0)) {
        for (volatile uint32_t spin = 3000000; spin; spin--)
            ;
#if defined(__aarch64__)
        for (int i = 0; i < EXC_KINDS; i++)
            hits[i] = 0;
        expect_rip = (uintptr_t)exc_read_insn;
        (void)exc_do_read(EXC_BAD_ADDR);
        if (!check("a data abort", RT_EC_DABT_CUR, 0, 0))
            return 1;
#else
        for (int i = 0; i < 32; i++)
            hits[i] = 0;
        volatile uint64_t *pdep = late_pde();
        uint64_t pde = *pdep;
        *pdep = 0;
        __asm__ volatile("invlpg (%0)" ::"r"(EXC_LATE_ADDR) : "memory");
        rt_set_handler(14, on_exception);
        expect_rip = (uintptr_t)exc_read_insn;
        (void)exc_do_read(EXC_LATE_ADDR);
        rt_set_handler(14, NULL);
        *pdep = pde;
        __asm__ volatile("invlpg (%0)" ::"r"(EXC_LATE_ADDR) : "memory");
        if (!check("#PF", 14, 0, 0))
            return 1;
        if (last_cr2 != EXC_LATE_ADDR) {
            printf("exception: CR2 0x%llx, want 0x%llx\n", (unsigned long long)last_cr2,
                   EXC_LATE_ADDR);
            return 1;
        }
#endif
    }
    if (rt_cmdline_get("assert", NULL, 0))
        GUEST_ASSERT_EQ(1 + 1, 3);
    if (rt_cmdline_get("unhandled", NULL, 0)) {
#if defined(__aarch64__)
        rt_set_sync_handler(RT_EC_UNKNOWN, NULL);
        printf("exception: udf without a handler\n");
        exc_do_udf_unhandled();
        printf("exception: no undefined-instruction exception\n");
#else
        rt_set_handler(6, NULL);
        printf("exception: ud2 without a handler\n");
        exc_do_ud2_unhandled();
        printf("exception: no #UD\n");
#endif
        return 2;
    }
    if (rt_cmdline_get("pagefault", NULL, 0)) {
#if defined(__aarch64__)
        rt_set_sync_handler(RT_EC_DABT_CUR, NULL);  /* x86 handles #PF only in `late` */
#endif
        printf("exception: reading an unmapped address\n");
        (void)mmio_read32(0x100000000000ull);   /* beyond the 4 GiB identity map: #PF */
        printf("exception: no #PF\n");
        return 2;
    }
    return 0;
}
