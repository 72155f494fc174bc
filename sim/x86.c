/* What unicorn does not do for us on x86: walk the guest's page tables and perform an
 * interrupt gate (unicorn 2.0.1 has no call that raises an interrupt in a guest). */
#include "sim_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CR0_PG      (1ULL << 31)
#define CR0_PE      1ULL
#define CR4_PSE     (1ULL << 4)
#define CR4_PAE     (1ULL << 5)
#define EFER_LMA    (1ULL << 10)
#define MSR_EFER    0xc0000080u
#define PTE_P       1ULL
#define PTE_PS      0x80ULL
#define ADDR_MASK   0x000ffffffffff000ULL

void x86_read_regs(struct cpu *c, struct x86_regs *r)
{
    uc_x86_msr efer = { .rid = MSR_EFER };
    int ids[] = { UC_X86_REG_RIP, UC_X86_REG_RSP, UC_X86_REG_RFLAGS, UC_X86_REG_CR0,
                  UC_X86_REG_CR3, UC_X86_REG_CR4, UC_X86_REG_CS, UC_X86_REG_SS,
                  UC_X86_REG_IDTR, UC_X86_REG_GDTR, UC_X86_REG_TR };
    void *vals[] = { &r->rip, &r->rsp, &r->rflags, &r->cr0, &r->cr3, &r->cr4, &r->cs, &r->ss,
                     &r->idtr, &r->gdtr, &r->tr };

    memset(r, 0, sizeof(*r));
    uc_reg_read_batch(c->uc, ids, vals, (int)(sizeof(ids) / sizeof(ids[0])));
    r->cs &= 0xffff;
    r->ss &= 0xffff;
    uc_reg_read(c->uc, UC_X86_REG_MSR, &efer);
    r->efer = efer.value;
}

int x86_long_mode(const struct x86_regs *r) { return (r->efer & EFER_LMA) != 0; }

static void *phys(struct cpu *c, uint64_t pa, uint64_t len)
{
    return guest_mem_host(c->env.mem, pa, len);
}

static int read_pte(struct cpu *c, uint64_t pa, int wide, uint64_t *out)
{
    void *p = phys(c, pa, wide ? 8 : 4);
    if (!p)
        return -EFAULT;
    if (wide) {
        memcpy(out, p, 8);
    } else {
        uint32_t v;
        memcpy(&v, p, 4);
        *out = v;
    }
    return 0;
}

int x86_translate(struct cpu *c, const struct x86_regs *r, uint64_t va, uint64_t *pa)
{
    uint64_t e;

    if (!(r->cr0 & CR0_PG)) {
        *pa = x86_long_mode(r) ? va : (uint32_t)va;
        return 0;
    }
    if (x86_long_mode(r)) {
        uint64_t table = r->cr3 & ADDR_MASK;
        for (int level = 3; level >= 0; level--) {
            unsigned shift = 12 + 9 * (unsigned)level;
            if (read_pte(c, table + ((va >> shift) & 511) * 8, 1, &e) || !(e & PTE_P))
                return -EFAULT;
            if (level == 0 || ((level == 1 || level == 2) && (e & PTE_PS))) {
                uint64_t off = va & ((1ULL << shift) - 1);
                *pa = ((e & ADDR_MASK) & ~((1ULL << shift) - 1)) | off;
                return 0;
            }
            table = e & ADDR_MASK;
        }
        return -EFAULT;
    }
    va = (uint32_t)va;
    if (r->cr4 & CR4_PAE) {
        if (read_pte(c, (r->cr3 & 0xffffffe0ULL) + ((va >> 30) & 3) * 8, 1, &e) || !(e & PTE_P))
            return -EFAULT;
        if (read_pte(c, (e & ADDR_MASK) + ((va >> 21) & 511) * 8, 1, &e) || !(e & PTE_P))
            return -EFAULT;
        if (e & PTE_PS) {
            *pa = (e & ADDR_MASK & ~0x1fffffULL) | (va & 0x1fffff);
            return 0;
        }
        if (read_pte(c, (e & ADDR_MASK) + ((va >> 12) & 511) * 8, 1, &e) || !(e & PTE_P))
            return -EFAULT;
        *pa = (e & ADDR_MASK) | (va & 0xfff);
        return 0;
    }
    if (read_pte(c, (r->cr3 & 0xfffff000ULL) + ((va >> 22) & 1023) * 4, 0, &e) || !(e & PTE_P))
        return -EFAULT;
    if ((e & PTE_PS) && (r->cr4 & CR4_PSE)) {
        *pa = (e & 0xffc00000ULL) | (va & 0x3fffff);
        return 0;
    }
    if (read_pte(c, (e & 0xfffff000ULL) + ((va >> 12) & 1023) * 4, 0, &e) || !(e & PTE_P))
        return -EFAULT;
    *pa = (e & 0xfffff000ULL) | (va & 0xfff);
    return 0;
}

