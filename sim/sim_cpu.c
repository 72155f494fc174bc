/* The software CPU backend: one x86_64 vCPU on unicorn 2.0.1 with a deterministic virtual
 * clock. Guest RAM is mapped from the guest_mem host pointers, the MMIO hole goes to the
 * MMIO bus (LAPIC and I/O APIC are regions on it), IN/OUT go to the PIO bus. A block hook
 * counts instructions (per-block counts decoded once), fires timers, calls back into the
 * VMM's poll() and delivers interrupts. sim/README.md lists the unicorn facts this rests on. */
#include "sim_internal.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <x86intrin.h>

#include "vmm/memmap.h"

/* uc_emu_start's "until". It has no effect: the engine runs with the exits mechanism on and
 * no exit set (sim_create says why); a non-canonical address no guest PC can ever equal. */
#define UNTIL_NEVER 0x8000000000000000ULL
/* HLT with IF=1: wakeups without a deliverable interrupt before we call the guest hung. */
#define SIM_IDLE_WAKEUPS_MAX 100000u

static void record_exit(struct cpu *c, enum exit_kind kind, uint64_t addr, uint64_t value,
                        unsigned size)
{
    struct cpu_exit_record *r = &c->ring[c->ring_head];

    r->insns = c->insns + c->pend;
    r->rip = c->cur ? c->cur->pc : 0;       /* start of the running block */
    r->addr = addr;
    r->value = value;
    r->kind = (uint8_t)kind;
    r->size = (uint8_t)size;
    c->ring_head = (c->ring_head + 1) % CPU_RECENT_EXITS;
    if (c->ring_n < CPU_RECENT_EXITS)
        c->ring_n++;
    if (c->env.stats)
        c->env.stats->exits[kind]++;
}

