#include "virtmgr_vm.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/disk/cdisk_create.h"

static const char *kind_of(mode_t m)
{
    return S_ISSOCK(m) ? "a socket" : S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO"
         : S_ISCHR(m) ? "a character device" : S_ISLNK(m) ? "a symbolic link" : "not a file";
}

/* Marks fd index `idx` used by `field`; checks what it is. */
static int claim(struct managed_vm *vm, int idx, const char *field, int is_disk,
                 unsigned *used, char *err, size_t errlen)
{
    struct stat st;

    if (idx < 0)
        return 0;
    if ((unsigned)idx >= vm->nfds) {
        snprintf(err, errlen, "%s: fd index %d, but the request carries %u fds", field, idx,
                 vm->nfds);
        return -EINVAL;
    }
    if (*used & (1u << idx)) {
        snprintf(err, errlen, "%s: fd index %d is already used by another field", field, idx);
        return -EINVAL;
    }
    *used |= 1u << idx;
    if (fstat(vm->fds[idx], &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: fd index %d: %s", field, idx, strerror(e));
        return -e;
    }
    if (is_disk && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        snprintf(err, errlen, "%s: fd index %d is %s, not a regular file or block device",
                 field, idx, kind_of(st.st_mode));
        return -EINVAL;
    }
    if (!is_disk && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: fd index %d is a directory", field, idx);
        return -EINVAL;
    }
    return 0;
}

int mvm_check_fds(struct managed_vm *vm, char *err, size_t errlen)
{
    struct vm_config *c = &vm->cfg;
    unsigned used = 0;
    char field[96];
    int r;

    if ((r = claim(vm, c->console.fd, "console_fd", 0, &used, err, errlen)) ||
        (r = claim(vm, c->log.fd, "log_fd", 0, &used, err, errlen)))
        return r;
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct vmcfg_disk *d = &c->disks[i];
        snprintf(field, sizeof(field), "disks[%u].image_fd", i);
        if ((r = claim(vm, d->image.fd, field, 1, &used, err, errlen)))
            return r;
        for (unsigned k = 0; k < d->nparts; k++) {
            snprintf(field, sizeof(field), "disks[%u].partitions[%u].fd", i, k);
            if ((r = claim(vm, d->parts[k].file.fd, field, 1, &used, err, errlen)))
                return r;
        }
    }
    if (used != (vm->nfds ? (1u << vm->nfds) - 1 : 0)) {
        snprintf(err, errlen, "fds: the request carries %u fds but the config names only %d "
                 "of them", vm->nfds, __builtin_popcount(used));
        return -EINVAL;
    }
    return 0;
}

int mvm_build_composites(struct managed_vm *vm, char *err, size_t errlen)
{
    struct vm_config *c = &vm->cfg;
    int r;

    for (unsigned i = 0; i < c->ndisks; i++) {
        struct vmcfg_disk *d = &c->disks[i];
        if (!d->nparts)
            continue;
        struct cdisk_partition parts[VMCFG_MAX_PARTS];
        char paths[VMCFG_MAX_PARTS][32], out[4096], label[32];
        memset(parts, 0, sizeof(parts));
        for (unsigned k = 0; k < d->nparts; k++) {
            snprintf(paths[k], sizeof(paths[k]), "/proc/self/fd/%d",
                     vm->fds[d->parts[k].file.fd]);
            parts[k].label = d->parts[k].label;
            parts[k].path = paths[k];
            parts[k].writable = d->parts[k].writable;
        }
        snprintf(out, sizeof(out), "%s/disk%u.composite", vm->dir, i);
        snprintf(label, sizeof(label), "vm-%u-disk%u", vm->cid, i);
        char derr[256] = "";
        r = cdisk_create(out, label, parts, d->nparts, NULL, NULL, NULL, derr, sizeof(derr));
        if (r) {
            snprintf(err, errlen, "disks[%u]: composite: %s", i, derr);
            return r;
        }
    }
    return 0;
}

int mvm_holds(const struct managed_vm *vm, uint64_t conn)
{
    for (unsigned i = 0; i < vm->nholders; i++)
        if (vm->holders[i] == conn)
            return 1;
    return 0;
}

int mvm_add_holder(struct managed_vm *vm, uint64_t conn)
{
    if (mvm_holds(vm, conn))
        return 0;
    uint64_t *h = realloc(vm->holders, (vm->nholders + 1) * sizeof(*h));
    if (!h)
        return -ENOMEM;
    h[vm->nholders++] = conn;
    vm->holders = h;
    return 0;
}

int mvm_drop_holder(struct managed_vm *vm, uint64_t conn)
{
    for (unsigned i = 0; i < vm->nholders; i++) {
        if (vm->holders[i] == conn) {
            vm->holders[i] = vm->holders[--vm->nholders];
            return 1;
        }
    }
    return 0;
}

unsigned mvm_refs(const struct managed_vm *vm)
{
    return vm->nholders + (vm->detached ? 1 : 0);
}

void mvm_free(struct managed_vm *vm)
{
    if (!vm)
        return;
    for (unsigned i = 0; i < vm->nfds; i++)
        close(vm->fds[i]);
    if (vm->dir) {
        /* Only files the manager made: the socket and composite disk sets. */
        DIR *d = opendir(vm->dir);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                    unlinkat(dirfd(d), e->d_name, 0);
            closedir(d);
        }
        rmdir(vm->dir);
    }
    vmcfg_free(&vm->cfg);
    free(vm->dir);
    free(vm->socket);
    free(vm->holders);
    free(vm);
}
