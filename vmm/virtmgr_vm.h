/* One VM the manager runs: its configuration, the fds a client passed for it, the
 * `vmlab run` child that runs it, and who holds it. */
#ifndef VMLAB_VIRTMGR_VM_H
#define VMLAB_VIRTMGR_VM_H

#include <stdint.h>
#include <sys/types.h>

#include "virtmgr_config.h"
#include "virtmgr_msg.h"

enum mvm_state { MVM_RUNNING, MVM_STOPPING };

struct managed_vm {
    uint32_t cid;
    pid_t pid;
    enum mvm_state state;
    struct vm_config cfg;               /* wire form: fd indices into fds[] */
    int fds[VIRTMGR_MAX_FDS];           /* the client's fds, held by the manager */
    unsigned nfds;
    char *dir;                          /* <state dir>/vm-<cid>: socket, composites */
    char *socket;                       /* the child's control socket */
    uint64_t *holders;                  /* connection ids holding a reference */
    unsigned nholders;
    int detached;                       /* the manager holds a reference */
    int stop_sent;                      /* graceful stop delivered */
    int killed;                         /* SIGKILL sent after the stop timeout */
    int64_t stop_deadline_ms;
    int64_t started_ms;
    int ns_errno;                       /* sandbox: why no namespaces (0: in them) */
};

/* Checks the fds against the config: each named once, disks regular files or block
 * devices, nothing unnamed. 0 or -errno with err naming the field. */
int mvm_check_fds(struct managed_vm *vm, char *err, size_t errlen);

/* Builds each partitions disk as a composite in vm->dir whose components are
 * /proc/self/fd/N (the manager's fd numbers, which the child keeps). 0 or -errno. */
int mvm_build_composites(struct managed_vm *vm, char *err, size_t errlen);

/* Starts `exe run ...` for the VM. The child keeps exactly the disk fds (at the numbers
 * the manager holds them, which the composites name), has the console as stdout and the
 * log as stderr (/dev/null for debug none or when absent), and dies with the manager.
 * vsock: pass the CID as `--vsock cid=CID,uds=<dir>/vsock.sock`.
 * 0 or -errno. */
int mvm_spawn(struct managed_vm *vm, const char *exe, int vsock, char *err, size_t errlen);

/* Why a child with wait status `status` ended: reason is one of shutdown, crash, killed,
 * error; detail says more in words. */
void mvm_reason(int status, const char **reason, char *detail, size_t len);

int mvm_holds(const struct managed_vm *vm, uint64_t conn);
int mvm_add_holder(struct managed_vm *vm, uint64_t conn);
int mvm_drop_holder(struct managed_vm *vm, uint64_t conn);    /* 1 if it held */
unsigned mvm_refs(const struct managed_vm *vm);
/* Closes the fds, removes the VM's dir (socket, composites), frees everything. */
void mvm_free(struct managed_vm *vm);

#endif
