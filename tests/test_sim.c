/* The software CPU backend (sim/): tiny guests assembled right here (top-level asm, copied
 * into guest RAM at GUEST_LOAD and booted through the PVH 32-bit entry) run against buses
 * with recording devices. Everything asserted is what a user of vmlab would see: bus
 * accesses, stop reasons, fault addresses, interrupt counts and deterministic times. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "sim/lapic.h"
#include "sim/vclock.h"
#include "vmm/cpu_backend.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"

#define GUEST_LOAD 0x100000ULL
#define RAM_SIZE (4ULL << 20)

/* ---- guests ----
 * Ports: 0x80 report (the test records every OUT), 0x81 ask the test to pulse GSI 5,
 * 0x82 raise GSI 6 (level), 0x83 lower GSI 6, 0xf4 ask the test to stop the VM.
 * LONGMODE: from the PVH entry, identity-map 0-4 GiB with 2 MiB pages at 0x200000, load a
 * GDT, enter long mode, stack at 0x300000. IDT at 0x210000. Counters at 0x220000. */
__asm__(
    ".section .rodata.simguests, \"a\"\n"
    ".macro LONGMODE start\n"
    ".code32\n"
    "    mov $0x200000, %edi\n"
    "    xor %eax, %eax\n"
    "    mov $(0x6000 / 4), %ecx\n"
    "    rep stosl\n"
    "    movl $0x201003, 0x200000\n"
    "    movl $0x202003, 0x201000\n"
    "    movl $0x203003, 0x201008\n"
    "    movl $0x204003, 0x201010\n"
    "    movl $0x205003, 0x201018\n"
    "    xor %ecx, %ecx\n"
    "1:  mov %ecx, %eax\n"
    "    shl $21, %eax\n"
    "    or $0x83, %eax\n"
    "    mov %eax, 0x202000(,%ecx,8)\n"
    "    inc %ecx\n"
    "    cmp $2048, %ecx\n"
    "    jne 1b\n"
    "    mov $0x20, %eax\n"
    "    mov %eax, %cr4\n"
    "    mov $0x200000, %eax\n"
    "    mov %eax, %cr3\n"
    "    mov $0xc0000080, %ecx\n"
    "    rdmsr\n"
    "    or $0x100, %eax\n"
    "    wrmsr\n"
    "    lgdt (gdtr\\@ - \\start + 0x100000)\n"
    "    mov %cr0, %eax\n"
    "    or $0x80000001, %eax\n"
    "    mov %eax, %cr0\n"
    "    ljmp $0x08, $(lm\\@ - \\start + 0x100000)\n"
    "    .p2align 3\n"
    "gdt\\@: .quad 0, 0x00af9a000000ffff, 0x00cf92000000ffff\n"
    "gdtr\\@: .word 23\n"
    "    .long gdt\\@ - \\start + 0x100000\n"
    ".code64\n"
    "lm\\@:\n"
    "    mov $0x10, %eax\n"
    "    mov %eax, %ds\n"
    "    mov %eax, %es\n"
    "    mov %eax, %ss\n"
    "    mov $0x300000, %esp\n"
    ".endm\n"
    ".macro SET_GATE vec, handler\n"
    "    lea \\handler(%rip), %rax\n"
    "    mov $(0x210000 + \\vec * 16), %edi\n"
    "    mov %ax, (%rdi)\n"
    "    movw $0x08, 2(%rdi)\n"
    "    movw $0x8e00, 4(%rdi)\n"
    "    shr $16, %rax\n"
    "    mov %ax, 6(%rdi)\n"
    "    shr $16, %rax\n"
    "    mov %eax, 8(%rdi)\n"
    "    movl $0, 12(%rdi)\n"
    ".endm\n"
    ".macro LOAD_IDT\n"
    "    sub $16, %rsp\n"
    "    movw $4095, (%rsp)\n"
    "    movq $0x210000, 2(%rsp)\n"
    "    lidt (%rsp)\n"
    "    add $16, %rsp\n"
    ".endm\n"
    /* LAPIC register write: mov $val, reg offset (0xfee00000 needs a register in 64-bit) */
    ".macro LAPIC_W off, val\n"
    "    mov $(0xfee00000 + \\off), %edi\n"
    "    movl $\\val, (%rdi)\n"
    ".endm\n"

    /* PIO: byte/word/dword OUT, IN from a claimed and an unclaimed port, EBX/ESI at entry */
    ".globl g_pio, g_pio_end\n"
    ".code32\n"
    "g_pio:\n"
    "    mov %ebx, %eax\n"
    "    out %eax, $0x80\n"
    "    mov %esi, %eax\n"
    "    out %eax, $0x80\n"
    "    mov $0x3f8, %dx\n"
    "    mov $'h', %al\n"
    "    out %al, %dx\n"
    "    mov $0x1234, %ax\n"
    "    out %ax, $0x80\n"
    "    in $0x80, %eax\n"
    "    out %eax, $0x80\n"
    "    in $0x60, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_pio_end:\n"

    /* Self-modifying code (sim/unicorn_stores.c skips unicorn's code-invalidation path for
     * stores to pages without translated code, so this is what must still work): a called
     * function's immediate rewritten between calls, then the instruction right after the
     * store, in the block that is running, rewritten. Reports 0x11111111, 0x22222222,
     * 0x33333333, 0x42. */
    ".globl g_smc, g_smc_end\n"
    "g_smc:\n"
    "    mov $0x300000, %esp\n"
    "    mov $3, %ecx\n"
    "1:  call smc_fn\n"
    "    out %eax, $0x80\n"
    "    addl $0x11111111, (smc_fn - g_smc + 0x100001)\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    movb $0x42, (2f - g_smc + 0x100001)\n"
    "2:  mov $0x01, %al\n"
    "    out %al, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "smc_fn:\n"
    "    mov $0x11111111, %eax\n"
    "    ret\n"
    "g_smc_end:\n"
    "\n"
    /* Code written into a page nothing has run from yet (its stores took the fast path),
     * called, rewritten and called again: the second call runs the new immediate */
    /* 100 PAUSEs in a loop (a spin-wait's shape) */
    ".globl g_pause, g_pause_end\n"
    "g_pause:\n"
    "    mov $100, %ecx\n"
    "1:  pause\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    cli\n"
    "    hlt\n"
    "g_pause_end:\n"
    "\n"
    /* A function rewritten in place with the same byte size and another instruction count:
     * five NOPs and RET (6 instructions), then MOV $1, %eax and RET (2). The virtual time
     * across the second call is 3 (rdtsc, mov, call) + 2: counts belong to the translated
     * block, not to its address and size. Reports that difference. */
    ".globl g_smc_recount, g_smc_recount_end\n"
    "g_smc_recount:\n"
    "    mov $0x300000, %esp\n"
    "    mov $0x200000, %edi\n"
    "    movl $0x90909090, (%edi)\n"
    "    movw $0xc390, 4(%edi)\n"
    "    call *%edi\n"
    "    movl $0x000001b8, (%edi)\n"
    "    movw $0xc300, 4(%edi)\n"
    "    rdtsc\n"
    "    mov %eax, %esi\n"
    "    call *%edi\n"
    "    rdtsc\n"
    "    sub %esi, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_smc_recount_end:\n"
    "\n"
    /* A function whose immediate is rewritten after each of 300000 calls: each call runs a
     * freshly translated block, more than SIM_TBS_MAX of them, so the last ones are counted
     * through the table by address. Reports the last call's EAX (300000). */
    ".globl g_retranslate, g_retranslate_end\n"
    "g_retranslate:\n"
    "    mov $0x300000, %esp\n"
    "    mov $0x200000, %edi\n"
    "    movb $0xb8, (%edi)\n"               /* mov $imm32, %eax */
    "    movl $0, 1(%edi)\n"
    "    movb $0xc3, 5(%edi)\n"              /* ret */
    "    mov $300000, %ecx\n"
    "1:  call *%edi\n"
    "    incl 1(%edi)\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    call *%edi\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_retranslate_end:\n"
    "\n"
    ".globl g_smc_fresh, g_smc_fresh_end\n"
    "g_smc_fresh:\n"
    "    mov $0x300000, %esp\n"
    "    mov $0x200000, %edi\n"
    "    movb $0xb8, (%edi)\n"               /* mov $imm32, %eax */
    "    movl $0x11111111, 1(%edi)\n"
    "    movb $0xc3, 5(%edi)\n"              /* ret */
    "    call *%edi\n"
    "    out %eax, $0x80\n"
    "    movl $0x22222222, 1(%edi)\n"
    "    call *%edi\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_smc_fresh_end:\n"
    "\n"
    /* MMIO in 32-bit mode: write then read a device in the hole, read an unclaimed spot */
    ".globl g_mmio, g_mmio_end\n"
    "g_mmio:\n"
    "    movl $0x12345678, 0xd0000010\n"
    "    movw $0xabcd, 0xd0000020\n"
    "    mov 0xd0000004, %eax\n"
    "    out %eax, $0x80\n"
    "    mov 0xd0100000, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_mmio_end:\n"

    /* RDTSC around a 1000-iteration loop: report both readings and RDTSCP's ECX */
    ".globl g_rdtsc, g_rdtsc_end\n"
    "g_rdtsc:\n"
    "    rdtsc\n"
    "    mov %eax, %esi\n"
    "    mov $1000, %ecx\n"
    "1:  dec %ecx\n"
    "    jnz 1b\n"
    "    rdtsc\n"
    "    mov %eax, %edi\n"
    "    mov $7, %ecx\n"
    "    rdtscp\n"
    "    mov %eax, %ebx\n"
    "    mov %esi, %eax\n"
    "    out %eax, $0x80\n"
    "    mov %edi, %eax\n"
    "    out %eax, $0x80\n"
    "    mov %ebx, %eax\n"
    "    out %eax, $0x80\n"
    "    mov %ecx, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_rdtsc_end:\n"

    /* RDTSC (so unicorn has code hooks) then a loop across several poll points: each poll
     * leaves and re-enters unicorn, which must resume exactly where the guest was */
    ".globl g_rdtsc_poll, g_rdtsc_poll_end\n"
    "g_rdtsc_poll:\n"
    "    xor %ebx, %ebx\n"
    "    xor %esi, %esi\n"
    "    mov $1500000, %ecx\n"
    "    rdtsc\n"
    "    add $1000, %ebx\n"                /* must run once, whatever the polls do */
    "1:  inc %ebx\n"
    "    jmp 2f\n"                         /* two blocks chained into each other */
    "2:  add $3, %esi\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    mov %ebx, %eax\n"
    "    out %eax, $0x80\n"
    "    mov %esi, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_rdtsc_poll_end:\n"
    /* more rdtsc in one block than a block table entry keeps: all must read virtual time */
    ".globl g_rdtsc_many, g_rdtsc_many_end\n"
    "g_rdtsc_many:\n"
    "    .rept 12\n"
    "    rdtsc\n"
    "    .endr\n"
    "    out %eax, $0x80\n"
    "    rdtscp\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_rdtsc_many_end:\n"
    /* 32-bit #DE through a 32-bit IDT; rdtsc on both sides measures what retired */
    ".globl g_de_exact, g_de_exact_end\n"
    "g_de_exact:\n"
    "    mov $0x300000, %esp\n"
    "    lgdt (0x100000 + dx_gdtr - g_de_exact)\n"
    "    ljmp $0x08, $(0x100000 + 1f - g_de_exact)\n"
    "1:  mov $(0x100000 + dx_handler - g_de_exact), %eax\n"
    "    mov %ax, 0x200000\n"
    "    movw $0x08, 0x200002\n"
    "    movw $0x8e00, 0x200004\n"
    "    shr $16, %eax\n"
    "    mov %ax, 0x200006\n"
    "    lidt (0x100000 + dx_idtr - g_de_exact)\n"
    "    xor %ecx, %ecx\n"
    "    rdtsc\n"
    "    mov %eax, %esi\n"
    "    xor %edx, %edx\n"
    "    div %ecx\n"                       /* faults: does not retire */
    "    rdtsc\n"
    "    sub %esi, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "dx_handler:\n"
    "    addl $2, (%esp)\n"
    "    iret\n"
    "    .p2align 3\n"
    "dx_gdt: .quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff\n"
    "dx_gdtr: .word 23\n"
    "    .long 0x100000 + dx_gdt - g_de_exact\n"
    "dx_idtr: .word 256 * 8 - 1\n"
    "    .long 0x200000\n"
    "g_de_exact_end:\n"
    /* ff /3 with a register operand (far call through a register, #UD on hardware) makes
     * unicorn 2.0.1's translator abort the process */
    ".globl g_tcg_abort, g_tcg_abort_end\n"
    "g_tcg_abort:\n"
    "    nop\n"
    "    jmp 1f\n"
    "1:  .byte 0xff, 0xdb\n"
    "    cli\n"
    "    hlt\n"
    "g_tcg_abort_end:\n"
    /* 5000 one-instruction blocks (the block table grows twice on the way), then rdtsc */
    ".globl g_many_blocks, g_many_blocks_end\n"
    "g_many_blocks:\n"
    "    .rept 5000\n"
    "    jmp .+2\n"
    "    .endr\n"
    "    rdtsc\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_many_blocks_end:\n"
    ".globl g_hlt_cli, g_hlt_cli_end\n"
    "g_hlt_cli:\n"
    "    cli\n"
    "    hlt\n"
    "g_hlt_cli_end:\n"

    ".globl g_hlt_sti, g_hlt_sti_end\n"
    "g_hlt_sti:\n"
    "    sti\n"
    "    hlt\n"
    "g_hlt_sti_end:\n"

    ".globl g_unmapped, g_unmapped_end\n"
    "g_unmapped:\n"
    "    mov $0x40000000, %eax\n"
    "    mov (%eax), %ebx\n"
    "    cli\n"
    "    hlt\n"
    "g_unmapped_end:\n"

    ".globl g_ud2, g_ud2_end\n"
    "g_ud2:\n"
    "    nop\n"
    "    ud2\n"
    "g_ud2_end:\n"

    /* jump into the MMIO hole: a device window, then nowhere at all */
    ".globl g_exec_mmio, g_exec_mmio_end\n"
    "g_exec_mmio:\n"
    "    mov $0xd0000000, %eax\n"
    "    jmp *%eax\n"
    "g_exec_mmio_end:\n"
    ".globl g_exec_hole, g_exec_hole_end\n"
    "g_exec_hole:\n"
    "    mov $0xe0000000, %eax\n"
    "    jmp *%eax\n"
    "g_exec_hole_end:\n"
    /* IDT whose gate points at unmapped memory, then INT: the handler fetch faults */
    ".globl g_bad_idt, g_bad_idt_end\n"
    "g_bad_idt:\n"
    "    mov $0x300000, %esp\n"
    "    lgdt (0x100000 + bi_gdtr - g_bad_idt)\n"
    "    ljmp $0x08, $(0x100000 + 1f - g_bad_idt)\n"
    "1:  mov $0x200000, %edi\n"
    "    movl $0x0008ff00, 0x20 * 8(%edi)\n"   /* selector 8, offset low 0xff00 */
    "    movl $0x40008e00, 0x20 * 8 + 4(%edi)\n" /* offset high 0x4000: 0x4000ff00 */
    "    lidt (0x100000 + bi_idtr - g_bad_idt)\n"
    "    int $0x20\n"
    "    cli\n"
    "    hlt\n"
    "    .p2align 3\n"
    "bi_gdt: .quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff\n"
    "bi_gdtr: .word 23\n"
    "    .long 0x100000 + bi_gdt - g_bad_idt\n"
    "bi_idtr: .word 256 * 8 - 1\n"
    "    .long 0x200000\n"
    "g_bad_idt_end:\n"
    /* an IDT in the MMIO hole and a #DE: reading the gate itself fails */
    ".globl g_idt_in_hole, g_idt_in_hole_end\n"
    "g_idt_in_hole:\n"
    "    lidt (0x100000 + ih_idtr - g_idt_in_hole)\n"
    "    xor %ecx, %ecx\n"
    "    div %ecx\n"
    "    cli\n"
    "    hlt\n"
    "ih_idtr: .word 256 * 8 - 1\n"
    "    .long 0xd0000000\n"
    "g_idt_in_hole_end:\n"
    ".globl g_spin, g_spin_end\n"
    "g_spin:\n"
    "1:  inc %eax\n"
    "    jmp 1b\n"
    "g_spin_end:\n"

    ".globl g_exit, g_exit_end\n"
    "g_exit:\n"
    "    mov $0x10, %eax\n"
    "    out %eax, $0xf4\n"
    "1:  jmp 1b\n"
    "g_exit_end:\n"

    /* long mode: a 64-bit-only computation proves the switch */
    ".globl g_long, g_long_end\n"
    "g_long:\n"
    "    LONGMODE g_long\n"
    "    mov $0x123456789, %rax\n"
    "    shr $32, %rax\n"
    "    out %eax, $0x80\n"
    "    mov $0xfee00030, %edi\n"       /* LAPIC version via MMIO in long mode */
    "    mov (%rdi), %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_long_end:\n"

    /* #DE through the guest's own IDT: the handler skips the 2-byte div and counts */
    ".globl g_de, g_de_end\n"
    "g_de:\n"
    "    LONGMODE g_de\n"
    "    SET_GATE 0, de_handler\n"
    "    LOAD_IDT\n"
    "    xor %ecx, %ecx\n"
    "    mov $5, %eax\n"
    "    xor %edx, %edx\n"
    "    div %ecx\n"                     /* f7 f1 */
    "    div %ecx\n"                     /* a second #DE must not become a #DF */
    "    div %ecx\n"
    "    mov 0x220000, %eax\n"
    "    out %eax, $0x80\n"
    "    mov $0x77, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "de_handler:\n"
    "    incl 0x220000\n"
    "    addq $2, (%rsp)\n"
    "    iretq\n"
    "g_de_end:\n"

    /* #PF through the guest's IDT with the error code rebuilt: 0-2 MiB on 4 KiB pages,
     * then a write to a missing page, a write to a read-only page (CR0.WP) and a read of
     * a missing page; the handler reports code and CR2 and maps the page */
    ".globl g_pf, g_pf_end\n"
    "g_pf:\n"
    "    LONGMODE g_pf\n"
    "    SET_GATE 14, pf_handler\n"
    "    LOAD_IDT\n"
    "    xor %ecx, %ecx\n"
    "1:  mov %ecx, %eax\n"
    "    shl $12, %eax\n"
    "    or $3, %eax\n"
    "    mov %eax, 0x206000(,%ecx,8)\n"
    "    inc %ecx\n"
    "    cmp $512, %ecx\n"
    "    jne 1b\n"
    "    movl $0, 0x206000 + 0x180 * 8\n"  /* missing */
    "    movl $0x181001, 0x206000 + 0x181 * 8\n"  /* read-only */
    "    movl $0, 0x206000 + 0x182 * 8\n"  /* missing */
    "    movl $0x206003, 0x202000\n"       /* PD[0] -> the 4 KiB table */
    "    mov %cr0, %rax\n"
    "    or $0x10000, %eax\n"              /* WP */
    "    mov %rax, %cr0\n"
    "    mov %cr3, %rax\n"
    "    mov %rax, %cr3\n"
    "    movl $1, 0x180000\n"
    "    movl $2, 0x181000\n"
    "    mov 0x182000, %eax\n"
    "    mov $0x77, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "pf_handler:\n"
    "    pop %rax\n"
    "    out %eax, $0x80\n"
    "    mov %cr2, %rax\n"
    "    out %eax, $0x80\n"
    "    shr $12, %rax\n"
    "    lea 0x206000(,%rax,8), %rdi\n"
    "    shl $12, %rax\n"
    "    or $3, %rax\n"
    "    mov %rax, (%rdi)\n"
    "    mov %cr3, %rax\n"
    "    mov %rax, %cr3\n"
    "    iretq\n"
    "g_pf_end:\n"

    /* Virtual != physical. The kernel half maps VA 0xffffffff80000000 -> PA 0 and
     * 0xffffffff80200000 -> the MMIO device (2 MiB pages); the guest continues at the high
     * alias of its own code, stores through it, reads the device through it. Then two
     * address spaces (CR3 0x200000 and 0x209000, kernel half shared) map VA 0x40000000 to
     * different 4 KiB pages holding blocks of the same address and size, 6 and 2
     * instructions (90 90 90 90 90 c3 / 0f 1f 44 00 00 c3): each call is timed with rdtsc
     * (virtual time = instructions retired). */
    ".globl g_highva, g_highva_end\n"
    "g_highva:\n"
    "    LONGMODE g_highva\n"
    "    movl $0x207003, 0x200000 + 511 * 8\n"     /* PML4[511] -> PDPT */
    "    movl $0x208003, 0x207000 + 510 * 8\n"     /* PDPT[510] -> PD */
    "    movl $0x83, 0x208000\n"                    /* PD[0]: 2 MiB at PA 0 */
    "    movl $0xd0000093, 0x208008\n"              /* PD[1]: 2 MiB at the device, PCD */
    "    movl $0x20b003, 0x201008\n"                /* A: PDPT[1] -> PD -> PT -> 0x230000 */
    "    movl $0x20c003, 0x20b000\n"
    "    movl $0x230003, 0x20c000\n"
    "    movl $0x20a003, 0x209000\n"                /* B: PML4[0] -> PDPT */
    "    movl $0x207003, 0x209000 + 511 * 8\n"     /* B: kernel half shared */
    "    movl $0x202003, 0x20a000\n"                /* B: 0-1 GiB identity */
    "    movl $0x20d003, 0x20a008\n"                /* B: PDPT[1] -> PD -> PT -> 0x231000 */
    "    movl $0x20e003, 0x20d000\n"
    "    movl $0x231003, 0x20e000\n"
    "    movl $0x90909090, 0x230000\n"
    "    movw $0xc390, 0x230004\n"
    "    movl $0x00441f0f, 0x231000\n"
    "    movw $0xc300, 0x231004\n"
    "    mov %cr3, %rax\n"
    "    mov %rax, %cr3\n"
    "    movabs $(0xffffffff80000000 + hi_highva - g_highva + 0x100000), %rax\n"
    "    jmp *%rax\n"
    "hi_highva:\n"
    "    lea hi_highva(%rip), %rax\n"
    "    shr $32, %rax\n"
    "    out %eax, $0x80\n"                         /* 0xffffffff: running up there */
    "    movabs $0xffffffff801f0000, %rdi\n"
    "    movl $0x1234, (%rdi)\n"
    "    mov 0x1f0000, %eax\n"
    "    out %eax, $0x80\n"                         /* 0x1234: same RAM through both */
    "    movabs $0xffffffff80200010, %rdi\n"
    "    mov (%rdi), %eax\n"
    "    out %eax, $0x80\n"                         /* 0xcafef00d: the device */
    "    mov $0x40000000, %esi\n"
    "    rdtsc\n"
    "    mov %eax, %r8d\n"
    "    call *%rsi\n"
    "    rdtsc\n"
    "    sub %r8d, %eax\n"
    "    out %eax, $0x80\n"                         /* A: base + 6 */
    "    mov $0x209000, %eax\n"
    "    mov %rax, %cr3\n"
    "    rdtsc\n"
    "    mov %eax, %r8d\n"
    "    call *%rsi\n"
    "    rdtsc\n"
    "    sub %r8d, %eax\n"
    "    out %eax, $0x80\n"                         /* B: base + 2 */
    "    cli\n"
    "    hlt\n"
    "g_highva_end:\n"

    /* The CPU model: CPUID.1 EDX, CPUID.80000001 EDX, then EFER with SCE and NXE set
     * (QEMU drops them unless its feature words have SYSCALL and NX). */
    ".globl g_cpuid, g_cpuid_end\n"
    "g_cpuid:\n"
    "    LONGMODE g_cpuid\n"
    "    mov $1, %eax\n"
    "    cpuid\n"
    "    mov %edx, %eax\n"
    "    out %eax, $0x80\n"
    "    mov $0x80000001, %eax\n"
    "    cpuid\n"
    "    mov %edx, %eax\n"
    "    out %eax, $0x80\n"
    "    mov $0xc0000080, %ecx\n"
    "    rdmsr\n"
    "    or $0x801, %eax\n"
    "    wrmsr\n"
    "    rdmsr\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_cpuid_end:\n"

    /* User mode: a GDT with user segments and a TSS (RSP0 0x2f0000), U bits on the
     * tables of 0-4 MiB, SYSCALL MSRs; iretq to CPL 3 (IOPL 3 for the reports), a #PF
     * there (read at 0x100000000000, not mapped), then two system calls. */
    ".globl g_user, g_user_end\n"
    "g_user:\n"
    "    LONGMODE g_user\n"
    "    SET_GATE 14, user_pf\n"
    "    LOAD_IDT\n"
    "    orl $4, 0x200000\n"
    "    orl $4, 0x201000\n"
    "    orl $4, 0x202000\n"
    "    orl $4, 0x202008\n"
    "    mov $0x230000, %edi\n"
    "    movq $0, (%rdi)\n"
    "    movabs $0x00af9a000000ffff, %rax\n"      /* 0x08 kernel code64 */
    "    mov %rax, 8(%rdi)\n"
    "    movabs $0x00cf92000000ffff, %rax\n"      /* 0x10 kernel data */
    "    mov %rax, 16(%rdi)\n"
    "    movabs $0x00cffa000000ffff, %rax\n"      /* 0x18 user code32 */
    "    mov %rax, 24(%rdi)\n"
    "    movabs $0x00cff2000000ffff, %rax\n"      /* 0x20 user data */
    "    mov %rax, 32(%rdi)\n"
    "    movabs $0x00affa000000ffff, %rax\n"      /* 0x28 user code64 */
    "    mov %rax, 40(%rdi)\n"
    "    movabs $0x0000892310000067, %rax\n"      /* 0x30 TSS at 0x231000 */
    "    mov %rax, 48(%rdi)\n"
    "    movq $0, 56(%rdi)\n"
    "    movq $0x2f0000, 0x231004\n"               /* TSS.RSP0 */
    "    sub $16, %rsp\n"
    "    movw $63, (%rsp)\n"
    "    movq $0x230000, 2(%rsp)\n"
    "    lgdt (%rsp)\n"
    "    add $16, %rsp\n"
    "    mov $0x30, %ax\n"
    "    ltr %ax\n"
    "    mov $0xc0000081, %ecx\n"                  /* STAR */
    "    xor %eax, %eax\n"
    "    mov $0x00180008, %edx\n"
    "    wrmsr\n"
    "    mov $0xc0000082, %ecx\n"                  /* LSTAR */
    "    lea user_sys(%rip), %rax\n"
    "    mov %rax, %rdx\n"
    "    shr $32, %rdx\n"
    "    wrmsr\n"
    "    mov $0xc0000084, %ecx\n"                  /* FMASK: IF */
    "    mov $0x200, %eax\n"
    "    xor %edx, %edx\n"
    "    wrmsr\n"
    "    mov $0xc0000080, %ecx\n"                  /* EFER.SCE */
    "    rdmsr\n"
    "    or $1, %eax\n"
    "    wrmsr\n"
    "    push $0x23\n"
    "    push $0x2e0000\n"
    "    push $0x3002\n"
    "    push $0x2b\n"
    "    lea user_code(%rip), %rax\n"
    "    push %rax\n"
    "    iretq\n"
    "user_code:\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x80\n"                         /* 0x2b */
    "    movabs $0x100000000000, %rdi\n"
    "    .byte 0x8b, 0x07\n"                        /* #PF at CPL 3 */
    "    mov $42, %eax\n"
    "    syscall\n"
    "    out %eax, $0x80\n"                         /* 0x1234 from the kernel */
    "    mov %cs, %eax\n"
    "    out %eax, $0x80\n"                         /* 0x2b again after sysret */
    "    mov $60, %eax\n"
    "    syscall\n"
    "user_pf:\n"
    "    mov (%rsp), %rax\n"
    "    out %eax, $0x80\n"                         /* error code: user, read, not present */
    "    mov 16(%rsp), %rax\n"
    "    out %eax, $0x80\n"                         /* the interrupted CS: 0x2b */
    "    mov %rsp, %rax\n"
    "    shr $12, %rax\n"
    "    out %eax, $0x80\n"                         /* on the TSS.RSP0 stack: 0x2ef */
    "    addq $2, 8(%rsp)\n"
    "    add $8, %rsp\n"
    "    iretq\n"
    "user_sys:\n"
    "    mov %rax, %rbx\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x80\n"                         /* 0x08 */
    "    cmp $60, %rbx\n"
    "    je 1f\n"
    "    mov %r11, %rax\n"
    "    out %eax, $0x80\n"                         /* the user's RFLAGS */
    "    mov $0x1234, %eax\n"
    "    sysretq\n"
    "1:  cli\n"
    "    hlt\n"
    "g_user_end:\n"

    /* #GP-free exception without a gate: #DE with an empty IDT */
    ".globl g_de_nogate, g_de_nogate_end\n"
    "g_de_nogate:\n"
    "    LONGMODE g_de_nogate\n"
    "    LOAD_IDT\n"
    "    xor %ecx, %ecx\n"
    "    div %ecx\n"
    "    cli\n"
    "    hlt\n"
    "g_de_nogate_end:\n"

    /* LAPIC periodic timer: vector 0x40 every 10000 counts (divide by 1), 5 interrupts;
     * the handler reports the interrupt number (the test timestamps it) and EOIs */
    ".globl g_timer, g_timer_end\n"
    "g_timer:\n"
    "    LONGMODE g_timer\n"
    "    SET_GATE 0x40, timer_handler\n"
    "    LOAD_IDT\n"
    "    LAPIC_W 0xf0, 0x1ff\n"
    "    LAPIC_W 0x3e0, 0xb\n"
    "    LAPIC_W 0x320, 0x20040\n"
    "    LAPIC_W 0x380, 10000\n"
    "    sti\n"
    "1:  hlt\n"
    "    cmpl $5, 0x220000\n"
    "    jb 1b\n"
    "    LAPIC_W 0x320, 0x10040\n"        /* mask it again */
    "    cli\n"
    "    hlt\n"
    "timer_handler:\n"
    "    push %rax\n"
    "    push %rdi\n"
    "    incl 0x220000\n"
    "    mov 0x220000, %eax\n"
    "    out %eax, $0x80\n"
    "    LAPIC_W 0xb0, 0\n"
    "    pop %rdi\n"
    "    pop %rax\n"
    "    iretq\n"
    "g_timer_end:\n"

    /* LAPIC periodic timer while the guest computes (no HLT): interrupts land between
     * blocks at deterministic instruction counts */
    ".globl g_timer_busy, g_timer_busy_end\n"
    "g_timer_busy:\n"
    "    LONGMODE g_timer_busy\n"
    "    SET_GATE 0x40, timer_handler2\n"
    "    LOAD_IDT\n"
    "    LAPIC_W 0xf0, 0x1ff\n"
    "    LAPIC_W 0x3e0, 0xb\n"
    "    LAPIC_W 0x320, 0x20040\n"
    "    LAPIC_W 0x380, 5000\n"
    "    sti\n"
    "1:  inc %rbx\n"
    "    cmpl $4, 0x220000\n"
    "    jb 1b\n"
    "    cli\n"
    "    hlt\n"
    "timer_handler2:\n"
    "    push %rax\n"
    "    push %rdi\n"
    "    incl 0x220000\n"
    "    mov 0x220000, %eax\n"
    "    out %eax, $0x80\n"
    "    LAPIC_W 0xb0, 0\n"
    "    pop %rdi\n"
    "    pop %rax\n"
    "    iretq\n"
    "g_timer_busy_end:\n"

    /* one-shot timer far in the future, HLT: the clock jumps to the deadline */
    ".globl g_oneshot, g_oneshot_end\n"
    "g_oneshot:\n"
    "    LONGMODE g_oneshot\n"
    "    SET_GATE 0x41, oneshot_handler\n"
    "    LOAD_IDT\n"
    "    LAPIC_W 0xf0, 0x1ff\n"
    "    LAPIC_W 0x3e0, 0xb\n"
    "    LAPIC_W 0x320, 0x41\n"
    "    LAPIC_W 0x380, 50000000\n"
    "    sti\n"
    "    hlt\n"
    "    rdtsc\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "oneshot_handler:\n"
    "    LAPIC_W 0xb0, 0\n"
    "    iretq\n"
    "g_oneshot_end:\n"

    /* I/O APIC: GSI 5 edge -> vector 0x50, GSI 6 level -> vector 0x51 */
    ".globl g_ioapic, g_ioapic_end\n"
    "g_ioapic:\n"
    "    LONGMODE g_ioapic\n"
    "    SET_GATE 0x50, edge_handler\n"
    "    SET_GATE 0x51, level_handler\n"
    "    LOAD_IDT\n"
    "    LAPIC_W 0xf0, 0x1ff\n"
    "    mov $0xfec00000, %edi\n"
    "    movl $(0x10 + 2 * 5), (%rdi)\n"
    "    movl $0x50, 0x10(%rdi)\n"
    "    movl $(0x10 + 2 * 6), (%rdi)\n"
    "    movl $(0x51 | 0x8000), 0x10(%rdi)\n"
    "    out %al, $0x81\n"                 /* test pulses GSI 5 */
    "    sti\n"
    "    hlt\n"                            /* wakes with vector 0x50 */
    "    cli\n"
    "    out %al, $0x82\n"                 /* test raises GSI 6 and leaves it high */
    "    sti\n"
    "    hlt\n"
    "    mov $1000, %ecx\n"                /* run a while: a stuck level must not refire */
    "2:  dec %ecx\n"
    "    jnz 2b\n"
    "    mov 0x220000, %eax\n"
    "    out %eax, $0x80\n"
    "    mov 0x220004, %eax\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "edge_handler:\n"
    "    incl 0x220000\n"
    "    push %rdi\n"
    "    LAPIC_W 0xb0, 0\n"
    "    pop %rdi\n"
    "    iretq\n"
    "level_handler:\n"
    "    incl 0x220004\n"
    "    out %al, $0x83\n"                 /* device acknowledges: test lowers GSI 6 */
    "    push %rdi\n"
    "    LAPIC_W 0xb0, 0\n"
    "    pop %rdi\n"
    "    iretq\n"
    "g_ioapic_end:\n"
    /* CPU_BOOT_LINUX64: entered in 64-bit mode directly */
    ".code64\n"
    ".globl g_l64, g_l64_end\n"
    "g_l64:\n"
    "    mov %rsi, %rax\n"
    "    out %eax, $0x80\n"
    "    mov $0x123456789, %rax\n"
    "    shr $32, %rax\n"
    "    out %eax, $0x80\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x80\n"
    "    mov %ds, %eax\n"
    "    out %eax, $0x80\n"
    "    rdtsc\n"
    "    out %eax, $0x80\n"
    "    cli\n"
    "    hlt\n"
    "g_l64_end:\n"
    ".text\n");

