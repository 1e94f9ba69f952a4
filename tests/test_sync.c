/* Layer 1 sync: Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event
 * and Barrier between threads (test_sync_shared.c tests them placed in an
 * arena, between processes).
 *
 * Threads are plain pthreads. States that a test must know before it goes
 * on (a waiter is queued, a thread holds a lock) are announced through a
 * semaphore or an event, or read through the module's internal accessors;
 * nothing sleeps to synchronize. Every blocking call in a helper thread has
 * a bounded timeout, so a bug fails a test instead of hanging it. Processes
 * are forked only while the test process has a single thread. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "sync/sync_internal.h"

/* A bound for waits that should end at once: long enough never to expire
 * on a loaded machine, short enough that a bug does not hang the suite. */
#define BOUND 20.0

/* ---- Helpers ------------------------------------------------------------ */

static pthread_t
spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

static void
join(pthread_t t)
{
    assert_int_equal(pthread_join(t, NULL), 0);
}

struct reach {
    atomic_int *value;
    int want;
};

static int
reached(void *p)
{
    struct reach *r = p;
    return atomic_load(r->value) >= r->want;
}

/* Waits (bounded) until *value >= want. */
static void
await_count(atomic_int *value, int want)
{
    struct reach r = {value, want};
    assert_true(conc_test_wait_until(reached, &r, BOUND));
}

/* ---- Lock --------------------------------------------------------------- */

static void
test_lock_basic(void **state)
{
    (void)state;
    conc_lock *l;
    assert_conc_ok(conc_lock_new(NULL, &l));
    assert_int_equal(conc_lock_locked(l), 0);
    assert_conc(conc_lock_release(l), CONC_ENOTLOCKED);
    assert_conc_ok(conc_lock_acquire(l, CONC_FOREVER));
    assert_int_equal(conc_lock_locked(l), 1);
    assert_conc(conc_lock_acquire(l, 0), CONC_ETIMEDOUT);
    assert_conc(conc_lock_acquire(l, NAN), CONC_EINVAL);
    assert_conc_ok(conc_lock_release(l));
    assert_int_equal(conc_lock_locked(l), 0);
    assert_conc(conc_lock_acquire(l, NAN), CONC_EINVAL);
    assert_int_equal(conc_lock_locked(l), 0);
    assert_conc_ok(conc_lock_acquire(l, 0));
    assert_conc_ok(conc_lock_release(l));
    conc_lock_free(l);
    conc_lock_free(NULL);
}

