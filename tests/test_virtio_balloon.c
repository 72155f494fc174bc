/* virtio-balloon: features, target and actual, inflate/deflate (pages read as zero after
 * inflating), stats, free page reporting, and hostile guests: PFNs outside RAM, huge PFN
 * arrays, actual beyond RAM, stats buffers of the wrong size. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_balloon.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

#define RAM (8u << 20)
#define ALL_FEATURES (VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) | \
                      VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | \
                      VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING))
enum { INFLATE_Q = 0, DEFLATE_Q = 1, STATS_Q = 2, REPORT_Q = 3 };

static void start(struct mock_virtio *m, const char *args, uint64_t features)
{
    struct mock_virtio_opts o = { .device_features = features };
    char err[128];

    ck_assert_int_eq(mock_virtio_init(m, RAM, 1), 0);
    ck_assert_int_eq(mock_virtio_create(m, &virtio_balloon_type, args, err, sizeof(err)), 0);
    ck_assert_int_eq(mock_virtio_setup(m, &o), 0);
}

static struct balloon_report query(struct mock_virtio *m)
{
    struct balloon_report r;
    ck_assert_int_eq(m->type->balloon_query(m->state, &r), 0);
    return r;
}

static int set_target(struct mock_virtio *m, uint64_t bytes, char *err, size_t errlen)
{
    uint8_t msg[VIRTIO_BALLOON_HOST_TARGET_LEN] = { VIRTIO_BALLOON_HOST_TARGET };
    memcpy(msg + 1, &bytes, 8);
    return m->type->host_input(m->state, msg, sizeof(msg), err, errlen);
}

static void request_stats(struct mock_virtio *m)
{
    static const uint8_t msg = VIRTIO_BALLOON_HOST_STATS;
    char err[128];
    ck_assert_int_eq(m->type->host_input(m->state, &msg, 1, err, sizeof(err)), 0);
}

/* Sends one buffer of PFNs on queue q. */
static void send_pfns(struct mock_virtio *m, unsigned q, const uint32_t *pfns, unsigned n)
{
    uint64_t gpa = mock_virtio_alloc(m, 4ull * n, 4);
    uint32_t len;

    memcpy(mock_virtio_host(m, gpa, 4ull * n), pfns, 4ull * n);
    struct mock_buf b = { gpa, 4 * n, 0 };
    ck_assert_int_ge(mock_vq_request(m, q, &b, 1, &len), 0);
}

