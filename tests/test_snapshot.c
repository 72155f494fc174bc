/* The snapshot file format (vmm/snapshot.c): round trip of every field type, and the
 * errors a damaged file gives (CRC, truncation, version, length cap, short fields, trailing
 * bytes, strings). Plus the sim pieces snapshots rely on: vclock_schedule_id keeps the order
 * of same-time timers, and the LAPIC / I/O APIC round-trip with the timer re-armed. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_rng.h"
#include "sim/ioapic.h"
#include "sim/lapic.h"
#include "sim/vclock.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

static char path[64];
static char err[512];

static void setup(void)
{
    snprintf(path, sizeof(path), "/tmp/test_snapshot.%d.bin", (int)getpid());
    err[0] = 0;
}

static void teardown(void) { unlink(path); }

static void write_sample(void)
{
    struct snapshot_writer w;

    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "ONE ");
    snapshot_put_u8(&w, 0xab);
    snapshot_put_u16(&w, 0xbeef);
    snapshot_put_u32(&w, 0xdeadbeef);
    snapshot_put_u64(&w, 0x0123456789abcdefULL);
    snapshot_put_str(&w, "hello");
    ck_assert_int_eq(snapshot_end(&w), 0);
    snapshot_begin(&w, "TWO ");
    snapshot_put_bytes(&w, "xyz", 3);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);
}

static long file_size(void)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void poke(long off, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, off, SEEK_SET);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

START_TEST(round_trip)
{
    struct snapshot_reader r;
    char s[16];
    uint8_t b[3];

    write_sample();
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "ONE ", err, sizeof(err)), 0);
    ck_assert_uint_eq(snapshot_get_u8(&r, "a"), 0xab);
    ck_assert_uint_eq(snapshot_get_u16(&r, "b"), 0xbeef);
    ck_assert_uint_eq(snapshot_get_u32(&r, "c"), 0xdeadbeef);
    ck_assert_uint_eq(snapshot_get_u64(&r, "d"), 0x0123456789abcdefULL);
    snapshot_get_str(&r, s, sizeof(s), "e");
    ck_assert_str_eq(s, "hello");
    ck_assert_int_eq(snapshot_check_done(&r, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, NULL, err, sizeof(err)), 0);
    ck_assert_str_eq(r.tag, "TWO ");
    snapshot_get_bytes(&r, b, 3, "f");
    ck_assert_int_eq(memcmp(b, "xyz", 3), 0);
    ck_assert_int_eq(snapshot_next(&r, "END ", err, sizeof(err)), 0);
    snapshot_reader_close(&r);
}
END_TEST

START_TEST(little_endian_on_disk)
{
    unsigned char buf[64];

    write_sample();
    FILE *f = fopen(path, "rb");
    ck_assert_uint_eq(fread(buf, 1, sizeof(buf), f), sizeof(buf));
    fclose(f);
    ck_assert_int_eq(memcmp(buf, "VMLABSNP", 8), 0);
    ck_assert_uint_eq(buf[8], SNAPSHOT_VERSION);            /* le32 version */
    ck_assert_int_eq(memcmp(buf + 16, "ONE ", 4), 0);
    ck_assert_uint_eq(buf[20], 1 + 2 + 4 + 8 + 4 + 5);      /* le32 payload length */
    ck_assert_uint_eq(buf[24], 0xab);
    ck_assert_uint_eq(buf[25], 0xef);                       /* 0xbeef, low byte first */
    ck_assert_uint_eq(buf[27], 0xef);                       /* 0xdeadbeef */
}
END_TEST

START_TEST(crc_catches_a_flipped_bit)
{
    struct snapshot_reader r;
    uint8_t x = 0xff;

    write_sample();
    poke(26, &x, 1);
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "ONE ", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "chunk 'ONE ' at offset 16: CRC mismatch"));
    snapshot_reader_close(&r);
}
END_TEST

START_TEST(truncation_names_the_chunk)
{
    struct snapshot_reader r;

    write_sample();
    ck_assert_int_eq(truncate(path, file_size() - 14), 0);   /* into chunk TWO's payload */
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "ONE ", err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "TWO ", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "chunk 'TWO '"));
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    snapshot_reader_close(&r);
}
END_TEST

START_TEST(version_and_magic)
{
    struct snapshot_reader r;
    uint8_t v = 3;

    write_sample();
    poke(8, &v, 1);
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "header at offset 8: format version 3, this vmlab reads "
                                      "versions 1 to 2"));
    poke(0, "X", 1);
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a vmlab snapshot"));
}
END_TEST

