#include "sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

/* What a running VM needs, found with `strace -f` over the guests on both CPU backends
 * with disks, console, rng, traces, snapshots and every control-socket command, plus the
 * few calls libc makes on rarer paths of the same code (marked). One list for all the
 * VMM thread: it runs the guest, the devices and the control socket. Not here, so fatal:
 * exec, fork, new sockets, ptrace, mount, namespaces, module and key calls, and
 * everything else. */
static const char *const vmm_allowed[] = {
    /* memory (unicorn's code buffer, guest RAM, malloc) */
    "brk", "mmap", "munmap", "mprotect", "madvise", "mremap",
    /* files already open, and the few a running VM opens: trace start, snapshot take */
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "lseek",
    "openat", "close", "fstat", "newfstatat", "statx", "fcntl", "dup", "fsync", "fdatasync",
    "ftruncate", "fallocate", "rename", "renameat", "unlink", "unlinkat", "readlink",
    "access",
    /* the control socket: accept clients and talk to them */
    "accept4", "accept", "recvfrom", "sendto", "recvmsg", "sendmsg", "getsockopt", "shutdown",
    "poll", "ppoll",
    /* the epoll sets of virtio-vsock's host sockets and the control socket (the KVM
     * backend wakes on them) */
    "epoll_ctl", "epoll_wait", "epoll_pwait",
    /* KVM: the vCPU, irqfds, the kick and resample threads */
    "ioctl", "futex", "clone3", "clone", "set_robust_list", "rseq", "exit",
    "sched_yield", "sched_getaffinity",
    /* time: host clock for --tsc host and idle limits; sleeps */
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday",
    /* signals: the kick signal, abort() on an internal error */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "sigaltstack", "tgkill", "getpid", "gettid", "geteuid",
    /* libc: getrandom for malloc, sysinfo/prlimit on rarer paths */
    "getrandom", "sysinfo", "prlimit64",
    "exit_group",
};

/* The KVM backend's helper threads: the kick thread sleeps on a condition variable and
 * signals the vCPU thread; the resample thread polls eventfds and raises lines (ioctl). */
static const char *const helper_allowed[] = {
    "futex", "clock_gettime", "clock_nanosleep", "nanosleep", "restart_syscall",
    "getpid", "gettid", "tgkill", "rt_sigprocmask", "rt_sigreturn",
    "poll", "ppoll", "read", "write", "ioctl",
    "mmap", "munmap", "madvise", "mprotect", "brk", "sched_yield",
    /* the ASan build's thread bookkeeping */
    "sigaltstack", "sched_getaffinity",
    "exit", "exit_group",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
static volatile int requested, unix_connects;

void sandbox_request(void) { requested = 1; }
void sandbox_allow_unix_connects(void) { unix_connects = 1; }
int sandbox_requested(void) { return requested; }

unsigned sandbox_allowed_count(enum sandbox_role role)
{
    return role == SANDBOX_VMM ? COUNT(vmm_allowed) : COUNT(helper_allowed);
}

int sandbox_enter(enum sandbox_role role, char *err, size_t errlen)
{
    const char *const *list = role == SANDBOX_VMM ? vmm_allowed : helper_allowed;
    unsigned n = sandbox_allowed_count(role);
    scmp_filter_ctx ctx;
    int r = 0;

    /* Per thread: each thread names what it may do. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        r = -errno;
        snprintf(err, errlen, "sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(-r));
        return r;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf(err, errlen, "sandbox: seccomp_init failed");
        return -ENOMEM;
    }
    for (unsigned i = 0; !r && i < n; i++) {
        int nr = seccomp_syscall_resolve_name(list[i]);
        if (nr == __NR_SCMP_ERROR) {
            snprintf(err, errlen, "sandbox: unknown system call '%s'", list[i]);
            seccomp_release(ctx);
            return -EINVAL;
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    /* A helper thread started after this filter inherits it and then narrows itself to
     * its role's list: allow exactly what that takes, both of which only ever remove
     * privileges (no_new_privs, and adding a filter). */
    if (!r)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                             SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS));
    if (!r)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
                             SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER));
    /* virtio-vsock: a guest connect to host port P is a connect to the Unix socket PATH_P
     * (Firecracker allows the same): new Unix sockets only, never another family. */
    if (!r && unix_connects && role == SANDBOX_VMM)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (!r && unix_connects && role == SANDBOX_VMM)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
#ifdef __SANITIZE_ADDRESS__
    /* The ASan build's leak check at exit stops the world with clone and ptrace, which the
     * filter forbids: check for leaks now (what building the machine lost), and the
     * sanitizer skips the check at exit. */
    if (!r && role == SANDBOX_VMM)
        __lsan_do_leak_check();
#endif
    if (!r)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r) {
        snprintf(err, errlen, "sandbox: loading the seccomp filter: %s", strerror(-r));
        return r;
    }
    return 0;
}

void sandbox_enter_helper(void)
{
    char err[160];

    if (requested && sandbox_enter(SANDBOX_HELPER, err, sizeof(err))) {
        fprintf(stderr, "vmlab: %s\n", err);
        _exit(10);
    }
}
