#include "cli_run.h"
#include "parse_size.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_CPU = 256, OPT_MEM, OPT_SEED, OPT_SERIAL, OPT_SERIAL_IN, OPT_MAX_INSNS, OPT_STATS,
    OPT_BLOCK, OPT_CONSOLE, OPT_RNG, OPT_NET, OPT_TRACE, OPT_SOCKET, OPT_KERNEL, OPT_INITRD,
    OPT_CMDLINE, OPT_HELP, OPT_QUIET, OPT_AT, OPT_RESTORE, OPT_TSC, OPT_VSOCK, OPT_INPUT, OPT_BALLOON,
    OPT_SANDBOX, OPT_RTC_BASE,
};

static const struct option run_options[] = {
    { "cpu", required_argument, NULL, OPT_CPU },
    { "mem", required_argument, NULL, OPT_MEM },
    { "seed", required_argument, NULL, OPT_SEED },
    { "serial", required_argument, NULL, OPT_SERIAL },
    { "serial-in", required_argument, NULL, OPT_SERIAL_IN },
    { "max-insns", required_argument, NULL, OPT_MAX_INSNS },
    { "tsc", required_argument, NULL, OPT_TSC },
    { "rtc-base", required_argument, NULL, OPT_RTC_BASE },
    { "stats", no_argument, NULL, OPT_STATS },
    { "block", required_argument, NULL, OPT_BLOCK },
    { "console", required_argument, NULL, OPT_CONSOLE },
    { "rng", no_argument, NULL, OPT_RNG },
    { "net", required_argument, NULL, OPT_NET },
    { "vsock", required_argument, NULL, OPT_VSOCK },
    { "input", required_argument, NULL, OPT_INPUT },
    { "balloon", optional_argument, NULL, OPT_BALLOON },
    { "trace", required_argument, NULL, OPT_TRACE },
    { "socket", required_argument, NULL, OPT_SOCKET },
    { "kernel", required_argument, NULL, OPT_KERNEL },
    { "initrd", required_argument, NULL, OPT_INITRD },
    { "cmdline", required_argument, NULL, OPT_CMDLINE },
    { "quiet", no_argument, NULL, OPT_QUIET },
    { "sandbox", no_argument, NULL, OPT_SANDBOX },
    { "at", required_argument, NULL, OPT_AT },
    { "restore", required_argument, NULL, OPT_RESTORE },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

void cli_run_usage(FILE *f)
{
    fputs("Usage: vmlab run [OPTIONS] PROGRAM [-- GUEST-ARGS...]\n"
          "       vmlab run [OPTIONS] --kernel BZIMAGE [--initrd FILE] [--cmdline STR]\n"
          "\n"
          "Boots a PVH guest program (an x86_64 ELF with a Xen PVH note) or a Linux kernel.\n"
          "\n"
          "Options:\n"
          "  --cpu sim|kvm|auto     CPU backend (default " VM_DEFAULT_CPU "; auto picks kvm when /dev/kvm opens)\n"
          "  --mem SIZE             guest RAM, e.g. 128M, 1G (default 128M, minimum 2M)\n"
          "  --seed N               seed for every random choice in the run (default 0)\n"
          "  --serial stdio|none|PATH   where the 8250 UART's output goes (default stdio)\n"
          "  --serial-in STRING     scripted UART input (escapes: \\n \\t \\\\ \\xNN)\n"
          "  --max-insns N          stop after N guest instructions (software CPU)\n"
          "  --tsc virtual|host     what RDTSC reads on the software CPU: the virtual clock\n"
          "                         (default, deterministic) or the host's TSC, for timing\n"
          "                         guest-visible latency against other VMMs (not deterministic)\n"
          "  --rtc-base SECONDS     the date the CMOS clock of a Linux machine (--kernel) starts\n"
          "                         at, in s since 1970 UTC (default: 1767225600, 2026-01-01,\n"
          "                         on the software CPU, counting in virtual time; the host's\n"
          "                         time of day on KVM)\n"
          "  --stats                print instructions retired, virtual time and exits by kind\n"
          "  --block SPEC           add a virtio-blk disk: PATH[,ro][,id=NAME] or mem=SIZE[,...]\n"
          "  --console ARGS         add a virtio-console: out=stdio|PATH|none[,in=STRING]\n"
          "  --rng                  add a virtio-rng\n"
          "  --net SPEC             add a virtio-net: user[,hostfwd=tcp:[HOST]:PORT-[GUEST]:PORT]...\n"
          "                         [,restrict=on|off] (libslirp; restrict=on, the default, allows\n"
          "                         only slirp itself and hostfwd), tap=NAME or tapfd=N;\n"
          "                         [,mac=52:54:00:12:34:56][,mtu=1500]\n"
          "  --vsock cid=N[,uds=PATH]  add a virtio-vsock with guest CID N (3..4294967294);\n"
          "                         uds=: Firecracker's hybrid socket (host clients send\n"
          "                         'CONNECT <port>\\n' to PATH; guest connects to CID 2 port\n"
          "                         P go to PATH_P)\n"
          "  --input KIND[,width=W,height=H,name=N,serial=S,path=SOCKET]\n"
          "                         add a virtio-input: keyboard, mouse, single-touch or\n"
          "                         multi-touch; events come from `vmlab input`, --at, or\n"
          "                         8-byte evdev events read from the Unix socket SOCKET\n"
          "  --balloon[=deflate_on_oom=on]   add a virtio-balloon (`vmlab balloon`)\n"
          "  --trace FILE           record every guest/device interaction to FILE\n"
          "  --socket PATH          listen for control commands on a Unix socket\n"
          "  --at NS:JSON           run control request JSON (vmm/CONTROL.md) at virtual time NS\n"
          "  --kernel FILE          boot Linux instead of a PVH program: a bzImage, or a\n"
          "                         vmlinux with the PVH note (scripts/extract-vmlinux.py)\n"
          "  --initrd FILE          initial ramdisk for --kernel\n"
          "  --cmdline STRING       kernel command line (virtio_mmio.device= entries are added)\n"
          "  --restore SNAPSHOT     continue a run from `snapshot take` (software CPU); only\n"
          "                         --trace, --socket, --stats, --serial, --at, --quiet may\n"
          "                         go with it (the machine comes from the snapshot)\n"
          "  --sandbox              before the guest runs: no new privileges and a seccomp\n"
          "                         allow-list of the system calls a VM makes (a call\n"
          "                         outside it kills the process with SIGSYS)\n"
          "  --quiet                no informational notes on stderr\n"
          "  --help                 this text\n"
          "\n"
          "Exit status: (v<<1)|1 when the guest writes v to port 0xf4 (QEMU isa-debug-exit),\n"
          "0 on clean shutdown, 2 bad usage or input, 4 guest fault, 6 guest hung,\n"
          "8 --max-insns reached, 10 internal error.\n", f);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

int cli_run_parse(int argc, char **argv, struct run_cli *out, char *err, size_t errlen)
{
    struct vm_options *o = &out->vm;
    const char *machine_opt = NULL;     /* first option that shapes the machine */
    int c, serial_given = 0;

    memset(out, 0, sizeof(*out));
    o->mem = 128ULL << 20;
    o->cpu = VM_DEFAULT_CPU;
    o->serial = "stdio";
    optind = 0;         /* getopt keeps global state: reset for every parse */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:", run_options, NULL)) != -1) {
        if (!machine_opt && c != OPT_TRACE && c != OPT_SOCKET && c != OPT_STATS &&
            c != OPT_SERIAL && c != OPT_AT && c != OPT_QUIET && c != OPT_RESTORE &&
            c != OPT_SANDBOX &&
            c != OPT_HELP && c != ':' && c != '?')
            /* "--mem 64M" leaves optind past the value; "--mem=64M" does not */
            machine_opt = optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2]
                                                                               : argv[optind - 1];
        switch (c) {
        case OPT_RESTORE: o->restore = optarg; break;
        case OPT_CPU:
            if (strcmp(optarg, "sim") && strcmp(optarg, "kvm") && strcmp(optarg, "auto")) {
                snprintf(err, errlen, "--cpu '%s' is not one of sim, kvm, auto", optarg);
                return -EINVAL;
            }
            o->cpu = optarg;
            break;
        case OPT_MEM:
            if (parse_size(optarg, &o->mem)) {
                snprintf(err, errlen, "--mem '%s' is not a size (e.g. 128M, 1G)", optarg);
                return -EINVAL;
            }
            if (o->mem == 0) {
                snprintf(err, errlen, "--mem 0: guest RAM must be at least 2M");
                return -EINVAL;
            }
            break;
        case OPT_SEED:
            if (parse_u64(optarg, &o->seed)) {
                snprintf(err, errlen, "--seed '%s' is not an unsigned integer", optarg);
                return -EINVAL;
            }
            break;
        case OPT_SERIAL: o->serial = optarg; serial_given = 1; break;
        case OPT_SERIAL_IN: o->serial_in = optarg; break;
        case OPT_RTC_BASE: o->rtc_base = optarg; break;
        case OPT_MAX_INSNS:
            if (parse_u64(optarg, &o->max_insns) || o->max_insns == 0) {
                snprintf(err, errlen, "--max-insns '%s' is not a positive integer", optarg);
                return -EINVAL;
            }
            break;
        case OPT_TSC:
            if (!strcmp(optarg, "host") || !strcmp(optarg, "virtual")) {
                o->host_tsc = !strcmp(optarg, "host");
            } else {
                snprintf(err, errlen, "--tsc '%s' is neither 'virtual' nor 'host'", optarg);
                return -EINVAL;
            }
            break;
        case OPT_STATS: out->stats = 1; break;
        case OPT_SANDBOX: out->sandbox = 1; break;
        case OPT_BLOCK:
            if (o->nblocks == VM_MAX_BLOCKS) {
                snprintf(err, errlen, "--block: at most %d disks", VM_MAX_BLOCKS);
                return -EINVAL;
            }
            o->blocks[o->nblocks++] = optarg;
            break;
        case OPT_CONSOLE: o->console = optarg; break;
        case OPT_RNG: o->rng = 1; break;
        case OPT_NET:
            if (o->net) {
                snprintf(err, errlen, "--net: given twice (one network device per VM)");
                return -EINVAL;
            }
            o->net = optarg;
            break;
        case OPT_VSOCK: o->vsock = optarg; break;
        case OPT_INPUT:
            if (o->ninputs == VM_MAX_INPUTS) {
                snprintf(err, errlen, "--input: at most %d input devices", VM_MAX_INPUTS);
                return -EINVAL;
            }
            if (snprintf(out->input_args[o->ninputs], sizeof(out->input_args[0]), "kind=%s",
                         optarg) >= (int)sizeof(out->input_args[0])) {
                snprintf(err, errlen, "--input '%.60s': too long", optarg);
                return -EINVAL;
            }
            o->inputs[o->ninputs] = out->input_args[o->ninputs];
            o->ninputs++;
            break;
        case OPT_BALLOON: o->balloon = optarg ? optarg : ""; break;
        case OPT_TRACE: o->trace = optarg; break;
        case OPT_SOCKET: o->socket = optarg; break;
        case OPT_KERNEL: o->kernel = optarg; break;
        case OPT_INITRD: o->initrd = optarg; break;
        case OPT_CMDLINE: o->cmdline = optarg; break;
        case OPT_QUIET: o->quiet = 1; break;
        case OPT_AT: {
            char *colon = strchr(optarg, ':');
            uint64_t ns;
            if (!colon || colon == optarg) {
                snprintf(err, errlen, "--at '%s': expected NS:JSON", optarg);
                return -EINVAL;
            }
            *colon = '\0';
            int bad = parse_u64(optarg, &ns);
            *colon = ':';
            if (bad) {
                snprintf(err, errlen, "--at '%s': time is not an integer in ns", optarg);
                return -EINVAL;
            }
            if (o->nat == VM_MAX_ARGS) {
                snprintf(err, errlen, "--at: at most %d timed requests", VM_MAX_ARGS);
                return -EINVAL;
            }
            o->at[o->nat].at_ns = ns;
            o->at[o->nat++].json = colon + 1;
            break;
        }
        case OPT_HELP: return 1;
        case ':':
            snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
            return -EINVAL;
        default:
            snprintf(err, errlen, "unknown option '%s' (see vmlab run --help)",
                     argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (o->restore) {
        /* The snapshot fixes the machine: options that would change it conflict. */
        if (machine_opt) {
            snprintf(err, errlen, "--restore and %s exclude each other: the machine comes "
                     "from the snapshot (allowed: --trace, --socket, --stats, --serial, --at, "
                     "--quiet)", machine_opt);
            return -EINVAL;
        }
        if (optind < argc) {
            snprintf(err, errlen, "--restore and a PROGRAM ('%s') exclude each other",
                     argv[optind]);
            return -EINVAL;
        }
        if (!serial_given)
            o->serial = NULL;           /* keep the saved UART output */
        return 0;
    }
    if (o->kernel) {
        if (optind < argc) {
            snprintf(err, errlen, "--kernel and a PROGRAM ('%s') exclude each other",
                     argv[optind]);
            return -EINVAL;
        }
        return 0;
    }
    if (o->initrd) {
        snprintf(err, errlen, "--initrd needs --kernel");
        return -EINVAL;
    }
    if (optind >= argc) {
        snprintf(err, errlen, "no guest PROGRAM given (see vmlab run --help)");
        return -EINVAL;
    }
    o->program = argv[optind++];
    if (optind < argc && !strcmp(argv[optind], "--"))
        optind++;
    for (; optind < argc; optind++) {
        if (o->nguest_args == VM_MAX_ARGS) {
            snprintf(err, errlen, "more than %d guest arguments", VM_MAX_ARGS);
            return -EINVAL;
        }
        o->guest_args[o->nguest_args++] = argv[optind];
    }
    return 0;
}
