/* balloon: touches mem_mb= MiB (default 32) at the top of RAM, then obeys the balloon's
 * target: inflates pages from the top of that region down (giving them to the host) or
 * deflates them back, writes `actual`, and answers stats requests with its view (free =
 * touched pages not in the balloon). Prints "balloon: target T pages, actual A" after each
 * change. Exits 0 after rounds= target changes (default 0: runs until stopped); before
 * exiting it checks that inflated pages read as zero (check_zero=1, the default; on vmlab
 * the host discarded them). Ring options as for every virtio program. */
#include "rt.h"
#include "vballoon.h"

#define PAGE 4096ull

static uint32_t pfns[VBALLOON_PFNS];

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint64_t mem_mb = virtio_cmdline_u64("mem_mb", 32), rounds = virtio_cmdline_u64("rounds", 0);
    uint64_t end = rt_ram_end() & ~(PAGE - 1), region = mem_mb << 20;
    if (!mem_mb || region + (16ull << 20) > end) {
        printf("balloon: mem_mb=%llu does not fit below %llu MiB of RAM\n",
               (unsigned long long)mem_mb, (unsigned long long)(end >> 20));
        return 2;
    }
    uint64_t base = end - region, npages = region / PAGE;
    /* Touch every page: each holds its own page number (so a stale page is visible). */
    for (uint64_t p = 0; p < npages; p++)
        *(volatile uint64_t *)(base + p * PAGE) = p + 1;
    printf("balloon: touched %llu MiB at 0x%llx\n", (unsigned long long)mem_mb,
           (unsigned long long)base);

    uint64_t stats[VBALLOON_NSTATS] = { 0, 0, 0, npages, region, region, region, 0 };
    static struct vballoon b;
    int rc = vballoon_init(&b, &o, stats);
    if (rc == -VIRTIO_ENODEV) {
        printf("balloon: no virtio-balloon device found\n");
        return 1;
    }
    if (rc)
        return 1;
    virtio_dev_describe(&b.dev, "balloon");
    printf("balloon: features stats_vq=%d deflate_on_oom=%d\n",
           virtio_has_feature(&b.dev, VBALLOON_F_STATS_VQ),
           virtio_has_feature(&b.dev, VBALLOON_F_DEFLATE_ON_OOM));

    uint64_t inflated = 0, changes = 0;   /* pages in the balloon: the top `inflated` pages */
    uint32_t seen = 0;
    for (;;) {
        uint32_t target = vballoon_target(&b);
        if (target > npages)
            target = (uint32_t)npages;      /* more than we can give: give what we have */
        if (target != inflated) {
            while (inflated < target) {
                unsigned n = 0;
                while (n < VBALLOON_PFNS && inflated + n < target) {
                    pfns[n] = (uint32_t)((base + region - (inflated + n + 1) * PAGE) / PAGE);
                    n++;
                }
                vballoon_send(&b, 1, pfns, n);
                inflated += n;
            }
            while (inflated > target) {
                unsigned n = 0;
                while (n < VBALLOON_PFNS && inflated - n > target) {
                    pfns[n] = (uint32_t)((base + region - (inflated - n) * PAGE) / PAGE);
                    n++;
                }
                vballoon_send(&b, 0, pfns, n);
                inflated -= n;
                /* Deflated pages are ours again: touch them back. */
                for (uint64_t p = inflated; p < inflated + n; p++)
                    *(volatile uint64_t *)(base + region - (p + 1) * PAGE) = npages - p;
            }
            vballoon_set_actual(&b, (uint32_t)inflated);
            stats[4] = (npages - inflated) * PAGE;   /* free_memory */
            stats[6] = stats[4];                     /* available_memory */
            printf("balloon: target %u pages, actual %llu\n", vballoon_target(&b),
                   (unsigned long long)inflated);
            changes++;
        }
        if (target != seen)
            seen = target;
        if (vballoon_stats_poll(&b, stats))
            printf("balloon: stats sent (%llu)\n", (unsigned long long)b.stats_sent);
        if (rounds && changes >= rounds)
            break;
        /* Poll the config space now and then, not in a tight loop of MMIO exits. */
        for (int i = 0; i < 20000; i++)
            rt_pause();
    }
    if (virtio_cmdline_u64("check_zero", 1) && inflated) {
        uint64_t nonzero = 0;
        for (uint64_t p = 0; p < inflated; p++)
            nonzero += *(volatile uint64_t *)(base + region - (p + 1) * PAGE) != 0;
        printf("balloon: %llu of %llu inflated pages read zero\n",
               (unsigned long long)(inflated - nonzero), (unsigned long long)inflated);
        GUEST_ASSERT(nonzero == 0);
    }
    printf("balloon: done\n");
    return 0;
}
