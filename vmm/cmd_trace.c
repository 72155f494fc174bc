/* `vmlab trace ...`: dump, info, replay, diff, minimize and export trace files.
 * Exit statuses: 0 success / match / identical, 1 divergence / difference, 2 bad command
 * line or bad trace file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "traces/replay.h"
#include "traces/tools.h"
#include "traces/trace_format.h"
#include "vmm/commands.h"

#define EXIT_DIFF 1
#define EXIT_BAD  2

static void trace_usage(FILE *f)
{
    fprintf(f,
        "Usage: vmlab trace COMMAND ...\n"
        "  dump FILE [--kind K[,K...]] [--device NAME] [--from T] [--to T] [--no-header]\n"
        "        one event per line; K: mmio-read mmio-write pio-in pio-out dma-read\n"
        "        dma-write irq notify control fault end, or mmio pio dma bus;\n"
        "        T: nanoseconds, or with a unit ns/us/ms/s\n"
        "  info FILE        header, event counts per kind, bytes per event\n"
        "  replay FILE [--device NAME] [--disk NAME=IMAGE ...] [--verbose]\n"
        "        rebuild the devices, drive them from the trace, check what they do;\n"
        "        disks replay from the content the trace recorded, or from IMAGE (read-only,\n"
        "        never written; a line says when it differs from what the trace saw);\n"
        "        exit 0 match, 1 divergence, 2 bad file\n"
        "  diff A B [--ignore-time]    first difference, with context; exit 0 same, 1 differ\n"
        "  minimize FILE --check CMD -o OUT [--max-tests N]\n"
        "        delta-debug the trace's requests while CMD (run by sh with $TRACE set to\n"
        "        the candidate trace) still exits non-zero\n"
        "  export --format chrome|pcap FILE -o OUT\n"
        "        chrome: trace-event JSON for Perfetto / chrome://tracing\n"
        "        pcap: the virtio-net frames (tcpdump -r, tshark -r, Wireshark)\n"
        "NAME: a device kind, its id=, its index N or KIND#N (see `vmlab trace info`).\n"
        "Recording: `vmlab run --trace FILE ...`; for a running VM, `vmlab trace start\n"
        "PATH SOCKET` and `vmlab trace stop SOCKET` (replay needs a recording from boot).\n");
}

struct loaded {
    struct trace_reader *rd;
    struct trace_event *ev;
    size_t n;
    int damaged;                /* the events are the intact prefix of a damaged file */
    char err[400];
};

/* Loads FILE. Returns 0 (maybe damaged, with a prefix) or EXIT_BAD when nothing is usable. */
static int load(const char *path, struct loaded *l)
{
    memset(l, 0, sizeof(*l));
    if (trace_reader_open(&l->rd, path, l->err, sizeof(l->err))) {
        fprintf(stderr, "vmlab: %s\n", l->err);
        return EXIT_BAD;
    }
    if (trace_reader_load(l->rd, &l->ev, &l->n, l->err, sizeof(l->err)))
        l->damaged = 1;
    return 0;
}

static void unload(struct loaded *l)
{
    free(l->ev);
    trace_reader_close(l->rd);
}

static int report_damage(const char *path, struct loaded *l)
{
    fprintf(stderr, "vmlab: %s: %s (the first %zu events are intact)\n", path, l->err, l->n);
    return EXIT_BAD;
}

/* Options: "--name value" / "--name=value"; anything else is positional. */
struct opt { const char *name; int has_arg; const char *value; int seen; };

/* A repeatable option's values (replay --disk): the caller's list, or NULL. */
#define OPT_MANY MACHINE_MAX_DEVICES
struct opt_many { const char *name; const char *values[OPT_MANY]; int n; };
static struct opt_many *opt_repeated;

