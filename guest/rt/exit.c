/* Leaving the guest: isa-debug-exit (x86: port 0xf4; arm64: MMIO at 0xfe001000,
 * vmm/memmap.h), assertion and stack-protector failures. */
#include "rt_internal.h"

_Noreturn void rt_exit(unsigned code)
{
#if defined(__aarch64__)
    mmio_write32(0xfe001000ull, code);
    for (;;)
        __asm__ volatile("msr daifset, #0xf; wfi");
#else
    outl(0xf4, code);
    for (;;)
        __asm__ volatile("cli; hlt");
#endif
}

_Noreturn void rt_assert_fail(const char *file, int line, const char *expr, const char *vals)
{
    if (vals)
        printf("ASSERT FAILED %s:%d: %s (%s)\n", file, line, expr, vals);
    else
        printf("ASSERT FAILED %s:%d: %s\n", file, line, expr);
    rt_exit(RT_EXIT_ASSERT);
}

/* libfdt.a is built with the stack protector (arm64 glibc code reads the canary from this
 * global; x86 reads %fs:0x28) */
#if defined(__aarch64__)
uintptr_t __stack_chk_guard = 0x2f8d3b1a6c4e5d71ull;
#endif
_Noreturn void __stack_chk_fail(void);
_Noreturn void __stack_chk_fail(void)
{
    printf("rt: stack smashing detected\n");
    rt_exit(RT_EXIT_EXCEPTION);
}
