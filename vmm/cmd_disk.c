/* `vmlab disk ...`: create and inspect disk images (crosvm-like create_composite). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "devices/disk/cdisk_create.h"
#include "devices/disk/composite.h"
#include "devices/disk/disk.h"
#include "devices/disk/gpt.h"
#include "devices/disk/qcow2.h"

int cmd_disk(int argc, char **argv);

#define EXIT_USAGE 2

static int fail(const char *msg)
{
    fprintf(stderr, "vmlab: %s\n", msg);
    return EXIT_USAGE;
}

static void usage_disk(FILE *f)
{
    fputs("usage: vmlab disk <command> [options]\n"
          "\n"
          "commands:\n"
          "  create-composite OUT --label NAME --partition LABEL:PATH[:writable][:TYPE-GUID] ...\n"
          "                     write a composite disk with a GPT (plus OUT.header.img, OUT.footer.img)\n"
          "  create-qcow2 OUT [SIZE | --size N] [--backing FILE] [--cluster-size N]\n"
          "                     write an empty qcow2 v3 image (sizes accept K, M, G, T suffixes)\n"
          "  info FILE          print format, size, components and partitions\n"
          "  resize INDEX SIZE SOCKET\n"
          "                     resize disk INDEX of a running VM (control socket client)\n"
          "\n"
          "Run 'vmlab disk <command> --help' for a command's options.\n", f);
}

static void usage_create_composite(FILE *f)
{
    fputs("usage: vmlab disk create-composite OUT --label NAME --partition SPEC [--partition SPEC ...]\n"
          "\n"
          "  OUT                  the composite file to write\n"
          "  --label NAME         disk label (seeds the disk GUID)\n"
          "  --partition SPEC     LABEL:PATH[:writable][:TYPE-GUID]; TYPE-GUID may also be\n"
          "                       'linux' (default) or 'efi'. Repeat for each partition, in order.\n"
          "  --header PATH        GPT header file (default OUT.header.img)\n"
          "  --footer PATH        GPT footer file (default OUT.footer.img)\n"
          "  --help               this text\n"
          "\n"
          "Partitions are 4 KiB-aligned; a read-only image of another size is padded with a\n"
          "zero filler (OUT.filler.img), a writable one must be a multiple of 4 KiB. GUIDs are\n"
          "derived from the labels and paths, so the same inputs give the same files.\n", f);
}

static void usage_create_qcow2(FILE *f)
{
    fputs("usage: vmlab disk create-qcow2 OUT [SIZE | --size N] [--backing FILE] [--cluster-size N]\n"
          "\n"
          "  SIZE, --size N       virtual size in bytes (K, M, G, T suffixes), as a second\n"
          "                       argument (as qemu-img create and crosvm create_qcow2 take it)\n"
          "                       or an option; with --backing, defaults to the backing file's size\n"
          "  --backing FILE       backing image (raw or qcow2), stored as given\n"
          "  --cluster-size N     power of two from 512 to 2M (default 64K)\n"
          "  --help               this text\n", f);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || s[0] == '-')
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -EINVAL;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

/* LABEL:PATH[:writable][:TYPE-GUID] */
static int parse_partition(char *spec, struct cdisk_partition *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    char *fields[4] = { 0 };
    int n = 0;
    for (char *s = spec; n < 4; n++) {
        fields[n] = s;
        char *c = strchr(s, ':');
        if (!c) { n++; break; }
        *c = 0;
        s = c + 1;
    }
    if (n < 2 || !fields[0][0] || !fields[1][0]) {
        snprintf(err, errlen, "--partition '%s': expected LABEL:PATH[:writable][:TYPE-GUID]", spec);
        return -EINVAL;
    }
    p->label = fields[0];
    p->path = fields[1];
    for (int i = 2; i < n; i++) {
        const char *f = fields[i];
        if (strcmp(f, "writable") == 0 && i == 2) {
            p->writable = 1;
        } else if (strcmp(f, "linux") == 0) {
            p->has_type = 1;
            p->type = GPT_TYPE_LINUX_FS;
        } else if (strcmp(f, "efi") == 0) {
            p->has_type = 1;
            p->type = GPT_TYPE_EFI_SYSTEM;
        } else if (gpt_guid_parse(f, &p->type) == 0) {
            p->has_type = 1;
        } else {
            snprintf(err, errlen, "--partition %s: field '%s' is neither 'writable' nor a type GUID",
                     p->label, f);
            return -EINVAL;
        }
    }
    return 0;
}

static int do_create_composite(int argc, char **argv)
{
    static const struct option opts[] = {
        { "label", required_argument, 0, 'l' },
        { "partition", required_argument, 0, 'p' },
        { "header", required_argument, 0, 'H' },
        { "footer", required_argument, 0, 'F' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *label = NULL, *header = NULL, *footer = NULL;
    struct cdisk_partition parts[GPT_NUM_ENTRIES];
    size_t n = 0;
    char err[512];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': label = optarg; break;
        case 'H': header = optarg; break;
        case 'F': footer = optarg; break;
        case 'p':
            if (n >= GPT_NUM_ENTRIES)
                return fail("create-composite: more than 128 partitions");
            if (parse_partition(optarg, &parts[n], err, sizeof(err)))
                return fail(err);
            n++;
            break;
        case 'h': usage_create_composite(stdout); return 0;
        default:
            snprintf(err, sizeof(err), "create-composite: unknown or incomplete option '%s' "
                     "(see --help)", argv[optind - 1]);
            return fail(err);
        }
    }
    if (optind != argc - 1)
        return fail("create-composite: expected exactly one OUT path (see --help)");
    if (!label)
        return fail("create-composite: --label is required");
    if (!n)
        return fail("create-composite: at least one --partition is required");
    const char *out = argv[optind];
    if (cdisk_create(out, label, parts, n, header, footer, NULL, err, sizeof(err)))
        return fail(err);
    return 0;
}