/* Bounded copy for one-line details (snprintf "%s" warns about truncation under -Werror). */
static void set_detail(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void request_stop(struct cpu *c, enum cpu_stop_reason reason, uint64_t addr,
                         const char *detail)
{
    if (!c->stop_set) {
        c->stop_set = 1;
        c->stop_reason = reason;
        c->fault_addr = addr;
        if (detail && detail != c->detail)
            set_detail(c->detail, sizeof(c->detail), detail);
    }
    uc_emu_stop(c->uc);
}

static void commit(struct cpu *c)
{
    c->insns += c->pend;
    c->vc.now += c->pend * VCLOCK_NS_PER_INSN;
    c->pend = 0;
}

static void check_device_stop(struct cpu *c)
{
    if (c->env.stop_requested && *c->env.stop_requested)
        request_stop(c, CPU_STOP_REQUESTED, 0, "stop requested");
}

/* ---- hooks ---- */

/* A stop decided in the block hook takes effect before the block runs. unicorn 2.0.1 does
 * not put RIP back to the block start in that case once any UC_HOOK_CODE hook exists: RIP
 * keeps whatever was last synced. So the run loop resumes from here. */
static void stop_before_block(struct cpu *c, uint64_t pc)
{
    c->resume_pc = pc;
    c->resume_valid = 1;
    uc_emu_stop(c->uc);
}


/* A block not the last one seen: find it, or decode and add it. Returns NULL when the hook
 * must return at once (a stop was requested). */
static struct sim_block *block_lookup(struct cpu *c, uint64_t pc, uint32_t size,
                                      uint64_t space)
{
    struct sim_block *b = blocks_find(&c->blocks, pc, size, space);
    if (!b) {
        c->cur = NULL;                  /* the table may move: no pointer into it survives */
        b = blocks_add(c, pc, size, space);
        if (!b) {
            request_stop(c, CPU_STOP_ERROR, 0, "out of memory for the block table");
            stop_before_block(c, pc);
            return NULL;
        }
    }
    c->last_block = b;
    return b;
}

/* The counts of the block at pc, whose hook data t has none yet. A translated block with
 * data of its own (unicorn_blockhook.c) is decoded now, at its first run, and keeps its
 * counts for life: QEMU retires a translated block whenever its code is written. Blocks
 * sharing the vCPU's any_tb are found by address (the last block seen, then the table).
 * NULL when the hook must return at once. */
static __attribute__((noinline)) struct sim_block *block_of(struct cpu *c, struct sim_tb *t,
                                                            uint64_t pc, uint32_t size)
{
    uint64_t space = sim_block_space(c, pc);
    struct sim_block *b = c->last_block;

    if (t != &c->any_tb) {
        blocks_decode(c, &t->blk, pc, size, space);
        t->icount = t->blk.icount;
        t->ends_sti = t->blk.ends_sti;
        t->ready = 1;
        return &t->blk;
    }
    if (!b || b->pc != pc || b->size != size || b->space != space)
        b = block_lookup(c, pc, size, space);
    return b;
}

/* Timers due at the block boundary; 1 when the hook must return (stop or poll). */
static __attribute__((noinline)) int block_timers(struct cpu *c, uint64_t pc)
{
    c->hook_pc = pc;                    /* a snapshot taken by a timer resumes here */
    c->in_block_hook = 1;
    vclock_run_due(&c->vc);
    c->in_block_hook = 0;
    if (c->vc.now >= c->next_poll_ns) {
        c->want_poll = 1;
        stop_before_block(c, pc);       /* the block has not run: it runs after the poll */
        return 1;
    }
    check_device_stop(c);
    if (c->stop_set) {
        stop_before_block(c, pc);
        return 1;
    }
    return 0;
}

/* 1 when the vCPU runs at CPL 3 (user mode): x86.c cannot deliver from there. */
static int cpl3(uc_engine *uc)
{
    uint64_t cs = 0;
    uc_reg_read(uc, UC_X86_REG_CS, &cs);
    return (cs & 3) == 3;
}

/* A #UD taken at CPL 3 ended uc_emu_start (unicorn reports #UD that way); the run resumed
 * at the faulting instruction and it is delivered here, inside QEMU's loop. */
static __attribute__((noinline)) void block_pending_ud(struct cpu *c, uint64_t pc)
{
    c->pending_ud = 0;
    sim_qemu_deliver(c, 6, pc);
    c->inhibit = 0;
}

/* A LAPIC interrupt is pending at a block boundary; 1 when it was delivered or the VM
 * stops (the hook returns), 0 when IF is clear (the block runs). */
static __attribute__((noinline)) int block_interrupt(struct cpu *c, uc_engine *uc, uint64_t pc)
{
    uint64_t fl;
    uc_reg_read(uc, UC_X86_REG_RFLAGS, &fl);
    if (!(fl & 0x200))
        return 0;
    uint8_t v = (uint8_t)c->lapic.pending;
    int err = cpl3(uc) && sim_qemu_can_deliver(c) ? (sim_qemu_deliver(c, v, pc), 0)
                                                   : x86_deliver(c, v, pc, 0, 0);
    if (err == 0) {
        lapic_ack(&c->lapic, v);
        record_exit(c, EXIT_IRQ, v, 0, 0);
        c->inhibit = 0;
        return 1;                       /* the handler runs next; this block runs later */
    }
    char d[200];
    snprintf(d, sizeof(d), "delivering interrupt vector %u: %s", v,
             err == -ENOENT ? "no IDT gate" : c->detail);
    request_stop(c, err == -ENOENT ? CPU_STOP_FAULT : CPU_STOP_TRIPLE_FAULT, pc, d);
    stop_before_block(c, pc);
    return 1;
}

/* on_block when anything is due or the block is new: the whole sequence, in order. */
static __attribute__((noinline)) void block_slow(uc_engine *uc, uint64_t pc, uint32_t size,
                                                 void *opaque)
{
    struct sim_tb *t = opaque;
    struct cpu *c = t->c;
    struct sim_block *b;

    commit(c);
    if (__builtin_expect(c->stop_set | c->pending_ud, 0)) {
        if (c->stop_set) {                      /* an MMIO/PIO callback asked to stop */
            stop_before_block(c, pc);
            return;
        }
        block_pending_ud(c, pc);
        return;
    }
    if (__builtin_expect(t->ready, 1)) {
        b = &t->blk;
    } else {
        b = block_of(c, t, pc, size);
        if (!b)
            return;
    }
    /* the next timer or poll point (the vclock keeps the minimum current on every change) */
    if (__builtin_expect(c->vc.now >= c->vc.alarm, 0) && block_timers(c, pc))
        return;
    if (__builtin_expect(c->lapic.pending >= 0 && !c->inhibit, 0) &&
        block_interrupt(c, uc, pc))
        return;
    c->inhibit = b->ends_sti;
    if (__builtin_expect(c->insns + b->icount > c->insn_limit, 0)) {
        request_stop(c, CPU_STOP_INSN_LIMIT, 0, "instruction limit reached");
        stop_before_block(c, pc);
        return;
    }
    c->cur = b;
    c->pend = b->icount;
}

/* Runs before every translated block: the hot path of the software CPU (890 M calls in a
 * bzImage boot). When nothing is due and the block's counts are known, it only commits and
 * charges; anything else is block_slow's (a tail call, so this saves no registers: perf
 * put a third of the hook's samples on the saves of the one-function version). */
static void on_block(uc_engine *uc, uint64_t pc, uint32_t size, void *opaque)
{
    struct sim_tb *t = opaque;
    struct cpu *c = t->c;

    commit(c);
    if (__builtin_expect(t->ready && !(c->stop_set | c->pending_ud) &&
                         c->vc.now < c->vc.alarm && (c->lapic.pending < 0 || c->inhibit) &&
                         c->insns + t->icount <= c->insn_limit, 1)) {
        c->inhibit = t->ends_sti;
        c->cur = &t->blk;
        c->pend = t->icount;
        return;
    }
    block_slow(uc, pc, size, opaque);
}

/* RDTSC/RDTSCP, from QEMU's helper (unicorn_rdtsc.c) with RIP at the instruction: virtual
 * time there, the block's start (its count is still pending) plus the instructions before
 * it in the block. */
uint64_t sim_rdtsc_now(struct cpu *c, uint64_t rip)
{
    const struct sim_block *b = c->cur;
    unsigned idx = 0, found = 0;

    if (b) {
        for (unsigned i = 0; i < b->nrdtsc && !found; i++)
            if (b->pc + b->rdtsc[i].offset == rip) {
                idx = b->rdtsc[i].index;
                found = 1;
            }
        if (!found)                     /* more sites than the block keeps */
            idx = blocks_count_before(c, b, rip);
    }
    uint64_t tsc = c->vc.now + (uint64_t)idx * VCLOCK_NS_PER_INSN;
    record_exit(c, EXIT_RDTSC, rip, tsc, 8);
    return tsc;
}

static uint64_t mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *opaque)
{
    struct cpu *c = opaque;
    uint64_t v;

    (void)uc;
    bus_read(c->env.mmio, MEMMAP_MMIO_HOLE_START + offset, size, &v);
    record_exit(c, EXIT_MMIO_READ, MEMMAP_MMIO_HOLE_START + offset, v, size);
    check_device_stop(c);
    return v;
}

