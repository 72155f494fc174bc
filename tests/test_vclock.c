/* The virtual clock's event queue: (time, sequence) order, ties in scheduling order,
 * cancel, callbacks that schedule, and the struct clock devices see. */
#include <check.h>
#include <errno.h>
#include <stdint.h>

#include "sim/vclock.h"
#include "tests/check_run.h"

struct rec {
    struct vclock *vc;
    int order[32];
    uint64_t when[32];
    unsigned n;
};

struct ev {
    struct rec *r;
    int tag;
};

static void fire(void *arg)
{
    struct ev *e = arg;
    e->r->when[e->r->n] = vclock_now(e->r->vc);
    e->r->order[e->r->n++] = e->tag;
}

START_TEST(orders_by_time)
{
    struct vclock vc;
    struct rec r = { .vc = &vc };
    struct ev e[4] = { { &r, 0 }, { &r, 1 }, { &r, 2 }, { &r, 3 } };

    vclock_init(&vc);
    vclock_schedule(&vc, 300, fire, &e[0]);
    vclock_schedule(&vc, 100, fire, &e[1]);
    vclock_schedule(&vc, 200, fire, &e[2]);
    vclock_schedule(&vc, 50, fire, &e[3]);
    ck_assert_uint_eq(vclock_next_deadline(&vc), 50);
    vclock_advance_to(&vc, 150);
    ck_assert_uint_eq(vclock_run_due(&vc), 2);
    ck_assert_int_eq(r.order[0], 3);
    ck_assert_int_eq(r.order[1], 1);
    ck_assert_uint_eq(vclock_pending(&vc), 2);
    vclock_advance_to(&vc, 1000);
    ck_assert_uint_eq(vclock_run_due(&vc), 2);
    ck_assert_int_eq(r.order[2], 2);
    ck_assert_int_eq(r.order[3], 0);
    ck_assert_uint_eq(vclock_next_deadline(&vc), UINT64_MAX);
    vclock_destroy(&vc);
}
END_TEST

START_TEST(ties_fire_in_scheduling_order)
{
    struct vclock vc;
    struct rec r = { .vc = &vc };
    struct ev e[20];

    vclock_init(&vc);
    for (int i = 0; i < 20; i++) {
        e[i] = (struct ev){ &r, i };
        /* interleave two times so the heap reorders things */
        vclock_schedule(&vc, (i % 2) ? 500 : 400, fire, &e[i]);
    }
    vclock_advance_to(&vc, 500);
    ck_assert_uint_eq(vclock_run_due(&vc), 20);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(r.order[i], 2 * i);          /* the 400s, in order */
        ck_assert_int_eq(r.order[10 + i], 2 * i + 1); /* then the 500s, in order */
    }
    vclock_destroy(&vc);
}
END_TEST

START_TEST(cancel)
{
    struct vclock vc;
    struct rec r = { .vc = &vc };
    struct ev e[3] = { { &r, 0 }, { &r, 1 }, { &r, 2 } };

    vclock_init(&vc);
    int64_t a = vclock_schedule(&vc, 10, fire, &e[0]);
    int64_t b = vclock_schedule(&vc, 20, fire, &e[1]);
    int64_t c = vclock_schedule(&vc, 30, fire, &e[2]);
    ck_assert_int_gt(a, 0);
    ck_assert_int_ne(a, b);
    ck_assert_int_eq(vclock_cancel(&vc, b), 0);
    ck_assert_int_eq(vclock_cancel(&vc, b), -ENOENT);   /* twice */
    ck_assert_int_eq(vclock_cancel(&vc, 12345), -ENOENT);
    vclock_advance_to(&vc, 100);
    ck_assert_uint_eq(vclock_run_due(&vc), 2);
    ck_assert_int_eq(r.order[0], 0);
    ck_assert_int_eq(r.order[1], 2);
    ck_assert_int_eq(vclock_cancel(&vc, c), -ENOENT);   /* already fired */
    vclock_destroy(&vc);
}
END_TEST

/* A callback that reschedules itself in the past or at now fires in the same pass, after
 * what was already due; one in the future waits. */
