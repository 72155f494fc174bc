/* Ring-format independent virtqueue operations: add, kick, take used, wait. */
#include "virtq_impl.h"

#include "../rt/rt.h"

/* Poll mode gives up after this many spins (10-20 s under QEMU TCG). Spins, not the TSC:
 * RDTSC is an exit on a software CPU, and the count is deterministic. Interrupt mode has no
 * limit: a guest halted with nothing to wake it is what VMMs report as hung. */
#define WAIT_LIMIT_SPINS (1ull << 30)
/* Interrupt mode: how long a completion found in the ring waits for its interrupt. A CPU may
 * deliver it some instructions after the sti (nested KVM does); without the wait, the next
 * request's interrupt merges with it on the level-triggered line and the guest counts one
 * interrupt for two completions. A device that never interrupts still shows in the count. */
#define IRQ_GRACE_SPINS (1ull << 20)

_Noreturn void virtq_bad_device(struct virtq *q, const char *what, unsigned value)
{
    printf("virtio: device broke queue %u: bad %s %u\n", q->index, what, value);
    rt_exit(3);
}

int virtq_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n)
{
    if (n == 0 || n > VIRTQ_MAX_SG)
        return -VIRTIO_EINVAL;
    int id = q->packed ? packed_add(q, bufs, n) : split_add(q, bufs, n);
    if (q->dev->opts.trace) {
        printf("vtrace: q%u add id %d:", q->index, id);
        for (unsigned i = 0; i < n; i++)
            printf(" %s%u@0x%llx", bufs[i].write ? "w" : "r", bufs[i].len,
                   (unsigned long long)(uintptr_t)bufs[i].addr);
        printf("\n");
    }
    return id;
}

void virtq_kick(struct virtq *q)
{
    if (q->num_added == 0)
        return;
    int notify = q->packed ? packed_publish(q) : split_publish(q);
    q->num_added = 0;
    if (notify) {
        if (q->dev->opts.irq) {
            q->irq_at_notify = q->dev->irq_count;   /* before: it may interrupt at once */
            q->await_irq = 1;
        }
        mmio_write32(q->dev->base + VMMIO_QUEUE_NOTIFY, q->index);
        q->notifies++;
    } else
        q->kicks_suppressed++;
}

int virtq_get_used(struct virtq *q, uint16_t *id, uint32_t *len)
{
    int r = q->packed ? packed_get_used(q, id, len) : split_get_used(q, id, len);
    if (r && q->dev->opts.trace)
        printf("vtrace: q%u used id %u len %u\n", q->index, *id, *len);
    return r;
}

static _Noreturn void wait_timeout(struct virtq *q)
{
    printf("virtio: timeout waiting for a used buffer on queue %u (status 0x%x)\n", q->index,
           virtio_status(q->dev));
    rt_exit(3);
}

void virtq_wait_used(struct virtq *q, uint16_t *id, uint32_t *len)
{
    if (!q->dev->opts.irq) {
        for (uint64_t spins = 0; !virtq_get_used(q, id, len); spins++) {
            rt_pause();
            if (spins > WAIT_LIMIT_SPINS)
                wait_timeout(q);
        }
        return;
    }
    /* Check with interrupts off, then sti;hlt: an interrupt arriving between the check
     * and the hlt is taken by the hlt instead of being lost. */
    for (;;) {
        rt_irq_disable();
        if (virtq_get_used(q, id, len))
            break;
        rt_halt();
    }
    rt_irq_enable();
    if (q->await_irq) {
        q->await_irq = 0;
        for (uint64_t spins = 0; q->dev->irq_count == q->irq_at_notify && spins < IRQ_GRACE_SPINS;
             spins++)
            rt_pause();
    }
}
