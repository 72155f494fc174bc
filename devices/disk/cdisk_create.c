/* create-composite: lay partitions out 4 KiB-aligned after a 40-sector GPT head, end the
 * disk with the backup GPT on its last 33 sectors, round the size to 64 KiB. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "composite.pb-c.h"
#include "devices/disk/cdisk_create.h"
#include "devices/disk/composite.h"
#include "devices/disk/disk_internal.h"

#define PART_ALIGN 4096u
#define DISK_ALIGN 65536u
/* Right after the entries (sgdisk flags a gap otherwise); partitions still start at 40. */
#define GPT_FIRST_USABLE 34u

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static int write_file(const char *path, const void *buf, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        disk__err(err, errlen, "cannot create '%s': %s", path, strerror(e));
        return -e;
    }
    int r = disk__pwrite_full(fd, buf, len, 0);
    if (!r && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r)
        disk__err(err, errlen, "cannot write '%s': %s", path, strerror(-r));
    return r;
}

/* The path to store in the spec: relative to the composite's folder when the file is
 * inside it (the image set can move), else absolute. */
static char *spec_path(const char *outdir, const char *path)
{
    char real[PATH_MAX];
    /* An inherited descriptor (the VM manager's disks from fds) is named as given:
     * resolving it would name the file the descriptor stood for. */
    if (strncmp(path, "/proc/self/fd/", 14) == 0)
        return strdup(path);
    if (!realpath(path, real))
        return NULL;
    size_t n = strlen(outdir);
    if (strncmp(real, outdir, n) == 0 && real[n] == '/')
        return strdup(real + n + 1);
    return strdup(real);
}

static char *default_name(const char *out, const char *given, const char *suffix)
{
    if (given)
        return strdup(given);
    size_t n = strlen(out) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", out, suffix);
    return s;
}

