/* virtio-balloon device model: inflate/deflate, stats and free page reporting. */
#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BALLOON_QUEUE_SIZE 128
#define PAGE_SIZE (1ULL << VIRTIO_BALLOON_PAGE_SHIFT)

enum role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING };

const char *const virtio_balloon_stat_names[VIRTIO_BALLOON_S_NR] = {
    "swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
    "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
};

struct vballoon {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    uint32_t num_pages, actual;
    struct balloon_report rep;
    int stats_held;                     /* the driver's stats buffer waits for a request */
    uint16_t stats_id, stats_ndesc;
    unsigned stats_q;
    struct vq_chain chain;
};

/* Queue indexes count only the queues the negotiated features bring (§5.5.2). */
static enum role queue_role(const struct virtio_dev *vd, unsigned q)
{
    unsigned next = 2;

    if (q == 0)
        return ROLE_INFLATE;
    if (q == 1)
        return ROLE_DEFLATE;
    if (virtio_dev_has(vd, VIRTIO_BALLOON_F_STATS_VQ) && q == next++)
        return ROLE_STATS;
    if (virtio_dev_has(vd, VIRTIO_BALLOON_F_PAGE_REPORTING) && q == next)
        return ROLE_REPORTING;
    return ROLE_NONE;
}

static uint64_t ram_pages(const struct vballoon *b)
{
    return b->vd.env.mem->ram_size >> VIRTIO_BALLOON_PAGE_SHIFT;
}

/* One inflate or deflate buffer: an array of le32 page frame numbers. */
static void balloon_pfns(struct vballoon *b, int inflate)
{
    struct virtio_dev *vd = &b->vd;
    uint64_t n = b->chain.read_len / 4;
    uint32_t pfns[256];

    if (b->chain.read_len % 4)
        virtio_dev_log(vd, "virtio-balloon: %s buffer of %" PRIu64 " bytes is not a whole "
                       "number of 4-byte PFNs; the tail is ignored",
                       inflate ? "inflate" : "deflate", b->chain.read_len);
    if (n > VIRTIO_BALLOON_PFNS_MAX) {
        virtio_dev_log(vd, "virtio-balloon: %s buffer of %" PRIu64 " bytes holds more than %u "
                       "PFNs; only the first %u are taken", inflate ? "inflate" : "deflate",
                       b->chain.read_len, VIRTIO_BALLOON_PFNS_MAX, VIRTIO_BALLOON_PFNS_MAX);
        n = VIRTIO_BALLOON_PFNS_MAX;
    }
    for (uint64_t done = 0; done < n;) {
        uint64_t k = n - done > 256 ? 256 : n - done;
        if (vq_chain_read(vd->env.mem, &b->chain, done * 4, pfns, k * 4))
            return;
        for (uint64_t i = 0; i < k; i++) {
            uint64_t gpa = (uint64_t)pfns[i] << VIRTIO_BALLOON_PAGE_SHIFT;
            if (!guest_mem_valid(vd->env.mem, gpa, PAGE_SIZE)) {
                b->rep.bad_pfns++;
                virtio_dev_log(vd, "virtio-balloon: %s PFN 0x%x is outside guest RAM; "
                               "ignored", inflate ? "inflate" : "deflate", pfns[i]);
                continue;
            }
            if (inflate) {
                guest_mem_discard(vd->env.mem, gpa, PAGE_SIZE);
                b->rep.inflated_pages++;
            } else {
                /* The page comes back on its next touch: nothing to do but count. */
                b->rep.deflated_pages++;
            }
        }
        done += k;
    }
}