#define GUEST(name) extern const unsigned char name[], name##_end[]
GUEST(g_pio); GUEST(g_smc); GUEST(g_smc_fresh); GUEST(g_smc_recount); GUEST(g_retranslate); GUEST(g_pause); GUEST(g_mmio); GUEST(g_rdtsc); GUEST(g_hlt_cli); GUEST(g_hlt_sti);
GUEST(g_unmapped); GUEST(g_ud2); GUEST(g_spin); GUEST(g_exit); GUEST(g_long); GUEST(g_de);
GUEST(g_de_nogate); GUEST(g_l64); GUEST(g_exec_mmio); GUEST(g_exec_hole);
GUEST(g_bad_idt); GUEST(g_idt_in_hole); GUEST(g_rdtsc_poll); GUEST(g_rdtsc_many); GUEST(g_de_exact); GUEST(g_tcg_abort); GUEST(g_many_blocks); GUEST(g_pf); GUEST(g_highva); GUEST(g_cpuid); GUEST(g_user); GUEST(g_timer); GUEST(g_timer_busy); GUEST(g_oneshot); GUEST(g_ioapic);

/* ---- the machine around a guest ---- */

struct access {
    int write;
    uint64_t addr;
    unsigned size;
    uint64_t value;
    uint64_t time;          /* virtual ns when it happened */
};

