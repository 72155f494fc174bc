/* Shared by the manager's event loop (virtmgr_server.c) and its request handlers
 * (virtmgr_requests.c). */
#ifndef VMLAB_VIRTMGR_INTERNAL_H
#define VMLAB_VIRTMGR_INTERNAL_H

#include <stdarg.h>
#include <sys/stat.h>

#include "virtmgr.h"
#include "virtmgr_cid.h"
#include "virtmgr_vm.h"

struct json_object;

struct mgr_conn {
    int fd;                     /* -1: free slot */
    uint64_t id;                /* what VMs record as their holder, never reused */
};

struct virtmgr {
    struct virtmgr_options o;
    int lfd, sfd;
    struct stat lst;
    struct cid_alloc cids;
    struct mgr_conn conns[VIRTMGR_MAX_CLIENTS];
    unsigned nconns;
    uint64_t next_conn_id;
    struct managed_vm **vms;
    unsigned nvms, capvms;
    int quitting;
};

int64_t virtmgr_now_ms(void);
void virtmgr_note(struct virtmgr *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct mgr_conn *virtmgr_conn(struct virtmgr *m, uint64_t id);
struct managed_vm *virtmgr_find(struct virtmgr *m, uint32_t cid);
void virtmgr_begin_stop(struct virtmgr *m, struct managed_vm *vm, const char *why);
void virtmgr_drop_conn(struct virtmgr *m, struct mgr_conn *c);
/* Answers one request; owns fds[] (passes them to a VM or closes them). */
void virtmgr_handle(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg,
                    int *fds, unsigned nfds);

#endif
