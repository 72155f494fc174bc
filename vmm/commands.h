/* The `vmlab` subcommands. Each takes argv with argv[0] = its own name and returns the
 * process exit status. */
#ifndef VMLAB_COMMANDS_H
#define VMLAB_COMMANDS_H

struct command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
};

int cmd_disk(int argc, char **argv);        /* vmm/cmd_disk.c: disk images */
int cmd_trace(int argc, char **argv);       /* vmm/cmd_trace.c: trace tools */
int cmd_virtmgr(int argc, char **argv);    /* vmm/cmd_virtmgr.c: the VM manager daemon */
int cmd_vm(int argc, char **argv);          /* vmm/cmd_vm.c: the VM manager's client */

#endif
