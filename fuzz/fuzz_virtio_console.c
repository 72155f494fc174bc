/* Fuzz target: virtio-console (devices/virtio/virtio_console.c), port 0, driven by the mock
 * virtio driver.
 *
 * Input: [option byte (fuzz/mock_common.h)][n][n bytes of scripted input (the in= arg)]
 *        then 2-byte ops [kind][arg]:
 *   kind % 4 = 0: post a receive buffer of 1 + arg bytes (split into 1-2 descriptors)
 *              1: transmit arg bytes (1-3 descriptors)
 *              2: config-space read of width 1/2/4/8 at offset arg % 16
 *              3: emergency write of byte arg (config offset 8)
 * Invariants (abort() on violation):
 *   - the guest receives exactly the scripted input, in order, never more, never a byte
 *     lost: every receive buffer posted while input remains completes at once with
 *     min(size, remaining) bytes that match the script;
 *   - transmit buffers complete with used length 0 (the device only reads them);
 *   - the device status stays legal and the interrupt line follows InterruptStatus.
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_console.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUN_SEED 1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t tx_pattern[256];
    struct mock_virtio m;
    char args[DEVICE_ARGS_MAX], err[256];
    size_t n, p, al, pos = 0;

    if (size < 2)
        return 0;
    if (!tx_pattern[1])
        for (unsigned i = 0; i < sizeof tx_pattern; i++)
            tx_pattern[i] = (uint8_t)(i * 31);
    n = data[1];
    if (n > size - 2)
        n = size - 2;
    if (n > 100)
        n = 100;    /* \xHH escapes keep it inside DEVICE_ARGS_MAX */
    al = (size_t)snprintf(args, sizeof args, n ? "out=none,in=" : "out=none");
    for (size_t i = 0; i < n; i++)
        al += (size_t)snprintf(args + al, sizeof args - al, "\\x%02x", data[2 + i]);
    if (fz_mock_init(&m, fz_mock_ram(data[0], 2), 0) < 0)
        abort();
    fzt_begin(&m, &virtio_console_type, args, RUN_SEED);
    if (mock_virtio_create(&m, &virtio_console_type, args, err, sizeof err) < 0)
        abort();    /* a well-formed argument string must be accepted */
    fzt_route(&m);
    if (fz_mock_setup(&m, data[0], 0) < 0)
        abort();
    uint64_t buf = mock_virtio_alloc(&m, 512, 16);
    if (!buf)
        abort();
    uint8_t *host = mock_virtio_host(&m, buf, 512);

    for (p = 2 + n; p + 2 <= size && fz_live(&m); p += 2) {
        unsigned kind = data[p] % 4, arg = data[p + 1];
        uint32_t used;
        int r;

        switch (kind) {
        case 0: {
            unsigned len = 1 + arg, left = (unsigned)(n - pos);
            struct mock_buf mb[2] = { { buf, len, 1 }, { buf + 256, 0, 1 } };
            unsigned nb = 1;

            if (pos == n)
                break;      /* nothing left to receive: the buffer would stay posted */
            if (len > 1 && (arg & 1)) {
                mb[0].len = len / 2;
                mb[1].len = len - len / 2;
                mb[1].gpa = buf + mb[0].len;
                nb = 2;
            }
            memset(host, 0xcc, 512);
            r = mock_vq_request(&m, 0, mb, nb, &used);
            if (r == -EAGAIN)
                fz_abort();    /* input was waiting, the buffer was not filled */
            if (r < 0)
                break;
            if (used != (len < left ? len : left))
                fz_abort();
            if (memcmp(host, data + 2 + pos, used))
                fz_abort();    /* received bytes differ from the script */
            pos += used;
            break;
        }
        case 1: {
            struct mock_buf mb[3];
            unsigned nb = 1 + arg % 3, off = 0;

            for (unsigned i = 0; i < nb; i++) {
                unsigned len = i + 1 < nb ? arg / nb : arg - off;
                mb[i] = (struct mock_buf){ buf + off, len, 0 };
                off += len;
            }
            memcpy(host, tx_pattern, arg);
            r = mock_vq_request(&m, 1, mb, nb, &used);
            if (r == -EAGAIN)
                fz_abort();    /* transmit buffers always complete */
            if (r >= 0 && used != 0)
                fz_abort();
            break;
        }
        case 2: {
            static const unsigned widths[4] = { 1, 2, 4, 8 };
            uint64_t v;
            mock_virtio_read(&m, VIRTIO_MMIO_CONFIG + arg % 16, widths[arg / 16 % 4], &v);
            break;
        }
        case 3:
            mock_virtio_write(&m, VIRTIO_MMIO_CONFIG + VIRTIO_CONSOLE_CFG_EMERG_WR, 4, arg);
            break;
        }
        fz_check_status(&m);
    }
    fz_check_status(&m);
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
