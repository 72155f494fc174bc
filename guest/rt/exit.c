/* Leaving the guest: isa-debug-exit (port 0xf4), assertion and stack-protector failures. */
#include "rt_internal.h"

_Noreturn void rt_exit(unsigned code)
{
    outl(0xf4, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

_Noreturn void rt_assert_fail(const char *file, int line, const char *expr, const char *vals)
{
    if (vals)
        printf("ASSERT FAILED %s:%d: %s (%s)\n", file, line, expr, vals);
    else
        printf("ASSERT FAILED %s:%d: %s\n", file, line, expr);
    rt_exit(RT_EXIT_ASSERT);
}

/* libfdt.a is built with the stack protector */
_Noreturn void __stack_chk_fail(void);
_Noreturn void __stack_chk_fail(void)
{
    printf("rt: stack smashing detected\n");
    rt_exit(RT_EXIT_EXCEPTION);
}
