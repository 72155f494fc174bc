#include "lapic.h"

#include <errno.h>
#include <string.h>

#define LVT_MASKED      (1u << 16)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)   /* 0 one-shot, 1 periodic, 2 TSC-deadline */
#define SVR_ENABLE      (1u << 8)

enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR };

static int highest_bit(const uint32_t r[8])
{
    for (int i = 7; i >= 0; i--)
        if (r[i])
            return i * 32 + 31 - __builtin_clz(r[i]);
    return -1;
}

static void set_bit(uint32_t r[8], unsigned v) { r[v / 32] |= 1u << (v % 32); }
static void clear_bit(uint32_t r[8], unsigned v) { r[v / 32] &= ~(1u << (v % 32)); }
static int test_bit(const uint32_t r[8], unsigned v) { return (r[v / 32] >> (v % 32)) & 1; }

static uint32_t ppr(const struct lapic *l)
{
    int isr = highest_bit(l->isr);
    uint32_t isrv = isr < 0 ? 0 : (uint32_t)isr & 0xf0;
    return (l->tpr & 0xf0) >= isrv ? l->tpr & 0xff : isrv;
}

static void update_pending(struct lapic *l)
{
    int irr = highest_bit(l->irr);

    l->pending = -1;
    if (irr < 0 || !(l->svr & SVR_ENABLE))
        return;
    if (((unsigned)irr & 0xf0) > (ppr(l) & 0xf0))
        l->pending = irr;
}

void lapic_accept(struct lapic *l, uint8_t vector, int level)
{
    if (vector < 16) {               /* illegal vector: record it like hardware does */
        l->esr |= 1u << 6;
        return;
    }
    set_bit(l->irr, vector);
    if (level)
        set_bit(l->tmr, vector);
    else
        clear_bit(l->tmr, vector);
    update_pending(l);
}

void lapic_ack(struct lapic *l, uint8_t vector)
{
    clear_bit(l->irr, vector);
    set_bit(l->isr, vector);
    update_pending(l);
}

static void eoi(struct lapic *l)
{
    int v = highest_bit(l->isr);

    if (v < 0)
        return;
    clear_bit(l->isr, (unsigned)v);
    if (test_bit(l->tmr, (unsigned)v) && l->on_eoi)
        l->on_eoi(l->on_eoi_opaque, (uint8_t)v);
    update_pending(l);
}

/* --- timer --- */

static uint64_t divisor(const struct lapic *l)
{
    unsigned code = (l->divide_conf & 3) | ((l->divide_conf >> 1) & 4);
    return code == 7 ? 1 : 2ULL << code;
}

static void timer_stop(struct lapic *l)
{
    if (l->timer_event > 0)
        vclock_cancel(l->vc, l->timer_event);
    l->timer_event = 0;
}

static void timer_fire(void *arg);

static void timer_arm(struct lapic *l, uint64_t deadline)
{
    int64_t id = vclock_schedule(l->vc, deadline, timer_fire, l);
    l->timer_deadline = deadline;
    l->timer_event = id > 0 ? id : 0;
}

static void timer_fire(void *arg)
{
    struct lapic *l = arg;
    uint32_t lvt = l->lvt[LVT_TIMER];

    l->timer_event = 0;
    l->timer_fired++;
    if (!(lvt & LVT_MASKED))
        lapic_accept(l, lvt & 0xff, 0);
    if (LVT_TIMER_MODE(lvt) == 1 && l->timer_period) {
        /* next period counts from the deadline, not from when we noticed: no drift */
        l->timer_start = l->timer_deadline;
        timer_arm(l, l->timer_deadline + l->timer_period);
    }
}

static void timer_start(struct lapic *l)
{
    timer_stop(l);
    l->timer_period = (uint64_t)l->initial_count * divisor(l) * LAPIC_TIMER_NS_PER_TICK;
    if (!l->initial_count)
        return;
    /* a periodic timer faster than this would only burn host time in the event loop */
    if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == 1 && l->timer_period < LAPIC_MIN_PERIOD_NS)
        l->timer_period = LAPIC_MIN_PERIOD_NS;
    l->timer_start = vclock_now(l->vc);
    timer_arm(l, l->timer_start + l->timer_period);
}

