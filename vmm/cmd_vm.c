/* `vmlab vm`: the VM manager's client, after AVF's `vm` tool: run, list, info, stop,
 * attach, create-partition. Speaks vmm/VIRTMGR.md to `vmlab virtmgr`. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "parse_size.h"
#include "virtmgr_config.h"
#include "virtmgr_msg.h"
#include "vm.h"
#include "vm_partition.h"

/* Exit statuses of `vm run` / `vm attach` beyond the VM's own (HACKING.md's table). */
#define VM_EXIT_SIGNALED 12     /* the VM process was killed or died of a signal */

static int die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vmlab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return VM_EXIT_USAGE;
}

static int connect_manager(const char *verb, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "vmlab: vm %s: manager socket '%s': %s\n", verb, path,
                fd < 0 ? strerror(errno) : "path too long");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "vmlab: vm %s: cannot reach the VM manager at %s: %s (is `vmlab "
                "virtmgr` running?)\n", verb, path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a request, returns the answer when ok (caller puts it), NULL after printing the
 * error. */
static struct json_object *call(int fd, const char *verb, struct json_object *req,
                                const int *fds, unsigned nfds)
{
    struct json_object *ans;
    int got[VIRTMGR_MAX_FDS];
    unsigned ngot;
    char err[512];

    int r = vmsg_send(fd, req, fds, nfds);
    json_object_put(req);
    /* A manager that refuses the connection (another uid) has answered and closed before
     * the request went out: read why rather than report the broken pipe. */
    int sent = r;
    r = vmsg_recv(fd, &ans, got, &ngot, err, sizeof(err));
    if (sent && r <= 0) {
        fprintf(stderr, "vmlab: vm %s: send: %s\n", verb, strerror(-sent));
        return NULL;
    }
    for (unsigned i = 0; i < ngot; i++)
        close(got[i]);
    if (r <= 0) {
        fprintf(stderr, "vmlab: vm %s: %s\n", verb,
                r == 0 ? "the manager closed the connection without answering" : err);
        return NULL;
    }
    struct json_object *ok, *e;
    if (json_object_object_get_ex(ans, "ok", &ok) && json_object_get_boolean(ok))
        return ans;
    fprintf(stderr, "vmlab: vm %s: %s\n", verb,
            json_object_object_get_ex(ans, "error", &e) ? json_object_get_string(e)
                                                        : "the manager refused");
    json_object_put(ans);
    return NULL;
}

static struct json_object *request(const char *cmd, long long cid)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "cmd", json_object_new_string(cmd));
    if (cid >= 0)
        json_object_object_add(o, "cid", json_object_new_int64(cid));
    return o;
}

/* Waits for the VM's "died" event; prints why; the VM's exit status, or 12 for a signal. */
static int wait_for_end(int fd, uint32_t cid)
{
    for (;;) {
        struct json_object *ev, *v;
        int got[VIRTMGR_MAX_FDS];
        unsigned ngot;
        char err[512];
        int r = vmsg_recv(fd, &ev, got, &ngot, err, sizeof(err));
        for (unsigned i = 0; i < ngot; i++)
            close(got[i]);
        if (r <= 0) {
            fprintf(stderr, "vmlab: vm: lost the VM manager (%s); VM %u went with it\n",
                    r == 0 ? "connection closed" : err, cid);
            return VM_EXIT_INTERNAL;
        }
        if (!json_object_object_get_ex(ev, "event", &v) ||
            strcmp(json_object_get_string(v), "died") ||
            !json_object_object_get_ex(ev, "cid", &v) ||
            json_object_get_int64(v) != (int64_t)cid) {
            json_object_put(ev);
            continue;
        }
        const char *reason = json_object_object_get_ex(ev, "reason", &v) ?
                             json_object_get_string(v) : "?";
        const char *detail = json_object_object_get_ex(ev, "detail", &v) ?
                             json_object_get_string(v) : "";
        fprintf(stderr, "vm: VM %u ended: %s (%s)\n", cid, reason, detail);
        int status = json_object_object_get_ex(ev, "status", &v) ? json_object_get_int(v)
                                                                  : VM_EXIT_SIGNALED;
        json_object_put(ev);
        return status;
    }
}

static int socket_opt(const char *arg, char *sock, size_t len)
{
    if (strlen(arg) >= len)
        return -ENAMETOOLONG;
    snprintf(sock, len, "%s", arg);
    return 0;
}

/* ---- run ---- */

