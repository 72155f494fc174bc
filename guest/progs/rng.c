/* rng: reads n= bytes (default 32, max 4096) from virtio-rng and prints them as hex,
 * "rng: N bytes: <hex>". The device may return fewer bytes than asked; we ask again for
 * the rest. Fails if every byte is zero. Ring options as for every virtio program. */
#include "rt.h"
#include "virtio.h"

#define MAX_BYTES 4096u

static uint8_t data[MAX_BYTES] __attribute__((aligned(64)));

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    uint64_t n = virtio_cmdline_u64("n", 32);
    if (n < 1 || n > MAX_BYTES) {
        printf("rng: bad n=%llu (1..%u)\n", (unsigned long long)n, MAX_BYTES);
        return 2;
    }
    struct virtio_mmio_loc loc;
    if (virtio_find(VIRTIO_ID_RNG, 0, &loc)) {
        printf("rng: no virtio-rng device found\n");
        return 1;
    }
    printf("virtio: rng at 0x%llx irq %u (%s)\n", (unsigned long long)loc.base, loc.irq,
           virtio_loc_source_name(loc.source));
    static struct virtio_dev dev;
    struct virtq *q;
    if (virtio_dev_init(&dev, &loc, 0, &o) || virtio_queue_setup(&dev, 0, &q) ||
        virtio_dev_ready(&dev))
        return 1;
    virtio_dev_describe(&dev, "rng");

    uint64_t got = 0, requests = 0;
    memset(data, 0, sizeof data);
    while (got < n) {
        struct virtq_buf b = { data + got, (uint32_t)(n - got), 1 };
        GUEST_ASSERT(virtq_add(q, &b, 1) >= 0);
        virtq_kick(q);
        uint16_t id;
        uint32_t len;
        virtq_wait_used(q, &id, &len);
        GUEST_ASSERT(len <= n - got);
        got += len;
        GUEST_ASSERT(++requests < 100000);     /* a device that keeps returning 0 bytes */
    }
    int nonzero = 0;
    printf("rng: %llu bytes:", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        if (i % 32 == 0 && i)
            printf("\nrng:");
        printf("%s%02x", i % 32 ? "" : " ", data[i]);
        nonzero |= data[i];
    }
    printf("\n");
    GUEST_ASSERT(nonzero);
    printf("rng: done\n");
    return 0;
}
