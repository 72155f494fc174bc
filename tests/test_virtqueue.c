/* Virtqueue core (split and packed) through the mock driver and virtio-rng: every kind of
 * malformed ring puts the device in DEVICE_NEEDS_RESET with a configuration interrupt and
 * a log line, touches nothing outside guest RAM, and a reset brings it back; notification
 * suppression (flags, event idx, packed event structures) in both directions. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_rng.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

#define RAM (1u << 20)
#define QSZ 8

struct fx {
    struct mock_virtio m;
    uint64_t buf, table, table2;
    uint64_t max_touched;           /* highest gpa+len any device access reached */
};

static void tap(void *opaque, enum guest_mem_dir dir, uint64_t gpa, const void *data,
                size_t len)
{
    struct fx *f = opaque;
    (void)dir;
    (void)data;
    if (gpa + len > f->max_touched)
        f->max_touched = gpa + len;
}

static void fx_open(struct fx *f, int packed, int indirect, int event_idx)
{
    char err[128];
    struct mock_virtio_opts o = { .packed = packed, .indirect = indirect,
                                  .event_idx = event_idx, .queue_size = QSZ };

    memset(f, 0, sizeof(*f));
    ck_assert_int_eq(mock_virtio_init(&f->m, RAM, 7), 0);
    ck_assert_int_eq(mock_virtio_create(&f->m, &virtio_rng_type, "", err, sizeof(err)), 0);
    guest_mem_set_tap(&f->m.mem, tap, f);
    ck_assert_int_eq(mock_virtio_setup(&f->m, &o), 0);
    f->buf = mock_virtio_alloc(&f->m, 4096, 16);
    f->table = mock_virtio_alloc(&f->m, 16 * 512, 16);
    f->table2 = mock_virtio_alloc(&f->m, 16 * 16, 16);
}

static uint32_t status(struct fx *f) { return mock_virtio_read32(&f->m, VIRTIO_MMIO_STATUS); }

/* One good 64-byte request; returns the used length. */
static uint32_t good_request(struct fx *f)
{
    struct mock_buf b = { f->buf, 64, 1 };
    uint32_t len = 0;
    ck_assert_int_ge(mock_vq_request(&f->m, 0, &b, 1, &len), 0);
    return len;
}