static void
test_lock_timeout(void **state)
{
    (void)state;
    conc_lock *l;
    assert_conc_ok(conc_lock_new(NULL, &l));
    assert_conc_ok(conc_lock_acquire(l, CONC_FOREVER));
    double t0 = conc_monotonic();
    assert_conc(conc_lock_acquire(l, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc_ok(conc_lock_release(l));
    conc_lock_free(l);
}

static void *
release_lock_main(void *p)
{
    conc_lock *l = p;
    assert_conc_ok(conc_lock_release(l));
    return NULL;
}

/* A Lock has no owner: another thread may release it, as in Python. */
static void
test_lock_released_by_other_thread(void **state)
{
    (void)state;
    conc_lock *l;
    assert_conc_ok(conc_lock_new(NULL, &l));
    assert_conc_ok(conc_lock_acquire(l, CONC_FOREVER));
    join(spawn(release_lock_main, l));
    assert_int_equal(conc_lock_locked(l), 0);
    conc_lock_free(l);
}

#define N_THREADS 4
#define N_INCS    20000

struct counter_ctx {
    conc_lock *lock;
    conc_rlock *rlock;
    long counter; /* guarded by lock or rlock */
    int errors;   /* guarded by lock or rlock */
};

static void *
lock_incr_main(void *p)
{
    struct counter_ctx *c = p;
    for (int i = 0; i < N_INCS; i++) {
        int r = conc_lock_acquire(c->lock, BOUND);
        c->counter++;
        c->errors += r != 0;
        conc_lock_release(c->lock);
    }
    return NULL;
}

static void
test_lock_contended(void **state)
{
    (void)state;
    struct counter_ctx c = {0};
    assert_conc_ok(conc_lock_new(NULL, &c.lock));
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        t[i] = spawn(lock_incr_main, &c);
    for (int i = 0; i < N_THREADS; i++)
        join(t[i]);
    assert_int_equal(c.counter, (long)N_THREADS * N_INCS);
    assert_int_equal(c.errors, 0);
    conc_lock_free(c.lock);
}

/* ---- RLock -------------------------------------------------------------- */

static void
test_rlock_reentrant(void **state)
{
    (void)state;
    conc_rlock *r;
    assert_conc_ok(conc_rlock_new(NULL, &r));
    assert_int_equal(conc_rlock_is_owned(r), 0);
    assert_conc(conc_rlock_release(r), CONC_ENOTOWNER);
    assert_conc(conc_rlock_acquire(r, NAN), CONC_EINVAL);
    assert_int_equal(conc_rlock_is_owned(r), 0);
    for (int i = 0; i < 3; i++)
        assert_conc_ok(conc_rlock_acquire(r, i == 0 ? CONC_FOREVER : 0));
    assert_int_equal(conc_rlock_is_owned(r), 1);
    assert_conc(conc_rlock_acquire(r, NAN), CONC_EINVAL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(conc_rlock_is_owned(r), 1);
        assert_conc_ok(conc_rlock_release(r));
    }
    assert_int_equal(conc_rlock_is_owned(r), 0);
    assert_conc(conc_rlock_release(r), CONC_ENOTOWNER);
    conc_rlock_free(r);
    conc_rlock_free(NULL);
}

static void
test_rlock_overflow(void **state)
{
    (void)state;
    conc_rlock *r;
    assert_conc_ok(conc_rlock_new(NULL, &r));
    assert_conc_ok(conc_rlock_acquire(r, CONC_FOREVER));
    /* Reaching 2^32-1 by hand would take seconds; set the count instead. */
    r->count = UINT32_MAX;
    assert_conc(conc_rlock_acquire(r, 0), CONC_EOVERFLOW);
    assert_int_equal(r->count, UINT32_MAX);
    r->count = 1;
    assert_conc_ok(conc_rlock_release(r));
    assert_int_equal(conc_rlock_is_owned(r), 0);
    conc_rlock_free(r);
}

struct other_ctx {
    conc_rlock *r;
    int release_result, owned, try_result, timed_result;
    double waited;
};

static void *
rlock_other_main(void *p)
{
    struct other_ctx *c = p;
    c->release_result = conc_rlock_release(c->r);
    c->owned = conc_rlock_is_owned(c->r);
    c->try_result = conc_rlock_acquire(c->r, 0);
    double t0 = conc_monotonic();
    c->timed_result = conc_rlock_acquire(c->r, 0.05);
    c->waited = conc_monotonic() - t0;
    return NULL;
}

static void
test_rlock_other_thread(void **state)
{
    (void)state;
    struct other_ctx c = {0};
    assert_conc_ok(conc_rlock_new(NULL, &c.r));
    assert_conc_ok(conc_rlock_acquire(c.r, CONC_FOREVER));
    join(spawn(rlock_other_main, &c));
    assert_conc(c.release_result, CONC_ENOTOWNER);
    assert_int_equal(c.owned, 0);
    assert_conc(c.try_result, CONC_ETIMEDOUT);
    assert_conc(c.timed_result, CONC_ETIMEDOUT);
    assert_true(c.waited >= 0.05);
    /* The failed release changed nothing: still ours, once. */
    assert_int_equal(conc_rlock_is_owned(c.r), 1);
    assert_conc_ok(conc_rlock_release(c.r));
    assert_conc(conc_rlock_release(c.r), CONC_ENOTOWNER);
    conc_rlock_free(c.r);
}

static void *
rlock_incr_main(void *p)
{
    struct counter_ctx *c = p;
    int errors = 0;
    for (int i = 0; i < N_INCS; i++) {
        errors += conc_rlock_acquire(c->rlock, BOUND) != 0;
        errors += conc_rlock_acquire(c->rlock, 0) != 0;
        c->counter++;
        errors += conc_rlock_release(c->rlock) != 0;
        errors += conc_rlock_release(c->rlock) != 0;
    }
    /* Reported under the lock, since errors is shared. */
    conc_rlock_acquire(c->rlock, BOUND);
    c->errors += errors;
    conc_rlock_release(c->rlock);
    return NULL;
}

static void
test_rlock_contended(void **state)
{
    (void)state;
    struct counter_ctx c = {0};
    assert_conc_ok(conc_rlock_new(NULL, &c.rlock));
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        t[i] = spawn(rlock_incr_main, &c);
    for (int i = 0; i < N_THREADS; i++)
        join(t[i]);
    assert_int_equal(c.counter, (long)N_THREADS * N_INCS);
    assert_int_equal(c.errors, 0);
    assert_int_equal(conc_rlock_is_owned(c.rlock), 0);
    conc_rlock_free(c.rlock);
}

/* ---- Condition ---------------------------------------------------------- */

static int
always_true(void *arg)
{
    (void)arg;
    return 1;
}

static void
test_cond_new_errors(void **state)
{
    (void)state;
    conc_lock *l;
    conc_rlock *r;
    conc_cond *c = NULL;
    conc_arena *a;
    assert_conc_ok(conc_lock_new(NULL, &l));
    assert_conc_ok(conc_rlock_new(NULL, &r));
    assert_conc_ok(conc_arena_new(1 << 16, &a));
    conc_cond_opts both = {.lock = l, .rlock = r};
    assert_conc(conc_cond_new(&both, &c), CONC_EINVAL);
    /* A private lock cannot serve a shared condition, nor the reverse. */
    conc_cond_opts mixed = {.lock = l, .arena = a};
    assert_conc(conc_cond_new(&mixed, &c), CONC_EINVAL);
    conc_cond_opts mixed_r = {.rlock = r, .arena = a};
    assert_conc(conc_cond_new(&mixed_r, &c), CONC_EINVAL);
    conc_lock *sl;
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sl));
    conc_cond_opts mixed2 = {.lock = sl};
    assert_conc(conc_cond_new(&mixed2, &c), CONC_EINVAL);
    assert_null(c);
    conc_lock_free(sl);
    conc_arena_free(a);
    conc_rlock_free(r);
    conc_lock_free(l);
    conc_cond_free(NULL);
}

/* Checks every call that needs the lock on a condition whose lock the
 * calling thread does not hold. */
static void
check_not_owner(conc_cond *c)
{
    assert_conc(conc_cond_wait(c, 0), CONC_ENOTOWNER);
    assert_conc(conc_cond_wait(c, CONC_FOREVER), CONC_ENOTOWNER);
    assert_conc(conc_cond_wait_for(c, always_true, NULL, 0), CONC_ENOTOWNER);
    assert_conc(conc_cond_notify(c, 1), CONC_ENOTOWNER);
    assert_conc(conc_cond_notify_all(c), CONC_ENOTOWNER);
}

static void *
not_owner_main(void *p)
{
    check_not_owner(p);
    return NULL;
}

