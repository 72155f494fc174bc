/* Snapshots of the software CPU: registers, virtual clock, LAPIC and I/O APIC.
 *
 * Saving reads architectural state through unicorn. Restoring cannot simply write it back:
 * unicorn 2.0.1 register writes in UC_MODE_64 set only selectors (no hidden segment state)
 * and skip cpu_x86_update_cr0 (see sim/README.md). So restore runs a short stub of real
 * instructions in the still-zero guest RAM (the VM loads RAM after the CPU): from the 32-bit
 * protected mode create() leaves, it loads the saved CR4 and EFER, a scratch GDT holding a
 * 64-bit code descriptor at the saved CS index and flat data descriptors at the saved data
 * selector indices, the saved CR0 (which enters long mode), far-jumps to the saved CS and
 * loads the saved data selectors. The rest (CR3, GPRs, RIP, RFLAGS, GDTR, IDTR, TR, LDTR,
 * FS/GS bases, SSE state) plain register writes set correctly. Snapshots are taken only in
 * 64-bit mode at CPL 0 (the only mode the interrupt delivery supports anyway). */
#include "sim_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/snapshot.h"

#define SNAP_CPU_VERSION 2u               /* 2: the MSRs of msr_ids and the x87 state
                                           * after XMM15 */
#define MSR_EFER 0xc0000080u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define CR0_PE 1ULL
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)

/* Scratch layout in guest RAM for the restore stub (zero before and after). */
#define STUB_CODE 0x1000ULL
#define STUB_CODE64 0x1100ULL
#define STUB_GDTR 0x2000ULL
#define STUB_PML4 0x3000ULL
#define STUB_PDPT 0x4000ULL
#define STUB_PD 0x5000ULL
#define STUB_GDT 0x10000ULL
#define STUB_END 0x20000ULL

/* The MSRs a 64-bit kernel sets once and relies on after (version 2): SYSCALL's STAR,
 * LSTAR, CSTAR and FMASK, SYSENTER's three, PAT, TSC_AUX. A version 1 snapshot has none: a
 * kernel restored from one had SYSCALL jump to 0. */
static const uint32_t msr_ids[] = { 0xc0000081u, 0xc0000082u, 0xc0000083u, 0xc0000084u,
                                    0x174u, 0x175u, 0x176u, 0x277u, 0xc0000103u };
#define NMSR (sizeof(msr_ids) / sizeof(msr_ids[0]))

