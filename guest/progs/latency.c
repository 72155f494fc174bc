/* latency: per-request round-trip times of a virtio-blk device, one request at a time,
 * polled. Each sample runs from publishing the chain (virtq_kick) to seeing it used.
 * Options: op=read4k|read512|getid (default read4k), n=N (default 10000, max 100000),
 * plus the ring options ring= indirect= event_idx= qsize= (mode is always poll).
 * Prints min/median/p90/p99/max in TSC ticks, and in ns when the TSC rate is known
 * (vmlab: FDT; QEMU: tsc_khz= on the cmdline), as one RESULT line. */
#include "rt.h"
#include "sort.h"
#include "vblk.h"

#define NMAX 100000u

static struct vblk blk;
static uint64_t lat[NMAX];
static uint8_t buf[4096] __attribute__((aligned(4096)));

static uint64_t one(uint32_t type, uint64_t sector, uint32_t len)
{
    GUEST_ASSERT_EQ(vblk_add(&blk, 0, type, sector, buf, len, 1), 0);
    uint64_t t0 = rt_rdtsc();
    vblk_kick(&blk);
    unsigned slot = vblk_wait(&blk);
    uint64_t t1 = rt_rdtsc();
    GUEST_ASSERT_EQ(blk.status[slot], VIRTIO_BLK_S_OK);
    return t1 - t0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    char op[16] = "read4k";
    if (virtio_opts_parse(&o))
        return 2;
    o.irq = 0;
    rt_cmdline_get("op", op, sizeof op);
    uint32_t type, len;
    if (!strcmp(op, "read4k"))
        type = VIRTIO_BLK_T_IN, len = 4096;
    else if (!strcmp(op, "read512"))
        type = VIRTIO_BLK_T_IN, len = 512;
    else if (!strcmp(op, "getid"))
        type = VIRTIO_BLK_T_GET_ID, len = VBLK_ID_BYTES;
    else {
        printf("latency: bad op=%s (want read4k, read512 or getid)\n", op);
        return 2;
    }
    uint64_t n = virtio_cmdline_u64("n", 10000);
    if (n < 1 || n > NMAX) {
        printf("latency: bad n=%llu (1..%u)\n", (unsigned long long)n, NMAX);
        return 2;
    }
    if (vblk_open(&blk, 0, &o))
        return 1;
    uint64_t span = blk.capacity / 8;   /* 4 KiB steps through the disk */
    GUEST_ASSERT(span >= 1);
    for (uint64_t i = 0; i < n / 10 + 1; i++)   /* warm-up */
        one(type, (i % span) * 8, len);
    uint64_t t0 = rt_rdtsc();
    for (uint64_t i = 0; i < n; i++)
        lat[i] = one(type, (i % span) * 8, len);
    uint64_t total = rt_rdtsc() - t0;
    rt_sort_u64(lat, n);

    uint64_t v[5] = { lat[0], lat[n / 2], lat[n * 90 / 100], lat[n * 99 / 100], lat[n - 1] };
    static const char *const name[5] = { "min", "median", "p90", "p99", "max" };
    uint64_t khz = rt_tsc_khz();
    printf("RESULT op=%s n=%llu", op, (unsigned long long)n);
    if (khz)
        for (int i = 0; i < 5; i++)
            printf(" %s_ns=%llu", name[i], (unsigned long long)(v[i] * 1000000 / khz));
    for (int i = 0; i < 5; i++)
        printf(" %s_t=%llu", name[i], (unsigned long long)v[i]);
    printf(" ring=%s indirect=%d event_idx=%d", blk.dev.opts.packed ? "packed" : "split",
           blk.dev.opts.indirect, blk.dev.opts.event_idx);
    if (khz)
        printf(" req_per_s=%llu", (unsigned long long)(n * khz * 1000 / (total ? total : 1)));
    printf("\n");
    return 0;
}
