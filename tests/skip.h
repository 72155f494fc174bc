/* A Check test that cannot run on this machine says why and is counted as skipped, never as
 * passed: scripts/run-tests.sh (and scripts/test-kvm.sh) read one "SKIP <test>: <reason>"
 * line per skipped test from the suite's stdout. Check itself has no skip state: to Check
 * the test passes, and the runner moves it from "passed" to "skipped". */
#ifndef VMLAB_TESTS_SKIP_H
#define VMLAB_TESTS_SKIP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 2, 3)))
static inline void skip_report(const char *func, const char *fmt, ...)
{
    /* START_TEST(name) defines name_fn: report the name the test was declared with. */
    size_t n = strlen(func);
    if (n > 3 && strcmp(func + n - 3, "_fn") == 0)
        n -= 3;
    printf("SKIP %.*s: ", (int)n, func);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* SKIP_TEST("reason %s", ...): report and leave the test. */
#define SKIP_TEST(...) do { skip_report(__func__, __VA_ARGS__); return; } while (0)

#endif
