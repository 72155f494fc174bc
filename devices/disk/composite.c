/* Composite disks: the magic "composite_disk\x1d" and a CompositeDisk protobuf listing
 * component images, their guest offsets and whether they may be written. We check the
 * spec more strictly than crosvm: sorted, no overlap, no gap, starts at 0, the declared
 * length covers the last component, every component long enough. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "composite.pb-c.h"
#include "devices/disk/cdisk_wire.h"
#include "devices/disk/composite.h"
#include "devices/disk/disk_internal.h"

struct comp {
    struct disk *disk;
    char *name;                 /* file_path from the spec */
    uint64_t offset, len, file_offset;
    int writable;               /* as opened */
    int spec_writable;          /* as the spec says */
    dev_t dev;                  /* the file, to spot one file listed twice */
    ino_t ino;
};

struct composite {
    size_t n;
    struct comp *c;
    uint64_t version;
};

static struct composite *cd(struct disk *d) { return d->priv; }

/* Index of the component holding byte `off` (off < d->size). */
static size_t comp_find(struct composite *c, uint64_t off)
{
    size_t lo = 0, hi = c->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->c[mid].offset <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

enum comp_op { OP_READ, OP_WRITE, OP_DISCARD, OP_ZEROES };

static int comp_io(struct disk *d, enum comp_op op, uint64_t off, void *buf, uint64_t len)
{
    struct composite *c = cd(d);
    int r = disk__check_range(d, off, len);
    if (r || !len)
        return r;
    size_t first = comp_find(c, off);
    if (op != OP_READ) {
        /* All or nothing: refuse before touching anything if any extent is read-only. */
        uint64_t o = off, left = len;
        for (size_t i = first; left; i++) {
            struct comp *p = &c->c[i];
            uint64_t n = p->offset + p->len - o;
            if (n > left)
                n = left;
            if (!p->writable)
                return -EROFS;
            o += n;
            left -= n;
        }
    }
    uint64_t o = off, left = len;
    char *b = buf;
    for (size_t i = first; left; i++) {
        struct comp *p = &c->c[i];
        uint64_t n = p->offset + p->len - o;
        if (n > left)
            n = left;
        uint64_t at = p->file_offset + (o - p->offset);
        switch (op) {
        case OP_READ: r = p->disk->ops->read(p->disk, at, b, (size_t)n); break;
        case OP_WRITE: r = p->disk->ops->write(p->disk, at, b, (size_t)n); break;
        case OP_DISCARD: r = p->disk->ops->discard(p->disk, at, n); break;
        case OP_ZEROES: r = p->disk->ops->write_zeroes(p->disk, at, n); break;
        }
        if (r)
            return r == -EINVAL ? -EIO : r;   /* a component too short is an I/O error here */
        if (b)
            b += n;
        o += n;
        left -= n;
    }
    return 0;
}

static int comp_read(struct disk *d, uint64_t off, void *buf, size_t len)
{
    return comp_io(d, OP_READ, off, buf, len);
}

static int comp_write(struct disk *d, uint64_t off, const void *buf, size_t len)
{
    if (d->read_only)
        return -EROFS;
    return comp_io(d, OP_WRITE, off, (void *)buf, len);
}

static int comp_discard(struct disk *d, uint64_t off, uint64_t len)
{
    if (d->read_only)
        return -EROFS;
    return comp_io(d, OP_DISCARD, off, NULL, len);
}

static int comp_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
    if (d->read_only)
        return -EROFS;
    return comp_io(d, OP_ZEROES, off, NULL, len);
}

static int comp_flush(struct disk *d)
{
    struct composite *c = cd(d);
    int ret = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->c[i].writable)
            continue;
        int r = c->c[i].disk->ops->flush(c->c[i].disk);
        if (r && !ret)
            ret = r;
    }
    return ret;
}

static void comp_free(struct composite *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->c[i].disk)
            disk_close(c->c[i].disk);
        free(c->c[i].name);
    }
    free(c->c);
}

static void comp_close(struct disk *d)
{
    comp_free(cd(d));
    free(d);
}

static const struct disk_ops composite_ops = {
    .format = "composite",
    .read = comp_read,
    .write = comp_write,
    .flush = comp_flush,
    .discard = comp_discard,
    .write_zeroes = comp_write_zeroes,
    .resize = NULL,
    .close = comp_close,
};

size_t disk_composite_count(struct disk *d)
{
    return d->ops == &composite_ops ? cd(d)->n : 0;
}

uint64_t disk_composite_version(struct disk *d)
{
    return d->ops == &composite_ops ? cd(d)->version : 0;
}

int disk_composite_component(struct disk *d, size_t i, struct cdisk_component_info *info)
{
    if (d->ops != &composite_ops || i >= cd(d)->n)
        return -EINVAL;
    struct comp *p = &cd(d)->c[i];
    info->path = p->name;
    info->offset = p->offset;
    info->length = p->len;
    info->file_offset = p->file_offset;
    info->writable = p->spec_writable;
    info->format = p->disk->ops->format;
    return 0;
}