static const int gpr_ids[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX,
    UC_X86_REG_RSI, UC_X86_REG_RDI, UC_X86_REG_RBP, UC_X86_REG_RSP,
    UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

enum { SEG_CS, SEG_SS, SEG_DS, SEG_ES, SEG_FS, SEG_GS, NSEG };
static const int seg_ids[NSEG] = { UC_X86_REG_CS, UC_X86_REG_SS, UC_X86_REG_DS,
                                   UC_X86_REG_ES, UC_X86_REG_FS, UC_X86_REG_GS };
static const char *const seg_names[NSEG] = { "cs", "ss", "ds", "es", "fs", "gs" };

struct cpu_state {
    uint64_t gpr[16], rip, rflags;
    uint16_t seg[NSEG];
    uint64_t fs_base, gs_base, kernel_gs_base;
    uint64_t cr0, cr2, cr3, cr4, efer;
    uc_x86_mmr gdtr, idtr, tr, ldtr;
    uint32_t mxcsr;
    uint64_t xmm[16][2];
    uint64_t msr[NMSR];                 /* version 2; version 1: PAT's reset value, 0 */
    uint16_t fpcw, fpsw, fptag;         /* version 2 (FPSW with TOP); version 1: FNINIT's */
    uint64_t fp_mant[8];                /* R0-R7 (physical), 80 bits each */
    uint16_t fp_exp[8];
    /* the simulation around it */
    uint64_t insns, now, next_seq, next_poll_ns;
    uint8_t inhibit, halted;
    uint32_t idle_wakeups;
};

static uint64_t rd(struct cpu *c, int id)
{
    uint64_t v = 0;
    uc_reg_read(c->uc, id, &v);
    return v;
}

static uint64_t rd_msr(struct cpu *c, uint32_t msr)
{
    uc_x86_msr m = { .rid = msr };
    uc_reg_read(c->uc, UC_X86_REG_MSR, &m);
    return m.value;
}

static void put_mmr(struct snapshot_writer *w, const uc_x86_mmr *m, int with_sel)
{
    snapshot_put_u64(w, m->base);
    snapshot_put_u32(w, m->limit);
    if (with_sel) {
        snapshot_put_u16(w, m->selector);
        snapshot_put_u32(w, m->flags);
    }
}

static void get_mmr(struct snapshot_reader *r, uc_x86_mmr *m, int with_sel, const char *f)
{
    memset(m, 0, sizeof(*m));
    m->base = snapshot_get_u64(r, f);
    m->limit = snapshot_get_u32(r, f);
    if (with_sel) {
        m->selector = snapshot_get_u16(r, f);
        m->flags = snapshot_get_u32(r, f);
    }
}

static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The L bit of CS's hidden descriptor cache, which unicorn does not expose: the CS selector
 * in the GDT may already say 64-bit while the CPU still runs the old segment (between
 * enabling paging and the far jump of a boot path: compatibility mode). QEMU keeps the six
 * segment caches as {u32 selector, pad, u64 base, u32 limit, u32 flags}, in the order ES CS
 * SS DS FS GS; we find that array in a saved context by the selectors and FS/GS bases we
 * can read. 1: 64-bit code, 0: not, -1: not located (one match exactly, or nothing). */
static int hidden_cs_long(struct cpu *c, const uint16_t seg[NSEG], uint64_t fs_base,
                          uint64_t gs_base)
{
    const uint16_t order[6] = { seg[SEG_ES], seg[SEG_CS], seg[SEG_SS], seg[SEG_DS],
                                seg[SEG_FS], seg[SEG_GS] };
    size_t size = uc_context_size(c->uc);
    uc_context *ctx = NULL;
    int result = -1, matches = 0;

    if (uc_context_alloc(c->uc, &ctx) != UC_ERR_OK)
        return -1;
    uc_context_save(c->uc, ctx);
    const uint8_t *p = (const uint8_t *)(void *)ctx;
    for (size_t off = 0; off + 6 * 24 <= size; off += 4) {
        int ok = 1;
        for (int i = 0; i < 6 && ok; i++)
            ok = ld32(p + off + 24 * i) == order[i];
        if (!ok || ld64(p + off + 24 * 4 + 8) != fs_base || ld64(p + off + 24 * 5 + 8) != gs_base)
            continue;
        uint32_t cs_flags = ld32(p + off + 24 + 20);
        if (!(cs_flags & (1u << 15)))               /* not present: not a segment cache */
            continue;
        matches++;
        result = (cs_flags >> 21) & 1;
    }
    uc_context_free(ctx);
    return matches == 1 ? result : -1;
}

int sim_save(struct cpu *c, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct x86_regs xr;
    struct cpu_state s;

    if (c->dead) {
        snprintf(err, errlen, "the software CPU was retired after a fatal unicorn error");
        return -EIO;
    }
    if (!c->booted) {
        snprintf(err, errlen, "the vCPU has not booted");
        return -EINVAL;
    }
    x86_read_regs(c, &xr);
    if (x86_code_mode(c, &xr) != CODE_64 || !(xr.efer & EFER_LMA)) {
        snprintf(err, errlen, "the vCPU is not in 64-bit mode yet (rip %#llx): snapshots are "
                 "taken once the guest runs in long mode", (unsigned long long)xr.rip);
        return -ENOTSUP;
    }
    if (xr.cs & 3) {
        snprintf(err, errlen, "the vCPU runs at CPL %u: snapshots need CPL 0",
                 (unsigned)(xr.cs & 3));
        return -ENOTSUP;
    }
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 16; i++)
        s.gpr[i] = rd(c, gpr_ids[i]);
    s.rip = c->in_block_hook ? c->hook_pc : rd(c, UC_X86_REG_RIP);
    s.rflags = rd(c, UC_X86_REG_RFLAGS);
    for (int i = 0; i < NSEG; i++)
        s.seg[i] = (uint16_t)rd(c, seg_ids[i]);
    s.fs_base = rd(c, UC_X86_REG_FS_BASE);
    s.gs_base = rd(c, UC_X86_REG_GS_BASE);
    if (hidden_cs_long(c, s.seg, s.fs_base, s.gs_base) == 0) {
        snprintf(err, errlen, "the vCPU is in compatibility mode (rip %#llx, before its far "
                 "jump to 64-bit code): snapshots are taken in 64-bit mode",
                 (unsigned long long)s.rip);
        return -ENOTSUP;
    }
    s.kernel_gs_base = rd_msr(c, MSR_KERNEL_GS_BASE);
    s.cr0 = xr.cr0;
    s.cr2 = rd(c, UC_X86_REG_CR2);
    s.cr3 = xr.cr3;
    s.cr4 = xr.cr4;
    s.efer = xr.efer;
    s.gdtr = xr.gdtr;
    s.idtr = xr.idtr;
    s.tr = xr.tr;
    uc_reg_read(c->uc, UC_X86_REG_LDTR, &s.ldtr);
    uint32_t mx = 0;
    uc_reg_read(c->uc, UC_X86_REG_MXCSR, &mx);
    s.mxcsr = mx;
    for (int i = 0; i < 16; i++)
        uc_reg_read(c->uc, UC_X86_REG_XMM0 + i, s.xmm[i]);
    for (unsigned i = 0; i < NMSR; i++)
        s.msr[i] = rd_msr(c, msr_ids[i]);
    s.fpcw = (uint16_t)rd(c, UC_X86_REG_FPCW);
    s.fpsw = (uint16_t)rd(c, UC_X86_REG_FPSW);
    s.fptag = (uint16_t)rd(c, UC_X86_REG_FPTAG);
    for (int i = 0; i < 8; i++) {
        uint8_t fp[10];
        uc_reg_read(c->uc, UC_X86_REG_FP0 + i, fp);
        memcpy(&s.fp_mant[i], fp, 8);
        memcpy(&s.fp_exp[i], fp + 8, 2);
    }

    snapshot_put_u32(w, SNAP_CPU_VERSION);
    for (int i = 0; i < 16; i++)
        snapshot_put_u64(w, s.gpr[i]);
    snapshot_put_u64(w, s.rip);
    snapshot_put_u64(w, s.rflags);
    for (int i = 0; i < NSEG; i++)
        snapshot_put_u16(w, s.seg[i]);
    snapshot_put_u64(w, s.fs_base);
    snapshot_put_u64(w, s.gs_base);
    snapshot_put_u64(w, s.kernel_gs_base);
    snapshot_put_u64(w, s.cr0);
    snapshot_put_u64(w, s.cr2);
    snapshot_put_u64(w, s.cr3);
    snapshot_put_u64(w, s.cr4);
    snapshot_put_u64(w, s.efer);
    put_mmr(w, &s.gdtr, 0);
    put_mmr(w, &s.idtr, 0);
    put_mmr(w, &s.tr, 1);
    put_mmr(w, &s.ldtr, 1);
    snapshot_put_u32(w, s.mxcsr);
    for (int i = 0; i < 16; i++) {
        snapshot_put_u64(w, s.xmm[i][0]);
        snapshot_put_u64(w, s.xmm[i][1]);
    }
    for (unsigned i = 0; i < NMSR; i++)
        snapshot_put_u64(w, s.msr[i]);
    snapshot_put_u16(w, s.fpcw);
    snapshot_put_u16(w, s.fpsw);
    snapshot_put_u16(w, s.fptag);
    for (int i = 0; i < 8; i++) {
        snapshot_put_u64(w, s.fp_mant[i]);
        snapshot_put_u16(w, s.fp_exp[i]);
    }
    /* the simulation: commit() has run (pend is 0 at every point a timer or poll runs) */
    snapshot_put_u64(w, c->insns + c->pend);
    snapshot_put_u64(w, c->vc.now);
    snapshot_put_u64(w, c->vc.next_seq);
    snapshot_put_u64(w, c->next_poll_ns);
    snapshot_put_u8(w, (uint8_t)(c->inhibit ? 1 : 0));
    snapshot_put_u8(w, (uint8_t)(c->in_idle ? 1 : 0));
    snapshot_put_u32(w, c->idle_wakeups);
    lapic_save(&c->lapic, w);
    ioapic_save(&c->ioapic, w);
    return 0;
}

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Builds the stub described at the top; returns its length in code (32-bit part). */
static size_t build_stub(uint8_t *ram, const struct cpu_state *s)
{
    uint8_t *p = ram + STUB_CODE;
    uint64_t *gdt = (uint64_t *)(ram + STUB_GDT);
    uint64_t v;

    /* scratch page tables: 0-2 MiB identity (one 2 MiB page) */
    v = STUB_PDPT | 3;
    memcpy(ram + STUB_PML4, &v, 8);
    v = STUB_PD | 3;
    memcpy(ram + STUB_PDPT, &v, 8);
    v = 0x83;
    memcpy(ram + STUB_PD, &v, 8);
    /* scratch GDT: data descriptors first, the code descriptor wins its own slot */
    for (int i = SEG_SS; i < NSEG; i++)
        if (s->seg[i] >> 3)
            gdt[s->seg[i] >> 3] = 0x00cf93000000ffffULL;
    gdt[s->seg[SEG_CS] >> 3] = 0x00af9b000000ffffULL;
    uint16_t lim = 0xffff;
    memcpy(ram + STUB_GDTR, &lim, 2);
    put32le(ram + STUB_GDTR + 2, (uint32_t)STUB_GDT);

    *p++ = 0xb8; put32le(p, (uint32_t)(s->cr4 | CR4_PAE)); p += 4;   /* mov $cr4, %eax */
    *p++ = 0x0f; *p++ = 0x22; *p++ = 0xe0;                           /* mov %eax, %cr4 */
    *p++ = 0xb8; put32le(p, (uint32_t)STUB_PML4); p += 4;
    *p++ = 0x0f; *p++ = 0x22; *p++ = 0xd8;                           /* mov %eax, %cr3 */
    *p++ = 0xb9; put32le(p, MSR_EFER); p += 4;                       /* mov $EFER, %ecx */
    *p++ = 0xb8; put32le(p, (uint32_t)(s->efer & ~EFER_LMA)); p += 4;
    *p++ = 0xba; put32le(p, (uint32_t)(s->efer >> 32)); p += 4;
    *p++ = 0x0f; *p++ = 0x30;                                        /* wrmsr */
    *p++ = 0x0f; *p++ = 0x01; *p++ = 0x15; put32le(p, (uint32_t)STUB_GDTR); p += 4; /* lgdt */
    *p++ = 0xb8; put32le(p, (uint32_t)s->cr0); p += 4;
    *p++ = 0x0f; *p++ = 0x22; *p++ = 0xc0;                           /* mov %eax, %cr0 */
    *p++ = 0xea; put32le(p, (uint32_t)STUB_CODE64); p += 4;          /* ljmp $cs, $code64 */
    *p++ = (uint8_t)s->seg[SEG_CS]; *p++ = (uint8_t)(s->seg[SEG_CS] >> 8);

    static const uint8_t mov_seg[] = { 0, 0xd0, 0xd8, 0xc0, 0xe0, 0xe8 }; /* ss ds es fs gs */
    p = ram + STUB_CODE64;
    for (int i = SEG_DS; i <= SEG_GS + 1; i++) {
        int seg = i == SEG_GS + 1 ? SEG_SS : i;     /* ss last */
        *p++ = 0xb8; put32le(p, s->seg[seg]); p += 4;                /* mov $sel, %eax */
        *p++ = 0x8e; *p++ = mov_seg[seg];                            /* mov %eax, %seg */
    }
    *p++ = 0xf4;                                                     /* hlt */
    return (size_t)(p - (ram + STUB_CODE64));
}

