/* Starting a VM's `vmlab run` child and reading why it ended. */
#include "virtmgr_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGV (32 + 2 * VMCFG_MAX_DISKS + VMCFG_MAX_ARGS)

struct argv_buf {
    char *v[MAX_ARGV + 1];
    unsigned n;
    char strs[MAX_ARGV][64];    /* storage for numbers and fd paths */
    unsigned nstrs;
};

static void add(struct argv_buf *a, const char *s)
{
    if (a->n < MAX_ARGV)
        a->v[a->n++] = (char *)s;
}

static const char *fmt(struct argv_buf *a, const char *f, unsigned long long v, const char *tail)
{
    char *s = a->strs[a->nstrs++ % MAX_ARGV];
    snprintf(s, 64, f, v, tail);
    return s;
}

static void build_argv(const struct managed_vm *vm, const char *exe, int vsock,
                       struct argv_buf *a, char (*disk_paths)[4200], char *vsock_arg)
{
    const struct vm_config *c = &vm->cfg;
    int debug = c->debug == VMCFG_DEBUG_FULL;

    add(a, exe);
    add(a, "run");
    add(a, "--quiet");
    if (c->sandbox)
        add(a, "--sandbox");
    add(a, "--cpu");
    add(a, c->cpu ? c->cpu : "sim");
    if (c->memory_mib) {
        add(a, "--mem");
        add(a, fmt(a, "%lluM%s", c->memory_mib, ""));
    }
    add(a, "--socket");
    add(a, vm->socket);
    add(a, "--serial");
    add(a, debug && c->console.fd >= 0 ? "stdio" : "none");
    if (c->max_insns) {
        add(a, "--max-insns");
        add(a, fmt(a, "%llu%s", c->max_insns, ""));
    }
    if (c->rng)
        add(a, "--rng");
    if (vsock) {
        snprintf(vsock_arg, 4200, "cid=%u,uds=%s/vsock.sock", vm->cid, vm->dir);
        add(a, "--vsock");
        add(a, vsock_arg);
    }
    for (unsigned i = 0; i < c->ndisks; i++) {
        const struct vmcfg_disk *d = &c->disks[i];
        const char *ro = d->writable ? "" : ",ro";
        if (d->nparts)
            snprintf(disk_paths[i], 4200, "%s/disk%u.composite%s", vm->dir, i, ro);
        else
            snprintf(disk_paths[i], 4200, "/proc/self/fd/%d%s", vm->fds[d->image.fd], ro);
        add(a, "--block");
        add(a, disk_paths[i]);
    }
    if (c->kernel) {
        add(a, "--kernel");
        add(a, c->kernel);
        if (c->initrd) {
            add(a, "--initrd");
            add(a, c->initrd);
        }
        if (c->params) {
            add(a, "--cmdline");
            add(a, c->params);
        }
    } else {
        add(a, c->program);
        if (c->nargs)
            add(a, "--");
        for (unsigned i = 0; i < c->nargs; i++)
            add(a, c->args[i]);
    }
    a->v[a->n] = NULL;
}

static int write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int r = write(fd, text, strlen(text)) < 0 ? errno : 0;
    close(fd);
    return r;
}

/* In the child, sandboxed: its own user namespace (uid and gid mapped to themselves, so
 * files keep their owners) and mount namespace (private: nothing it mounts leaks out).
 * 0 or the errno that shows the kernel does not allow it. */
