/* The VM process's sandbox (`vmlab run --sandbox`, which the VM manager uses for every VM
 * unless `vm run --no-sandbox`): no new privileges, and a seccomp allow-list (libseccomp)
 * of the system calls a running VM makes, installed after the machine is built and before
 * guest code runs. A call outside the list kills the process with SIGSYS. The list and
 * the reasons for its entries are in sandbox.c; the namespaces are set up by the manager
 * before the process starts (virtmgr_spawn.c). */
#ifndef VMLAB_SANDBOX_H
#define VMLAB_SANDBOX_H

#include <stddef.h>

/* Installs the filter on every thread of the process. 0 or -errno with err set. */
int sandbox_enter(char *err, size_t errlen);

/* Number of system calls the filter allows (for tests and `vm info`). */
unsigned sandbox_allowed_count(void);

#endif
