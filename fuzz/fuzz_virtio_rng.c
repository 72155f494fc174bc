/* Fuzz target: virtio-rng (devices/virtio/virtio_rng.c), driven by the mock virtio driver.
 *
 * Input: [option byte (fuzz/mock_common.h)][seed byte] then 3-byte requests
 *   [len lo][len hi][layout]: a receive buffer of len % 4097 bytes, split into
 *   1 + layout % 4 descriptors, with a readable descriptor first if layout & 4.
 * Invariants (abort() on violation):
 *   - a well-formed request completes with min(len, VIRTIO_RNG_REQ_MAX) bytes (or the
 *     device refuses a readable descriptor by failing, never by writing it);
 *   - determinism: a second device with the same seed, fed the same requests, returns
 *     exactly the same bytes;
 *   - bytes past the used length are left untouched;
 *   - the device status stays legal and the interrupt line follows InterruptStatus. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_rng.h"
#include "fuzz/mock_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF 4096u

/* Runs every request; the bytes received are appended to out (returns their count). */
static size_t run(const uint8_t *data, size_t size, uint8_t *out, size_t cap)
{
    struct mock_virtio m;
    char err[256];
    size_t got = 0;

    if (mock_virtio_init(&m, fz_mock_ram(data[0], 1), data[1]) < 0)
        abort();
    if (mock_virtio_create(&m, &virtio_rng_type, "", err, sizeof err) < 0)
        abort();
    if (fz_mock_setup(&m, data[0], 0) < 0)
        abort();
    uint64_t buf = mock_virtio_alloc(&m, BUF + 16, 16);
    if (!buf)
        abort();
    uint8_t *host = mock_virtio_host(&m, buf, BUF + 16);

    for (size_t p = 2; p + 3 <= size && fz_live(&m); p += 3) {
        uint32_t len = ((unsigned)data[p] | (unsigned)data[p + 1] << 8) % (BUF + 1);
        unsigned nb = 1 + data[p + 2] % 4, off = 0, k = 0;
        int readable = data[p + 2] & 4;
        struct mock_buf mb[5];
        uint32_t used;

        if (readable)
            mb[k++] = (struct mock_buf){ buf + BUF, 16, 0 };
        for (unsigned i = 0; i < nb; i++) {
            unsigned l = i + 1 < nb ? len / nb : len - off;
            mb[k++] = (struct mock_buf){ buf + off, l, 1 };
            off += l;
        }
        memset(host, 0xcc, BUF + 16);
        int r = mock_vq_request(&m, 0, mb, k, &used);
        if (r == -EAGAIN) {
            if (!readable && len)
                abort();    /* a plain request must be served */
        } else if (r >= 0) {
            if (used != (len < VIRTIO_RNG_REQ_MAX ? len : VIRTIO_RNG_REQ_MAX))
                abort();
            for (uint32_t i = used; i < BUF; i++)
                if (host[i] != 0xcc)
                    abort();    /* wrote past the used length */
            for (uint32_t i = BUF; i < BUF + 16; i++)
                if (host[i] != 0xcc)
                    abort();    /* wrote into a device-readable buffer */
            if (got + used <= cap) {
                memcpy(out + got, host, used);
                got += used;
            }
        }
        fz_check_status(&m);
    }
    mock_virtio_destroy(&m);
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a[1 << 16], b[1 << 16];

    if (size < 2)
        return 0;
    size_t na = run(data, size, a, sizeof a);
    size_t nb = run(data, size, b, sizeof b);
    if (na != nb || memcmp(a, b, na))
        abort();    /* same seed, same requests, different bytes */
    return 0;
}