/* Free page reporting: each writable segment is a run of free guest pages. */
static void balloon_report_free(struct vballoon *b)
{
    struct virtio_dev *vd = &b->vd;

    for (unsigned i = 0; i < b->chain.nsegs; i++) {
        const struct vq_seg *s = &b->chain.segs[i];
        uint64_t start = (s->gpa + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
        uint64_t end = (s->gpa + s->len) & ~(PAGE_SIZE - 1);
        if (end <= start)
            continue;
        if (guest_mem_discard(vd->env.mem, start, end - start) == 0)
            b->rep.reported_pages += (end - start) >> VIRTIO_BALLOON_PAGE_SHIFT;
    }
}

/* The driver's stats buffer: entries {le16 tag, le64 val}; kept until the next request. */
static void balloon_stats_in(struct vballoon *b, unsigned q)
{
    struct virtio_dev *vd = &b->vd;
    uint8_t buf[VIRTIO_BALLOON_STATS_MAX * VIRTIO_BALLOON_STAT_SIZE];
    uint64_t len = b->chain.read_len;

    if (b->stats_held) {
        /* A second buffer while one is held: the driver broke the one-buffer protocol. */
        virtio_dev_log(vd, "virtio-balloon: a second stats buffer while one is pending; "
                       "the older one is returned");
        if (virtio_dev_push_id(vd, q, b->stats_id, b->stats_ndesc, 0))
            return;
        virtio_dev_notify_used(vd, q);
    }
    if (len % VIRTIO_BALLOON_STAT_SIZE)
        virtio_dev_log(vd, "virtio-balloon: stats buffer of %" PRIu64 " bytes is not a whole "
                       "number of 10-byte entries; the tail is ignored", len);
    if (len > sizeof(buf)) {
        virtio_dev_log(vd, "virtio-balloon: stats buffer of %" PRIu64 " bytes; only the "
                       "first %u entries are read", len, VIRTIO_BALLOON_STATS_MAX);
        len = sizeof(buf);
    }
    len -= len % VIRTIO_BALLOON_STAT_SIZE;
    if (len && !vq_chain_read(vd->env.mem, &b->chain, 0, buf, len)) {
        for (uint64_t off = 0; off < len; off += VIRTIO_BALLOON_STAT_SIZE) {
            uint16_t tag;
            uint64_t val;
            memcpy(&tag, buf + off, 2);
            memcpy(&val, buf + off + 2, 8);
            if (tag < VIRTIO_BALLOON_S_NR) {
                b->rep.stats[tag] = val;
                b->rep.stats_valid |= 1u << tag;
            }
        }
        b->rep.stats_updates++;
    }
    b->stats_held = 1;
    b->stats_id = b->chain.id;
    b->stats_ndesc = b->chain.ndesc;
    b->stats_q = q;
}

/* Asks the guest for fresh stats by returning the buffer it left with the device. */
static void balloon_stats_request(struct vballoon *b)
{
    if (!b->stats_held || !virtio_dev_live(&b->vd))
        return;
    b->stats_held = 0;
    if (virtio_dev_push_id(&b->vd, b->stats_q, b->stats_id, b->stats_ndesc, 0))
        return;
    virtio_dev_notify_used(&b->vd, b->stats_q);
}

static void balloon_notify(struct virtio_dev *vd, unsigned q)
{
    struct vballoon *b = (struct vballoon *)vd;
    enum role role = queue_role(vd, q);
    int pushed = 0;

    if (role == ROLE_NONE) {
        virtio_dev_log(vd, "virtio-balloon: notify on queue %u, which the negotiated "
                       "features do not have; ignored", q);
        return;
    }
    while (virtio_dev_pop(vd, q, &b->chain) > 0) {
        if (role == ROLE_STATS) {
            balloon_stats_in(b, q);
            continue;
        }
        if (role == ROLE_REPORTING)
            balloon_report_free(b);
        else
            balloon_pfns(b, role == ROLE_INFLATE);
        if (virtio_dev_push(vd, q, &b->chain, 0))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, q);
}

static void balloon_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    struct vballoon *b = (struct vballoon *)vd;
    uint8_t cfg[VIRTIO_BALLOON_CFG_SIZE];

    memcpy(cfg + VIRTIO_BALLOON_CFG_NUM_PAGES, &b->num_pages, 4);
    memcpy(cfg + VIRTIO_BALLOON_CFG_ACTUAL, &b->actual, 4);
    memcpy(buf, cfg + off, len);
}

