/* Each translated block carries its own block-hook data (Debian 12's unicorn 2.0.1).
 *
 * unicorn 2.0.1 compiles a lone UC_HOOK_BLOCK hook into every translated block as a direct
 * call of the callback with (engine, pc, size, user_data), user_data being a constant of
 * the block's code. sim_cpu.c's hook then had to find the block's instruction count by
 * address in a hash table, at every block run: perf of a Linux boot put the hook, its
 * table lookup and its one-entry cache at 38 % of the CPU time (sim/README.md).
 *
 * The constant is made by QEMU's tcg_const_i64(), a call from translator.c into tcg.c that
 * the linker's --wrap (Makefile, UNICORN_WRAP) routes through this file. unicorn emits the
 * hook's constants in a fixed order: the engine, the pc, the user data. When this thread's
 * vCPU (sim_mmu_running) is translating and that sequence ends with the vCPU's own hook
 * data (any_tb), the constant becomes a fresh sim_tb for this one translated block instead:
 * the hook decodes the block into it at its first run and reads it directly afterwards.
 * QEMU retires a translated block whenever its code is written, so these counts are always
 * those of the code that runs (the table by address kept stale ones for code rewritten in
 * place at the same size). A retranslated block (new code, a flushed cache) gets a new
 * one; old ones are not reclaimed, hence SIM_TBS_MAX, beyond which blocks share any_tb
 * again (the lookup by address). */
#include "sim_internal.h"

#include <stdlib.h>

struct TCGContext;

void *__real_tcg_const_i64_x86_64(struct TCGContext *s, int64_t val);
void *__wrap_tcg_const_i64_x86_64(struct TCGContext *s, int64_t val);

/* how far this thread is into the hook's constants: 1 the engine, 2 then the pc */
static _Thread_local int hook_consts;

static struct sim_tb *tb_new(struct cpu *c)
{
    struct sim_tb_chunk *k = c->tbs;

    if (c->ntbs >= SIM_TBS_MAX)
        return NULL;
    if (!k || k->used == SIM_TBS_CHUNK) {
        k = malloc(sizeof(*k));
        if (!k)
            return NULL;
        k->next = c->tbs;
        k->used = 0;
        c->tbs = k;
    }
    struct sim_tb *t = &k->tb[k->used++];
    t->c = c;
    t->ready = 0;
    c->ntbs++;
    return t;
}

void *__wrap_tcg_const_i64_x86_64(struct TCGContext *s, int64_t val)
{
    struct cpu *c = sim_mmu_running();

    if (c) {
        if (hook_consts == 2 && val == (int64_t)(intptr_t)&c->any_tb) {
            struct sim_tb *t = tb_new(c);
            if (t)
                val = (int64_t)(intptr_t)t;
            hook_consts = 0;
        } else if (val == (int64_t)(intptr_t)c->uc) {
            hook_consts = 1;
        } else {
            hook_consts = hook_consts == 1 ? 2 : 0;
        }
    }
    return __real_tcg_const_i64_x86_64(s, val);
}

void sim_tbs_free(struct cpu *c)
{
    while (c->tbs) {
        struct sim_tb_chunk *k = c->tbs;
        c->tbs = k->next;
        free(k);
    }
    c->ntbs = 0;
}