static void mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value,
                       void *opaque)
{
    struct cpu *c = opaque;

    (void)uc;
    bus_write(c->env.mmio, MEMMAP_MMIO_HOLE_START + offset, size, value);
    record_exit(c, EXIT_MMIO_WRITE, MEMMAP_MMIO_HOLE_START + offset, value, size);
    check_device_stop(c);
}

static uint32_t pio_in(uc_engine *uc, uint32_t port, int size, void *opaque)
{
    struct cpu *c = opaque;
    uint64_t v;

    (void)uc;
    bus_read(c->env.pio, port, (unsigned)size, &v);
    record_exit(c, EXIT_PIO_IN, port, v, (unsigned)size);
    check_device_stop(c);
    return (uint32_t)v;
}

static void pio_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *opaque)
{
    struct cpu *c = opaque;

    (void)uc;
    bus_write(c->env.pio, port, (unsigned)size, value);
    record_exit(c, EXIT_PIO_OUT, port, value, (unsigned)size);
    check_device_stop(c);
}

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS", "#NP", "#SS",
    "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static int vector_has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17;
}

/* CPU exceptions (and INT n) arrive here with RIP at the faulting instruction (after it for
 * INT n, INT3, INTO). A gate in the guest's IDT gets it, like hardware would. */
static void on_intr(uc_engine *uc, uint32_t intno, void *opaque)
{
    struct cpu *c = opaque;
    uint64_t rip, cr2 = 0;
    char d[200];

    uc_reg_read(uc, UC_X86_REG_RIP, &rip);
    /* the rest of the block does not run: retire only what came before the exception */
    if (c->cur && c->pend)
        c->pend = blocks_count_before(c, c->cur, rip);
    commit(c);
    if (intno < 256 && sim_qemu_can_deliver(c)) {
        struct x86_regs r;
        x86_read_regs(c, &r);
        if (x86_has_gate(c, &r, intno)) {
            sim_qemu_deliver_exception(c);  /* QEMU's delivery, QEMU's error code */
            c->inhibit = 0;
            return;
        }                               /* no gate: reported below, as it always was */
    }
    if (intno == 14)
        uc_reg_read(uc, UC_X86_REG_CR2, &cr2);
    if (intno > 255) {
        snprintf(d, sizeof(d), "unexpected CPU exception %u", intno);
        request_stop(c, CPU_STOP_FAULT, 0, d);
        return;
    }
    /* unicorn does not expose the error code. For #PF it is rebuilt: P from our own walk
     * of the page tables (a walk that succeeds means a protection fault), W from what the
     * instruction does, I/D when the fault address is RIP. Other vectors push 0. */
    uint32_t code = 0;
    if (intno == 14) {
        struct x86_regs r;
        uint64_t pa;
        x86_read_regs(c, &r);
        if (x86_translate(c, &r, cr2, &pa) == 0)
            code |= 1;
        if (cr2 == rip)
            code |= 0x10;
        else if (blocks_insn_writes_memory(c, rip))
            code |= 2;
    }
    int err = x86_deliver(c, intno, rip, intno < 32 && vector_has_error_code(intno), code);
    if (err == 0) {
        if (intno == 0 || intno == 8 || (intno >= 10 && intno <= 14))
            x86_exc_clear(c);           /* delivered: QEMU must not turn the next into #DF */
        c->inhibit = 0;
        return;
    }
    const char *name = intno < 32 && exc_names[intno] ? exc_names[intno] : "interrupt";
    if (err == -ENOENT) {
        if (intno == 14)
            snprintf(d, sizeof(d), "unhandled page fault (#PF) at address %#llx, no IDT gate",
                     (unsigned long long)cr2);
        else
            snprintf(d, sizeof(d), "unhandled exception %s (vector %u), no IDT gate", name,
                     intno);
        request_stop(c, CPU_STOP_FAULT, cr2, d);
    } else {
        snprintf(d, sizeof(d), "%s (vector %u) while delivering: %.150s", name, intno, c->detail);
        request_stop(c, err == -ENOTSUP ? CPU_STOP_FAULT : CPU_STOP_TRIPLE_FAULT, cr2, d);
    }
}

static bool on_unmapped(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
                        int64_t value, void *opaque)
{
    struct cpu *c = opaque;

    (void)uc;
    (void)size;
    (void)value;
    if (!c->fault_seen) {
        c->fault_seen = 1;
        c->unmapped_addr = addr;
        c->unmapped_type = (int)type;
    }
    return false;
}

/* ---- create / boot ---- */

/* Leaves the vCPU in 32-bit protected mode, paging off. unicorn's UC_MODE_32 cannot enter
 * long mode (its CPUID lacks LM, so EFER.LME does not stick), and register writes cannot
 * set hidden segment state in UC_MODE_64 (CS/DS/SS writes only change the selector) nor
 * leave long mode (CR0 writes skip cpu_x86_update_cr0). So we open UC_MODE_64 and run a
 * few real instructions on a scratch mapping, before guest RAM is mapped: enable paging
 * (identity map of the scratch), far-return into a flat 32-bit code segment (compatibility
 * mode), clear CR0.PG (which leaves long mode), EFER = 0, CR4 = CR3 = 0, flat data
 * segments, hlt. The guest then enables long mode itself, as on hardware. */
