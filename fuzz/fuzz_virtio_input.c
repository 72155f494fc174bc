/* Fuzz target: virtio-input (devices/virtio/virtio_input.c), driven by the mock driver and
 * by host input.
 *
 * Input: [option byte (fuzz/mock_common.h)][kind byte: kind % 4] then 4-byte operations
 *   [op][a][b][c], op % 6:
 *   0 config: select a, subsel b, read size and all 128 data bytes (c: also write
 *     c to a config byte past subsel, which must change nothing);
 *   1 host input: 1 + a % 8 events {type b, code c, value counter}, or (c & 0x80) a
 *     length that is not a multiple of 8 (refused, nothing changes);
 *   2 event buffer: a % 20 bytes in the next of 64 slots (chains shorter than 8 are
 *     returned empty), kick;
 *   3 status buffer of a % 12 bytes holding {b, c}, kick;
 *   4 collect used event buffers;
 *   5 driver reset and setup again (pending events are forgotten).
 * Invariants (abort() on violation):
 *   - a config answer's size is at most 128 and the bytes past it read zero; the same
 *     query twice gives the same answer;
 *   - an event buffer comes back with 0 or 8 bytes; 8-byte ones carry the injected events
 *     in order, none lost unless counted as dropped (model: a FIFO of at most
 *     VIRTIO_INPUT_PENDING_MAX events);
 *   - injected = delivered + dropped + discarded (at reset) + pending, always;
 *   - the device status stays legal and the interrupt line follows InterruptStatus.
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_input.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 512
#define NBUF 64     /* event buffer slots, used in turn: more than a ring holds */

static const char *const kind_args[4] = { "kind=keyboard", "kind=mouse",
                                          "kind=single-touch,width=640,height=480",
                                          "kind=multi-touch,width=1080,height=1920" };

/* The model: values of the events injected and not yet collected by the driver, in order
 * (pending in the device, or delivered into buffers not collected yet). */
#define FIFO_CAP (2 * VIRTIO_INPUT_PENDING_MAX)
static uint32_t fifo[FIFO_CAP];
static unsigned fifo_head, fifo_n;
static uint64_t id_gpa[MOCK_QUEUE_MAX];

