/* input: reads a virtio-input device's identity and capabilities from its config space,
 * then prints every event it receives until n= events (default 11, a tap) have arrived:
 * "input: event I type=T code=C value=V ns=NS", NS the guest's TSC in ns (the virtual
 * clock on vmlab's software CPU). leds=1 first sends CapsLock on through the status queue.
 * index=N picks the N-th input device. Ring options as for every virtio program; with
 * mode=irq it halts between events instead of spinning. */
#include "rt.h"
#include "vinput.h"

static void print_bits(const char *what, const uint8_t *bm, unsigned size)
{
    unsigned n = 0;

    printf("input: %s:", what);
    for (unsigned i = 0; i < size * 8; i++)
        if (bm[i / 8] >> (i % 8) & 1) {
            if (n++ < 12)
                printf(" 0x%x", i);
        }
    printf("%s (%u)\n", n > 12 ? " ..." : "", n);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint64_t n = virtio_cmdline_u64("n", 11), index = virtio_cmdline_u64("index", 0);
    uint64_t khz = rt_tsc_khz();
    static struct vinput in;
    int rc = vinput_init(&in, (unsigned)index, &o);
    if (rc == -VIRTIO_ENODEV) {
        printf("input: no virtio-input device #%llu found\n", (unsigned long long)index);
        return 1;
    }
    if (rc)
        return 1;
    virtio_dev_describe(&in.dev, "input");

    uint8_t d[129];
    unsigned size = vinput_cfg(&in, VINPUT_CFG_ID_NAME, 0, d);
    d[size < 128 ? size : 128] = 0;
    printf("input: name \"%s\"\n", (char *)d);
    if (vinput_cfg(&in, VINPUT_CFG_ID_DEVIDS, 0, d) == 8)
        printf("input: bustype 0x%x vendor 0x%x product 0x%x version 0x%x\n",
               d[0] | d[1] << 8, d[2] | d[3] << 8, d[4] | d[5] << 8, d[6] | d[7] << 8);
    size = vinput_cfg(&in, VINPUT_CFG_PROP_BITS, 0, d);
    print_bits("props", d, size);
    static const struct { uint8_t type; const char *name; } types[] = {
        { 1, "EV_KEY" }, { 2, "EV_REL" }, { 3, "EV_ABS" }, { 0x11, "EV_LED" },
    };
    uint8_t absbits[128] = { 0 };
    unsigned abssize = 0;
    for (unsigned t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        size = vinput_cfg(&in, VINPUT_CFG_EV_BITS, types[t].type, d);
        if (!size)
            continue;
        print_bits(types[t].name, d, size);
        if (types[t].type == 3) {
            memcpy(absbits, d, size);
            abssize = size;
        }
    }
    for (unsigned a = 0; a < abssize * 8; a++) {
        if (!(absbits[a / 8] >> (a % 8) & 1))
            continue;
        GUEST_ASSERT(vinput_cfg(&in, VINPUT_CFG_ABS_INFO, (uint8_t)a, d) == 20);
        uint32_t v[5];
        memcpy(v, d, 20);
        printf("input: abs 0x%x min %d max %d fuzz %d flat %d res %d\n", a, (int)v[0], (int)v[1],
               (int)v[2], (int)v[3], (int)v[4]);
    }
    if (virtio_cmdline_u64("leds", 0)) {
        vinput_status(&in, 0x11, 1, 1);     /* EV_LED LED_CAPSL on */
        printf("input: sent LED_CAPSL on\n");
    }
    printf("input: ready\n");
    for (uint64_t i = 0; i < n;) {
        struct vinput_event e;
        if (in.dev.opts.irq) {
            /* mode=irq: halt until the device interrupts (on KVM the VMM only runs its
             * timers, and so scripted input, when the vCPU exits). */
            rt_irq_disable();
            int got = vinput_poll(&in, &e);
            if (!got)
                rt_halt();
            rt_irq_enable();
            if (!got)
                continue;
        } else if (!vinput_poll(&in, &e)) {
            rt_pause();
            continue;
        }
        uint64_t ns = khz ? rt_rdtsc() * 1000000 / khz : 0;
        printf("input: event %llu type=%u code=%u value=%d ns=%llu\n", (unsigned long long)i,
               e.type, e.code, (int)e.value, (unsigned long long)ns);
        i++;
    }
    printf("input: done\n");
    return 0;
}
