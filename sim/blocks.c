/* Instructions per translated block, decoded once with capstone when a block is first
 * seen, so the block hook only adds a number. Also finds rdtsc/rdtscp (their position in
 * the block gives their exact time) and a trailing STI (interrupt shadow). */
#include "sim_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int blocks_init(struct sim_blocks *b)
{
    /* Small at first: every page of the table a process touches is a page fault, and a
     * short guest needs a few hundred blocks (the table doubles as it fills). */
    b->mask = 256 - 1;
    b->used = 0;
    memset(b->recent, 0, sizeof(b->recent));
    b->tab = calloc(b->mask + 1, sizeof(*b->tab));
    return b->tab ? 0 : -ENOMEM;
}

void blocks_destroy(struct sim_blocks *b)
{
    free(b->tab);
    b->tab = NULL;
}

/* Blocks are keyed by (pc, size, space): user-half code at one virtual address differs
 * between address spaces (sim_block_space). */
static uint64_t hash(uint64_t pc, uint32_t size, uint64_t space)
{
    uint64_t h = (pc ^ ((uint64_t)size << 40) ^ (space << 4)) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

static unsigned recent_slot(uint64_t pc)
{
    return (unsigned)((pc ^ (pc >> 12)) & (SIM_BLOCKS_RECENT - 1));
}

/* Measured (perf, Linux boot): the probe through the table, whose entries are about 100
 * bytes, was 12 % of the run; most lookups hit this small cache instead. */
struct sim_block *blocks_find(struct sim_blocks *b, uint64_t pc, uint32_t size, uint64_t space)
{
    struct sim_block **r = &b->recent[recent_slot(pc)];
    if (*r && (*r)->pc == pc && (*r)->size == size && (*r)->space == space)
        return *r;
    for (uint64_t i = hash(pc, size, space) & b->mask;; i = (i + 1) & b->mask) {
        struct sim_block *e = &b->tab[i];
        if (!e->used)
            return NULL;
        if (e->pc == pc && e->size == size && e->space == space) {
            *r = e;
            return e;
        }
    }
}

static int grow(struct sim_blocks *b)
{
    uint64_t mask = b->mask * 2 + 1, used = 0;
    struct sim_block *tab = calloc(mask + 1, sizeof(*tab));

    if (!tab)
        return -ENOMEM;
    for (uint64_t i = 0; i <= b->mask; i++)
        if (b->tab[i].used) {
            uint64_t j = hash(b->tab[i].pc, b->tab[i].size, b->tab[i].space) & mask;
            while (tab[j].used)
                j = (j + 1) & mask;
            tab[j] = b->tab[i];
            used++;
        }
    free(b->tab);
    b->tab = tab;
    b->mask = mask;
    b->used = used;
    memset(b->recent, 0, sizeof(b->recent));     /* they pointed into the old table */
    return 0;
}

static void decode(struct cpu *c, struct sim_block *e)
{
    struct x86_regs r;
    uint8_t buf[4096 * 2];
    size_t len = e->size < sizeof(buf) ? e->size : sizeof(buf);

    x86_read_regs(c, &r);
    enum code_mode mode = x86_code_mode(c, &r);
    if (!len || x86_read_virt(c, &r, e->pc, buf, len)) {
        e->icount = 1;          /* unreadable (unicorn will fault): count something */
        return;
    }
    cs_option(c->cs, CS_OPT_MODE, mode == CODE_64 ? CS_MODE_64 : mode == CODE_32 ? CS_MODE_32
                                                                                 : CS_MODE_16);
    const uint8_t *code = buf;
    uint64_t addr = e->pc;
    cs_insn *insn = cs_malloc(c->cs);
    unsigned n = 0, last = 0;
    if (!insn) {
        e->icount = 1;
        return;
    }
    while (len && cs_disasm_iter(c->cs, &code, &len, &addr, insn)) {
        last = insn->id;
        if (insn->id == X86_INS_RDTSC || insn->id == X86_INS_RDTSCP) {
            if (e->nrdtsc < SIM_BLOCK_RDTSC_MAX) {
                e->rdtsc[e->nrdtsc].offset = (uint16_t)(insn->address - e->pc);
                e->rdtsc[e->nrdtsc].index = (uint16_t)n;
                e->rdtsc[e->nrdtsc].len = (uint8_t)insn->size;
                e->rdtsc[e->nrdtsc].rdtscp = insn->id == X86_INS_RDTSCP;
                e->nrdtsc++;
            }
        }
        n++;
    }
    /* bytes capstone cannot decode (unicorn will raise #UD there) count as one */
    if (len)
        n++;
    cs_free(insn, 1);
    e->icount = (uint16_t)(n ? n : 1);
    e->ends_sti = last == X86_INS_STI && !len;
}

void blocks_decode(struct cpu *c, struct sim_block *e, uint64_t pc, uint32_t size,
                   uint64_t space)
{
    memset(e, 0, sizeof(*e));
    e->pc = pc;
    e->size = size;
    e->space = space;
    e->used = 1;
    decode(c, e);
}

struct sim_block *blocks_add(struct cpu *c, uint64_t pc, uint32_t size, uint64_t space)
{
    struct sim_blocks *b = &c->blocks;

    /* code that keeps generating new blocks (a JIT, or a hostile guest) must not grow the
     * table without bound: start over, the counts are simply decoded again */
    if (b->used >= SIM_BLOCKS_MAX) {
        memset(b->tab, 0, (b->mask + 1) * sizeof(*b->tab));
        b->used = 0;
        memset(b->recent, 0, sizeof(b->recent));
    }
    if ((b->used + 1) * 2 > b->mask + 1 && grow(b))
        return NULL;
    uint64_t i = hash(pc, size, space) & b->mask;
    while (b->tab[i].used)
        i = (i + 1) & b->mask;
    b->used++;
    blocks_decode(c, &b->tab[i], pc, size, space);
    return &b->tab[i];
}

unsigned blocks_count_before(struct cpu *c, const struct sim_block *e, uint64_t rip)
{
    struct x86_regs r;
    uint8_t buf[4096 * 2];
    size_t len = e->size < sizeof(buf) ? e->size : sizeof(buf);

    if (rip <= e->pc || rip - e->pc > len)
        return rip == e->pc ? 0 : e->icount;
    x86_read_regs(c, &r);
    if (x86_read_virt(c, &r, e->pc, buf, len))
        return e->icount;
    enum code_mode mode = x86_code_mode(c, &r);
    cs_option(c->cs, CS_OPT_MODE, mode == CODE_64 ? CS_MODE_64 : mode == CODE_32 ? CS_MODE_32
                                                                                 : CS_MODE_16);
    const uint8_t *code = buf;
    uint64_t addr = e->pc;
    unsigned n = 0;
    cs_insn *insn = cs_malloc(c->cs);
    if (!insn)
        return e->icount;
    while (len && addr < rip && cs_disasm_iter(c->cs, &code, &len, &addr, insn))
        n++;
    cs_free(insn, 1);
    return n < e->icount ? n : e->icount;
}

int blocks_insn_writes_memory(struct cpu *c, uint64_t rip)
{
    struct x86_regs r;
    uint8_t buf[16];
    int writes = 0;

    x86_read_regs(c, &r);
    if (x86_read_virt(c, &r, rip, buf, sizeof(buf)))
        return 0;
    enum code_mode mode = x86_code_mode(c, &r);
    cs_option(c->cs, CS_OPT_MODE, mode == CODE_64 ? CS_MODE_64 : mode == CODE_32 ? CS_MODE_32
                                                                                 : CS_MODE_16);
    cs_option(c->cs, CS_OPT_DETAIL, CS_OPT_ON);
    cs_insn *insn = NULL;
    if (cs_disasm(c->cs, buf, sizeof(buf), rip, 1, &insn) == 1) {
        switch (insn->id) {
        case X86_INS_PUSH: case X86_INS_PUSHAL: case X86_INS_PUSHAW: case X86_INS_PUSHF:
        case X86_INS_PUSHFD: case X86_INS_PUSHFQ: case X86_INS_CALL: case X86_INS_ENTER:
            writes = 1;                 /* implicit stack writes */
            break;
        default:
            for (unsigned i = 0; insn->detail && i < insn->detail->x86.op_count; i++) {
                const cs_x86_op *op = &insn->detail->x86.operands[i];
                if (op->type == X86_OP_MEM && (op->access & CS_AC_WRITE))
                    writes = 1;
            }
        }
        cs_free(insn, 1);
    }
    cs_option(c->cs, CS_OPT_DETAIL, CS_OPT_OFF);
    return writes;
}
