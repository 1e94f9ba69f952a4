/* The waiting primitive of core/wait.h: its spin keeps to its budget and
 * to the caller's deadline, and conc__wait_while sleeps until the word
 * changes or the deadline passes. */
#include <pthread.h>
#include <stdatomic.h>

#include "conc_test.h"
#include "core/wait.h"

#define BOUND_NS 10000000000LL /* 10 s: only ever reached by a failure */

/* Spins `sp` to its end; returns how long that took, in ns. */
static int64_t
spin_out(struct conc__spin *sp, unsigned *looks)
{
    int64_t t0 = conc__now_ns();
    *looks = 0;
    while (conc__spin_more(sp) && conc__now_ns() - t0 < BOUND_NS)
        (*looks)++;
    return conc__now_ns() - t0;
}

static void
test_spin_budget(void **state)
{
    (void)state;
    unsigned looks;
    /* A call that must not block does not spin. */
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, CONC__POLL);
    spin_out(&sp, &looks);
    assert_int_equal(looks, 0);
    /* A spin lasts its budget, looking more than once. */
    sp = conc__spin_start(CONC__SPIN_NS, CONC__FOREVER);
    assert_true(spin_out(&sp, &looks) >= CONC__SPIN_NS);
    assert_true(looks > 1);
    /* And it is over: it stays over. */
    assert_int_equal(conc__spin_more(&sp), 0);
    /* A deadline nearer than the budget ends it first. */
    int64_t t0 = conc__now_ns();
    sp = conc__spin_start(CONC__SPIN_TASK_NS, t0 + CONC__SPIN_NS / 2);
    spin_out(&sp, &looks);
    assert_int_equal(sp.end, t0 + CONC__SPIN_NS / 2);
    /* A deadline already past: the spin ends at its first clock read,
     * once the gaps have grown (1, 2, 4, 8 pauses: four looks). */
    sp = conc__spin_start(CONC__SPIN_NS, 1);
    spin_out(&sp, &looks);
    assert_true(looks <= 4);
}

/* A step another thread has begun: conc__spin_step waits through it,
 * spinning and then yielding. */
static void *
finish_step(void *arg)
{
    _Atomic uint32_t *w = arg;
    atomic_store(w, 1);
    return NULL;
}

static void
test_spin_step(void **state)
{
    (void)state;
    _Atomic uint32_t w = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, finish_step, &w), 0);
    struct conc__spin sp = CONC__SPIN_STEP_INIT;
    int64_t t0 = conc__now_ns();
    while (!atomic_load(&w) && conc__now_ns() - t0 < BOUND_NS)
        conc__spin_step(&sp);
    assert_int_equal(atomic_load(&w), 1);
    assert_int_equal(pthread_join(t, NULL), 0);
}

struct changer {
    _Atomic uint32_t word;
    _Atomic uint32_t go; /* futex: the changer waits for it */
};

static void *
change_later(void *arg)
{
    struct changer *c = arg;
    while (atomic_load(&c->go) == 0)
        conc__futex_wait(&c->go, 0, CONC__FOREVER, 0);
    atomic_store(&c->word, 2);
    conc__futex_wake(&c->word, 1, 0);
    return NULL;
}

static void
test_wait_while(void **state)
{
    (void)state;
    struct changer c = {1, 0};
    /* Unchanged: the deadline ends the wait, not before it. */
    int64_t t0 = conc__now_ns();
    assert_conc(conc__wait_while(&c.word, 1, t0 + 3 * CONC__SPIN_NS, 0),
                CONC_ETIMEDOUT);
    assert_true(conc__now_ns() - t0 >= 3 * CONC__SPIN_NS);
    assert_conc(conc__wait_while(&c.word, 1, CONC__POLL, 0), CONC_ETIMEDOUT);
    /* Already changed: at once. */
    assert_conc_ok(conc__wait_while(&c.word, 0, CONC__FOREVER, 0));
    /* Changed by another thread, asleep or not by then. */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, change_later, &c), 0);
    atomic_store(&c.go, 1);
    conc__futex_wake(&c.go, 1, 0);
    assert_conc_ok(conc__wait_while(&c.word, 1, conc__now_ns() + BOUND_NS, 0));
    assert_int_equal(atomic_load(&c.word), 2);
    assert_int_equal(pthread_join(t, NULL), 0);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_spin_budget),
        conc_unit_test(test_spin_step),
        conc_unit_test(test_wait_while),
    };
    return conc_run_tests(tests);
}
