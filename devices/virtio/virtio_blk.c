/* virtio-blk device model: request parsing and the disk ops calls behind it. */
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/size_arg.h"
#include "devices/virtio/virtio.h"
#include "devices/disk/disk.h"
#include "vmm/snapshot.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLK_QUEUE_SIZE 256
#define BOUNCE_SIZE (64u * 1024)
#define MAX_SECTORS_PER_RANGE 0x400000u     /* 2 GiB per discard / write-zeroes range */

/* A request whose data has moved but whose completion waits for virtual disk latency. */
struct blk_pending {
    uint64_t due;
    uint32_t len;
    uint16_t id, ndesc;
};

struct vblk {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    struct disk *disk;
    /* Virtual latency (disk_latency_ns, e.g. a fault plan): completions are deferred on
     * env.clock, in order, never more than a queue's worth. */
    uint64_t req_latency, last_due;
    struct blk_pending pend[BLK_QUEUE_SIZE];
    unsigned phead, pcount;
    int64_t timer;                      /* armed timer id, 0 if none */
    int ro;
    int in_memory;                      /* mem=SIZE: contents go into snapshots */
    char id[VIRTIO_BLK_ID_BYTES];
    uint8_t config[VIRTIO_BLK_CFG_SIZE];
    struct vq_chain chain;
    uint8_t bounce[BOUNCE_SIZE] __attribute__((aligned(64)));
};

static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }

static void blk_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    struct vblk *b = (struct vblk *)vd;
    memcpy(buf, b->config + off, len);
}

/* Moves `len` bytes between the disk at `pos` and the chain, through the bounce buffer.
 * `chain_off` is the offset in the readable (write to disk) or writable (read) part. */
static int blk_transfer(struct vblk *b, struct vq_chain *c, int to_disk, uint64_t pos,
                        uint64_t chain_off, uint64_t len)
{
    while (len) {
        size_t n = len > BOUNCE_SIZE ? BOUNCE_SIZE : (size_t)len;
        int r;
        if (to_disk) {
            if (vq_chain_read(b->vd.env.mem, c, chain_off, b->bounce, n))
                return -EIO;
            r = disk_write(b->disk, pos, b->bounce, n);
            b->req_latency += disk_latency_ns(b->disk);
        } else {
            r = disk_read(b->disk, pos, b->bounce, n);
            b->req_latency += disk_latency_ns(b->disk);
            if (!r)
                r = vq_chain_write(b->vd.env.mem, c, chain_off, b->bounce, n);
        }
        if (r)
            return -EIO;
        pos += n;
        chain_off += n;
        len -= n;
    }
    return 0;
}

static int in_range(const struct vblk *b, uint64_t sector, uint64_t bytes)
{
    uint64_t cap = b->disk->size / VIRTIO_BLK_SECTOR_SIZE;
    uint64_t n = bytes / VIRTIO_BLK_SECTOR_SIZE;
    return sector <= cap && n <= cap - sector;
}

