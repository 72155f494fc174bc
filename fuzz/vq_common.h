/* Shared body of the split and packed virtqueue fuzz targets (fuzz_split_vq.c,
 * fuzz_packed_vq.c): the device side of one virtqueue (devices/virtio/virtqueue.h) driven
 * directly, with no device model, so each input runs in microseconds.
 *
 * Input: [flags][size][nops][nops op bytes][guest RAM image...]
 *   flags bit 0: EVENT_IDX, bit 1: INDIRECT_DESC
 *   size: queue size (split: 1 << (size % 9); packed: size % 256 + 1)
 *   ops: low 3 bits the operation, high 5 bits a parameter (see run_ops)
 *   the rest is copied to guest RAM at gpa 0 (rings laid out from gpa 0, see layout()).
 * Guest RAM is an exact-size global array, so a host access past its end is an ASan report.
 *
 * Invariants (abort() on violation):
 *   - every popped segment lies inside guest RAM; readable segments precede writable ones;
 *     read_len/write_len are the sums; 1 <= nsegs <= VQ_MAX_SEGS; 1 <= ndesc <= num;
 *     split ids are descriptor indices (< num);
 *   - a failed pop explains itself in vq->err;
 *   - with nothing changed by the driver, at most `num` chains are popped (no lap twice);
 *   - pushes on an enabled queue never fail (its areas were validated by vq_enable);
 *   - the device writes guest RAM only in its own areas (split: used ring; packed:
 *     descriptor ring and device event suppression area), checked on every write by a
 *     guest_mem write tap (reads are not tapped, so they keep guest_mem's inline path). */
#ifndef VMLAB_FUZZ_VQ_COMMON_H
#define VMLAB_FUZZ_VQ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_spec.h"
#include "devices/virtio/virtqueue.h"

#define VQF_RAM_SIZE 8192u

struct vqf {
    struct guest_mem mem;
    uint8_t *ram;
    struct virtqueue vq;
    int packed, event_idx, indirect;
    int driver_writing;         /* 1 while the fuzzer itself writes guest RAM */
    uint64_t wlo[2], whi[2];    /* device-writable areas [wlo, whi) */
};

static void vqf_tap(void *opaque, enum guest_mem_dir dir, uint64_t gpa, const void *data,
                    size_t len)
{
    struct vqf *f = opaque;

    (void)data;
    if (dir != GUEST_MEM_WRITE || f->driver_writing)
        return;
    for (int i = 0; i < 2; i++)
        if (gpa >= f->wlo[i] && gpa + len <= f->whi[i])
            return;
    abort();    /* the device wrote guest RAM outside its rings */
}

static void vqf_layout(struct vqf *f)
{
    struct virtqueue *vq = &f->vq;
    uint64_t n = vq->num;

    vq->desc = 0;
    if (f->packed) {
        vq->driver = 16 * n;
        vq->device = 16 * n + VIRTQ_EVENT_SUPPRESS_SIZE;
        f->wlo[0] = vq->desc;
        f->whi[0] = vq->desc + 16 * n;
        f->wlo[1] = vq->device;
        f->whi[1] = vq->device + VIRTQ_EVENT_SUPPRESS_SIZE;
    } else {
        vq->driver = 16 * n;
        vq->device = (vq->driver + VIRTQ_AVAIL_SIZE(n) + 3) & ~3ull;
        /* VIRTQ_USED_SIZE covers flags, idx, the ring and avail_event. */
        f->wlo[0] = f->wlo[1] = vq->device;
        f->whi[0] = f->whi[1] = vq->device + VIRTQ_USED_SIZE(n);
    }
}

static int vqf_enable(struct vqf *f, uint16_t num)
{
    vq_reset(&f->vq);
    f->vq.num = num;
    vqf_layout(f);
    int r = vq_enable(&f->vq, &f->mem, f->packed, f->event_idx, f->indirect);
    if (r == 0 && !f->vq.ready)
        abort();
    if (r < 0 && (f->vq.ready || !f->vq.err[0]))
        abort();    /* a refusal must leave the queue stopped and say why */
    return r;
}

static void vqf_check_chain(struct vqf *f, const struct vq_chain *c)
{
    uint64_t rl = 0, wl = 0;
    static uint8_t scratch[VQF_RAM_SIZE];

    if (c->nsegs < 1 || c->nsegs > VQ_MAX_SEGS || c->nread > c->nsegs)
        abort();
    if (c->ndesc < 1 || c->ndesc > f->vq.num)
        abort();
    if (!f->packed && c->id >= f->vq.num)
        abort();
    for (unsigned i = 0; i < c->nsegs; i++) {
        const struct vq_seg *s = &c->segs[i];

        if (!guest_mem_valid(&f->mem, s->gpa, s->len))
            abort();
        if (s->writable != (i >= c->nread))
            abort();
        if (s->writable)
            wl += s->len;
        else
            rl += s->len;
    }
    if (rl != c->read_len || wl != c->write_len)
        abort();
    /* Touch the data the way a device would (bounded, so huge chains stay cheap). */
    uint64_t n = c->read_len < sizeof scratch ? c->read_len : sizeof scratch;
    if (vq_chain_read(&f->mem, c, 0, scratch, n))
        abort();
    if (vq_chain_read(&f->mem, c, c->read_len, scratch, 1) != -EINVAL)
        abort();    /* reading past the readable part must be refused */
    n = c->write_len < sizeof scratch ? c->write_len : sizeof scratch;
    memset(scratch, 0xa5, n);
    f->driver_writing = 1;      /* the device's data writes may land anywhere in RAM */
    if (vq_chain_write(&f->mem, c, 0, scratch, n))
        abort();
    f->driver_writing = 0;
}

