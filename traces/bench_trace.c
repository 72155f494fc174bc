/* Trace benchmark: writing and parsing a 1e6-event synthetic trace, and recording then
 * replaying a real device (uart8250) through the recorder taps and the replayer.
 * Prints a table; writes $BENCH_JSON_DIR/trace.json when that is set.
 *
 * This file sits in traces/, whose .c files all go into libvmlab.a, which must not gain a
 * main(): traces/module.mk defines VMLAB_IN_LIBRARY for the library's copies of this
 * object, and then the file is empty. Built as a program (the top Makefile's bench rule
 * or traces/module.mk), it is the benchmark. */
#ifndef VMLAB_IN_LIBRARY

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "traces/record.h"
#include "traces/replay.h"
#include "traces/trace_format.h"
#include "vmm/prng.h"

#define N_EVENTS 1000000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);    /* benchmark timing only: never in a trace */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static void make_header(struct trace_header *h)
{
    memset(h, 0, sizeof(*h));
    h->version = TRACE_VERSION;
    h->machine.ram_size = 256ULL << 20;
    h->machine.seed = 1;
    snprintf(h->machine.backend, sizeof(h->machine.backend), "sim");
    h->machine.ndevices = 2;
    h->machine.devices[0] = (struct machine_device){ "uart8250", "out=none", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    h->machine.devices[1] = (struct machine_device){ "virtio-blk", "mem=16M", 0xd0000000, 5,
                                                     BUS_MMIO, .nwindows = 0 };
}

/* A mix like a virtio guest's: register accesses, small DMA, interrupts, notifies. */
static void synth(struct prng *p, uint64_t i, struct trace_event *e, const uint8_t *bytes)
{
    unsigned r = (unsigned)prng_below(p, 100);

    memset(e, 0, sizeof(*e));
    e->time_ns = i * 250 + prng_below(p, 200);
    e->device = -1;
    if (r < 55) {
        e->kind = r & 1 ? TRACE_EV_MMIO_WRITE : TRACE_EV_MMIO_READ;
        e->device = 1;
        e->addr = 0xd0000000 + 4 * prng_below(p, 0x40);
        e->size = 4;
        e->value = prng_below(p, 1u << (8 * (unsigned)prng_below(p, 4)));
    } else if (r < 65) {
        e->kind = r & 1 ? TRACE_EV_PIO_OUT : TRACE_EV_PIO_IN;
        e->device = 0;
        e->addr = 0x3f8 + prng_below(p, 8);
        e->size = 1;
        e->value = prng_below(p, 256);
    } else if (r < 85) {
        e->kind = r & 1 ? TRACE_EV_DMA_WRITE : TRACE_EV_DMA_READ;
        e->addr = 0x100000 + 16 * prng_below(p, 4096);
        e->len = r < 80 ? 2 + 2 * (uint32_t)prng_below(p, 8) : 16;
        e->data = bytes + prng_below(p, 4096);
    } else if (r < 95) {
        e->kind = TRACE_EV_IRQ;
        e->addr = 5;
        e->value = r & 1;
    } else {
        e->kind = TRACE_EV_NOTIFY;
        e->device = 1;
        e->addr = 0;
    }
}

struct fake_clock { uint64_t t; };
static uint64_t fc_now(void *o) { return ((struct fake_clock *)o)->t; }

int main(int argc, char **argv)
{
    char dir[] = "/tmp/vmlab-bench-trace-XXXXXX", path[256], rpath[256], err[300];
    static uint8_t bytes[8192];
    struct trace_header h;
    struct prng p;
    double t0, best_parse = 1e9, best_load = 1e9;
    uint64_t n_parsed = 0;

    (void)argc;
    (void)argv;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/synth.trace", dir);
    snprintf(rpath, sizeof(rpath), "%s/uart.trace", dir);
    for (unsigned i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 31 + (i >> 7));

    /* 1. write */
    struct trace_writer *w;
    make_header(&h);
    prng_seed(&p, 7);
    t0 = now_s();
    if (trace_writer_open(&w, path, &h, err, sizeof(err))) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return 1;
    }
    for (uint64_t i = 0; i < N_EVENTS - 1; i++) {
        struct trace_event e;
        synth(&p, i, &e, bytes);
        trace_writer_add(w, &e);
    }
    struct trace_event end = { .kind = TRACE_EV_END, .time_ns = (uint64_t)N_EVENTS * 250,
                               .device = -1 };
    trace_writer_add(w, &end);
    if (trace_writer_close(w, err, sizeof(err))) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return 1;
    }
    double t_write = now_s() - t0;
    uint64_t size = file_size(path);

    /* 2. parse (streaming) and load (into an array), best of 5 */
    for (int rep = 0; rep < 5; rep++) {
        struct trace_reader *r;
        struct trace_event e;
        uint64_t cnt = 0, sum = 0;
        t0 = now_s();
        if (trace_reader_open(&r, path, err, sizeof(err))) {
            fprintf(stderr, "bench_trace: %s\n", err);
            return 1;
        }
        while (trace_reader_next(r, &e, err, sizeof(err)) == 1) {
            cnt++;
            sum += e.value;
        }
        double t = now_s() - t0;
        trace_reader_close(r);
        if (t < best_parse)
            best_parse = t;
        n_parsed = cnt;
        if (sum == 42)
            printf(" ");    /* keep the loop's work observable */

        struct trace_event *ev;
        size_t n;
        t0 = now_s();
        trace_reader_open(&r, path, err, sizeof(err));
        trace_reader_load(r, &ev, &n, err, sizeof(err));
        t = now_s() - t0;
        free(ev);
        trace_reader_close(r);
        if (t < best_load)
            best_load = t;
    }
    if (n_parsed != N_EVENTS) {
        fprintf(stderr, "bench_trace: parsed %" PRIu64 " events, wrote %d\n", n_parsed, N_EVENTS);
        return 1;
    }

    /* 3. record a real device through the taps, then replay it */
    struct fake_clock fc = { 0 };
    struct clock clk = { fc_now, NULL, NULL, &fc };
    struct machine_config mc = { .ram_size = 1 << 20, .seed = 1, .backend = "sim", .ndevices = 1 };
    mc.devices[0] = (struct machine_device){ "uart8250", "out=none", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    static uint8_t ram[1 << 20];
    struct guest_mem mem;
    struct bus pio;
    struct device dev;
    struct trace_recorder *rec;
    struct irq_sink null_sink = { NULL, NULL };
    guest_mem_init_buffer(&mem, ram, sizeof(ram));
    bus_init(&pio, BUS_PIO);
    if (trace_recorder_open(&rec, rpath, &mc, &clk, err, sizeof(err))) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return 1;
    }
    struct device_env env = { .mem = &mem, .clock = &clk, .base = 0x3f8, .deterministic = 1,
                              .log = stderr,
                              .irq = { trace_recorder_wrap_irq(rec, &null_sink), 4 } };
    if (device_create(&dev, "uart8250", "out=none", &env, &pio, err, sizeof(err))) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return 1;
    }
    trace_recorder_attach_mem(rec, &mem);
    trace_recorder_attach_bus(rec, &pio);
    const unsigned iters = N_EVENTS / 3;
    uint64_t v;
    t0 = now_s();
    for (unsigned i = 0; i < iters; i++) {
        fc.t += 100;
        bus_read(&pio, 0x3f8 + 5, 1, &v);
        bus_write(&pio, 0x3f8, 1, 'a' + i % 26);
        bus_read(&pio, 0x3f8 + 2, 1, &v);
    }
    device_destroy(&dev);
    trace_recorder_close(rec, 0, err, sizeof(err));
    double t_record = now_s() - t0;
    uint64_t rsize = file_size(rpath);

    struct trace_reader *rr;
    struct trace_event *rev;
    size_t rn;
    struct replay_result res;
    trace_reader_open(&rr, rpath, err, sizeof(err));
    trace_reader_load(rr, &rev, &rn, err, sizeof(err));
    t0 = now_s();
    int st = trace_replay(trace_reader_header(rr), rev, rn, NULL, &res);
    double t_replay = now_s() - t0;
    free(rev);
    trace_reader_close(rr);
    if (st != REPLAY_MATCH) {
        fprintf(stderr, "bench_trace: replay did not match: %s\n", res.message);
        return 1;
    }

    double mb = (double)size / 1e6;
    printf("%-34s %14s %12s\n", "trace benchmark", "value", "unit");
    printf("%-34s %14d %12s\n", "synthetic events", N_EVENTS, "events");
    printf("%-34s %14.2f %12s\n", "synthetic file size", mb, "MB");
    printf("%-34s %14.2f %12s\n", "bytes per event", (double)size / N_EVENTS, "bytes");
    printf("%-34s %14.2f %12s\n", "write", N_EVENTS / t_write / 1e6, "M events/s");
    printf("%-34s %14.2f %12s\n", "parse (streaming)", N_EVENTS / best_parse / 1e6, "M events/s");
    printf("%-34s %14.1f %12s\n", "parse (streaming)", mb / best_parse, "MB/s");
    printf("%-34s %14.2f %12s\n", "load (event array)", N_EVENTS / best_load / 1e6, "M events/s");
    printf("%-34s %14.2f %12s\n", "record uart8250 via taps", (double)rn / t_record / 1e6,
           "M events/s");
    printf("%-34s %14.2f %12s\n", "uart8250 bytes per event", (double)rsize / (double)rn, "bytes");
    printf("%-34s %14.2f %12s\n", "replay uart8250", (double)rn / t_replay / 1e6, "M events/s");

    const char *jd = getenv("BENCH_JSON_DIR");
    if (jd && *jd) {
        char jp[512];
        snprintf(jp, sizeof(jp), "%s/trace.json", jd);
        FILE *f = fopen(jp, "w");
        if (!f) {
            perror(jp);
            return 1;
        }
        fprintf(f, "{\n  \"area\": \"trace\",\n  \"events\": %d,\n"
                "  \"bytes_per_event\": %.3f,\n  \"write_events_per_s\": %.0f,\n"
                "  \"parse_events_per_s\": %.0f,\n  \"parse_mb_per_s\": %.1f,\n"
                "  \"load_events_per_s\": %.0f,\n  \"record_events_per_s\": %.0f,\n"
                "  \"record_bytes_per_event\": %.3f,\n  \"replay_events_per_s\": %.0f\n}\n",
                N_EVENTS, (double)size / N_EVENTS, N_EVENTS / t_write, N_EVENTS / best_parse,
                mb / best_parse, N_EVENTS / best_load, (double)rn / t_record,
                (double)rsize / (double)rn, (double)rn / t_replay);
        fclose(f);
    }
    unlink(path);
    unlink(rpath);
    rmdir(dir);
    return 0;
}

#else
/* In the library this file is empty; the declaration keeps ISO C happy. */
typedef int bench_trace_not_built_into_the_library;
#endif