/* A MACH chunk of the i8042 and the PIT, with per-device windows from `windows` (NULL: the
 * version 1 layout, none), in a file of format `version`. */
static void write_machine(uint32_t version, const uint64_t (*windows)[2])
{
    static const char *const kinds[] = { "i8042", "i8254" };
    static const uint64_t bases[] = { 0x60, 0x40 };
    struct snapshot_writer w;

    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "MACH");
    snapshot_put_u64(&w, 16 << 20);
    snapshot_put_u64(&w, 1);
    snapshot_put_str(&w, "sim");
    snapshot_put_u64(&w, 0);
    snapshot_put_u32(&w, 2);
    for (unsigned i = 0; i < 2; i++) {
        snapshot_put_str(&w, kinds[i]);
        snapshot_put_str(&w, "");
        snapshot_put_u64(&w, bases[i]);
        snapshot_put_u32(&w, (uint32_t)-1);
        snapshot_put_u32(&w, 1);
        if (windows) {
            snapshot_put_u32(&w, 1);
            snapshot_put_u64(&w, windows[i][0]);
            snapshot_put_u64(&w, windows[i][1]);
        }
    }
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);
    uint8_t v = (uint8_t)version;
    poke(8, &v, 1);
}

static int read_machine(struct machine_config *mc)
{
    struct snapshot_reader r;
    uint64_t max_insns;

    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    int rc = vm_snapshot_read_machine(&r, mc, &max_insns, err, sizeof(err));
    snapshot_reader_close(&r);
    return rc;
}

/* Format 1 snapshots (no windows in MACH) restore on the layout of their day: the i8042 at
 * ports 0x60-0x64, the PIT at 0x40-0x43 without port 0x61. Format 2 ones carry windows, and
 * one that no model of that kind has is refused, naming the device. */
START_TEST(format_1_machine_gets_the_old_port_layout)
{
    struct machine_config mc;

    write_machine(1, NULL);
    ck_assert_msg(read_machine(&mc) == 0, "%s", err);
    ck_assert_uint_eq(mc.devices[0].nwindows, 1);
    ck_assert_uint_eq(mc.devices[0].windows[0].size, 5);
    ck_assert_uint_eq(mc.devices[1].nwindows, 1);
    ck_assert_uint_eq(mc.devices[1].windows[0].size, 4);

    static const uint64_t old[2][2] = { { 0, 5 }, { 0, 4 } }, bad[2][2] = { { 0, 5 }, { 0, 64 } };
    write_machine(2, old);
    ck_assert_msg(read_machine(&mc) == 0, "%s", err);
    ck_assert_uint_eq(mc.devices[0].windows[0].size, 5);
    write_machine(2, bad);
    ck_assert_int_eq(read_machine(&mc), -EINVAL);
    ck_assert_msg(strstr(err, "chunk 'MACH'") && strstr(err, "device 1 (i8254): window +0 "
                                                         "size 0x40"), "%s", err);
}
END_TEST

START_TEST(length_is_capped)
{
    struct snapshot_reader r;
    uint8_t big[4] = { 0xff, 0xff, 0xff, 0x7f };

    write_sample();
    poke(20, big, 4);
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "exceeds the limit"));
    snapshot_reader_close(&r);
}
END_TEST

START_TEST(short_fields_and_leftovers)
{
    struct snapshot_reader r;
    char s[4], skip[16];

    write_sample();
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "ONE ", err, sizeof(err)), 0);
    snapshot_get_u64(&r, "a");
    snapshot_get_u64(&r, "b");
    snapshot_get_u64(&r, "c");          /* only 24 bytes in the chunk */
    snapshot_get_u64(&r, "d");
    ck_assert_int_eq(snapshot_check(&r, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "too short reading d"));
    ck_assert_int_eq(snapshot_next(&r, "TWO ", err, sizeof(err)), 0);
    ck_assert_uint_eq(snapshot_get_u8(&r, "x"), 'x');
    ck_assert_int_eq(snapshot_check_done(&r, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "2 unexpected bytes"));
    snapshot_reader_close(&r);

    /* a string longer than its destination is an error, not an overflow */
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "ONE ", err, sizeof(err)), 0);
    snapshot_get_bytes(&r, skip, 1 + 2 + 4 + 8, "skip");
    snapshot_get_str(&r, s, sizeof(s), "name");
    ck_assert_int_eq(snapshot_check(&r, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "name (length 5)"));
    snapshot_reader_close(&r);
}
END_TEST

