/* virtio-rng device model: deterministic bytes from the per-device seed. */
#include "devices/virtio/virtio_rng.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "vmm/prng.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RNG_QUEUE_SIZE 64

struct vrng {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    struct prng prng;
    struct vq_chain chain;
    uint8_t buf[4096];
};

static void rng_notify(struct virtio_dev *vd, unsigned q)
{
    struct vrng *r = (struct vrng *)vd;
    int pushed = 0;

    while (virtio_dev_pop(vd, q, &r->chain) > 0) {
        uint64_t want = r->chain.write_len, done = 0;
        if (want > VIRTIO_RNG_REQ_MAX)
            want = VIRTIO_RNG_REQ_MAX;
        while (done < want) {
            size_t n = want - done > sizeof(r->buf) ? sizeof(r->buf) : (size_t)(want - done);
            for (size_t i = 0; i < n; i += 8) {
                uint64_t v = prng_next(&r->prng);
                memcpy(r->buf + i, &v, n - i < 8 ? n - i : 8);
            }
            if (vq_chain_write(vd->env.mem, &r->chain, done, r->buf, n))
                break;
            done += n;
        }
        if (virtio_dev_push(vd, q, &r->chain, (uint32_t)done))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, q);
}

static void rng_reset(struct virtio_dev *vd)
{
    (void)vd;   /* the stream continues: determinism needs only the same seed and requests */
}

static const struct virtio_dev_ops rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max = RNG_QUEUE_SIZE,
    .config_size = 0,
    .queue_notify = rng_notify,
    .reset = rng_reset,
};

/* Snapshots: the core and the PRNG state (the byte stream continues where it was). */
static int rng_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vrng *r = state;

    (void)err;
    (void)errlen;
    virtio_dev_save(&r->vd, w);
    for (int i = 0; i < 4; i++)
        snapshot_put_u64(w, r->prng.s[i]);
    return 0;
}

static int rng_load(void *state, struct snapshot_reader *rd, char *err, size_t errlen)
{
    struct vrng *r = state;
    struct prng p;
    int rc = virtio_dev_load(&r->vd, rd, err, errlen);

    if (rc)
        return rc;
    for (int i = 0; i < 4; i++)
        p.s[i] = snapshot_get_u64(rd, "rng prng state");
    rc = snapshot_check(rd, err, errlen);
    if (rc)
        return rc;
    if (!(p.s[0] | p.s[1] | p.s[2] | p.s[3]))
        return snapshot_fail(rd, err, errlen, "rng prng state is all zero");
    r->prng = p;
    return 0;
}

static void rng_destroy(void *state)
{
    free(state);
}

static int rng_create(const char *args, const struct device_env *env, void **state,
                      char *err, size_t errlen)
{
    static const char *const allowed[] = { "id", NULL };
    struct vrng *r;
    int rc;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "virtio-rng: out of memory");
        return -ENOMEM;
    }
    prng_seed(&r->prng, env->seed);
    virtio_dev_init(&r->vd, &rng_ops, env, 0);
    *state = r;
    return 0;
}

const struct device_type virtio_rng_type = {
    .kind = "virtio-rng",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = rng_create,
    .ops = &virtio_mmio_ops,
    .destroy = rng_destroy,
    .save = rng_save,
    .load = rng_load,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_RNG,
};
