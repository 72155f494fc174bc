/* The i8254 programmable interval timer at ports 0x40-0x43, and system control port B at
 * 0x61 (which gates channel 2), counting on the VMM's clock (the virtual clock on the
 * software CPU, so every read is deterministic). Linux reads it twice before it has any
 * other timer: the decompressor's KASLR mixes channel 0's count into its seed, and the TSC
 * calibration (quick_pit_calibrate) sets channel 2's gate through port 0x61 and times it
 * counting down from 0xffff in mode 0.
 *
 * Modelled: the three counters at 1.193182 MHz, modes 0-5 (counts and the OUT line), the
 * access modes (LSB, MSB, LSB then MSB), counter latch, read-back (count and status, any
 * channel set), and the status byte. Channel 0's OUT rising edge pulses the device's
 * interrupt line when it has one (a GSI in the device env), scheduled on the clock only
 * while channel 0 counts in a mode that produces one.
 * Port 0x61: bit 0 is channel 2's GATE (low: modes 0 and 4 hold the count, 2 and 3 hold it
 * with OUT high; a rising edge resumes 0 and 4 and (re)starts 1, 2, 3 and 5, which wait for
 * it after their count is written), bit 1 the speaker data enable, bits 2-3 the parity and
 * I/O check disables (kept: no NMI source here), bit 4 the DRAM refresh toggle (flips every
 * 18 PIT clocks, 15.09 us, as channel 1's BIOS programming makes it), bit 5 channel 2's
 * OUT, bits 6-7 (NMI causes) 0. It starts at 0, as a PC after reset: channel 2 holds.
 * Channels 0 and 1 have their gates tied high, as on a PC. A machine description from before
 * the PIT had port 0x61 (a trace or snapshot whose i8042 window was 0x60-0x64) gives it no
 * such window: channel 2's gate is then tied high too, as this model had it then.
 * Not modelled: BCD counting (the BCD bit is kept and reported, counts stay binary), the
 * speaker's sound, and the one-clock delay before counting starts. */
#include "device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/snapshot.h"

#define PIT_HZ          1193182ULL
#define PIT_CONTROL     3           /* port 0x43 */
#define PIT_PORT_B      0x21        /* port 0x61: system control port B */
#define PORT_B_GATE2    0x01
#define PORT_B_RW       0x0f        /* the bits a write sets and a read returns */
#define PORT_B_REFRESH  0x10
#define PORT_B_OUT2     0x20
#define REFRESH_CLOCKS  18          /* PIT clocks per refresh request (channel 1, count 18) */
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
    uint64_t start_ns;              /* when the count was loaded, or counting last resumed */
    uint8_t gate;                   /* GATE input level */
    uint8_t armed;                  /* modes 1, 5: count written, waiting for a GATE edge */
    uint64_t held_ticks;            /* clocks counted before start_ns (the gate held it) */
};

struct pit {
    const struct clock *clock;
    struct irq_line irq;
    int has_irq;
    int64_t timer;                  /* channel 0's next OUT edge, 0 when none */
    int has_port_b;                 /* port 0x61 is in this device's windows */
    uint8_t port_b;                 /* its bits 0-3 as written */
    struct pit_channel ch[3];
};

static uint64_t ns_to_ticks(uint64_t ns)
{
    return ns / 1000000000ULL * PIT_HZ + ns % 1000000000ULL * PIT_HZ / 1000000000ULL;
}

static uint64_t ticks_since(const struct pit *p, const struct pit_channel *c)
{
    return ns_to_ticks(clock_now_ns(p->clock) - c->start_ns);
}

/* The gate stops the counting element: modes 0, 2, 3 and 4 while it is low; 1 and 5 until
 * its rising edge starts them. */
static int pit_held(const struct pit_channel *c)
{
    return c->armed || (!c->gate && c->mode != 1 && c->mode != 5);
}

/* Clocks counted since the count was loaded (or the last trigger). */
static uint64_t pit_ticks(const struct pit *p, const struct pit_channel *c)
{
    return c->held_ticks + (pit_held(c) ? 0 : ticks_since(p, c));
}

