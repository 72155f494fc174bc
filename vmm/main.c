/* vmlab: one binary, crosvm-style subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_run.h"
#include "cmd_control.h"
#include "commands.h"
#include "sandbox.h"
#include "vm.h"

#ifdef VMLAB_TEST_DELAY
/* Test builds only ($(BUILD)/testdelay/vmlab): VMLAB_TEST_DELAY_US=N burns N microseconds of
 * this thread's CPU time before the VM starts, a stand-in for slower code in the harness's
 * A/B tests. CPU time rather than sleep: on a loaded machine the burn stretches like the rest
 * of the run, so the slowdown stays the same fraction of it. The host process only; nothing
 * the guest or a trace sees changes. The release binary has no such knob. */
#define TEST_DELAY_MAX_US 60000000ul

static int test_delay(char *err, size_t errlen)
{
    const char *text = getenv("VMLAB_TEST_DELAY_US");
    if (!text)
        return 0;
    char *end;
    errno = 0;
    unsigned long us = strtoul(text, &end, 10);
    if (!*text || *end || errno || text[0] == '-' || us > TEST_DELAY_MAX_US) {
        snprintf(err, errlen, "VMLAB_TEST_DELAY_US '%s': expected microseconds, 0..%lu",
                 text, TEST_DELAY_MAX_US);
        return -EINVAL;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while ((unsigned long)((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000) < us);
    return 0;
}
#endif

static int cmd_run(int argc, char **argv)
{
    struct run_cli cli;
    char err[512] = "";
    struct vm *vm;
    struct cpu_stop stop;
    int rc = cli_run_parse(argc, argv, &cli, err, sizeof(err));

    if (rc == 1) {
        cli_run_usage(stdout);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "vmlab: %s\n", err);
        return VM_EXIT_USAGE;
    }
#ifdef VMLAB_TEST_DELAY
    rc = test_delay(err, sizeof(err));
    if (rc) {
        fprintf(stderr, "vmlab: %s\n", err);
        return VM_EXIT_USAGE;
    }
#endif
    if (cli.sandbox) {
        sandbox_request();
        if (cli.vm.vsock)
            sandbox_allow_unix_connects();
    }
    rc = vm_create(&vm, &cli.vm, err, sizeof(err));
    if (rc) {
        /* Nothing ran: a bad option, file or environment (e.g. no KVM). */
        fprintf(stderr, "vmlab: %s\n", err);
        return VM_EXIT_USAGE;
    }
    if (cli.sandbox && (rc = sandbox_enter(SANDBOX_VMM, err, sizeof(err)))) {
        fprintf(stderr, "vmlab: %s\n", err);
        vm_destroy_before_exit(vm);
        return VM_EXIT_INTERNAL;
    }
    int status = vm_run(vm, &stop);
    fflush(stdout);
    if (stop.reason != CPU_STOP_REQUESTED && stop.reason != CPU_STOP_SHUTDOWN)
        vm_print_stop(&stop, stderr);
    if (cli.stats)
        vm_print_stats(vm, stderr);
    status = vm_finish(vm, status, err, sizeof(err));
    if (err[0])
        fprintf(stderr, "vmlab: %s\n", err);
    vm_destroy_before_exit(vm);
    return status;
}

/* `disk` is both the image tool (create-composite, info, ...) and, with `resize`, a client
 * of a running VM's socket, as in crosvm. */
static int cmd_disk_or_control(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "resize"))
        return cmd_control("disk", argc, argv);
    return cmd_disk(argc, argv);
}

/* `trace start|stop ... SOCKET` steer a running VM's recording; the rest are file tools. */
static int cmd_trace_or_control(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "start") || !strcmp(argv[1], "stop")))
        return cmd_control("trace", argc, argv);
    return cmd_trace(argc, argv);
}

#define CONTROL_CMD(verb) \
    static int cmd_##verb(int argc, char **argv) { return cmd_control(#verb, argc, argv); }
CONTROL_CMD(stop)
CONTROL_CMD(suspend)
CONTROL_CMD(resume)
CONTROL_CMD(stats)
CONTROL_CMD(snapshot)
CONTROL_CMD(fault)
CONTROL_CMD(balloon)
CONTROL_CMD(balloon_stats)

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    { "run", "boot a guest program or Linux kernel", cmd_run },
    { "disk", "disk images (create-composite, create-qcow2, info); resize a running VM's disk",
      cmd_disk_or_control },
    { "trace", "trace tools (dump, replay, diff, minimize, export); start/stop recording",
      cmd_trace_or_control },
    { "stop", "stop a running VM: vmlab stop SOCKET", cmd_stop },
    { "suspend", "pause a running VM: vmlab suspend SOCKET", cmd_suspend },
    { "resume", "resume a paused VM: vmlab resume SOCKET", cmd_resume },
    { "stats", "a running VM's statistics: vmlab stats SOCKET", cmd_stats },
    { "snapshot", "snapshot a running VM: vmlab snapshot take PATH SOCKET", cmd_snapshot },
    { "fault", "inject a disk fault plan: vmlab fault inject DISK PLAN SOCKET", cmd_fault },
    { "input", "send touch/key input to a running VM: vmlab input SOCKET tap X Y", cmd_input },
    { "balloon", "set a running VM's balloon: vmlab balloon SIZE SOCKET [--wait]", cmd_balloon },
    { "balloon_stats", "a running VM's balloon and memory stats: vmlab balloon_stats SOCKET",
      cmd_balloon_stats },
    { "virtmgr", "the VM manager daemon: many VMs, each held by reference", cmd_virtmgr },
    { "vm", "the VM manager's client: run, list, info, stop, attach, create-partition",
      cmd_vm },
    { "help", "show help for a command", cmd_help },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "vmlab %s: a virtual machine monitor and test lab\n\n"
               "Usage: vmlab COMMAND [ARGS...]\n       vmlab help COMMAND\n"
               "       vmlab --version\n\nCommands:\n", VMLAB_VERSION);
    for (unsigned i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static const struct command *find_command(const char *name)
{
    for (unsigned i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const struct command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "vmlab: unknown command '%s'\n", argv[1]);
        return VM_EXIT_USAGE;
    }
    if (c->fn == cmd_help) {
        usage(stdout);
        return 0;
    }
    char *help_argv[] = { argv[1], "--help", NULL };
    return c->fn(2, help_argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return VM_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("vmlab %s\n", VMLAB_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    const struct command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "vmlab: unknown command '%s' (see vmlab --help)\n", argv[1]);
        return VM_EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
