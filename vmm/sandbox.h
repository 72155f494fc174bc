/* The VM process's sandbox (`vmlab run --sandbox`, which the VM manager uses for every VM
 * unless `vm run --no-sandbox`): no new privileges, and a seccomp allow-list (libseccomp)
 * of the system calls a running VM makes, installed after the machine is built and before
 * guest code runs, one list per thread role. A call outside the list kills the process
 * with SIGSYS. The lists and
 * the reasons for its entries are in sandbox.c; the namespaces are set up by the manager
 * before the process starts (virtmgr_spawn.c). */
#ifndef VMLAB_SANDBOX_H
#define VMLAB_SANDBOX_H

#include <stddef.h>

/* Thread roles, each with its own allow-list, as Firecracker keeps for its threads:
 * VMM is the thread that runs the guest, the devices and the control socket; HELPER the
 * KVM backend's kick and resample threads (they wait, signal and poll eventfds). */
enum sandbox_role { SANDBOX_VMM, SANDBOX_HELPER };

/* `vmlab run --sandbox`: call before the machine is built, so that helper threads started
 * while building it enter their role's filter as they start. */
void sandbox_request(void);
int sandbox_requested(void);
/* The VM has a virtio-vsock: its VMM thread may also create Unix sockets and connect them
 * (a guest's connect to host port P goes to PATH_P). Call before the filter goes in. */
void sandbox_allow_unix_connects(void);

/* Installs `role`'s filter with no_new_privs on the calling thread (threads it starts
 * later inherit it). 0 or -errno with err set. */
int sandbox_enter(enum sandbox_role role, char *err, size_t errlen);

/* A helper thread's entry: enters SANDBOX_HELPER when the sandbox was requested; a failure
 * ends the process (a helper must never run unfiltered in a sandboxed VM). */
void sandbox_enter_helper(void);

/* Number of system calls `role`'s filter allows (vm info). */
unsigned sandbox_allowed_count(enum sandbox_role role);

#endif
