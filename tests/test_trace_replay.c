/* Recording and replaying: a run recorded through the real recorder taps replays to a match
 * against the same device models (a DMA test device defined here, virtio-rng driven by the
 * mock virtio driver, the registry's uart8250 and debug-exit), and altered traces diverge
 * at the right event. Also the copy-on-write disk overlay replay opens disks through. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/disk/disk.h"
#include "devices/virtio/virtio_rng.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"
#include "traces/cow_disk.h"
#include "traces/record.h"
#include "traces/replay.h"
#include "traces/tools.h"
#include "traces/trace_format.h"
#include "vmm/prng.h"
#include "tests/scratch.h"

#define RUN_SEED 42
#define TDEV_BASE 0xd0000000ULL

/* ---------------------------------------------------------------- a DMA test device
 * 0x00 ADDR (w), 0x08 GO (w len: read len bytes at ADDR, write them inverted right after,
 * raise the irq), 0x10 COUNT (r), 0x14 ACK (w: lower the irq), 0x18 DELAY (w ns: a timer
 * then writes COUNT at ADDR and raises the irq). */
struct tdev {
    struct device_env env;
    uint64_t addr;
    uint32_t count;
};

static void tdev_timer(void *arg)
{
    struct tdev *t = arg;
    guest_mem_write(t->env.mem, t->addr, &t->count, 4);
    irq_line_set(&t->env.irq, 1);
}

static int tdev_read(void *opaque, uint64_t off, unsigned size, uint64_t *v)
{
    struct tdev *t = opaque;
    (void)size;
    *v = off == 0x10 ? t->count : 0;
    return 0;
}

static int tdev_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct tdev *t = opaque;
    uint8_t buf[256];
    (void)size;
    switch (off) {
    case 0x00: t->addr = v; break;
    case 0x08:
        if (v > sizeof(buf) || guest_mem_read(t->env.mem, t->addr, buf, v))
            return -EINVAL;
        for (size_t i = 0; i < v; i++)
            buf[i] ^= 0xff;
        guest_mem_write(t->env.mem, t->addr + v, buf, v);
        t->count++;
        irq_line_set(&t->env.irq, 1);
        break;
    case 0x14: irq_line_set(&t->env.irq, 0); break;
    case 0x18: t->env.clock->schedule(t->env.clock->opaque, clock_now_ns(t->env.clock) + v,
                                      tdev_timer, t); break;
    }
    return 0;
}

static const struct bus_ops tdev_ops = { tdev_read, tdev_write };

static int tdev_create(const char *args, const struct device_env *env, void **state,
                       char *err, size_t errlen)
{
    struct tdev *t = calloc(1, sizeof(*t));
    (void)args; (void)err; (void)errlen;
    t->env = *env;
    *state = t;
    return 0;
}

static const struct device_type tdev_type = {
    .kind = "tdev", .space = BUS_MMIO, .window_size = 0x100, .create = tdev_create,
    .ops = &tdev_ops, .destroy = free,
};

static int test_create(void *opaque, struct device *dev, const char *kind, const char *args,
                       const struct device_env *env, struct bus *bus, char *err, size_t errlen)
{
    const struct device_type *t = !strcmp(kind, "tdev") ? &tdev_type :
                                  !strcmp(kind, "virtio-rng") ? &virtio_rng_type :
                                  device_type_find(kind);
    (void)opaque;
    memset(dev, 0, sizeof(*dev));
    if (!t) {
        snprintf(err, errlen, "unknown kind %s", kind);
        return -EINVAL;
    }
    int rc = t->create(args, env, &dev->state, err, errlen);
    if (rc)
        return rc;
    dev->type = t;
    return bus_register(bus, env->base, t->window_size, t->ops, dev->state, kind) < 0 ? -EEXIST : 0;
}

/* ---------------------------------------------------------------- a recording rig
 * The mock virtio driver supplies RAM, clock and irq sink; its register accesses are routed
 * through a real bus (a proxy device type) so the recorder's bus tap sees them. */
struct rig {
    struct mock_virtio m;
    struct bus bus;
    struct trace_recorder *rec;
    struct device_type proxy;
    uint64_t base;
};

static struct rig *cur_rig;