struct vm {
    void *ram;
    struct guest_mem mem;
    struct bus mmio, pio;
    struct vm_stats stats;
    volatile int stop;
    struct cpu_env env;
    struct cpu *cpu;
    const struct clock *clock;
    const struct irq_sink *irqs;
    struct access log[64];
    unsigned nlog;
    uint64_t report[64];    /* values OUT to port 0x80, in order */
    uint64_t report_time[64];
    unsigned nreport;
    unsigned polls;
    struct cpu_stop st;
};

static void log_access(struct vm *vm, int write, uint64_t addr, unsigned size, uint64_t v)
{
    if (vm->nlog < 64)
        vm->log[vm->nlog++] = (struct access){ write, addr, size, v,
                                               vm->clock ? clock_now_ns(vm->clock) : 0 };
}

static int dev_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    struct vm *vm = opaque;
    log_access(vm, 0, off, size, 0);
    *value = 0xcafef00dULL;
    return 0;
}

static int mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    log_access(opaque, 1, off, size, value);
    return 0;
}

static int port_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct vm *vm = opaque;
    uint64_t port = 0x80 + off;

    log_access(vm, 1, port, size, value);
    if (port == 0x80 && vm->nreport < 64) {
        vm->report_time[vm->nreport] = clock_now_ns(vm->clock);
        vm->report[vm->nreport++] = value;
    }
    if (port == 0x81) {
        vm->irqs->set_level(vm->irqs->opaque, 5, 1);
        vm->irqs->set_level(vm->irqs->opaque, 5, 0);
    }
    if (port == 0x82)
        vm->irqs->set_level(vm->irqs->opaque, 6, 1);
    if (port == 0x83)
        vm->irqs->set_level(vm->irqs->opaque, 6, 0);
    return 0;
}