START_TEST(wrong_tag)
{
    struct snapshot_reader r;

    write_sample();
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "CPU ", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "chunk 'ONE ' at offset 16: expected chunk 'CPU '"));
    snapshot_reader_close(&r);
}
END_TEST

struct rec { int order[8]; unsigned n; };
struct ev { struct rec *r; int tag; };
static void fire(void *arg) { struct ev *e = arg; e->r->order[e->r->n++] = e->tag; }

START_TEST(schedule_id_keeps_tie_order)
{
    struct vclock vc;
    struct rec r = { { 0 }, 0 };
    struct ev e[3] = { { &r, 1 }, { &r, 2 }, { &r, 3 } };

    vclock_init(&vc);
    vc.next_seq = 10;                   /* as restored from a snapshot */
    /* re-created in the wrong order, all due at the same time */
    ck_assert_int_eq(vclock_schedule_id(&vc, 500, 7, fire, &e[2]), 7);
    ck_assert_int_eq(vclock_schedule_id(&vc, 500, 3, fire, &e[0]), 3);
    ck_assert_int_eq(vclock_schedule_id(&vc, 500, 5, fire, &e[1]), 5);
    ck_assert_int_eq(vclock_schedule_id(&vc, 500, 5, fire, &e[1]), -EINVAL);   /* taken */
    ck_assert_int_eq(vclock_schedule_id(&vc, 500, 10, fire, &e[1]), -EINVAL);  /* not issued */
    ck_assert_uint_eq(vc.next_seq, 10);
    vclock_advance_to(&vc, 500);
    ck_assert_uint_eq(vclock_run_due(&vc), 3);
    ck_assert_int_eq(r.order[0], 1);
    ck_assert_int_eq(r.order[1], 2);
    ck_assert_int_eq(r.order[2], 3);
    vclock_destroy(&vc);
}
END_TEST