static struct vclock *chain_vc;
static int chain_count;
static void chain(void *arg)
{
    (void)arg;
    if (++chain_count < 3)
        vclock_schedule(chain_vc, vclock_now(chain_vc), chain, NULL);
    else if (chain_count == 3)
        vclock_schedule(chain_vc, vclock_now(chain_vc) + 10, chain, NULL);
}

START_TEST(callbacks_may_schedule)
{
    struct vclock vc;

    vclock_init(&vc);
    chain_vc = &vc;
    chain_count = 0;
    vclock_schedule(&vc, 5, chain, NULL);
    vclock_advance_to(&vc, 5);
    ck_assert_uint_eq(vclock_run_due(&vc), 3);
    ck_assert_uint_eq(vclock_next_deadline(&vc), 15);
    vclock_destroy(&vc);
}
END_TEST

START_TEST(clock_interface)
{
    struct vclock vc;
    struct rec r = { .vc = &vc };
    struct ev e = { &r, 7 };

    vclock_init(&vc);
    const struct clock *c = &vc.clock;
    vclock_advance_to(&vc, 42);
    vclock_advance_to(&vc, 10);                          /* never backwards */
    ck_assert_uint_eq(clock_now_ns(c), 42);
    int64_t id = c->schedule(c->opaque, 50, fire, &e);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(c->cancel(c->opaque, id), 0);
    ck_assert_int_eq(c->cancel(c->opaque, id), -ENOENT);
    ck_assert_int_lt(c->schedule(c->opaque, 50, NULL, &e), 0);
    vclock_destroy(&vc);
}
END_TEST

START_TEST(alarm_tracks_earliest)
{
    struct vclock vc;
    struct rec r = { .vc = &vc };
    struct ev e = { &r, 1 };

    vclock_init(&vc);
    ck_assert_uint_eq(vc.alarm, UINT64_MAX);
    vclock_set_limit(&vc, 1000);
    ck_assert_uint_eq(vc.alarm, 1000);
    int64_t id = vclock_schedule(&vc, 400, fire, &e);
    ck_assert_uint_eq(vc.alarm, 400);
    vclock_schedule(&vc, 700, fire, &e);
    ck_assert_int_eq(vclock_cancel(&vc, id), 0);
    ck_assert_uint_eq(vc.alarm, 700);
    vclock_advance_to(&vc, 800);
    vclock_run_due(&vc);
    ck_assert_uint_eq(vc.alarm, 1000);
    vclock_set_limit(&vc, UINT64_MAX);
    ck_assert_uint_eq(vc.alarm, UINT64_MAX);
    vclock_destroy(&vc);
}
END_TEST

START_TEST(many_events_stay_ordered)
{
    struct vclock vc;

    vclock_init(&vc);
    /* a fixed pseudo-random spread of times, with many duplicates */
    uint64_t x = 1;
    for (int i = 0; i < 2000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ck_assert_int_gt(vclock_schedule(&vc, (x >> 33) % 300, fire, NULL), 0);
    }
    ck_assert_uint_eq(vclock_pending(&vc), 2000);
    /* cancel every third id */
    for (int64_t id = 3; id <= 2000; id += 3)
        ck_assert_int_eq(vclock_cancel(&vc, id), 0);
    uint64_t last_at = 0, last_seq = 0;
    while (vclock_pending(&vc)) {
        struct vclock_event top = vc.heap[0];
        ck_assert(top.at > last_at || (top.at == last_at && top.seq > last_seq));
        ck_assert_uint_ne(top.seq % 3, 0);
        last_at = top.at;
        last_seq = top.seq;
        vclock_cancel(&vc, (int64_t)top.seq);
    }
    vclock_destroy(&vc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vclock");
    TCase *tc = tcase_create("queue");
    tcase_add_test(tc, orders_by_time);
    tcase_add_test(tc, ties_fire_in_scheduling_order);
    tcase_add_test(tc, cancel);
    tcase_add_test(tc, callbacks_may_schedule);
    tcase_add_test(tc, clock_interface);
    tcase_add_test(tc, alarm_tracks_earliest);
    tcase_add_test(tc, many_events_stay_ordered);
    suite_add_tcase(s, tc);
    return check_run(s);
}
