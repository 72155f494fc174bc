/* PVH entry: the VMM starts us in 32-bit protected mode, paging off, %ebx = hvm_start_info.
 * We enter long mode on static identity page tables for 0-4 GiB (2 MiB pages:
 * the default TCG CPU may lack 1 GiB pages) with our own GDT, zero .bss and call rt_main(start_info).
 * Boot work is kept small: on vmlab's software CPU every instruction counts. */

#define CR0_PE  (1 << 0)
#define CR0_MP  (1 << 1)
#define CR0_EM  (1 << 2)
#define CR0_PG  (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define PG_P  0x1
#define PG_RW 0x2
#define PG_PWT 0x8
#define PG_PCD 0x10
#define PG_PS 0x80
#define MMIO_START_2M (0xd0000000 >> 21)   /* 2 MiB frames from here on are uncached */

    /* Xen PVH note. The desc is 8 bytes: QEMU reads it as a host size_t. */
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4, 8, 18              /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32

    .section .text.boot, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi              /* keep start_info */

    /* PAE + SSE enabled (libfdt is ordinary host code), CR3, EFER.LME, paging */
    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $rt_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    lgdt rt_gdtr
    mov %cr0, %eax
    and $~CR0_EM, %eax
    or $(CR0_PE | CR0_MP | CR0_PG), %eax
    mov %eax, %cr0
    ljmp $0x08, $start64

    .code64
start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs               /* FS base 0: libfdt's canary load %fs:0x28 reads RAM at 0x28 */
    mov %eax, %gs
    /* zero .bss, 8 bytes a step (the stack lies past __bss_end and needs no clearing) */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $3, %ecx                /* both ends are 8-byte aligned (linker.ld) */
    rep stosq
    lea rt_stack_top(%rip), %rsp
    xor %ebp, %ebp
    mov %esi, %edi              /* zero-extends: start_info is below 4 GiB */
    call rt_main
1:  cli
    hlt
    jmp 1b

    .section .rodata
    .p2align 3
rt_gdt:
    .quad 0                     /* null */
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
    .quad 0x00cf9a000000ffff    /* 0x18: 32-bit code (unused, for completeness) */
rt_gdt_end:
    .p2align 3
    .globl rt_gdtr
rt_gdtr:
    .word rt_gdt_end - rt_gdt - 1
    .quad rt_gdt

    /* Identity page tables as initialised data: PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs of
     * 512 x 2 MiB pages each. Frames from 0xd0000000 (the MMIO hole) are uncached. */
    .section .data.pagetables, "aw"
    .p2align 12
    .globl rt_pml4
rt_pml4:
    .quad rt_pdpt + (PG_P | PG_RW)
    .fill 511, 8, 0
rt_pdpt:
    .quad rt_pd + 0 * 4096 + (PG_P | PG_RW)
    .quad rt_pd + 1 * 4096 + (PG_P | PG_RW)
    .quad rt_pd + 2 * 4096 + (PG_P | PG_RW)
    .quad rt_pd + 3 * 4096 + (PG_P | PG_RW)
    .fill 508, 8, 0
rt_pd:
    .set frame, 0
    .rept 2048
    .if frame < MMIO_START_2M
    .quad (frame << 21) | (PG_P | PG_RW | PG_PS)
    .else
    .quad (frame << 21) | (PG_P | PG_RW | PG_PS | PG_PCD | PG_PWT)
    .endif
    .set frame, frame + 1
    .endr

    /* The stack: placed after __bss_end by linker.ld, not cleared at boot. */
    .section .stack, "aw", @nobits
    .p2align 4
rt_stack:
    .skip 65536
    .globl rt_stack_top
rt_stack_top:

    .section .note.GNU-stack, "", @progbits