static void balloon_config_write(struct virtio_dev *vd, uint32_t off, const void *buf,
                                 unsigned len)
{
    struct vballoon *b = (struct vballoon *)vd;
    uint8_t cfg[VIRTIO_BALLOON_CFG_SIZE];

    if (off < VIRTIO_BALLOON_CFG_ACTUAL) {
        virtio_dev_log(vd, "virtio-balloon: config write at 0x%x ignored (num_pages is the "
                       "device's)", off);
        return;
    }
    memcpy(cfg + VIRTIO_BALLOON_CFG_ACTUAL, &b->actual, 4);
    memcpy(cfg + off, buf, len);
    memcpy(&b->actual, cfg + VIRTIO_BALLOON_CFG_ACTUAL, 4);
    if (b->actual > ram_pages(b))
        virtio_dev_log(vd, "virtio-balloon: actual=%u pages is more than guest RAM (%" PRIu64
                       " pages); reported as RAM size", b->actual, ram_pages(b));
}

static void balloon_reset(struct virtio_dev *vd)
{
    struct vballoon *b = (struct vballoon *)vd;

    /* num_pages is the host's wish and survives; the driver's state does not. */
    b->actual = 0;
    b->stats_held = 0;
}

static void balloon_driver_ok(struct virtio_dev *vd)
{
    (void)vd;
}

static const struct virtio_dev_ops balloon_ops = {
    .device_id = VIRTIO_ID_BALLOON,
    .num_queues = 4,
    .queue_max = BALLOON_QUEUE_SIZE,
    .config_size = VIRTIO_BALLOON_CFG_SIZE,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .queue_notify = balloon_notify,
    .driver_ok = balloon_driver_ok,
    .reset = balloon_reset,
};

static int balloon_host_input(void *state, const uint8_t *data, size_t len, char *err,
                              size_t errlen)
{
    struct vballoon *b = state;
    uint64_t target;

    if (len == 1 && data[0] == VIRTIO_BALLOON_HOST_STATS) {
        balloon_stats_request(b);
        return 0;
    }
    if (len != VIRTIO_BALLOON_HOST_TARGET_LEN || data[0] != VIRTIO_BALLOON_HOST_TARGET) {
        snprintf(err, errlen, "virtio-balloon: a %zu-byte host message is neither a target "
                 "nor a stats request", len);
        return -EINVAL;
    }
    memcpy(&target, data + 1, 8);
    if (target >> VIRTIO_BALLOON_PAGE_SHIFT > ram_pages(b)) {
        snprintf(err, errlen, "balloon size %" PRIu64 " bytes is more than guest RAM (%"
                 PRIu64 " bytes)", target, b->vd.env.mem->ram_size);
        return -EINVAL;
    }
    b->num_pages = (uint32_t)(target >> VIRTIO_BALLOON_PAGE_SHIFT);
    virtio_dev_config_changed(&b->vd);
    return 0;
}

static int balloon_query(void *state, struct balloon_report *out)
{
    struct vballoon *b = state;
    uint64_t actual = b->actual < ram_pages(b) ? b->actual : ram_pages(b);

    *out = b->rep;
    out->target_bytes = (uint64_t)b->num_pages << VIRTIO_BALLOON_PAGE_SHIFT;
    out->actual_bytes = actual << VIRTIO_BALLOON_PAGE_SHIFT;
    return 0;
}

