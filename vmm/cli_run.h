/* `vmlab run` command-line parsing, separate from main() so it can be tested. */
#ifndef VMLAB_CLI_RUN_H
#define VMLAB_CLI_RUN_H

#include <stdio.h>

#include "vm.h"

struct run_cli {
    struct vm_options vm;
    int stats;          /* --stats */
    char input_args[VM_MAX_INPUTS][DEVICE_ARGS_MAX];   /* --input KIND,... as device args */
    int sandbox;        /* --sandbox: seccomp allow-list before the guest runs */
};

/* 0 parsed, 1 --help was asked for, -EINVAL with a one-line message in err. */
int cli_run_parse(int argc, char **argv, struct run_cli *out, char *err, size_t errlen);
void cli_run_usage(FILE *f);

#endif