static int serial_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    log_access(opaque, 1, 0x3f8 + off, size, value);
    return 0;
}

static int exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct vm *vm = opaque;
    log_access(vm, 1, 0xf4 + off, size, value);
    vm->stop = 1;
    return 0;
}

static const struct bus_ops mmio_dev_ops = { dev_read, mmio_write };
static const struct bus_ops port_ops = { dev_read, port_write };
static const struct bus_ops serial_ops = { NULL, serial_write };
static const struct bus_ops exit_ops = { NULL, exit_write };

static int stop_at_poll;        /* the poll callback requests a stop (a control socket would) */

static void count_poll(void *opaque)
{
    struct vm *vm = opaque;
    vm->polls++;
    if (stop_at_poll)
        vm->stop = 1;
}

/* mode: a cpu_boot_mode, or -1 to leave the CPU unbooted */
static struct vm *vm_new_mode(const unsigned char *code, const unsigned char *end, uint64_t max,
                              int mode)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    ck_assert_ptr_nonnull(vm);
    vm->ram = aligned_alloc(4096, RAM_SIZE);
    ck_assert_ptr_nonnull(vm->ram);
    memset(vm->ram, 0, RAM_SIZE);
    guest_mem_init_buffer(&vm->mem, vm->ram, RAM_SIZE);
    bus_init(&vm->mmio, BUS_MMIO);
    bus_init(&vm->pio, BUS_PIO);
    ck_assert_int_ge(bus_register(&vm->mmio, 0xd0000000, 0x1000, &mmio_dev_ops, vm, "dev"), 0);
    ck_assert_int_ge(bus_register(&vm->pio, 0x80, 4, &port_ops, vm, "report"), 0);
    ck_assert_int_ge(bus_register(&vm->pio, 0x3f8, 8, &serial_ops, vm, "serial"), 0);
    ck_assert_int_ge(bus_register(&vm->pio, 0xf4, 4, &exit_ops, vm, "exit"), 0);
    vm->env = (struct cpu_env){ .mem = &vm->mem, .mmio = &vm->mmio, .pio = &vm->pio,
                                .stats = &vm->stats, .stop_requested = &vm->stop,
                                .max_insns = max, .poll = count_poll, .poll_opaque = vm };
    ck_assert_int_eq(sim_cpu_backend.probe(NULL, 0), 0);
    ck_assert_int_eq(sim_cpu_backend.create(&vm->env, &vm->cpu), 0);
    vm->clock = sim_cpu_backend.clock(vm->cpu);
    vm->irqs = sim_cpu_backend.irq_sink(vm->cpu);
    memcpy((char *)vm->ram + GUEST_LOAD, code, (size_t)(end - code));
    if (mode >= 0) {
        struct cpu_boot boot = { (enum cpu_boot_mode)mode, GUEST_LOAD, 0x6000 };
        ck_assert_int_eq(sim_cpu_backend.boot(vm->cpu, &boot), 0);
    }
    return vm;
}