/* Page by page: a frame or a block may straddle two pages. */
static int copy_virt(struct cpu *c, const struct x86_regs *r, uint64_t va, void *buf,
                     size_t len, int write)
{
    uint8_t *b = buf;

    while (len) {
        uint64_t pa;
        size_t chunk = 4096 - (va & 0xfff);
        if (chunk > len)
            chunk = len;
        if (x86_translate(c, r, va, &pa))
            return -EFAULT;
        void *h = phys(c, pa, chunk);
        if (!h)
            return -EFAULT;
        if (write)
            memcpy(h, b, chunk);
        else
            memcpy(b, h, chunk);
        va += chunk;
        b += chunk;
        len -= chunk;
    }
    return 0;
}

int x86_read_virt(struct cpu *c, const struct x86_regs *r, uint64_t va, void *dst, size_t len)
{
    return copy_virt(c, r, va, dst, len, 0);
}

int x86_write_virt(struct cpu *c, const struct x86_regs *r, uint64_t va, const void *src,
                   size_t len)
{
    return copy_virt(c, r, va, (void *)src, len, 1);
}

enum code_mode x86_code_mode(struct cpu *c, const struct x86_regs *r)
{
    uint64_t desc;

    if (!(r->cr0 & CR0_PE))
        return CODE_16;
    /* The hidden CS attributes are not readable through unicorn: look the selector up in
     * the GDT. Until the guest loads its own GDT (GDTR limit 0 after boot) the boot CS is
     * the flat 32-bit one, or 64-bit once long mode is active. */
    if ((r->cs & ~7ULL) + 7 > r->gdtr.limit || (r->cs & 4) ||
        x86_read_virt(c, r, r->gdtr.base + (r->cs & ~7ULL), &desc, 8))
        return x86_long_mode(r) ? CODE_64 : CODE_32;
    if (x86_long_mode(r) && (desc & (1ULL << 53)))
        return CODE_64;
    return (desc & (1ULL << 54)) ? CODE_32 : CODE_16;
}

static int read_gate(struct cpu *c, const struct x86_regs *r, unsigned vector, uint8_t g[16])
{
    unsigned size = x86_long_mode(r) ? 16 : 8;

    if ((uint64_t)vector * size + size - 1 > r->idtr.limit)
        return -ENOENT;
    if (x86_read_virt(c, r, r->idtr.base + (uint64_t)vector * size, g, size))
        return -EFAULT;
    if (!(g[5] & 0x80))         /* present bit */
        return -ENOENT;
    return 0;
}

int x86_has_gate(struct cpu *c, const struct x86_regs *r, unsigned vector)
{
    uint8_t g[16];
    return read_gate(c, r, vector, g) == 0;
}