int cdisk_create(const char *out, const char *disk_label, const struct cdisk_partition *parts,
                 size_t n, const char *header, const char *footer, const char *filler,
                 char *err, size_t errlen)
{
    int r = -ENOMEM;
    char *hdr_path = default_name(out, header, ".header.img");
    char *ftr_path = default_name(out, footer, ".footer.img");
    char *fil_path = default_name(out, filler, ".filler.img");
    uint8_t *entries = calloc(1, GPT_ENTRIES_BYTES);
    uint8_t *head = calloc(1, GPT_BEGIN_SIZE);
    uint8_t *foot = NULL;
    ComponentDisk *comps = calloc(2 * n + 2, sizeof(*comps));
    ComponentDisk **compp = calloc(2 * n + 2, sizeof(*compp));
    char **names = calloc(2 * n + 3, sizeof(*names));
    uint8_t *spec = NULL;
    size_t nc = 0, nn = 0;
    char outdir[PATH_MAX];

    if (!hdr_path || !ftr_path || !fil_path || !entries || !head || !comps || !compp || !names) {
        disk__err(err, errlen, "out of memory");
        goto done;
    }
    if (n == 0 || n > GPT_NUM_ENTRIES) {
        disk__err(err, errlen, "need 1 to %u partitions, got %zu", GPT_NUM_ENTRIES, n);
        r = -EINVAL;
        goto done;
    }
    {
        /* Folder of the output, resolved, for relative spec paths. */
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s", out);
        char *slash = strrchr(tmp, '/');
        const char *dir = slash ? (slash == tmp ? "/" : (*slash = 0, tmp)) : ".";
        if (!realpath(dir, outdir)) {
            int e = errno;
            disk__err(err, errlen, "output folder of '%s': %s", out, strerror(e));
            r = -e;
            goto done;
        }
        if (strcmp(outdir, "/") == 0)
            outdir[0] = 0;
    }

    /* Never overwrite a partition's image with one of our outputs. */
    {
        const char *outs[4] = { out, hdr_path, ftr_path, fil_path };
        for (int k = 0; k < 4; k++) {
            struct stat so, sp;
            if (stat(outs[k], &so) < 0)
                continue;
            for (size_t i = 0; i < n; i++) {
                if (stat(parts[i].path, &sp) == 0 && sp.st_dev == so.st_dev &&
                    sp.st_ino == so.st_ino) {
                    disk__err(err, errlen, "output '%s' is the image of partition '%s'", outs[k],
                              parts[i].label);
                    r = -EINVAL;
                    goto done;
                }
            }
        }
    }
    /* Header first in the spec; its file is written once the entries are known. */
    comps[nc] = (ComponentDisk)COMPONENT_DISK__INIT;
    nc++;
    uint64_t next = GPT_BEGIN_SIZE;
    int need_filler = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cdisk_partition *p = &parts[i];
        if (!p->label || !p->label[0]) {
            disk__err(err, errlen, "partition %zu: empty label", i);
            r = -EINVAL;
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(parts[j].label, p->label) == 0) {
                disk__err(err, errlen, "duplicate partition label '%s'", p->label);
                r = -EINVAL;
                goto done;
            }
        }
        struct disk *pd;
        char why[256];
        r = disk_open(p->path, 1, &pd, why, sizeof(why));
        if (r) {
            disk__err(err, errlen, "partition '%s': %s", p->label, why);
            goto done;
        }
        uint64_t size = pd->size;
        disk_close(pd);
        if (size == 0) {
            disk__err(err, errlen, "partition '%s': image '%s' is empty", p->label, p->path);
            r = -EINVAL;
            goto done;
        }
        uint64_t aligned = align_up(size, PART_ALIGN);
        if (aligned != size && p->writable) {
            disk__err(err, errlen, "partition '%s': writable image '%s' is %llu bytes, not a "
                      "multiple of %u", p->label, p->path, (unsigned long long)size, PART_ALIGN);
            r = -EINVAL;
            goto done;
        }
        struct gpt_part gp = { 0 };
        gp.type = p->has_type ? p->type : GPT_TYPE_LINUX_FS;
        gpt_guid_from_names(&gp.unique, "partition", p->label, p->path);
        gp.first_lba = next / GPT_SECTOR;
        gp.last_lba = (next + aligned) / GPT_SECTOR - 1;
        snprintf(gp.name, sizeof(gp.name), "%s", p->label);
        if (strlen(p->label) >= sizeof(gp.name) ||
            gpt_entry_encode(&gp, entries + i * GPT_ENTRY_SIZE)) {
            disk__err(err, errlen, "partition label '%s' does not fit %u UTF-16 units", p->label,
                      GPT_NAME_UNITS);
            r = -EINVAL;
            goto done;
        }
        char *sp = spec_path(outdir, p->path);
        if (!sp) {
            int e = errno;
            disk__err(err, errlen, "partition '%s': cannot resolve '%s': %s", p->label, p->path,
                      strerror(e));
            r = -e;
            goto done;
        }
        names[nn++] = sp;
        comps[nc] = (ComponentDisk)COMPONENT_DISK__INIT;
        comps[nc].file_path = sp;
        comps[nc].offset = next;
        comps[nc].read_write_capability = p->writable ? READ_WRITE_CAPABILITY__READ_WRITE
                                                      : READ_WRITE_CAPABILITY__READ_ONLY;
        nc++;
        if (aligned != size) {
            need_filler = 1;
            comps[nc] = (ComponentDisk)COMPONENT_DISK__INIT;
            comps[nc].offset = next + size;     /* file_path set once the filler exists */
            comps[nc].file_path = NULL;
            nc++;
        }
        next += aligned;
    }

    /* The backup GPT sits on the last 33 sectors of a 64 KiB-aligned disk; the footer
     * file covers everything from the end of the last partition. */
    uint64_t part_end = next;
    uint64_t disk_size = align_up(part_end + GPT_END_SIZE, DISK_ALIGN);
    uint64_t sectors = disk_size / GPT_SECTOR;
    uint64_t backup_entries_lba = sectors - 33;
    uint32_t ecrc = gpt_crc32(entries, GPT_ENTRIES_BYTES);
    struct gpt_guid disk_guid;
    {
        /* Disk GUID from the label and every partition's label and path. */
        uint32_t h = gpt_crc32(disk_label ? disk_label : "", disk_label ? strlen(disk_label) : 0);
        char salt[16];
        snprintf(salt, sizeof(salt), "%08x", h);
        gpt_guid_from_names(&disk_guid, "disk", disk_label ? disk_label : "", salt);
        for (size_t i = 0; i < n; i++) {
            char g[37];
            gpt_guid_format(&disk_guid, g);
            gpt_guid_from_names(&disk_guid, g, parts[i].label, parts[i].path);
        }
    }
    gpt_mbr_encode(sectors, head);
    gpt_header_encode(head + GPT_SECTOR, &disk_guid, 1, sectors - 1, GPT_FIRST_USABLE,
                      backup_entries_lba - 1, 2, ecrc);
    memcpy(head + 2 * GPT_SECTOR, entries, GPT_ENTRIES_BYTES);

    uint64_t foot_len = disk_size - part_end;
    foot = calloc(1, foot_len);
    if (!foot) {
        disk__err(err, errlen, "out of memory");
        r = -ENOMEM;
        goto done;
    }
    memcpy(foot + (foot_len - GPT_END_SIZE), entries, GPT_ENTRIES_BYTES);
    gpt_header_encode(foot + foot_len - GPT_SECTOR, &disk_guid, sectors - 1, 1,
                      GPT_FIRST_USABLE, backup_entries_lba - 1, backup_entries_lba, ecrc);

    if ((r = write_file(hdr_path, head, GPT_BEGIN_SIZE, err, errlen)) ||
        (r = write_file(ftr_path, foot, foot_len, err, errlen)))
        goto done;
    if (need_filler) {
        static const uint8_t zero[PART_ALIGN];
        if ((r = write_file(fil_path, zero, sizeof(zero), err, errlen)))
            goto done;
    }
    char *hp = spec_path(outdir, hdr_path), *fp = spec_path(outdir, ftr_path);
    char *zp = need_filler ? spec_path(outdir, fil_path) : NULL;
    names[nn++] = hp;
    names[nn++] = fp;
    names[nn++] = zp;
    if (!hp || !fp || (need_filler && !zp)) {
        disk__err(err, errlen, "cannot resolve header/footer paths");
        r = -ENOMEM;
        goto done;
    }
    comps[0].file_path = hp;
    for (size_t i = 1; i < nc; i++)
        if (!comps[i].file_path)
            comps[i].file_path = zp;
    comps[nc] = (ComponentDisk)COMPONENT_DISK__INIT;
    comps[nc].file_path = fp;
    comps[nc].offset = part_end;
    nc++;
    for (size_t i = 0; i < nc; i++)
        compp[i] = &comps[i];

    CompositeDisk m = COMPOSITE_DISK__INIT;
    m.version = 2;
    m.n_component_disks = nc;
    m.component_disks = compp;
    m.length = disk_size;
    size_t plen = composite_disk__get_packed_size(&m);
    spec = malloc(CDISK_MAGIC_LEN + plen);
    if (!spec) {
        r = -ENOMEM;
        goto done;
    }
    memcpy(spec, CDISK_MAGIC, CDISK_MAGIC_LEN);
    composite_disk__pack(&m, spec + CDISK_MAGIC_LEN);
    r = write_file(out, spec, CDISK_MAGIC_LEN + plen, err, errlen);
done:
    for (size_t i = 0; names && i < nn; i++)
        free(names[i]);
    free(names);
    free(spec);
    free(compp);
    free(comps);
    free(foot);
    free(head);
    free(entries);
    free(hdr_path);
    free(ftr_path);
    free(fil_path);
    return r;
}
