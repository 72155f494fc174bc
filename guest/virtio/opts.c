/* ring= mode= indirect= event_idx= qsize= from the cmdline. */
#include "virtio.h"

#include "../rt/rt.h"

/* 1 if key is present with one of the two words (sets *val to 0 or 1), 0 if absent,
 * -VIRTIO_EINVAL (with a message) for anything else. */
static int opt_choice(const char *key, const char *w0, const char *w1, int *val)
{
    char v[16];
    if (!rt_cmdline_get(key, v, sizeof v))
        return 0;
    if (!strcmp(v, w0))
        *val = 0;
    else if (!strcmp(v, w1))
        *val = 1;
    else {
        printf("virtio: bad %s=%s (want %s or %s)\n", key, v, w0, w1);
        return -VIRTIO_EINVAL;
    }
    return 1;
}

int virtio_opts_parse(struct virtio_opts *o)
{
    memset(o, 0, sizeof *o);
    if (opt_choice("ring", "split", "packed", &o->packed) < 0 ||
        opt_choice("mode", "poll", "irq", &o->irq) < 0 ||
        opt_choice("indirect", "0", "1", &o->indirect) < 0 ||
        opt_choice("event_idx", "0", "1", &o->event_idx) < 0 ||
        opt_choice("vtrace", "0", "1", &o->trace) < 0)
        return -VIRTIO_EINVAL;
    uint64_t qs = virtio_cmdline_u64("qsize", 0);
    if (qs > 32768 || (qs && !o->packed && (qs & (qs - 1)))) {
        printf("virtio: bad qsize=%llu (power of two up to 32768 for split)\n",
               (unsigned long long)qs);
        return -VIRTIO_EINVAL;
    }
    o->qsize = (unsigned)qs;
    return 0;
}