static int deliver64(struct cpu *c, struct x86_regs *r, const uint8_t *g, uint64_t ret_rip,
                     int has_err, uint32_t errcode)
{
    uint64_t handler = (uint64_t)(g[0] | g[1] << 8) | (uint64_t)(g[6] | g[7] << 8) << 16 |
                       (uint64_t)((uint32_t)g[8] | (uint32_t)g[9] << 8 | (uint32_t)g[10] << 16 |
                                  (uint32_t)g[11] << 24) << 32;
    unsigned type = g[5] & 0xf, ist = g[4] & 7;
    uint64_t sp = r->rsp;

    if (type != 0xe && type != 0xf) {
        snprintf(c->detail, sizeof(c->detail), "IDT gate type %#x is not a 64-bit gate", type);
        return -EFAULT;
    }
    if (r->cs & 3) {
        snprintf(c->detail, sizeof(c->detail),
                 "interrupt from CPL %u: only CPL 0 guests are supported", (unsigned)(r->cs & 3));
        return -ENOTSUP;
    }
    if (ist) {                  /* stack from the TSS's interrupt stack table */
        if (x86_read_virt(c, r, r->tr.base + 0x24 + 8 * (ist - 1), &sp, 8)) {
            snprintf(c->detail, sizeof(c->detail), "cannot read IST%u from the TSS", ist);
            return -EFAULT;
        }
    }
    uint64_t frame[6];
    unsigned n = 0;
    if (has_err)
        frame[n++] = errcode;
    frame[n++] = ret_rip;
    frame[n++] = r->cs;
    frame[n++] = r->rflags;
    frame[n++] = r->rsp;
    frame[n++] = r->ss;
    sp = (sp & ~0xfULL) - n * 8;        /* the CPU aligns RSP before pushing */
    if (x86_write_virt(c, r, sp, frame, n * 8)) {
        snprintf(c->detail, sizeof(c->detail), "pushing the interrupt frame at %#llx faulted",
                 (unsigned long long)sp);
        return -EFAULT;
    }
    uint64_t fl = r->rflags & ~(0x100ULL | 0x4000ULL | 0x10000ULL); /* TF NT RF */
    if (type == 0xe)
        fl &= ~0x200ULL;                /* interrupt gate: IF cleared; trap gate keeps it */
    uc_reg_write(c->uc, UC_X86_REG_RSP, &sp);
    uc_reg_write(c->uc, UC_X86_REG_RFLAGS, &fl);
    uc_reg_write(c->uc, UC_X86_REG_RIP, &handler);     /* from a hook: takes effect at once */
    return 0;
}

static int deliver32(struct cpu *c, struct x86_regs *r, const uint8_t *g, uint64_t ret_rip,
                     int has_err, uint32_t errcode)
{
    uint32_t handler = (uint32_t)(g[0] | g[1] << 8) | (uint32_t)(g[6] | g[7] << 8) << 16;
    unsigned type = g[5] & 0xf;
    uint32_t frame[4];
    unsigned n = 0;

    if (type != 0xe && type != 0xf) {
        snprintf(c->detail, sizeof(c->detail), "IDT gate type %#x is not a 32-bit gate", type);
        return -EFAULT;
    }
    if (r->cs & 3) {
        snprintf(c->detail, sizeof(c->detail),
                 "interrupt from CPL %u: only CPL 0 guests are supported", (unsigned)(r->cs & 3));
        return -ENOTSUP;
    }
    if (has_err)
        frame[n++] = errcode;
    frame[n++] = (uint32_t)ret_rip;
    frame[n++] = (uint32_t)r->cs;
    frame[n++] = (uint32_t)r->rflags;
    uint64_t sp = (uint32_t)(r->rsp - n * 4);
    if (x86_write_virt(c, r, sp, frame, n * 4)) {
        snprintf(c->detail, sizeof(c->detail), "pushing the interrupt frame at %#llx faulted",
                 (unsigned long long)sp);
        return -EFAULT;
    }
    uint64_t fl = r->rflags & ~(0x100ULL | 0x4000ULL | 0x10000ULL);
    if (type == 0xe)
        fl &= ~0x200ULL;
    uint64_t rsp = (r->rsp & ~0xffffffffULL) | sp, rip = handler;
    uc_reg_write(c->uc, UC_X86_REG_RSP, &rsp);
    uc_reg_write(c->uc, UC_X86_REG_RFLAGS, &fl);
    uc_reg_write(c->uc, UC_X86_REG_RIP, &rip);
    return 0;
}

int x86_deliver(struct cpu *c, unsigned vector, uint64_t ret_rip, int has_err, uint32_t errcode)
{
    struct x86_regs r;
    uint8_t g[16];

    x86_read_regs(c, &r);
    if (!(r.cr0 & CR0_PE)) {
        snprintf(c->detail, sizeof(c->detail), "interrupt %u in real mode is not supported",
                 vector);
        return -ENOTSUP;
    }
    int err = read_gate(c, &r, vector, g);
    if (err == -ENOENT)
        return -ENOENT;
    if (err) {
        snprintf(c->detail, sizeof(c->detail), "reading IDT gate %u at %#llx faulted", vector,
                 (unsigned long long)r.idtr.base);
        return -EFAULT;
    }
    return x86_long_mode(&r) ? deliver64(c, &r, g, ret_rip, has_err, errcode)
                             : deliver32(c, &r, g, ret_rip, has_err, errcode);
}