static void
test_cond_misuse(void **state)
{
    (void)state;
    conc_cond *c;
    assert_conc_ok(conc_cond_new(NULL, &c));
    check_not_owner(c);
    assert_conc(conc_cond_release(c), CONC_ENOTOWNER);
    assert_conc_ok(conc_cond_acquire(c, CONC_FOREVER));
    /* Held by this thread, so not owned by another. */
    join(spawn(not_owner_main, c));
    assert_conc(conc_cond_wait(c, NAN), CONC_EINVAL);
    assert_conc(conc_cond_wait_for(c, NULL, NULL, 1), CONC_EINVAL);
    assert_conc(conc_cond_wait_for(c, always_true, NULL, NAN), CONC_EINVAL);
    assert_conc_ok(conc_cond_notify(c, 0));
    assert_conc_ok(conc_cond_notify(c, 5));
    assert_conc_ok(conc_cond_notify_all(c));
    assert_conc_ok(conc_cond_release(c));
    conc_cond_free(c);

    /* With a plain Lock, "held" means locked, whoever locked it. */
    conc_lock *l;
    assert_conc_ok(conc_lock_new(NULL, &l));
    conc_cond_opts o = {.lock = l};
    assert_conc_ok(conc_cond_new(&o, &c));
    check_not_owner(c);
    assert_conc(conc_cond_release(c), CONC_ENOTLOCKED);
    assert_conc_ok(conc_cond_acquire(c, CONC_FOREVER));
    assert_conc_ok(conc_cond_notify(c, 1));
    assert_conc_ok(conc_cond_release(c));
    conc_cond_free(c);
    conc_lock_free(l);
}