static uint32_t current_count(const struct lapic *l)
{
    uint64_t now = vclock_now(l->vc), per_count = divisor(l) * LAPIC_TIMER_NS_PER_TICK;

    if (l->timer_event <= 0 || now >= l->timer_deadline)
        return 0;
    return (uint32_t)((l->timer_deadline - now + per_count - 1) / per_count);
}

/* --- registers --- */

void lapic_init(struct lapic *l, struct vclock *vc, uint32_t id)
{
    memset(l, 0, sizeof(*l));
    l->vc = vc;
    l->id = id;
    l->svr = 0xff;                   /* reset: software-disabled, spurious vector 0xff */
    l->dfr = 0xffffffff;
    for (int i = 0; i < 7; i++)
        l->lvt[i] = LVT_MASKED;
    l->pending = -1;
}

void lapic_destroy(struct lapic *l)
{
    timer_stop(l);
}

static int lvt_index(uint64_t off)
{
    if (off == 0x2f0)
        return LVT_CMCI;
    if (off >= 0x320 && off <= 0x370)
        return (int)((off - 0x320) / 0x10) + 1;
    return -1;
}

static int lapic_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct lapic *l = opaque;
    uint64_t off = offset & ~0xfULL;
    uint32_t v = 0;
    int lvt = lvt_index(off);

    (void)size;
    if (lvt >= 0)
        v = l->lvt[lvt];
    else if (off >= 0x100 && off < 0x180)
        v = l->isr[(off - 0x100) / 0x10];
    else if (off >= 0x180 && off < 0x200)
        v = l->tmr[(off - 0x180) / 0x10];
    else if (off >= 0x200 && off < 0x280)
        v = l->irr[(off - 0x200) / 0x10];
    else
        switch (off) {
        case 0x20: v = l->id << 24; break;
        case 0x30: v = LAPIC_VERSION; break;
        case 0x80: v = l->tpr; break;
        case 0xa0: v = ppr(l); break;
        case 0xd0: v = l->ldr; break;
        case 0xe0: v = l->dfr; break;
        case 0xf0: v = l->svr; break;
        case 0x280: v = l->esr; break;
        case 0x300: v = l->icr_lo; break;
        case 0x310: v = l->icr_hi; break;
        case 0x380: v = l->initial_count; break;
        case 0x390: v = current_count(l); break;
        case 0x3e0: v = l->divide_conf; break;
        default: v = 0; break;
        }
    /* sub-dword reads see the right bytes of the 32-bit register */
    *value = (uint64_t)v >> ((offset & 3) * 8);
    return 0;
}

static void icr_write(struct lapic *l, uint32_t lo)
{
    unsigned shorthand = (lo >> 18) & 3, mode = (lo >> 8) & 7;
    uint32_t dest = l->icr_hi >> 24;

    l->icr_lo = lo & ~(1u << 12);    /* delivery is instant: never "send pending" */
    if (mode != 0)                   /* only fixed IPIs: there is no other CPU to INIT/SIPI */
        return;
    if (shorthand == 1 || shorthand == 2 || (shorthand == 0 && dest == l->id))
        lapic_accept(l, lo & 0xff, 0);
}

static int lapic_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct lapic *l = opaque;
    uint64_t off = offset & ~0xfULL;
    uint32_t v = (uint32_t)value;
    int lvt = lvt_index(off);

    if (size != 4 || (offset & 0xf))  /* the xAPIC only decodes aligned dword writes */
        return 0;
    if (lvt >= 0) {
        static const uint32_t mask[7] = { 0x117ff, 0x700ff, 0x117ff, 0x117ff,
                                          0x1f7ff, 0x1f7ff, 0x100ff };
        l->lvt[lvt] = v & mask[lvt];
        if (!(l->svr & SVR_ENABLE))
            l->lvt[lvt] |= LVT_MASKED;
        return 0;
    }
    switch (off) {
    case 0x20: l->id = v >> 24; break;
    case 0x80: l->tpr = v & 0xff; update_pending(l); break;
    case 0xb0: eoi(l); break;
    case 0xd0: l->ldr = v & 0xff000000; break;
    case 0xe0: l->dfr = v | 0x0fffffff; break;
    case 0xf0:
        l->svr = v & 0x13ff;
        if (!(l->svr & SVR_ENABLE))
            for (int i = 0; i < 7; i++)
                l->lvt[i] |= LVT_MASKED;
        update_pending(l);
        break;
    case 0x280: l->esr = 0; break;
    case 0x300: icr_write(l, v); break;
    case 0x310: l->icr_hi = v & 0xff000000; break;
    case 0x380: l->initial_count = v; timer_start(l); break;
    case 0x3e0: l->divide_conf = v & 0xb; break;
    default: break;                  /* read-only or reserved: ignored */
    }
    return 0;
}