static int parse_opts(int argc, char **argv, struct opt *opts, const char **pos, int maxpos,
                      int *npos)
{
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1]) {
            struct opt *o = NULL;
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            for (struct opt *p = opts; p->name; p++)
                if (strlen(p->name) == len && !strncmp(p->name, a, len))
                    o = p;
            if (!o) {
                fprintf(stderr, "vmlab: trace %s: unknown option '%s'\n", argv[0], a);
                return -1;
            }
            o->seen = 1;
            if (o->has_arg) {
                if (eq) {
                    o->value = eq + 1;
                } else if (i + 1 < argc) {
                    o->value = argv[++i];
                } else {
                    fprintf(stderr, "vmlab: trace %s: option %s needs a value\n", argv[0], a);
                    return -1;
                }
            } else if (eq) {
                fprintf(stderr, "vmlab: trace %s: option %.*s takes no value\n", argv[0],
                        (int)len, a);
                return -1;
            }
            if (opt_repeated && !strcmp(o->name, opt_repeated->name)) {
                if (opt_repeated->n == OPT_MANY) {
                    fprintf(stderr, "vmlab: trace %s: %s given more than %d times\n",
                            argv[0], o->name, OPT_MANY);
                    return -1;
                }
                opt_repeated->values[opt_repeated->n++] = o->value;
            }
        } else {
            if (*npos == maxpos) {
                fprintf(stderr, "vmlab: trace %s: unexpected argument '%s'\n", argv[0], a);
                return -1;
            }
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

static int parse_time(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;

    if (end == s || errno || s[0] == '-')
        goto bad;
    if (!*end || !strcmp(end, "ns"))
        mul = 1;
    else if (!strcmp(end, "us"))
        mul = 1000;
    else if (!strcmp(end, "ms"))
        mul = 1000000;
    else if (!strcmp(end, "s"))
        mul = 1000000000;
    else
        goto bad;
    if (v > UINT64_MAX / mul)
        goto bad;
    *out = v * mul;
    return 0;
bad:
    fprintf(stderr, "vmlab: trace: %s '%s' is not a time (use e.g. 1500, 20us, 3ms)\n", opt, s);
    return -1;
}

static int sub_dump(int argc, char **argv)
{
    struct opt opts[] = { { "--kind", 1, 0, 0 }, { "--device", 1, 0, 0 }, { "--from", 1, 0, 0 },
                          { "--to", 1, 0, 0 }, { "--no-header", 0, 0, 0 }, { 0, 0, 0, 0 } };
    const char *pos[1];
    int npos;
    struct trace_filter f = { 0 };

    if (parse_opts(argc, argv, opts, pos, 1, &npos) || npos != 1) {
        if (npos != 1)
            fprintf(stderr, "vmlab: trace dump: expected one FILE\n");
        return EXIT_BAD;
    }
    if (opts[0].value) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof(buf), "%s", opts[0].value);
        for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            uint32_t m = trace_kind_parse(k);
            if (!m) {
                fprintf(stderr, "vmlab: trace dump: --kind '%s' is not an event kind\n", k);
                return EXIT_BAD;
            }
            f.kinds |= m;
        }
    }
    f.device = opts[1].value;
    if ((opts[2].value && parse_time("--from", opts[2].value, &f.from_ns)) ||
        (opts[3].value && parse_time("--to", opts[3].value, &f.to_ns)))
        return EXIT_BAD;
    /* Streams: memory stays constant however long the trace is. */
    struct trace_reader *rd;
    char err[400], line[512];
    if (trace_reader_open(&rd, pos[0], err, sizeof(err))) {
        fprintf(stderr, "vmlab: %s\n", err);
        return EXIT_BAD;
    }
    const struct trace_header *h = trace_reader_header(rd);
    if (f.device) {
        int any = 0;
        for (unsigned i = 0; i < h->machine.ndevices; i++)
            any |= trace_device_match(h, (int)i, f.device);
        if (!any) {
            fprintf(stderr, "vmlab: trace dump: --device %s: no such device in this trace\n",
                    f.device);
            trace_reader_close(rd);
            return EXIT_BAD;
        }
    }
    if (!opts[4].seen)
        trace_print_header(stdout, h);
    struct trace_event e;
    int rc;
    uint64_t idx = 0, last_kind = 0;
    while ((rc = trace_reader_next(rd, &e, err, sizeof(err))) == 1) {
        last_kind = e.kind;
        if (trace_filter_match(h, &e, &f)) {
            trace_event_format(h, idx, &e, line, sizeof(line));
            puts(line);
        }
        idx++;
    }
    fflush(stdout);
    if (rc == 0 && last_kind != TRACE_EV_END) {
        snprintf(err, sizeof(err), "trace ends after %" PRIu64 " events without a run-end "
                 "event: truncated", idx);
        rc = -EPIPE;
    }
    if (rc < 0)
        fprintf(stderr, "vmlab: %s: %s (the first %" PRIu64 " events are intact)\n", pos[0],
                err, idx);
    trace_reader_close(rd);
    return rc < 0 ? EXIT_BAD : 0;
}

