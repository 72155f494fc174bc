/* Virtual-to-physical translation for unicorn 2.0.1's TLB (Debian 12's version).
 *
 * unicorn 2.0.1's x86 handle_mmu_fault() walks the guest's page tables for the permission
 * checks, then throws the physical address away and fills the TLB with the virtual address
 * as the physical one (an identity map; removed upstream in 2.1.0). Its load and store slow
 * paths also look the *virtual* address up in the memory map (memory_mapping()) before
 * anything else. So a guest whose virtual and physical addresses differ (Linux: the kernel
 * at 0xffffffff81000000, loaded at 16 MiB) fetches "unmapped" memory.
 *
 * The linker's --wrap (Makefile, UNICORN_WRAP) routes excp_helper.c's call to
 * tlb_set_page_with_attrs() and cputlb.c's calls to memory_mapping() through this file,
 * which translates with the backend's own page walk (x86.c). The control registers the
 * walk needs are read once after each TLB flush (QEMU flushes on every CR0.PG/WP/PE, CR3
 * and CR4 paging change; helper.c calls tlb_flush() for them), not on every fill; a small
 * direct-mapped table remembers the region of recent pages for memory_mapping(), which is
 * called on every slow-path access (every store: unicorn_stores.c says why). memory.c and
 * uc.c (the API, which takes physical addresses) call the real functions: they are
 * defined or resolved inside unicorn's own objects.
 *
 * Only while a vCPU runs guest code (sim_mmu_enter .. sim_mmu_leave, on its thread) is
 * anything translated; the boot and restore stubs run on identity maps and go the original
 * way. */
#include "sim_internal.h"

#include <string.h>

struct uc_struct;
struct CPUState;
struct MemoryRegion;
/* QEMU's MemTxAttrs: 32 bits of bit-fields, passed by value in one register */
struct memtx_attrs { uint32_t bits; };

struct MemoryRegion *__real_memory_mapping(struct uc_struct *uc, uint64_t address);
void __real_tlb_set_page_with_attrs_x86_64(struct CPUState *cpu, uint64_t vaddr,
                                           uint64_t paddr, struct memtx_attrs attrs, int prot,
                                           int mmu_idx, uint64_t size);
void __real_tlb_flush_x86_64(struct CPUState *cpu);
void __real_tlb_flush_page_x86_64(struct CPUState *cpu, uint64_t addr);

struct MemoryRegion *__wrap_memory_mapping(struct uc_struct *uc, uint64_t address);
void __wrap_tlb_set_page_with_attrs_x86_64(struct CPUState *cpu, uint64_t vaddr,
                                           uint64_t paddr, struct memtx_attrs attrs, int prot,
                                           int mmu_idx, uint64_t size);
void __wrap_tlb_flush_x86_64(struct CPUState *cpu);
void __wrap_tlb_flush_page_x86_64(struct CPUState *cpu, uint64_t addr);

/* the vCPU running guest code on this thread, NULL outside sim_mmu_enter/leave */
static _Thread_local struct cpu *running;

void sim_mmu_enter(struct cpu *c)
{
    c->mmu_valid = 0;                   /* registers may have been written meanwhile */
    c->mmu_gen++;
    running = c;
}

struct cpu *sim_mmu_running(void) { return running; }

void sim_mmu_leave(struct cpu *c)
{
    (void)c;
    running = NULL;
}

void sim_mmu_refresh(struct cpu *c)
{
    uc_x86_msr efer = { .rid = 0xc0000080u };
    int ids[] = { UC_X86_REG_CR0, UC_X86_REG_CR3, UC_X86_REG_CR4 };
    void *vals[] = { &c->mmu.cr0, &c->mmu.cr3, &c->mmu.cr4 };

    uc_reg_read_batch(c->uc, ids, vals, 3);
    uc_reg_read(c->uc, UC_X86_REG_MSR, &efer);
    c->mmu.efer = efer.value;
    /* user-half blocks are told apart by address space (blocks.c) */
    c->space = (c->mmu.cr0 & (1ULL << 31)) ? c->mmu.cr3 & ~0xfffULL : 0;
    c->mmu_valid = 1;
}

/* guest-physical page of the virtual page holding va, or -1 when not mapped */
static int translate(struct cpu *c, uint64_t va, uint64_t *pa)
{
    if (!c->mmu_valid)
        sim_mmu_refresh(c);
    return x86_translate(c, &c->mmu, va, pa);
}

void __wrap_tlb_set_page_with_attrs_x86_64(struct CPUState *cpu, uint64_t vaddr,
                                           uint64_t paddr, struct memtx_attrs attrs, int prot,
                                           int mmu_idx, uint64_t size)
{
    struct cpu *c = running;
    uint64_t pa;

    if (c) {
        c->qemu_cs = cpu;               /* for QEMU's interrupt delivery (unicorn_irq.c) */
        /* QEMU's own walk just succeeded, so ours does too */
        if (translate(c, vaddr, &pa) == 0)
            paddr = pa & ~0xfffULL;
    }
    __real_tlb_set_page_with_attrs_x86_64(cpu, vaddr, paddr, attrs, prot, mmu_idx, size);
    if (c && (prot & 2))                /* PAGE_WRITE */
        sim_stores_filled(c, cpu, vaddr, paddr);
}

struct MemoryRegion *__wrap_memory_mapping(struct uc_struct *uc, uint64_t address)
{
    struct cpu *c = running;

    if (!c)
        return __real_memory_mapping(uc, address);
    uint64_t page = address >> 12;
    struct sim_mmu_entry *e = &c->mmu_tab[page & (SIM_MMU_ENTRIES - 1)];
    if (e->gen == c->mmu_gen && e->vpage == page)
        return e->region;
    uint64_t pa;
    struct MemoryRegion *mr;
    if (translate(c, address, &pa) == 0) {
        mr = __real_memory_mapping(uc, pa);
    } else {
        /* Not mapped by the guest's page tables: any RAM region, so that unicorn goes on
         * to its TLB fill, which raises the #PF. Not remembered: the guest maps it next. */
        return __real_memory_mapping(uc, c->env.mem->ranges[0].gpa);
    }
    e->gen = c->mmu_gen;
    e->vpage = page;
    e->region = mr;
    return mr;
}

void __wrap_tlb_flush_x86_64(struct CPUState *cpu)
{
    struct cpu *c = running;

    if (c) {
        c->mmu_valid = 0;
        c->mmu_gen++;
    }
    __real_tlb_flush_x86_64(cpu);
}

/* INVLPG: a 2 MiB or 1 GiB mapping may have changed, so the whole table goes */
void __wrap_tlb_flush_page_x86_64(struct CPUState *cpu, uint64_t addr)
{
    struct cpu *c = running;

    if (c)
        c->mmu_gen++;
    __real_tlb_flush_page_x86_64(cpu, addr);
}
