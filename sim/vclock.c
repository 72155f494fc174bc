#include "vclock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t vclock__now_ns(void *opaque) { return ((struct vclock *)opaque)->now; }

static int64_t vclock__schedule(void *opaque, uint64_t at_ns, clock_timer_fn fn, void *arg)
{
    return vclock_schedule(opaque, at_ns, fn, arg);
}

static int vclock__cancel(void *opaque, int64_t id) { return vclock_cancel(opaque, id); }

void vclock_init(struct vclock *vc)
{
    memset(vc, 0, sizeof(*vc));
    vc->next_seq = 1;
    vc->alarm = vc->limit = UINT64_MAX;
    vc->clock = (struct clock){ vclock__now_ns, vclock__schedule, vclock__cancel, vc };
}

void vclock_destroy(struct vclock *vc)
{
    free(vc->heap);
    vc->heap = NULL;
    vc->n = vc->cap = 0;
}

static void update_alarm(struct vclock *vc)
{
    uint64_t t = vc->n ? vc->heap[0].at : UINT64_MAX;
    vc->alarm = t < vc->limit ? t : vc->limit;
}

void vclock_set_limit(struct vclock *vc, uint64_t ns)
{
    vc->limit = ns;
    update_alarm(vc);
}

static int before(const struct vclock_event *a, const struct vclock_event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void swap(struct vclock_event *a, struct vclock_event *b)
{
    struct vclock_event t = *a;
    *a = *b;
    *b = t;
}

static void sift_up(struct vclock *vc, unsigned i)
{
    while (i > 0) {
        unsigned p = (i - 1) / 2;
        if (!before(&vc->heap[i], &vc->heap[p]))
            break;
        swap(&vc->heap[i], &vc->heap[p]);
        i = p;
    }
}

static void sift_down(struct vclock *vc, unsigned i)
{
    for (;;) {
        unsigned l = 2 * i + 1, r = l + 1, m = i;
        if (l < vc->n && before(&vc->heap[l], &vc->heap[m]))
            m = l;
        if (r < vc->n && before(&vc->heap[r], &vc->heap[m]))
            m = r;
        if (m == i)
            return;
        swap(&vc->heap[i], &vc->heap[m]);
        i = m;
    }
}

int64_t vclock_schedule(struct vclock *vc, uint64_t at_ns, clock_timer_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    if (vc->n == vc->cap) {
        if (vc->cap >= VCLOCK_MAX_EVENTS)
            return -ENOSPC;
        unsigned cap = vc->cap ? vc->cap * 2 : 16;
        struct vclock_event *h = realloc(vc->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        vc->heap = h;
        vc->cap = cap;
    }
    uint64_t seq = vc->next_seq++;
    vc->heap[vc->n] = (struct vclock_event){ at_ns, seq, fn, arg };
    sift_up(vc, vc->n++);
    update_alarm(vc);
    return (int64_t)seq;
}

int64_t vclock_schedule_id(struct vclock *vc, uint64_t at_ns, int64_t id, clock_timer_fn fn,
                           void *arg)
{
    if (id <= 0 || (uint64_t)id >= vc->next_seq)
        return -EINVAL;
    for (unsigned i = 0; i < vc->n; i++)
        if ((int64_t)vc->heap[i].seq == id)
            return -EINVAL;
    uint64_t saved = vc->next_seq;
    vc->next_seq = (uint64_t)id;
    int64_t got = vclock_schedule(vc, at_ns, fn, arg);
    vc->next_seq = saved;
    return got;
}

static void remove_at(struct vclock *vc, unsigned i)
{
    vc->n--;
    if (i != vc->n) {
        vc->heap[i] = vc->heap[vc->n];
        sift_down(vc, i);
        sift_up(vc, i);
    }
    update_alarm(vc);
}

int vclock_cancel(struct vclock *vc, int64_t id)
{
    /* Linear: a handful of timers are pending at any time. */
    for (unsigned i = 0; i < vc->n; i++)
        if ((int64_t)vc->heap[i].seq == id) {
            remove_at(vc, i);
            return 0;
        }
    return -ENOENT;
}

unsigned vclock_run_due(struct vclock *vc)
{
    unsigned fired = 0;

    while (vc->n && vc->heap[0].at <= vc->now) {
        struct vclock_event e = vc->heap[0];
        remove_at(vc, 0);       /* before the call: fn may schedule or cancel */
        e.fn(e.arg);
        fired++;
    }
    return fired;
}