#define VQF_MAX_PENDING 512

static int vqf_run(const uint8_t *data, size_t size, int packed)
{
    static struct vq_chain chain;
    static struct vqf_pend { uint16_t id, ndesc; uint32_t wlen; } pend[VQF_MAX_PENDING];
    struct vqf f;
    unsigned npend = 0, pops = 0, failed = 0;
    uint16_t num;

    if (size < 3)
        return 0;
    memset(&f, 0, sizeof f);
    f.packed = packed;
    f.event_idx = data[0] & 1;
    f.indirect = (data[0] >> 1) & 1;
    num = packed ? (uint16_t)(data[1] % VQ_MAX_SIZE + 1) : (uint16_t)(1u << (data[1] % 9));
    size_t nops = data[2];
    const uint8_t *ops = data + 3;
    if (nops > size - 3)
        nops = size - 3;
    const uint8_t *img = ops + nops;
    size_t imglen = size - 3 - nops;

    /* A global of exact size: ASan puts redzones around globals too. */
    static uint8_t ram[VQF_RAM_SIZE];
    f.ram = ram;
    if (imglen > VQF_RAM_SIZE)
        imglen = VQF_RAM_SIZE;
    memcpy(ram, img, imglen);
    memset(ram + imglen, 0, VQF_RAM_SIZE - imglen);
    guest_mem_init_buffer(&f.mem, f.ram, VQF_RAM_SIZE);
    guest_mem_set_write_tap(&f.mem, vqf_tap, &f);
    f.vq.num_max = VQ_MAX_SIZE;
    vq_reset(&f.vq);
    if (vqf_enable(&f, num) < 0)
        goto out;

    /* With no ops, pop everything once and push it back. */
    static const uint8_t default_ops[] = { 0, 0, 0, 0, 3, 3, 3, 3, 5, 0, 0, 3, 3, 5 };
    if (nops == 0) {
        ops = default_ops;
        nops = sizeof default_ops;
    }
    for (size_t i = 0; i < nops; i++) {
        unsigned op = ops[i] & 7, p = ops[i] >> 3;

        switch (op) {
        case 0: case 1: case 2: {   /* pop */
            if (failed)
                break;
            int r = vq_pop(&f.vq, &chain);
            if (r < 0) {
                if (!f.vq.err[0])
                    abort();
                failed = 1;     /* the core would now set DEVICE_NEEDS_RESET */
            } else if (r > 0) {
                vqf_check_chain(&f, &chain);
                if (++pops > f.vq.num)
                    abort();    /* popped more than a lap from an unchanged ring */
                if (npend < VQF_MAX_PENDING)
                    pend[npend++] = (struct vqf_pend){ chain.id, chain.ndesc,
                                                       (uint32_t)chain.write_len };
            }
            break;
        }
        case 3:                     /* push the oldest popped chain */
            if (npend && !failed) {
                uint32_t len = p * 37u;
                if (len > pend[0].wlen)
                    len = pend[0].wlen;
                if (vq_push_id(&f.vq, pend[0].id, pend[0].ndesc, len))
                    abort();
                memmove(pend, pend + 1, --npend * sizeof pend[0]);
            }
            break;
        case 4:                     /* push every popped chain, newest first */
            while (npend && !failed) {
                npend--;
                if (vq_push_id(&f.vq, pend[npend].id, pend[npend].ndesc, pend[npend].wlen))
                    abort();
            }
            break;
        case 5: {                   /* notification decision */
            int r = vq_needs_notify(&f.vq);
            if (r < 0 || r > 1)
                abort();
            if (vq_needs_notify(&f.vq) != 0)
                abort();    /* nothing was pushed since the last decision */
            break;
        }
        case 6:                     /* the driver writes one byte of guest RAM */
            if (i + 2 < nops) {
                unsigned at = ((unsigned)ops[i + 1] | (unsigned)p << 8) % VQF_RAM_SIZE;

                f.ram[at] = ops[i + 2];
                i += 2;
                pops = 0;
            }
            break;
        case 7:                     /* device reset, then the driver sets the queue up again */
            npend = failed = pops = 0;
            if (vqf_enable(&f, num) < 0)
                goto out;
            break;
        }
    }
out:
    return 0;
}

#endif