static int proxy_read(void *o, uint64_t off, unsigned size, uint64_t *v)
{
    (void)o;
    return bus_read(&cur_rig->bus, cur_rig->base + off, size, v);
}

static int proxy_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
    (void)o;
    return bus_write(&cur_rig->bus, cur_rig->base + off, size, v);
}

static const struct bus_ops proxy_ops = { proxy_read, proxy_write };

static void rig_start(struct rig *r, const char *path, const struct device_type *t,
                      const char *args)
{
    char err[256];
    struct machine_config mc = { .ram_size = 1 << 20, .seed = RUN_SEED, .backend = "sim",
                                 .ndevices = 1 };

    memset(r, 0, sizeof(*r));
    cur_rig = r;
    r->base = TDEV_BASE;
    mc.devices[0] = (struct machine_device){ "", "", TDEV_BASE, 5, BUS_MMIO, .nwindows = 0 };
    snprintf(mc.devices[0].kind, sizeof(mc.devices[0].kind), "%s", t->kind);
    snprintf(mc.devices[0].args, sizeof(mc.devices[0].args), "%s", args);
    ck_assert_int_eq(mock_virtio_init(&r->m, 1 << 20, machine_device_seed(RUN_SEED, 0)), 0);
    ck_assert_msg(trace_recorder_open(&r->rec, path, &mc, &r->m.clock, err, sizeof(err)) == 0,
                  "%s", err);
    r->m.env.irq.sink = trace_recorder_wrap_irq(r->rec, &r->m.sink);
    ck_assert_msg(mock_virtio_create(&r->m, t, args, err, sizeof(err)) == 0, "%s", err);
    bus_init(&r->bus, BUS_MMIO);
    ck_assert_int_ge(bus_register(&r->bus, TDEV_BASE, t->window_size, t->ops, r->m.state,
                                  t->kind), 0);
    r->proxy = *t;
    r->proxy.ops = &proxy_ops;
    r->m.type = &r->proxy;
    trace_recorder_attach_mem(r->rec, &r->m.mem);
    trace_recorder_attach_bus(r->rec, &r->bus);
}

static void rig_finish(struct rig *r, int status)
{
    char err[256];
    /* as vm.c: devices first, then the recorder, then memory */
    r->m.type->destroy(r->m.state);
    r->m.type = NULL;
    ck_assert_msg(trace_recorder_close(r->rec, status, err, sizeof(err)) == 0, "%s", err);
    mock_virtio_destroy(&r->m);
}

static void record_tdev(const char *path, int rounds)
{
    struct rig r;
    uint64_t v;

    rig_start(&r, path, &tdev_type, "");
    for (int i = 0; i < rounds; i++) {
        uint8_t *ram = mock_virtio_host(&r.m, 0x2000, 64);
        for (int k = 0; k < 16; k++)
            ram[k] = (uint8_t)(i * 16 + k);
        bus_write(&r.bus, TDEV_BASE + 0x00, 8, 0x2000);
        bus_write(&r.bus, TDEV_BASE + 0x08, 4, 16);
        bus_read(&r.bus, TDEV_BASE + 0x10, 4, &v);
        ck_assert_uint_eq(v, (uint64_t)i + 1);
        bus_write(&r.bus, TDEV_BASE + 0x14, 4, 1);
        bus_write(&r.bus, TDEV_BASE + 0x18, 4, 500);
        mock_virtio_advance(&r.m, 1000);
        bus_write(&r.bus, TDEV_BASE + 0x14, 4, 1);
        /* an access no device owns (like the LAPIC): recorded, not replayed */
        bus_read(&r.bus, 0xfee00030, 4, &v);
    }
    rig_finish(&r, 0);
}

struct loaded {
    struct trace_reader *rd;
    struct trace_event *ev;
    size_t n;
};

