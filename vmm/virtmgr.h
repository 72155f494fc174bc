/* The VM manager (`vmlab virtmgr`), shaped like Android's VirtualizationService: a daemon
 * on a Unix socket (SOCK_SEQPACKET, one JSON message per datagram, fds attached; protocol
 * in vmm/VIRTMGR.md) that runs each VM as its own `vmlab run` child, keeps it alive
 * exactly as long as a reference to it exists (the client connection that started it,
 * clients that opened it by CID, the manager itself for a detached VM), hands out vsock
 * CIDs, and tells every holder when a VM ends and why. */
#ifndef VMLAB_VIRTMGR_H
#define VMLAB_VIRTMGR_H

#include <stddef.h>
#include <stdint.h>

struct virtmgr;

struct virtmgr_options {
    const char *socket;         /* where clients connect */
    const char *state_dir;      /* last-cid, one vm-<cid>/ folder per running VM */
    const char *exe;            /* the vmlab binary the VMs run as (`exe run ...`) */
    uint32_t cid_first, cid_last;
    int stop_timeout_ms;        /* graceful stop, then SIGKILL */
    int quiet;
    int vsock;                  /* `exe run` takes --vsock cid=N,uds=PATH: pass the CID */
};

#define VIRTMGR_MAX_CLIENTS 256
#define VIRTMGR_STOP_TIMEOUT_MS 5000

int virtmgr_open(struct virtmgr **out, const struct virtmgr_options *o, char *err,
                 size_t errlen);
/* Serves until SIGTERM or SIGINT, then stops every VM (gracefully, SIGKILL after the
 * timeout) and returns 0; -errno on a failure of the manager itself. */
int virtmgr_run(struct virtmgr *m);
void virtmgr_close(struct virtmgr *m);

#endif