static const uint8_t to_pm32[] = {
    0xb8, 0x20, 0x00, 0x00, 0x00,           /* mov $CR4_PAE, %eax */
    0x0f, 0x22, 0xe0,                       /* mov %rax, %cr4 */
    0xb8, 0x00, 0x30, 0x00, 0x00,           /* mov $0x3000, %eax */
    0x0f, 0x22, 0xd8,                       /* mov %rax, %cr3 */
    0x0f, 0x20, 0xc0,                       /* mov %cr0, %rax */
    0x0d, 0x01, 0x00, 0x00, 0x80,           /* or $(PG|PE), %eax */
    0x0f, 0x22, 0xc0,                       /* mov %rax, %cr0 */
    0x0f, 0x01, 0x14, 0x25, 0x00, 0x21, 0x00, 0x00, /* lgdt 0x2100 */
    0x6a, 0x08,                             /* push $0x08 (flat 32-bit code) */
    0x68, 0x2c, 0x10, 0x00, 0x00,           /* push $compat (0x102c) */
    0x48, 0xcb,                             /* lretq */
    /* compat: */
    0x0f, 0x20, 0xc0,                       /* mov %cr0, %eax */
    0x25, 0xff, 0xff, 0xff, 0x7f,           /* and $~CR0_PG, %eax */
    0x0f, 0x22, 0xc0,                       /* mov %eax, %cr0: leaves long mode */
    0xb9, 0x80, 0x00, 0x00, 0xc0,           /* mov $MSR_EFER, %ecx */
    0x31, 0xc0,                             /* xor %eax, %eax */
    0x31, 0xd2,                             /* xor %edx, %edx */
    0x0f, 0x30,                             /* wrmsr */
    0x0f, 0x22, 0xe0,                       /* mov %eax, %cr4 */
    0x0f, 0x22, 0xd8,                       /* mov %eax, %cr3 */
    0xb8, 0x10, 0x00, 0x00, 0x00,           /* mov $0x10, %eax (flat data) */
    0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0,     /* mov %eax, %ds / %es / %ss */
    0x8e, 0xe0, 0x8e, 0xe8,                 /* mov %eax, %fs / %gs */
    0xf4,                                   /* hlt */
};

static int enter_pm32(struct cpu *c, char *why, size_t whylen)
{
    const uint64_t base = 0, size = 0x6000;
    uint64_t gdt[3] = { 0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL };
    uint8_t gdtr[10] = { sizeof(gdt) - 1, 0, 0x00, 0x20, 0, 0, 0, 0, 0, 0 };
    uint64_t pml4 = 0x4003, pdpt = 0x5003, pd = 0x83, rsp = 0x1000, v;
    uc_x86_msr efer = { .rid = 0xc0000080u };

    if (uc_mem_map(c->uc, base, size, UC_PROT_ALL) ||
        uc_mem_write(c->uc, 0x1000, to_pm32, sizeof(to_pm32)) ||
        uc_mem_write(c->uc, 0x2000, gdt, sizeof(gdt)) ||
        uc_mem_write(c->uc, 0x2100, gdtr, sizeof(gdtr)) ||
        uc_mem_write(c->uc, 0x3000, &pml4, 8) || uc_mem_write(c->uc, 0x4000, &pdpt, 8) ||
        uc_mem_write(c->uc, 0x5000, &pd, 8)) {
        snprintf(why, whylen, "sim: cannot map the boot scratch page");
        return -ENOMEM;
    }
    uc_reg_write(c->uc, UC_X86_REG_RSP, &rsp);
    uc_err e = uc_emu_start(c->uc, 0x1000, UNTIL_NEVER, 0, 0);
    uc_reg_read(c->uc, UC_X86_REG_CR0, &v);
    uc_reg_read(c->uc, UC_X86_REG_MSR, &efer);
    /* drop the scratch translations (not uc_ctl_flush_tlb: a whole TB flush costs 0.3-3 s
     * here; leaving paging already flushed the TLB) */
    uc_ctl_remove_cache(c->uc, 0x1000, 0x1000 + sizeof(to_pm32));
    uc_mem_unmap(c->uc, base, size);
    if (e != UC_ERR_OK || (v & 0x80000001ULL) != 1 || efer.value != 0) {
        snprintf(why, whylen, "sim: switching to 32-bit protected mode failed (%s, cr0 %#llx)",
                 uc_strerror(e), (unsigned long long)v);
        return -EIO;
    }
    /* GDTR limit 0: the boot GDT is gone; the guest loads its own (PVH says it must) */
    uc_x86_mmr none = { 0 };
    uc_reg_write(c->uc, UC_X86_REG_GDTR, &none);
    return 0;
}

static void sim_destroy(struct cpu *c);

