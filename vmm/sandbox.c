#include "sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

/* What a running VM needs, found with `strace -f` over the guests on both CPU backends
 * with disks, console, rng, traces, snapshots and every control-socket command, plus the
 * few calls libc makes on rarer paths of the same code (marked). One list for all the
 * process's threads: the vCPU thread runs devices and the control socket too, and the
 * KVM backend's two helper threads use a subset. Not here, so fatal: exec, fork, new
 * sockets, ptrace, mount, namespaces, module and key calls, and everything else. */
static const char *const allowed[] = {
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

unsigned sandbox_allowed_count(void)
{
    return sizeof(allowed) / sizeof(allowed[0]);
}

int sandbox_enter(char *err, size_t errlen)
{
    scmp_filter_ctx ctx;
    int r;

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
    /* Every thread, including the KVM helpers started before the VM runs. */
    r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (unsigned i = 0; !r && i < sandbox_allowed_count(); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr == __NR_SCMP_ERROR) {
            snprintf(err, errlen, "sandbox: unknown system call '%s'", allowed[i]);
            seccomp_release(ctx);
            return -EINVAL;
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
#ifdef __SANITIZE_ADDRESS__
    /* The ASan build's leak check at exit stops the world with clone and ptrace, which the
     * filter forbids: check for leaks now (what building the machine lost), and the
     * sanitizer skips the check at exit. */
    if (!r)
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
