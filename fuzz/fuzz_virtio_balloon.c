/* Fuzz target: virtio-balloon (devices/virtio/virtio_balloon.c): PFN arrays, stats
 * buffers, free page reports, `actual` and host messages from a hostile guest and host.
 *
 * Input: [option byte (fuzz/mock_common.h)][feature byte: bit 0 STATS_VQ, bit 1
 *   PAGE_REPORTING accepted] then 4-byte operations [op][a][b][c], op % 7:
 *   0 inflate / 1 deflate: a % 65 PFNs (a buffer of 4 * that bytes, plus c % 4 ragged
 *     bytes), PFN i = b * 7 + i * c: free pages of RAM and pages far outside it (the
 *     mock's own rings and buffers are moved past RAM);
 *   2 stats buffer: a * 2 bytes of {tag, value} entries, tags b + i (known and unknown);
 *   3 free page report: segments of (a % 4 + 1) pages at page b % 64, c % 3 of them;
 *   4 config write: actual = a | b << 8 | c << 16 | (c & 0x80 ? 0xff000000 : 0);
 *   5 host message: target of (a << 8 | b) pages (c & 1), a stats request (c & 2), or a
 *     malformed message (otherwise, refused);
 *   6 query and collect used buffers of every queue.
 * Invariants (abort() on violation):
 *   - a page inflated (a PFN inside RAM above the driver's rings) reads zero afterwards;
 *     a page outside RAM counts as a bad PFN and touches nothing;
 *   - at most VIRTIO_BALLOON_PFNS_MAX PFNs are taken per buffer (counters grow by no
 *     more than the buffer holds);
 *   - the report's actual never exceeds RAM, its target never exceeds RAM; a refused
 *     host message changes neither;
 *   - the device status stays legal and the interrupt line follows InterruptStatus.
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_balloon.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 256
#define RAM_PAGES 64u       /* 256 KiB: rings, buffers and pages to give away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mock_virtio m;
    struct balloon_report r0, r1;
    char err[256];

    if (size < 2)
        return 0;
    uint64_t feats = ((data[1] & 1) ? VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) : 0) |
                     ((data[1] & 2) ? VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING) : 0);
    unsigned stats_q = (data[1] & 1) ? 2 : 99, report_q = 2 + (data[1] & 1);
    if (!(data[1] & 2))
        report_q = 99;
    uint64_t ram = fz_mock_ram(data[0], 4) > RAM_PAGES * 4096 ? fz_mock_ram(data[0], 4)
                                                              : RAM_PAGES * 4096;
    if (fz_mock_init(&m, ram, 0) < 0)
        abort();
    fzt_begin(&m, &virtio_balloon_type, "", 0);
    if (mock_virtio_create(&m, &virtio_balloon_type, "", err, sizeof err) < 0)
        abort();
    fzt_route(&m);
    if (fz_mock_setup(&m, data[0], feats) < 0)
        abort();
    uint64_t buf = mock_virtio_alloc(&m, 1024, 16);
    if (!buf)
        abort();
    /* Pages from here up are the driver's to give away: nothing of the mock lives there. */
    uint64_t free_from = (m.heap + 4095) / 4096;
    uint8_t *bh = mock_virtio_host(&m, buf, 1024);

    for (size_t p = 2; p + 4 <= size && p < 2 + 4 * MAX_OPS && fz_live(&m); p += 4) {
        uint8_t op = data[p] % 7, a = data[p + 1], b = data[p + 2], c = data[p + 3];
        uint32_t id, len;

        m.type->balloon_query(m.state, &r0);
        switch (op) {
        case 0: case 1: {
            unsigned n = a % 65;
            uint32_t *pf = (uint32_t *)bh;
            for (unsigned i = 0; i < n; i++) {
                pf[i] = (uint32_t)b * 7 + i * c;
                /* Not the mock's own rings and buffers (a guest may balloon those away,
                 * but then the mock, not the device, stops working): past RAM instead. */
                if (pf[i] < free_from)
                    pf[i] += (uint32_t)(ram / 4096);
            }
            if (op == 0)
                for (unsigned i = 0; i < n; i++)
                    if (pf[i] >= free_from && pf[i] < ram / 4096)
                        memset(mock_virtio_host(&m, (uint64_t)pf[i] * 4096, 4096), 0x5a, 4096);
            struct mock_buf mb = { buf, 4 * n + c % 4, 0 };
            /* Every buffer is answered (an empty one is not a buffer: the mock never
             * publishes it, as rng's target notes). */
            if (mock_vq_request(&m, op, &mb, 1, &len) < 0 && fz_live(&m) && mb.len)
                fz_abort();
            m.type->balloon_query(m.state, &r1);
            uint64_t taken = (r1.inflated_pages - r0.inflated_pages) +
                             (r1.deflated_pages - r0.deflated_pages) + (r1.bad_pfns - r0.bad_pfns);
            if (taken > n)
                fz_abort();
            if (op == 0)
                for (unsigned i = 0; i < n; i++)
                    if (pf[i] >= free_from && pf[i] < ram / 4096 &&
                        *(uint8_t *)mock_virtio_host(&m, (uint64_t)pf[i] * 4096 + (c % 64) * 64, 1))
                        fz_abort();     /* an inflated page still holds the guest's data */
            break;
        }
        case 2: {
            unsigned n = (unsigned)a * 2;
            for (unsigned i = 0; i + 10 <= n && i < 1024; i += 10) {
                uint16_t tag = (uint16_t)(b + i / 10);
                uint64_t v = (uint64_t)c << (i % 48);
                memcpy(bh + i, &tag, 2);
                memcpy(bh + i + 2, &v, 8);
            }
            if (stats_q == 99)
                break;
            struct mock_buf mb = { buf, n, 0 };
            if (mock_vq_add(&m, stats_q, &mb, 1) >= 0)
                mock_vq_kick(&m, stats_q);
            break;
        }
        case 3: {
            if (report_q == 99)
                break;
            struct mock_buf mb[3];
            unsigned k = 1 + c % 3;
            for (unsigned i = 0; i < k; i++) {
                uint64_t pg = free_from + (b + 5u * i) % 64;
                mb[i] = (struct mock_buf){ pg * 4096, (a % 4 + 1) * 4096, 1 };
                if (pg + a % 4 + 1 > ram / 4096)
                    mb[i].len = 4096;
            }
            if (mock_vq_add(&m, report_q, mb, k) >= 0)
                mock_vq_kick(&m, report_q);
            break;
        }
        case 4:
            mock_virtio_write32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL,
                                (uint32_t)a | (uint32_t)b << 8 | (uint32_t)c << 16 |
                                    ((c & 0x80) ? 0xff000000u : 0));
            break;
        case 5: {
            uint8_t msg[VIRTIO_BALLOON_HOST_TARGET_LEN + 1] = { VIRTIO_BALLOON_HOST_TARGET };
            uint64_t target = ((uint64_t)a << 8 | b) * 4096;
            memcpy(msg + 1, &target, 8);
            int rc;
            if (c & 1) {
                rc = fzt_host_input(&m, msg, VIRTIO_BALLOON_HOST_TARGET_LEN, err, sizeof err);
                if ((target > ram) != (rc != 0))
                    fz_abort();     /* refused a target within RAM or took one beyond */
            } else if (c & 2) {
                msg[0] = VIRTIO_BALLOON_HOST_STATS;
                if (fzt_host_input(&m, msg, 1, err, sizeof err))
                    fz_abort();
            } else {
                msg[0] = c;
                rc = fzt_host_input(&m, msg, (c >> 2) % 11, err, sizeof err);
                m.type->balloon_query(m.state, &r1);
                if (rc == 0 && !((c == 'S' && (c >> 2) % 11 == 1) ||
                                 (c == 'T' && (c >> 2) % 11 == 9)))
                    fz_abort();     /* took a malformed message */
                if (rc && r1.target_bytes != r0.target_bytes)
                    fz_abort();     /* a refusal changed the target */
            }
            break;
        }
        case 6:
            for (unsigned q = 0; q < 4; q++)
                while (q < m.nqueues && mock_vq_get_used(&m, q, &id, &len) == 1)
                    ;
            break;
        }
        m.type->balloon_query(m.state, &r1);
        if (r1.actual_bytes > ram || r1.target_bytes > ram)
            fz_abort();
        fz_check_status(&m);
    }
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
