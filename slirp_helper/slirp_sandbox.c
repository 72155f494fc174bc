/* The slirp helper's seccomp allow-list, loaded once slirp is set up and its hostfwd
 * sockets bound: what libslirp and glib do for a guest's traffic (new TCP/UDP/ICMP sockets
 * with restrict=off, accepts on hostfwd ports, non-blocking I/O, poll) and talking to vmlab
 * on fd 3. Not here, so fatal (the whole process): exec, fork, files by name, ptrace,
 * mount, namespaces, and everything else. */
#include "slirp_helper/slirp_sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

static const char *const allowed[] = {
    /* memory */
    "brk", "mmap", "munmap", "mprotect", "madvise", "mremap",
    /* vmlab's socket and slirp's host sockets */
    "read", "write", "readv", "writev", "close", "fcntl", "ioctl", "poll", "ppoll",
    "getcpu",                           /* whether to spin for vmlab (if not from the vDSO) */
    "socket", "connect", "bind", "listen", "accept", "accept4", "getsockname", "getpeername",
    "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown",
    /* glib and libc on rarer paths: logging, locks, randomness, time for its own messages */
    "futex", "getrandom", "getpid", "gettid", "clock_gettime", "gettimeofday", "fstat",
    "newfstatat", "lseek", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "tgkill",
    "exit", "exit_group",
};

unsigned slirp_sandbox_allowed_count(void)
{
    return sizeof(allowed) / sizeof(allowed[0]);
}

int slirp_sandbox_enter(char *err, size_t errlen)
{
    scmp_filter_ctx ctx;
    int r = 0;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        r = -errno;
        snprintf(err, errlen, "slirp helper: PR_SET_NO_NEW_PRIVS: %s", strerror(-r));
        return r;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf(err, errlen, "slirp helper: seccomp_init failed");
        return -ENOMEM;
    }
    for (unsigned i = 0; !r && i < slirp_sandbox_allowed_count(); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        r = nr == __NR_SCMP_ERROR ? -EINVAL : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (!r)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r)
        snprintf(err, errlen, "slirp helper: loading the seccomp filter: %s", strerror(-r));
    return r;
}