static void run_usage(FILE *f)
{
    fputs("Usage: vmlab vm run [OPTIONS] CONFIG.json\n"
          "       vmlab vm run [OPTIONS] --program PROGRAM [-- ARGS...]\n"
          "       vmlab vm run [OPTIONS] --kernel BZIMAGE [--initrd FILE] [--params STR]\n"
          "\n"
          "Starts a VM through the VM manager and, unless --detach, waits for it to end: the\n"
          "VM lives while this command does (kill it, and the manager stops the VM).\n"
          "CONFIG.json (vmm/VIRTMGR.md): {\"kernel\"|\"program\", \"args\", \"initrd\",\n"
          "\"params\", \"memory_mib\", \"cpus\", \"cpu\", \"debug\", \"name\", \"devices\",\n"
          "\"max_insns\", \"sandbox\", \"disks\": [{\"image\": PATH} | {\"partitions\": [{\"label\", \"path\",\n"
          "\"writable\"}]}, \"writable\"]}. Disks and partitions are opened here and passed\n"
          "to the manager as file descriptors.\n"
          "\n"
          "Options (they override the file's values):\n"
          "  --name NAME            a name shown by list and info\n"
          "  --mem MIB              guest RAM in MiB (default 128)\n"
          "  --cpus N               vCPUs (vmlab runs 1)\n"
          "  --cpu sim|kvm          CPU backend (default sim)\n"
          "  --debug full|none      none: console and log are not exposed (default full)\n"
          "  --console PATH         the guest's serial console (default: stdout; none when\n"
          "                         detached)\n"
          "  --log PATH             the VM process's messages (default: stderr; none when\n"
          "                         detached)\n"
          "  --max-insns N          stop after N guest instructions (software CPU)\n"
          "  --no-sandbox           run the VM process without its sandbox (seccomp\n"
          "                         allow-list, no_new_privs, own namespaces); vm info says so\n"
          "  --detach               print the CID and return; the manager holds the VM\n"
          "                         until `vmlab vm stop CID`\n"
          "  --socket PATH          the manager's socket (see vmlab virtmgr --help)\n"
          "  --help                 this text\n"
          "\n"
          "Exit status: the VM's (as vmlab run's), 12 if its process died of a signal,\n"
          "10 if the manager went away, 2 bad usage or refused; 0 with --detach.\n", f);
}

/* Opens a config file's path for the wire form: the fd joins fds[], the index goes in f. */
static int pass_file(struct vmcfg_file *f, int flags, const char *what, int *fds,
                     unsigned *nfds)
{
    if (!f->path)
        return 0;
    if (*nfds == VIRTMGR_MAX_FDS)
        return die_usage("vm run: more than %d files to pass", VIRTMGR_MAX_FDS);
    int fd = open(f->path, flags | O_CLOEXEC, 0644);
    if (fd < 0)
        return die_usage("vm run: %s '%s': %s", what, f->path, strerror(errno));
    f->fd = (int)*nfds;
    fds[(*nfds)++] = fd;
    return 0;
}

static int make_absolute(char **p, const char *what)
{
    char real[PATH_MAX];
    if (!*p)
        return 0;
    if (!realpath(*p, real))
        return die_usage("vm run: %s '%s': %s", what, *p, strerror(errno));
    return vmcfg_set(p, real) ? VM_EXIT_INTERNAL : 0;
}