static int enter_namespaces(void)
{
    char uid_map[32], gid_map[32];
    int e;

    snprintf(uid_map, sizeof(uid_map), "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
    snprintf(gid_map, sizeof(gid_map), "%u %u 1\n", (unsigned)getegid(), (unsigned)getegid());
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return errno;
    if ((e = write_proc("/proc/self/setgroups", "deny")) ||
        (e = write_proc("/proc/self/uid_map", uid_map)) ||
        (e = write_proc("/proc/self/gid_map", gid_map)))
        return e;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return errno;
    return 0;
}

static int cmp_int(const void *x, const void *y)
{
    return *(const int *)x - *(const int *)y;
}

/* In the child: every fd above 2 is closed except keep[] (sorted), which lose CLOEXEC. */
static void close_others(int *keep, unsigned n)
{
    unsigned lo = 3;
    qsort(keep, n, sizeof(*keep), cmp_int);
    for (unsigned i = 0; i < n; i++) {
        if ((unsigned)keep[i] > lo)
            close_range(lo, (unsigned)keep[i] - 1, 0);
        fcntl(keep[i], F_SETFD, 0);
        lo = (unsigned)keep[i] + 1;
    }
    close_range(lo, ~0u, 0);
}

int mvm_spawn(struct managed_vm *vm, const char *exe, int vsock, char *err, size_t errlen)
{
    static struct argv_buf a;
    static char disk_paths[VMCFG_MAX_DISKS][4200], vsock_arg[4200];
    const struct vm_config *c = &vm->cfg;
    int debug = c->debug == VMCFG_DEBUG_FULL;
    int keep[VIRTMGR_MAX_FDS + 1];
    unsigned nkeep = 0;
    pid_t parent = getpid();

    memset(&a, 0, sizeof(a));
    build_argv(vm, exe, vsock, &a, disk_paths, vsock_arg);
    for (unsigned i = 0; i < c->ndisks; i++) {
        if (c->disks[i].image.fd >= 0)
            keep[nkeep++] = vm->fds[c->disks[i].image.fd];
        for (unsigned k = 0; k < c->disks[i].nparts; k++)
            keep[nkeep++] = vm->fds[c->disks[i].parts[k].file.fd];
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) {
        int e = errno;
        snprintf(err, errlen, "/dev/null: %s", strerror(e));
        return -e;
    }
    int out = debug && c->console.fd >= 0 ? vm->fds[c->console.fd] : null;
    int log = debug && c->log.fd >= 0 ? vm->fds[c->log.fd] : null;
    /* The child reports the namespace outcome, then exec's failure if any; EOF means the
     * exec happened. */
    int status[2];
    if (pipe2(status, O_CLOEXEC) < 0) {
        int e = errno;
        close(null);
        snprintf(err, errlen, "pipe: %s", strerror(e));
        return -e;
    }
    keep[nkeep] = status[1];    /* kept only until exec (close-on-exec) */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(null);
        close(status[0]);
        close(status[1]);
        snprintf(err, errlen, "fork: %s", strerror(e));
        return -e;
    }
    if (pid == 0) {
        /* The VM must not outlive the manager that holds its references. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);          /* a terminal's ^C goes to the manager, not its VMs */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int ns = c->sandbox ? enter_namespaces() : 0;
        if (write(status[1], &ns, sizeof(ns)) != sizeof(ns))
            _exit(127);
        if (c->sandbox)
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        close_others(keep, nkeep + 1);
        fcntl(status[1], F_SETFD, FD_CLOEXEC);
        execv(exe, a.v);
        int e = errno;
        (void)!write(status[1], &e, sizeof(e));
        _exit(127);
    }
    close(null);
    close(status[1]);
    vm->pid = pid;
    int got[2] = { 0, 0 };
    ssize_t n, total = 0;
    while ((n = read(status[0], (char *)got + total, sizeof(got) - (size_t)total)) > 0 ||
           (n < 0 && errno == EINTR))
        total += n > 0 ? n : 0;
    close(status[0]);
    vm->ns_errno = total >= (ssize_t)sizeof(int) ? got[0] : 0;
    if (total == (ssize_t)sizeof(got)) {
        /* exec failed: the child is exiting; the reaper reports "error at start". */
        snprintf(err, errlen, "exec %s: %s", exe, strerror(got[1]));
        return -got[1];
    }
    return 0;
}

void mvm_reason(int status, const char **reason, char *detail, size_t len)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = sigabbrev_np(sig);
        if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            *reason = "killed";
            snprintf(detail, len, "killed by SIG%s", name ? name : "?");
        } else {
            *reason = "crash";
            snprintf(detail, len, "the VM process died of SIG%s%s", name ? name : "?",
                     sig == SIGSYS ? " (a system call its sandbox forbids)" : "");
        }
        return;
    }
    int s = WEXITSTATUS(status);
    if (s & 1) {
        *reason = "shutdown";
        snprintf(detail, len, "the guest exited with code %d (debug-exit port)", s >> 1);
        return;
    }
    switch (s) {
    case 0: *reason = "shutdown"; snprintf(detail, len, "the guest shut down"); break;
    case 2: *reason = "error"; snprintf(detail, len, "error at start: bad configuration or "
                                        "input (vmlab run exit status 2)"); break;
    case 4: *reason = "crash"; snprintf(detail, len, "guest fault"); break;
    case 6: *reason = "crash"; snprintf(detail, len, "guest hung"); break;
    case 8: *reason = "shutdown"; snprintf(detail, len, "instruction limit reached"); break;
    case 127: *reason = "error"; snprintf(detail, len, "error at start: the VM process "
                                          "could not be started"); break;
    default: *reason = "error"; snprintf(detail, len, "internal error (vmlab run exit "
                                         "status %d)", s); break;
    }
}
