/* idle: a guest that mostly sleeps. The CPU timer (rt.h) ticks periodically (count= initial
 * count, default 100000; div= divide, default 16); between ticks the CPU halts. For tick t
 * (0, 1, ...) it writes sector t mod capacity of the first virtio-blk disk, filled with the
 * 64-bit tick number t repeated, reads it back and compares. Prints "idle: tick N" every
 * 100 ticks. Runs until stopped from outside, or for ticks=N ticks. Ring options as usual. */
#include "rt.h"
#include "vblk.h"

#define TIMER_IRQ RT_TIMER_IRQ(0x30)

static struct vblk blk;
static volatile uint64_t timer_ticks;
static uint64_t wbuf[64] __attribute__((aligned(512)));
static uint64_t rbuf[64] __attribute__((aligned(512)));

static void on_timer(struct rt_irq_frame *f)
{
    (void)f;
    timer_ticks++;
    rt_irq_eoi();
}

/* Halts until the timer has fired more than `seen` times; sti;hlt (wfi) cannot miss a tick. */
static void wait_tick(uint64_t seen)
{
    rt_irq_disable();
    while (timer_ticks <= seen) {
        rt_halt();
        rt_irq_disable();
    }
    rt_irq_enable();
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint64_t limit = virtio_cmdline_u64("ticks", 0);
    uint64_t count = virtio_cmdline_u64("count", 100000);
    uint64_t div = virtio_cmdline_u64("div", 16);
    if (count == 0 || count > 0xffffffffu) {
        printf("idle: bad count=%llu (1..4294967295)\n", (unsigned long long)count);
        return 2;
    }
    if (div == 0 || div > 128 || (div & (div - 1))) {
        printf("idle: bad div=%llu (1, 2, 4, ... 128)\n", (unsigned long long)div);
        return 2;
    }
    if (vblk_open(&blk, 0, &o))
        return 1;
    if (blk.ro) {
        printf("idle: the disk is read-only\n");
        return 1;
    }
    rt_set_handler(TIMER_IRQ, on_timer);
    rt_timer_init();
    rt_timer_start(TIMER_IRQ, (uint32_t)count, 1, (unsigned)div);
    printf("idle: running%s\n", limit ? "" : " until stopped");

    for (uint64_t t = 0; !limit || t < limit; t++) {
        wait_tick(t);
        uint64_t sector = t % blk.capacity;
        for (unsigned i = 0; i < 64; i++)
            wbuf[i] = t;
        GUEST_ASSERT_EQ(vblk_io(&blk, VIRTIO_BLK_T_OUT, sector, wbuf, 512), VIRTIO_BLK_S_OK);
        memset(rbuf, 0, sizeof rbuf);
        GUEST_ASSERT_EQ(vblk_io(&blk, VIRTIO_BLK_T_IN, sector, rbuf, 512), VIRTIO_BLK_S_OK);
        GUEST_ASSERT_EQ(memcmp(rbuf, wbuf, sizeof wbuf), 0);
        if ((t + 1) % 100 == 0)
            printf("idle: tick %llu\n", (unsigned long long)(t + 1));
    }
    rt_timer_stop();
    printf("idle: done, %llu ticks, each sector written and verified\n",
           (unsigned long long)limit);
    return 0;
}