static int vm_run_cmd(int argc, char **argv)
{
    enum { O_NAME = 256, O_MEM, O_CPUS, O_CPU, O_DEBUG, O_CONSOLE, O_LOG, O_DETACH, O_SOCKET,
           O_PROGRAM, O_KERNEL, O_INITRD, O_PARAMS, O_MAXI, O_NOSANDBOX, O_HELP };
    static const struct option opts[] = {
        { "name", required_argument, NULL, O_NAME }, { "mem", required_argument, NULL, O_MEM },
        { "cpus", required_argument, NULL, O_CPUS }, { "cpu", required_argument, NULL, O_CPU },
        { "debug", required_argument, NULL, O_DEBUG },
        { "console", required_argument, NULL, O_CONSOLE },
        { "log", required_argument, NULL, O_LOG }, { "detach", no_argument, NULL, O_DETACH },
        { "socket", required_argument, NULL, O_SOCKET },
        { "program", required_argument, NULL, O_PROGRAM },
        { "kernel", required_argument, NULL, O_KERNEL },
        { "initrd", required_argument, NULL, O_INITRD },
        { "params", required_argument, NULL, O_PARAMS },
        { "max-insns", required_argument, NULL, O_MAXI },
        { "no-sandbox", no_argument, NULL, O_NOSANDBOX },
        { "help", no_argument, NULL, O_HELP }, { NULL, 0, NULL, 0 },
    };
    struct vm_config cfg, flags;
    char sock[4096], err[600];
    const char *console = NULL, *log = NULL;
    int detach = 0, c, rc = VM_EXIT_USAGE, fds[VIRTMGR_MAX_FDS], mem_given = 0, no_sandbox = 0;
    unsigned nfds = 0;
    uint64_t v;

    virtmgr_default_socket(sock, sizeof(sock));
    vmcfg_init(&cfg);
    vmcfg_init(&flags);
    flags.cpus = 0;
    flags.debug = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_NAME: bad = vmcfg_set(&flags.name, optarg); break;
        case O_MEM:
            if (parse_size(optarg, &v) || v < 2 || v > (1u << 20)) {
                rc = die_usage("vm run: --mem '%s' is not a MiB count in 2..1048576", optarg);
                goto out;
            }
            flags.memory_mib = v;
            mem_given = 1;
            break;
        case O_CPUS:
            if (strcmp(optarg, "1")) {
                rc = die_usage("vm run: --cpus '%s': vmlab VMs have one vCPU", optarg);
                goto out;
            }
            flags.cpus = 1;
            break;
        case O_CPU:
            if (strcmp(optarg, "sim") && strcmp(optarg, "kvm")) {
                rc = die_usage("vm run: --cpu '%s' is not one of sim, kvm", optarg);
                goto out;
            }
            bad = vmcfg_set(&flags.cpu, optarg);
            break;
        case O_DEBUG:
            if (strcmp(optarg, "full") && strcmp(optarg, "none")) {
                rc = die_usage("vm run: --debug '%s' is not one of full, none", optarg);
                goto out;
            }
            flags.debug = strcmp(optarg, "full") ? VMCFG_DEBUG_NONE : VMCFG_DEBUG_FULL;
            break;
        case O_CONSOLE: console = optarg; break;
        case O_LOG: log = optarg; break;
        case O_DETACH: detach = 1; break;
        case O_SOCKET:
            if (socket_opt(optarg, sock, sizeof(sock))) {
                rc = die_usage("vm run: --socket: path too long");
                goto out;
            }
            break;
        case O_PROGRAM: bad = vmcfg_set(&flags.program, optarg); break;
        case O_KERNEL: bad = vmcfg_set(&flags.kernel, optarg); break;
        case O_INITRD: bad = vmcfg_set(&flags.initrd, optarg); break;
        case O_PARAMS: bad = vmcfg_set(&flags.params, optarg); break;
        case O_MAXI: {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (errno || *end || !n || *optarg == '-') {
                rc = die_usage("vm run: --max-insns '%s' is not a positive integer", optarg);
                goto out;
            }
            flags.max_insns = n;
            break;
        }
        case O_NOSANDBOX: no_sandbox = 1; break;
        case O_HELP: run_usage(stdout); rc = 0; goto out;
        case ':': rc = die_usage("vm run: option '%s' needs a value", argv[optind - 1]); goto out;
        default:
            rc = die_usage("vm run: unknown option '%s' (see vmlab vm run --help)",
                           argv[optind - 1]);
            goto out;
        }
        if (bad) {
            rc = VM_EXIT_INTERNAL;
            goto out;
        }
    }
    if (flags.program || flags.kernel) {
        if (flags.initrd && !flags.kernel) {
            rc = die_usage("vm run: --initrd needs --kernel");
            goto out;
        }
        /* Everything after --program's value (and an optional --) is the guest's. */
        cfg.program = flags.program, flags.program = NULL;
        cfg.kernel = flags.kernel, flags.kernel = NULL;
        cfg.initrd = flags.initrd, flags.initrd = NULL;
        cfg.params = flags.params, flags.params = NULL;
        if (optind < argc && !strcmp(argv[optind], "--"))
            optind++;
        if (optind < argc && !cfg.program) {
            rc = die_usage("vm run: --kernel takes --params, not arguments ('%s')",
                           argv[optind]);
            goto out;
        }
        for (; optind < argc; optind++) {
            if (cfg.nargs == VMCFG_MAX_ARGS || vmcfg_set(&cfg.args[cfg.nargs++], argv[optind])) {
                rc = die_usage("vm run: more than %d guest arguments", VMCFG_MAX_ARGS);
                goto out;
            }
        }
        if (cfg.program && cfg.kernel) {
            rc = die_usage("vm run: --program and --kernel exclude each other");
            goto out;
        }
    } else {
        if (optind != argc - 1) {
            rc = die_usage(optind == argc ? "vm run: no CONFIG.json, --program or --kernel "
                           "given (see vmlab vm run --help)" : "vm run: one CONFIG.json, got "
                           "more arguments");
            goto out;
        }
        if (flags.initrd || flags.params) {
            rc = die_usage("vm run: --initrd and --params go with --kernel");
            goto out;
        }
        if (vmcfg_load(argv[optind], &cfg, err, sizeof(err))) {
            rc = die_usage("vm run: %s", err);
            goto out;
        }
    }
    if (flags.name && vmcfg_set(&cfg.name, flags.name))
        goto out;
    if (mem_given)
        cfg.memory_mib = flags.memory_mib;
    if (flags.cpu && vmcfg_set(&cfg.cpu, flags.cpu))
        goto out;
    if ((int)flags.debug >= 0)
        cfg.debug = flags.debug;
    if (flags.max_insns)
        cfg.max_insns = flags.max_insns;
    if (no_sandbox)
        cfg.sandbox = 0;
    if (make_absolute(&cfg.kernel, cfg.kernel ? "kernel" : "") ||
        make_absolute(&cfg.program, "program") || make_absolute(&cfg.initrd, "initrd"))
        goto out;
    for (unsigned i = 0; i < cfg.ndisks; i++) {
        struct vmcfg_disk *d = &cfg.disks[i];
        if (pass_file(&d->image, d->writable ? O_RDWR : O_RDONLY, "disk image", fds, &nfds))
            goto out;
        for (unsigned k = 0; k < d->nparts; k++)
            if (pass_file(&d->parts[k].file, d->parts[k].writable ? O_RDWR : O_RDONLY,
                          "partition", fds, &nfds))
                goto out;
    }
    /* Console and log: the named files, else (attached) this command's stdout/stderr. */
    if (console) {
        cfg.console.path = strdup(console);
        if (pass_file(&cfg.console, O_WRONLY | O_CREAT | O_TRUNC, "console", fds, &nfds))
            goto out;
    } else if (!detach) {
        cfg.console.fd = (int)nfds;
        fds[nfds++] = 1;
    }
    if (log) {
        cfg.log.path = strdup(log);
        if (pass_file(&cfg.log, O_WRONLY | O_CREAT | O_TRUNC, "log", fds, &nfds))
            goto out;
    } else if (!detach) {
        cfg.log.fd = (int)nfds;
        fds[nfds++] = 2;
    }
    int fd = connect_manager("run", sock);
    if (fd < 0) {
        rc = VM_EXIT_INTERNAL;
        goto out;
    }
    struct json_object *req = request("run", -1);
    json_object_object_add(req, "config", vmcfg_to_json(&cfg, VMCFG_WIRE));
    if (detach)
        json_object_object_add(req, "detach", json_object_new_boolean(1));
    struct json_object *ans = call(fd, "run", req, fds, nfds), *cidv;
    if (!ans) {
        close(fd);
        goto out;
    }
    json_object_object_get_ex(ans, "cid", &cidv);
    uint32_t cid = (uint32_t)json_object_get_int64(cidv);
    json_object_put(ans);
    if (detach) {
        printf("%u\n", cid);
        rc = 0;
    } else {
        fprintf(stderr, "vm: VM %u started\n", cid);
        rc = wait_for_end(fd, cid);
    }
    close(fd);
