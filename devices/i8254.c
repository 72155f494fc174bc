/* The i8254 programmable interval timer at ports 0x40-0x43, counting on the VMM's clock
 * (the virtual clock on the software CPU, so every read is deterministic). Linux reads it
 * twice before it has any other timer: the decompressor's KASLR mixes channel 0's count
 * into its seed, and the TSC calibration (quick_pit_calibrate) times channel 2 counting
 * down from 0xffff in mode 0.
 *
 * Modelled: the three counters at 1.193182 MHz, modes 0-5 (counts and the OUT line), the
 * access modes (LSB, MSB, LSB then MSB), counter latch, read-back (count and status, any
 * channel set), and the status byte. Channel 0's OUT rising edge pulses the device's
 * interrupt line when it has one (a GSI in the device env), scheduled on the clock only
 * while channel 0 counts in a mode that produces one.
 * Not modelled: BCD counting (the BCD bit is kept and reported, counts stay binary), the
 * gate inputs (always high: channels 0 and 1 on a PC, channel 2's comes from port 0x61,
 * which this window does not hold, so channel 2 counts from its count write, as it does
 * once a guest has set the gate), and the one-clock delay before counting starts. */
#include "device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/snapshot.h"

#define PIT_HZ          1193182ULL
#define PIT_CONTROL     3           /* port 0x43 */
#define RW_LATCH        0
#define RW_LSB          1
#define RW_MSB          2
#define RW_WORD         3

struct pit_channel {
    uint8_t mode, rw, bcd;
    uint8_t counting;               /* a count was written since the last control word */
    uint8_t write_msb;              /* RW_WORD: the next data write is the MSB */
    uint8_t read_msb;               /* RW_WORD: the next live read is the MSB */
    uint8_t count_latched;          /* 0, or RW_LSB/RW_MSB/RW_WORD bytes still to read */
    uint8_t latch_msb;              /* RW_WORD latch: the LSB was read */
    uint8_t status_latched;
    uint8_t status;
    uint8_t null_count;             /* count written, not yet loaded into the counter */
    uint16_t latch;
    uint16_t pending_lsb;
    uint32_t reload;                /* 1..65536 */
    uint64_t start_ns;              /* when the count was loaded */
};

struct pit {
    const struct clock *clock;
    struct irq_line irq;
    int has_irq;
    int64_t timer;                  /* channel 0's next OUT edge, 0 when none */
    struct pit_channel ch[3];
};

static uint64_t ticks_since(const struct pit *p, const struct pit_channel *c)
{
    uint64_t ns = clock_now_ns(p->clock) - c->start_ns;
    return ns / 1000000000ULL * PIT_HZ + ns % 1000000000ULL * PIT_HZ / 1000000000ULL;
}

/* The counting element now, and the OUT line. */
static uint16_t pit_count(const struct pit *p, const struct pit_channel *c, int *out)
{
    uint64_t t = ticks_since(p, c), n = c->reload;
    uint64_t v;

    if (!c->counting) {
        *out = c->mode == 0 ? 0 : 1;
        return (uint16_t)c->reload;
    }
    switch (c->mode) {
    case 2:                         /* rate generator: n .. 1, OUT low while at 1 */
        v = n - t % n;
        *out = v != 1;
        break;
    case 3: {                       /* square wave: counts by two, OUT high the first half */
        uint64_t half = (n + 1) / 2, phase = t % n;
        *out = phase < half;
        v = (n - 2 * (phase < half ? phase : phase - half)) & ~1ULL;
        if (!v)
            v = n & ~1ULL;
        break;
    }
    case 4: case 5:                 /* strobes: OUT low for the one clock at zero */
        v = (n - t) & 0xffff;
        *out = t != n;
        break;
    default:                        /* 0, 1: OUT rises at zero, the count wraps on */
        v = (n - t) & 0xffff;
        *out = t >= n;
        break;
    }
    return (uint16_t)v;
}

static uint8_t pit_status(const struct pit *p, const struct pit_channel *c)
{
    int out;
    pit_count(p, c, &out);
    return (uint8_t)((out ? 0x80 : 0) | (c->null_count ? 0x40 : 0) | c->rw << 4 | c->mode << 1 |
                     c->bcd);
}

/* ---- channel 0's interrupt ---- */

static void pit_arm(struct pit *p);