static int sub_info(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc;
    struct opt opts[] = { { 0, 0, 0, 0 } };
    uint64_t count[TRACE_EV_KIND_MAX + 1] = { 0 }, dma = 0, n = 0, t0 = 0, t1 = 0;
    struct trace_reader *rd;
    struct trace_event e = { 0 };
    char err[400];

    if (parse_opts(argc, argv, opts, pos, 1, &npos) || npos != 1) {
        if (npos != 1)
            fprintf(stderr, "vmlab: trace info: expected one FILE\n");
        return EXIT_BAD;
    }
    if (trace_reader_open(&rd, pos[0], err, sizeof(err))) {
        fprintf(stderr, "vmlab: %s\n", err);
        return EXIT_BAD;
    }
    trace_print_header(stdout, trace_reader_header(rd));
    while ((rc = trace_reader_next(rd, &e, err, sizeof(err))) == 1) {
        if (!n)
            t0 = e.time_ns;
        t1 = e.time_ns;
        n++;
        count[e.kind]++;
        if (e.kind == TRACE_EV_DMA_READ || e.kind == TRACE_EV_DMA_WRITE)
            dma += e.len;
    }
    struct stat st;
    uint64_t size = stat(pos[0], &st) ? 0 : (uint64_t)st.st_size;
    printf("events %" PRIu64 " in %" PRIu64 " chunks, %" PRIu64 " bytes (%.2f bytes/event, %"
           PRIu64 " of them DMA data)\n", n, trace_reader_chunks(rd), size,
           n ? (double)size / (double)n : 0.0, dma);
    for (unsigned k = 1; k <= TRACE_EV_KIND_MAX; k++)
        if (count[k])
            printf("  %-10s %" PRIu64 "\n", trace_kind_name(k), count[k]);
    if (trace_reader_disk_chunk_bytes(rd))
        printf("disk content %" PRIu64 " bytes (what replay needs from the disks)\n",
               trace_reader_disk_chunk_bytes(rd));
    for (unsigned d = 0; d < trace_reader_header(rd)->machine.ndevices; d++)
        if (trace_reader_disk_bytes(rd, d))
            printf("  device %u: %" PRIu64 " sector bytes recorded\n", d,
                   trace_reader_disk_bytes(rd, d));
    if (n)
        printf("time %" PRIu64 " ns to %" PRIu64 " ns\n", t0, t1);
    if (rc == 0 && n && e.kind == TRACE_EV_END)
        printf("run ended with status %" PRId64 "\n", (int64_t)e.value);
    else if (rc == 0)
        printf("no run-end event: the trace is truncated\n");
    fflush(stdout);
    if (rc < 0)
        fprintf(stderr, "vmlab: %s: %s (the first %" PRIu64 " events are intact)\n", pos[0],
                err, n);
    trace_reader_close(rd);
    return rc < 0 ? EXIT_BAD : 0;
}

