/* `vmlab run` option parsing. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli_run.h"
#include "vmm/parse_size.h"
#include "tests/check_run.h"

static int parse(struct run_cli *c, char *err, int argc, char **argv)
{
    return cli_run_parse(argc, argv, c, err, 256);
}

START_TEST(defaults_and_program_args)
{
    struct run_cli c;
    char err[256] = "";
    char *argv[] = { "run", "prog.elf", "--", "a", "--b", NULL };

    ck_assert_int_eq(parse(&c, err, 5, argv), 0);
    ck_assert_str_eq(c.vm.program, "prog.elf");
    ck_assert_uint_eq(c.vm.mem, 128ULL << 20);
    ck_assert_str_eq(c.vm.cpu, "sim");
    ck_assert_int_eq(c.vm.host_tsc, 0);             /* RDTSC reads the virtual clock */
    ck_assert_uint_eq(c.vm.nguest_args, 2);
    ck_assert_str_eq(c.vm.guest_args[1], "--b");
}
END_TEST

START_TEST(all_options)
{
    struct run_cli c;
    char err[256] = "";
    char *argv[] = { "run", "--cpu", "auto", "--mem", "1G", "--seed", "42", "--serial", "out.txt",
                     "--max-insns", "1000", "--stats", "--block", "d.img,ro", "--block",
                     "mem=1M", "--console", "out=none", "--rng", "--trace", "t.trace",
                     "--socket", "s.sock", "--tsc", "host", "prog", NULL };

    ck_assert_msg(parse(&c, err, 26, argv) == 0, "%s", err);
    ck_assert_int_eq(c.vm.host_tsc, 1);
    ck_assert_str_eq(c.vm.cpu, "auto");
    ck_assert_uint_eq(c.vm.mem, 1ULL << 30);
    ck_assert_uint_eq(c.vm.seed, 42);
    ck_assert_str_eq(c.vm.serial, "out.txt");
    ck_assert_uint_eq(c.vm.max_insns, 1000);
    ck_assert_int_eq(c.stats, 1);
    ck_assert_uint_eq(c.vm.nblocks, 2);
    ck_assert_str_eq(c.vm.blocks[0], "d.img,ro");
    ck_assert_str_eq(c.vm.console, "out=none");
    ck_assert_int_eq(c.vm.rng, 1);
    ck_assert_str_eq(c.vm.trace, "t.trace");
    ck_assert_str_eq(c.vm.socket, "s.sock");
    ck_assert_str_eq(c.vm.program, "prog");
}
END_TEST

static void refused(int argc, char **argv, const char *want)
{
    struct run_cli c;
    char err[256] = "";

    ck_assert_int_eq(parse(&c, err, argc, argv), -EINVAL);
    ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
}

START_TEST(bad_input)
{
    char *a1[] = { "run", "--mem", "0", "p", NULL };
    refused(4, a1, "--mem 0");
    char *a2[] = { "run", "--mem", "12Q", "p", NULL };
    refused(4, a2, "--mem '12Q'");
    char *a3[] = { "run", "--frobnicate", "p", NULL };
    refused(3, a3, "unknown option '--frobnicate'");
    char *a4[] = { "run", "--cpu", "tcg", "p", NULL };
    refused(4, a4, "--cpu 'tcg'");
    char *a5[] = { "run", NULL };
    refused(1, a5, "no guest PROGRAM");
    char *a6[] = { "run", "--seed", "-1", "p", NULL };
    refused(4, a6, "--seed '-1'");
    char *a7[] = { "run", "--max-insns", "0", "p", NULL };
    refused(4, a7, "--max-insns '0'");
    char *a10[] = { "run", "--tsc", "wall", "p", NULL };
    refused(4, a10, "--tsc 'wall' is neither 'virtual' nor 'host'");
    char *a8[] = { "run", "p", "--mem", NULL };    /* options after PROGRAM go to the guest */
    struct run_cli c;
    char err[256];
    ck_assert_int_eq(parse(&c, err, 3, a8), 0);
    ck_assert_uint_eq(c.vm.nguest_args, 1);
    char *a9[] = { "run", "--mem", NULL };
    refused(2, a9, "needs a value");
}
END_TEST

START_TEST(help)
{
    struct run_cli c;
    char err[256];
    char *argv[] = { "run", "--help", NULL };
    ck_assert_int_eq(parse(&c, err, 2, argv), 1);
}
END_TEST

START_TEST(sizes)
{
    uint64_t v;
    ck_assert_int_eq(parse_size("64K", &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(parse_size("2GiB", &v), 0);
    ck_assert_uint_eq(v, 2ULL << 30);
    ck_assert_int_eq(parse_size("0x1000", &v), 0);
    ck_assert_uint_eq(v, 4096);
    ck_assert_int_eq(parse_size("", &v), -EINVAL);
    ck_assert_int_eq(parse_size("-5M", &v), -EINVAL);
    ck_assert_int_eq(parse_size("99999999999T", &v), -ERANGE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("run");
    tcase_add_test(tc, defaults_and_program_args);
    tcase_add_test(tc, all_options);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, help);
    tcase_add_test(tc, sizes);
    suite_add_tcase(s, tc);
    return check_run(s);
}