static int read_state(struct snapshot_reader *r, struct cpu_state *s, char *err,
                      size_t errlen)
{
    memset(s, 0, sizeof(*s));
    uint32_t ver = snapshot_get_u32(r, "cpu section version");
    if (!r->bad && (ver < 1 || ver > SNAP_CPU_VERSION))
        return snapshot_fail(r, err, errlen, "cpu section version %u, expected 1 to %u", ver,
                             SNAP_CPU_VERSION);
    for (int i = 0; i < 16; i++)
        s->gpr[i] = snapshot_get_u64(r, "general register");
    s->rip = snapshot_get_u64(r, "rip");
    s->rflags = snapshot_get_u64(r, "rflags");
    for (int i = 0; i < NSEG; i++)
        s->seg[i] = snapshot_get_u16(r, "segment selector");
    s->fs_base = snapshot_get_u64(r, "fs base");
    s->gs_base = snapshot_get_u64(r, "gs base");
    s->kernel_gs_base = snapshot_get_u64(r, "kernel gs base");
    s->cr0 = snapshot_get_u64(r, "cr0");
    s->cr2 = snapshot_get_u64(r, "cr2");
    s->cr3 = snapshot_get_u64(r, "cr3");
    s->cr4 = snapshot_get_u64(r, "cr4");
    s->efer = snapshot_get_u64(r, "efer");
    get_mmr(r, &s->gdtr, 0, "gdtr");
    get_mmr(r, &s->idtr, 0, "idtr");
    get_mmr(r, &s->tr, 1, "tr");
    get_mmr(r, &s->ldtr, 1, "ldtr");
    s->mxcsr = snapshot_get_u32(r, "mxcsr");
    for (int i = 0; i < 16; i++) {
        s->xmm[i][0] = snapshot_get_u64(r, "xmm");
        s->xmm[i][1] = snapshot_get_u64(r, "xmm");
    }
    for (unsigned i = 0; i < NMSR; i++)
        s->msr[i] = ver >= 2 ? snapshot_get_u64(r, "msr")
                             : msr_ids[i] == 0x277u ? 0x0007040600070406ULL : 0;
    s->fpcw = 0x037f;                   /* FNINIT */
    s->fptag = 0xffff;
    if (ver >= 2) {
        s->fpcw = snapshot_get_u16(r, "x87 control word");
        s->fpsw = snapshot_get_u16(r, "x87 status word");
        s->fptag = snapshot_get_u16(r, "x87 tag word");
        for (int i = 0; i < 8; i++) {
            s->fp_mant[i] = snapshot_get_u64(r, "x87 register");
            s->fp_exp[i] = snapshot_get_u16(r, "x87 register");
        }
    }
    s->insns = snapshot_get_u64(r, "instruction count");
    s->now = snapshot_get_u64(r, "virtual ns");
    s->next_seq = snapshot_get_u64(r, "clock next id");
    s->next_poll_ns = snapshot_get_u64(r, "next poll ns");
    s->inhibit = snapshot_get_u8(r, "interrupt shadow");
    s->halted = snapshot_get_u8(r, "halted");
    s->idle_wakeups = snapshot_get_u32(r, "idle wakeups");
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    /* what the stub and the rest of the backend can represent */
    if ((s->cr0 & (CR0_PG | CR0_PE)) != (CR0_PG | CR0_PE) || s->cr0 >> 32)
        return snapshot_fail(r, err, errlen, "cr0 %#llx: paging and protection must be on",
                             (unsigned long long)s->cr0);
    if (!(s->cr4 & CR4_PAE) || s->cr4 >> 32)
        return snapshot_fail(r, err, errlen, "cr4 %#llx: PAE must be on",
                             (unsigned long long)s->cr4);
    if (!(s->efer & EFER_LME) || (s->efer & ~0xd01ULL))
        return snapshot_fail(r, err, errlen, "efer %#llx: LME must be on and only SCE, LME, "
                             "LMA, NXE may be set", (unsigned long long)s->efer);
    for (int i = 0; i < NSEG; i++)
        if (s->seg[i] & 7)
            return snapshot_fail(r, err, errlen, "%s selector %#x: only GDT selectors with "
                                 "RPL 0 are supported", seg_names[i], s->seg[i]);
    if (!(s->seg[SEG_CS] >> 3))
        return snapshot_fail(r, err, errlen, "cs selector 0 is not a code segment");
    for (int i = SEG_SS; i < NSEG; i++)
        if (s->seg[i] && s->seg[i] == s->seg[SEG_CS])
            return snapshot_fail(r, err, errlen, "%s selector %#x equals cs", seg_names[i],
                                 s->seg[i]);
    if (s->next_seq == 0 || s->next_seq > INT64_MAX)
        return snapshot_fail(r, err, errlen, "clock next id %llu is out of range",
                             (unsigned long long)s->next_seq);
    if (s->inhibit > 1 || s->halted > 1)
        return snapshot_fail(r, err, errlen, "flags (interrupt shadow %u, halted %u) are not "
                             "0 or 1", s->inhibit, s->halted);
    return 0;
}