out:
    for (unsigned i = 0; i < nfds; i++)
        if (fds[i] > 2)
            close(fds[i]);
    vmcfg_free(&cfg);
    vmcfg_free(&flags);
    return rc;
}

/* ---- list, info, stop, attach ---- */

struct simple_opts { char sock[4096]; const char *cid; };

/* Parses [--socket PATH] [--help] and `nargs` positionals (0 or 1: the CID). 1 after
 * --help, 0 to go on, or the usage exit status. */
static int simple_parse(int argc, char **argv, const char *usage, int nargs,
                        struct simple_opts *s)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    virtmgr_default_socket(s->sock, sizeof(s->sock));
    s->cid = NULL;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        if (c == 's' && !socket_opt(optarg, s->sock, sizeof(s->sock)))
            continue;
        return die_usage("vm %s: %s '%s' (see vmlab vm %s --help)", argv[0],
                         c == 's' ? "path too long:" : c == ':' ? "option needs a value:"
                                                                : "unknown option",
                         argv[optind - 1], argv[0]);
    }
    if (argc - optind != nargs)
        return die_usage("vm %s: expected %s, got %d argument%s", argv[0],
                         nargs ? "one CID" : "no arguments", argc - optind,
                         argc - optind == 1 ? "" : "s");
    if (nargs) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(argv[optind], &end, 10);
        if (errno || *end || !*argv[optind] || *argv[optind] == '-' || v > UINT32_MAX)
            return die_usage("vm %s: CID '%s' is not a number", argv[0], argv[optind]);
        s->cid = argv[optind];
    }
    return 0;
}

