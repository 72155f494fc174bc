/* Guest stores at full speed on unicorn 2.0.1 (Debian 12's version).
 *
 * unicorn 2.0.1 stubs out QEMU's dirty-memory bitmap: every RAM page stays "clean", so
 * every guest store takes the slow path to QEMU's notdirty_write(), which allocates a
 * page collection (a GTree and its nodes), looks the page up for translated code, and frees
 * it all again: about 80 ns per store, most of a virtio round trip's cost (sim/README.md).
 * unicorn fixed this upstream later (PRs 1838 and 1970); Debian 12 ships the slow version.
 *
 * The cure here needs no unicorn internals, only its link-time symbols: the linker's
 * --wrap (Makefile, UNICORN_LIBS) routes cputlb.c's calls to three translate-all.c
 * functions, and translate-all.c's call to tlb_protect_code(), through this file.
 * tlb_protect_code() is called for every guest page that receives its first translated
 * block; those pages are remembered (never forgotten: a superset only costs speed). A
 * store to a page never seen there cannot touch translated code, so the page collection
 * and the invalidation are skipped; any other store goes the original way, which keeps
 * self-modifying code exact (tests/test_sim.c, self_modifying_code_*).
 *
 * Keys are QEMU ram_addr page numbers; engines in one process share the set (a page
 * number seen by one engine makes the others take the original path there too). Lookups
 * take no lock: a page is always added on the thread that then stores to it. */
#include "sim_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct uc_struct;
struct page_collection;
struct CPUState;

/* A two-level bitmap over ram_addr pages: 2^17 leaves of 2^15 pages (128 MiB, a 4 KiB
 * leaf) each cover 16 TiB of ram_addr space; beyond it every page counts as holding code. */
#define LEAF_PAGES_BITS 15
#define LEAVES (1u << 17)
#define LEAF_WORDS ((1u << LEAF_PAGES_BITS) / 64)

static _Atomic(_Atomic uint64_t *) leaves[LEAVES];
static pthread_mutex_t leaves_lock = PTHREAD_MUTEX_INITIALIZER;

static int page_may_hold_code(uint64_t page)
{
    uint64_t leaf = page >> LEAF_PAGES_BITS;

    if (leaf >= LEAVES)
        return 1;
    _Atomic uint64_t *words = atomic_load_explicit(&leaves[leaf], memory_order_acquire);
    if (!words)
        return 0;
    uint64_t bit = page & ((1u << LEAF_PAGES_BITS) - 1);
    return (atomic_load_explicit(&words[bit / 64], memory_order_relaxed) >> (bit % 64)) & 1;
}

/* Returns 0, or -1 when no leaf could be allocated (the caller then must not skip). */
static int page_mark_code(uint64_t page)
{
    uint64_t leaf = page >> LEAF_PAGES_BITS;

    if (leaf >= LEAVES)
        return 0;
    _Atomic uint64_t *words = atomic_load_explicit(&leaves[leaf], memory_order_acquire);
    if (!words) {
        pthread_mutex_lock(&leaves_lock);
        words = atomic_load_explicit(&leaves[leaf], memory_order_acquire);
        if (!words) {
            words = calloc(LEAF_WORDS, sizeof(*words));
            if (words)
                atomic_store_explicit(&leaves[leaf], words, memory_order_release);
        }
        pthread_mutex_unlock(&leaves_lock);
        if (!words)
            return -1;
    }
    uint64_t bit = page & ((1u << LEAF_PAGES_BITS) - 1);
    atomic_fetch_or_explicit(&words[bit / 64], 1ull << (bit % 64), memory_order_relaxed);
    return 0;
}

/* Set when a leaf could not be allocated: from then on nothing is skipped. */
static atomic_int skipping_unsafe;

static int range_may_hold_code(uint64_t start, uint64_t end)
{
    if (atomic_load_explicit(&skipping_unsafe, memory_order_relaxed))
        return 1;
    for (uint64_t p = start >> 12; p <= end >> 12; p++)
        if (page_may_hold_code(p))
            return 1;
    return 0;
}

/* QEMU's own dirty-TLB functions (cputlb.c), intact in unicorn 2.0.1, and its RAM maps */
void tlb_set_dirty_x86_64(struct CPUState *cpu, uint64_t vaddr);
void tlb_reset_dirty_x86_64(struct CPUState *cpu, uintptr_t host_start, uintptr_t length);
uint64_t qemu_ram_addr_from_host_x86_64(struct uc_struct *uc, void *host);
void *qemu_map_ram_ptr_x86_64(struct uc_struct *uc, void *ram_block, uint64_t ram_addr);

void __real_tlb_protect_code_x86_64(struct uc_struct *uc, uint64_t ram_addr);
struct page_collection *__real_page_collection_lock_x86_64(struct uc_struct *uc,
                                                          uint64_t start, uint64_t end);