static void pit_tick(void *arg)
{
    struct pit *p = arg;

    p->timer = 0;
    irq_line_pulse(&p->irq);
    pit_arm(p);
}

/* The next rising edge of channel 0's OUT after now: one-shot modes have one, periodic
 * ones one per period. */
static void pit_arm(struct pit *p)
{
    struct pit_channel *c = &p->ch[0];

    if (p->timer) {
        p->clock->cancel(p->clock->opaque, p->timer);
        p->timer = 0;
    }
    if (!p->has_irq || !c->counting)
        return;
    uint64_t t = ticks_since(p, c), n = c->reload, edge;
    if (c->mode == 0 || c->mode == 1 || c->mode == 4 || c->mode == 5) {
        if (t >= n)
            return;
        edge = n;                   /* modes 4/5: the strobe ends a tick later; same edge */
    } else {
        edge = (t / n + 1) * n;     /* mode 2: OUT rises as the count reloads; 3 likewise */
    }
    uint64_t at = c->start_ns + edge / PIT_HZ * 1000000000ULL +
                  (edge % PIT_HZ * 1000000000ULL + PIT_HZ - 1) / PIT_HZ;
    int64_t id = p->clock->schedule(p->clock->opaque, at, pit_tick, p);
    if (id > 0)
        p->timer = id;
}

/* ---- registers ---- */

static void pit_load(struct pit *p, unsigned i, uint16_t value)
{
    struct pit_channel *c = &p->ch[i];

    c->reload = value ? value : 0x10000;
    c->start_ns = clock_now_ns(p->clock);
    c->counting = 1;
    c->null_count = 0;
    if (i == 0)
        pit_arm(p);
}

static void pit_latch_count(struct pit *p, struct pit_channel *c)
{
    int out;

    if (c->count_latched)
        return;                     /* a second latch before the read is ignored */
    c->latch = pit_count(p, c, &out);
    c->count_latched = c->rw;
    c->latch_msb = 0;
}

static void pit_control(struct pit *p, uint8_t v)
{
    unsigned sel = v >> 6;

    if (sel == 3) {                 /* read-back: bit 5 clear latches counts, bit 4 status */
        for (unsigned i = 0; i < 3; i++) {
            struct pit_channel *c = &p->ch[i];
            if (!(v & (2u << i)))
                continue;
            if (!(v & 0x20))
                pit_latch_count(p, c);
            if (!(v & 0x10) && !c->status_latched) {
                c->status = pit_status(p, c);
                c->status_latched = 1;
            }
        }
        return;
    }
    struct pit_channel *c = &p->ch[sel];
    unsigned rw = (v >> 4) & 3;
    if (rw == RW_LATCH) {
        pit_latch_count(p, c);
        return;
    }
    unsigned mode = (v >> 1) & 7;
    c->mode = (uint8_t)(mode > 5 ? mode - 4 : mode);    /* 6, 7 are 2, 3 */
    c->rw = (uint8_t)rw;
    c->bcd = v & 1;
    c->counting = 0;                /* stopped until the count is written */
    c->null_count = 1;
    c->write_msb = c->read_msb = 0;
    c->count_latched = c->status_latched = 0;
    if (sel == 0)
        pit_arm(p);
}

static void pit_data_write(struct pit *p, unsigned i, uint8_t v)
{
    struct pit_channel *c = &p->ch[i];

    switch (c->rw) {
    case RW_LSB:
        pit_load(p, i, v);
        break;
    case RW_MSB:
        pit_load(p, i, (uint16_t)(v << 8));
        break;
    case RW_WORD:
        if (!c->write_msb) {
            c->pending_lsb = v;
            c->write_msb = 1;
        } else {
            c->write_msb = 0;
            pit_load(p, i, (uint16_t)(c->pending_lsb | v << 8));
        }
        break;
    default:                        /* never programmed: nothing to load */
        break;
    }
}

