/* console: writes "console: hello via virtio" through virtio-console's transmitq, then
 * echoes whatever arrives on the receiveq back through the transmitq until a newline
 * (or echo=0: skip the echo part). Port 0 only, no MULTIPORT. Ring options as usual.
 * The serial console shows "console: received "<line>"" at the end. */
#include "rt.h"
#include "virtio.h"

#define RXQ 0
#define TXQ 1
#define NRX 4
#define RXLEN 64
#define LINE_MAX 256

static struct virtio_dev dev;
static uint8_t rxbuf[NRX][RXLEN] __attribute__((aligned(64)));
static char txbuf[LINE_MAX] __attribute__((aligned(64)));
static char line[LINE_MAX + 1];
static int16_t rx_slot_of_id[32768];

static void post_rx(struct virtq *q, unsigned slot)
{
    struct virtq_buf b = { rxbuf[slot], RXLEN, 1 };
    int id = virtq_add(q, &b, 1);
    GUEST_ASSERT(id >= 0);
    rx_slot_of_id[id] = (int16_t)slot;
}

static void send(struct virtq *q, const void *p, uint32_t len)
{
    GUEST_ASSERT(len <= sizeof txbuf);
    memcpy(txbuf, p, len);
    struct virtq_buf b = { txbuf, len, 0 };
    GUEST_ASSERT(virtq_add(q, &b, 1) >= 0);
    virtq_kick(q);
    uint16_t id;
    uint32_t used;
    virtq_wait_used(q, &id, &used);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    int echo = (int)virtio_cmdline_u64("echo", 1);
    struct virtio_mmio_loc loc;
    if (virtio_find(VIRTIO_ID_CONSOLE, 0, &loc)) {
        printf("console: no virtio-console device found\n");
        return 1;
    }
    printf("virtio: console at 0x%llx irq %u (%s)\n", (unsigned long long)loc.base, loc.irq,
           virtio_loc_source_name(loc.source));
    struct virtq *rx, *tx;
    if (virtio_dev_init(&dev, &loc, 0, &o) || virtio_queue_setup(&dev, RXQ, &rx) ||
        virtio_queue_setup(&dev, TXQ, &tx))
        return 1;
    /* Receive buffers go in before DRIVER_OK so no input finds the queue empty. */
    for (unsigned i = 0; i < NRX; i++)
        post_rx(rx, i);
    if (virtio_dev_ready(&dev))
        return 1;
    virtq_kick(rx);
    virtio_dev_describe(&dev, "console");

    static const char hello[] = "console: hello via virtio\n";
    send(tx, hello, sizeof hello - 1);
    printf("console: sent hello\n");
    if (!echo)
        return 0;

    size_t n = 0;
    int done = 0;
    while (!done) {
        uint16_t id;
        uint32_t len;
        virtq_wait_used(rx, &id, &len);
        unsigned slot = (unsigned)rx_slot_of_id[id];
        GUEST_ASSERT(slot < NRX && len <= RXLEN);
        uint32_t keep = len;
        for (uint32_t i = 0; i < len; i++)
            if (rxbuf[slot][i] == '\n') {
                keep = i + 1;
                done = 1;
                break;
            }
        if (keep)
            send(tx, rxbuf[slot], keep);
        for (uint32_t i = 0; i < keep && n < LINE_MAX; i++)
            if (rxbuf[slot][i] != '\n' && rxbuf[slot][i] != '\r')
                line[n++] = (char)rxbuf[slot][i];
        post_rx(rx, slot);
        virtq_kick(rx);
    }
    line[n] = 0;
    printf("console: received \"%s\"\n", line);
    return 0;
}
