/* Runtime-internal declarations shared between guest/rt/ files. */
#ifndef GUEST_RT_INTERNAL_H
#define GUEST_RT_INTERNAL_H

#include "rt.h"

/* PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h layout) */
#define HVM_START_MAGIC 0x336ec578u
struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
    uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_table_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};
#define HVM_MEMMAP_RAM 1

/* formatter core: calls out(c, ctx) for every character, returns the count */
typedef void (*rt_out_fn)(char c, void *ctx);
int rt_vformat(rt_out_fn out, void *ctx, const char *fmt, va_list ap);

void rt_cmdline_set(const char *s);
_Noreturn void rt_run_main(const char *cmdline);
void rt_fdt_set(const void *fdt);
void rt_ram_end_set(uint64_t end);
void rt_idt_init(void);
int rt_lapic_ready(void);
/* arm64: the virtual timer's interrupt came (trap.c): re-arm or stop it before the EOI. */
void rt_timer_fired(void);
/* arm64: the GIC's CPU interface (gic.c): acknowledge (the IAR value), its INTID, end it. */
uint32_t gic_ack(void);
unsigned gic_intid(uint32_t iar);
void gic_eoi(uint32_t iar);

#endif