/* Snapshots: the core, target and actual, the held stats buffer and the report. */
static int balloon_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vballoon *b = state;

    (void)err;
    (void)errlen;
    virtio_dev_save(&b->vd, w);
    snapshot_put_u32(w, b->num_pages);
    snapshot_put_u32(w, b->actual);
    snapshot_put_u8(w, (uint8_t)b->stats_held);
    snapshot_put_u16(w, b->stats_id);
    snapshot_put_u16(w, b->stats_ndesc);
    snapshot_put_u32(w, b->stats_q);
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        snapshot_put_u64(w, b->rep.stats[i]);
    snapshot_put_u32(w, b->rep.stats_valid);
    snapshot_put_u64(w, b->rep.stats_updates);
    snapshot_put_u64(w, b->rep.inflated_pages);
    snapshot_put_u64(w, b->rep.deflated_pages);
    snapshot_put_u64(w, b->rep.reported_pages);
    snapshot_put_u64(w, b->rep.bad_pfns);
    return 0;
}

static int balloon_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct vballoon *b = state;
    int rc = virtio_dev_load(&b->vd, r, err, errlen);

    if (rc)
        return rc;
    uint32_t num_pages = snapshot_get_u32(r, "balloon num_pages");
    b->actual = snapshot_get_u32(r, "balloon actual");
    b->stats_held = snapshot_get_u8(r, "balloon stats held") != 0;
    b->stats_id = snapshot_get_u16(r, "balloon stats buffer id");
    b->stats_ndesc = snapshot_get_u16(r, "balloon stats buffer slots");
    b->stats_q = snapshot_get_u32(r, "balloon stats queue");
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        b->rep.stats[i] = snapshot_get_u64(r, "balloon stat");
    b->rep.stats_valid = snapshot_get_u32(r, "balloon stats valid");
    b->rep.stats_updates = snapshot_get_u64(r, "balloon stats updates");
    b->rep.inflated_pages = snapshot_get_u64(r, "balloon inflated pages");
    b->rep.deflated_pages = snapshot_get_u64(r, "balloon deflated pages");
    b->rep.reported_pages = snapshot_get_u64(r, "balloon reported pages");
    b->rep.bad_pfns = snapshot_get_u64(r, "balloon bad PFNs");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (num_pages > ram_pages(b))
        return snapshot_fail(r, err, errlen, "balloon num_pages %u is more than guest RAM "
                             "(%" PRIu64 " pages)", num_pages, ram_pages(b));
    if (b->stats_held && (b->stats_q >= VIRTIO_MAX_QUEUES ||
                          b->stats_id >= b->vd.vqs[b->stats_q].num))
        return snapshot_fail(r, err, errlen, "balloon stats buffer %u on queue %u is not a "
                             "buffer of that queue", b->stats_id, b->stats_q);
    b->num_pages = num_pages;
    return 0;
}

static void balloon_destroy(void *state)
{
    free(state);
}

static int balloon_create(const char *args, const struct device_env *env, void **state,
                          char *err, size_t errlen)
{
    static const char *const allowed[] = { "deflate_on_oom", "id", NULL };
    uint64_t features = VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) |
                        VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING);
    char v[8];
    struct vballoon *b;
    int rc;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    rc = device_arg_get(args, "deflate_on_oom", v, sizeof(v));
    if (rc < 0 || (rc > 0 && strcmp(v, "on") && strcmp(v, "off"))) {
        snprintf(err, errlen, "virtio-balloon: deflate_on_oom=%s is neither on nor off",
                 rc < 0 ? "(too long)" : v);
        return -EINVAL;
    }
    /* Off unless asked for, as QEMU's deflate-on-oom and Firecracker's deflate_on_oom: a
     * Linux driver that takes it keeps ballooned pages in MemTotal. */
    if (rc > 0 && !strcmp(v, "on"))
        features |= VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "virtio-balloon: out of memory");
        return -ENOMEM;
    }
    virtio_dev_init(&b->vd, &balloon_ops, env, features);
    *state = b;
    return 0;
}

const struct device_type virtio_balloon_type = {
    .kind = "virtio-balloon",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = balloon_create,
    .ops = &virtio_mmio_ops,
    .destroy = balloon_destroy,
    .host_input = balloon_host_input,
    .save = balloon_save,
    .load = balloon_load,
    .balloon_query = balloon_query,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_BALLOON,
};