static int sim_create(const struct cpu_env *env, struct cpu **out)
{
    char why[160];
    struct cpu *c = calloc(1, sizeof(*c));
    uc_hook h;
    int err = -EINVAL;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->env = *env;
    vclock_init(&c->vc);
    lapic_init(&c->lapic, &c->vc, 0);
    ioapic_init(&c->ioapic, &c->lapic);
    c->lapic.on_eoi = ioapic_eoi;
    c->lapic.on_eoi_opaque = &c->ioapic;
    c->insn_limit = env->max_insns ? env->max_insns : UINT64_MAX;
    c->next_poll_ns = SIM_POLL_NS;
    vclock_set_limit(&c->vc, SIM_POLL_NS);

    if (!env->mem || !env->mmio || !env->pio) {
        fprintf(stderr, "sim: cpu_env lacks memory or buses\n");
        goto fail;
    }
    if (blocks_init(&c->blocks) || cs_open(CS_ARCH_X86, CS_MODE_64, &c->cs) != CS_ERR_OK) {
        err = -ENOMEM;
        goto fail;
    }
    /* With THP "always", the first write to unicorn's TCG code buffer faults in a whole
     * 2 MB page the kernel must zero: about 6 % of a short run (sim/README.md). */
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &c->uc) != UC_ERR_OK) {
        fprintf(stderr, "sim: uc_open failed\n");
        c->uc = NULL;
        err = -EIO;
        goto fail;
    }
    /* With `until` as the only exit, unicorn 2.0.1 drops the cached code at that address at
     * the end of every uc_emu_start, translating it like a fetch: for a non-canonical (or
     * unmapped) address that raises a #GP inside unicorn and leaves QEMU's old_exception
     * at 13, so the guest's next exception arrived as #DF (sim/README.md). The exits
     * mechanism with an empty set has no exit to drop and never stops on an address. */
    if (uc_ctl_exits_enable(c->uc) != UC_ERR_OK) {
        fprintf(stderr, "sim: cannot switch off unicorn's until address\n");
        err = -EIO;
        goto fail;
    }
    err = enter_pm32(c, why, sizeof(why));
    if (err) {
        fprintf(stderr, "%s\n", why);
        goto fail;
    }
    for (unsigned i = 0; i < env->mem->nranges; i++) {
        const struct guest_mem_range *r = &env->mem->ranges[i];
        if (!r->host || (r->gpa | r->size | (uintptr_t)r->host) & 0xfff) {
            fprintf(stderr, "sim: RAM range %u at %#llx: needs page-aligned host memory\n", i,
                    (unsigned long long)r->gpa);
            err = -EINVAL;
            goto fail;
        }
        if (uc_mem_map_ptr(c->uc, r->gpa, r->size, UC_PROT_ALL, r->host) != UC_ERR_OK) {
            fprintf(stderr, "sim: cannot map RAM range %u at %#llx\n", i,
                    (unsigned long long)r->gpa);
            err = -EINVAL;
            goto fail;
        }
    }
    if (uc_mmio_map(c->uc, MEMMAP_MMIO_HOLE_START, MEMMAP_MMIO_HOLE_END - MEMMAP_MMIO_HOLE_START,
                    mmio_read, c, mmio_write, c) != UC_ERR_OK) {
        fprintf(stderr, "sim: cannot map the MMIO hole\n");
        err = -EIO;
        goto fail;
    }
    if (bus_register(env->mmio, MEMMAP_LAPIC_BASE, MEMMAP_LAPIC_SIZE, &lapic_bus_ops,
                     &c->lapic, "lapic") < 0 ||
        bus_register(env->mmio, MEMMAP_IOAPIC_BASE, MEMMAP_IOAPIC_SIZE, &ioapic_bus_ops,
                     &c->ioapic, "ioapic") < 0) {
        fprintf(stderr, "sim: cannot register the APICs on the MMIO bus\n");
        err = -EEXIST;
        goto fail;
    }
    c->any_tb.c = c;
    if (uc_hook_add(c->uc, &h, UC_HOOK_BLOCK, (void *)on_block, &c->any_tb, 1, 0) ||
        uc_hook_add(c->uc, &h, UC_HOOK_INTR, (void *)on_intr, c, 1, 0) ||
        uc_hook_add(c->uc, &h, UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED |
                    UC_HOOK_MEM_FETCH_UNMAPPED | UC_HOOK_MEM_PROT, (void *)on_unmapped, c, 1, 0) ||
        uc_hook_add(c->uc, &h, UC_HOOK_INSN, (void *)pio_in, c, 1, 0, UC_X86_INS_IN) ||
        uc_hook_add(c->uc, &h, UC_HOOK_INSN, (void *)pio_out, c, 1, 0, UC_X86_INS_OUT)) {
        fprintf(stderr, "sim: cannot install unicorn hooks\n");
        err = -EIO;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    sim_destroy(c);
    return err;
}

/* CPU_BOOT_LINUX64 tables, at the addresses the KVM backend uses (vmm/kvm/kvm_internal.h):
 * GDT (null, null, 0x10 code64, 0x18 data) at 0x1000, PML4 0x2000, PDPT 0x3000, PDs
 * 0x8000-0xbfff mapping 0-4 GiB with 2 MiB pages. The switch itself runs as real guest
 * instructions (a stub at 0x1100, in the GDT's page), then the clock is reset to zero. */
#define L64_GDT  0x1000ULL
#define L64_STUB 0x1100ULL
#define L64_PML4 0x2000ULL
#define L64_PDPT 0x3000ULL
#define L64_PD   0x8000ULL

static const uint8_t to_long64[] = {
    0x31, 0xc0, 0x0f, 0xa2,                           /* xor %eax, %eax; cpuid (unicorn_irq.c) */
    0xb8, 0x20, 0x00, 0x00, 0x00, 0x0f, 0x22, 0xe0,   /* mov $CR4_PAE, %eax; mov %eax, %cr4 */
    0xb8, 0x00, 0x20, 0x00, 0x00, 0x0f, 0x22, 0xd8,   /* mov $0x2000, %eax; mov %eax, %cr3 */
    0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32,         /* mov $MSR_EFER, %ecx; rdmsr */
    0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30,         /* or $EFER_LME, %eax; wrmsr */
    0x0f, 0x01, 0x15, 0xf0, 0x10, 0x00, 0x00,         /* lgdt 0x10f0 */
    0x0f, 0x20, 0xc0, 0x0d, 0x11, 0x00, 0x00, 0x80,   /* mov %cr0, %eax; or $(PG|ET|PE) */
    0x0f, 0x22, 0xc0,                                 /* mov %eax, %cr0 */
    0xea, 0x40, 0x11, 0x00, 0x00, 0x10, 0x00,         /* ljmp $0x10, $0x1140 */
    0, 0, 0, 0, 0,                                    /* pad to 0x40 */
    0xb8, 0x18, 0x00, 0x00, 0x00,                     /* 0x1140: mov $0x18, %eax */
    0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0x8e, 0xe0, 0x8e, 0xe8, /* ds es ss fs gs */
    0xf4,                                             /* hlt */
};