/* parse [--socket PATH] [CID], connect, send `cmd`: the answer, or NULL with *rc the exit
 * status (0 after --help). With fdp the connection stays open for the caller. */
static struct json_object *simple_request(int argc, char **argv, const char *usage, int nargs,
                                          const char *cmd, struct simple_opts *s, int *fdp,
                                          int *rc)
{
    int r = simple_parse(argc, argv, usage, nargs, s);
    if (r) {
        *rc = r == 1 ? 0 : r;
        return NULL;
    }
    int fd = connect_manager(argv[0], s->sock);
    if (fd < 0) {
        *rc = VM_EXIT_INTERNAL;
        return NULL;
    }
    struct json_object *ans = call(fd, argv[0], request(cmd, s->cid ? atoll(s->cid) : -1),
                                   NULL, 0);
    *rc = ans ? 0 : VM_EXIT_USAGE;
    if (ans && fdp)
        *fdp = fd;
    else
        close(fd);
    return ans;
}

static int vm_list(int argc, char **argv)
{
    struct simple_opts s;
    struct json_object *vms;
    int rc;
    struct json_object *ans = simple_request(argc, argv, "Usage: vmlab vm list [--socket PATH]"
                                             "\n\nThe VMs the manager runs: CID, state, pid, "
                                             "holders, detached, name.\n", 0, "list", &s, NULL,
                                             &rc);
    if (!ans)
        return rc;
    json_object_object_get_ex(ans, "vms", &vms);
    printf("%-6s %-9s %-8s %-7s %-8s %s\n", "CID", "STATE", "PID", "HOLDERS", "DETACHED",
           "NAME");
    for (size_t i = 0; i < json_object_array_length(vms); i++) {
        struct json_object *v = json_object_array_get_idx(vms, i), *f[6];
        const char *keys[6] = { "cid", "state", "pid", "holders", "detached", "name" };
        for (int k = 0; k < 6; k++)
            if (!json_object_object_get_ex(v, keys[k], &f[k]))
                f[k] = NULL;
        printf("%-6s %-9s %-8s %-7s %-8s %s\n", json_object_get_string(f[0]),
               json_object_get_string(f[1]), json_object_get_string(f[2]),
               json_object_get_string(f[3]), json_object_get_boolean(f[4]) ? "yes" : "no",
               f[5] ? json_object_get_string(f[5]) : "-");
    }
    json_object_put(ans);
    return 0;
}

