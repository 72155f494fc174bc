/* virtio-input: config space per kind, event delivery, the bounded pending queue, the
 * status queue, hostile buffers and host input of the wrong size. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_input.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

static void cfg_select(struct mock_virtio *m, uint8_t sel, uint8_t sub)
{
    ck_assert_int_eq(mock_virtio_write(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_SELECT, 1, sel),
                     0);
    ck_assert_int_eq(mock_virtio_write(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_SUBSEL, 1, sub),
                     0);
}

/* Selects (sel, sub) and reads size and data as a driver does, byte by byte. */
static unsigned cfg_query(struct mock_virtio *m, uint8_t sel, uint8_t sub, uint8_t *data)
{
    uint64_t v;

    cfg_select(m, sel, sub);
    ck_assert_int_eq(mock_virtio_read(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_SIZE_OFF, 1, &v),
                     0);
    for (unsigned i = 0; i < 128; i++) {
        uint64_t b;
        mock_virtio_read(m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_DATA + i, 1, &b);
        data[i] = (uint8_t)b;
    }
    return (unsigned)v;
}

static int has_bit(const uint8_t *bm, unsigned bit)
{
    return bm[bit / 8] >> (bit % 8) & 1;
}

static void start(struct mock_virtio *m, const char *args)
{
    struct mock_virtio_opts o = { 0 };
    char err[128];

    ck_assert_int_eq(mock_virtio_init(m, 1 << 20, 1), 0);
    ck_assert_int_eq(mock_virtio_create(m, &virtio_input_type, args, err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
}

static void ev(uint8_t *out, uint16_t type, uint16_t code, uint32_t value)
{
    memcpy(out, &type, 2);
    memcpy(out + 2, &code, 2);
    memcpy(out + 4, &value, 4);
}

static int inject(struct mock_virtio *m, const uint8_t *data, size_t len)
{
    char err[128];
    return m->type->host_input(m->state, data, len, err, sizeof(err));
}

START_TEST(touch_config)
{
    struct mock_virtio m;
    uint8_t d[128];

    start(&m, "kind=multi-touch,width=720,height=1280,name=panel");
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_NAME, 0, d), 5);
    ck_assert(memcmp(d, "panel", 5) == 0);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_SERIAL, 0, d), 0);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_DEVIDS, 0, d), 8);
    ck_assert_uint_eq(d[0], BUS_VIRTUAL);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_PROP_BITS, 0, d), 1);
    ck_assert(has_bit(d, INPUT_PROP_DIRECT));
    /* Every EV_BITS subsel: only SYN, KEY and ABS have something to say. */
    for (unsigned sub = 0; sub < 256; sub++) {
        unsigned size = cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, (uint8_t)sub, d);
        if (sub == EV_SYN || sub == EV_KEY || sub == EV_ABS)
            ck_assert_uint_gt(size, 0);
        else
            ck_assert_msg(size == 0, "EV_BITS subsel %u has size %u", sub, size);
        for (unsigned i = size; i < 128; i++)
            ck_assert_uint_eq(d[i], 0);
    }
    cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, d);
    ck_assert(has_bit(d, BTN_TOUCH));
    cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, d);
    ck_assert(has_bit(d, ABS_MT_SLOT) && has_bit(d, ABS_MT_POSITION_X) &&
              has_bit(d, ABS_MT_POSITION_Y) && has_bit(d, ABS_MT_TRACKING_ID));
    uint32_t info[5];
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ABS_INFO, ABS_MT_POSITION_X, d), 20);
    memcpy(info, d, 20);
    ck_assert_uint_eq(info[0], 0);
    ck_assert_uint_eq(info[1], 719);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ABS_INFO, ABS_MT_POSITION_Y, d), 20);
    memcpy(info, d, 20);
    ck_assert_uint_eq(info[1], 1279);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ABS_INFO, ABS_MT_SLOT, d), 20);
    memcpy(info, d, 20);
    ck_assert_uint_eq(info[1], VIRTIO_INPUT_MT_SLOTS - 1);
    /* An axis the device lacks, an unknown selector, UNSET: size 0. */
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ABS_INFO, 0x28, d), 0);
    ck_assert_uint_eq(cfg_query(&m, 0x42, 0, d), 0);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_UNSET, 0, d), 0);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_NAME, 1, d), 0);
    /* The size byte and the data are read-only. */
    mock_virtio_write(&m, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CFG_DATA, 1, 0x55);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_NAME, 0, d), 5);
    ck_assert_uint_eq(d[0], 'p');
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(keyboard_and_mouse_config)
{
    struct mock_virtio m;
    uint8_t d[128];

    start(&m, "kind=keyboard");
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_NAME, 0, d),
                      strlen("vmlab Virtio Keyboard"));
    cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, d);
    ck_assert(has_bit(d, 30) && has_bit(d, 28));       /* KEY_A, KEY_ENTER */
    ck_assert_uint_gt(cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_LED, d), 0);
    ck_assert(has_bit(d, LED_CAPSL));
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, d), 0);
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_PROP_BITS, 0, d), 0);
    mock_virtio_destroy(&m);

    start(&m, "kind=mouse,serial=m0");
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ID_SERIAL, 0, d), 2);
    ck_assert_uint_gt(cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_REL, d), 0);
    ck_assert(has_bit(d, REL_X) && has_bit(d, REL_Y) && has_bit(d, REL_WHEEL));
    cfg_query(&m, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, d);
    ck_assert(has_bit(d, BTN_LEFT) && !has_bit(d, BTN_TOUCH));
    ck_assert_uint_eq(cfg_query(&m, VIRTIO_INPUT_CFG_ABS_INFO, ABS_X, d), 0);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(events_delivered_in_order)
{
    struct mock_virtio m;
    uint8_t evs[3 * 8];
    uint64_t buf[4];
    uint32_t id, len;

    start(&m, "kind=single-touch");
    for (int i = 0; i < 4; i++) {
        buf[i] = mock_virtio_alloc(&m, 8, 8);
        struct mock_buf b = { buf[i], 8, 1 };
        ck_assert_int_ge(mock_vq_add(&m, VIRTIO_INPUT_EVENT_Q, &b, 1), 0);
    }
    mock_vq_kick(&m, VIRTIO_INPUT_EVENT_Q);
    ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len), 0);
    unsigned raises = m.irq_raises;
    ev(evs, EV_ABS, ABS_X, 100);
    ev(evs + 8, EV_KEY, BTN_TOUCH, 1);
    ev(evs + 16, EV_SYN, SYN_REPORT, 0);
    ck_assert_int_eq(inject(&m, evs, sizeof(evs)), 0);
    ck_assert_uint_gt(m.irq_raises, raises);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len), 1);
        ck_assert_uint_eq(len, 8);
        ck_assert(memcmp(mock_virtio_host(&m, buf[i], 8), evs + 8 * i, 8) == 0);
    }
    ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len), 0);
    struct virtio_input_counters c;
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.delivered, 3);
    ck_assert_uint_eq(c.pending, 0);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(pending_queue_is_bounded)
{
    struct mock_virtio m;
    uint8_t e[8];
    uint32_t id, len;
    struct virtio_input_counters c;

    start(&m, "kind=keyboard");
    /* No buffers: events wait, up to the limit; the rest are dropped and counted. */
    for (uint32_t i = 0; i < VIRTIO_INPUT_PENDING_MAX + 6; i++) {
        ev(e, EV_KEY, 30, i);
        ck_assert_int_eq(inject(&m, e, 8), 0);
    }
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.pending, VIRTIO_INPUT_PENDING_MAX);
    ck_assert_uint_eq(c.dropped, 6);
    ck_assert_uint_eq(c.injected, VIRTIO_INPUT_PENDING_MAX + 6);
    /* Buffers posted later get the oldest events first. */
    uint64_t buf = mock_virtio_alloc(&m, 8 * 64, 8);
    for (int i = 0; i < 64; i++) {
        struct mock_buf b = { buf + 8 * (uint64_t)i, 8, 1 };
        ck_assert_int_ge(mock_vq_add(&m, VIRTIO_INPUT_EVENT_Q, &b, 1), 0);
    }
    mock_vq_kick(&m, VIRTIO_INPUT_EVENT_Q);
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t value;
        ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len), 1);
        memcpy(&value, (uint8_t *)mock_virtio_host(&m, buf, 8 * 64) + 8 * i + 4, 4);
        ck_assert_uint_eq(value, i);
    }
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.pending, VIRTIO_INPUT_PENDING_MAX - 64);
    /* A reset forgets what was queued for the driver that went away ... */
    mock_virtio_reset(&m);
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.pending, 0);
    ck_assert_uint_eq(c.discarded, VIRTIO_INPUT_PENDING_MAX - 64);
    /* ... but what arrives before any driver started waits for the first one. */
    ev(e, EV_KEY, 30, 77);
    ck_assert_int_eq(inject(&m, e, 8), 0);
    mock_virtio_reset(&m);
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.pending, 1);
    struct mock_virtio_opts o = { 0 };
    ck_assert_int_eq(mock_virtio_setup(&m, &o), 0);
    struct mock_buf b1 = { buf, 8, 1 };
    ck_assert_int_ge(mock_vq_request(&m, VIRTIO_INPUT_EVENT_Q, &b1, 1, &len), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert(memcmp(mock_virtio_host(&m, buf, 8), e, 8) == 0);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(status_queue_leds)
{
    struct mock_virtio m;
    uint32_t id, len;
    struct virtio_input_counters c;

    start(&m, "kind=keyboard");
    uint64_t b8 = mock_virtio_alloc(&m, 16, 8);
    ev(mock_virtio_host(&m, b8, 8), EV_LED, LED_CAPSL, 1);
    struct mock_buf b = { b8, 8, 0 };
    ck_assert_int_ge(mock_vq_request(&m, VIRTIO_INPUT_STATUS_Q, &b, 1, &len), 0);
    ck_assert_uint_eq(len, 0);
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.leds, 1u << LED_CAPSL);
    ck_assert_uint_eq(c.status, 1);
    /* A status buffer of the wrong size is returned, logged, and changes nothing. */
    struct mock_buf bad = { b8, 5, 0 };
    ck_assert_int_ge(mock_vq_request(&m, VIRTIO_INPUT_STATUS_Q, &bad, 1, &len), 0);
    ck_assert(strstr(mock_virtio_log(&m), "status buffer of 5 bytes") != NULL);
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.status, 1);
    ck_assert_uint_eq(c.leds, 1u << LED_CAPSL);
    (void)id;
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(hostile_buffers_and_input)
{
    struct mock_virtio m;
    uint8_t e[16];
    uint32_t id, len;
    struct virtio_input_counters c;

    start(&m, "kind=mouse");
    /* A 4-byte event buffer cannot hold an event: returned empty, the event waits. */
    uint64_t small = mock_virtio_alloc(&m, 4, 4), good = mock_virtio_alloc(&m, 8, 8);
    struct mock_buf b = { small, 4, 1 }, g = { good, 8, 1 };
    ck_assert_int_ge(mock_vq_add(&m, VIRTIO_INPUT_EVENT_Q, &b, 1), 0);
    mock_vq_kick(&m, VIRTIO_INPUT_EVENT_Q);
    ev(e, EV_REL, REL_X, 5);
    ck_assert_int_eq(inject(&m, e, 8), 0);
    ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len), 1);
    ck_assert_uint_eq(len, 0);
    ck_assert(strstr(mock_virtio_log(&m), "shorter than an 8-byte event") != NULL);
    ck_assert_int_ge(mock_vq_add(&m, VIRTIO_INPUT_EVENT_Q, &g, 1), 0);
    mock_vq_kick(&m, VIRTIO_INPUT_EVENT_Q);
    ck_assert_int_eq(mock_vq_get_used(&m, VIRTIO_INPUT_EVENT_Q, &id, &len), 1);
    ck_assert_uint_eq(len, 8);
    ck_assert(memcmp(mock_virtio_host(&m, good, 8), e, 8) == 0);
    /* Host input that is not whole events is refused and changes nothing. */
    char err[128];
    ck_assert_int_eq(m.type->host_input(m.state, e, 13, err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "13 bytes") != NULL);
    virtio_input_counters(m.state, &c);
    ck_assert_uint_eq(c.injected, 1);
    ck_assert_uint_eq(c.pending, 0);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(bad_args)
{
    struct mock_virtio m;
    char err[160];
    static const struct { const char *args, *want; } cases[] = {
        { "", "kind= is required" },
        { "kind=joystick", "kind=joystick" },
        { "kind=mouse,width=0", "width=0" },
        { "kind=mouse,height=70000", "height=70000" },
        { "kind=mouse,width=12x", "width=12x" },
        { "kind=mouse,colour=red", "colour" },
        { "kind=mouse,name=0123456789012345678901234567890123456789012345678901234567890"
          "12345", "name=" },
    };

    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(mock_virtio_init(&m, 1 << 20, 1), 0);
        err[0] = 0;
        ck_assert_int_eq(mock_virtio_create(&m, &virtio_input_type, cases[i].args, err,
                                            sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "%s: %s", cases[i].args, err);
        mock_virtio_destroy(&m);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_input");
    TCase *t = tcase_create("input");

    tcase_add_test(t, touch_config);
    tcase_add_test(t, keyboard_and_mouse_config);
    tcase_add_test(t, events_delivered_in_order);
    tcase_add_test(t, pending_queue_is_bounded);
    tcase_add_test(t, status_queue_leds);
    tcase_add_test(t, hostile_buffers_and_input);
    tcase_add_test(t, bad_args);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