static struct vm *vm_new(const unsigned char *code, const unsigned char *end, uint64_t max)
{
    return vm_new_mode(code, end, max, CPU_BOOT_PVH32);
}

static void vm_run(struct vm *vm)
{
    ck_assert_int_eq(sim_cpu_backend.run(vm->cpu, &vm->st), 0);
}

static void vm_free(struct vm *vm)
{
    sim_cpu_backend.destroy(vm->cpu);
    free(vm->ram);
    free(vm);
}

#define RUN(name, max) ({ struct vm *v_ = vm_new(name, name##_end, (max)); vm_run(v_); v_; })
/* RUN for a guest that reports one value and halts: checks both, returns the VM. */
#define RUN_REPORTING(name, value) ({ struct vm *r_ = RUN(name, 0); \
    ck_assert_int_eq(r_->st.reason, CPU_STOP_HALTED); \
    ck_assert_uint_eq(r_->nreport, 1); \
    ck_assert_uint_eq(r_->report[0], (value)); \
    r_; })

/* ---- tests ---- */

START_TEST(pio_reaches_bus)
{
    struct vm *vm = RUN(g_pio, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 5);
    ck_assert_uint_eq(vm->report[0], 0x6000);          /* EBX = start_info */
    ck_assert_uint_eq(vm->report[1], 0);               /* ESI = 0 */
    ck_assert_uint_eq(vm->report[2], 0x1234);
    ck_assert_uint_eq(vm->report[3], 0xcafef00d);      /* IN from a claimed port */
    ck_assert_uint_eq(vm->report[4], 0xffffffff);      /* unclaimed: all ones */
    /* the serial byte: port, size, value */
    int found = 0;
    for (unsigned i = 0; i < vm->nlog; i++)
        if (vm->log[i].addr == 0x3f8) {
            ck_assert_uint_eq(vm->log[i].size, 1);
            ck_assert_uint_eq(vm->log[i].value, 'h');
            found = 1;
        }
    ck_assert(found);
    ck_assert_uint_eq(vm->log[0].size, 4);             /* dword OUT of EBX */
    ck_assert_uint_eq(vm->stats.exits[EXIT_PIO_OUT], 6);
    ck_assert_uint_eq(vm->stats.exits[EXIT_PIO_IN], 2);
    ck_assert_uint_eq(vm->stats.exits[EXIT_HLT], 1);
    ck_assert_uint_gt(vm->stats.insns, 10);
    ck_assert_uint_eq(vm->st.nrecent, 9);
    ck_assert_uint_eq(vm->st.recent[8].kind, EXIT_HLT);
    vm_free(vm);
}
END_TEST