static int enter_long64(struct cpu *c)
{
    struct guest_mem *m = c->env.mem;
    uint64_t *gdt = guest_mem_host(m, L64_GDT, 0x100), *pml4 = guest_mem_host(m, L64_PML4, 0x1000);
    uint64_t *pdpt = guest_mem_host(m, L64_PDPT, 0x1000), *pd = guest_mem_host(m, L64_PD, 0x4000);
    uint8_t *stub = guest_mem_host(m, L64_STUB, sizeof(to_long64));

    if (!gdt || !pml4 || !pdpt || !pd || !stub)
        return -EFAULT;
    gdt[0] = gdt[1] = 0;
    gdt[2] = 0x00af9b000000ffffULL;
    gdt[3] = 0x00cf93000000ffffULL;
    uint8_t gdtr[6] = { 31, 0, (uint8_t)L64_GDT, (uint8_t)(L64_GDT >> 8), 0, 0 };
    memcpy((uint8_t *)gdt + 0xf0, gdtr, sizeof(gdtr));
    memset(pml4, 0, 0x1000);
    memset(pdpt, 0, 0x1000);
    pml4[0] = L64_PDPT | 3;
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (L64_PD + i * 0x1000) | 3;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83;
    memcpy(stub, to_long64, sizeof(to_long64));
    uc_ctl_remove_cache(c->uc, L64_STUB, L64_STUB + sizeof(to_long64));
    sim_mmu_enter(c);                   /* identity tables in guest RAM: translation holds */
    uc_err e = uc_emu_start(c->uc, L64_STUB, UNTIL_NEVER, 0, 0);
    sim_mmu_leave(c);
    uint64_t rip = 0;
    uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
    /* the switch is not guest time: start the clock at zero */
    c->insns = c->pend = 0;
    c->vc.now = 0;
    c->ring_n = c->ring_head = 0;
    c->stop_set = 0;
    if (c->env.stats)
        memset(c->env.stats, 0, sizeof(*c->env.stats));
    return e == UC_ERR_OK && rip == L64_STUB + sizeof(to_long64) ? 0 : -EIO;
}

static int sim_boot(struct cpu *c, const struct cpu_boot *boot)
{
    int ids[] = { UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX,
                  UC_X86_REG_RSI, UC_X86_REG_RDI, UC_X86_REG_RBP, UC_X86_REG_RSP,
                  UC_X86_REG_RFLAGS, UC_X86_REG_RIP };
    uint64_t zero = 0, flags = 0x2, entry = boot->entry, arg = boot->arg;
    void *pvh[] = { &zero, &arg, &zero, &zero, &zero, &zero, &zero, &zero, &flags, &entry };
    void *l64[] = { &zero, &zero, &zero, &zero, &arg, &zero, &zero, &zero, &flags, &entry };

    if (c->booted)
        return -EBUSY;
    if (boot->mode == CPU_BOOT_PVH32) {
        if (boot->entry > 0xffffffffULL || boot->arg > 0xffffffffULL)
            return -EINVAL;
        if (uc_reg_write_batch(c->uc, ids, pvh, 10) != UC_ERR_OK)
            return -EIO;
    } else if (boot->mode == CPU_BOOT_LINUX64) {
        int err = enter_long64(c);
        if (err)
            return err;
        if (uc_reg_write_batch(c->uc, ids, l64, 10) != UC_ERR_OK)
            return -EIO;
    } else {
        return -ENOTSUP;
    }
    c->booted = 1;
    return 0;
}

/* ---- run ---- */

static void fill_stop(struct cpu *c, struct cpu_stop *stop, enum cpu_stop_reason reason,
                      uint64_t addr, const char *detail)
{
    uint64_t rip = 0;

    uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
    stop->reason = reason;
    stop->rip = rip;
    stop->fault_addr = addr;
    set_detail(stop->detail, sizeof(stop->detail), detail ? detail : "");
    stop->nrecent = c->ring_n;
    for (unsigned i = 0; i < c->ring_n; i++)
        stop->recent[i] = c->ring[(c->ring_head + CPU_RECENT_EXITS - c->ring_n + i) %
                                  CPU_RECENT_EXITS];
}

static void sync_stats(struct cpu *c)
{
    if (c->env.stats) {
        c->env.stats->insns = c->insns;
        c->env.stats->virtual_ns = c->vc.now;
    }
}

static void do_poll(struct cpu *c)
{
    /* deterministic points: multiples of SIM_POLL_NS of virtual time */
    c->next_poll_ns = (c->vc.now / SIM_POLL_NS + 1) * SIM_POLL_NS;
    vclock_set_limit(&c->vc, c->next_poll_ns);
    sync_stats(c);
    if (c->env.poll)
        c->env.poll(c->env.poll_opaque);
}

static const char *access_name(int type)
{
    switch (type) {
    case UC_MEM_READ_UNMAPPED: return "unmapped read";
    case UC_MEM_WRITE_UNMAPPED: return "unmapped write";
    case UC_MEM_FETCH_UNMAPPED: return "unmapped instruction fetch";
    case UC_MEM_FETCH_PROT: return "instruction fetch from MMIO";
    case UC_MEM_READ_PROT: return "protected read";
    case UC_MEM_WRITE_PROT: return "protected write";
    default: return "bad access";
    }
}