static unsigned cfg_query(struct mock_virtio *m, uint8_t sel, uint8_t sub, uint8_t *d)
{
    uint64_t v;

    mock_virtio_write(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_SELECT, 1, sel);
    mock_virtio_write(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_SUBSEL, 1, sub);
    mock_virtio_read(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_SIZE_OFF, 1, &v);
    for (unsigned i = 0; i < 128; i += 4) {
        uint64_t w;
        mock_virtio_read(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_DATA + i, 4, &w);
        memcpy(d + i, &w, 4);
    }
    return (unsigned)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mock_virtio m;
    char err[256];
    uint32_t counter = 0;
    unsigned slot = 0;
    uint64_t bufs;

    if (size < 2)
        return 0;
    const char *args = kind_args[data[1] % 4];
    fifo_head = fifo_n = 0;
    if (fz_mock_init(&m, fz_mock_ram(data[0], 2), 0) < 0)
        abort();
    fzt_begin(&m, &virtio_input_type, args, 0);
    if (mock_virtio_create(&m, &virtio_input_type, args, err, sizeof err) < 0)
        abort();
    fzt_route(&m);
    if (fz_mock_setup(&m, data[0], 0) < 0)
        abort();
    bufs = mock_virtio_alloc(&m, (NBUF + 1) * 24, 8);
    if (!bufs)
        abort();

    for (size_t p = 2; p + 4 <= size && p < 2 + 4 * MAX_OPS; p += 4) {
        uint8_t op = data[p] % 6, a = data[p + 1], b = data[p + 2], c = data[p + 3];
        uint8_t d1[128], d2[128];
        uint32_t id, len;

        switch (op) {
        case 0: {
            unsigned s1 = cfg_query(&m, a, b, d1);
            if (c & 1)
                mock_virtio_write(&m, VIRTIO_MMIO_CONFIG + 2 + c % 134, 1, c);
            unsigned s2 = cfg_query(&m, a, b, d2);
            if (s1 > 128 || s1 != s2 || memcmp(d1, d2, 128))
                fz_abort();
            for (unsigned i = s1; i < 128; i++)
                if (d1[i])
                    fz_abort();
            break;
        }
        case 1: {
            uint8_t ev[8 * 8];
            struct virtio_input_counters k0;
            virtio_input_counters(m.state, &k0);
            uint64_t dropped_before = k0.dropped;
            unsigned n = 1 + a % 8;
            for (unsigned i = 0; i < n; i++) {
                uint16_t t = b, k = c;
                uint32_t v = counter + i;
                memcpy(ev + 8 * i, &t, 2);
                memcpy(ev + 8 * i + 2, &k, 2);
                memcpy(ev + 8 * i + 4, &v, 4);
            }
            size_t len8 = (c & 0x80) ? 8 * n - 1 - a % 7 : 8 * n;
            int rc = fzt_host_input(&m, ev, len8, err, sizeof err);
            if ((c & 0x80) ? rc != -EINVAL : rc != 0)
                fz_abort();
            if (rc)
                break;
            struct virtio_input_counters k;
            virtio_input_counters(m.state, &k);
            /* The device delivered what it could at once; the rest waits or is dropped
             * once VIRTIO_INPUT_PENDING_MAX wait: the model replays that decision. */
            if (k.dropped != dropped_before && k.pending != VIRTIO_INPUT_PENDING_MAX)
                fz_abort();     /* dropped while there was room */
            unsigned accepted = n - (unsigned)(k.dropped - dropped_before);
            for (unsigned i = 0; i < n; i++, counter++)
                if (i < accepted)
                    fifo[(fifo_head + fifo_n++) % FIFO_CAP] = counter;
            break;
        }
        case 2: {
            struct mock_buf mb = { bufs + (uint64_t)(slot++ % NBUF) * 24, (uint32_t)(a % 20), 1 };
            int id = mock_vq_add(&m, VIRTIO_INPUT_EVENT_Q, &mb, 1);
            if (id >= 0) {
                id_gpa[id % MOCK_QUEUE_MAX] = mb.gpa;
                mock_vq_kick(&m, VIRTIO_INPUT_EVENT_Q);
            }
            break;
        }
        case 3: {
            uint64_t st = bufs + (uint64_t)NBUF * 24;
            uint8_t *h = mock_virtio_host(&m, st, 12);
            h[0] = 0x11;
            h[1] = 0;
            h[2] = b % 4;
            h[4] = c;
            struct mock_buf mb = { st, (uint32_t)(a % 12), 0 };
            if (mock_vq_add(&m, VIRTIO_INPUT_STATUS_Q, &mb, 1) >= 0)
                mock_vq_kick(&m, VIRTIO_INPUT_STATUS_Q);
            while (mock_vq_get_used(&m, VIRTIO_INPUT_STATUS_Q, &id, &len) == 1)
                ;
            break;
        }
        case 4:
            while (mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len) == 1) {
                uint32_t v;
                if (len != 0 && len != 8)
                    fz_abort();
                if (len != 8)
                    continue;
                if (!fifo_n)
                    fz_abort();     /* an event the host never sent */
                memcpy(&v, (uint8_t *)mock_virtio_host(&m, id_gpa[id % MOCK_QUEUE_MAX], 8) + 4,
                       4);
                if (v != fifo[fifo_head])
                    fz_abort();     /* out of order, or one lost without being counted */
                fifo_head = (fifo_head + 1) % FIFO_CAP;
                fifo_n--;
            }
            break;
        case 5:
            mock_virtio_reset(&m);
            fifo_head = fifo_n = 0;
            if (fz_mock_setup(&m, data[0], 0) < 0)
                abort();
            break;
        }
        struct virtio_input_counters k;
        virtio_input_counters(m.state, &k);
        if (k.injected != k.delivered + k.dropped + k.discarded + k.pending)
            fz_abort();
        if (k.pending > fifo_n || k.pending > VIRTIO_INPUT_PENDING_MAX)
            fz_abort();     /* holds events the host never sent, or more than its bound */
        fz_check_status(&m);
    }
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