int sim_restore(struct cpu *c, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct cpu_state s;
    uint8_t *ram = guest_mem_host(c->env.mem, 0, STUB_END);
    int rc;

    if (c->booted || c->dead) {
        snprintf(err, errlen, "restore needs a fresh vCPU");
        return -EBUSY;
    }
    if (!ram) {
        snprintf(err, errlen, "restore needs guest RAM at 0-%#llx",
                 (unsigned long long)STUB_END);
        return -EINVAL;
    }
    rc = read_state(r, &s, err, errlen);
    if (rc)
        return rc;

    /* 1. the mode switch, as real instructions (see the top of this file). It runs as the
     * vCPU's (sim_mmu_enter), as the boot path's switch to long mode does: the first WRMSR
     * gives QEMU's CPU model SYSCALL and NX (unicorn_cpuid.c), without which QEMU dropped
     * EFER.SCE and NXE from the stub's write, and a kernel's NX page table entries became
     * reserved-bit faults (a Linux snapshot restored into a triple fault). */
    memset(ram, 0, STUB_END);
    size_t len64 = build_stub(ram, &s);
    sim_mmu_enter(c);
    uc_err e = uc_emu_start(c->uc, STUB_CODE, 0x8000000000000000ULL, 0, 0);
    sim_mmu_leave(c);
    uint64_t rip = rd(c, UC_X86_REG_RIP), efer = rd_msr(c, MSR_EFER);
    uc_ctl_remove_cache(c->uc, STUB_CODE, STUB_CODE64 + len64);
    memset(ram, 0, STUB_END);
    if (e != UC_ERR_OK || c->stop_set || rip != STUB_CODE64 + len64 || !(efer & EFER_LMA)) {
        snprintf(err, errlen, "sim: entering the saved long mode state failed (%s, rip %#llx, "
                 "efer %#llx%s%s)", uc_strerror(e), (unsigned long long)rip,
                 (unsigned long long)efer, c->stop_set ? ": " : "", c->stop_set ? c->detail : "");
        return -EIO;
    }
    /* the stub is not guest time; its blocks must not be mistaken for guest blocks */
    blocks_destroy(&c->blocks);
    if (blocks_init(&c->blocks)) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->last_block = NULL;
    c->cur = NULL;
    c->pend = 0;
    c->ring_n = c->ring_head = 0;
    c->stop_set = 0;
    c->detail[0] = 0;
    if (c->env.stats)
        memset(c->env.stats, 0, sizeof(*c->env.stats));

    /* 2. what plain register writes set correctly */
    uc_reg_write(c->uc, UC_X86_REG_CR3, &s.cr3);
    uc_reg_write(c->uc, UC_X86_REG_CR2, &s.cr2);
    for (int i = 0; i < 16; i++)
        uc_reg_write(c->uc, gpr_ids[i], &s.gpr[i]);
    uc_reg_write(c->uc, UC_X86_REG_RFLAGS, &s.rflags);
    uc_reg_write(c->uc, UC_X86_REG_RIP, &s.rip);
    uc_reg_write(c->uc, UC_X86_REG_GDTR, &s.gdtr);
    uc_reg_write(c->uc, UC_X86_REG_IDTR, &s.idtr);
    uc_reg_write(c->uc, UC_X86_REG_TR, &s.tr);
    uc_reg_write(c->uc, UC_X86_REG_LDTR, &s.ldtr);
    uc_reg_write(c->uc, UC_X86_REG_FS_BASE, &s.fs_base);
    uc_reg_write(c->uc, UC_X86_REG_GS_BASE, &s.gs_base);
    uc_x86_msr kgs = { .rid = MSR_KERNEL_GS_BASE, .value = s.kernel_gs_base };
    uc_reg_write(c->uc, UC_X86_REG_MSR, &kgs);
    for (unsigned i = 0; i < NMSR; i++) {
        uc_x86_msr m = { .rid = msr_ids[i], .value = s.msr[i] };
        uc_reg_write(c->uc, UC_X86_REG_MSR, &m);
    }
    uint64_t fpcw = s.fpcw, fpsw = s.fpsw, fptag = s.fptag;
    uc_reg_write(c->uc, UC_X86_REG_FPCW, &fpcw);
    uc_reg_write(c->uc, UC_X86_REG_FPSW, &fpsw);
    uc_reg_write(c->uc, UC_X86_REG_FPTAG, &fptag);
    for (int i = 0; i < 8; i++) {
        uint8_t fp[10];
        memcpy(fp, &s.fp_mant[i], 8);
        memcpy(fp + 8, &s.fp_exp[i], 2);
        uc_reg_write(c->uc, UC_X86_REG_FP0 + i, fp);
    }
    if (rd_msr(c, MSR_EFER) != s.efer) {
        snprintf(err, errlen, "sim: efer %#llx after restore, saved %#llx",
                 (unsigned long long)rd_msr(c, MSR_EFER), (unsigned long long)s.efer);
        return -EIO;
    }
    uint32_t mx = s.mxcsr & 0xffff;
    uc_reg_write(c->uc, UC_X86_REG_MXCSR, &mx);
    for (int i = 0; i < 16; i++)
        uc_reg_write(c->uc, UC_X86_REG_XMM0 + i, s.xmm[i]);

    /* 3. the simulation around it */
    c->insns = s.insns;
    c->vc.now = s.now;
    c->vc.next_seq = s.next_seq;
    c->next_poll_ns = s.next_poll_ns;
    vclock_set_limit(&c->vc, c->next_poll_ns);
    c->inhibit = s.inhibit;
    c->resume_halted = s.halted;
    c->idle_wakeups = s.idle_wakeups;
    rc = lapic_load(&c->lapic, r, err, errlen);
    if (!rc)
        rc = ioapic_load(&c->ioapic, r, err, errlen);
    if (rc)
        return rc;
    if (c->env.stats) {
        c->env.stats->insns = c->insns;
        c->env.stats->virtual_ns = c->vc.now;
    }
    c->booted = 1;
    return 0;
}

int64_t sim_restore_timer(struct cpu *c, uint64_t at_ns, int64_t id, clock_timer_fn fn,
                          void *arg)
{
    return vclock_schedule_id(&c->vc, at_ns, id, fn, arg);
}
