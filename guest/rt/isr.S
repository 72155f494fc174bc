/* 256 interrupt entry stubs, 16 bytes apart from rt_isr_stubs. Each pushes a dummy error
 * code (when the CPU does not push one) and its vector, then the common path saves the
 * GPRs in struct rt_irq_frame order and calls rt_isr_dispatch(frame). */
    .text
    .code64
    .p2align 4
    .globl rt_isr_stubs
rt_isr_stubs:
    .set vec, 0
    .rept 256
    .p2align 4
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp rt_isr_common
    .set vec, vec + 1
    .endr

    .p2align 4
rt_isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    cld
    mov %rsp, %rdi
    mov %rsp, %rbx              /* callee-saved: restores the unaligned frame pointer */
    and $-16, %rsp
    call rt_isr_dispatch
    mov %rbx, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp               /* vector, error code */
    iretq

    .section .note.GNU-stack, "", @progbits