static void
test_cond_wait_timeout(void **state)
{
    (void)state;
    conc_cond *c;
    assert_conc_ok(conc_cond_new(NULL, &c));
    /* Acquired twice: wait must release both levels and restore them. */
    assert_conc_ok(conc_cond_acquire(c, CONC_FOREVER));
    assert_conc_ok(conc_cond_acquire(c, CONC_FOREVER));
    double t0 = conc_monotonic();
    assert_conc(conc_cond_wait(c, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc(conc_cond_wait(c, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc__cond_waiters(c), 0);
    assert_conc_ok(conc_cond_release(c));
    assert_conc_ok(conc_cond_release(c));
    assert_conc(conc_cond_release(c), CONC_ENOTOWNER);
    conc_cond_free(c);

    conc_lock *l;
    assert_conc_ok(conc_lock_new(NULL, &l));
    conc_cond_opts o = {.lock = l};
    assert_conc_ok(conc_cond_new(&o, &c));
    assert_conc_ok(conc_cond_acquire(c, CONC_FOREVER));
    t0 = conc_monotonic();
    assert_conc(conc_cond_wait(c, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(conc_lock_locked(l), 1);
    assert_conc_ok(conc_cond_release(c));
    conc_cond_free(c);
    conc_lock_free(l);
}

#define N_WAITERS 3

struct cond_ctx {
    conc_cond *cond;
    conc_sem *queued; /* each waiter releases it just before it waits */
    atomic_int woken;
    int order[N_WAITERS]; /* guarded by the cond's lock */
    int n_order;          /* guarded by the cond's lock */
    int results[N_WAITERS];
};

struct waiter_arg {
    struct cond_ctx *ctx;
    int id;
};

static void *
cond_waiter_main(void *p)
{
    struct waiter_arg *a = p;
    struct cond_ctx *c = a->ctx;
    int r = conc_cond_acquire(c->cond, BOUND);
    conc_sem_release(c->queued, 1);
    c->results[a->id] = r ? r : conc_cond_wait(c->cond, BOUND);
    c->order[c->n_order++] = a->id;
    atomic_fetch_add(&c->woken, 1);
    conc_cond_release(c->cond);
    return NULL;
}

/* Starts waiter `id` and returns once it is queued on the condition: it
 * announced itself holding the lock, and wait releases the lock only after
 * queueing, so taking the lock here proves it waits. */
static pthread_t
start_waiter(struct cond_ctx *c, struct waiter_arg *a, int id)
{
    a->ctx = c;
    a->id = id;
    pthread_t t = spawn(cond_waiter_main, a);
    assert_conc_ok(conc_sem_acquire(c->queued, BOUND));
    return t;
}

static void
cond_ctx_init(struct cond_ctx *c, const conc_cond_opts *opts)
{
    memset(c, 0, sizeof *c);
    assert_conc_ok(conc_cond_new(opts, &c->cond));
    assert_conc_ok(conc_sem_new(0, NULL, &c->queued));
}

static void
cond_ctx_fini(struct cond_ctx *c)
{
    conc_cond_free(c->cond);
    conc_sem_free(c->queued);
}

static void
test_cond_notify_one_of_three(void **state)
{
    (void)state;
    struct cond_ctx c;
    cond_ctx_init(&c, NULL);
    struct waiter_arg a[N_WAITERS];
    pthread_t t[N_WAITERS];
    for (int i = 0; i < N_WAITERS; i++)
        t[i] = start_waiter(&c, &a[i], i);
    assert_conc_ok(conc_cond_acquire(c.cond, BOUND));
    assert_int_equal(conc__cond_waiters(c.cond), 3);
    assert_conc_ok(conc_cond_notify(c.cond, 0));
    assert_int_equal(conc__cond_waiters(c.cond), 3);
    assert_conc_ok(conc_cond_notify(c.cond, 1));
    assert_int_equal(conc__cond_waiters(c.cond), 2);
    assert_conc_ok(conc_cond_release(c.cond));
    await_count(&c.woken, 1);
    /* The other two are still queued: exactly one woke. */
    assert_conc_ok(conc_cond_acquire(c.cond, BOUND));
    assert_int_equal(atomic_load(&c.woken), 1);
    assert_int_equal(conc__cond_waiters(c.cond), 2);
    assert_conc_ok(conc_cond_notify_all(c.cond));
    assert_int_equal(conc__cond_waiters(c.cond), 0);
    assert_conc_ok(conc_cond_release(c.cond));
    for (int i = 0; i < N_WAITERS; i++) {
        join(t[i]);
        assert_conc_ok(c.results[i]);
    }
    assert_int_equal(atomic_load(&c.woken), 3);
    cond_ctx_fini(&c);
}

/* Waiters wake in the order they began to wait; notify(n) with more than
 * are waiting wakes them all. Runs with the default RLock, a borrowed Lock
 * and a borrowed RLock. */
static void
check_fifo(const conc_cond_opts *opts)
{
    struct cond_ctx c;
    cond_ctx_init(&c, opts);
    struct waiter_arg a[N_WAITERS];
    pthread_t t[N_WAITERS];
    for (int i = 0; i < N_WAITERS; i++)
        t[i] = start_waiter(&c, &a[i], i);
    for (int i = 0; i < N_WAITERS - 1; i++) {
        assert_conc_ok(conc_cond_acquire(c.cond, BOUND));
        assert_conc_ok(conc_cond_notify(c.cond, 1));
        assert_conc_ok(conc_cond_release(c.cond));
        await_count(&c.woken, i + 1);
    }
    assert_conc_ok(conc_cond_acquire(c.cond, BOUND));
    assert_conc_ok(conc_cond_notify(c.cond, 10));
    assert_conc_ok(conc_cond_release(c.cond));
    for (int i = 0; i < N_WAITERS; i++)
        join(t[i]);
    for (int i = 0; i < N_WAITERS; i++) {
        assert_conc_ok(c.results[i]);
        assert_int_equal(c.order[i], i);
    }
    cond_ctx_fini(&c);
}

static void
test_cond_fifo(void **state)
{
    (void)state;
    check_fifo(NULL);
    conc_lock *l;
    conc_rlock *r;
    assert_conc_ok(conc_lock_new(NULL, &l));
    assert_conc_ok(conc_rlock_new(NULL, &r));
    conc_cond_opts with_lock = {.lock = l};
    conc_cond_opts with_rlock = {.rlock = r};
    check_fifo(&with_lock);
    check_fifo(&with_rlock);
    assert_int_equal(conc_lock_locked(l), 0);
    assert_int_equal(conc_rlock_is_owned(r), 0);
    conc_lock_free(l);
    conc_rlock_free(r);
}

struct pred_ctx {
    conc_cond *cond;
    conc_sem *checked; /* released by each predicate call */
    int flag;          /* guarded by the cond's lock */
    int calls;         /* guarded by the cond's lock */
    int result;
};

static int
flag_set(void *p)
{
    struct pred_ctx *c = p;
    c->calls++;
    conc_sem_release(c->checked, 1);
    return c->flag;
}

static void *
wait_for_main(void *p)
{
    struct pred_ctx *c = p;
    int r = conc_cond_acquire(c->cond, BOUND);
    c->result = r ? r : conc_cond_wait_for(c->cond, flag_set, c, BOUND);
    conc_cond_release(c->cond);
    return NULL;
}

/* Notifies with the lock held once the waiter checked its predicate (and
 * so is waiting again, since it holds the lock until then). */
static void
notify_after_check(struct pred_ctx *c, int flag)
{
    assert_conc_ok(conc_sem_acquire(c->checked, BOUND));
    assert_conc_ok(conc_cond_acquire(c->cond, BOUND));
    c->flag = flag;
    assert_conc_ok(conc_cond_notify(c->cond, 1));
    assert_conc_ok(conc_cond_release(c->cond));
}

static void
test_cond_wait_for(void **state)
{
    (void)state;
    struct pred_ctx c = {0};
    assert_conc_ok(conc_cond_new(NULL, &c.cond));
    assert_conc_ok(conc_sem_new(0, NULL, &c.checked));
    pthread_t t = spawn(wait_for_main, &c);
    notify_after_check(&c, 0); /* a wake-up with the predicate still false */
    notify_after_check(&c, 1);
    join(t);
    assert_conc_ok(c.result);
    assert_int_equal(c.calls, 3);

    /* True at once: no wait, even with a zero timeout. */
    assert_conc_ok(conc_cond_acquire(c.cond, BOUND));
    c.calls = 0;
    assert_conc_ok(conc_cond_wait_for(c.cond, flag_set, &c, 0));
    assert_int_equal(c.calls, 1);
    /* Still false at the deadline; checked first and once more at the end. */
    c.flag = 0;
    c.calls = 0;
    assert_conc(conc_cond_wait_for(c.cond, flag_set, &c, 0), CONC_ETIMEDOUT);
    assert_int_equal(c.calls, 2);
    double t0 = conc_monotonic();
    assert_conc(conc_cond_wait_for(c.cond, flag_set, &c, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc_ok(conc_cond_release(c.cond));
    assert_conc(conc_cond_release(c.cond), CONC_ENOTOWNER);
    while (conc_sem_acquire(c.checked, 0) == 0)
        ;
    conc_sem_free(c.checked);
    conc_cond_free(c.cond);
}

/* ---- Semaphore and BoundedSemaphore ------------------------------------- */

static void
test_sem_basic(void **state)
{
    (void)state;
    conc_sem *s;
    assert_conc(conc_sem_new((unsigned)INT32_MAX + 1, NULL, &s), CONC_EINVAL);
    assert_conc_ok(conc_sem_new(2, NULL, &s));
    assert_int_equal(conc_sem_value(s), 2);
    assert_conc_ok(conc_sem_acquire(s, 0));
    assert_conc_ok(conc_sem_acquire(s, CONC_FOREVER));
    assert_int_equal(conc_sem_value(s), 0);
    assert_conc(conc_sem_acquire(s, 0), CONC_ETIMEDOUT);
    assert_conc(conc_sem_acquire(s, NAN), CONC_EINVAL);
    assert_conc(conc_sem_release(s, 0), CONC_EINVAL);
    assert_conc_ok(conc_sem_release(s, 3));
    assert_int_equal(conc_sem_value(s), 3);
    assert_conc(conc_sem_acquire(s, NAN), CONC_EINVAL);
    assert_int_equal(conc_sem_value(s), 3);
    conc_sem_free(s);
    conc_sem_free(NULL);

    assert_conc_ok(conc_sem_new(INT32_MAX, NULL, &s));
    assert_conc(conc_sem_release(s, 1), CONC_EOVERFLOW);
    assert_int_equal(conc_sem_value(s), INT32_MAX);
    assert_conc_ok(conc_sem_acquire(s, 0));
    assert_conc(conc_sem_release(s, 2), CONC_EOVERFLOW);
    assert_conc(conc_sem_release(s, UINT32_MAX), CONC_EOVERFLOW);
    assert_conc_ok(conc_sem_release(s, 1));
    assert_int_equal(conc_sem_value(s), INT32_MAX);
    conc_sem_free(s);
}

static void
test_sem_timeout(void **state)
{
    (void)state;
    conc_sem *s;
    conc_bsem *b;
    assert_conc_ok(conc_sem_new(0, NULL, &s));
    double t0 = conc_monotonic();
    assert_conc(conc_sem_acquire(s, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(conc_sem_value(s), 0);
    conc_sem_free(s);
    assert_conc_ok(conc_bsem_new(1, NULL, &b));
    assert_conc_ok(conc_bsem_acquire(b, 0));
    t0 = conc_monotonic();
    assert_conc(conc_bsem_acquire(b, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc_ok(conc_bsem_release(b, 1));
    conc_bsem_free(b);
}

static void
test_bsem_over_release(void **state)
{
    (void)state;
    conc_bsem *b;
    assert_conc(conc_bsem_new((unsigned)INT32_MAX + 1, NULL, &b), CONC_EINVAL);
    assert_conc_ok(conc_bsem_new(2, NULL, &b));
    assert_conc(conc_bsem_release(b, 1), CONC_EVALUE);
    assert_int_equal(conc_bsem_value(b), 2);
    assert_conc_ok(conc_bsem_acquire(b, 0));
    assert_conc(conc_bsem_release(b, 2), CONC_EVALUE);
    assert_conc(conc_bsem_release(b, UINT32_MAX), CONC_EVALUE);
    assert_int_equal(conc_bsem_value(b), 1);
    assert_conc(conc_bsem_release(b, 0), CONC_EINVAL);
    assert_conc(conc_bsem_acquire(b, NAN), CONC_EINVAL);
    assert_conc_ok(conc_bsem_release(b, 1));
    assert_int_equal(conc_bsem_value(b), 2);
    assert_conc_ok(conc_bsem_acquire(b, 0));
    assert_conc_ok(conc_bsem_acquire(b, 0));
    assert_conc(conc_bsem_acquire(b, 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_bsem_release(b, 2));
    conc_bsem_free(b);
    conc_bsem_free(NULL);

    assert_conc_ok(conc_bsem_new(0, NULL, &b));
    assert_conc(conc_bsem_release(b, 1), CONC_EVALUE);
    assert_int_equal(conc_bsem_value(b), 0);
    conc_bsem_free(b);
}

#define SEM_LIMIT   2
#define SEM_THREADS 5
#define SEM_ROUNDS  300

struct limit_ctx {
    conc_sem *sem;
    conc_bsem *bsem; /* used instead of sem when set */
    atomic_int inside, max_inside, errors, done;
};

static int
limit_acquire(struct limit_ctx *c)
{
    return c->bsem ? conc_bsem_acquire(c->bsem, BOUND)
                   : conc_sem_acquire(c->sem, BOUND);
}

static int
limit_release(struct limit_ctx *c)
{
    return c->bsem ? conc_bsem_release(c->bsem, 1)
                   : conc_sem_release(c->sem, 1);
}

/* One pass through the guarded region, noting the most threads inside. */
static void
limit_enter(struct limit_ctx *c)
{
    if (limit_acquire(c) != 0) {
        atomic_fetch_add(&c->errors, 1);
        return;
    }
    int now = atomic_fetch_add(&c->inside, 1) + 1;
    int max = atomic_load(&c->max_inside);
    while (now > max &&
           !atomic_compare_exchange_weak(&c->max_inside, &max, now))
        ;
    sched_yield(); /* widen the window for an excess entrant */
    atomic_fetch_sub(&c->inside, 1);
    if (limit_release(c) != 0)
        atomic_fetch_add(&c->errors, 1);
}

static void *
limit_main(void *p)
{
    struct limit_ctx *c = p;
    for (int i = 0; i < SEM_ROUNDS; i++)
        limit_enter(c);
    atomic_fetch_add(&c->done, 1);
    return NULL;
}

static void
check_limit(struct limit_ctx *c)
{
    pthread_t t[SEM_THREADS];
    for (int i = 0; i < SEM_THREADS; i++)
        t[i] = spawn(limit_main, c);
    for (int i = 0; i < SEM_THREADS; i++)
        join(t[i]);
    assert_int_equal(atomic_load(&c->errors), 0);
    assert_int_equal(atomic_load(&c->done), SEM_THREADS);
    assert_true(atomic_load(&c->max_inside) >= 1);
    assert_true(atomic_load(&c->max_inside) <= SEM_LIMIT);
}

static void
test_sem_limits_concurrency(void **state)
{
    (void)state;
    struct limit_ctx c = {0};
    assert_conc_ok(conc_sem_new(SEM_LIMIT, NULL, &c.sem));
    check_limit(&c);
    assert_int_equal(conc_sem_value(c.sem), SEM_LIMIT);
    conc_sem_free(c.sem);

    struct limit_ctx b = {0};
    assert_conc_ok(conc_bsem_new(SEM_LIMIT, NULL, &b.bsem));
    check_limit(&b);
    assert_int_equal(conc_bsem_value(b.bsem), SEM_LIMIT);
    conc_bsem_free(b.bsem);
}

struct sem_waiter_ctx {
    conc_sem *sem;
    conc_sem *started;
    atomic_int ok;
};

static void *
sem_waiter_main(void *p)
{
    struct sem_waiter_ctx *c = p;
    conc_sem_release(c->started, 1);
    if (conc_sem_acquire(c->sem, BOUND) == 0)
        atomic_fetch_add(&c->ok, 1);
    return NULL;
}

/* release(n) with n sleepers lets all of them through; one at a time, the
 * value never goes below 0. */
static void
test_sem_release_wakes_waiters(void **state)
{
    (void)state;
    struct sem_waiter_ctx c = {0};
    assert_conc_ok(conc_sem_new(0, NULL, &c.sem));
    assert_conc_ok(conc_sem_new(0, NULL, &c.started));
    pthread_t t[N_WAITERS];
    for (int i = 0; i < N_WAITERS; i++)
        t[i] = spawn(sem_waiter_main, &c);
    for (int i = 0; i < N_WAITERS; i++)
        assert_conc_ok(conc_sem_acquire(c.started, BOUND));
    assert_conc_ok(conc_sem_release(c.sem, 1));
    await_count(&c.ok, 1);
    assert_conc_ok(conc_sem_release(c.sem, N_WAITERS - 1));
    for (int i = 0; i < N_WAITERS; i++)
        join(t[i]);
    assert_int_equal(atomic_load(&c.ok), N_WAITERS);
    assert_int_equal(conc_sem_value(c.sem), 0);
    conc_sem_free(c.sem);
    conc_sem_free(c.started);
}

/* ---- Event -------------------------------------------------------------- */

static void
test_event_basic(void **state)
{
    (void)state;
    conc_event *ev;
    assert_conc_ok(conc_event_new(NULL, &ev));
    assert_int_equal(conc_event_is_set(ev), 0);
    assert_conc(conc_event_wait(ev, 0), CONC_ETIMEDOUT);
    assert_conc(conc_event_wait(ev, NAN), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_event_wait(ev, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    conc_event_set(ev);
    assert_int_equal(conc_event_is_set(ev), 1);
    conc_event_set(ev);
    assert_int_equal(conc_event_is_set(ev), 1);
    assert_conc_ok(conc_event_wait(ev, 0));
    assert_conc_ok(conc_event_wait(ev, CONC_FOREVER));
    assert_conc(conc_event_wait(ev, NAN), CONC_EINVAL);
    conc_event_clear(ev);
    assert_int_equal(conc_event_is_set(ev), 0);
    conc_event_clear(ev);
    assert_conc(conc_event_wait(ev, 0), CONC_ETIMEDOUT);
    conc_event_free(ev);
    conc_event_free(NULL);
}

struct event_ctx {
    conc_event *ev;
    conc_sem *started;
    int results[N_THREADS];
};

struct event_arg {
    struct event_ctx *ctx;
    int id;
};

static void *
event_waiter_main(void *p)
{
    struct event_arg *a = p;
    conc_sem_release(a->ctx->started, 1);
    a->ctx->results[a->id] = conc_event_wait(a->ctx->ev, BOUND);
    return NULL;
}

static int
event_has_sleepers(void *p)
{
    return conc__event_sleepers(p);
}

static void
test_event_wakes_all(void **state)
{
    (void)state;
    struct event_ctx c = {0};
    assert_conc_ok(conc_event_new(NULL, &c.ev));
    assert_conc_ok(conc_sem_new(0, NULL, &c.started));
    struct event_arg a[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        a[i] = (struct event_arg){&c, i};
        c.results[i] = 1;
        t[i] = spawn(event_waiter_main, &a[i]);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_conc_ok(conc_sem_acquire(c.started, BOUND));
    /* At least one went to sleep: set must wake it. */
    assert_true(conc_test_wait_until(event_has_sleepers, c.ev, BOUND));
    conc_event_set(c.ev);
    for (int i = 0; i < N_THREADS; i++) {
        join(t[i]);
        assert_conc_ok(c.results[i]);
    }
    assert_int_equal(conc__event_sleepers(c.ev), 0);
    conc_event_free(c.ev);
    conc_sem_free(c.started);
}

/* As in Python, a waiter woken by set succeeds even if the event was
 * cleared again before it ran. */
static void
test_event_set_then_clear(void **state)
{
    (void)state;
    struct event_ctx c = {0};
    assert_conc_ok(conc_event_new(NULL, &c.ev));
    assert_conc_ok(conc_sem_new(0, NULL, &c.started));
    struct event_arg a = {&c, 0};
    c.results[0] = 1;
    pthread_t t = spawn(event_waiter_main, &a);
    assert_true(conc_test_wait_until(event_has_sleepers, c.ev, BOUND));
    conc_event_set(c.ev);
    conc_event_clear(c.ev);
    join(t);
    assert_conc_ok(c.results[0]);
    assert_int_equal(conc_event_is_set(c.ev), 0);
    assert_conc_ok(conc_sem_acquire(c.started, 0));
    conc_event_free(c.ev);
    conc_sem_free(c.started);
}

/* ---- Barrier ------------------------------------------------------------ */

#define B_ROUNDS 50

struct barrier_ctx {
    conc_barrier *b;
    atomic_int actions;
    atomic_int errors;
    unsigned index[B_ROUNDS][N_THREADS]; /* each thread writes its column */
};

struct barrier_arg {
    struct barrier_ctx *ctx;
    int id;
};

/* Runs with the barrier's lock held, yet may read the barrier. */
static int
rounds_action(void *arg)
{
    struct barrier_ctx *c = arg;
    if (conc_barrier_n_waiting(c->b) != N_THREADS ||
        conc_barrier_broken(c->b) || conc_barrier_parties(c->b) != N_THREADS)
        atomic_fetch_add(&c->errors, 1);
    atomic_fetch_add(&c->actions, 1);
    return 0;
}

static void *
barrier_rounds_main(void *p)
{
    struct barrier_arg *a = p;
    struct barrier_ctx *c = a->ctx;
    for (int r = 0; r < B_ROUNDS; r++) {
        if (conc_barrier_wait(c->b, BOUND, &c->index[r][a->id]) != 0)
            atomic_fetch_add(&c->errors, 1);
        /* The action of this round ran before anyone was released. */
        if (atomic_load(&c->actions) < r + 1)
            atomic_fetch_add(&c->errors, 1);
    }
    return NULL;
}

/* Checks that each row of `index` holds 0..parties-1 once each. */
static void
check_indices(const unsigned *index, int rounds, int parties)
{
    for (int r = 0; r < rounds; r++) {
        unsigned seen = 0;
        for (int i = 0; i < parties; i++) {
            unsigned v = index[r * parties + i];
            assert_true(v < (unsigned)parties);
            seen |= 1u << v;
        }
        assert_int_equal(seen, (1u << parties) - 1);
    }
}

static void
test_barrier_rounds(void **state)
{
    (void)state;
    struct barrier_ctx c = {0};
    conc_barrier_opts o = {.action = rounds_action, .action_arg = &c};
    assert_conc_ok(conc_barrier_new(N_THREADS, &o, &c.b));
    assert_int_equal(conc_barrier_parties(c.b), N_THREADS);
    assert_int_equal(conc_barrier_n_waiting(c.b), 0);
    assert_int_equal(conc_barrier_broken(c.b), 0);
    struct barrier_arg a[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        a[i] = (struct barrier_arg){&c, i};
        t[i] = spawn(barrier_rounds_main, &a[i]);
    }
    for (int i = 0; i < N_THREADS; i++)
        join(t[i]);
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_int_equal(atomic_load(&c.actions), B_ROUNDS);
    check_indices(&c.index[0][0], B_ROUNDS, N_THREADS);
    assert_int_equal(conc_barrier_n_waiting(c.b), 0);
    assert_int_equal(conc_barrier_broken(c.b), 0);
    conc_barrier_free(c.b);
}

static void
test_barrier_errors(void **state)
{
    (void)state;
    conc_barrier *b;
    assert_conc(conc_barrier_new(0, NULL, &b), CONC_EINVAL);
    assert_conc_ok(conc_barrier_new(1, NULL, &b));
    unsigned index = 7;
    assert_conc(conc_barrier_wait(b, NAN, &index), CONC_EINVAL);
    assert_int_equal(index, 7);
    /* One party: every wait completes a round at once. */
    for (int i = 0; i < 3; i++) {
        assert_conc_ok(conc_barrier_wait(b, 0, &index));
        assert_int_equal(index, 0);
    }
    assert_conc_ok(conc_barrier_wait(b, CONC_FOREVER, NULL));
    conc_barrier_free(b);
    conc_barrier_free(NULL);
}

struct bwait_ctx {
    conc_barrier *b;
    double timeout;
    int result;
};

static void *
bwait_main(void *p)
{
    struct bwait_ctx *c = p;
    c->result = conc_barrier_wait(c->b, c->timeout, NULL);
    return NULL;
}

struct n_waiting_arg {
    conc_barrier *b;
    unsigned want;
};

static int
n_waiting_is(void *p)
{
    struct n_waiting_arg *a = p;
    return conc_barrier_n_waiting(a->b) == a->want;
}

static void
await_n_waiting(conc_barrier *b, unsigned want)
{
    struct n_waiting_arg a = {b, want};
    assert_true(conc_test_wait_until(n_waiting_is, &a, BOUND));
}

/* A full round of `n` threads on `b` succeeds. */
static void
check_round(conc_barrier *b, int n)
{
    struct bwait_ctx c[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < n; i++) {
        c[i] = (struct bwait_ctx){b, BOUND, 1};
        t[i] = spawn(bwait_main, &c[i]);
    }
    for (int i = 0; i < n; i++) {
        join(t[i]);
        assert_conc_ok(c[i].result);
    }
}

static void
test_barrier_abort(void **state)
{
    (void)state;
    conc_barrier *b;
    assert_conc_ok(conc_barrier_new(2, NULL, &b));
    struct bwait_ctx c = {b, BOUND, 1};
    pthread_t t = spawn(bwait_main, &c);
    await_n_waiting(b, 1);
    conc_barrier_abort(b);
    join(t);
    assert_conc(c.result, CONC_EBROKEN);
    assert_int_equal(conc_barrier_broken(b), 1);
    assert_int_equal(conc_barrier_n_waiting(b), 0);
    /* Broken stays broken until reset. */
    assert_conc(conc_barrier_wait(b, BOUND, NULL), CONC_EBROKEN);
    conc_barrier_reset(b);
    assert_int_equal(conc_barrier_broken(b), 0);
    check_round(b, 2);
    /* Abort with nobody waiting breaks the next round too. */
    conc_barrier_abort(b);
    assert_conc(conc_barrier_wait(b, 0, NULL), CONC_EBROKEN);
    conc_barrier_reset(b);
    check_round(b, 2);
    conc_barrier_free(b);
}

static void
test_barrier_reset_wakes_waiters(void **state)
{
    (void)state;
    conc_barrier *b;
    assert_conc_ok(conc_barrier_new(3, NULL, &b));
    struct bwait_ctx c[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i] = (struct bwait_ctx){b, BOUND, 1};
        t[i] = spawn(bwait_main, &c[i]);
    }
    await_n_waiting(b, 2);
    conc_barrier_reset(b);
    for (int i = 0; i < 2; i++) {
        join(t[i]);
        assert_conc(c[i].result, CONC_EBROKEN);
    }
    /* Usable again at once. */
    assert_int_equal(conc_barrier_broken(b), 0);
    assert_int_equal(conc_barrier_n_waiting(b), 0);
    check_round(b, 3);
    conc_barrier_free(b);
}

static void
test_barrier_timeout(void **state)
{
    (void)state;
    conc_barrier *b;
    assert_conc_ok(conc_barrier_new(2, NULL, &b));
    double t0 = conc_monotonic();
    assert_conc(conc_barrier_wait(b, 0.05, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(conc_barrier_broken(b), 1);
    conc_barrier_reset(b);
    assert_conc(conc_barrier_wait(b, 0, NULL), CONC_ETIMEDOUT);
    assert_int_equal(conc_barrier_broken(b), 1);
    conc_barrier_free(b);

    /* The other waiter of the round gets CONC_EBROKEN. */
    assert_conc_ok(conc_barrier_new(3, NULL, &b));
    struct bwait_ctx c = {b, BOUND, 1};
    pthread_t t = spawn(bwait_main, &c);
    await_n_waiting(b, 1);
    t0 = conc_monotonic();
    assert_conc(conc_barrier_wait(b, 0.05, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    join(t);
    assert_conc(c.result, CONC_EBROKEN);
    assert_int_equal(conc_barrier_broken(b), 1);
    conc_barrier_free(b);
}

static int
failing_action(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return -1;
}

static void
test_barrier_action_fails(void **state)
{
    (void)state;
    atomic_int ran = 0;
    conc_barrier *b;
    conc_barrier_opts o = {.action = failing_action, .action_arg = &ran};
    assert_conc_ok(conc_barrier_new(2, &o, &b));
    struct bwait_ctx c = {b, BOUND, 1};
    pthread_t t = spawn(bwait_main, &c);
    await_n_waiting(b, 1);
    assert_conc(conc_barrier_wait(b, BOUND, NULL), CONC_EBROKEN);
    join(t);
    assert_conc(c.result, CONC_EBROKEN);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(conc_barrier_broken(b), 1);
    conc_barrier_free(b);
}

/* ---- Allocation failures ------------------------------------------------ */

static void
test_alloc_failure(void **state)
{
    (void)state;
    conc_lock *l = NULL;
    conc_rlock *r = NULL;
    conc_cond *c = NULL;
    conc_sem *s = NULL;
    conc_bsem *bs = NULL;
    conc_event *e = NULL;
    conc_barrier *b = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_lock_new(NULL, &l), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_rlock_new(NULL, &r), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_cond_new(NULL, &c), CONC_ENOMEM);
    conc_test_fail_alloc_after(2); /* the condition's own RLock */
    assert_conc(conc_cond_new(NULL, &c), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_sem_new(1, NULL, &s), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_bsem_new(1, NULL, &bs), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_event_new(NULL, &e), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_barrier_new(2, NULL, &b), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_null(l);
    assert_null(r);
    assert_null(c);
    assert_null(s);
    assert_null(bs);
    assert_null(e);
    assert_null(b);
}

/* A full arena makes every shared _new fail, and a shared wait that needs
 * a waiter record. */
static void
test_arena_full(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 16, &a));
    conc_sync_opts so = {.arena = a};
    conc_cond_opts co = {.arena = a};
    conc_barrier_opts bo = {.arena = a};
    conc_cond *c;
    assert_conc_ok(conc_cond_new(&co, &c));
    void *p;
    while (conc_arena_alloc(a, 64, &p) == 0)
        ;
    conc_lock *l;
    conc_rlock *r;
    conc_cond *c2;
    conc_sem *s;
    conc_bsem *bs;
    conc_event *e;
    conc_barrier *b;
    assert_conc(conc_lock_new(&so, &l), CONC_ENOMEM);
    assert_conc(conc_rlock_new(&so, &r), CONC_ENOMEM);
    assert_conc(conc_cond_new(&co, &c2), CONC_ENOMEM);
    assert_conc(conc_sem_new(1, &so, &s), CONC_ENOMEM);
    assert_conc(conc_bsem_new(1, &so, &bs), CONC_ENOMEM);
    assert_conc(conc_event_new(&so, &e), CONC_ENOMEM);
    assert_conc(conc_barrier_new(2, &bo, &b), CONC_ENOMEM);
    assert_conc_ok(conc_cond_acquire(c, CONC_FOREVER));
    assert_conc(conc_cond_wait(c, 1.0), CONC_ENOMEM);
    /* A zero timeout needs no record. */
    assert_conc(conc_cond_wait(c, 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_cond_release(c));
    conc_arena_free(a);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_lock_basic),
        conc_unit_test(test_lock_timeout),
        conc_unit_test(test_lock_released_by_other_thread),
        conc_unit_test(test_lock_contended),
        conc_unit_test(test_rlock_reentrant),
        conc_unit_test(test_rlock_overflow),
        conc_unit_test(test_rlock_other_thread),
        conc_unit_test(test_rlock_contended),
        conc_unit_test(test_cond_new_errors),
        conc_unit_test(test_cond_misuse),
        conc_unit_test(test_cond_wait_timeout),
        conc_unit_test(test_cond_notify_one_of_three),
        conc_unit_test(test_cond_fifo),
        conc_unit_test(test_cond_wait_for),
        conc_unit_test(test_sem_basic),
        conc_unit_test(test_sem_timeout),
        conc_unit_test(test_bsem_over_release),
        conc_unit_test(test_sem_limits_concurrency),
        conc_unit_test(test_sem_release_wakes_waiters),
        conc_unit_test(test_event_basic),
        conc_unit_test(test_event_wakes_all),
        conc_unit_test(test_event_set_then_clear),
        conc_unit_test(test_barrier_rounds),
        conc_unit_test(test_barrier_errors),
        conc_unit_test(test_barrier_abort),
        conc_unit_test(test_barrier_reset_wakes_waiters),
        conc_unit_test(test_barrier_timeout),
        conc_unit_test(test_barrier_action_fails),
        conc_unit_test(test_alloc_failure),
        conc_unit_test(test_arena_full),
    };
    return conc_run_tests(tests);
}
