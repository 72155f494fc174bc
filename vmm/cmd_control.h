/* The control-socket client subcommands of `vmlab` (vmm/CONTROL.md). */
#ifndef VMLAB_CMD_CONTROL_H
#define VMLAB_CMD_CONTROL_H

/* verb: "stop", "suspend", "resume", "stats", "disk", "snapshot", "fault" or "trace".
 * argv[0] is the verb itself (main's argv + 1), the rest its arguments, e.g.
 * {"disk", "resize", "0", "1G", "/tmp/vm.sock", "--json"}. Returns the exit status:
 * 0 done, 1 the VM refused the request, 2 bad command line, 3 VM unreachable. */
int cmd_control(const char *verb, int argc, char **argv);

/* Sends one request line (JSON, no newline) to the VM at `sock` and reads the answer.
 * Returns the exit status as above; on 0, *resp is the parsed answer (caller puts it).
 * Errors are printed as "vmlab: NAME: ...". print_json prints the answer line. */
struct json_object;
int control_client_call(const char *name, const char *sock, const char *request,
                        int timeout_s, int print_json, struct json_object **resp);

/* `vmlab input SOCKET tap X Y | swipe X1 Y1 X2 Y2 MS | key CODE | text STRING`
 * (vmm/cmd_input.c); argv[0] is "input". Same exit statuses. */
int cmd_input(int argc, char **argv);

/* 1 if `verb` is one of the control client subcommands above. */
int cmd_control_is_verb(const char *verb);

#endif