static uint8_t pit_data_read(struct pit *p, unsigned i)
{
    struct pit_channel *c = &p->ch[i];
    int out;

    if (c->status_latched) {
        c->status_latched = 0;
        return c->status;
    }
    if (c->count_latched) {
        uint8_t b;
        if (c->count_latched == RW_MSB) {
            b = (uint8_t)(c->latch >> 8);
            c->count_latched = 0;
        } else if (c->count_latched == RW_LSB) {
            b = (uint8_t)c->latch;
            c->count_latched = 0;
        } else if (!c->latch_msb) {
            b = (uint8_t)c->latch;
            c->latch_msb = 1;
        } else {
            b = (uint8_t)(c->latch >> 8);
            c->count_latched = 0;
        }
        return b;
    }
    uint16_t v = pit_count(p, c, &out);
    if (c->rw == RW_MSB)
        return (uint8_t)(v >> 8);
    if (c->rw == RW_WORD) {
        c->read_msb ^= 1;
        return c->read_msb ? (uint8_t)v : (uint8_t)(v >> 8);
    }
    return (uint8_t)v;
}

static int pit_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    struct pit *p = opaque;

    (void)size;
    /* the control port is write-only: reads float high */
    *value = off < PIT_CONTROL ? pit_data_read(p, (unsigned)off) : 0xff;
    return 0;
}

static int pit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct pit *p = opaque;

    (void)size;
    if (off == PIT_CONTROL)
        pit_control(p, (uint8_t)value);
    else if (off < PIT_CONTROL)
        pit_data_write(p, (unsigned)off, (uint8_t)value);
    return 0;
}

static const struct bus_ops pit_ops = { pit_read, pit_write };

/* ---- snapshots: every channel's registers; channel 0's timer is re-armed from them ---- */

static int pit_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct pit *p = state;

    (void)err;
    (void)errlen;
    for (unsigned i = 0; i < 3; i++) {
        const struct pit_channel *c = &p->ch[i];
        const uint8_t b[12] = { c->mode, c->rw, c->bcd, c->counting, c->write_msb,
                                c->read_msb, c->count_latched, c->latch_msb,
                                c->status_latched, c->status, c->null_count, 0 };
        snapshot_put_bytes(w, b, sizeof(b));
        snapshot_put_u16(w, c->latch);
        snapshot_put_u16(w, c->pending_lsb);
        snapshot_put_u32(w, c->reload);
        snapshot_put_u64(w, c->start_ns);
    }
    return 0;
}

static int pit_load_state(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct pit *p = state;
    struct pit_channel ch[3];

    for (unsigned i = 0; i < 3; i++) {
        struct pit_channel *c = &ch[i];
        uint8_t b[12];
        snapshot_get_bytes(r, b, sizeof(b), "pit channel registers");
        *c = (struct pit_channel){ .mode = b[0], .rw = b[1], .bcd = b[2], .counting = b[3],
                                   .write_msb = b[4], .read_msb = b[5], .count_latched = b[6],
                                   .latch_msb = b[7], .status_latched = b[8], .status = b[9],
                                   .null_count = b[10] };
        c->latch = snapshot_get_u16(r, "pit latch");
        c->pending_lsb = snapshot_get_u16(r, "pit pending lsb");
        c->reload = snapshot_get_u32(r, "pit reload");
        c->start_ns = snapshot_get_u64(r, "pit start");
    }
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    for (unsigned i = 0; i < 3; i++) {
        const struct pit_channel *c = &ch[i];
        if (c->mode > 5 || c->rw > 3 || c->count_latched > 3 || c->reload < 1 ||
            c->reload > 0x10000)
            return snapshot_fail(r, err, errlen, "pit channel %u: mode %u, access %u, reload "
                                 "%u out of range", i, c->mode, c->rw, c->reload);
    }
    memcpy(p->ch, ch, sizeof(ch));
    pit_arm(p);
    return 0;
}

static int pit_create(const char *args, const struct device_env *env, void **state, char *err,
                      size_t errlen)
{
    static const char *const allowed[] = { "id", NULL };
    int rc = device_args_check(args, allowed, err, errlen);
    struct pit *p;

    if (rc)
        return rc;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->clock = env->clock;
    p->irq = env->irq;
    p->has_irq = env->irq.sink != NULL;
    for (unsigned i = 0; i < 3; i++)
        p->ch[i].reload = 0x10000;
    *state = p;
    return 0;
}

static void pit_destroy(void *state)
{
    struct pit *p = state;

    if (p && p->timer)
        p->clock->cancel(p->clock->opaque, p->timer);
    free(p);
}

const struct device_type i8254_type = {
    .kind = "i8254",
    .space = BUS_PIO,
    .window_size = 4,
    .create = pit_create,
    .ops = &pit_ops,
    .destroy = pit_destroy,
    .save = pit_save,
    .load = pit_load_state,
};
