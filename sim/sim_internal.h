/* Internals of the software CPU backend, shared by sim_cpu.c (hooks, run loop), x86.c
 * (paging walk, interrupt gates) and blocks.c (per-block instruction counts). */
#ifndef VMLAB_SIM_INTERNAL_H
#define VMLAB_SIM_INTERNAL_H

#include <stdint.h>
#include <unicorn/unicorn.h>
#include <capstone/capstone.h>

#include "vmm/cpu_backend.h"
#include "sim/ioapic.h"
#include "sim/lapic.h"
#include "sim/vclock.h"

/* The run loop returns to the VMM's poll() every millisecond of virtual time. */
#define SIM_POLL_NS 1000000ULL
/* Distinct blocks remembered before the table starts over. */
#define SIM_BLOCKS_MAX (1u << 20)
/* rdtsc sites remembered per block for exact instruction accounting. */
#define SIM_BLOCK_RDTSC_MAX 8

enum code_mode { CODE_16 = 0, CODE_32 = 1, CODE_64 = 2 };

struct sim_block {
    uint64_t pc;
    uint64_t space;                 /* address space of a user-half pc (blocks.c), else 0 */
    uint32_t size;
    uint16_t icount;
    uint8_t used;
    uint8_t ends_sti;               /* last instruction is STI: interrupt shadow follows */
    uint8_t nrdtsc;
    struct { uint16_t offset, index; uint8_t len, rdtscp; } rdtsc[SIM_BLOCK_RDTSC_MAX];
};

/* The block hook's user data. The vCPU's own (any_tb) stands for any block, looked up by
 * address; unicorn_blockhook.c gives each translated block one of its own, which keeps
 * that block's counts (blk) after its first run. */
struct sim_tb {
    struct cpu *c;
    /* what the block hook reads at every run, in the first 16 bytes: one cache line */
    uint8_t ready;                  /* blk holds this translated block's counts */
    uint8_t ends_sti;               /* blk.ends_sti */
    uint16_t icount;                /* blk.icount */
    struct sim_block blk;
};

/* Translated blocks given their own sim_tb (unicorn_blockhook.c), at most; the later ones
 * share any_tb. A bound for guests that keep generating code: they are never freed. */
#define SIM_TBS_MAX (1u << 18)
#define SIM_TBS_CHUNK 4096
struct sim_tb_chunk {
    struct sim_tb_chunk *next;
    unsigned used;
    struct sim_tb tb[SIM_TBS_CHUNK];
};

/* Direct-mapped cache of recently found blocks in front of the table (blocks.c). */
#define SIM_BLOCKS_RECENT 4096

struct sim_blocks {
    struct sim_block *tab;
    uint64_t mask;                  /* capacity - 1 */
    uint64_t used;
    struct sim_block *recent[SIM_BLOCKS_RECENT];    /* into tab; cleared when tab moves */
};

/* Direct-mapped table of recent virtual pages and their memory region (unicorn_mmu.c). */
#define SIM_MMU_ENTRIES 256
struct sim_mmu_entry {
    uint64_t gen, vpage;
    struct MemoryRegion *region;
};

/* x86.c */
struct x86_regs {
    uint64_t rip, rsp, rflags, cr0, cr3, cr4, efer;
    uint64_t cs, ss;
    uc_x86_mmr idtr, gdtr, tr;
};

struct cpu {
    struct sim_tb any_tb;           /* the block hook's user data: any block (sim_cpu.c) */
    uc_engine *uc;
    struct cpu_env env;
    /* What the block hook reads at every block, next to the clock it advances: one or two
     * cache lines instead of six (sim_cpu.c, on_block). */
    uint64_t insns;                 /* committed: instructions retired */
    uint64_t pend;                  /* instructions of the block now running, not yet committed */
    const struct sim_block *cur;    /* the running block */
    uint64_t insn_limit;            /* UINT64_MAX when none */
    int inhibit;                    /* the previous block ended with STI */
    int stop_set;                   /* a hook decided why uc_emu_start returns */
    int pending_ud;                 /* #UD at CPL 3: delivered at the next block (sim_cpu.c) */
    struct vclock vc;
    struct lapic lapic;
    struct ioapic ioapic;
    csh cs;
    struct sim_blocks blocks;
    struct sim_block *last_block;   /* one-entry cache in front of the hash table */
    struct sim_tb_chunk *tbs;       /* unicorn_blockhook.c: per-translated-block user data */
    unsigned ntbs;