/* HLT returned from uc_emu_start with RIP past it. Returns 1 to resume, 0 to stop
 * (stop filled). */
static int idle_loop(struct cpu *c, struct cpu_stop *stop, uint64_t rip)
{
    uint64_t fl;

    record_exit(c, EXIT_HLT, rip, 0, 0);
    uc_reg_read(c->uc, UC_X86_REG_RFLAGS, &fl);
    for (;;) {
        if (!(fl & 0x200)) {
            fill_stop(c, stop, CPU_STOP_HALTED, 0, "hlt with interrupts disabled");
            return 0;
        }
        if (c->lapic.pending >= 0) {
            uint8_t v = (uint8_t)c->lapic.pending;
            int err = x86_deliver(c, v, rip, 0, 0);
            if (err) {
                char d[200];
                snprintf(d, sizeof(d), "delivering interrupt vector %u: %s", v,
                         err == -ENOENT ? "no IDT gate" : c->detail);
                fill_stop(c, stop, err == -ENOENT ? CPU_STOP_FAULT : CPU_STOP_TRIPLE_FAULT, rip,
                          d);
                return 0;
            }
            lapic_ack(&c->lapic, v);
            record_exit(c, EXIT_IRQ, v, 0, 0);
            c->inhibit = 0;
            return 1;
        }
        uint64_t next = vclock_next_deadline(&c->vc);
        if (next == UINT64_MAX) {
            fill_stop(c, stop, CPU_STOP_HALTED, 0,
                      "hlt with interrupts enabled and no timer armed: nothing can wake it");
            return 0;
        }
        if (++c->idle_wakeups > SIM_IDLE_WAKEUPS_MAX) {
            fill_stop(c, stop, CPU_STOP_HALTED, 0,
                      "hlt: timers keep firing but none raises an interrupt");
            return 0;
        }
        vclock_advance_to(&c->vc, next);    /* idle: jump, don't spin */
        vclock_run_due(&c->vc);
        if (c->vc.now >= c->next_poll_ns)
            do_poll(c);
        if (c->env.stop_requested && *c->env.stop_requested) {
            fill_stop(c, stop, CPU_STOP_REQUESTED, 0, "stop requested");
            return 0;
        }
    }
}

/* `resumed`: a snapshot restored in the middle of this loop (the wakeup count goes on). */
static int idle(struct cpu *c, struct cpu_stop *stop, uint64_t rip, int resumed)
{
    if (!resumed)
        c->idle_wakeups = 0;
    c->in_idle = 1;
    int r = idle_loop(c, stop, rip);
    c->in_idle = 0;
    return r;
}

/* unicorn 2.0.1 aborts the process (tcg_abort: "tcg fatal error") when it translates some
 * invalid encodings, e.g. ff /3 or ff /5 with a register operand (far call/jmp through a
 * register: #UD on hardware). Two guest bytes must not kill vmlab: while this thread is in
 * uc_emu_start, SIGABRT jumps back here and the vCPU is retired as faulted. The engine is
 * left mid-translation, so it is never used (nor closed) again. */
static _Thread_local sigjmp_buf *abort_jmp;

static void on_abort(int sig)
{
    sigjmp_buf *j = abort_jmp;

    if (j) {
        abort_jmp = NULL;
        siglongjmp(*j, 1);
    }
    signal(sig, SIG_DFL);               /* not ours: die as abort() meant */
    raise(sig);
}

static uc_err guarded_emu_start(struct cpu *c, uint64_t rip)
{
    struct sigaction sa, old;
    sigjmp_buf jb;
    volatile uc_err e = UC_ERR_OK;     /* set between sigsetjmp and a longjmp */

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_abort;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, &old);
    sim_mmu_enter(c);
    if (sigsetjmp(jb, 1) == 0) {
        abort_jmp = &jb;
        e = uc_emu_start(c->uc, rip, UNTIL_NEVER, 0, 0);
    } else {
        c->dead = 1;
    }
    abort_jmp = NULL;
    sim_mmu_leave(c);
    sigaction(SIGABRT, &old, NULL);
    return e;
}