START_TEST(features_and_target)
{
    struct mock_virtio m;
    char err[160];

    start(&m, "deflate_on_oom=on", ALL_FEATURES);
    mock_virtio_write32(&m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t f = mock_virtio_read32(&m, VIRTIO_MMIO_DEVICE_FEATURES);
    ck_assert_uint_eq(f & ALL_FEATURES, ALL_FEATURES);
    unsigned raises = m.irq_raises;
    ck_assert_int_eq(set_target(&m, 2u << 20, err, sizeof(err)), 0);
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES),
                      512);
    ck_assert_uint_gt(m.irq_raises, raises);
    ck_assert(mock_virtio_ack_irq(&m) & VIRTIO_MMIO_INT_CONFIG);
    /* More than RAM: refused, nothing changes. */
    ck_assert_int_eq(set_target(&m, RAM + 4096, err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "more than guest RAM") != NULL);
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES),
                      512);
    /* A host message that is neither a target nor a stats request. */
    uint8_t junk[3] = { 'T', 1, 2 };
    ck_assert_int_eq(m.type->host_input(m.state, junk, 3, err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "3-byte host message") != NULL);
    /* num_pages is the device's: a driver write is ignored. */
    mock_virtio_write32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES, 7);
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES),
                      512);
    mock_virtio_write32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, 512);
    struct balloon_report r = query(&m);
    ck_assert_uint_eq(r.target_bytes, 2u << 20);
    ck_assert_uint_eq(r.actual_bytes, 2u << 20);
    mock_virtio_destroy(&m);

    /* Off by default, as in QEMU and Firecracker, and when asked off. */
    const char *without[] = { "", "deflate_on_oom=off" };
    for (unsigned i = 0; i < 2; i++) {
        start(&m, without[i], ALL_FEATURES);
        mock_virtio_write32(&m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
        f = mock_virtio_read32(&m, VIRTIO_MMIO_DEVICE_FEATURES);
        ck_assert_uint_eq(f & VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM), 0);
        ck_assert_uint_ne(f & VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ), 0);
        mock_virtio_destroy(&m);
    }
    ck_assert_int_eq(mock_virtio_init(&m, RAM, 1), 0);
    ck_assert_int_eq(mock_virtio_create(&m, &virtio_balloon_type, "deflate_on_oom=maybe", err,
                                        sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "deflate_on_oom=maybe") != NULL);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(inflated_pages_read_zero)
{
    struct mock_virtio m;

    start(&m, "", ALL_FEATURES);
    uint64_t page = mock_virtio_alloc(&m, 3 * 4096, 4096);
    memset(mock_virtio_host(&m, page, 3 * 4096), 0xaa, 3 * 4096);
    uint32_t pfns[2] = { (uint32_t)(page >> 12), (uint32_t)(page >> 12) + 2 };
    send_pfns(&m, INFLATE_Q, pfns, 2);
    uint8_t *p = mock_virtio_host(&m, page, 3 * 4096);
    for (unsigned i = 0; i < 4096; i++) {
        ck_assert_uint_eq(p[i], 0);
        ck_assert_uint_eq(p[4096 + i], 0xaa);      /* the page between stays */
        ck_assert_uint_eq(p[8192 + i], 0);
    }
    send_pfns(&m, DEFLATE_Q, pfns, 1);
    struct balloon_report r = query(&m);
    ck_assert_uint_eq(r.inflated_pages, 2);
    ck_assert_uint_eq(r.deflated_pages, 1);
    ck_assert_uint_eq(r.bad_pfns, 0);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(hostile_pfns)
{
    struct mock_virtio m;

    start(&m, "", ALL_FEATURES);
    /* PFNs outside RAM, including the largest: logged, counted, ignored. */
    uint32_t bad[3] = { RAM >> 12, 0xffffffffu, 0x80000000u };
    send_pfns(&m, INFLATE_Q, bad, 3);
    struct balloon_report r = query(&m);
    ck_assert_uint_eq(r.bad_pfns, 3);
    ck_assert_uint_eq(r.inflated_pages, 0);
    ck_assert(strstr(mock_virtio_log(&m), "PFN 0xffffffff is outside guest RAM") != NULL);
    /* A 4 MiB PFN array (a million PFNs): only the first VIRTIO_BALLOON_PFNS_MAX are taken. */
    uint64_t big = mock_virtio_alloc(&m, 4u << 20, 4096);
    uint32_t *pf = mock_virtio_host(&m, big, 4u << 20);
    for (unsigned i = 0; i < (1u << 20); i++)
        pf[i] = (uint32_t)(big >> 12) + 1024 + (i % 8);     /* pages of the array's tail */
    struct mock_buf b = { big, 4u << 20, 0 };
    uint32_t len;
    ck_assert_int_ge(mock_vq_request(&m, INFLATE_Q, &b, 1, &len), 0);
    r = query(&m);
    ck_assert_uint_eq(r.inflated_pages, VIRTIO_BALLOON_PFNS_MAX);
    ck_assert(strstr(mock_virtio_log(&m), "only the first 1024 are taken") != NULL);
    /* A PFN array with a ragged tail. */
    uint64_t odd = mock_virtio_alloc(&m, 7, 4);
    struct mock_buf o = { odd, 7, 0 };
    ck_assert_int_ge(mock_vq_request(&m, INFLATE_Q, &o, 1, &len), 0);
    ck_assert(strstr(mock_virtio_log(&m), "7 bytes is not a whole number") != NULL);
    /* actual beyond RAM (or wrapped): reported as the RAM size, never more. */
    mock_virtio_write32(&m, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, 0xffffffffu);
    r = query(&m);
    ck_assert_uint_eq(r.actual_bytes, RAM);
    ck_assert(strstr(mock_virtio_log(&m), "more than guest RAM") != NULL);
    /* The device is still live. */
    ck_assert_uint_eq(mock_virtio_read32(&m, VIRTIO_MMIO_STATUS) &
                      VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    mock_virtio_destroy(&m);
}
END_TEST

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val)
{
    memcpy(p, &tag, 2);
    memcpy(p + 2, &val, 8);
}

START_TEST(stats_protocol)
{
    struct mock_virtio m;
    uint32_t id, len;

    start(&m, "", ALL_FEATURES);
    uint64_t sb = mock_virtio_alloc(&m, 64, 8);
    uint8_t *s = mock_virtio_host(&m, sb, 64);
    put_stat(s, VIRTIO_BALLOON_S_MEMFREE, 1000);
    put_stat(s + 10, VIRTIO_BALLOON_S_MEMTOT, 8000);
    put_stat(s + 20, 0x7777, 5);                    /* unknown tag: ignored */
    struct mock_buf b = { sb, 30, 0 };
    ck_assert_int_ge(mock_vq_add(&m, STATS_Q, &b, 1), 0);
    mock_vq_kick(&m, STATS_Q);
    /* The device keeps the buffer until it wants fresh stats. */
    ck_assert_int_eq(mock_vq_get_used(&m, STATS_Q, &id, &len), 0);
    struct balloon_report r = query(&m);
    ck_assert_uint_eq(r.stats[VIRTIO_BALLOON_S_MEMFREE], 1000);
    ck_assert_uint_eq(r.stats[VIRTIO_BALLOON_S_MEMTOT], 8000);
    ck_assert_uint_eq(r.stats_valid, (1u << VIRTIO_BALLOON_S_MEMFREE) |
                                     (1u << VIRTIO_BALLOON_S_MEMTOT));
    ck_assert_uint_eq(r.stats_updates, 1);
    /* A query only reads; a stats request returns the buffer for fresh stats. */
    ck_assert_int_eq(mock_vq_get_used(&m, STATS_Q, &id, &len), 0);
    request_stats(&m);
    ck_assert_int_eq(mock_vq_get_used(&m, STATS_Q, &id, &len), 1);
    /* The driver answers with a buffer of the wrong size: logged, whole entries used. */
    put_stat(s, VIRTIO_BALLOON_S_MEMFREE, 2000);
    struct mock_buf w = { sb, 15, 0 };
    ck_assert_int_ge(mock_vq_add(&m, STATS_Q, &w, 1), 0);
    mock_vq_kick(&m, STATS_Q);
    r = query(&m);
    ck_assert_uint_eq(r.stats[VIRTIO_BALLOON_S_MEMFREE], 2000);
    ck_assert_uint_eq(r.stats_updates, 2);
    ck_assert(strstr(mock_virtio_log(&m), "stats buffer of 15 bytes") != NULL);
    /* A huge stats buffer: only the first entries are read. */
    request_stats(&m);
    ck_assert_int_eq(mock_vq_get_used(&m, STATS_Q, &id, &len), 1);
    uint64_t huge = mock_virtio_alloc(&m, 1u << 20, 8);
    struct mock_buf h = { huge, 1u << 20, 0 };
    ck_assert_int_ge(mock_vq_add(&m, STATS_Q, &h, 1), 0);
    mock_vq_kick(&m, STATS_Q);
    ck_assert(strstr(mock_virtio_log(&m), "only the first 32 entries") != NULL);
    mock_virtio_destroy(&m);
}
END_TEST

START_TEST(free_page_reporting)
{
    struct mock_virtio m;
    uint32_t len;

    start(&m, "", ALL_FEATURES);
    uint64_t pages = mock_virtio_alloc(&m, 2 * 4096, 4096);
    memset(mock_virtio_host(&m, pages, 2 * 4096), 0xbb, 2 * 4096);
    struct mock_buf b = { pages, 2 * 4096, 1 };
    ck_assert_int_ge(mock_vq_request(&m, REPORT_Q, &b, 1, &len), 0);
    uint8_t *p = mock_virtio_host(&m, pages, 2 * 4096);
    for (unsigned i = 0; i < 2 * 4096; i++)
        ck_assert_uint_eq(p[i], 0);
    ck_assert_uint_eq(query(&m).reported_pages, 2);
    mock_virtio_destroy(&m);

    /* Without STATS_VQ the reporting queue is index 2. */
    start(&m, "", VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING));
    pages = mock_virtio_alloc(&m, 4096, 4096);
    memset(mock_virtio_host(&m, pages, 4096), 0xbb, 4096);
    struct mock_buf c = { pages, 4096, 1 };
    ck_assert_int_ge(mock_vq_request(&m, 2, &c, 1, &len), 0);
    ck_assert_uint_eq(*(uint8_t *)mock_virtio_host(&m, pages, 1), 0);
    ck_assert_uint_eq(query(&m).reported_pages, 1);
    mock_virtio_destroy(&m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_balloon");
    TCase *t = tcase_create("balloon");

    tcase_add_test(t, features_and_target);
    tcase_add_test(t, inflated_pages_read_zero);
    tcase_add_test(t, hostile_pfns);
    tcase_add_test(t, stats_protocol);
    tcase_add_test(t, free_page_reporting);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