    uint64_t next_poll_ns;
    int booted;
    int dead;                       /* unicorn aborted inside uc_emu_start: never touch it */
    struct cpu_stop dead_stop;

    /* why uc_emu_start returned, when a hook decided it (stop_set is with the hot fields) */
    enum cpu_stop_reason stop_reason;
    uint64_t fault_addr;
    int want_poll;
    int resume_valid;               /* the block hook stopped before running resume_pc */
    uint64_t resume_pc;
    char detail[160];
    int fault_seen;                 /* the unmapped-memory hook saw this access */
    uint64_t unmapped_addr;
    int unmapped_type;

    uc_context *exc_ctx;            /* scratch for x86_exc_clear, allocated at first use */
    uint64_t host_tsc_khz;          /* --tsc host: measured at first use */
    struct cpu_exit_record ring[CPU_RECENT_EXITS];
    unsigned ring_head, ring_n;

    /* Snapshots (sim_snapshot.c): where the vCPU stands when a timer callback or poll()
     * runs, so a snapshot taken from there resumes at the same point. */
    int in_block_hook;              /* timers firing from on_block: RIP is hook_pc */
    uint64_t hook_pc;
    int in_idle;                    /* inside idle(): the vCPU is halted */
    int resume_halted;              /* restored from a halted snapshot: idle first */
    unsigned idle_wakeups;          /* idle(): wakeups without a deliverable interrupt */

    /* unicorn_mmu.c: the paging registers (cr0, cr3, cr4, efer) as of the last TLB flush */
    struct x86_regs mmu;
    int mmu_valid;
    uint64_t mmu_gen;               /* bumped by every TLB flush: older mmu_tab entries are stale */
    uint64_t space;                 /* CR3 page with paging on, else 0 */
    struct sim_mmu_entry mmu_tab[SIM_MMU_ENTRIES];
    int cpuid_done;                 /* unicorn_cpuid.c completed QEMU's feature words */
    /* QEMU's CPUState and CPUX86State of this engine, seen by the wrappers (NULL until) */
    void *qemu_cs, *qemu_env;
    int syscall_checked;            /* unicorn_syscall.c: 1 layout verified, -1 refused */
    /* unicorn_stores.c: TLB entries of this engine may be writable without the slow path */
    int stores_fast;
    struct cpu *stores_next;        /* the list of such engines */
};

/* unicorn_stores.c: after unicorn filled the TLB entry of vaddr (guest-physical page paddr,
 * writable), let stores there skip the slow path when the page holds no translated code. */
void sim_stores_filled(struct cpu *c, void *qemu_cs, uint64_t vaddr, uint64_t paddr);
/* unicorn_stores.c: c's engine is about to be closed */
void sim_stores_forget(struct cpu *c);

/* unicorn_blockhook.c: frees the per-translated-block user data */
void sim_tbs_free(struct cpu *c);

/* unicorn_mmu.c: translation in unicorn's TLB fills while this thread runs c's guest code */
void sim_mmu_enter(struct cpu *c);
void sim_mmu_leave(struct cpu *c);
/* The vCPU running guest code on this thread, or NULL. */
struct cpu *sim_mmu_running(void);
/* Re-reads the paging registers (c->mmu, c->space). */
void sim_mmu_refresh(struct cpu *c);
/* The block table's address space for code at pc: the kernel half (bit 63 set) is shared
 * by every address space, the user half belongs to the current CR3. */
