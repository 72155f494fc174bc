/* virtio-rng: deterministic bytes from the device seed, request sizes, bounds. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_rng.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

/* Runs a fixed sequence of requests with `seed` and returns the bytes received. */
static void draw(uint64_t seed, int packed, uint8_t *out, size_t n)
{
    struct mock_virtio m;
    struct mock_virtio_opts o = { .packed = packed, .indirect = 1 };
    char err[64];
    uint32_t len;
    size_t got = 0;

    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, seed), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_rng_type, "", err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(&m, &o), 0);
    uint64_t buf = mock_virtio_alloc(&m, 4096, 8);
    for (size_t chunk = 1; got < n; chunk = chunk * 3 + 1) {
        size_t want = chunk > n - got ? n - got : chunk;
        struct mock_buf b[2] = { { buf, (uint32_t)(want / 2), 1 },
                                 { buf + 2048, (uint32_t)(want - want / 2), 1 } };
        if (want <= 1)
            b[0].len = (uint32_t)want;
        ck_assert_int_ge(mock_vq_request(&m, 0, b, want > 1 ? 2 : 1, &len), 0);
        ck_assert_uint_eq(len, want);
        memcpy(out + got, mock_virtio_host(&m, buf, b[0].len), b[0].len);
        if (want > 1)
            memcpy(out + got + b[0].len, mock_virtio_host(&m, buf + 2048, b[1].len), b[1].len);
        got += want;
    }
    mock_virtio_destroy(&m);
}

START_TEST(same_seed_same_bytes)
{
    uint8_t a[3000], b[3000], c[3000];

    draw(1234, 0, a, sizeof(a));
    draw(1234, 1, b, sizeof(b));        /* ring format does not matter */
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    draw(1235, 0, c, sizeof(c));
    ck_assert(memcmp(a, c, sizeof(a)) != 0);
    /* Not trivially constant. */
    int distinct = 0;
    for (size_t i = 1; i < sizeof(a); i++)
        distinct += a[i] != a[0];
    ck_assert_int_gt(distinct, 2900);
}
END_TEST

START_TEST(large_request_is_capped)
{
    struct mock_virtio m;
    struct mock_virtio_opts o = { 0 };
    char err[64];
    uint32_t len;

    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 9), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_rng_type, "", err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(&m, &o), 0);
    uint64_t buf = mock_virtio_alloc(&m, 256 << 10, 8);
    struct mock_buf b = { buf, 256 << 10, 1 };
    ck_assert_int_ge(mock_vq_request(&m, 0, &b, 1, &len), 0);
    ck_assert_uint_eq(len, VIRTIO_RNG_REQ_MAX);
    uint8_t *p = mock_virtio_host(&m, buf, 256 << 10);
    ck_assert_uint_eq(p[VIRTIO_RNG_REQ_MAX], 0);     /* nothing written past the cap */
    /* A read-only buffer gets nothing (used length 0). */
    struct mock_buf r = { buf, 16, 0 };
    ck_assert_int_ge(mock_vq_request(&m, 0, &r, 1, &len), 0);
    ck_assert_uint_eq(len, 0);
    mock_virtio_destroy(&m);
    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 9), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_rng_type, "bogus=1", err, sizeof(err)),
                     -EINVAL);
    ck_assert(strstr(err, "bogus") != NULL);
    mock_virtio_destroy(&m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_rng");
    TCase *t = tcase_create("rng");

    tcase_add_test(t, same_seed_same_bytes);
    tcase_add_test(t, large_request_is_capped);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