START_TEST(self_modifying_code_runs_the_new_code)
{
    struct vm *vm = RUN(g_smc, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 4);
    ck_assert_uint_eq(vm->report[0], 0x11111111);
    ck_assert_uint_eq(vm->report[1], 0x22222222);      /* the rewritten immediate, not a stale block */
    ck_assert_uint_eq(vm->report[2], 0x33333333);
    ck_assert_uint_eq(vm->report[3], 0x42);            /* rewritten inside the running block */
    vm_free(vm);
}
END_TEST

/* The first stores to a page without code run inline (unicorn_stores.c); once code is
 * translated there, stores go the slow way again and drop the stale block. */
START_TEST(code_written_by_fast_stores_is_rewritable)
{
    struct vm *vm = RUN(g_smc_fresh, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 0x11111111);
    ck_assert_uint_eq(vm->report[1], 0x22222222);      /* not the block translated first */
    vm_free(vm);
}
END_TEST

/* Code rewritten at one address with the same size and another instruction count is
 * counted as what now runs (unicorn_blockhook.c: counts per translated block). Counted by
 * (address, size) the second call took the first version's 6 instructions: 9. */
START_TEST(rewritten_code_counts_its_own_instructions)
{
    vm_free(RUN_REPORTING(g_smc_recount, 5));
}
END_TEST

/* More translated blocks than SIM_TBS_MAX: past it blocks share the vCPU's hook data and are
 * found by address, and the count stays exact: 6 to set up, 6 per round (call, mov, ret,
 * incl, dec, jnz), then call, mov, ret, out, cli, hlt. */
START_TEST(counts_stay_exact_past_the_translated_block_limit)
{
    struct vm *vm = RUN_REPORTING(g_retranslate, 300000);
    ck_assert_uint_eq(vm->stats.insns, 6 + 6 * 300000 + 6);
    vm_free(vm);
}
END_TEST

/* PAUSE takes VCLOCK_NS_PER_PAUSE of virtual time, as on silicon (unicorn_pause.c): a delay loop
 * polling the TSC runs fewer rounds. Deterministic like the rest. */
START_TEST(pause_takes_virtual_time)
{
    struct vm *a = RUN(g_pause, 0), *b = RUN(g_pause, 0);
    ck_assert_int_eq(a->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(a->stats.insns, b->stats.insns);
    ck_assert_uint_eq(a->stats.virtual_ns, b->stats.virtual_ns);
    ck_assert_uint_eq(a->stats.virtual_ns - a->stats.insns, 100 * VCLOCK_NS_PER_PAUSE);
    vm_free(a);
    vm_free(b);
}
END_TEST

START_TEST(mmio_reaches_bus)
{
    struct vm *vm = RUN(g_mmio, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_ge(vm->nlog, 3);
    ck_assert_int_eq(vm->log[0].write, 1);
    ck_assert_uint_eq(vm->log[0].addr, 0x10);
    ck_assert_uint_eq(vm->log[0].size, 4);
    ck_assert_uint_eq(vm->log[0].value, 0x12345678);
    ck_assert_uint_eq(vm->log[1].addr, 0x20);
    ck_assert_uint_eq(vm->log[1].size, 2);
    ck_assert_uint_eq(vm->log[1].value, 0xabcd);
    ck_assert_int_eq(vm->log[2].write, 0);
    ck_assert_uint_eq(vm->log[2].addr, 0x4);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 0xcafef00d);
    ck_assert_uint_eq(vm->report[1], 0xffffffff);      /* unclaimed hole: all ones */
    ck_assert_uint_eq(vm->stats.exits[EXIT_MMIO_WRITE], 2);
    ck_assert_uint_eq(vm->stats.exits[EXIT_MMIO_READ], 2);
    vm_free(vm);
}
END_TEST

START_TEST(rdtsc_is_virtual_and_deterministic)
{
    struct vm *a = RUN(g_rdtsc, 0), *b = RUN(g_rdtsc, 0);
    ck_assert_int_eq(a->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(a->nreport, 4);
    uint64_t t0 = a->report[0], t1 = a->report[1], t2 = a->report[2];
    /* 1000 iterations of dec+jnz retire 2000 instructions at 1 ns each */
    ck_assert_uint_ge(t1 - t0, 2000);
    ck_assert_uint_le(t1 - t0, 2010);
    ck_assert_uint_gt(t2, t1);
    ck_assert_uint_eq(a->report[3], 0);                /* RDTSCP: TSC_AUX = 0 */
    ck_assert_uint_le(t2, a->stats.virtual_ns);
    ck_assert_uint_eq(a->stats.exits[EXIT_RDTSC], 3);
    ck_assert_uint_eq(a->stats.virtual_ns, a->stats.insns);  /* never idle: time = insns */
    /* same guest, same numbers */
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(a->report[i], b->report[i]);
    ck_assert_uint_eq(a->stats.insns, b->stats.insns);
    ck_assert_uint_eq(a->stats.virtual_ns, b->stats.virtual_ns);
    vm_free(a);
    vm_free(b);
}
END_TEST

START_TEST(resume_after_poll_is_exact)
{
    struct vm *vm = RUN(g_rdtsc_poll, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_ge(vm->polls, 5);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 1501000);
    ck_assert_uint_eq(vm->report[1], 4500000);
    ck_assert_uint_lt(vm->stats.insns, 7500100);
    vm_free(vm);
}
END_TEST

START_TEST(rdtsc_many_sites)
{
    struct vm *vm = RUN(g_rdtsc_many, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->stats.exits[EXIT_RDTSC], 13);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 11);               /* 11 instructions retired before */
    ck_assert_uint_eq(vm->report[1], 13);
    ck_assert_uint_eq(vm->stats.insns, 17);               /* exact: 12 + out + rdtscp + out + cli + hlt */
    vm_free(vm);
}
END_TEST

START_TEST(many_blocks_count_exactly)
{
    struct vm *vm = RUN_REPORTING(g_many_blocks, 5000);
    ck_assert_uint_eq(vm->stats.insns, 5004);
    vm_free(vm);
}
END_TEST

START_TEST(stop_from_poll_then_resume)
{
    struct vm *vm = vm_new(g_rdtsc_poll, g_rdtsc_poll_end, 0);
    unsigned runs = 0;

    stop_at_poll = 1;
    do {
        vm->stop = 0;
        vm_run(vm);
        runs++;
        if (vm->st.reason == CPU_STOP_REQUESTED)
            ck_assert_uint_lt(vm->stats.virtual_ns % 1000000, 100); /* at a poll point */
    } while (vm->st.reason == CPU_STOP_REQUESTED && runs < 100);
    stop_at_poll = 0;
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_ge(runs, 6);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 1501000);                      /* nothing re-ran */
    ck_assert_uint_eq(vm->report[1], 4500000);
    vm_free(vm);
}
END_TEST

