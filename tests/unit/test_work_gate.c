/* Unit tests for the work gate a device reset closes: it waits for the jobs inside (a read
 * writing guest memory) and turns away the jobs started before it that had not begun. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "kiln/util/work_gate.h"

struct closer {
    struct work_gate *gate;
    bool closed; /* set once work_gate_close returned */
};

static void *close_gate(void *arg)
{
    struct closer *c = arg;
    work_gate_close(c->gate);
    __atomic_store_n(&c->closed, true, __ATOMIC_SEQ_CST);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec t = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&t, NULL);
}

/* A reset while a job is inside returns only after the job left. */
static void test_close_waits_for_the_job_inside(void **state)
{
    struct work_gate gate;
    work_gate_init(&gate);
    uint32_t epoch = work_gate_epoch(&gate);
    assert_true(work_gate_enter(&gate, epoch));
    struct closer c = {.gate = &gate};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, close_gate, &c), 0);
    sleep_ms(100);
    assert_false(__atomic_load_n(&c.closed, __ATOMIC_SEQ_CST));
    work_gate_leave(&gate);
    pthread_join(thread, NULL);
    assert_true(c.closed);
    work_gate_destroy(&gate);
}

/* A job started before a reset but not yet begun is turned away; one started after it runs. */
static void test_close_turns_away_earlier_jobs(void **state)
{
    struct work_gate gate;
    work_gate_init(&gate);
    uint32_t before = work_gate_epoch(&gate);
    work_gate_close(&gate); /* nothing inside: returns at once */
    assert_false(work_gate_enter(&gate, before));
    uint32_t after = work_gate_epoch(&gate);
    assert_true(work_gate_enter(&gate, after));
    work_gate_leave(&gate);
    work_gate_destroy(&gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_waits_for_the_job_inside),
        cmocka_unit_test(test_close_turns_away_earlier_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
