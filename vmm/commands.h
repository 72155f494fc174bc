/* The `vmlab` subcommands implemented outside main.c. Each takes argv with argv[0] = its
 * own name and returns the process exit status. */
#ifndef VMLAB_COMMANDS_H
#define VMLAB_COMMANDS_H

struct command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
};

/* Subcommands contributed by other rooms (disk images, traces, control clients). */
#define COMMANDS_EXTRA

#endif
