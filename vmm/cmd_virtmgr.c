/* `vmlab virtmgr`: the VM manager daemon (vmm/virtmgr.h, protocol in vmm/VIRTMGR.md). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "virtmgr.h"
#include "virtmgr_cid.h"
#include "virtmgr_msg.h"
#include "vm.h"

static void usage(FILE *f)
{
    fputs("Usage: vmlab virtmgr [--socket PATH] [--state-dir DIR] [OPTIONS]\n"
          "\n"
          "Runs the VM manager: clients (`vmlab vm`) start VMs through its socket, each VM in\n"
          "its own `vmlab run` process. A VM lives while a reference to it exists (the client\n"
          "that started it, clients that opened it, the manager for `vm run --detach`); when\n"
          "the last one goes, the manager stops it through its control socket, and kills it\n"
          "after the stop timeout. Every holder is told when a VM ends and why.\n"
          "\n"
          "Options:\n"
          "  --socket PATH        where clients connect (default $VMLAB_VIRTMGR_SOCKET, else\n"
          "                       $XDG_RUNTIME_DIR/vmlab-virtmgr.sock, else\n"
          "                       /tmp/vmlab-virtmgr-UID.sock); mode 0600, own uid only\n"
          "  --state-dir DIR      the last CID handed out, and a folder per running VM\n"
          "                       (default: the socket's path with .d instead of .sock)\n"
          "  --cid-range A-B      vsock CIDs to hand out (default 2048-65535)\n"
          "  --stop-timeout MS    graceful stop, then SIGKILL (default 5000)\n"
          "  --quiet              no notes on stderr\n"
          "  --help               this text\n"
          "\n"
          "Stops every VM and exits on SIGTERM or SIGINT.\n", f);
}

/* Whether this vmlab's `run` has virtio-vsock (added separately): only then do the VMs get
 * their CID as a device; otherwise it lives in the manager's record and `vm info`. */
static int run_has_vsock(const char *exe)
{
    char cmd[PATH_MAX + 32], line[512];
    int found = 0;

    if (strchr(exe, '\''))
        return 0;
    snprintf(cmd, sizeof(cmd), "'%s' run --help 2>/dev/null", exe);
    FILE *f = popen(cmd, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        found |= strstr(line, "--vsock") != NULL;
    pclose(f);
    return found;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int cmd_virtmgr(int argc, char **argv)
{
    enum { OPT_SOCKET = 256, OPT_STATE, OPT_RANGE, OPT_TIMEOUT, OPT_QUIET, OPT_HELP };
    static const struct option opts[] = {
        { "socket", required_argument, NULL, OPT_SOCKET },
        { "state-dir", required_argument, NULL, OPT_STATE },
        { "cid-range", required_argument, NULL, OPT_RANGE },
        { "stop-timeout", required_argument, NULL, OPT_TIMEOUT },
        { "quiet", no_argument, NULL, OPT_QUIET },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct virtmgr_options o = {
        .cid_first = VIRTMGR_CID_FIRST, .cid_last = VIRTMGR_CID_LAST,
        .stop_timeout_ms = VIRTMGR_STOP_TIMEOUT_MS,
    };
    char sock[4096], state[4096], exe[PATH_MAX], err[600] = "";
    unsigned long a, b;
    int c;

    virtmgr_default_socket(sock, sizeof(sock));
    o.socket = sock;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET: o.socket = optarg; break;
        case OPT_STATE: o.state_dir = optarg; break;
        case OPT_RANGE: {
            char *dash = strchr(optarg, '-');
            if (dash)
                *dash = '\0';
            int bad = !dash || parse_uint(optarg, UINT32_MAX, &a) ||
                      parse_uint(dash + 1, UINT32_MAX, &b) || a < 3 || b < a;
            if (dash)
                *dash = '-';
            if (bad) {
                fprintf(stderr, "vmlab: --cid-range '%s': expected A-B with 3 <= A <= B\n",
                        optarg);
                return VM_EXIT_USAGE;
            }
            o.cid_first = (uint32_t)a;
            o.cid_last = (uint32_t)b;
            break;
        }
        case OPT_TIMEOUT:
            if (parse_uint(optarg, 3600000, &a)) {
                fprintf(stderr, "vmlab: --stop-timeout '%s': expected milliseconds, 0..3600000\n",
                        optarg);
                return VM_EXIT_USAGE;
            }
            o.stop_timeout_ms = (int)a;
            break;
        case OPT_QUIET: o.quiet = 1; break;
        case OPT_HELP: usage(stdout); return 0;
        case ':':
            fprintf(stderr, "vmlab: option '%s' needs a value\n", argv[optind - 1]);
            return VM_EXIT_USAGE;
        default:
            fprintf(stderr, "vmlab: unknown option '%s' (see vmlab virtmgr --help)\n",
                    argv[optind - 1]);
            return VM_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmlab: virtmgr takes no arguments, got '%s'\n", argv[optind]);
        return VM_EXIT_USAGE;
    }
    if (!o.state_dir) {
        size_t n = strlen(o.socket);
        if (n > 5 && !strcmp(o.socket + n - 5, ".sock"))
            n -= 5;
        snprintf(state, sizeof(state), "%.*s.d", (int)n, o.socket);
        o.state_dir = state;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "vmlab: /proc/self/exe: %s\n", strerror(errno));
        return VM_EXIT_INTERNAL;
    }
    exe[n] = '\0';
    o.exe = exe;
    o.vsock = run_has_vsock(exe);
    struct virtmgr *m;
    int r = virtmgr_open(&m, &o, err, sizeof(err));
    if (r) {
        fprintf(stderr, "vmlab: %s\n", err);
        return VM_EXIT_USAGE;
    }
    r = virtmgr_run(m);
    virtmgr_close(m);
    if (r) {
        fprintf(stderr, "vmlab: virtmgr: %s\n", strerror(-r));
        return VM_EXIT_INTERNAL;
    }
    return 0;
}
