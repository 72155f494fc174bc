/* virtio-mmio version 2 transport: every register, the status state machine, feature
 * negotiation, queue configuration checks, reset, interrupts and illegal accesses. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_rng.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

#define R(off) mock_virtio_read32(m, (off))
#define WR(off, v) mock_virtio_write32(m, (off), (v))

static void open_dev(struct mock_virtio *m, const struct device_type *t, const char *args)
{
    char err[128] = "";
    ck_assert_int_eq(mock_virtio_init(m, 1 << 20, 3), 0);
    ck_assert_msg(mock_virtio_create(m, t, args, err, sizeof(err)) == 0, "%s", err);
}

static uint64_t features(struct mock_virtio *m)
{
    WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t f = R(VIRTIO_MMIO_DEVICE_FEATURES);
    WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    return f | (uint64_t)R(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

static void set_driver_features(struct mock_virtio *m, uint64_t f)
{
    WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
    WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

START_TEST(identity_registers)
{
    struct mock_virtio mm, *m = &mm;
    static const struct { const struct device_type *t; const char *args; uint32_t id; } devs[] = {
        { &virtio_blk_type, "mem=1M", VIRTIO_ID_BLOCK },
        { &virtio_console_type, "out=none", VIRTIO_ID_CONSOLE },
        { &virtio_rng_type, "", VIRTIO_ID_RNG },
    };

    for (unsigned i = 0; i < 3; i++) {
        open_dev(m, devs[i].t, devs[i].args);
        ck_assert_uint_eq(R(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
        ck_assert_uint_eq(R(VIRTIO_MMIO_VERSION), 2);
        ck_assert_uint_eq(R(VIRTIO_MMIO_DEVICE_ID), devs[i].id);
        ck_assert_uint_eq(devs[i].t->virtio_id, devs[i].id);
        ck_assert_uint_eq(R(VIRTIO_MMIO_VENDOR_ID), 0x424c4d56);
        ck_assert_uint_eq(devs[i].t->window_size, 0x1000);
        uint64_t f = features(m);
        ck_assert(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
        ck_assert(f & VIRTIO_BIT(VIRTIO_F_RING_PACKED));
        ck_assert(f & VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC));
        ck_assert(f & VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
        ck_assert(f & VIRTIO_BIT(VIRTIO_F_RING_RESET));
        WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
        ck_assert_uint_eq(R(VIRTIO_MMIO_DEVICE_FEATURES), 0);
        /* No shared memory regions. */
        WR(VIRTIO_MMIO_SHM_SEL, 0);
        ck_assert_uint_eq(R(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
        ck_assert_uint_eq(R(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
        ck_assert_uint_eq(R(VIRTIO_MMIO_SHM_BASE_LOW), 0xffffffff);
        ck_assert_uint_eq(R(VIRTIO_MMIO_SHM_BASE_HIGH), 0xffffffff);
        ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0);
        ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        ck_assert_uint_eq(R(VIRTIO_MMIO_CONFIG_GENERATION), 0);
        /* Queue count: QueueNumMax is 0 past the last queue. */
        unsigned nq = virtio_dev_num_queues(m->state);
        for (unsigned q = 0; q < nq; q++) {
            WR(VIRTIO_MMIO_QUEUE_SEL, q);
            ck_assert_uint_gt(R(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
            ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
        }
        WR(VIRTIO_MMIO_QUEUE_SEL, nq);
        ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
        mock_virtio_destroy(m);
    }
}
END_TEST

/* Fuzz finding (fuzz/crashes/virtio_mmio/status-reserved-bits): Status kept bits the spec
 * does not define. They are dropped now, with a log line. */
START_TEST(status_undefined_bits_dropped)
{
    struct mock_virtio mm, *m = &mm;

    open_dev(m, &virtio_rng_type, "");
    WR(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | 0x20 | 0x10);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
    ck_assert(strstr(mock_virtio_log(m), "undefined bits 0x30 dropped") != NULL);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(features_ok_rules)
{
    struct mock_virtio mm, *m = &mm;

    open_dev(m, &virtio_rng_type, "");
    WR(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    WR(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    /* A legacy driver (no VERSION_1) is refused: FEATURES_OK does not stick. */
    set_driver_features(m, 0);
    WR(VIRTIO_MMIO_STATUS, 0x0b);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x03);
    ck_assert(strstr(mock_virtio_log(m), "VERSION_1") != NULL);
    /* A feature the device never offered is refused. */
    set_driver_features(m, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM));
    WR(VIRTIO_MMIO_STATUS, 0x0b);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x03);
    /* DRIVER_OK without FEATURES_OK is ignored. */
    WR(VIRTIO_MMIO_STATUS, 0x07);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x03);
    /* QueueReady before FEATURES_OK is ignored. */
    WR(VIRTIO_MMIO_QUEUE_SEL, 0);
    WR(VIRTIO_MMIO_QUEUE_READY, 1);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
    /* Valid set. */
    set_driver_features(m, VIRTIO_BIT(VIRTIO_F_VERSION_1));
    WR(VIRTIO_MMIO_STATUS, 0x0b);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x0b);
    /* Features are frozen after FEATURES_OK. */
    set_driver_features(m, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_RING_PACKED));
    struct virtio_dev *vd = m->state;
    ck_assert(!virtio_dev_has(vd, VIRTIO_F_RING_PACKED));
    /* Clearing bits is not allowed (only a full reset). */
    WR(VIRTIO_MMIO_STATUS, 0x03);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x0b);
    /* DRIVER without ACKNOWLEDGE from reset is refused. */
    WR(VIRTIO_MMIO_STATUS, 0);
    WR(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_DRIVER);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0);
    /* FAILED is accepted. */
    WR(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_FAILED);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x81);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(queue_config_checks)
{
    /* Each case: a bad queue configuration, refused at QueueReady with NEEDS_RESET. */
    for (int c = 0; c < 5; c++) {
        struct mock_virtio mm, *m = &mm;
        struct mock_virtio_opts o = { .packed = c == 4 };
        open_dev(m, &virtio_rng_type, "");
        ck_assert_int_eq(mock_virtio_negotiate(m, &o), 0);
        WR(VIRTIO_MMIO_QUEUE_SEL, 0);
        uint32_t desc = 0x1000, drv = 0x2000, dev = 0x3000, num = 16;
        switch (c) {
        case 0: num = 12; break;                    /* split: not a power of 2 */
        case 1: num = 65; break;                    /* above QueueNumMax (64) */
        case 2: desc = 0x1008; break;               /* misaligned descriptor table */
        case 3: dev = (1 << 20) - 8; break;         /* used ring runs off RAM */
        case 4: drv = 0x2002; break;                /* packed: event area misaligned */
        }
        WR(VIRTIO_MMIO_QUEUE_NUM, num);
        WR(VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
        WR(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
        WR(VIRTIO_MMIO_QUEUE_DRIVER_LOW, drv);
        WR(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
        WR(VIRTIO_MMIO_QUEUE_DEVICE_LOW, dev);
        WR(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
        WR(VIRTIO_MMIO_QUEUE_READY, 1);
        ck_assert_msg(R(VIRTIO_MMIO_QUEUE_READY) == 0, "case %d", c);
        ck_assert_msg(R(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, "case %d", c);
        ck_assert_int_eq(m->irq_level, 1);
        mock_virtio_destroy(m);
    }
    /* A high address word puts the ring outside RAM. */
    struct mock_virtio mm, *m = &mm;
    struct mock_virtio_opts o = { 0 };
    open_dev(m, &virtio_rng_type, "");
    ck_assert_int_eq(mock_virtio_negotiate(m, &o), 0);
    WR(VIRTIO_MMIO_QUEUE_NUM, 16);
    WR(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
    WR(VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);
    WR(VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x2000);
    WR(VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x3000);
    WR(VIRTIO_MMIO_QUEUE_READY, 1);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert(strstr(mock_virtio_log(m), "outside guest RAM") != NULL);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(reset_and_interrupts)
{
    struct mock_virtio mm, *m = &mm;
    struct mock_virtio_opts o = { .event_idx = 1 };

    open_dev(m, &virtio_rng_type, "");
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x0f);
    WR(VIRTIO_MMIO_QUEUE_SEL, 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 1);
    uint64_t buf = mock_virtio_alloc(m, 64, 8);
    struct mock_buf b = { buf, 64, 1 };
    uint32_t len;
    ck_assert_int_ge(mock_vq_request(m, 0, &b, 1, &len), 0);
    ck_assert_uint_eq(len, 64);
    /* Level-triggered: high while InterruptStatus != 0. */
    ck_assert_int_eq(m->irq_level, 1);
    ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_STATUS), 1);
    WR(VIRTIO_MMIO_INTERRUPT_ACK, 2);           /* acking the other bit changes nothing */
    ck_assert_int_eq(m->irq_level, 1);
    WR(VIRTIO_MMIO_INTERRUPT_ACK, 1);
    ck_assert_int_eq(m->irq_level, 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    /* Queue registers are frozen while the queue is ready. */
    WR(VIRTIO_MMIO_QUEUE_NUM, 8);
    WR(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x40000);
    ck_assert_int_ge(mock_vq_request(m, 0, &b, 1, &len), 0);
    ck_assert(strstr(mock_virtio_log(m), "while queue 0 is ready") != NULL);
    /* Leave an interrupt pending, then reset: everything returns to its initial state. */
    ck_assert_int_eq(m->irq_level, 1);
    WR(VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    ck_assert_int_eq(m->irq_level, 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
    /* Notifies after reset are ignored; the device is usable after re-initialisation. */
    WR(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    mock_virtio_reset(m);
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
    ck_assert_int_ge(mock_vq_request(m, 0, &b, 1, &len), 0);
    /* QueueReady = 0 stops a queue: kicks are ignored. */
    WR(VIRTIO_MMIO_QUEUE_SEL, 0);
    WR(VIRTIO_MMIO_QUEUE_READY, 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert_int_ge(mock_vq_add(m, 0, &b, 1), 0);
    mock_vq_kick(m, 0);
    uint32_t id;
    ck_assert_int_eq(mock_vq_get_used(m, 0, &id, &len), 0);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(kick_before_driver_ok)
{
    struct mock_virtio mm, *m = &mm;
    struct mock_virtio_opts o = { .packed = _i };
    uint32_t id, len;

    open_dev(m, &virtio_rng_type, "");
    ck_assert_int_eq(mock_virtio_negotiate(m, &o), 0);
    ck_assert_int_eq(mock_virtio_queue_setup(m, 0, 16), 0);
    uint64_t buf = mock_virtio_alloc(m, 64, 8);
    struct mock_buf b = { buf, 32, 1 };
    ck_assert_int_ge(mock_vq_add(m, 0, &b, 1), 0);
    mock_vq_kick(m, 0);
    ck_assert_int_eq(mock_vq_get_used(m, 0, &id, &len), 0);     /* not yet */
    ck_assert_int_eq(mock_virtio_driver_ok(m), 0);
    ck_assert_int_eq(mock_vq_get_used(m, 0, &id, &len), 1);     /* served at DRIVER_OK */
    ck_assert_uint_eq(len, 32);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(queue_reset)
{
    struct mock_virtio mm, *m = &mm;
    struct mock_virtio_opts o = { .packed = _i, .device_features = VIRTIO_BIT(VIRTIO_F_RING_RESET) };
    uint32_t len;

    open_dev(m, &virtio_rng_type, "");
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
    ck_assert(m->features & VIRTIO_BIT(VIRTIO_F_RING_RESET));
    uint64_t buf = mock_virtio_alloc(m, 64, 8);
    struct mock_buf b = { buf, 16, 1 };
    for (int i = 0; i < 5; i++)
        ck_assert_int_ge(mock_vq_request(m, 0, &b, 1, &len), 0);
    WR(VIRTIO_MMIO_QUEUE_SEL, 0);
    WR(VIRTIO_MMIO_QUEUE_RESET, 1);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_RESET), 0);      /* done at once */
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0x0f);        /* the device stays live */
    /* Re-enable the queue with fresh rings. */
    m->vqs[0].enabled = 0;
    ck_assert_int_eq(mock_virtio_queue_setup(m, 0, 32), 0);
    ck_assert_int_ge(mock_vq_request(m, 0, &b, 1, &len), 0);
    ck_assert_uint_eq(len, 16);
    mock_virtio_destroy(m);

    /* Without VIRTIO_F_RING_RESET negotiated the register does nothing. */
    struct mock_virtio_opts o2 = { .packed = _i };
    open_dev(m, &virtio_rng_type, "");
    ck_assert_int_eq(mock_virtio_setup(m, &o2), 0);
    WR(VIRTIO_MMIO_QUEUE_SEL, 0);
    WR(VIRTIO_MMIO_QUEUE_RESET, 1);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 1);
    ck_assert(strstr(mock_virtio_log(m), "QueueReset without") != NULL);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(illegal_accesses)
{
    struct mock_virtio mm, *m = &mm;
    uint64_t v = 0;

    open_dev(m, &virtio_blk_type, "mem=1M");
    /* Non-config registers take 32-bit accesses only. */
    ck_assert_int_eq(mock_virtio_read(m, VIRTIO_MMIO_MAGIC_VALUE, 2, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(mock_virtio_read(m, VIRTIO_MMIO_MAGIC_VALUE, 8, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(mock_virtio_read(m, VIRTIO_MMIO_MAGIC_VALUE + 1, 1, &v), 0);
    ck_assert_uint_eq(v, 0);
    mock_virtio_write(m, VIRTIO_MMIO_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
    ck_assert_uint_eq(R(VIRTIO_MMIO_STATUS), 0);
    /* Writes to read-only registers are ignored. */
    WR(VIRTIO_MMIO_MAGIC_VALUE, 0);
    WR(VIRTIO_MMIO_DEVICE_ID, 9);
    WR(VIRTIO_MMIO_INTERRUPT_STATUS, 3);
    WR(VIRTIO_MMIO_CONFIG_GENERATION, 5);
    ck_assert_uint_eq(R(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    ck_assert_uint_eq(R(VIRTIO_MMIO_DEVICE_ID), 2);
    ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_CONFIG_GENERATION), 0);
    /* Write-only registers and holes read as 0. */
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_NOTIFY), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_ACK), 0);
    ck_assert_uint_eq(R(0x0f8), 0);
    /* Notify for an absent queue, QueueReady for an absent queue. */
    WR(VIRTIO_MMIO_QUEUE_NOTIFY, 7);
    WR(VIRTIO_MMIO_QUEUE_SEL, 5);
    WR(VIRTIO_MMIO_QUEUE_READY, 1);
    WR(VIRTIO_MMIO_QUEUE_NUM, 4);
    ck_assert_uint_eq(R(VIRTIO_MMIO_QUEUE_READY), 0);
    const char *log = mock_virtio_log(m);
    ck_assert(strstr(log, "2-byte read at register 0x0") != NULL);
    ck_assert(strstr(log, "read-only or unknown register 0x0") != NULL);
    ck_assert(strstr(log, "write-only or unknown register 0x50") != NULL);
    /* A flood of bad accesses is logged a bounded number of times. */
    for (int i = 0; i < 10000; i++)
        WR(VIRTIO_MMIO_MAGIC_VALUE, 0);
    ck_assert_uint_lt(strlen(mock_virtio_log(m)), 100 * 100);
    ck_assert(strstr(mock_virtio_log(m), "further messages suppressed") != NULL);
    /* Config reads of every width and beyond the structure. */
    ck_assert_int_eq(mock_virtio_read(m, VIRTIO_MMIO_CONFIG, 2, &v), 0);
    ck_assert_uint_eq(v, 2048);
    ck_assert_int_eq(mock_virtio_read(m, 0xff8, 8, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_uint_eq(m->irq_level, 0);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(config_generation)
{
    struct mock_virtio mm, *m = &mm;
    char err[64];

    open_dev(m, &virtio_blk_type, "mem=1M");
    uint32_t g0 = R(VIRTIO_MMIO_CONFIG_GENERATION);
    ck_assert_int_eq(virtio_blk_type.resize(m->state, 2 << 20, err, sizeof(err)), 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_CONFIG_GENERATION), g0 + 1);
    ck_assert_uint_eq(R(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    ck_assert_int_eq(m->irq_level, 1);
    /* Reset keeps the generation counter moving forward only. */
    WR(VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(R(VIRTIO_MMIO_CONFIG_GENERATION), g0 + 1);
    mock_virtio_destroy(m);
}
END_TEST

START_TEST(queue_stats)
{
    struct mock_virtio mm, *m = &mm;
    struct mock_virtio_opts o = { 0 };
    uint64_t req = 99, notif = 99;
    uint32_t len;

    open_dev(m, &virtio_console_type, "out=none,in=abc");
    ck_assert_uint_eq(virtio_console_type.num_queues(m->state), 2);
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
    uint64_t buf = mock_virtio_alloc(m, 64, 8);
    struct mock_buf tx = { buf, 5, 0 }, rx = { buf, 64, 1 };
    ck_assert_int_ge(mock_vq_request(m, 1, &tx, 1, &len), 0);
    ck_assert_int_ge(mock_vq_request(m, 1, &tx, 1, &len), 0);
    ck_assert_int_ge(mock_vq_request(m, 0, &rx, 1, &len), 0);
    ck_assert_int_eq(virtio_console_type.queue_stats(m->state, 1, &req, &notif), 0);
    ck_assert_uint_eq(req, 2);
    ck_assert_uint_eq(notif, 2);
    ck_assert_int_eq(virtio_console_type.queue_stats(m->state, 0, &req, &notif), 0);
    ck_assert_uint_eq(req, 1);
    ck_assert_int_eq(virtio_console_type.queue_stats(m->state, 2, &req, &notif), -EINVAL);
    mock_virtio_destroy(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_mmio");
    TCase *t = tcase_create("mmio");

    tcase_add_test(t, identity_registers);
    tcase_add_test(t, features_ok_rules);
    tcase_add_test(t, status_undefined_bits_dropped);
    tcase_add_test(t, queue_config_checks);
    tcase_add_test(t, reset_and_interrupts);
    tcase_add_loop_test(t, kick_before_driver_ok, 0, 2);
    tcase_add_loop_test(t, queue_reset, 0, 2);
    tcase_add_test(t, illegal_accesses);
    tcase_add_test(t, config_generation);
    tcase_add_test(t, queue_stats);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