static inline uint64_t sim_block_space(struct cpu *c, uint64_t pc)
{
    if ((int64_t)pc < 0)
        return 0;
    if (!c->mmu_valid)
        sim_mmu_refresh(c);
    return c->space;
}

/* sim_snapshot.c */
int sim_save(struct cpu *c, struct snapshot_writer *w, char *err, size_t errlen);
int sim_restore(struct cpu *c, struct snapshot_reader *r, char *err, size_t errlen);
int64_t sim_restore_timer(struct cpu *c, uint64_t at_ns, int64_t id, clock_timer_fn fn,
                          void *arg);

/* x86.c */
void x86_read_regs(struct cpu *c, struct x86_regs *r);
int x86_long_mode(const struct x86_regs *r);
/* Linear -> guest-physical through the guest's page tables. 0 or -EFAULT. */
int x86_translate(struct cpu *c, const struct x86_regs *r, uint64_t va, uint64_t *pa);
/* Copy to/from linear addresses (RAM only). 0 or -EFAULT. */
int x86_read_virt(struct cpu *c, const struct x86_regs *r, uint64_t va, void *dst, size_t len);
int x86_write_virt(struct cpu *c, const struct x86_regs *r, uint64_t va, const void *src, size_t len);
enum code_mode x86_code_mode(struct cpu *c, const struct x86_regs *r);
/* 1 if the IDT has a present gate for vector. */
int x86_has_gate(struct cpu *c, const struct x86_regs *r, unsigned vector);
/* Performs the interrupt gate for `vector` with return address `ret_rip`, pushing
 * `errcode` when has_err. 0 delivered, -ENOENT no gate, -EFAULT the delivery itself
 * faulted (a triple fault), -ENOTSUP an unsupported case (detail in c->detail). */
int x86_deliver(struct cpu *c, unsigned vector, uint64_t ret_rip, int has_err, uint32_t errcode);

/* unicorn_irq.c: delivery by QEMU's own code (TSS stack switch, hidden segment state),
 * from inside a hook only. 1 when QEMU's state is known (after the first TLB fill and
 * CPUID or WRMSR). */
int sim_qemu_can_deliver(const struct cpu *c);
/* Interrupt `vector` (no error code) with return address ret_rip. */
void sim_qemu_deliver(struct cpu *c, unsigned vector, uint64_t ret_rip);
/* The exception unicorn's interrupt hook is reporting, with QEMU's error code. */
void sim_qemu_deliver_exception(struct cpu *c);

/* sim_cpu.c: the virtual TSC at the rdtsc/rdtscp at rip in the running block */
uint64_t sim_rdtsc_now(struct cpu *c, uint64_t rip);

/* Marks the exception just delivered by us as delivered for QEMU too (x86.c says why). */
void x86_exc_clear(struct cpu *c);

/* blocks.c */
int blocks_init(struct sim_blocks *b);
void blocks_destroy(struct sim_blocks *b);
struct sim_block *blocks_find(struct sim_blocks *b, uint64_t pc, uint32_t size, uint64_t space);
/* Decodes the block at pc into *e. */
void blocks_decode(struct cpu *c, struct sim_block *e, uint64_t pc, uint32_t size,
                   uint64_t space);
/* Decodes a newly seen block and adds it (its rdtsc/rdtscp sites are kept, up to
 * SIM_BLOCK_RDTSC_MAX). NULL on allocation failure. */
struct sim_block *blocks_add(struct cpu *c, uint64_t pc, uint32_t size, uint64_t space);
/* Instructions of block e that start before rip: those retired when an exception is
 * taken at rip (the faulting one excluded; a trap's RIP is already past it). */
unsigned blocks_count_before(struct cpu *c, const struct sim_block *e, uint64_t rip);
/* 1 if the instruction at rip writes memory (an explicit operand or the stack). */
int blocks_insn_writes_memory(struct cpu *c, uint64_t rip);

#endif
