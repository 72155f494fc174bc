/* vsock CIDs for the VM manager, handed out as Android's VirtualizationService does: from
 * 2048..65535, the search for a free CID starts after the last one handed out and wraps,
 * a CID held by a live VM is never handed out twice, and the last CID handed out is kept
 * in the state dir (write-then-rename) so a restarted manager does not recycle it at once. */
#ifndef VMLAB_VIRTMGR_CID_H
#define VMLAB_VIRTMGR_CID_H

#include <stddef.h>
#include <stdint.h>

#define VIRTMGR_CID_FIRST 2048u
#define VIRTMGR_CID_LAST  65535u
#define VIRTMGR_CID_FILE  "last-cid"

struct cid_alloc {
    uint32_t first, last;
    uint32_t last_given;        /* 0: none yet */
    uint8_t *live;              /* one byte per CID in first..last */
    char *path;                 /* <state dir>/last-cid, NULL: nothing persisted */
};

/* Reads <state_dir>/last-cid when it exists (a file that does not hold a CID in the range
 * is an error naming it and its content). state_dir NULL keeps nothing. 0 or -errno. */
int cid_alloc_init(struct cid_alloc *a, const char *state_dir, uint32_t first, uint32_t last,
                   char *err, size_t errlen);
/* The next free CID after the last one handed out (wrapping); persists it before returning.
 * -EBUSY with a clear error when every CID in the range is held. */
int cid_alloc_take(struct cid_alloc *a, uint32_t *cid, char *err, size_t errlen);
/* The VM that held `cid` is gone. */
void cid_alloc_release(struct cid_alloc *a, uint32_t cid);
unsigned cid_alloc_live(const struct cid_alloc *a);
void cid_alloc_free(struct cid_alloc *a);

/* Writes `len` bytes to `path` through `path.tmp`, fsync and rename: a reader sees the old
 * content or the new, never half of it. 0 or -errno. */
int virtmgr_write_atomic(const char *path, const void *buf, size_t len);

#endif