static void load(const char *path, struct loaded *l)
{
    char err[300];
    ck_assert_msg(trace_reader_open(&l->rd, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(trace_reader_load(l->rd, &l->ev, &l->n, err, sizeof(err)) == 0, "%s", err);
}

static void unload(struct loaded *l)
{
    free(l->ev);
    trace_reader_close(l->rd);
}

static const struct replay_opts test_opts = { .create = test_create };

START_TEST(recorded_run_replays_to_match)
{
    char path[128];
    struct loaded l;
    struct replay_result res;

    snprintf(path, sizeof(path), "%s/t.trace", scratch_dir);
    record_tdev(path, 5);
    load(path, &l);
    /* per round: 5 writes + 1 read + 1 unowned read (recorded, skipped by replay) */
    ck_assert_int_eq(trace_replay(trace_reader_header(l.rd), l.ev, l.n, &test_opts, &res),
                     REPLAY_MATCH);
    ck_assert_uint_eq(res.replayed, 5 * 6);
    /* checked: per round 1 read value + dma read + dma write + 2 irq + timer dma + irq + irq */
    ck_assert_uint_eq(res.checked, 5 * 8);
    ck_assert_int_eq(l.ev[l.n - 1].kind, TRACE_EV_END);
    unload(&l);
}
END_TEST

START_TEST(same_run_same_bytes)
{
    char a[128], b[128], cmd[300];

    snprintf(a, sizeof(a), "%s/a.trace", scratch_dir);
    snprintf(b, sizeof(b), "%s/b.trace", scratch_dir);
    record_tdev(a, 3);
    record_tdev(b, 3);
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Replays a copy of the trace with one event changed by `alter`; returns the result. */
static int replay_altered(struct loaded *l, void (*alter)(struct trace_event *ev, size_t n,
                                                          uint8_t *scratch),
                          struct replay_result *res, char *report, size_t reportlen)
{
    struct trace_event *copy = malloc(l->n * sizeof(*copy));
    static uint8_t scratch[4096];
    memcpy(copy, l->ev, l->n * sizeof(*copy));
    alter(copy, l->n, scratch);
    int st = trace_replay(trace_reader_header(l->rd), copy, l->n, &test_opts, res);
    FILE *f = fmemopen(report, reportlen, "w");
    trace_replay_report(f, trace_reader_header(l->rd), copy, l->n, res);
    fclose(f);
    free(copy);
    return st;
}

static size_t nth(struct trace_event *ev, size_t n, unsigned kind, unsigned which)
{
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == kind && which-- == 0)
            return i;
    return n;
}

static void flip_dma_read(struct trace_event *ev, size_t n, uint8_t *s)
{
    size_t i = nth(ev, n, TRACE_EV_DMA_READ, 2);
    memcpy(s, ev[i].data, ev[i].len);
    s[3] ^= 0x40;
    ev[i].data = s;
}

static void change_count(struct trace_event *ev, size_t n, uint8_t *s)
{
    (void)s;
    ev[nth(ev, n, TRACE_EV_MMIO_READ, 2)].value = 7;
}

static void lower_instead(struct trace_event *ev, size_t n, uint8_t *s)
{
    (void)s;
    ev[nth(ev, n, TRACE_EV_IRQ, 4)].value = 0;
}

static void drop_go(struct trace_event *ev, size_t n, uint8_t *s)
{
    (void)s;
    /* the second GO write becomes an access to nothing: its DMA never happens */
    for (size_t i = 0, seen = 0; i < n; i++)
        if (ev[i].kind == TRACE_EV_MMIO_WRITE && ev[i].addr == TDEV_BASE + 8 && seen++ == 1) {
            ev[i].device = -1;
            return;
        }
}

START_TEST(altered_traces_diverge_at_the_right_event)
{
    char path[128], report[4096], want[64];
    struct loaded l;
    struct replay_result res;

    snprintf(path, sizeof(path), "%s/t.trace", scratch_dir);
    record_tdev(path, 4);
    load(path, &l);

    /* Different bytes read by the device: its DMA write (the next event) differs. */
    ck_assert_int_eq(replay_altered(&l, flip_dma_read, &res, report, sizeof(report)),
                     REPLAY_DIVERGED);
    ck_assert_uint_eq(res.diverged_at, nth(l.ev, l.n, TRACE_EV_DMA_READ, 2) + 1);
    ck_assert_int_eq(l.ev[res.diverged_at].kind, TRACE_EV_DMA_WRITE);
    ck_assert_msg(strstr(res.message, "device wrote 0x9c at gpa=0x2013 (byte 3 of 16); the "
                         "trace has 0xdc"), "%s", res.message);
    snprintf(want, sizeof(want), "divergence at event #%llu", (unsigned long long)res.diverged_at);
    ck_assert_msg(strstr(report, want), "%s", report);
    ck_assert_msg(strstr(report, "context:\n") && strstr(report, "  > #"), "%s", report);
    /* five events of context before the divergence, then the event itself */
    int lines = 0;
    for (char *p = strstr(report, "context:\n"); (p = strchr(p + 1, '\n'));)
        lines += p[1] == ' ';
    ck_assert_int_eq(lines, 6);

    /* A register read returning something else. */
    ck_assert_int_eq(replay_altered(&l, change_count, &res, report, sizeof(report)),
                     REPLAY_DIVERGED);
    ck_assert_uint_eq(res.diverged_at, nth(l.ev, l.n, TRACE_EV_MMIO_READ, 2));
    ck_assert_msg(strstr(res.message, "device returned 0x2 for:"), "%s", res.message);

    /* An interrupt change the device does not make. */
    ck_assert_int_eq(replay_altered(&l, lower_instead, &res, report, sizeof(report)),
                     REPLAY_DIVERGED);
    ck_assert_uint_eq(res.diverged_at, nth(l.ev, l.n, TRACE_EV_IRQ, 4));
    ck_assert_msg(strstr(res.message, "device raised irq gsi=5; the trace has:"), "%s",
                  res.message);

    /* A request that is never made: the device does not do the DMA the trace has. */
    ck_assert_int_eq(replay_altered(&l, drop_go, &res, report, sizeof(report)),
                     REPLAY_DIVERGED);
    ck_assert_uint_eq(res.diverged_at, nth(l.ev, l.n, TRACE_EV_DMA_READ, 1));
    ck_assert_msg(strstr(res.message, "device did not do what the trace has"), "%s",
                  res.message);
    unload(&l);
}
END_TEST

START_TEST(virtio_rng_replays_and_detects_changed_rings)
{
    char path[128], err[256], report[4096];
    struct rig r;
    struct loaded l;
    struct replay_result res;

    snprintf(path, sizeof(path), "%s/rng.trace", scratch_dir);
    rig_start(&r, path, &virtio_rng_type, "");
    struct mock_virtio_opts mo = { 0 };
    ck_assert_int_eq(mock_virtio_setup(&r.m, &mo), 0);
    uint64_t buf = mock_virtio_alloc(&r.m, 64, 16);
    for (int i = 0; i < 6; i++) {
        struct mock_buf b = { buf, 16u + (uint32_t)i * 8, 1 };
        uint32_t len;
        ck_assert_int_ge(mock_vq_request(&r.m, 0, &b, 1, &len), 0);
        ck_assert_uint_eq(len, b.len);
        mock_virtio_ack_irq(&r.m);
    }
    rig_finish(&r, 3);
    (void)err;

    load(path, &l);
    ck_assert_int_eq(trace_replay(trace_reader_header(l.rd), l.ev, l.n, &test_opts, &res),
                     REPLAY_MATCH);
    ck_assert_uint_gt(res.checked, 6 * 3);
    ck_assert_uint_eq(nth(l.ev, l.n, TRACE_EV_NOTIFY, 5) < l.n, 1);
    ck_assert_int_eq((int)l.ev[l.n - 1].value, 3);
    /* The random bytes the device wrote, altered in the trace: found at that event. */
    size_t w = l.n;
    for (size_t i = 0; i < l.n; i++)
        if (l.ev[i].kind == TRACE_EV_DMA_WRITE && l.ev[i].addr == buf && w == l.n)
            w = i;
    ck_assert_uint_lt(w, l.n);
    uint8_t copy[64];
    memcpy(copy, l.ev[w].data, l.ev[w].len);
    copy[0] ^= 1;
    const uint8_t *orig = l.ev[w].data;
    l.ev[w].data = copy;
    ck_assert_int_eq(trace_replay(trace_reader_header(l.rd), l.ev, l.n, &test_opts, &res),
                     REPLAY_DIVERGED);
    ck_assert_uint_eq(res.diverged_at, w);
    l.ev[w].data = orig;
    FILE *f = fmemopen(report, sizeof(report), "w");
    trace_replay_report(f, trace_reader_header(l.rd), l.ev, l.n, &res);
    fclose(f);
    unload(&l);
}
END_TEST

/* Registry devices, no create hook: uart8250 and debug-exit on a port bus. */
static void record_legacy(const char *path)
{
    char err[256];
    struct mock_virtio m;
    struct bus pio;
    struct device dev[2];
    struct trace_recorder *rec;
    struct machine_config mc = { .ram_size = 1 << 20, .seed = RUN_SEED, .backend = "sim",
                                 .ndevices = 2 };
    uint64_t v;

    mc.devices[0] = (struct machine_device){ "uart8250", "out=none,in=hi", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    mc.devices[1] = (struct machine_device){ "debug-exit", "", 0xf4, -1, BUS_PIO, .nwindows = 0 };
    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 0), 0);
    ck_assert_int_eq(trace_recorder_open(&rec, path, &mc, &m.clock, err, sizeof(err)), 0);
    bus_init(&pio, BUS_PIO);
    const struct irq_sink *sink = trace_recorder_wrap_irq(rec, &m.sink);
    for (unsigned i = 0; i < 2; i++) {
        struct device_env env = m.env;
        env.base = mc.devices[i].base;
        env.irq = (struct irq_line){ mc.devices[i].irq >= 0 ? sink : NULL,
                                     mc.devices[i].irq >= 0 ? (unsigned)mc.devices[i].irq : 0 };
        env.seed = machine_device_seed(RUN_SEED, i);
        ck_assert_msg(device_create(&dev[i], mc.devices[i].kind, mc.devices[i].args, &env, &pio,
                                    err, sizeof(err)) == 0, "%s", err);
    }
    trace_recorder_attach_bus(rec, &pio);
    trace_recorder_attach_mem(rec, &m.mem);
    bus_write(&pio, 0x3f8 + 1, 1, 0x03);            /* IER: rx + thr-empty interrupts */
    bus_read(&pio, 0x3f8 + 2, 1, &v);               /* IIR */
    bus_read(&pio, 0x3f8 + 0, 1, &v);               /* RBR: 'h' */
    ck_assert_uint_eq(v, 'h');
    bus_read(&pio, 0x3f8 + 0, 1, &v);               /* 'i' */
    for (const char *s = "hello\n"; *s; s++) {
        bus_read(&pio, 0x3f8 + 5, 1, &v);           /* LSR */
        bus_write(&pio, 0x3f8, 1, (uint64_t)*s);
        bus_read(&pio, 0x3f8 + 2, 1, &v);
    }
    bus_write(&pio, 0xf4, 1, 5);                    /* debug-exit: status 11 */
    device_destroy(&dev[1]);
    device_destroy(&dev[0]);
    ck_assert_int_eq(trace_recorder_close(rec, 11, err, sizeof(err)), 0);
    mock_virtio_destroy(&m);
}

START_TEST(registry_devices_replay_and_filter)
{
    char path[128];
    struct loaded l;
    struct replay_result res;

    snprintf(path, sizeof(path), "%s/legacy.trace", scratch_dir);
    record_legacy(path);
    load(path, &l);
    const struct trace_header *h = trace_reader_header(l.rd);
    ck_assert_int_eq(trace_replay(h, l.ev, l.n, NULL, &res), REPLAY_MATCH);
    ck_assert_uint_eq(res.replayed, 1 + 1 + 2 + 6 * 3 + 1);
    ck_assert_int_eq(res.exit_requested, 1);
    ck_assert_int_eq(res.exit_status, 11);

    struct replay_opts o = { .device = "uart8250" };
    ck_assert_int_eq(trace_replay(h, l.ev, l.n, &o, &res), REPLAY_MATCH);
    ck_assert_uint_eq(res.replayed, 1 + 1 + 2 + 6 * 3);
    ck_assert_int_eq(res.exit_requested, 0);
    o.device = "#1";
    ck_assert_int_eq(trace_replay(h, l.ev, l.n, &o, &res), REPLAY_MATCH);
    ck_assert_uint_eq(res.replayed, 1);
    o.device = "virtio-net";
    ck_assert_int_eq(trace_replay(h, l.ev, l.n, &o, &res), REPLAY_BAD);
    ck_assert_msg(strstr(res.message, "--device virtio-net: no such device"), "%s", res.message);

    /* The fuzz entry point on this trace and on damaged copies of it. */
    size_t len;
    FILE *f = fopen(path, "rb");
    static uint8_t b[1 << 16], m[1 << 16];
    len = fread(b, 1, sizeof(b), f);
    fclose(f);
    ck_assert_int_eq(trace_fuzz_one(b, len), REPLAY_MATCH);
    struct prng p;
    prng_seed(&p, 99);
    for (int round = 0; round < 2000; round++) {
        memcpy(m, b, len);
        m[prng_below(&p, len)] ^= (uint8_t)(1u << prng_below(&p, 8));
        trace_fuzz_one(m, len - (round % 4 == 0 ? prng_below(&p, len) : 0));
    }
    unload(&l);
}
END_TEST

START_TEST(unknown_device_kind_is_a_bad_trace)
{
    char path[128], err[256];
    struct trace_header h = { .version = 1 };
    struct trace_event end = { .kind = TRACE_EV_END, .device = -1 };
    struct loaded l;
    struct replay_result res;

    snprintf(path, sizeof(path), "%s/u.trace", scratch_dir);
    h.machine.ram_size = 1 << 20;
    h.machine.ndevices = 1;
    h.machine.devices[0] = (struct machine_device){ "warp-drive", "", 0xd0000000, 5, BUS_MMIO, .nwindows = 0 };
    ck_assert_int_eq(trace_write_file(path, &h, &end, 1, err, sizeof(err)), 0);
    load(path, &l);
    ck_assert_int_eq(trace_replay(trace_reader_header(l.rd), l.ev, l.n, NULL, &res), REPLAY_BAD);
    ck_assert_msg(strstr(res.message, "device 0 (warp-drive):") &&
                  strstr(res.message, "unknown"), "%s", res.message);
    unload(&l);
}
END_TEST

START_TEST(cow_overlay_never_writes_the_base)
{
    char path[128], err[256];
    struct disk *d;
    uint8_t buf[10000], got[10000];

    snprintf(path, sizeof(path), "%s/base.img", scratch_dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 65536; i++)
        fputc(i & 0xff, f);
    fclose(f);
    ck_assert_msg(cow_disk_open(path, 0, &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(d->size, 65536);
    memset(buf, 0xab, sizeof(buf));
    ck_assert_int_eq(disk_write(d, 1000, buf, sizeof(buf)), 0);     /* spans 4 blocks */
    ck_assert_int_eq(disk_read(d, 0, got, sizeof(got)), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(got[i], (uint8_t)i);
    for (int i = 1000; i < 10000; i++)
        ck_assert_uint_eq(got[i], 0xab);
    ck_assert_int_eq(disk_read(d, 11000, got, 10), 0);
    ck_assert_uint_eq(got[0], (uint8_t)11000);
    ck_assert_uint_eq(cow_disk_dirty_bytes(d), 3 * 4096);
    ck_assert_int_eq(d->ops->write_zeroes(d, 60000, 5536), 0);
    ck_assert_int_eq(disk_read(d, 65535, got, 1), 0);
    ck_assert_uint_eq(got[0], 0);
    ck_assert_int_eq(disk_read(d, 65530, got, 10), -EINVAL);
    disk_close(d);
    /* the file is untouched */
    f = fopen(path, "rb");
    for (int i = 0; i < 65536; i++)
        ck_assert_int_eq(fgetc(f), i & 0xff);
    fclose(f);
    ck_assert_int_ne(cow_disk_open("/nonexistent/x.img", 0, &d, err, sizeof(err)), 0);
}
END_TEST


/* A trace of a machine described before port 0x61 went to the PIT (format 2: the i8042's
 * window was 0x60-0x64, the PIT's 0x40-0x43 with channel 2's gate tied high) replays on
 * that layout: 0x61 reads the i8042's 0 and channel 2 counts from its count write. The same
 * events on today's layout diverge (the gate is low until port 0x61 sets it). */
START_TEST(old_port_layout_replays_as_recorded)
{
    struct trace_header h = { .version = 2 };
    struct trace_event ev[16];
    struct replay_result res;
    size_t n = 0;
    uint64_t t0 = 1000, t1 = t0 + 1000000;     /* 1 ms: 1193 PIT clocks */
    unsigned left = 0xffff - 1193;

    h.machine.ram_size = 1 << 20;
    h.machine.ndevices = 2;
    h.machine.devices[0] = (struct machine_device){ "i8042", "", 0x60, -1, BUS_PIO, .nwindows = 0 };
    h.machine.devices[1] = (struct machine_device){ "i8254", "", 0x40, -1, BUS_PIO, .nwindows = 0 };
#define PIO(k, t, dev, a, v) (struct trace_event){ .kind = TRACE_EV_PIO_##k, .time_ns = (t), \
        .device = (dev), .addr = (a), .size = 1, .value = (v) }
    ev[n++] = PIO(OUT, t0, 1, 0x43, 0xb0);     /* ch2 word mode 0, 0xffff */
    ev[n++] = PIO(OUT, t0, 1, 0x42, 0xff);
    ev[n++] = PIO(OUT, t0, 1, 0x42, 0xff);
    ev[n++] = PIO(OUT, t1, 1, 0x43, 0x80);     /* latch ch2 */
    ev[n++] = PIO(IN, t1, 1, 0x42, left & 0xff);
    ev[n++] = PIO(IN, t1, 1, 0x42, left >> 8);
    ev[n++] = PIO(IN, t1, 0, 0x61, 0);
#undef PIO
    ev[n++] = (struct trace_event){ .kind = TRACE_EV_END, .time_ns = t1, .device = -1 };
    for (unsigned i = 0; i < 2; i++)
        machine_device_set_format1_windows(&h.machine.devices[i]);
    ck_assert_uint_eq(h.machine.devices[0].windows[0].size, 5);
    ck_assert_uint_eq(h.machine.devices[1].windows[0].size, 4);
    ck_assert_int_eq(trace_replay(&h, ev, n, NULL, &res), REPLAY_MATCH);
    ck_assert_uint_eq(res.checked, 3);

    for (unsigned i = 0; i < 2; i++)
        h.machine.devices[i].nwindows = 0;      /* today's: 0x60, 0x64; 0x40-0x43, 0x61 */
    ck_assert_int_eq(trace_replay(&h, ev, n, NULL, &res), REPLAY_DIVERGED);
    ck_assert_msg(strstr(res.message, "device returned 0xff"), "%s", res.message);
}
END_TEST

/* ddmin over requests: 20 requests, each a notify plus a fault text naming it; the check
 * "fails" (exits 1) while requests 3 and 11 are both present. */
START_TEST(minimize_keeps_only_the_requests_the_check_needs)
{
    char path[128], out[128], check[300], err[300], txt[20][24];
    struct trace_header h = { .version = 1 };
    struct trace_event ev[61];
    size_t n = 0;
    struct loaded l;

    h.machine.ram_size = 1 << 20;
    h.machine.ndevices = 1;
    h.machine.devices[0] = (struct machine_device){ "virtio-rng", "", TDEV_BASE, 5, BUS_MMIO, .nwindows = 0 };
    for (int i = 0; i < 20; i++) {
        snprintf(txt[i], sizeof(txt[i]), "<req-%d>", i);
        ev[n++] = (struct trace_event){ .kind = TRACE_EV_FAULT, .time_ns = (uint64_t)i * 10,
                                        .data = (const uint8_t *)txt[i],
                                        .len = (uint32_t)strlen(txt[i]), .device = -1 };
        ev[n++] = (struct trace_event){ .kind = TRACE_EV_MMIO_WRITE, .time_ns = (uint64_t)i * 10,
                                        .addr = TDEV_BASE + 0x50, .size = 4, .device = 0 };
        ev[n++] = (struct trace_event){ .kind = TRACE_EV_NOTIFY, .time_ns = (uint64_t)i * 10,
                                        .device = 0 };
    }
    ev[n++] = (struct trace_event){ .kind = TRACE_EV_END, .time_ns = 500, .device = -1 };
    snprintf(path, sizeof(path), "%s/m.trace", scratch_dir);
    snprintf(out, sizeof(out), "%s/min.trace", scratch_dir);
    ck_assert_int_eq(trace_write_file(path, &h, ev, n, err, sizeof(err)), 0);
    size_t *starts;
    ck_assert_uint_eq(trace_requests(ev, n, &starts), 20);
    ck_assert_uint_eq(starts[3], 9);
    ck_assert_uint_eq(starts[20], n - 1);
    free(starts);
    /* Without notifies every guest access closes a request (the events after the last
     * one make a request of their own). */
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == TRACE_EV_NOTIFY)
            ev[i].kind = TRACE_EV_IRQ;
    ck_assert_uint_eq(trace_requests(ev, n, &starts), 21);
    ck_assert_uint_eq(starts[1], 2);
    free(starts);
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == TRACE_EV_IRQ)
            ev[i].kind = TRACE_EV_NOTIFY;

    snprintf(check, sizeof(check), "grep -q '<req-3>' \"$TRACE\" && grep -q '<req-11>' "
             "\"$TRACE\" && exit 1; exit 0");
    struct trace_minimize_opts o = { .check = check, .out = out };
    load(path, &l);
    ck_assert_msg(trace_minimize(trace_reader_header(l.rd), l.ev, l.n, &o, err, sizeof(err)) == 0,
                  "%s", err);
    unload(&l);
    load(out, &l);
    ck_assert_uint_eq(l.n, 3 + 3 + 1);
    ck_assert_int_eq(memcmp(l.ev[0].data, "<req-3>", 7), 0);
    ck_assert_int_eq(memcmp(l.ev[3].data, "<req-11>", 8), 0);
    ck_assert_int_eq(l.ev[6].kind, TRACE_EV_END);
    unload(&l);
    ck_assert_int_ne(access(out, F_OK), -1);

    /* A check that passes on the original: nothing to minimise, a clear error. */
    struct trace_minimize_opts o2 = { .check = "exit 0", .out = out };
    load(path, &l);
    ck_assert_int_eq(trace_minimize(trace_reader_header(l.rd), l.ev, l.n, &o2, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "the check passes"), "%s", err);
    unload(&l);
}
END_TEST

START_TEST(recording_started_mid_run_is_refused_by_replay)
{
    char path[128], err[256];
    struct trace_recorder *rec;
    struct machine_config mc = { .ram_size = 1 << 20, .backend = "kvm", .ndevices = 0 };
    struct loaded l;
    struct replay_result res;

    snprintf(path, sizeof(path), "%s/mid.trace", scratch_dir);
    ck_assert_int_eq(trace_recorder_open_running(&rec, path, &mc, NULL, err, sizeof(err)), 0);
    trace_recorder_control(rec, "{\"cmd\":\"stats\"}");
    ck_assert_int_eq(trace_recorder_close(rec, 0, err, sizeof(err)), 0);
    load(path, &l);
    ck_assert_uint_eq(trace_reader_header(l.rd)->flags, TRACE_FLAG_MID_RUN);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_int_eq(l.ev[0].kind, TRACE_EV_CONTROL);
    ck_assert_int_eq(trace_replay(trace_reader_header(l.rd), l.ev, l.n, NULL, &res), REPLAY_BAD);
    ck_assert_msg(strstr(res.message, "started on a running VM"), "%s", res.message);
    unload(&l);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("trace_replay");
    TCase *t = tcase_create("replay");

    tcase_add_checked_fixture(t, scratch_setup, scratch_teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, recorded_run_replays_to_match);
    tcase_add_test(t, same_run_same_bytes);
    tcase_add_test(t, altered_traces_diverge_at_the_right_event);
    tcase_add_test(t, virtio_rng_replays_and_detects_changed_rings);
    tcase_add_test(t, registry_devices_replay_and_filter);
    tcase_add_test(t, unknown_device_kind_is_a_bad_trace);
    tcase_add_test(t, old_port_layout_replays_as_recorded);
    tcase_add_test(t, cow_overlay_never_writes_the_base);
    tcase_add_test(t, minimize_keeps_only_the_requests_the_check_needs);
    tcase_add_test(t, recording_started_mid_run_is_refused_by_replay);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
