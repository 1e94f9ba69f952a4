/* Coroutines in a program that never starts a second thread, where conc's
 * locks take their single-threaded shortcuts: a release must still wake a
 * task of the same thread waiting for the lock. (The program runs its loop
 * without the watchdog, whose thread would end the single-threaded state.) */
#include "conc_test.h"

static conc_lock *lock;
static int order[3], n;

static int
holder(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    if (conc_lock_acquire(lock, 0) < 0)
        return -1;
    order[n++] = 1;
    conc_aio_sleep(0.001); /* the waiter parks on the lock meanwhile */
    order[n++] = 2;
    return conc_lock_release(lock);
}

static int
waiter(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    int r = conc_lock_acquire(lock, 10); /* a lost wake-up times out */
    if (r < 0)
        return r;
    order[n++] = 3;
    return conc_lock_release(lock);
}

static int
both(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *f[2];
    conc_aio_create_task(holder, NULL, 0, NULL, &f[0]);
    conc_aio_create_task(waiter, NULL, 0, NULL, &f[1]);
    int r = conc_aio_gather(f, 2, 0);
    conc_future_free(f[0]);
    conc_future_free(f[1]);
    return r;
}

static void
test_release_wakes_task_of_same_thread(void **state)
{
    (void)state;
    assert_conc_ok(conc_lock_new(NULL, &lock));
    conc_aio_loop *loop;
    assert_conc_ok(conc_aio_loop_new(
        &(conc_aio_loop_opts){.watchdog = CONC_FOREVER}, &loop));
    conc_future *f;
    assert_conc_ok(conc_aio_loop_create_task(loop, both, NULL, 0, NULL, &f));
    assert_conc_ok(conc_aio_loop_run_until_complete(loop, f));
    assert_int_equal(n, 3);
    assert_int_equal(order[2], 3);
    conc_future_free(f);
    conc_aio_loop_free(loop);
    conc_lock_free(lock);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_release_wakes_task_of_same_thread),
    };
    return conc_run_tests(tests);
}
