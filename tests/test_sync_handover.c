/* The "last user frees" pattern: a thread released by a Lock, Semaphore,
 * Event or Condition frees the object the moment its wait returns, while
 * the releasing thread may still be inside its call. The release paths must
 * not read the object after the handover (their design comments say how);
 * under ASan any such read would be a heap-use-after-free report. The
 * window is a few instructions wide, so this is a stress guard that runs
 * many rounds, not a deterministic proof; every round also checks that the
 * wait succeeded. */
#include <pthread.h>

#include "conc_test.h"

#define ROUNDS 3000

struct job {
    void *obj;
    int kind;
};

enum { LOCK, SEM, BSEM, EVENT, COND };

static void *
releaser(void *arg)
{
    struct job *j = arg;
    switch (j->kind) {
    case LOCK:
        conc_lock_release(j->obj);
        break;
    case SEM:
        conc_sem_release(j->obj, 1);
        break;
    case BSEM:
        conc_bsem_release(j->obj, 1);
        break;
    case EVENT:
        conc_event_set(j->obj);
        break;
    case COND:
        conc_cond_acquire(j->obj, CONC_FOREVER);
        conc_cond_notify(j->obj, 1);
        conc_cond_release(j->obj);
        break;
    }
    return NULL;
}

static void
run_rounds(int kind)
{
    for (int i = 0; i < ROUNDS; i++) {
        struct job j = {.kind = kind};
        switch (kind) {
        case LOCK:
            assert_conc_ok(conc_lock_new(NULL, (conc_lock **)&j.obj));
            assert_conc_ok(conc_lock_acquire(j.obj, CONC_FOREVER));
            break;
        case SEM:
            assert_conc_ok(conc_sem_new(0, NULL, (conc_sem **)&j.obj));
            break;
        case BSEM:
            assert_conc_ok(conc_bsem_new(1, NULL, (conc_bsem **)&j.obj));
            assert_conc_ok(conc_bsem_acquire(j.obj, CONC_FOREVER));
            break;
        case EVENT:
            assert_conc_ok(conc_event_new(NULL, (conc_event **)&j.obj));
            break;
        case COND:
            assert_conc_ok(conc_cond_new(NULL, (conc_cond **)&j.obj));
            assert_conc_ok(conc_cond_acquire(j.obj, CONC_FOREVER));
            break;
        }
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, releaser, &j), 0);
        switch (kind) {
        case LOCK:
            assert_conc_ok(conc_lock_acquire(j.obj, 10.0));
            assert_conc_ok(conc_lock_release(j.obj));
            conc_lock_free(j.obj);
            break;
        case SEM:
            assert_conc_ok(conc_sem_acquire(j.obj, 10.0));
            conc_sem_free(j.obj);
            break;
        case BSEM:
            assert_conc_ok(conc_bsem_acquire(j.obj, 10.0));
            conc_bsem_free(j.obj);
            break;
        case EVENT:
            assert_conc_ok(conc_event_wait(j.obj, 10.0));
            conc_event_free(j.obj);
            break;
        case COND:
            /* Woken by the notify, the waiter holds the lock again only
             * after the notifier released it. */
            assert_conc_ok(conc_cond_wait(j.obj, 10.0));
            assert_conc_ok(conc_cond_release(j.obj));
            conc_cond_free(j.obj);
            break;
        }
        assert_int_equal(pthread_join(t, NULL), 0);
    }
}

static void
test_lock_freed_after_handover(void **state)
{
    (void)state;
    run_rounds(LOCK);
}

static void
test_sem_freed_after_handover(void **state)
{
    (void)state;
    run_rounds(SEM);
}

static void
test_bsem_freed_after_handover(void **state)
{
    (void)state;
    run_rounds(BSEM);
}

static void
test_event_freed_after_handover(void **state)
{
    (void)state;
    run_rounds(EVENT);
}

static void
test_cond_freed_after_handover(void **state)
{
    (void)state;
    run_rounds(COND);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_lock_freed_after_handover),
        conc_unit_test(test_sem_freed_after_handover),
        conc_unit_test(test_bsem_freed_after_handover),
        conc_unit_test(test_event_freed_after_handover),
        conc_unit_test(test_cond_freed_after_handover),
    };
    return conc_run_tests(tests);
}
