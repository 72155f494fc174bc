/* arm64 entry (Linux arm64 booting.rst state): EL1h, MMU and caches off, DAIF masked,
 * x0 = FDT. Turns on the MMU over an identity map of 0-4 GiB in 1 GiB blocks (normal
 * write-back memory below 3 GiB, device memory from 3 GiB: the virtio windows, UART, exit
 * device and GIC), since with the MMU off every access is a Device access that faults when
 * unaligned. Then FP/SIMD on (libfdt is ordinary code), vectors, stack, .bss, rt_main_fdt. */

#define MAIR_NORMAL_WB  0xff        /* attr 0 */
#define MAIR_DEVICE     0x00        /* attr 1: Device-nGnRnE */
/* T0SZ 32 (4 GiB), 4 KiB granule, inner-shareable write-back walks, IPS 32 bits, no TTBR1 walks. */
#define TCR_VALUE       (32 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))
#define BLOCK_NORMAL    ((1 << 10) | (3 << 8) | (0 << 2) | 1)   /* AF, inner shareable, attr 0 */
#define BLOCK_DEVICE    ((1 << 10) | (1 << 2) | 1 | (3 << 53))  /* AF, attr 1, PXN|UXN */
#define SCTLR_M         (1 << 0)
#define SCTLR_A         (1 << 1)
#define SCTLR_C         (1 << 2)
#define SCTLR_I         (1 << 12)

    .section .text.boot, "ax"
    .globl _start
_start:
    mov x19, x0                 /* keep the FDT */
    adr x1, rt_vectors
    msr vbar_el1, x1
    ldr x1, =(MAIR_NORMAL_WB | MAIR_DEVICE << 8)
    msr mair_el1, x1
    ldr x1, =TCR_VALUE
    msr tcr_el1, x1
    adr x1, rt_l1_table
    msr ttbr0_el1, x1
    isb
    tlbi vmalle1
    dsb nsh
    isb
    mrs x1, sctlr_el1
    bic x1, x1, #SCTLR_A
    orr x1, x1, #SCTLR_M
    orr x1, x1, #SCTLR_C
    orr x1, x1, #SCTLR_I
    msr sctlr_el1, x1
    isb
    mov x1, #(3 << 20)          /* CPACR_EL1.FPEN: FP/SIMD at EL1 */
    msr cpacr_el1, x1
    isb
    ldr x1, =rt_stack_top
    mov sp, x1
    ldr x1, =__bss_start
    ldr x2, =__bss_end
1:  cmp x1, x2
    b.hs 2f
    stp xzr, xzr, [x1], #16
    b 1b
2:  mov x0, x19
    bl rt_main_fdt
3:  wfi
    b 3b

/* Exception vectors: 16 entries of 0x80 bytes. Every entry saves x0-x30, ELR and SPSR in a
 * struct rt_irq_frame on the stack and calls rt_trap(frame) with its index in frame->vector;
 * a return restores them (changes to elr take effect) and erets. */
    .macro vector index
    .p2align 7
    sub sp, sp, #(36 * 8)
    stp x0, x1, [sp, #0]
    mov x0, #\index
    b rt_trap_entry
    .endm

    .text
    .p2align 11
    .globl rt_vectors
rt_vectors:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vector \i
    .endr

rt_trap_entry:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x1, elr_el1
    mrs x2, spsr_el1
    stp x30, x1, [sp, #240]
    stp x2, x0, [sp, #256]      /* spsr, vector */
    mov x0, sp
    bl rt_trap
    ldp x30, x1, [sp, #240]
    ldr x2, [sp, #256]
    msr elr_el1, x1
    msr spsr_el1, x2
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    add sp, sp, #(36 * 8)
    eret

    /* Identity map 0-4 GiB: one level-1 table of four 1 GiB blocks. */
    .section .data.pagetables, "aw"
    .p2align 12
rt_l1_table:
    .quad 0x00000000 + BLOCK_NORMAL
    .quad 0x40000000 + BLOCK_NORMAL
    .quad 0x80000000 + BLOCK_NORMAL
    .quad 0xc0000000 + BLOCK_DEVICE
    .fill 508, 8, 0

    .section .stack, "aw", @nobits
    .p2align 4
rt_stack:
    .skip 65536
    .globl rt_stack_top
rt_stack_top:

    .section .note.GNU-stack, "", @progbits