/* --disk NAME=IMAGE: NAME selects one device (trace_device_match) that has a disk file. */
static int parse_disk_opts(const struct trace_header *h, const struct opt_many *o,
                           struct replay_opts *ro)
{
    for (int i = 0; i < o->n; i++) {
        const char *v = o->values[i], *eq = strchr(v, '=');
        char name[64], path[DEVICE_ARGS_MAX];
        int found = -1, count = 0;
        if (!eq || eq == v || !eq[1] || (size_t)(eq - v) >= sizeof(name)) {
            fprintf(stderr, "vmlab: trace replay: --disk '%s' is not NAME=IMAGE\n", v);
            return -1;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
        for (unsigned d = 0; d < h->machine.ndevices; d++)
            if (trace_device_match(h, (int)d, name)) {
                found = (int)d;
                count++;
            }
        if (count != 1) {
            fprintf(stderr, "vmlab: trace replay: --disk %s: %s\n", v, count ?
                    "names more than one device" : "no such device in this trace");
            return -1;
        }
        if (device_arg_get(h->machine.devices[found].args, "path", path, sizeof(path)) == 0) {
            fprintf(stderr, "vmlab: trace replay: --disk %s: device %d (%s) has no disk file\n",
                    v, found, h->machine.devices[found].kind);
            return -1;
        }
        ro->disk_images[found] = eq + 1;
    }
    return 0;
}

static int sub_replay(int argc, char **argv)
{
    struct opt opts[] = { { "--device", 1, 0, 0 }, { "--verbose", 0, 0, 0 },
                          { "--disk", 1, 0, 0 }, { 0, 0, 0, 0 } };
    static struct opt_many disks = { .name = "--disk" };
    const char *pos[1];
    int npos;
    struct loaded l;
    struct replay_result res;

    opt_repeated = &disks;
    if (parse_opts(argc, argv, opts, pos, 1, &npos) || npos != 1) {
        if (npos != 1)
            fprintf(stderr, "vmlab: trace replay: expected one FILE\n");
        return EXIT_BAD;
    }
    if (load(pos[0], &l))
        return EXIT_BAD;
    struct replay_opts o = { .device = opts[0].value, .log = opts[1].seen ? stderr : NULL,
                             .notes = stdout };
    const struct trace_header *h = trace_reader_header(l.rd);
    o.disks = trace_reader_disks(l.rd, &o.ndisks);
    if (parse_disk_opts(h, &disks, &o)) {
        unload(&l);
        return EXIT_BAD;
    }
    int status = trace_replay(h, l.ev, l.n, &o, &res);
    if (status == REPLAY_BAD) {
        fprintf(stderr, "vmlab: trace replay: %s\n", res.message);
    } else {
        if (l.damaged)
            printf("replay: replaying the intact prefix of a damaged trace\n");
        trace_replay_report(stdout, h, l.ev, l.n, &res);
    }
    fflush(stdout);
    if (l.damaged)
        status = report_damage(pos[0], &l);
    unload(&l);
    return status == REPLAY_MATCH ? 0 : status == REPLAY_DIVERGED ? EXIT_DIFF : EXIT_BAD;
}

static int sub_diff(int argc, char **argv)
{
    struct opt opts[] = { { "--ignore-time", 0, 0, 0 }, { 0, 0, 0, 0 } };
    const char *pos[2];
    int npos, rc;
    struct loaded a, b;

    if (parse_opts(argc, argv, opts, pos, 2, &npos) || npos != 2) {
        if (npos != 2)
            fprintf(stderr, "vmlab: trace diff: expected two files A B\n");
        return EXIT_BAD;
    }
    if (load(pos[0], &a))
        return EXIT_BAD;
    if (load(pos[1], &b)) {
        unload(&a);
        return EXIT_BAD;
    }
    rc = trace_diff(stdout, trace_reader_header(a.rd), a.ev, a.n, trace_reader_header(b.rd),
                    b.ev, b.n, !opts[0].seen);
    fflush(stdout);
    if (a.damaged)
        rc = report_damage(pos[0], &a);
    if (b.damaged)
        rc = report_damage(pos[1], &b);
    unload(&a);
    unload(&b);
    return rc;
}

static int sub_minimize(int argc, char **argv)
{
    struct opt opts[] = { { "--check", 1, 0, 0 }, { "-o", 1, 0, 0 }, { "--max-tests", 1, 0, 0 },
                          { 0, 0, 0, 0 } };
    const char *pos[1];
    int npos, rc;
    struct loaded l;
    char err[400];
    struct trace_minimize_opts mo = { .log = stderr };

    if (parse_opts(argc, argv, opts, pos, 1, &npos) || npos != 1 || !opts[0].value ||
        !opts[1].value) {
        fprintf(stderr, "vmlab: trace minimize: usage: minimize FILE --check CMD -o OUT\n");
        return EXIT_BAD;
    }
    mo.check = opts[0].value;
    mo.out = opts[1].value;
    if (opts[2].value) {
        char *end;
        unsigned long v = strtoul(opts[2].value, &end, 10);
        if (*end || !v || v > 1000000) {
            fprintf(stderr, "vmlab: trace minimize: --max-tests '%s' is not a count 1..1000000\n",
                    opts[2].value);
            return EXIT_BAD;
        }
        mo.max_tests = (unsigned)v;
    }
    if (load(pos[0], &l))
        return EXIT_BAD;
    if (l.damaged) {
        rc = report_damage(pos[0], &l);
        unload(&l);
        return rc;
    }
    mo.disks = trace_reader_disks(l.rd, &mo.ndisks);
    rc = trace_minimize(trace_reader_header(l.rd), l.ev, l.n, &mo, err, sizeof(err));
    if (rc)
        fprintf(stderr, "vmlab: %s\n", err);
    unload(&l);
    return rc ? EXIT_BAD : 0;
}

static int sub_export(int argc, char **argv)
{
    struct opt opts[] = { { "--format", 1, 0, 0 }, { "-o", 1, 0, 0 }, { 0, 0, 0, 0 } };
    const char *pos[1];
    int npos, rc = 0;
    struct loaded l;

    if (parse_opts(argc, argv, opts, pos, 1, &npos) || npos != 1 || !opts[0].value ||
        !opts[1].value) {
        fprintf(stderr, "vmlab: trace export: usage: export --format chrome|pcap FILE -o OUT\n");
        return EXIT_BAD;
    }
    const char *fmt = opts[0].value;
    if (strcmp(fmt, "chrome") && strcmp(fmt, "pcap")) {
        fprintf(stderr, "vmlab: trace export: --format '%s' is not a format this vmlab "
                "exports (formats: chrome, pcap)\n", fmt);
        return EXIT_BAD;
    }
    if (load(pos[0], &l))
        return EXIT_BAD;
    const struct trace_header *h = trace_reader_header(l.rd);
    if (!strcmp(fmt, "pcap")) {
        unsigned net = 0;
        for (unsigned i = 0; i < h->machine.ndevices; i++)
            net += !strcmp(h->machine.devices[i].kind, "virtio-net");
        if (!net) {
            fprintf(stderr, "vmlab: trace export: no virtio-net device in this trace (%s): "
                    "no frames for a pcap\n", pos[0]);
            unload(&l);
            return EXIT_BAD;
        }
    }
    FILE *out = strcmp(opts[1].value, "-") ? fopen(opts[1].value, "w") : stdout;
    if (!out) {
        fprintf(stderr, "vmlab: trace export: %s: %s\n", opts[1].value, strerror(errno));
        unload(&l);
        return EXIT_BAD;
    }
    size_t frames = 0;
    if (!strcmp(fmt, "pcap"))
        rc = trace_export_pcap(out, h, l.ev, l.n, &frames);
    else
        rc = trace_export_chrome(out, h, l.ev, l.n);
    if ((out != stdout && fclose(out)) || rc) {
        fprintf(stderr, "vmlab: trace export: writing %s failed\n", opts[1].value);
        rc = EXIT_BAD;
    } else if (!strcmp(fmt, "pcap")) {
        fprintf(stderr, "trace export: %zu frames\n", frames);
    }
    if (l.damaged)
        rc = report_damage(pos[0], &l);
    unload(&l);
    return rc;
}

int cmd_trace(int argc, char **argv)
{
    static const struct { const char *name; int (*fn)(int, char **); } subs[] = {
        { "dump", sub_dump }, { "info", sub_info }, { "replay", sub_replay },
        { "diff", sub_diff }, { "minimize", sub_minimize }, { "export", sub_export },
    };

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        trace_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD : 0;
    }
    for (unsigned i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (!strcmp(argv[1], subs[i].name)) {
            for (int k = 2; k < argc; k++)
                if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
                    trace_usage(stdout);
                    return 0;
                }
            return subs[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "vmlab: trace: unknown command '%s' (dump, info, replay, diff, minimize, "
            "export)\n", argv[1]);
    return EXIT_BAD;
}