static void assert_broken(struct fx *f, const char *why)
{
    uint32_t id, len;
    uint64_t before, after;

    ck_assert_msg(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, "no NEEDS_RESET for %s", why);
    ck_assert(mock_virtio_read32(&f->m, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
    ck_assert_int_eq(f->m.irq_level, 1);
    ck_assert_msg(strstr(mock_virtio_log(&f->m), why) != NULL, "log lacks '%s': %s", why,
                  mock_virtio_log(&f->m));
    ck_assert_uint_le(f->max_touched, RAM);
    ck_assert_int_eq(mock_vq_get_used(&f->m, 0, &id, &len), 0);
    /* Further kicks are ignored until reset. */
    virtio_dev_queue_stats(f->m.state, 0, &before, NULL);
    mock_vq_kick(&f->m, 0);
    virtio_dev_queue_stats(f->m.state, 0, &after, NULL);
    ck_assert_uint_eq(before, after);
    /* Writing the status back (as drivers do) keeps NEEDS_RESET; a reset clears it. */
    mock_virtio_write32(&f->m, VIRTIO_MMIO_STATUS, status(f));
    ck_assert(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    mock_virtio_reset(&f->m);
    ck_assert_uint_eq(status(f), 0);
    ck_assert_int_eq(f->m.irq_level, 0);
    struct mock_virtio_opts o = { .packed = f->m.packed, .indirect = f->m.indirect,
                                  .event_idx = f->m.event_idx, .queue_size = QSZ };
    ck_assert_int_eq(mock_virtio_setup(&f->m, &o), 0);
    ck_assert_uint_eq(good_request(f), 64);
}

#define W VIRTQ_DESC_F_WRITE
#define N VIRTQ_DESC_F_NEXT
#define I VIRTQ_DESC_F_INDIRECT

/* Split ring cases: each writes descriptors and publishes; returns the expected log text. */
static const char *split_case(struct fx *f, int c)
{
    struct mock_virtio *m = &f->m;
    uint64_t B = f->buf, T = f->table;

    switch (c) {
    case 0:     /* a loop */
        mock_vq_split_write_desc(m, 0, 0, B, 16, W | N, 1);
        mock_vq_split_write_desc(m, 0, 1, B, 16, W | N, 0);
        mock_vq_split_publish(m, 0, 0);
        return "loop";
    case 1:     /* next index beyond the table */
        mock_vq_split_write_desc(m, 0, 0, B, 16, W | N, QSZ + 1);
        mock_vq_split_publish(m, 0, 0);
        return "next index";
    case 2:     /* head >= queue size */
        mock_vq_split_publish(m, 0, QSZ);
        return "head";
    case 3:     /* avail idx jumps by more than the queue size */
        mock_vq_split_set_avail_idx(m, 0, (uint16_t)(m->vqs[0].avail_idx + QSZ + 1));
        return "more than queue size";
    case 4:     /* buffer outside RAM */
        mock_vq_split_write_desc(m, 0, 0, RAM - 8, 16, W, 0);
        mock_vq_split_publish(m, 0, 0);
        return "outside guest RAM";
    case 5:     /* address arithmetic that wraps */
        mock_vq_split_write_desc(m, 0, 0, 0xfffffffffffff000ull, 0x2000, W, 0);
        mock_vq_split_publish(m, 0, 0);
        return "outside guest RAM";
    case 6:     /* readable after writable */
        mock_vq_split_write_desc(m, 0, 0, B, 16, W | N, 1);
        mock_vq_split_write_desc(m, 0, 1, B, 16, 0, 0);
        mock_vq_split_publish(m, 0, 0);
        return "readable descriptor after a writable";
    case 7:     /* zero-length indirect table */
        mock_vq_split_write_desc(m, 0, 0, T, 0, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "indirect table length 0";
    case 8:     /* indirect length not a multiple of 16 */
        mock_vq_split_write_desc(m, 0, 0, T, 24, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "indirect table length 24";
    case 9: {   /* nested indirect */
        struct mock_raw_desc d[1] = { { f->table2, 16, 0, I } };
        mock_write_desc_table(m, T, d, 1);
        mock_vq_split_write_desc(m, 0, 0, T, 16, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "nested indirect";
    }
    case 10:    /* indirect table longer than any chain may be */
        mock_vq_split_write_desc(m, 0, 0, T, 16 * 300, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "exceeds";
    case 11:    /* indirect table outside RAM */
        mock_vq_split_write_desc(m, 0, 0, RAM - 16, 32, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "outside guest RAM";
    case 12:    /* INDIRECT together with NEXT */
        mock_vq_split_write_desc(m, 0, 0, T, 16, I | N, 1);
        mock_vq_split_publish(m, 0, 0);
        return "both INDIRECT and NEXT";
    case 13: {  /* a loop inside an indirect table */
        struct mock_raw_desc d[2] = { { B, 16, 1, W | N }, { B, 16, 0, W | N } };
        mock_write_desc_table(m, T, d, 2);
        mock_vq_split_write_desc(m, 0, 0, T, 32, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "loop";
    }
    case 14: {  /* next beyond an indirect table */
        struct mock_raw_desc d[2] = { { B, 16, 5, W | N }, { B, 16, 0, W } };
        mock_write_desc_table(m, T, d, 2);
        mock_vq_split_write_desc(m, 0, 0, T, 32, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "next index";
    }
    case 15: {  /* readable after writable across the indirect boundary */
        struct mock_raw_desc d[1] = { { B, 16, 0, 0 } };
        mock_write_desc_table(m, T, d, 1);
        mock_vq_split_write_desc(m, 0, 0, B, 16, W | N, 1);
        mock_vq_split_write_desc(m, 0, 1, T, 16, I, 0);
        mock_vq_split_publish(m, 0, 0);
        return "readable descriptor after a writable";
    }
    }
    return NULL;
}
#define SPLIT_CASES 16

START_TEST(split_malformed)
{
    struct fx f;

    fx_open(&f, 0, 1, _i & 1);
    ck_assert_uint_eq(good_request(&f), 64);    /* the ring works before */
    /* Start the bad chain at a fresh ring position after the good request. */
    const char *why = split_case(&f, _i >> 1);
    mock_vq_kick(&f.m, 0);
    assert_broken(&f, why);
    mock_virtio_destroy(&f.m);
}
END_TEST

static const char *packed_case(struct fx *f, int c)
{
    struct mock_virtio *m = &f->m;
    uint64_t B = f->buf, T = f->table;

    switch (c) {
    case 0: {   /* a list longer than the queue: every slot says NEXT */
        struct mock_raw_desc d[QSZ];
        for (int i = 0; i < QSZ; i++)
            d[i] = (struct mock_raw_desc){ B, 16, 0, W | N };
        mock_vq_packed_publish(m, 0, d, QSZ);
        return "longer than queue size";
    }
    case 1: {   /* buffer id >= queue size */
        struct mock_raw_desc d = { B, 16, QSZ, W };
        mock_vq_packed_publish(m, 0, &d, 1);
        return "buffer id";
    }
    case 2: {
        struct mock_raw_desc d = { RAM - 4, 16, 0, W };
        mock_vq_packed_publish(m, 0, &d, 1);
        return "outside guest RAM";
    }
    case 3: {
        struct mock_raw_desc d[2] = { { B, 16, 0, W | N }, { B, 16, 0, 0 } };
        mock_vq_packed_publish(m, 0, d, 2);
        return "readable descriptor after a writable";
    }
    case 4: {
        struct mock_raw_desc d = { T, 0, 0, I };
        mock_vq_packed_publish(m, 0, &d, 1);
        return "indirect table length 0";
    }
    case 5: {
        struct mock_raw_desc d = { T, 40, 0, I };
        mock_vq_packed_publish(m, 0, &d, 1);
        return "indirect table length 40";
    }
    case 6: {
        struct mock_raw_desc t[1] = { { f->table2, 16, 0, I } };
        struct mock_raw_desc d = { T, 16, 0, I };
        mock_write_desc_table(m, T, t, 1);
        mock_vq_packed_publish(m, 0, &d, 1);
        return "nested indirect";
    }
    case 7: {
        struct mock_raw_desc d = { T, 16 * 257, 0, I };
        mock_vq_packed_publish(m, 0, &d, 1);
        return "exceeds";
    }
    case 8: {
        struct mock_raw_desc d = { RAM - 16, 32, 0, I };
        mock_vq_packed_publish(m, 0, &d, 1);
        return "outside guest RAM";
    }
    case 9: {   /* indirect inside a chained list */
        struct mock_raw_desc t[1] = { { B, 16, 0, W } };
        struct mock_raw_desc d[2] = { { B, 16, 0, N }, { T, 16, 0, I } };
        mock_write_desc_table(m, T, t, 1);
        mock_vq_packed_publish(m, 0, d, 2);
        return "INDIRECT inside a chained list";
    }
    case 10: {
        struct mock_raw_desc d[2] = { { T, 16, 0, I | N }, { B, 16, 0, W } };
        mock_vq_packed_publish(m, 0, d, 2);
        return "INDIRECT inside a chained list";
    }
    case 11: {  /* readable after writable inside an indirect table */
        struct mock_raw_desc t[2] = { { B, 16, 0, W }, { B, 16, 0, 0 } };
        struct mock_raw_desc d = { T, 32, 0, I };
        mock_write_desc_table(m, T, t, 2);
        mock_vq_packed_publish(m, 0, &d, 1);
        return "readable descriptor after a writable";
    }
    }
    return NULL;
}
#define PACKED_CASES 12

START_TEST(packed_malformed)
{
    struct fx f;

    fx_open(&f, 1, 1, _i & 1);
    /* Move the ring off position 0 (and for odd cases across a wrap) first. */
    for (int i = 0; i < 3 + (_i & 2) * 3; i++)
        ck_assert_uint_eq(good_request(&f), 64);
    const char *why = packed_case(&f, _i >> 1);
    mock_vq_kick(&f.m, 0);
    assert_broken(&f, why);
    mock_virtio_destroy(&f.m);
}
END_TEST

START_TEST(indirect_not_negotiated)
{
    struct fx f;
    int packed = _i;

    fx_open(&f, packed, 0, 0);
    struct mock_raw_desc t[1] = { { f.buf, 16, 0, W } };
    mock_write_desc_table(&f.m, f.table, t, 1);
    if (packed) {
        struct mock_raw_desc d = { f.table, 16, 0, I };
        mock_vq_packed_publish(&f.m, 0, &d, 1);
    } else {
        mock_vq_split_write_desc(&f.m, 0, 0, f.table, 16, I, 0);
        mock_vq_split_publish(&f.m, 0, 0);
    }
    mock_vq_kick(&f.m, 0);
    assert_broken(&f, "without VIRTIO_F_RING_INDIRECT_DESC");
    mock_virtio_destroy(&f.m);
}
END_TEST

START_TEST(zero_length_and_mixed_chains_are_fine)
{
    struct fx f;

    fx_open(&f, _i & 1, 1, 0);
    /* Readable data then writable: rng ignores the readable part. */
    struct mock_buf b[3] = { { f.buf, 8, 0 }, { f.buf + 64, 0, 1 }, { f.buf + 128, 32, 1 } };
    uint32_t len;
    ck_assert_int_ge(mock_vq_request(&f.m, 0, b, 3, &len), 0);
    ck_assert_uint_eq(len, 32);
    ck_assert_uint_eq(status(&f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    mock_virtio_destroy(&f.m);
}
END_TEST

/* Split, event idx: used_event suppresses interrupts, avail_event suppresses kicks. */
START_TEST(split_event_idx)
{
    struct fx f;
    struct mock_buf b = { 0, 16, 1 };
    uint32_t id, len;

    fx_open(&f, 0, 0, 1);
    b.gpa = f.buf;
    ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);   /* used idx now 1 */
    ck_assert_int_eq(f.m.irq_level, 1);
    mock_virtio_ack_irq(&f.m);
    /* Interrupt only when used idx passes 2: the next completion stays quiet. */
    mock_vq_set_used_event(&f.m, 0, 2);
    ck_assert_int_ge(mock_vq_add(&f.m, 0, &b, 1), 0);
    ck_assert_int_eq(mock_vq_kick_needed(&f.m, 0), 1);
    mock_vq_kick(&f.m, 0);
    ck_assert_int_eq(f.m.irq_level, 0);
    ck_assert_int_eq(mock_vq_get_used(&f.m, 0, &id, &len), 1);
    mock_vq_set_used_event(&f.m, 0, 2);
    ck_assert_int_ge(mock_vq_add(&f.m, 0, &b, 1), 0);
    mock_vq_kick(&f.m, 0);
    ck_assert_int_eq(f.m.irq_level, 1);
    ck_assert_int_eq(mock_vq_get_used(&f.m, 0, &id, &len), 1);
    mock_virtio_ack_irq(&f.m);
    /* avail_event: the device asked for a kick at the next buffer only. */
    ck_assert_int_ge(mock_vq_add(&f.m, 0, &b, 1), 0);
    ck_assert_int_eq(mock_vq_kick_needed(&f.m, 0), 1);
    ck_assert_int_ge(mock_vq_add(&f.m, 0, &b, 1), 0);
    ck_assert_int_eq(mock_vq_kick_needed(&f.m, 0), 0);
    mock_vq_kick(&f.m, 0);
    ck_assert_int_eq(mock_vq_get_used(&f.m, 0, &id, &len), 1);
    ck_assert_int_eq(mock_vq_get_used(&f.m, 0, &id, &len), 1);
    /* Both completions in one batch: a single interrupt. */
    ck_assert_uint_eq(f.m.irq_raises, 3);
    mock_virtio_destroy(&f.m);
}
END_TEST

/* Packed: driver event suppression DISABLE / ENABLE / DESC, device event written back. */
START_TEST(packed_event_suppression)
{
    struct fx f;
    struct mock_buf b = { 0, 16, 1 };
    uint32_t id, len;

    fx_open(&f, 1, 0, 1);
    b.gpa = f.buf;
    mock_vq_set_driver_event(&f.m, 0, VIRTQ_EVENT_F_DISABLE, 0);
    ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);
    ck_assert_int_eq(f.m.irq_level, 0);
    mock_vq_set_driver_event(&f.m, 0, VIRTQ_EVENT_F_ENABLE, 0);
    ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);
    ck_assert_int_eq(f.m.irq_level, 1);
    mock_virtio_ack_irq(&f.m);
    /* next_used is 2 (wrap 1): ask for an event when slot 3 is used. */
    mock_vq_set_driver_event(&f.m, 0, VIRTQ_EVENT_F_DESC, 3 | 0x8000);
    ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);    /* slot 2 */
    ck_assert_int_eq(f.m.irq_level, 0);
    ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);    /* slot 3 */
    ck_assert_int_eq(f.m.irq_level, 1);
    mock_virtio_ack_irq(&f.m);
    /* Across the wrap: slots 4..7 then 0 (wrap 0); event at slot 1 of the next lap. */
    mock_vq_set_driver_event(&f.m, 0, VIRTQ_EVENT_F_DESC, 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);
        ck_assert_int_eq(f.m.irq_level, 0);
    }
    ck_assert_int_ge(mock_vq_request(&f.m, 0, &b, 1, &len), 0);    /* slot 1, wrap 0 */
    ck_assert_int_eq(f.m.irq_level, 1);
    /* The device asks for a kick at its next slot (DESC mode, current wrap). */
    uint16_t *dev = mock_virtio_host(&f.m, f.m.vqs[0].device, 4);
    ck_assert_uint_eq(dev[1], VIRTQ_EVENT_F_DESC);
    ck_assert_uint_eq(dev[0], 2);
    ck_assert_int_ge(mock_vq_add(&f.m, 0, &b, 1), 0);
    ck_assert_int_ge(mock_vq_add(&f.m, 0, &b, 1), 0);
    ck_assert_int_eq(mock_vq_kick_needed(&f.m, 0), 1);
    mock_vq_kick(&f.m, 0);
    ck_assert_int_eq(mock_vq_get_used(&f.m, 0, &id, &len), 1);
    ck_assert_int_eq(mock_vq_get_used(&f.m, 0, &id, &len), 1);
    mock_virtio_destroy(&f.m);
}
END_TEST

/* The core's vq API on a raw guest_mem, without any transport. */
START_TEST(chain_copy_bounds)
{
    static uint8_t ram[8192];
    struct guest_mem mem;
    struct vq_chain *c = calloc(1, sizeof(*c));
    uint8_t buf[64];

    guest_mem_init_buffer(&mem, ram, sizeof(ram));
    c->nsegs = 3;
    c->nread = 1;
    c->segs[0] = (struct vq_seg){ 0, 10, 0 };
    c->segs[1] = (struct vq_seg){ 100, 5, 1 };
    c->segs[2] = (struct vq_seg){ 200, 5, 1 };
    memset(buf, 0xab, sizeof(buf));
    ck_assert_int_eq(vq_chain_write(&mem, c, 3, buf, 7), 0);
    ck_assert_uint_eq(ram[102], 0);
    ck_assert_uint_eq(ram[103], 0xab);
    ck_assert_uint_eq(ram[204], 0xab);
    ck_assert_int_eq(vq_chain_write(&mem, c, 3, buf, 8), -EINVAL);
    ck_assert_int_eq(vq_chain_read(&mem, c, 0, buf, 10), 0);
    ck_assert_int_eq(vq_chain_read(&mem, c, 5, buf, 6), -EINVAL);
    free(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtqueue");
    TCase *t = tcase_create("vq");

    tcase_add_loop_test(t, split_malformed, 0, SPLIT_CASES * 2);
    tcase_add_loop_test(t, packed_malformed, 0, PACKED_CASES * 2);
    tcase_add_loop_test(t, indirect_not_negotiated, 0, 2);
    tcase_add_loop_test(t, zero_length_and_mixed_chains_are_fine, 0, 2);
    tcase_add_test(t, split_event_idx);
    tcase_add_test(t, packed_event_suppression);
    tcase_add_test(t, chain_copy_bounds);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
