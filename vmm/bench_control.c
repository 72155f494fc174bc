/* Control-socket benchmark: `stats` round trips against a server polled by a thread (as the
 * vCPU thread would), with a fake VM behind it.
 *   - round-trip time, 10 000 requests on one connection (median, p99)
 *   - round-trip time, 10 000 requests with a connection each (what `vmlab stats` pays)
 *   - requests/s with 8 concurrent clients
 * Prints a table; writes $BENCH_JSON_DIR/control.json when that is set.
 * Built as $(BUILD)/bench/bench_control by the top Makefile's bench rule (bench_*.c files
 * stay out of the library). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/control_fake_vm.h"
#include "vmm/control.h"

int bench_control_main(int argc, char **argv);

#define N_RTT 10000
#define N_THREADS 8
#define N_PER_THREAD 5000

static const char stats_req[] = "{\"cmd\":\"stats\"}\n";

struct bench_srv {
    struct control_server *srv;
    volatile int quit;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *serve(void *p)
{
    struct bench_srv *b = p;

    while (!b->quit)
        control_server_wait(b->srv, 10);
    return NULL;
}

static int bench_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one stats request and reads its answer line. 0 or -1. */
static int stats_once(int fd)
{
    char buf[4096];
    size_t have = 0;

    if (send(fd, stats_req, sizeof stats_req - 1, MSG_NOSIGNAL) != sizeof stats_req - 1)
        return -1;
    for (;;) {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);

        if (n <= 0)
            return -1;
        have += (size_t)n;
        if (buf[have - 1] == '\n')
            return strncmp(buf, "{\"ok\":true", 10) == 0 ? 0 : -1;
        if (have == sizeof buf)
            return -1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

struct pct {
    double median_us, p99_us;
};

static struct pct percentiles(uint64_t *ns, size_t n)
{
    struct pct p;

    qsort(ns, n, sizeof *ns, cmp_u64);
    p.median_us = ns[n / 2] / 1000.0;
    p.p99_us = ns[(n * 99) / 100] / 1000.0;
    return p;
}

struct worker {
    const char *path;
    int failed;
    pthread_t t;
};

static void *worker_run(void *p)
{
    struct worker *w = p;
    int fd = bench_connect(w->path), i;

    if (fd < 0) {
        w->failed = 1;
        return NULL;
    }
    for (i = 0; i < N_PER_THREAD; i++) {
        if (stats_once(fd) < 0) {
            w->failed = 1;
            break;
        }
    }
    close(fd);
    return NULL;
}

int bench_control_main(int argc, char **argv)
{
    char dir[] = "/tmp/vmlab-bench-ctl-XXXXXX", path[64], err[256] = "";
    struct worker workers[N_THREADS];
    struct bench_srv b = { 0 };
    struct fake_vm vm;
    struct pct persistent, fresh;
    uint64_t *ns, t0, t1;
    double rps;
    pthread_t th;
    const char *jdir;
    int fd, i, rc = 1;

    (void)argc;
    (void)argv;
    ns = calloc(N_RTT, sizeof *ns);
    if (!ns || !mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/bench.sock", dir);
    fake_vm_init(&vm);
    if (control_server_open(&b.srv, path, &fake_vm_ops, &vm, err, sizeof err) < 0) {
        fprintf(stderr, "bench_control: %s\n", err);
        return 1;
    }
    pthread_create(&th, NULL, serve, &b);

    fd = bench_connect(path);
    if (fd < 0)
        goto out;
    for (i = 0; i < 200; i++)       /* warm-up */
        stats_once(fd);
    for (i = 0; i < N_RTT; i++) {
        t0 = mono_ns();
        if (stats_once(fd) < 0)
            goto out;
        ns[i] = mono_ns() - t0;
    }
    close(fd);
    persistent = percentiles(ns, N_RTT);

    for (i = 0; i < N_RTT; i++) {
        t0 = mono_ns();
        fd = bench_connect(path);
        if (fd < 0 || stats_once(fd) < 0)
            goto out;
        close(fd);
        ns[i] = mono_ns() - t0;
    }
    fresh = percentiles(ns, N_RTT);

    t0 = mono_ns();
    for (i = 0; i < N_THREADS; i++) {
        workers[i] = (struct worker){ .path = path };
        pthread_create(&workers[i].t, NULL, worker_run, &workers[i]);
    }
    for (i = 0; i < N_THREADS; i++) {
        pthread_join(workers[i].t, NULL);
        if (workers[i].failed)
            goto out;
    }
    t1 = mono_ns();
    rps = (double)N_THREADS * N_PER_THREAD / ((t1 - t0) / 1e9);

    printf("control socket: stats requests against a fake VM, server polled by a thread\n");
    printf("%-40s %12s %12s\n", "measure", "median", "p99");
    printf("%-40s %10.1f us %10.1f us\n", "round trip, one connection (n=10000)",
           persistent.median_us, persistent.p99_us);
    printf("%-40s %10.1f us %10.1f us\n", "round trip, connect each (n=10000)",
           fresh.median_us, fresh.p99_us);
    printf("%-40s %12.0f\n", "requests/s, 8 concurrent clients", rps);

    jdir = getenv("BENCH_JSON_DIR");
    if (jdir && jdir[0]) {
        char jpath[4096];
        FILE *f;

        snprintf(jpath, sizeof jpath, "%s/control.json", jdir);
        f = fopen(jpath, "w");
        if (!f) {
            fprintf(stderr, "bench_control: %s: %s\n", jpath, strerror(errno));
            goto out;
        }
        fprintf(f, "{\n"
                   "  \"stats_rtt_us\": {\"n\": %d, \"median\": %.2f, \"p99\": %.2f},\n"
                   "  \"stats_rtt_connect_each_us\": {\"n\": %d, \"median\": %.2f, \"p99\": %.2f},\n"
                   "  \"stats_requests_per_s_8_clients\": %.0f\n"
                   "}\n",
                N_RTT, persistent.median_us, persistent.p99_us, N_RTT, fresh.median_us,
                fresh.p99_us, rps);
        fclose(f);
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_control: a request failed\n");
    b.quit = 1;
    pthread_join(th, NULL);
    control_server_close(b.srv);
    rmdir(dir);
    free(ns);
    return rc;
}

int main(int argc, char **argv)
{
    return bench_control_main(argc, argv);
}