static int vm_info_cmd(int argc, char **argv)
{
    struct simple_opts s;
    struct json_object *vm;
    int rc;
    struct json_object *ans = simple_request(argc, argv, "Usage: vmlab vm info [--socket PATH] "
                                             "CID\n\nOne VM's configuration and state, as "
                                             "JSON.\n", 1, "info", &s, NULL, &rc);
    if (!ans)
        return rc;
    json_object_object_get_ex(ans, "vm", &vm);
    printf("%s\n", json_object_to_json_string_ext(vm, JSON_C_TO_STRING_PRETTY |
                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(ans);
    return 0;
}

static int vm_stop(int argc, char **argv)
{
    struct simple_opts s;
    struct json_object *v;
    int rc;
    struct json_object *ans = simple_request(argc, argv, "Usage: vmlab vm stop [--socket PATH] "
                                             "CID\n\nDrops the manager's reference to a VM "
                                             "started with --detach; the VM stops\nwhen no "
                                             "client holds it either.\n", 1, "stop", &s, NULL,
                                             &rc);
    if (!ans)
        return rc;
    json_object_object_get_ex(ans, "holders", &v);
    int holders = json_object_get_int(v);
    if (holders)
        printf("VM %s: the manager let go; still held by %d client%s\n", s.cid, holders,
               holders == 1 ? "" : "s");
    else
        printf("VM %s: stopping\n", s.cid);
    json_object_put(ans);
    return 0;
}

static int vm_attach(int argc, char **argv)
{
    struct simple_opts s;
    int fd = -1, r;
    struct json_object *ans = simple_request(argc, argv, "Usage: vmlab vm attach [--socket "
                                             "PATH] CID\n\nHolds a reference to a running VM "
                                             "(it stays up while this command\nruns) and waits "
                                             "for its end; exits with its status, as vm run.\n",
                                             1, "open", &s, &fd, &r);
    if (!ans)
        return r;
    json_object_put(ans);
    fprintf(stderr, "vm: holding VM %s\n", s.cid);
    r = wait_for_end(fd, (uint32_t)atoll(s.cid));
    close(fd);
    return r;
}

static int vm_create_partition(int argc, char **argv)
{
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum vm_partition_type type = VM_PARTITION_RAW;
    char err[512];
    uint64_t size;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:t:", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs("Usage: vmlab vm create-partition PATH SIZE [-t raw|instance]\n\n"
                  "Creates a partition image for a VM's disk: raw (default) is a sparse file\n"
                  "of SIZE bytes (suffixes K, M, G); instance starts with AVF's instance\n"
                  "image header (magic \"" VM_INSTANCE_MAGIC "\", version 1). An existing\n"
                  "file is never replaced.\n", stdout);
            return 0;
        }
        if (c == 't' && (!strcmp(optarg, "raw") || !strcmp(optarg, "instance"))) {
            type = strcmp(optarg, "raw") ? VM_PARTITION_INSTANCE : VM_PARTITION_RAW;
            continue;
        }
        if (c == 't')
            return die_usage("vm create-partition: -t '%s' is not one of raw, instance",
                             optarg);
        return die_usage("vm create-partition: %s '%s'", c == ':' ? "option needs a value:"
                         : "unknown option", argv[optind - 1]);
    }
    /* Options may also follow the positionals, as in AVF's tool. */
    if (argc - optind >= 4 && (!strcmp(argv[optind + 2], "-t") ||
                               !strcmp(argv[optind + 2], "--type"))) {
        const char *t = argv[optind + 3];
        if (strcmp(t, "raw") && strcmp(t, "instance"))
            return die_usage("vm create-partition: -t '%s' is not one of raw, instance", t);
        type = strcmp(t, "raw") ? VM_PARTITION_INSTANCE : VM_PARTITION_RAW;
        argc -= 2;
    }
    if (argc - optind != 2)
        return die_usage("vm create-partition: expected PATH SIZE (see vmlab vm "
                         "create-partition --help)");
    if (parse_size(argv[optind + 1], &size))
        return die_usage("vm create-partition: SIZE '%s' is not a size (e.g. 1M)",
                         argv[optind + 1]);
    if (vm_partition_create(argv[optind], size, type, err, sizeof(err)))
        return die_usage("vm create-partition: %s", err);
    return 0;
}

static const struct command vm_commands[] = {
    { "run", "start a VM (CONFIG.json, --program or --kernel) and wait for its end", vm_run_cmd },
    { "list", "the VMs the manager runs", vm_list },
    { "info", "one VM's configuration and state: info CID", vm_info_cmd },
    { "stop", "drop the manager's reference to a detached VM: stop CID", vm_stop },
    { "attach", "hold a running VM and wait for its end: attach CID", vm_attach },
    { "create-partition", "create a partition image: PATH SIZE -t raw|instance",
      vm_create_partition },
};

int cmd_vm(int argc, char **argv)
{
    size_t n = sizeof(vm_commands) / sizeof(vm_commands[0]);

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fputs("Usage: vmlab vm COMMAND [ARGS...]\n\nThe VM manager's client (start the "
              "manager with `vmlab virtmgr`).\n\nCommands:\n", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "  %-17s %s\n", vm_commands[i].name, vm_commands[i].summary);
        fputs("\nvmlab vm COMMAND --help shows each command's options.\n", f);
        return argc < 2 ? VM_EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], vm_commands[i].name))
            return vm_commands[i].fn(argc - 1, argv + 1);
    return die_usage("vm: unknown command '%s' (see vmlab vm --help)", argv[1]);
}