/* The counting element now, and the OUT line. */
static uint16_t pit_count(const struct pit *p, const struct pit_channel *c, int *out)
{
    uint64_t t = pit_ticks(p, c), n = c->reload;
    uint64_t v;

    if (!c->counting) {
        *out = c->mode == 0 ? 0 : 1;
        return (uint16_t)c->reload;
    }
    if (c->armed) {                 /* modes 1, 5 before the trigger: OUT high */
        *out = 1;
        return (uint16_t)c->reload;
    }
    switch (c->mode) {
    case 2:                         /* rate generator: n .. 1, OUT low while at 1 */
        v = n - t % n;
        *out = v != 1 || !c->gate;  /* a low gate forces OUT high (modes 2, 3) */
        break;
    case 3: {                       /* square wave: counts by two, OUT high the first half */
        uint64_t half = (n + 1) / 2, phase = t % n;
        *out = phase < half || !c->gate;
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

/* Whether channel i's gate is an input the guest drives (channel 2 through port 0x61). */
static int pit_gated(const struct pit *p, unsigned i)
{
    return i == 2 && p->has_port_b;
}

static void pit_load(struct pit *p, unsigned i, uint16_t value)
{
    struct pit_channel *c = &p->ch[i];

    c->reload = value ? value : 0x10000;
    c->start_ns = clock_now_ns(p->clock);
    c->held_ticks = 0;
    c->counting = 1;
    c->null_count = 0;
    /* Modes 1 and 5 are triggered by the gate's rising edge; a tied-high gate (channels 0
     * and 1) has none, and they count from the write, as they always did here (and in
     * QEMU). */
    c->armed = pit_gated(p, i) && (c->mode == 1 || c->mode == 5);
    if (i == 0)
        pit_arm(p);
}

static void pit_set_gate(struct pit *p, unsigned i, uint8_t level)
{
    struct pit_channel *c = &p->ch[i];

    if (c->gate == level)
        return;
    if (!level) {
        /* 0, 2, 3, 4 stop and keep what they counted; 1 and 5 count on through a low gate */
        if (c->mode != 1 && c->mode != 5 && !pit_held(c))
            c->held_ticks = pit_ticks(p, c);
        c->gate = 0;
        return;
    }
    c->gate = 1;
    c->start_ns = clock_now_ns(p->clock);
    if (c->mode != 0 && c->mode != 4) {
        c->held_ticks = 0;          /* 1, 2, 3, 5: the rising edge reloads and starts */
        c->armed = 0;
    }                               /* 0, 4: counting resumes from held_ticks */
}

/* Port 0x61. */
static uint8_t pit_port_b_read(const struct pit *p)
{
    int out2;
    uint64_t clocks = ns_to_ticks(clock_now_ns(p->clock));

    pit_count(p, &p->ch[2], &out2);
    return (uint8_t)((p->port_b & PORT_B_RW) | ((clocks / REFRESH_CLOCKS) & 1 ? PORT_B_REFRESH : 0) |
                     (out2 ? PORT_B_OUT2 : 0));
}

static void pit_port_b_write(struct pit *p, uint8_t v)
{
    p->port_b = v & PORT_B_RW;
    pit_set_gate(p, 2, v & PORT_B_GATE2);
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
    c->armed = 0;
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
    if (off == PIT_PORT_B && p->has_port_b)
        *value = pit_port_b_read(p);
    else
        *value = off < PIT_CONTROL ? pit_data_read(p, (unsigned)off) : 0xff;
    return 0;
}

static int pit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct pit *p = opaque;

    (void)size;
    if (off == PIT_CONTROL)
        pit_control(p, (uint8_t)value);
    else if (off == PIT_PORT_B && p->has_port_b)
        pit_port_b_write(p, (uint8_t)value);
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
    /* With port 0x61 (a machine description that records windows): it and the gates. */
    if (p->has_port_b) {
        snapshot_put_u8(w, p->port_b);
        for (unsigned i = 0; i < 3; i++) {
            snapshot_put_u8(w, p->ch[i].gate);
            snapshot_put_u8(w, p->ch[i].armed);
            snapshot_put_u64(w, p->ch[i].held_ticks);
        }
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
        c->gate = !pit_gated(p, i);
    }
    uint8_t port_b = 0;
    if (p->has_port_b) {
        port_b = snapshot_get_u8(r, "pit port 0x61");
        for (unsigned i = 0; i < 3; i++) {
            ch[i].gate = snapshot_get_u8(r, "pit gate");
            ch[i].armed = snapshot_get_u8(r, "pit armed");
            ch[i].held_ticks = snapshot_get_u64(r, "pit held clocks");
        }
    }
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    if (port_b & ~PORT_B_RW || ch[0].gate != 1 || ch[1].gate != 1 ||
        ch[2].gate != (p->has_port_b ? (port_b & PORT_B_GATE2) : 1))
        return snapshot_fail(r, err, errlen, "pit port 0x61 %#x and gates %u %u %u disagree",
                             port_b, ch[0].gate, ch[1].gate, ch[2].gate);
    for (unsigned i = 0; i < 3; i++) {
        const struct pit_channel *c = &ch[i];
        if (c->mode > 5 || c->rw > 3 || c->count_latched > 3 || c->reload < 1 ||
            c->reload > 0x10000 || c->armed > 1)
            return snapshot_fail(r, err, errlen, "pit channel %u: mode %u, access %u, reload "
                                 "%u out of range", i, c->mode, c->rw, c->reload);
    }
    memcpy(p->ch, ch, sizeof(ch));
    p->port_b = port_b;
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
    p->has_port_b = !env->windows;  /* the type's layout has it */
    for (unsigned i = 0; i < env->nwindows && env->windows; i++)
        if (env->windows[i].offset <= PIT_PORT_B &&
            PIT_PORT_B - env->windows[i].offset < env->windows[i].size)
            p->has_port_b = 1;
    for (unsigned i = 0; i < 3; i++) {
        p->ch[i].reload = 0x10000;
        p->ch[i].gate = !pit_gated(p, i);   /* port 0x61 starts at 0: channel 2 held */
    }
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

static const struct device_window pit_windows[] = {
    { 0, 4 }, { PIT_PORT_B, 1 },
};

const struct device_type i8254_type = {
    .kind = "i8254",
    .space = BUS_PIO,
    .window_size = 4,
    .windows = pit_windows,
    .nwindows = 2,
    .create = pit_create,
    .ops = &pit_ops,
    .destroy = pit_destroy,
    .save = pit_save,
    .load = pit_load_state,
};