START_TEST(hlt_cli_halts)
{
    struct vm *vm = RUN(g_hlt_cli, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->st.rip, GUEST_LOAD + 2);     /* past the hlt */
    vm_free(vm);
}
END_TEST

START_TEST(hlt_sti_nothing_armed_halts)
{
    struct vm *vm = RUN(g_hlt_sti, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_ptr_nonnull(strstr(vm->st.detail, "no timer"));
    vm_free(vm);
}
END_TEST

START_TEST(unmapped_faults)
{
    struct vm *vm = RUN(g_unmapped, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_uint_eq(vm->st.fault_addr, 0x40000000);
    ck_assert_ptr_nonnull(strstr(vm->st.detail, "read"));
    vm_free(vm);
}
END_TEST

START_TEST(ud2_faults)
{
    struct vm *vm = RUN(g_ud2, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_uint_eq(vm->st.rip, GUEST_LOAD + 1);
    ck_assert_ptr_nonnull(strstr(vm->st.detail, "invalid opcode"));
    vm_free(vm);
}
END_TEST

START_TEST(misbehaving_guests_fault_cleanly)
{
    struct vm *vm = RUN(g_exec_mmio, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_uint_eq(vm->st.fault_addr, 0xd0000000);
    vm_free(vm);
    vm = RUN(g_exec_hole, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_uint_eq(vm->st.fault_addr, 0xe0000000);
    vm_free(vm);
    vm = RUN(g_bad_idt, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_uint_eq(vm->st.fault_addr, 0x4000ff00);
    ck_assert_ptr_nonnull(strstr(vm->st.detail, "instruction fetch"));
    vm_free(vm);
    vm = RUN(g_idt_in_hole, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_TRIPLE_FAULT);
    vm_free(vm);
}
END_TEST

START_TEST(unicorn_abort_is_a_guest_fault)
{
    /* the retired engine is deliberately leaked (closing it is not safe) */
#if defined(__SANITIZE_ADDRESS__)
    __lsan_disable();
#endif
    struct vm *vm = RUN(g_tcg_abort, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_ptr_nonnull(strstr(vm->st.detail, "cannot translate"));
    ck_assert_uint_eq(vm->st.rip, GUEST_LOAD + 3);
    vm_run(vm);                                         /* stays stopped, no crash */
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    vm_free(vm);
#if defined(__SANITIZE_ADDRESS__)
    __lsan_enable();
#endif
}
END_TEST

START_TEST(insn_limit_and_poll)
{
    struct vm *vm = RUN(g_spin, 3000000);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_INSN_LIMIT);
    ck_assert_uint_le(vm->stats.insns, 3000000);
    ck_assert_uint_ge(vm->stats.insns, 3000000 - 600);
    ck_assert_uint_eq(vm->stats.virtual_ns, vm->stats.insns);
    /* every millisecond of virtual time, the last one at 3 ms just before the limit */
    ck_assert_uint_eq(vm->polls, 3);
    vm_free(vm);
}
END_TEST

START_TEST(device_stop_request)
{
    struct vm *vm = RUN(g_exit, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_REQUESTED);
    ck_assert_uint_eq(vm->log[vm->nlog - 1].addr, 0xf4);
    ck_assert_uint_eq(vm->log[vm->nlog - 1].value, 0x10);
    vm_free(vm);
}
END_TEST

START_TEST(pvh32_enters_long_mode)
{
    struct vm *vm = RUN(g_long, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 1);
    ck_assert_uint_eq(vm->report[1], LAPIC_VERSION);
    vm_free(vm);
}
END_TEST

START_TEST(guest_idt_handles_de)
{
    struct vm *vm = RUN(g_de, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 3);               /* handler ran for each #DE */
    ck_assert_uint_eq(vm->report[1], 0x77);            /* and the guest resumed */
    vm_free(vm);
}
END_TEST

START_TEST(exception_retires_exactly)
{
    struct vm *vm = RUN(g_de_exact, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 1);
    /* rdtsc, mov, xor, (div faults), add, iret: 5 instructions between the readings */
    ck_assert_uint_eq(vm->report[0], 5);
    ck_assert_uint_eq(vm->stats.virtual_ns, vm->stats.insns);
    vm_free(vm);
}
END_TEST

START_TEST(page_fault_error_code)
{
    struct vm *vm = RUN(g_pf, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 7);
    ck_assert_uint_eq(vm->report[0], 2);               /* write, not present */
    ck_assert_uint_eq(vm->report[1], 0x180000);
    ck_assert_uint_eq(vm->report[2], 3);               /* write, protection */
    ck_assert_uint_eq(vm->report[3], 0x181000);
    ck_assert_uint_eq(vm->report[4], 0);               /* read, not present */
    ck_assert_uint_eq(vm->report[5], 0x182000);
    ck_assert_uint_eq(vm->report[6], 0x77);
    vm_free(vm);
}
END_TEST

/* unicorn 2.0.1 fills its TLB with virtual = physical; sim/unicorn_mmu.c translates */
START_TEST(virtual_addresses_translate)
{
    struct vm *vm = RUN(g_highva, 0);
    ck_assert_msg(vm->st.reason == CPU_STOP_HALTED, "stop %d: %s", vm->st.reason,
                  vm->st.detail);
    ck_assert_uint_eq(vm->nreport, 5);
    ck_assert_uint_eq(vm->report[0], 0xffffffff);
    ck_assert_uint_eq(vm->report[1], 0x1234);
    ck_assert_uint_eq(vm->report[2], 0xcafef00d);
    int seen = 0;                                       /* the device saw its offset */
    for (unsigned i = 0; i < vm->nlog; i++)
        seen |= vm->log[i].addr == 0x10 && !vm->log[i].write;
    ck_assert(seen);
    /* same block address and size, two address spaces: each counted as what it is */
    ck_assert_uint_eq(vm->report[3] - vm->report[4], 4);
    vm_free(vm);
}
END_TEST

/* unicorn 2.0.1's bare feature words, completed by sim/unicorn_cpuid.c */
START_TEST(cpu_model_has_apic_pae_syscall_nx)
{
    struct vm *vm = RUN(g_cpuid, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 3);
    /* FPU TSC MSR PAE CX8 APIC SEP PGE CMOV PAT FXSR SSE SSE2 */
    const uint64_t want1 = 1u | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 8 | 1u << 9 | 1u << 11 |
                           1u << 13 | 1u << 15 | 1u << 16 | 1u << 24 | 1u << 25 | 1u << 26;
    ck_assert_uint_eq(vm->report[0] & want1, want1);
    ck_assert_uint_eq(vm->report[0] & (1u << 21 | 1u << 7), 0);     /* no x2APIC, MCE */
    const uint64_t wantx = 1u << 11 | 1u << 20 | 1u << 29;         /* SYSCALL NX LM */
    ck_assert_uint_eq(vm->report[1] & wantx, wantx);
    ck_assert_uint_eq(vm->report[2] & 0xd01, 0xd01);                /* SCE LME LMA NXE */
    vm_free(vm);
}
END_TEST

/* CPL 3: SYSCALL (a no-op in unicorn 2.0.1, sim/unicorn_syscall.c), SYSRET, and a #PF
 * delivered on the TSS.RSP0 stack with QEMU's error code (sim/unicorn_irq.c) */
START_TEST(user_mode_syscall_and_page_fault)
{
    struct vm *vm = RUN(g_user, 0);
    ck_assert_msg(vm->st.reason == CPU_STOP_HALTED, "stop %d: %s", vm->st.reason,
                  vm->st.detail);
    static const uint64_t want[] = { 0x2b, 4, 0x2b, 0x2ef, 0x08, 0x3002, 0x1234, 0x2b, 0x08 };
    ck_assert_uint_eq(vm->nreport, sizeof(want) / sizeof(want[0]));
    for (unsigned i = 0; i < vm->nreport; i++)
        ck_assert_msg(vm->report[i] == want[i], "report %u: %#llx, want %#llx", i,
                      (unsigned long long)vm->report[i], (unsigned long long)want[i]);
    vm_free(vm);
}
END_TEST

START_TEST(de_without_gate_faults)
{
    struct vm *vm = RUN(g_de_nogate, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_FAULT);
    ck_assert_ptr_nonnull(strstr(vm->st.detail, "#DE"));
    vm_free(vm);
}
END_TEST

START_TEST(lapic_periodic_timer_in_hlt)
{
    struct vm *a = RUN(g_timer, 0), *b = RUN(g_timer, 0);
    ck_assert_int_eq(a->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(a->nreport, 5);
    ck_assert_uint_eq(a->stats.exits[EXIT_IRQ], 5);
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_uint_eq(a->report[i], i + 1);
        ck_assert_uint_eq(a->report_time[i], b->report_time[i]);
        if (i)  /* the clock jumps to each deadline: exactly one period apart */
            ck_assert_uint_eq(a->report_time[i] - a->report_time[i - 1], 10000);
    }
    ck_assert_uint_ge(a->stats.virtual_ns, 50000);
    ck_assert_uint_lt(a->stats.insns, 30000);          /* idle time cost no instructions */
    vm_free(a);
    vm_free(b);
}
END_TEST

START_TEST(lapic_periodic_timer_busy)
{
    struct vm *a = RUN(g_timer_busy, 0), *b = RUN(g_timer_busy, 0);
    ck_assert_int_eq(a->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(a->nreport, 4);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_uint_eq(a->report_time[i], b->report_time[i]);
        if (i) {
            uint64_t d = a->report_time[i] - a->report_time[i - 1];
            ck_assert_uint_ge(d, 5000 - 50);
            ck_assert_uint_le(d, 5000 + 50);
        }
    }
    ck_assert_uint_eq(a->stats.insns, b->stats.insns);
    ck_assert_uint_eq(a->stats.virtual_ns, a->stats.insns);   /* never idle */
    vm_free(a);
    vm_free(b);
}
END_TEST

START_TEST(hlt_jumps_to_deadline)
{
    struct vm *vm = RUN(g_oneshot, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 1);
    /* TSC after the wakeup: armed after the ~20k-instruction prologue, 50 ms later */
    ck_assert_uint_ge(vm->report[0], 50000000);
    ck_assert_uint_lt(vm->report[0], 50000000 + 30000);
    ck_assert_uint_lt(vm->stats.insns, 30000);
    ck_assert_uint_eq(vm->stats.exits[EXIT_IRQ], 1);
    ck_assert_uint_eq(vm->polls, 1);                   /* crossed poll points polled once */
    vm_free(vm);
}
END_TEST

START_TEST(ioapic_routes_irq_sink)
{
    struct vm *vm = RUN(g_ioapic, 0);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 2);
    ck_assert_uint_eq(vm->report[0], 1);               /* edge GSI 5 delivered once */
    ck_assert_uint_eq(vm->report[1], 1);               /* level GSI 6 once, not a storm */
    ck_assert_uint_eq(vm->stats.exits[EXIT_IRQ], 2);
    vm_free(vm);
}
END_TEST

START_TEST(boot_rejects_bad_input)
{
    struct vm *vm = vm_new_mode(g_hlt_cli, g_hlt_cli_end, 0, -1);
    struct cpu_boot bad = { CPU_BOOT_PVH32, 0x100000000ULL, 0 };
    struct cpu_boot odd = { (enum cpu_boot_mode)42, GUEST_LOAD, 0 };
    ck_assert_int_eq(sim_cpu_backend.boot(vm->cpu, &bad), -EINVAL);
    ck_assert_int_eq(sim_cpu_backend.boot(vm->cpu, &odd), -ENOTSUP);
    /* still unbooted: refused */
    ck_assert_int_eq(sim_cpu_backend.run(vm->cpu, &vm->st), -EINVAL);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_ERROR);
    struct cpu_boot ok = { CPU_BOOT_PVH32, GUEST_LOAD, 0 };
    ck_assert_int_eq(sim_cpu_backend.boot(vm->cpu, &ok), 0);
    ck_assert_int_eq(sim_cpu_backend.boot(vm->cpu, &ok), -EBUSY);
    vm_run(vm);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    vm_free(vm);
}
END_TEST

START_TEST(linux64_boot_state)
{
    struct vm *vm = vm_new_mode(g_l64, g_l64_end, 0, CPU_BOOT_LINUX64);
    ck_assert_uint_eq(vm->stats.insns, 0);              /* the mode switch is not guest time */
    vm_run(vm);
    ck_assert_int_eq(vm->st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(vm->nreport, 5);
    ck_assert_uint_eq(vm->report[0], 0x6000);           /* RSI = boot_params */
    ck_assert_uint_eq(vm->report[1], 1);                /* 64-bit arithmetic */
    ck_assert_uint_eq(vm->report[2], 0x10);             /* __BOOT_CS */
    ck_assert_uint_eq(vm->report[3], 0x18);             /* __BOOT_DS */
    ck_assert_uint_lt(vm->report[4], 20);               /* TSC starts at the entry */
    ck_assert_uint_lt(vm->stats.insns, 30);
    vm_free(vm);
}
END_TEST

START_TEST(destroy_leaves_bus_clean)
{
    struct vm *vm = vm_new(g_hlt_cli, g_hlt_cli_end, 0);
    ck_assert_ptr_nonnull(bus_find(&vm->mmio, MEMMAP_LAPIC_BASE));
    ck_assert_ptr_nonnull(bus_find(&vm->mmio, MEMMAP_IOAPIC_BASE));
    sim_cpu_backend.destroy(vm->cpu);
    ck_assert_ptr_null(bus_find(&vm->mmio, MEMMAP_LAPIC_BASE));
    ck_assert_ptr_null(bus_find(&vm->mmio, MEMMAP_IOAPIC_BASE));
    ck_assert_ptr_nonnull(bus_find(&vm->mmio, 0xd0000000));
    free(vm->ram);
    free(vm);
}
END_TEST

static Suite *sim_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pio_reaches_bus);
    tcase_add_test(tc, self_modifying_code_runs_the_new_code);
    tcase_add_test(tc, code_written_by_fast_stores_is_rewritable);
    tcase_add_test(tc, rewritten_code_counts_its_own_instructions);
    tcase_add_test(tc, counts_stay_exact_past_the_translated_block_limit);
    tcase_add_test(tc, pause_takes_virtual_time);
    tcase_add_test(tc, mmio_reaches_bus);
    tcase_add_test(tc, rdtsc_is_virtual_and_deterministic);
    tcase_add_test(tc, resume_after_poll_is_exact);
    tcase_add_test(tc, rdtsc_many_sites);
    tcase_add_test(tc, many_blocks_count_exactly);
    tcase_add_test(tc, stop_from_poll_then_resume);
    tcase_add_test(tc, hlt_cli_halts);
    tcase_add_test(tc, hlt_sti_nothing_armed_halts);
    tcase_add_test(tc, unmapped_faults);
    tcase_add_test(tc, ud2_faults);
    tcase_add_test(tc, insn_limit_and_poll);
    tcase_add_test(tc, misbehaving_guests_fault_cleanly);
    tcase_add_test(tc, unicorn_abort_is_a_guest_fault);
    tcase_add_test(tc, device_stop_request);
    tcase_add_test(tc, pvh32_enters_long_mode);
    tcase_add_test(tc, guest_idt_handles_de);
    tcase_add_test(tc, exception_retires_exactly);
    tcase_add_test(tc, virtual_addresses_translate);
    tcase_add_test(tc, cpu_model_has_apic_pae_syscall_nx);
    tcase_add_test(tc, user_mode_syscall_and_page_fault);
    tcase_add_test(tc, page_fault_error_code);
    tcase_add_test(tc, de_without_gate_faults);
    tcase_add_test(tc, lapic_periodic_timer_in_hlt);
    tcase_add_test(tc, lapic_periodic_timer_busy);
    tcase_add_test(tc, hlt_jumps_to_deadline);
    tcase_add_test(tc, ioapic_routes_irq_sink);
    tcase_add_test(tc, boot_rejects_bad_input);
    tcase_add_test(tc, linux64_boot_state);
    tcase_add_test(tc, destroy_leaves_bus_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(sim_suite());
}
