/* virtio-console: transmit to a file, scripted input into receive buffers, emergency
 * write, arguments. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_console.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

static char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static void con_open(struct mock_virtio *m, const char *args, int packed)
{
    char err[256] = "";
    struct mock_virtio_opts o = { .packed = packed, .indirect = 1, .event_idx = 1,
                                  .device_features = VIRTIO_BIT(VIRTIO_CONSOLE_F_EMERG_WRITE) };
    ck_assert_int_eq(mock_virtio_init(m, 1 << 20, 5), 0);
    ck_assert_msg(mock_virtio_create(m, &virtio_console_type, args, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
}

START_TEST(transmit_to_file)
{
    char path[] = "/tmp/vmlab-con-XXXXXX", args[128];
    int fd = mkstemp(path);
    struct mock_virtio m;
    uint32_t len;

    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(args, sizeof(args), "out=%s", path);
    con_open(&m, args, _i);
    uint64_t a = mock_virtio_alloc(&m, 64, 1), b = mock_virtio_alloc(&m, 64, 1);
    memcpy(mock_virtio_host(&m, a, 6), "hello ", 6);
    memcpy(mock_virtio_host(&m, b, 6), "world\n", 6);
    struct mock_buf one = { a, 6, 0 };
    ck_assert_int_ge(mock_vq_request(&m, VIRTIO_CONSOLE_TX_Q, &one, 1, &len), 0);
    ck_assert_uint_eq(len, 0);
    /* A two-segment buffer comes out in order. */
    struct mock_buf two[2] = { { a, 6, 0 }, { b, 6, 0 } };
    ck_assert_int_ge(mock_vq_request(&m, VIRTIO_CONSOLE_TX_Q, two, 2, &len), 0);
    /* Emergency write: one byte through config space. */
    mock_virtio_write32(&m, VIRTIO_MMIO_CONFIG + 8, '!');
    ck_assert_str_eq(slurp(path), "hello hello world\n!");
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_CONFIG + 4), 1);   /* max_nr_ports */
    ck_assert(m.features & VIRTIO_BIT(VIRTIO_CONSOLE_F_EMERG_WRITE));
    mock_virtio_destroy(&m);
    unlink(path);
}
END_TEST

START_TEST(scripted_input)
{
    struct mock_virtio m;
    uint32_t id, len;

    con_open(&m, "out=none,in=ls -l\\nexit\\x2c 0\\n", _i);
    ck_assert_int_eq(m.irq_level, 0);       /* nothing delivered without buffers */
    /* Small receive buffers: the input is split across them, in order. */
    uint64_t rx = mock_virtio_alloc(&m, 64, 1);
    struct mock_buf b[3] = { { rx, 4, 1 }, { rx + 4, 4, 1 }, { rx + 8, 4, 1 } };
    for (int i = 0; i < 3; i++)
        ck_assert_int_ge(mock_vq_add(&m, VIRTIO_CONSOLE_RX_Q, &b[i], 1), 0);
    mock_vq_kick(&m, VIRTIO_CONSOLE_RX_Q);
    ck_assert_int_eq(m.irq_level, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_CONSOLE_RX_Q, &id, &len), 1);
        ck_assert_uint_eq(len, 4);
    }
    ck_assert(memcmp(mock_virtio_host(&m, rx, 12), "ls -l\nexit, ", 12) == 0);
    /* The rest goes to the next buffer; after that, buffers stay with the device. */
    struct mock_buf big = { rx + 16, 32, 1 };
    ck_assert_int_ge(mock_vq_add(&m, VIRTIO_CONSOLE_RX_Q, &big, 1), 0);
    mock_vq_kick(&m, VIRTIO_CONSOLE_RX_Q);
    ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_CONSOLE_RX_Q, &id, &len), 1);
    ck_assert_uint_eq(len, 2);
    ck_assert(memcmp(mock_virtio_host(&m, rx + 16, 2), "0\n", 2) == 0);
    ck_assert_int_ge(mock_vq_add(&m, VIRTIO_CONSOLE_RX_Q, &big, 1), 0);
    mock_vq_kick(&m, VIRTIO_CONSOLE_RX_Q);
    ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_CONSOLE_RX_Q, &id, &len), 0);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(input_posted_before_driver_ok)
{
    struct mock_virtio m;
    struct mock_virtio_opts o = { 0 };
    char err[64];
    uint32_t id, len;

    ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 5), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_console_type, "out=none,in=x", err,
                                        sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_negotiate(&m, &o), 0);
    ck_assert_int_eq(mock_virtio_queue_setup(&m, 0, 0), 0);
    ck_assert_int_eq(mock_virtio_queue_setup(&m, 1, 0), 0);
    uint64_t rx = mock_virtio_alloc(&m, 8, 1);
    struct mock_buf b = { rx, 8, 1 };
    ck_assert_int_ge(mock_vq_add(&m, 0, &b, 1), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, 0, &id, &len), 0);
    ck_assert_int_eq(mock_virtio_driver_ok(&m), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, 0, &id, &len), 1);
    ck_assert_uint_eq(len, 1);
    ck_assert_uint_eq(*(uint8_t *)mock_virtio_host(&m, rx, 1), 'x');
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(bad_arguments)
{
    static const char *const bad[] = { "in=\\q", "in=\\x4", "colour=red",
                                       "out=/nonexistent-dir/x" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mock_virtio m;
        char err[256] = "";
        mock_virtio_init(&m, 1 << 20, 1);
        ck_assert_int_lt(mock_virtio_create(&m, &virtio_console_type, bad[i], err, sizeof(err)),
                         0);
        ck_assert_msg(err[0] != 0, "no message for '%s'", bad[i]);
        mock_virtio_destroy(&m);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_console");
    TCase *t = tcase_create("console");

    tcase_add_loop_test(t, transmit_to_file, 0, 2);
    tcase_add_loop_test(t, scripted_input, 0, 2);
    tcase_add_test(t, input_posted_before_driver_ok);
    tcase_add_test(t, bad_arguments);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