/* ---- QEMU's "exception in flight" ----
 * QEMU records a contributory exception or #PF in env->old_exception when it raises it, and
 * clears it only when QEMU itself delivers the exception. unicorn hands exceptions to our
 * hook instead, so the field stays set and the guest's *next* #DE/#GP/#PF is turned into a
 * #DF (and the one after into a triple fault). The field is not reachable through the API:
 * its offset in a saved context is found once per process, on a scratch engine, when a
 * guest first takes such an exception (a #DE flips it from -1 to 0; writing -1 back must
 * make a second #DE arrive as #DE, not #DF). Doing it at create() instead would cost every
 * boot two extra runs and four TLB flushes on the engine, about 15 % of a short guest's
 * boot-to-exit. After each delivery the backend resets the field by patching a saved
 * context and restoring it (5.5 KB, about 1 us). */

static int calib_intno;

static void calib_intr(uc_engine *uc, uint32_t intno, void *opaque)
{
    (void)opaque;
    calib_intno = (int)intno;
    uc_emu_stop(uc);
}

/* The offset in a saved context of QEMU's old_exception, or -1: runs `div ecx` with ecx 0
 * on a fresh engine, twice. */
static int exc_offset_find(void)
{
    static const uint8_t code[] = { 0x31, 0xc9, 0xf7, 0xf1, 0xf4 };  /* xor ecx; div ecx; hlt */
    const uint64_t until = 0x8000000000000000ULL;
    uc_engine *uc;
    uc_context *a = NULL, *b = NULL, *t = NULL;
    uc_hook h;
    int found = -1;

    if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK)
        return -1;
    size_t size = uc_context_size(uc);
    if (uc_context_alloc(uc, &a) || uc_context_alloc(uc, &b) || uc_context_alloc(uc, &t) ||
        uc_mem_map(uc, 0, 0x2000, UC_PROT_ALL) || uc_mem_write(uc, 0x1000, code, sizeof(code)) ||
        uc_hook_add(uc, &h, UC_HOOK_INTR, (void *)calib_intr, NULL, 1, 0))
        goto out;
    uc_context_save(uc, a);
    calib_intno = -1;
    uc_emu_start(uc, 0x1000, until, 0, 0);
    if (calib_intno == 0) {
        uc_context_save(uc, b);
        const int32_t *pa = (const int32_t *)(void *)a, *pb = (const int32_t *)(void *)b;
        for (size_t i = 0; i < size / 4 && found < 0; i++) {
            if (pa[i] != -1 || pb[i] != 0)
                continue;
            memcpy(t, b, size);
            ((int32_t *)(void *)t)[i] = -1;
            uc_context_restore(uc, t);
            calib_intno = -1;
            uc_emu_start(uc, 0x1002, until, 0, 0);
            if (calib_intno == 0)
                found = (int)(i * 4);
        }
    }
out:
    if (a)
        uc_context_free(a);
    if (b)
        uc_context_free(b);
    if (t)
        uc_context_free(t);
    uc_close(uc);
    return found;
}

static int exc_offset = -1;
static pthread_once_t exc_offset_once = PTHREAD_ONCE_INIT;

static void exc_offset_init(void)
{
    exc_offset = exc_offset_find();
    if (exc_offset < 0)
        fprintf(stderr, "sim: warning: cannot locate QEMU's exception state: a second "
                        "#DE/#GP/#PF will arrive as #DF\n");
}

void x86_exc_clear(struct cpu *c)
{
    int32_t none = -1;

    pthread_once(&exc_offset_once, exc_offset_init);
    if (exc_offset < 0)
        return;
    if (!c->exc_ctx && uc_context_alloc(c->uc, &c->exc_ctx) != UC_ERR_OK) {
        c->exc_ctx = NULL;
        return;
    }
    uc_context_save(c->uc, c->exc_ctx);
    memcpy((uint8_t *)(void *)c->exc_ctx + exc_offset, &none, sizeof(none));
    uc_context_restore(c->uc, c->exc_ctx);
}
