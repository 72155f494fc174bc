/* Driver-less virtio-blk round trips: the mock driver (tests/mock_virtio) submits one
 * request at a time to virtio-blk over virtio-mmio on an in-memory disk, kicks, and
 * collects the used entry. Timed per request with the TSC (lfence; rdtsc), converted to ns
 * by calibrating against CLOCK_MONOTONIC over the run (the benchmark may read the host
 * clock; device models never do). Prints min / median / p99 per configuration
 * and writes $BENCH_JSON_DIR/virtio.json when that is set.
 *
 *   bench_virtio_blk [--requests N]      (default 1,000,000 per configuration)
 * Target: 4 KiB read median <= 200 ns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "devices/virtio/virtio_blk.h"
#include "tests/mock_virtio.h"

struct result {
    char name[64];
    unsigned long n;
    double min, median, p99, mean;
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static inline uint64_t cycles(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

/* Cost of one timestamp pair in cycles, subtracted from every sample. */
static uint64_t timer_overhead(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 10000; i++) {
        uint64_t a = cycles(), b = cycles();
        if (b - a < best)
            best = b - a;
    }
    return best;
}

static int run(const char *name, int packed, int indirect, int event_idx, uint32_t type,
               uint32_t data_len, unsigned long n, uint32_t *samples, uint64_t overhead,
               struct result *out)
{
    uint64_t ns0 = now_ns(), c0 = cycles();
    struct mock_virtio m;
    struct mock_virtio_opts o = { .packed = packed, .indirect = indirect,
                                  .event_idx = event_idx };
    char err[256];
    int rc;

    if ((rc = mock_virtio_init(&m, 8 << 20, 1)) ||
        (rc = mock_virtio_create(&m, &virtio_blk_type, "mem=64M,id=bench", err, sizeof(err))) ||
        (rc = mock_virtio_setup(&m, &o))) {
        fprintf(stderr, "bench_virtio_blk: setup failed: %s\n", strerror(-rc));
        return rc;
    }
    uint64_t hdr = mock_virtio_alloc(&m, 16, 16), st = mock_virtio_alloc(&m, 1, 1);
    uint64_t data = mock_virtio_alloc(&m, 4096, 4096);
    uint8_t *h = mock_virtio_host(&m, hdr, 16);
    memset(h, 0, 16);
    memcpy(h, &type, 4);
    struct mock_buf bufs[3] = { { hdr, 16, 0 }, { data, data_len, 1 }, { st, 1, 1 } };
    uint32_t len;
    for (unsigned long i = 0; i < n + 1000; i++) {
        uint64_t sector = (i % 256) * 8;     /* a 1 MiB working set, page-cache hot */
        memcpy(h + 8, &sector, 8);
        uint64_t t0 = cycles();
        rc = mock_vq_request(&m, 0, bufs, 3, &len);
        uint64_t t1 = cycles();
        if (rc < 0 || *(uint8_t *)mock_virtio_host(&m, st, 1) != 0) {
            fprintf(stderr, "bench_virtio_blk: request %lu failed (%d)\n", i, rc);
            mock_virtio_destroy(&m);
            return -EIO;
        }
        if (m.irq_level)
            mock_virtio_ack_irq(&m);
        if (i >= 1000) {    /* warm-up excluded */
            uint64_t d = t1 - t0;
            samples[i - 1000] = (uint32_t)(d > overhead ? d - overhead : 0);
        }
    }
    uint64_t ns1 = now_ns(), c1 = cycles();
    mock_virtio_destroy(&m);
    double ns_per_cycle = (double)(ns1 - ns0) / (double)(c1 - c0);
    double sum = 0;
    for (unsigned long i = 0; i < n; i++)
        sum += samples[i];
    qsort(samples, n, sizeof(samples[0]), cmp_u32);
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->n = n;
    out->min = samples[0] * ns_per_cycle;
    out->median = samples[n / 2] * ns_per_cycle;
    out->p99 = samples[(unsigned long)(n * 0.99)] * ns_per_cycle;
    out->mean = sum / (double)n * ns_per_cycle;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long n = 1000000;
    static const struct {
        const char *name;
        int packed, indirect, event_idx;
        uint32_t type, len;
    } cfgs[] = {
        { "read_4k_split", 0, 0, 0, VIRTIO_BLK_T_IN, 4096 },
        { "read_4k_split_indirect_eventidx", 0, 1, 1, VIRTIO_BLK_T_IN, 4096 },
        { "read_4k_packed", 1, 0, 0, VIRTIO_BLK_T_IN, 4096 },
        { "read_4k_packed_indirect_eventidx", 1, 1, 1, VIRTIO_BLK_T_IN, 4096 },
        { "get_id_split", 0, 0, 0, VIRTIO_BLK_T_GET_ID, 20 },
        { "get_id_packed", 1, 0, 0, VIRTIO_BLK_T_GET_ID, 20 },
    };
    enum { NCFG = sizeof(cfgs) / sizeof(cfgs[0]) };
    struct result res[NCFG];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--requests") && i + 1 < argc) {
            n = strtoul(argv[++i], NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--requests N]\n", argv[0]);
            return 2;
        }
    }
    if (n < 100)
        n = 100;
    uint32_t *samples = malloc(n * sizeof(*samples));
    if (!samples)
        return 10;
    uint64_t overhead = timer_overhead();
    /* Other work on the host shows up in the tails; record how busy it was. */
    double load = -1;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load) != 1)
            load = -1;
        fclose(la);
    }
    printf("virtio-blk driver-less round trips (mock driver, in-memory disk), %lu requests "
           "each, timestamp overhead %llu cycles subtracted\n", n, (unsigned long long)overhead);
    printf("%-36s %9s %9s %9s %9s\n", "configuration", "min ns", "median ns", "p99 ns",
           "mean ns");
    for (int c = 0; c < NCFG; c++) {
        if (run(cfgs[c].name, cfgs[c].packed, cfgs[c].indirect, cfgs[c].event_idx,
                cfgs[c].type, cfgs[c].len, n, samples, overhead, &res[c])) {
            free(samples);
            return 10;
        }
        printf("%-36s %9.0f %9.0f %9.0f %9.1f\n", res[c].name, res[c].min, res[c].median,
               res[c].p99, res[c].mean);
    }
    free(samples);
    int ok = res[0].median <= 200;
    printf("target: 4 KiB read median <= 200 ns (split): %s (%.0f ns); host load average %.2f\n",
           ok ? "met" : "NOT met", res[0].median, load);

    const char *dir = getenv("BENCH_JSON_DIR");
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/virtio.json", dir);
        FILE *f = fopen(path, "w");
        if (!f) {
            perror(path);
            return 10;
        }
        fprintf(f, "{\n  \"benchmark\": \"virtio_blk_roundtrip\",\n  \"requests\": %lu,\n"
                   "  \"unit\": \"ns\",\n  \"target_read_4k_median_ns\": 200,\n"
                   "  \"target_met\": %s,\n  \"host_loadavg\": %.2f,\n  \"configs\": {\n",
                n, ok ? "true" : "false", load);
        for (int c = 0; c < NCFG; c++)
            fprintf(f, "    \"%s\": {\"min\": %.0f, \"median\": %.0f, \"p99\": %.0f, "
                       "\"mean\": %.1f}%s\n", res[c].name, res[c].min, res[c].median,
                    res[c].p99, res[c].mean, c + 1 < NCFG ? "," : "");
        fprintf(f, "  }\n}\n");
        fclose(f);
    }
    return 0;
}