void __real_page_collection_unlock_x86_64(struct page_collection *set);
void __real_tb_invalidate_phys_page_fast_x86_64(struct uc_struct *uc,
                                                struct page_collection *pages,
                                                uint64_t start, int len, uintptr_t retaddr);

void __wrap_tlb_protect_code_x86_64(struct uc_struct *uc, uint64_t ram_addr);
struct page_collection *__wrap_page_collection_lock_x86_64(struct uc_struct *uc,
                                                          uint64_t start, uint64_t end);
void __wrap_page_collection_unlock_x86_64(struct page_collection *set);
void __wrap_tb_invalidate_phys_page_fast_x86_64(struct uc_struct *uc,
                                                struct page_collection *pages,
                                                uint64_t start, int len, uintptr_t retaddr);

/* Marker for "no translated code here": a collection the real functions never see. */
static char no_code;
#define NO_CODE ((struct page_collection *)(void *)&no_code)

/* Engines whose TLB may hold writable entries without TLB_NOTDIRTY (sim_stores_filled). */
static struct cpu *fast_engines;
static pthread_mutex_t fast_engines_lock = PTHREAD_MUTEX_INITIALIZER;

/* A writable TLB entry of a page without translated code loses TLB_NOTDIRTY, which
 * unicorn 2.0.1 sets on every entry (its pages are all "clean"): stores there then run
 * inline in the translated code, as in QEMU, instead of through store_helper. QEMU's
 * tlb_set_dirty() clears the flag; the page gets it back when code appears on it
 * (__wrap_tlb_protect_code_x86_64). */
void sim_stores_filled(struct cpu *c, void *qemu_cs, uint64_t vaddr, uint64_t paddr)
{
    void *host = guest_mem_host(c->env.mem, paddr & ~0xfffULL, 0x1000);
    if (!host || atomic_load_explicit(&skipping_unsafe, memory_order_relaxed))
        return;
    uint64_t ram_addr = qemu_ram_addr_from_host_x86_64((struct uc_struct *)c->uc, host);
    if (ram_addr == UINT64_MAX || page_may_hold_code(ram_addr >> 12))
        return;
    if (!c->stores_fast) {
        pthread_mutex_lock(&fast_engines_lock);
        c->stores_next = fast_engines;
        fast_engines = c;
        c->stores_fast = 1;
        pthread_mutex_unlock(&fast_engines_lock);
    }
    tlb_set_dirty_x86_64(qemu_cs, vaddr);
}

void sim_stores_forget(struct cpu *c)
{
    pthread_mutex_lock(&fast_engines_lock);
    for (struct cpu **p = &fast_engines; *p; p = &(*p)->stores_next)
        if (*p == c) {
            *p = c->stores_next;
            break;
        }
    c->stores_fast = 0;
    pthread_mutex_unlock(&fast_engines_lock);
}

/* The page receives translated code: every writable TLB entry of this engine that maps it
 * goes back to the slow path, which invalidates the code a store overwrites. Called on
 * the engine's own thread (it is translating), so its TLB is not in use meanwhile. */
static void page_back_to_slow_stores(struct uc_struct *uc, uint64_t ram_addr)
{
    void *cs = NULL;

    pthread_mutex_lock(&fast_engines_lock);
    for (struct cpu *c = fast_engines; c; c = c->stores_next)
        if ((struct uc_struct *)c->uc == uc)
            cs = c->qemu_cs;
    pthread_mutex_unlock(&fast_engines_lock);
    if (!cs)
        return;
    uintptr_t host = (uintptr_t)qemu_map_ram_ptr_x86_64(uc, NULL, ram_addr & ~0xfffULL);
    tlb_reset_dirty_x86_64(cs, host, 0x1000);
}

void __wrap_tlb_protect_code_x86_64(struct uc_struct *uc, uint64_t ram_addr)
{
    if (page_mark_code(ram_addr >> 12))
        atomic_store(&skipping_unsafe, 1);
    page_back_to_slow_stores(uc, ram_addr);
    __real_tlb_protect_code_x86_64(uc, ram_addr);
}

struct page_collection *__wrap_page_collection_lock_x86_64(struct uc_struct *uc,
                                                          uint64_t start, uint64_t end)
{
    if (!range_may_hold_code(start, end))
        return NO_CODE;
    return __real_page_collection_lock_x86_64(uc, start, end);
}

void __wrap_tb_invalidate_phys_page_fast_x86_64(struct uc_struct *uc,
                                                struct page_collection *pages,
                                                uint64_t start, int len, uintptr_t retaddr)
{
    if (pages == NO_CODE)
        return;
    __real_tb_invalidate_phys_page_fast_x86_64(uc, pages, start, len, retaddr);
}

void __wrap_page_collection_unlock_x86_64(struct page_collection *set)
{
    if (set != NO_CODE)
        __real_page_collection_unlock_x86_64(set);
}
