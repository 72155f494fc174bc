/* The control-socket client subcommands of `vmlab` (vmm/CONTROL.md). */
#ifndef VMLAB_CMD_CONTROL_H
#define VMLAB_CMD_CONTROL_H

/* verb: "stop", "suspend", "resume", "stats", "disk", "snapshot", "fault" or "trace".
 * argv[0] is the verb itself (main's argv + 1), the rest its arguments, e.g.
 * {"disk", "resize", "0", "1G", "/tmp/vm.sock", "--json"}. Returns the exit status:
 * 0 done, 1 the VM refused the request, 2 bad command line, 3 VM unreachable. */
int cmd_control(const char *verb, int argc, char **argv);

/* 1 if `verb` is one of the control client subcommands above. */
int cmd_control_is_verb(const char *verb);

#endif
