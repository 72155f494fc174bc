/* Fuzz target: virtio-rng (devices/virtio/virtio_rng.c), driven by the mock virtio driver.
 *
 * Input: [option byte (fuzz/mock_common.h)][seed byte] then 3-byte requests
 *   [len lo][len hi][layout]: a receive buffer of len % 4097 bytes, split into
 *   1 + layout % 4 descriptors, with a readable descriptor first if layout & 4.
 *   The run stops before a request that would take the input past OUT_MAX bytes (32 KiB)
 *   or past MAX_REQUESTS requests (8 laps of the largest ring): generating the bytes is
 *   nearly all of a run's cost, and more of them reach no new code.
 * Invariants (abort() on violation):
 *   - a well-formed request completes with min(len, VIRTIO_RNG_REQ_MAX) bytes (or the
 *     device refuses a readable descriptor by failing, never by writing it);
 *   - determinism: the bytes are exactly the stream the seed defines, the device's
 *     prng (vmm/prng.h) seeded with machine_device_seed(seed byte, 0), one 64-bit word
 *     drawn per started 8 bytes of a request, so the same seed and requests always give
 *     the same bytes (the reference stream is computed once per seed and kept: checking
 *     against it costs a memcmp, where a second device per input doubled the run);
 *   - bytes past the used length are left untouched;
 *   - the device status stays legal and the interrupt line follows InterruptStatus.
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_rng.h"
#include "fuzz/fz_trace.h"
#include "vmm/prng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF 4096u
#define OUT_MAX (1u << 15)      /* bytes requested per input, at most */
#define MAX_REQUESTS 256

/* The stream of seed byte s: OUT_MAX / 8 words (enough: every request starts at a word
 * and stops at the OUT_MAX budget), computed the first time s is used. */
static uint64_t *stream[256];

static const uint64_t *stream_of(uint8_t seed)
{
    if (!stream[seed]) {
        struct prng p;

        stream[seed] = malloc(OUT_MAX);
        if (!stream[seed])
            abort();
        prng_seed(&p, machine_device_seed(seed, 0));
        for (unsigned i = 0; i < OUT_MAX / 8; i++)
            stream[seed][i] = prng_next(&p);
    }
    return stream[seed];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t untouched[BUF + 16];
    struct mock_virtio m;
    char err[256];
    size_t word = 0;    /* next word of the stream the device must draw */

    if (size < 2)
        return 0;
    if (!untouched[0])
        memset(untouched, 0xcc, sizeof untouched);
    const uint8_t *expect = (const uint8_t *)stream_of(data[1]);
    if (fz_mock_init(&m, fz_mock_ram(data[0], 1), 0) < 0)
        abort();
    fzt_begin(&m, &virtio_rng_type, "", data[1]);
    if (mock_virtio_create(&m, &virtio_rng_type, "", err, sizeof err) < 0)
        abort();
    fzt_route(&m);
    if (fz_mock_setup(&m, data[0], 0) < 0)
        abort();
    uint64_t buf = mock_virtio_alloc(&m, BUF + 16, 16);
    if (!buf)
        abort();
    uint8_t *host = mock_virtio_host(&m, buf, BUF + 16);

    for (size_t p = 2; p + 3 <= size && p < 2 + 3 * MAX_REQUESTS && fz_live(&m); p += 3) {
        uint32_t len = ((unsigned)data[p] | (unsigned)data[p + 1] << 8) % (BUF + 1);

        if (word * 8 + len > OUT_MAX)
            break;
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
                fz_abort();     /* a plain request must be served */
        } else if (r >= 0) {
            if (used != (len < VIRTIO_RNG_REQ_MAX ? len : VIRTIO_RNG_REQ_MAX))
                fz_abort();
            if (memcmp(host + used, untouched, BUF - used))
                fz_abort();     /* wrote past the used length */
            if (memcmp(host + BUF, untouched, 16))
                fz_abort();     /* wrote into a device-readable buffer */
            if (memcmp(host, expect + word * 8, used))
                fz_abort();     /* not the bytes the seed defines */
            word += (used + 7) / 8;
        }
        fz_check_status(&m);
    }
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