static int sim_run(struct cpu *c, struct cpu_stop *stop)
{
    memset(stop, 0, sizeof(*stop));
    if (c->dead) {
        *stop = c->dead_stop;
        return 0;
    }
    if (!c->booted) {
        fill_stop(c, stop, CPU_STOP_ERROR, 0, "run before boot");
        return -EINVAL;
    }
    if (c->resume_halted) {
        /* Restored from a snapshot taken while halted: finish that idle step as the
         * original run did (the rest of the due timers, poll, stop), then idle on. */
        uint64_t rip;
        c->resume_halted = 0;
        c->in_idle = 1;
        vclock_run_due(&c->vc);
        if (c->vc.now >= c->next_poll_ns)
            do_poll(c);
        if (c->env.stop_requested && *c->env.stop_requested) {
            c->in_idle = 0;
            fill_stop(c, stop, CPU_STOP_REQUESTED, 0, "stop requested");
            sync_stats(c);
            return 0;
        }
        uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
        if (!idle(c, stop, rip, 1)) {
            sync_stats(c);
            return 0;
        }
    }
    for (;;) {
        uint64_t rip;

        if (c->env.stop_requested && *c->env.stop_requested) {
            fill_stop(c, stop, CPU_STOP_REQUESTED, 0, "stop requested");
            break;
        }
        c->stop_set = 0;
        c->want_poll = 0;
        c->fault_seen = 0;
        c->detail[0] = 0;
        c->cur = NULL;
        vclock_run_due(&c->vc);
        uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
        c->resume_valid = 0;
        uc_err e = guarded_emu_start(c, rip);
        if (c->dead) {
            char d[200];
            uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
            snprintf(d, sizeof(d), "invalid opcode: unicorn cannot translate the code at "
                     "%#llx (the software CPU is retired)", (unsigned long long)rip);
            commit(c);
            sync_stats(c);
            fill_stop(c, stop, CPU_STOP_FAULT, rip, d);
            stop->rip = rip;
            c->dead_stop = *stop;
            return 0;
        }
        commit(c);
        sync_stats(c);
        if (c->resume_valid) {
            rip = c->resume_pc;
            uc_reg_write(c->uc, UC_X86_REG_RIP, &rip);
        } else {
            uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
        }

        if (c->stop_set) {
            fill_stop(c, stop, c->stop_reason, c->fault_addr, c->detail);
            break;
        }
        if (e == UC_ERR_INSN_INVALID) {
            /* #UD: the guest's handler if it has one, else a fault */
            if (cpl3(c->uc) && c->qemu_cs && c->qemu_env) {
                c->pending_ud = 1;
                continue;
            }
            int err = x86_deliver(c, 6, rip, 0, 0);
            if (err == 0)
                continue;
            char d[200];
            snprintf(d, sizeof(d), "invalid opcode (#UD)%s%s", err == -ENOENT ? "" : ": ",
                     err == -ENOENT ? "" : c->detail);
            fill_stop(c, stop, err == -ENOENT || err == -ENOTSUP ? CPU_STOP_FAULT
                                                                 : CPU_STOP_TRIPLE_FAULT,
                      rip, d);
            break;
        }
        if (e != UC_ERR_OK) {
            char d[200];
            uint64_t addr = c->fault_seen ? c->unmapped_addr : 0;
            if (c->fault_seen)
                snprintf(d, sizeof(d), "%s at %#llx (RIP: start of the block holding the access)",
                         access_name(c->unmapped_type), (unsigned long long)addr);
            else
                snprintf(d, sizeof(d), "unicorn: %s", uc_strerror(e));
            fill_stop(c, stop, CPU_STOP_FAULT, addr, d);
            if (c->cur && c->unmapped_type != UC_MEM_FETCH_UNMAPPED &&
                c->unmapped_type != UC_MEM_FETCH_PROT)
                stop->rip = c->cur->pc;     /* RIP itself may be stale here (see above) */
            break;
        }
        if (c->want_poll) {
            do_poll(c);
            continue;
        }
        if (c->env.stop_requested && *c->env.stop_requested)
            continue;                   /* reported at the top */
        /* neither a hook nor an error: the guest executed HLT */
        if (!idle(c, stop, rip, 0))
            break;
    }
    sync_stats(c);
    return 0;
}

static const struct irq_sink *sim_irq_sink(struct cpu *c) { return &c->ioapic.sink; }
static const struct clock *sim_clock(struct cpu *c) { return &c->vc.clock; }

/* The bus has no unregister call: drop our regions so it never calls into freed memory. */
static void unregister_apics(struct cpu *c)
{
    struct bus *b = c->env.mmio;

    if (!b)
        return;
    for (unsigned i = 0; i < b->nregions;) {
        if (b->regions[i].opaque == &c->lapic || b->regions[i].opaque == &c->ioapic) {
            memmove(&b->regions[i], &b->regions[i + 1],
                    (b->nregions - i - 1) * sizeof(b->regions[0]));
            b->nregions--;
        } else {
            i++;
        }
    }
}

static void sim_destroy(struct cpu *c)
{
    if (!c)
        return;
    unregister_apics(c);
    if (c->exc_ctx && !c->dead)
        uc_context_free(c->exc_ctx);
    sim_stores_forget(c);
    if (c->uc && !c->dead)              /* a dead engine may not survive uc_close: leak it */
        uc_close(c->uc);
    sim_tbs_free(c);                    /* after uc_close: its translated blocks point here */
    if (c->cs)
        cs_close(&c->cs);
    lapic_destroy(&c->lapic);
    vclock_destroy(&c->vc);
    blocks_destroy(&c->blocks);
    free(c);
}

/* The host TSC's rate, for --tsc host: counted against CLOCK_MONOTONIC over 20 ms. */
static uint64_t host_tsc_khz_measure(void)
{
    struct timespec a, b;
    uint64_t t0, t1, ns;

    clock_gettime(CLOCK_MONOTONIC, &a);
    t0 = __rdtsc();
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)b.tv_nsec -
             (uint64_t)a.tv_nsec;
    } while (ns < 20000000u);
    t1 = __rdtsc();
    return (t1 - t0) * 1000000u / ns;
}

static uint64_t sim_tsc_khz(struct cpu *c)
{
    if (c->env.host_tsc) {
        if (!c->host_tsc_khz)
            c->host_tsc_khz = host_tsc_khz_measure();
        return c->host_tsc_khz;
    }
    return VCLOCK_TSC_KHZ;
}

static int sim_probe(char *why, unsigned whylen)
{
    (void)why;
    (void)whylen;
    return 0;
}

const struct cpu_backend_ops sim_cpu_backend = {
    .name = "sim",
    .probe = sim_probe,
    .create = sim_create,
    .boot = sim_boot,
    .run = sim_run,
    .irq_sink = sim_irq_sink,
    .clock = sim_clock,
    .destroy = sim_destroy,
    .tsc_khz = sim_tsc_khz,
    .save = sim_save,
    .restore = sim_restore,
    .restore_timer = sim_restore_timer,
};