/* DISCARD / WRITE_ZEROES: an array of {le64 sector, le32 num_sectors, le32 flags}. */
static uint8_t blk_ranges(struct vblk *b, struct vq_chain *c, uint32_t type)
{
    uint64_t bytes = c->read_len - 16;
    struct { uint64_t sector; uint32_t num, flags; } r;

    if (b->ro)
        return VIRTIO_BLK_S_IOERR;
    if (bytes == 0 || bytes % sizeof(r) || bytes / sizeof(r) > VIRTIO_BLK_MAX_DISCARD_SEG)
        return VIRTIO_BLK_S_IOERR;
    for (uint64_t off = 0; off < bytes; off += sizeof(r)) {
        if (vq_chain_read(b->vd.env.mem, c, 16 + off, &r, sizeof(r)))
            return VIRTIO_BLK_S_IOERR;
        uint64_t sector = le64toh(r.sector);
        uint32_t num = le32toh(r.num), flags = le32toh(r.flags);
        /* §5.2.6.2: discard takes no flags; write zeroes only UNMAP. */
        if (type == VIRTIO_BLK_T_DISCARD ? flags != 0 : (flags & ~VIRTIO_BLK_WZ_F_UNMAP))
            return VIRTIO_BLK_S_UNSUPP;
        if (num > MAX_SECTORS_PER_RANGE ||
            !in_range(b, sector, (uint64_t)num * VIRTIO_BLK_SECTOR_SIZE))
            return VIRTIO_BLK_S_IOERR;
        int (*op)(struct disk *, uint64_t, uint64_t) =
            type == VIRTIO_BLK_T_DISCARD ? b->disk->ops->discard : b->disk->ops->write_zeroes;
        if (!op)
            return VIRTIO_BLK_S_UNSUPP;
        int rc = op(b->disk, sector * VIRTIO_BLK_SECTOR_SIZE,
                    (uint64_t)num * VIRTIO_BLK_SECTOR_SIZE);
        b->req_latency += disk_latency_ns(b->disk);
        if (rc)
            return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

/* Serves one request; returns the used length, or -1 when the chain cannot even carry a
 * status byte (the device is then put in NEEDS_RESET). */
static int64_t blk_request(struct vblk *b, struct vq_chain *c)
{
    struct { uint32_t type, reserved; uint64_t sector; } hdr;
    uint8_t status = VIRTIO_BLK_S_OK;
    uint64_t used = 1;

    if (c->read_len < sizeof(hdr) || c->write_len < 1) {
        virtio_dev_fail(&b->vd, "virtio-blk: request %u lacks a header or status byte "
                        "(%llu readable, %llu writable bytes)", c->id,
                        (unsigned long long)c->read_len, (unsigned long long)c->write_len);
        return -1;
    }
    if (vq_chain_read(b->vd.env.mem, c, 0, &hdr, sizeof(hdr)))
        return -1;
    uint32_t type = le32toh(hdr.type);
    uint64_t sector = le64toh(hdr.sector);
    uint64_t in_len = c->write_len - 1, out_len = c->read_len - sizeof(hdr);
    const uint64_t max_len = (uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX;

    switch (type) {
    case VIRTIO_BLK_T_IN:
        if (in_len % VIRTIO_BLK_SECTOR_SIZE || in_len > max_len || !in_range(b, sector, in_len) ||
            blk_transfer(b, c, 0, sector * VIRTIO_BLK_SECTOR_SIZE, 0, in_len))
            status = VIRTIO_BLK_S_IOERR;
        else
            used += in_len;
        break;
    case VIRTIO_BLK_T_OUT:
        if (b->ro || out_len % VIRTIO_BLK_SECTOR_SIZE || out_len > max_len ||
            !in_range(b, sector, out_len) ||
            blk_transfer(b, c, 1, sector * VIRTIO_BLK_SECTOR_SIZE, sizeof(hdr), out_len))
            status = VIRTIO_BLK_S_IOERR;
        break;
    case VIRTIO_BLK_T_FLUSH:
        if (disk_flush(b->disk))
            status = VIRTIO_BLK_S_IOERR;
        b->req_latency += disk_latency_ns(b->disk);
        break;
    case VIRTIO_BLK_T_GET_ID: {
        uint64_t n = in_len < VIRTIO_BLK_ID_BYTES ? in_len : VIRTIO_BLK_ID_BYTES;
        if (vq_chain_write(b->vd.env.mem, c, 0, b->id, n))
            status = VIRTIO_BLK_S_IOERR;
        else
            used += n;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        status = blk_ranges(b, c, type);
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    if (vq_chain_write(b->vd.env.mem, c, in_len, &status, 1))
        return -1;
    return (int64_t)used;
}

static void blk_timer(void *arg);

static int blk_can_defer(const struct vblk *b)
{
    const struct clock *c = b->vd.env.clock;
    return c && c->now_ns && c->schedule;
}

static void blk_drop_pending(struct vblk *b)
{
    const struct clock *c = b->vd.env.clock;

    if (b->timer && c && c->cancel)
        c->cancel(c->opaque, b->timer);
    b->timer = 0;
    b->phead = b->pcount = 0;
    b->last_due = 0;
}

/* Pushes the deferred completions due by `upto`, in order. 1 if any was pushed, -1 if the
 * device failed (pending list dropped). */
static int blk_complete(struct vblk *b, uint64_t upto)
{
    int pushed = 0;

    while (b->pcount && b->pend[b->phead].due <= upto) {
        struct blk_pending p = b->pend[b->phead];
        b->phead = (b->phead + 1) % BLK_QUEUE_SIZE;
        b->pcount--;
        if (virtio_dev_push_id(&b->vd, 0, p.id, p.ndesc, p.len)) {
            blk_drop_pending(b);
            return -1;
        }
        pushed = 1;
    }
    return pushed;
}

/* Arms the timer for the oldest pending completion. 0, or -1 if the clock refused. */
static int blk_arm(struct vblk *b)
{
    const struct clock *c = b->vd.env.clock;

    if (b->timer || !b->pcount)
        return 0;
    int64_t id = c->schedule(c->opaque, b->pend[b->phead].due, blk_timer, b);
    if (id <= 0) {
        virtio_dev_log(&b->vd, "virtio-blk: cannot schedule a completion (%lld): "
                       "completing at once", (long long)id);
        return -1;
    }
    b->timer = id;
    return 0;
}

/* Serves every available request of queue q; completions are immediate unless the disk
 * charged virtual latency (or earlier completions are still waiting, to keep order). */
static void blk_process(struct vblk *b, unsigned q)
{
    struct virtio_dev *vd = &b->vd;
    int pushed = 0;

    while (b->pcount < BLK_QUEUE_SIZE && virtio_dev_pop(vd, q, &b->chain) > 0) {
        b->req_latency = 0;
        int64_t used = blk_request(b, &b->chain);
        if (used < 0)
            break;
        if ((b->req_latency || b->pcount) && blk_can_defer(b)) {
            uint64_t now = clock_now_ns(vd->env.clock);
            uint64_t due = (b->last_due > now ? b->last_due : now) + b->req_latency;
            b->last_due = due;
            b->pend[(b->phead + b->pcount) % BLK_QUEUE_SIZE] =
                (struct blk_pending){ due, (uint32_t)used, b->chain.id, b->chain.ndesc };
            b->pcount++;
            if (blk_arm(b) == 0)
                continue;
            int r = blk_complete(b, UINT64_MAX);
            if (r < 0)
                return;
            pushed |= r;
            continue;
        }
        if (virtio_dev_push(vd, q, &b->chain, (uint32_t)used))
            break;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, q);
}

static void blk_timer(void *arg)
{
    struct vblk *b = arg;
    struct virtio_dev *vd = &b->vd;

    b->timer = 0;
    if (!virtio_dev_live(vd) || !vd->vqs[0].ready) {
        blk_drop_pending(b);
        return;
    }
    int r = blk_complete(b, clock_now_ns(vd->env.clock));
    if (r < 0)
        return;
    if (r)
        virtio_dev_notify_used(vd, 0);
    if (blk_arm(b) && blk_complete(b, UINT64_MAX) > 0)
        virtio_dev_notify_used(vd, 0);
    /* Requests held back while the pending list was full. */
    blk_process(b, 0);
}

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
    blk_process((struct vblk *)vd, q);
}

static void blk_reset(struct virtio_dev *vd)
{
    /* Deferred completions belong to rings the driver has just abandoned. */
    blk_drop_pending((struct vblk *)vd);
}

static void blk_queue_reset(struct virtio_dev *vd, unsigned q)
{
    (void)q;
    blk_drop_pending((struct vblk *)vd);
}

static const struct virtio_dev_ops blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .queue_max = BLK_QUEUE_SIZE,
    .config_size = VIRTIO_BLK_CFG_SIZE,
    .config_read = blk_config_read,
    .queue_notify = blk_notify,
    .reset = blk_reset,
    .queue_reset = blk_queue_reset,
};

static void blk_build_config(struct vblk *b)
{
    uint64_t cap = htole64(b->disk->size / VIRTIO_BLK_SECTOR_SIZE);
    uint16_t nq = htole16(1);

    memset(b->config, 0, sizeof(b->config));
    memcpy(b->config + VIRTIO_BLK_CFG_CAPACITY, &cap, 8);
    put32(b->config + VIRTIO_BLK_CFG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX);
    put32(b->config + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
    put32(b->config + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_SIZE);
    memcpy(b->config + VIRTIO_BLK_CFG_NUM_QUEUES, &nq, 2);
    put32(b->config + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, MAX_SECTORS_PER_RANGE);
    put32(b->config + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
    put32(b->config + VIRTIO_BLK_CFG_DISCARD_ALIGNMENT, 1);
    put32(b->config + VIRTIO_BLK_CFG_MAX_WZ_SECTORS, MAX_SECTORS_PER_RANGE);
    put32(b->config + VIRTIO_BLK_CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
    b->config[VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;
}

/* Control socket: grow or shrink the disk, then tell the driver (config change). */
static int blk_resize(void *state, uint64_t new_size, char *err, size_t errlen)
{
    struct vblk *b = state;
    int rc;

    if (new_size == 0 || new_size % VIRTIO_BLK_SECTOR_SIZE) {
        snprintf(err, errlen, "virtio-blk: size %llu is not a non-zero multiple of 512",
                 (unsigned long long)new_size);
        return -EINVAL;
    }
    rc = disk_resize(b->disk, new_size);
    if (rc) {
        snprintf(err, errlen, "virtio-blk: resize to %llu bytes: %s",
                 (unsigned long long)new_size, strerror(-rc));
        return rc;
    }
    blk_build_config(b);
    virtio_dev_config_changed(&b->vd);
    return 0;
}

/* Control socket: put a fault plan (devices/disk/fault.c) in front of the disk. */
static int blk_inject_fault(void *state, const char *plan, char *err, size_t errlen)
{
    struct vblk *b = state;
    struct disk *wrapped;
    int rc = disk_fault_wrap(b->disk, plan, &wrapped, err, errlen);

    if (rc)
        return rc;
    b->disk = wrapped;
    return 0;
}

/* Snapshots: the core, the disk size, and for mem= disks their non-zero 4 KiB blocks. A
 * file-backed disk is not copied: the file must be unchanged when the snapshot is restored
 * (as with crosvm). Deferred completions only exist under a fault plan, which snapshots
 * refuse (the plan's state is not saved). */
#define BLK_SNAP_BLOCK 4096u

static int blk_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vblk *b = state;
    uint8_t buf[BLK_SNAP_BLOCK];
    static const uint8_t zero[BLK_SNAP_BLOCK];

    if (b->disk->ops->latency_ns || b->pcount) {
        snprintf(err, errlen, "virtio-blk: a disk with a fault plan cannot be snapshotted");
        return -ENOTSUP;
    }
    virtio_dev_save(&b->vd, w);
    snapshot_put_u64(w, b->disk->size);
    snapshot_put_u8(w, (uint8_t)b->in_memory);
    if (!b->in_memory)
        return 0;
    for (uint64_t off = 0; off < b->disk->size; off += BLK_SNAP_BLOCK) {
        size_t n = b->disk->size - off < BLK_SNAP_BLOCK ? (size_t)(b->disk->size - off)
                                                        : BLK_SNAP_BLOCK;
        if (disk_read(b->disk, off, buf, n)) {
            snprintf(err, errlen, "virtio-blk: reading the in-memory disk at %llu failed",
                     (unsigned long long)off);
            return -EIO;
        }
        if (!memcmp(buf, zero, n))
            continue;
        snapshot_put_u64(w, off);
        snapshot_put_bytes(w, buf, n);
    }
    snapshot_put_u64(w, UINT64_MAX);        /* end of blocks */
    return 0;
}

static int blk_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct vblk *b = state;
    int rc = virtio_dev_load(&b->vd, r, err, errlen);

    if (rc)
        return rc;
    uint64_t size = snapshot_get_u64(r, "virtio-blk disk size");
    uint8_t in_memory = snapshot_get_u8(r, "virtio-blk in-memory flag");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (in_memory != b->in_memory)
        return snapshot_fail(r, err, errlen, "virtio-blk in-memory flag %u, this disk's is %d",
                             in_memory, b->in_memory);
    if (size != b->disk->size) {
        if (!b->in_memory)
            return snapshot_fail(r, err, errlen, "virtio-blk disk size %llu, the file now has "
                                 "%llu bytes: the disk changed since the snapshot",
                                 (unsigned long long)size, (unsigned long long)b->disk->size);
        if (size == 0 || size % VIRTIO_BLK_SECTOR_SIZE || size > (1ULL << 40) ||
            disk_resize(b->disk, size))
            return snapshot_fail(r, err, errlen, "virtio-blk disk size %llu cannot be restored",
                                 (unsigned long long)size);
        blk_build_config(b);
    }
    if (!b->in_memory)
        return 0;
    uint64_t prev = 0;
    int first = 1;
    for (;;) {
        uint64_t off = snapshot_get_u64(r, "virtio-blk block offset");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (off == UINT64_MAX)
            break;
        if (off % BLK_SNAP_BLOCK || off >= size || (!first && off <= prev))
            return snapshot_fail(r, err, errlen, "virtio-blk block offset %llu is not a 4 KiB "
                                 "block of the %llu-byte disk in ascending order",
                                 (unsigned long long)off, (unsigned long long)size);
        size_t n = size - off < BLK_SNAP_BLOCK ? (size_t)(size - off) : BLK_SNAP_BLOCK;
        const void *p = snapshot_get_ptr(r, n, "virtio-blk block data");
        if ((rc = snapshot_check(r, err, errlen)))
            return rc;
        if (disk_write(b->disk, off, p, n))
            return snapshot_fail(r, err, errlen, "virtio-blk writing block %llu failed",
                                 (unsigned long long)off);
        prev = off;
        first = 0;
    }
    return 0;
}

static void blk_destroy(void *state)
{
    struct vblk *b = state;

    if (!b)
        return;
    blk_drop_pending(b);
    if (b->disk)
        disk_close(b->disk);
    free(b);
}

static int blk_create(const char *args, const struct device_env *env, void **state,
                      char *err, size_t errlen)
{
    static const char *const allowed[] = { "path", "mem", "ro", "id", NULL };
    char path[DEVICE_ARGS_MAX], mem[64], id[64];
    int has_path, has_mem, has_id, rc;
    struct vblk *b;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    has_path = device_arg_get(args, "path", path, sizeof(path));
    has_mem = device_arg_get(args, "mem", mem, sizeof(mem));
    has_id = device_arg_get(args, "id", id, sizeof(id));
    if (has_path < 0 || has_mem < 0 || has_id < 0 || (has_id && strlen(id) > VIRTIO_BLK_ID_BYTES)) {
        snprintf(err, errlen, "virtio-blk: %s is too long (id: at most %d bytes)",
                 has_path < 0 ? "path" : has_mem < 0 ? "mem" : "id", VIRTIO_BLK_ID_BYTES);
        return -EINVAL;
    }
    if (has_path == has_mem) {
        snprintf(err, errlen, "virtio-blk: exactly one of path=FILE or mem=SIZE is required");
        return -EINVAL;
    }
    /* Aligned so the bounce buffer copies run at full speed. */
    if (posix_memalign((void **)&b, 64, sizeof(*b)))
        b = NULL;
    if (b)
        memset(b, 0, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "virtio-blk: out of memory");
        return -ENOMEM;
    }
    b->ro = device_arg_flag(args, "ro");
    if (has_path) {
        rc = env->open_disk ? env->open_disk(env->open_disk_opaque, path, b->ro, &b->disk,
                                             err, errlen)
                            : disk_open(path, b->ro, &b->disk, err, errlen);
    } else {
        uint64_t size;
        if (virtio_parse_size(mem, &size) || size == 0 || size % VIRTIO_BLK_SECTOR_SIZE) {
            snprintf(err, errlen, "virtio-blk: mem=%s is not a non-zero multiple of 512 bytes",
                     mem);
            free(b);
            return -EINVAL;
        }
        rc = disk_open_mem(size, &b->disk);
        b->in_memory = 1;
        if (rc)
            snprintf(err, errlen, "virtio-blk: mem=%s: cannot allocate", mem);
    }
    if (rc) {
        free(b);
        return rc;
    }
    if (b->disk->read_only)
        b->ro = 1;
    if (has_id)
        memcpy(b->id, id, strlen(id));      /* zero-padded, not terminated at 20 */
    blk_build_config(b);
    uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                        VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                        VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
    if (b->ro)
        features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
    virtio_dev_init(&b->vd, &blk_ops, env, features);
    *state = b;
    return 0;
}

const struct device_type virtio_blk_type = {
    .kind = "virtio-blk",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = blk_create,
    .ops = &virtio_mmio_ops,
    .destroy = blk_destroy,
    .resize = blk_resize,
    .inject_fault = blk_inject_fault,
    .save = blk_save,
    .load = blk_load,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_BLOCK,
};
