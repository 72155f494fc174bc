/* A scratch directory for each test of a suite that writes files: a Check fixture,
 * tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown), made before and removed
 * after every test (in the test's own process). Header-only: only Check suites use it. */
#ifndef VMLAB_TESTS_SCRATCH_H
#define VMLAB_TESTS_SCRATCH_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static char scratch_dir[64];

static inline void scratch_setup(void)
{
    snprintf(scratch_dir, sizeof(scratch_dir), "/tmp/vmlab-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch_dir));
}

static inline void scratch_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* scratch_dir/name. The last 8 results stay valid, so a call can take several paths. */
static inline const char *scratch_path(const char *name)
{
    static char p[8][160];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof(p[k]), "%s/%s", scratch_dir, name);
    return p[k];
}

/* Creates scratch_dir/name holding len copies of byte. */
static inline void scratch_fill(const char *name, size_t len, uint8_t byte)
{
    FILE *f = fopen(scratch_path(name), "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < len; i++)
        fputc(byte, f);
    fclose(f);
}

#endif