START_TEST(lapic_ioapic_round_trip)
{
    struct vclock vc, vc2;
    struct lapic l, l2;
    struct ioapic io, io2;
    struct snapshot_writer w;
    struct snapshot_reader r;

    vclock_init(&vc);
    lapic_init(&l, &vc, 0);
    ioapic_init(&io, &l);
    /* enable, periodic timer vector 0x30 every 1000 ns, a pending vector 0x41 */
    lapic_bus_ops.write(&l, 0xf0, 4, 0x1ff);
    lapic_bus_ops.write(&l, 0x3e0, 4, 0xb);             /* divide by 1 */
    lapic_bus_ops.write(&l, 0x320, 4, 0x20030);
    lapic_bus_ops.write(&l, 0x380, 4, 1000);
    lapic_accept(&l, 0x41, 0);
    io.redir[4] = 0x8045;                               /* level, vector 0x45, unmasked */
    ioapic_set_level(&io, 4, 1);
    ck_assert_int_eq(l.pending, 0x45);

    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "APIC");
    lapic_save(&l, &w);
    ioapic_save(&io, &w);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);

    vclock_init(&vc2);
    vc2.now = vc.now;
    vc2.next_seq = vc.next_seq;
    lapic_init(&l2, &vc2, 0);
    ioapic_init(&io2, &l2);
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "APIC", err, sizeof(err)), 0);
    ck_assert_int_eq(lapic_load(&l2, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(ioapic_load(&io2, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_check_done(&r, err, sizeof(err)), 0);
    snapshot_reader_close(&r);

    ck_assert_int_eq(l2.pending, 0x45);
    ck_assert_int_eq(l2.timer_event, l.timer_event);     /* same clock id */
    ck_assert_uint_eq(vclock_next_deadline(&vc2), 1000);
    ck_assert_uint_eq(io2.redir[4] & (1u << 14), 1u << 14);  /* remote IRR kept */
    /* both tick the same */
    vclock_advance_to(&vc, 2000);
    vclock_advance_to(&vc2, 2000);
    vclock_run_due(&vc);
    vclock_run_due(&vc2);
    ck_assert_uint_eq(l2.timer_fired, l.timer_fired);
    ck_assert_uint_eq(vclock_next_deadline(&vc2), vclock_next_deadline(&vc));
    lapic_destroy(&l);
    lapic_destroy(&l2);
    vclock_destroy(&vc);
    vclock_destroy(&vc2);
}
END_TEST

/* A device restored from a snapshot (into a new device over a copy of guest RAM, with the
 * driver side copied too) answers the next requests exactly as the original does: the
 * packed ring has wrapped, so wrap counters and indexes must have come across. */
static void rng_request(struct mock_virtio *m, uint64_t buf, uint8_t out[64])
{
    struct mock_buf b = { buf, 64, 1 };
    uint32_t len;

    ck_assert_int_ge(mock_vq_request(m, 0, &b, 1, &len), 0);
    ck_assert_uint_eq(len, 64);
    memcpy(out, mock_virtio_host(m, buf, 64), 64);
}

START_TEST(virtio_rng_continues_after_restore)
{
    struct mock_virtio a, b;
    struct mock_virtio_opts o = { .packed = 1, .queue_size = 8 };
    struct snapshot_writer w;
    struct snapshot_reader r;
    uint8_t x[64], y[64];

    ck_assert_int_eq(mock_virtio_init(&a, 1 << 20, 77), 0);
    ck_assert_int_eq(mock_virtio_create(&a, &virtio_rng_type, "", err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(&a, &o), 0);
    uint64_t buf = mock_virtio_alloc(&a, 64, 8);
    for (int i = 0; i < 21; i++)            /* wraps the 8-entry packed ring twice */
        rng_request(&a, buf, x);

    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "DEV ");
    ck_assert_int_eq(virtio_rng_type.save(a.state, &w, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);

    ck_assert_int_eq(mock_virtio_init(&b, 1 << 20, 77), 0);
    ck_assert_int_eq(mock_virtio_create(&b, &virtio_rng_type, "", err, sizeof(err)), 0);
    memcpy(b.ram, a.ram, a.ram_size);
    b.heap = a.heap;
    b.features = a.features;
    b.packed = a.packed;
    b.indirect = a.indirect;
    b.event_idx = a.event_idx;
    b.nqueues = a.nqueues;
    memcpy(b.vqs, a.vqs, sizeof(a.vqs));
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "DEV ", err, sizeof(err)), 0);
    ck_assert_int_eq(virtio_rng_type.load(b.state, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_check_done(&r, err, sizeof(err)), 0);
    snapshot_reader_close(&r);

    for (int i = 0; i < 10; i++) {
        rng_request(&a, buf, x);
        rng_request(&b, buf, y);
        ck_assert_int_eq(memcmp(x, y, sizeof(x)), 0);
    }
    ck_assert_int_eq(memcmp(a.ram, b.ram, a.ram_size), 0);
    mock_virtio_destroy(&a);
    mock_virtio_destroy(&b);
}
END_TEST

START_TEST(virtio_load_refuses_a_bad_queue)
{
    struct mock_virtio a;
    struct mock_virtio_opts o = { 0 };
    struct snapshot_writer w;
    struct snapshot_reader r;

    ck_assert_int_eq(mock_virtio_init(&a, 1 << 20, 1), 0);
    ck_assert_int_eq(mock_virtio_create(&a, &virtio_rng_type, "", err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(&a, &o), 0);
    struct virtio_dev *vd = a.state;
    uint64_t saved = vd->vqs[0].desc;
    vd->vqs[0].desc = 0xfffff000ULL;        /* outside the 1 MiB of RAM */
    ck_assert_int_eq(snapshot_writer_open(&w, path, err, sizeof(err)), 0);
    snapshot_begin(&w, "DEV ");
    ck_assert_int_eq(virtio_rng_type.save(a.state, &w, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_end(&w), 0);
    ck_assert_int_eq(snapshot_writer_close(&w, err, sizeof(err)), 0);
    vd->vqs[0].desc = saved;
    ck_assert_int_eq(snapshot_reader_open(&r, path, err, sizeof(err)), 0);
    ck_assert_int_eq(snapshot_next(&r, "DEV ", err, sizeof(err)), 0);
    ck_assert_int_eq(virtio_rng_type.load(a.state, &r, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "queue 0: descriptor area"));
    snapshot_reader_close(&r);
    mock_virtio_destroy(&a);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("format");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, little_endian_on_disk);
    tcase_add_test(tc, crc_catches_a_flipped_bit);
    tcase_add_test(tc, truncation_names_the_chunk);
    tcase_add_test(tc, version_and_magic);
    tcase_add_test(tc, format_1_machine_gets_the_old_port_layout);
    tcase_add_test(tc, length_is_capped);
    tcase_add_test(tc, short_fields_and_leftovers);
    tcase_add_test(tc, wrong_tag);
    tcase_add_test(tc, schedule_id_keeps_tie_order);
    tcase_add_test(tc, lapic_ioapic_round_trip);
    tcase_add_test(tc, virtio_rng_continues_after_restore);
    tcase_add_test(tc, virtio_load_refuses_a_bad_queue);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(snapshot_suite());
}
