/* Every Check suite's main: runs the suite (forking per test, Check's default), reports
 * as Check does (CK_VERBOSITY in the environment; CK_NORMAL without), and exits 0 only when
 * no test failed. */
#ifndef VMLAB_TESTS_CHECK_RUN_H
#define VMLAB_TESTS_CHECK_RUN_H

#include <check.h>

int check_run(Suite *s);

#endif