static int do_create_qcow2(int argc, char **argv)
{
    static const struct option opts[] = {
        { "size", required_argument, 0, 's' },
        { "backing", required_argument, 0, 'b' },
        { "cluster-size", required_argument, 0, 'c' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    uint64_t size = 0, cluster = 65536;
    int have_size = 0;
    const char *backing = NULL;
    char err[512];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_size(optarg, &size)) {
                snprintf(err, sizeof(err), "create-qcow2: --size '%s' is not a size", optarg);
                return fail(err);
            }
            have_size = 1;
            break;
        case 'c':
            if (parse_size(optarg, &cluster)) {
                snprintf(err, sizeof(err), "create-qcow2: --cluster-size '%s' is not a size", optarg);
                return fail(err);
            }
            break;
        case 'b': backing = optarg; break;
        case 'h': usage_create_qcow2(stdout); return 0;
        default:
            snprintf(err, sizeof(err), "create-qcow2: unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return fail(err);
        }
    }
    if (optind == argc - 2) {   /* OUT SIZE */
        if (have_size)
            return fail("create-qcow2: the size is given twice (SIZE and --size)");
        if (parse_size(argv[optind + 1], &size)) {
            snprintf(err, sizeof(err), "create-qcow2: SIZE '%s' is not a size", argv[optind + 1]);
            return fail(err);
        }
        have_size = 1;
    } else if (optind != argc - 1) {
        return fail("create-qcow2: expected OUT and an optional SIZE (see --help)");
    }
    if (!have_size && !backing)
        return fail("create-qcow2: --size is required (or --backing to take its size)");
    if (qcow2_create(argv[optind], have_size ? size : UINT64_MAX, cluster, backing, err, sizeof(err)))
        return fail(err);
    return 0;
}

static int do_info(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        puts("usage: vmlab disk info FILE\n\nPrints the image's format, size, components "
             "(composite), clusters, backing file, compression type, extended L2 and the count "
             "of compressed clusters (qcow2; every L2 entry is checked) and GPT partitions.");
        return 0;
    }
    if (argc != 2)
        return fail("info: expected exactly one FILE (see --help)");
    struct disk *d;
    char err[512];
    if (disk_open(argv[1], 1, &d, err, sizeof(err)))
        return fail(err);
    printf("file: %s\nformat: %s\nsize: %llu\n", argv[1], d->ops->format,
           (unsigned long long)d->size);
    size_t nc = disk_composite_count(d);
    if (nc) {
        printf("version: %llu\ncomponents: %zu\n", (unsigned long long)disk_composite_version(d), nc);
        for (size_t i = 0; i < nc; i++) {
            struct cdisk_component_info ci;
            disk_composite_component(d, i, &ci);
            printf("  %zu: offset %llu length %llu file_offset %llu %s %s %s\n", i,
                   (unsigned long long)ci.offset, (unsigned long long)ci.length,
                   (unsigned long long)ci.file_offset, ci.writable ? "rw" : "ro", ci.format,
                   ci.path);
        }
    }
    struct qcow2_info qi;
    if (qcow2_get_info(d, &qi) == 0) {
        printf("qcow2_version: %u\ncluster_size: %llu\nbacking_file: %s\nbacking_format: %s\n", qi.version,
               (unsigned long long)qi.cluster_size, qi.backing_file[0] ? qi.backing_file : "(none)",
               qi.backing_format[0] ? qi.backing_format : "(probe)");
        uint64_t nz;
        if (qcow2_scan(d, &nz, err, sizeof(err))) {
            /* a corrupt entry has already been logged, in its one line */
            int logged = qcow2_get_info(d, &qi) == 0 && qi.corrupt[0];
            disk_close(d);
            return logged ? 2 : fail(err);
        }
        printf("compression_type: %s\nextended_l2: %s\ncompressed_clusters: %llu\n",
               qi.compression_type, qi.extended_l2 ? "yes" : "no", (unsigned long long)nz);
    }
    struct gpt_part parts[GPT_NUM_ENTRIES];
    struct gpt_guid dg;
    int np = gpt_read(d, parts, GPT_NUM_ENTRIES, &dg, err, sizeof(err));
    if (np >= 0) {
        char g[37], t[37], u[37];
        gpt_guid_format(&dg, g);
        printf("gpt_disk_guid: %s\npartitions: %d\n", g, np);
        for (int i = 0; i < np; i++) {
            gpt_guid_format(&parts[i].type, t);
            gpt_guid_format(&parts[i].unique, u);
            printf("  %d: %s lba %llu-%llu size %llu type %s guid %s\n", i + 1, parts[i].name,
                   (unsigned long long)parts[i].first_lba, (unsigned long long)parts[i].last_lba,
                   (unsigned long long)((parts[i].last_lba - parts[i].first_lba + 1) * GPT_SECTOR),
                   t, u);
        }
    } else {
        printf("partitions: none (%s)\n", err);
    }
    disk_close(d);
    return 0;
}

int cmd_disk(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "vmlab: disk: missing command\n");
        usage_disk(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_disk(stdout);
        return 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "create-composite") == 0)
        return do_create_composite(argc - 1, argv + 1);
    if (strcmp(sub, "create-qcow2") == 0)
        return do_create_qcow2(argc - 1, argv + 1);
    if (strcmp(sub, "info") == 0)
        return do_info(argc - 1, argv + 1);
    char err[300];
    snprintf(err, sizeof(err), "disk: unknown command '%s' (see 'vmlab disk --help')", sub);
    return fail(err);
}