/* Reads the spec bytes after the magic. */
static int read_spec(const char *path, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        disk__err(err, errlen, "cannot open composite image '%s': %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        disk__err(err, errlen, "cannot stat composite image '%s': %s", path, strerror(e));
        return -e;
    }
    if ((uint64_t)st.st_size < CDISK_MAGIC_LEN) {
        close(fd);
        disk__err(err, errlen, "composite image '%s' is shorter than its magic", path);
        return -EINVAL;
    }
    char magic[CDISK_MAGIC_LEN];
    int r = disk__pread_full(fd, magic, CDISK_MAGIC_LEN, 0);
    if (r || memcmp(magic, CDISK_MAGIC, CDISK_MAGIC_LEN) != 0) {
        close(fd);
        disk__err(err, errlen, "composite image '%s': bad magic (expected \"composite_disk\\x1d\")",
                  path);
        return -EINVAL;
    }
    uint64_t n = (uint64_t)st.st_size - CDISK_MAGIC_LEN;
    if (n > CDISK_SPEC_MAX) {
        close(fd);
        disk__err(err, errlen, "composite image '%s': spec is %llu bytes, limit %u", path,
                  (unsigned long long)n, CDISK_SPEC_MAX);
        return -EFBIG;
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    r = disk__pread_full(fd, buf, (size_t)n, CDISK_MAGIC_LEN);
    close(fd);
    if (r) {
        free(buf);
        disk__err(err, errlen, "cannot read composite image '%s': %s", path, strerror(-r));
        return r;
    }
    *out = buf;
    *outlen = (size_t)n;
    return 0;
}

/* Structural checks on the spec, before any component is opened. */
static int check_layout(const char *path, const CompositeDisk *m, char *err, size_t errlen)
{
    if (m->version < 1 || m->version > 2) {
        disk__err(err, errlen, "composite '%s': unsupported version %llu (expected 1 or 2)",
                  path, (unsigned long long)m->version);
        return -EINVAL;
    }
    if (m->n_component_disks == 0) {
        disk__err(err, errlen, "composite '%s': component list is empty", path);
        return -EINVAL;
    }
    for (size_t i = 0; i < m->n_component_disks; i++) {
        const ComponentDisk *c = m->component_disks[i];
        if (!c->file_path || !c->file_path[0]) {
            disk__err(err, errlen, "composite '%s': component %zu has an empty file_path", path, i);
            return -EINVAL;
        }
        if (c->read_write_capability != READ_WRITE_CAPABILITY__READ_ONLY &&
            c->read_write_capability != READ_WRITE_CAPABILITY__READ_WRITE) {
            disk__err(err, errlen, "composite '%s': component %zu '%s' has read_write_capability %d "
                      "(expected 0 or 1)", path, i, c->file_path, (int)c->read_write_capability);
            return -EINVAL;
        }
        if (i == 0 && c->offset != 0) {
            disk__err(err, errlen, "composite '%s': component 0 '%s' starts at offset %llu, "
                      "expected 0", path, c->file_path, (unsigned long long)c->offset);
            return -EINVAL;
        }
        if (i > 0) {
            const ComponentDisk *p = m->component_disks[i - 1];
            if (c->offset < p->offset) {
                disk__err(err, errlen, "composite '%s': component %zu '%s' offset %llu is below "
                          "component %zu '%s' offset %llu (offsets must be sorted)", path, i,
                          c->file_path, (unsigned long long)c->offset, i - 1, p->file_path,
                          (unsigned long long)p->offset);
                return -EINVAL;
            }
            if (c->offset == p->offset) {
                disk__err(err, errlen, "composite '%s': component %zu '%s' overlaps component %zu "
                          "'%s' (both at offset %llu)", path, i, c->file_path, i - 1,
                          p->file_path, (unsigned long long)c->offset);
                return -EINVAL;
            }
        }
    }
    const ComponentDisk *last = m->component_disks[m->n_component_disks - 1];
    if (m->length <= last->offset) {
        disk__err(err, errlen, "composite '%s': declared length %llu does not cover component "
                  "%zu '%s' at offset %llu", path, (unsigned long long)m->length,
                  m->n_component_disks - 1, last->file_path, (unsigned long long)last->offset);
        return -EINVAL;
    }
    return 0;
}

int cdisk_spec_check(const uint8_t *spec, size_t len, char *err, size_t errlen)
{
    char why[200];
    if (len > CDISK_SPEC_MAX) {
        disk__err(err, errlen, "spec is %zu bytes, limit %u", len, CDISK_SPEC_MAX);
        return -EFBIG;
    }
    int r = cdisk_wire_check(spec, len, CDISK_MAGIC_LEN, why, sizeof(why));
    if (r) {
        disk__err(err, errlen, "%s", why);
        return r;
    }
    CompositeDisk *m = composite_disk__unpack(NULL, len, spec);
    if (!m) {
        disk__err(err, errlen, "spec is not a valid CompositeDisk message");
        return -EINVAL;
    }
    r = check_layout("(memory)", m, err, errlen);
    composite_disk__free_unpacked(m, NULL);
    return r;
}

int disk_composite_open(const char *path, int read_only, const struct disk_open_ctx *ctx,
                        struct disk **out, char *err, size_t errlen)
{
    *out = NULL;
    uint8_t *spec = NULL;
    size_t speclen = 0;
    int r = read_spec(path, &spec, &speclen, err, errlen);
    if (r)
        return r;
    char why[200];
    r = cdisk_wire_check(spec, speclen, CDISK_MAGIC_LEN, why, sizeof(why));
    if (r) {
        disk__err(err, errlen, "composite '%s': %s", path, why);
        free(spec);
        return r;
    }
    CompositeDisk *m = composite_disk__unpack(NULL, speclen, spec);
    free(spec);
    if (!m) {
        disk__err(err, errlen, "composite '%s': spec is not a valid CompositeDisk message", path);
        return -EINVAL;
    }
    r = check_layout(path, m, err, errlen);
    if (r) {
        composite_disk__free_unpacked(m, NULL);
        return r;
    }

    struct disk *d = disk__alloc(&composite_ops, sizeof(struct composite));
    struct comp *cs = d ? calloc(m->n_component_disks, sizeof(*cs)) : NULL;
    if (!cs) {
        free(d);
        composite_disk__free_unpacked(m, NULL);
        disk__err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    struct composite *c = cd(d);
    c->c = cs;
    c->version = m->version;
    int any_writable = 0;
    for (size_t i = 0; i < m->n_component_disks; i++) {
        const ComponentDisk *s = m->component_disks[i];
        struct comp *p = &c->c[i];
        c->n = i + 1;
        p->name = strdup(s->file_path);
        p->offset = s->offset;
        p->file_offset = s->file_offset;
        p->len = (i + 1 < m->n_component_disks ? m->component_disks[i + 1]->offset : m->length)
                 - s->offset;
        p->spec_writable = s->read_write_capability == READ_WRITE_CAPABILITY__READ_WRITE;
        p->writable = !read_only && p->spec_writable;
        char full[4096];
        if (!p->name || disk__resolve_path(path, s->file_path, full, sizeof(full))) {
            disk__err(err, errlen, "composite '%s': component %zu path too long", path, i);
            r = -ENAMETOOLONG;
            goto fail;
        }
        r = disk_open_nested(full, !p->writable, ctx, &p->disk, why, sizeof(why));
        if (r == -ELOOP) {
            /* nesting/cycle errors already name the file where the chain broke */
            disk__err(err, errlen, "%s", why);
            goto fail;
        }
        if (r) {
            disk__err(err, errlen, "composite '%s': component %zu '%s': %s", path, i,
                      s->file_path, why);
            goto fail;
        }
        /* One file behind two components, one of them writable: a write through one
         * changes what the other reads (an acknowledged write would not read back; two
         * qcow2 instances of one file would corrupt it). Read-only repeats are fine
         * (crosvm pads with one zero-filler file many times). */
        struct stat st;
        if (stat(full, &st) < 0) {
            r = -errno;
            disk__err(err, errlen, "composite '%s': component %zu '%s': %s", path, i,
                      s->file_path, strerror(errno));
            goto fail;
        }
        p->dev = st.st_dev;
        p->ino = st.st_ino;
        for (size_t j = 0; j < i; j++) {
            const struct comp *q = &c->c[j];
            if (q->dev == p->dev && q->ino == p->ino && (q->writable || p->writable)) {
                disk__err(err, errlen, "composite '%s': components %zu '%s' and %zu '%s' are "
                          "the same file and one of them is writable", path, j, q->name, i,
                          s->file_path);
                r = -EINVAL;
                goto fail;
            }
        }
        uint64_t have = p->disk->size > p->file_offset ? p->disk->size - p->file_offset : 0;
        if (have < p->len) {
            if (i + 1 < m->n_component_disks)
                disk__err(err, errlen, "composite '%s': gap after component %zu '%s': it provides "
                          "%llu bytes from offset %llu but component %zu starts at %llu", path, i,
                          s->file_path, (unsigned long long)have, (unsigned long long)p->offset,
                          i + 1, (unsigned long long)(p->offset + p->len));
            else
                disk__err(err, errlen, "composite '%s': component %zu '%s' provides %llu bytes, "
                          "less than its extent of %llu (offset %llu to declared length %llu)",
                          path, i, s->file_path, (unsigned long long)have,
                          (unsigned long long)p->len, (unsigned long long)p->offset,
                          (unsigned long long)m->length);
            r = -EINVAL;
            goto fail;
        }
        any_writable |= p->writable;
    }
    d->size = m->length;
    d->read_only = read_only || !any_writable;
    composite_disk__free_unpacked(m, NULL);
    *out = d;
    return 0;
fail:
    comp_free(c);
    free(d);
    composite_disk__free_unpacked(m, NULL);
    return r;
}