const struct bus_ops lapic_bus_ops = { lapic_read, lapic_write };

/* --- snapshots --- */

#include "vmm/snapshot.h"

void lapic_save(const struct lapic *l, struct snapshot_writer *w)
{
    snapshot_put_u32(w, l->id);
    snapshot_put_u32(w, l->tpr);
    snapshot_put_u32(w, l->ldr);
    snapshot_put_u32(w, l->dfr);
    snapshot_put_u32(w, l->svr);
    snapshot_put_u32(w, l->esr);
    for (int i = 0; i < 7; i++)
        snapshot_put_u32(w, l->lvt[i]);
    snapshot_put_u32(w, l->icr_lo);
    snapshot_put_u32(w, l->icr_hi);
    for (int i = 0; i < 8; i++) {
        snapshot_put_u32(w, l->irr[i]);
        snapshot_put_u32(w, l->isr[i]);
        snapshot_put_u32(w, l->tmr[i]);
    }
    snapshot_put_u32(w, l->initial_count);
    snapshot_put_u32(w, l->divide_conf);
    snapshot_put_u64(w, l->timer_start);
    snapshot_put_u64(w, l->timer_period);
    snapshot_put_u64(w, l->timer_deadline);
    snapshot_put_u64(w, (uint64_t)(l->timer_event > 0 ? l->timer_event : 0));
    snapshot_put_u64(w, l->timer_fired);
}

int lapic_load(struct lapic *l, struct snapshot_reader *r, char *err, size_t errlen)
{
    timer_stop(l);
    l->id = snapshot_get_u32(r, "lapic id");
    l->tpr = snapshot_get_u32(r, "lapic tpr") & 0xff;
    l->ldr = snapshot_get_u32(r, "lapic ldr");
    l->dfr = snapshot_get_u32(r, "lapic dfr");
    l->svr = snapshot_get_u32(r, "lapic svr") & 0x13ff;
    l->esr = snapshot_get_u32(r, "lapic esr");
    for (int i = 0; i < 7; i++)
        l->lvt[i] = snapshot_get_u32(r, "lapic lvt");
    l->icr_lo = snapshot_get_u32(r, "lapic icr_lo");
    l->icr_hi = snapshot_get_u32(r, "lapic icr_hi");
    for (int i = 0; i < 8; i++) {
        l->irr[i] = snapshot_get_u32(r, "lapic irr");
        l->isr[i] = snapshot_get_u32(r, "lapic isr");
        l->tmr[i] = snapshot_get_u32(r, "lapic tmr");
    }
    l->initial_count = snapshot_get_u32(r, "lapic initial_count");
    l->divide_conf = snapshot_get_u32(r, "lapic divide_conf") & 0xb;
    l->timer_start = snapshot_get_u64(r, "lapic timer_start");
    l->timer_period = snapshot_get_u64(r, "lapic timer_period");
    l->timer_deadline = snapshot_get_u64(r, "lapic timer_deadline");
    uint64_t id = snapshot_get_u64(r, "lapic timer id");
    l->timer_fired = snapshot_get_u64(r, "lapic timer_fired");
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == 1 && l->timer_period &&
        l->timer_period < LAPIC_MIN_PERIOD_NS)
        return snapshot_fail(r, err, errlen, "lapic timer period %llu ns is below %llu",
                             (unsigned long long)l->timer_period, LAPIC_MIN_PERIOD_NS);
    update_pending(l);
    if (id) {
        if (id > INT64_MAX)
            return snapshot_fail(r, err, errlen, "lapic timer id %llu is out of range",
                                 (unsigned long long)id);
        int64_t got = vclock_schedule_id(l->vc, l->timer_deadline, (int64_t)id, timer_fire, l);
        if (got <= 0)
            return snapshot_fail(r, err, errlen, "lapic timer id %llu cannot be re-armed "
                                 "(not below the clock's next id, or taken)",
                                 (unsigned long long)id);
        l->timer_event = got;
    }
    return 0;
}
