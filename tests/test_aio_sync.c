/* asyncio's queues and synchronization primitives, loop-local: Queue,
 * LifoQueue, PriorityQueue, Lock, Event, Condition, Semaphore,
 * BoundedSemaphore and Barrier. Each behaviour of aio_sync.h has its test:
 * FIFO order, timeouts, cancellation at every wait, the hand-over of a
 * wake-up whose waiter was cancelled before it ran, shutdown, join and
 * task_done counts, and the contract errors.
 *
 * The tasks of one loop run in a fixed order, so a test steps the loop
 * (a zero-length conc_aio_sleep, as asyncio code awaits a zero delay) to
 * let the other tasks reach their waits; no test sleeps to wait for
 * another. Every wait a test expects to end has a bounded timeout, so a
 * lost wake-up fails the test instead of hanging it. */
#include <math.h>
#include <string.h>

#include "conc_test.h"

#define BOUND   5.0  /* seconds: a wait that must end well before this */
#define PENDING 1    /* a child's rc before it has returned */
#define STEPS   4    /* loop turns that let woken tasks run */
#define SHORT   0.02 /* seconds: a timeout that is meant to run out */

struct ctx {
    conc_aio_lock *lock;
    conc_aio_event *ev;
    conc_aio_cond *cond;
    conc_aio_sem *sem;
    conc_aio_bsem *bsem;
    conc_aio_barrier *bar;
    conc_aio_queue *q;
    double timeout;   /* for the children's waits */
    int rc[16];       /* each child's result, by id */
    unsigned idx[16]; /* barrier indexes */
    void *got[16];    /* queue items */
    int order[16];    /* ids in the order their wait ended well */
    int n;
    int flag; /* a condition's predicate state */
};

struct child {
    struct ctx *c;
    int id;
};

/* Starts fn as a task with (c, id). Returns a new reference. */
static conc_future *
spawn(conc_task_fn fn, struct ctx *c, int id)
{
    struct child ch = {c, id};
    conc_future *f;
    c->rc[id] = PENDING;
    assert_conc_ok(conc_aio_create_task(fn, &ch, sizeof ch, NULL, &f));
    return f;
}

/* Waits for a child (bounded) and frees it. */
static void
finish(conc_future *f)
{
    assert_conc_ok(conc_aio_wait_for(f, BOUND));
    conc_future_free(f);
}

/* Lets the other tasks run for a few loop turns. */
static void
step(void)
{
    for (int i = 0; i < STEPS; i++)
        assert_conc_ok(conc_aio_sleep(0));
}

/* Starts two children of fn, ids id and id + 1, in *a and *b, and lets
 * them reach their waits. */
static void
spawn_two(conc_task_fn fn, struct ctx *c, int id, conc_future **a,
          conc_future **b)
{
    *a = spawn(fn, c, id);
    *b = spawn(fn, c, id + 1);
    step();
}

/* Finishes a (id), which was cancelled, and b (id + 1), which got what
 * it waited for. */
static void
finish_handed_over(struct ctx *c, conc_future *a, conc_future *b, int id)
{
    finish(a);
    finish(b);
    assert_conc(c->rc[id], CONC_ECANCELED);
    assert_conc_ok(c->rc[id + 1]);
}

static void
record(struct ctx *c, int id)
{
    c->order[c->n++] = id;
}

static void
assert_order(const struct ctx *c, const int *want, int n)
{
    assert_int_equal(c->n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(c->order[i], want[i]);
}

/* Runs main in a new loop (asyncio.run) and checks it returned 0. */
static void
run(conc_task_fn main)
{
    assert_conc_ok(conc_aio_run(main, NULL, 0, NULL));
}

#define CHILD(name)                                                            \
    static int name(const void *arg, size_t len, conc_buf *result)

#define CHILD_ARGS                                                             \
    (void)len, (void)result;                                                   \
    const struct child *ch = arg;                                              \
    struct ctx *c = ch->c;                                                     \
    int id = ch->id

/* ---- Lock -------------------------------------------------------------- */

/* Acquires, records itself, releases. */
CHILD(lock_waiter)
{
    CHILD_ARGS;
    c->rc[id] = conc_aio_lock_acquire(c->lock, c->timeout);
    if (c->rc[id] == 0) {
        record(c, id);
        assert_conc_ok(conc_aio_lock_release(c->lock));
    }
    return 0;
}

CHILD(lock_basic_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_lock_new(&c.lock));
    assert_int_equal(conc_aio_lock_locked(c.lock), 0);
    assert_conc(conc_aio_lock_release(c.lock), CONC_ENOTLOCKED);
    assert_conc_ok(conc_aio_lock_acquire(c.lock, 0));
    assert_int_equal(conc_aio_lock_locked(c.lock), 1);
    assert_conc(conc_aio_lock_acquire(c.lock, 0), CONC_ETIMEDOUT);
    assert_conc(conc_aio_lock_acquire(c.lock, -5), CONC_ETIMEDOUT);
    assert_conc(conc_aio_lock_acquire(c.lock, NAN), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_aio_lock_acquire(c.lock, SHORT), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    /* Waiters take it in the order they came. */
    conc_future *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = spawn(lock_waiter, &c, i);
    step();
    assert_int_equal(c.n, 0);
    assert_conc_ok(conc_aio_lock_release(c.lock));
    for (int i = 0; i < 3; i++)
        finish(f[i]);
    int want[3] = {0, 1, 2};
    assert_order(&c, want, 3);
    assert_int_equal(conc_aio_lock_locked(c.lock), 0);
    conc_aio_lock_free(c.lock);
    return 0;
}

static void
test_lock_basic_fifo_timeout(void **state)
{
    (void)state;
    run(lock_basic_main);
}

/* The first waiter is woken by release and cancelled before it runs: the
 * lock passes to the next waiter (asyncio's _wake_up_first on
 * CancelledError). */
CHILD(lock_handover_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_lock_new(&c.lock));
    assert_conc_ok(conc_aio_lock_acquire(c.lock, CONC_FOREVER));
    conc_future *a, *b;
    spawn_two(lock_waiter, &c, 0, &a, &b);
    assert_conc_ok(conc_aio_lock_release(c.lock)); /* wakes a */
    assert_int_equal(conc_aio_task_cancel(a, NULL), 1);
    finish_handed_over(&c, a, b, 0);
    int want[1] = {1};
    assert_order(&c, want, 1);
    assert_int_equal(conc_aio_lock_locked(c.lock), 0);
    conc_aio_lock_free(c.lock);
    return 0;
}

static void
test_lock_cancel_passes_wakeup(void **state)
{
    (void)state;
    run(lock_handover_main);
}

/* A waiter cancelled while it waits returns CONC_ECANCELED; the lock and
 * the waiters behind it are unaffected, and a cancelled first waiter does
 * not stall them. */
CHILD(lock_cancel_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_lock_new(&c.lock));
    assert_conc_ok(conc_aio_lock_acquire(c.lock, CONC_FOREVER));
    conc_future *a, *b;
    spawn_two(lock_waiter, &c, 0, &a, &b);
    conc_aio_task_cancel(a, NULL);
    assert_conc_ok(conc_aio_lock_release(c.lock));
    finish_handed_over(&c, a, b, 0);
    /* A task cancelled before it waits still takes a free lock at once:
     * the fast path does not suspend (asyncio's). */
    conc_future *self;
    assert_conc_ok(conc_aio_current_task(&self));
    conc_aio_task_cancel(self, NULL);
    assert_conc_ok(conc_aio_lock_acquire(c.lock, CONC_FOREVER));
    assert_conc(conc_aio_sleep(0), CONC_ECANCELED);
    conc_aio_task_uncancel(self);
    assert_conc_ok(conc_aio_lock_release(c.lock));
    conc_aio_lock_free(c.lock);
    return 0;
}

static void
test_lock_cancel_while_waiting(void **state)
{
    (void)state;
    run(lock_cancel_main);
}

/* ---- Loop binding and callers ------------------------------------------ */

static void
release_cb(void *arg)
{
    struct ctx *c = arg;
    c->rc[7] = conc_aio_lock_release(c->lock);
    c->rc[6] = conc_aio_lock_acquire(c->lock, 0); /* not a task */
}

CHILD(bind_main)
{
    (void)len, (void)result;
    struct ctx *c = *(struct ctx *const *)arg;
    assert_conc_ok(conc_aio_lock_acquire(c->lock, 0));
    /* A callback of the loop may release (it never waits), not acquire. */
    conc_aio_loop *loop;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(conc_aio_call_soon(loop, release_cb, c, NULL));
    step();
    assert_conc_ok(c->rc[7]);
    assert_conc(c->rc[6], CONC_ESTATE);
    assert_int_equal(conc_aio_lock_locked(c->lock), 0);
    /* The event and the queue are bound by their first use too. */
    assert_conc_ok(conc_aio_event_clear(c->ev));
    void *item;
    assert_conc(conc_aio_queue_get_nowait(c->q, &item), CONC_EEMPTY);
    return 0;
}

CHILD(other_loop_main)
{
    (void)len, (void)result;
    struct ctx *c = *(struct ctx *const *)arg;
    assert_conc(conc_aio_lock_acquire(c->lock, 0), CONC_ESTATE);
    assert_conc(conc_aio_lock_release(c->lock), CONC_ESTATE);
    assert_conc(conc_aio_event_set(c->ev), CONC_ESTATE);
    assert_conc(conc_aio_event_wait(c->ev, 0), CONC_ESTATE);
    void *item;
    assert_conc(conc_aio_queue_get_nowait(c->q, &item), CONC_ESTATE);
    assert_conc(conc_aio_queue_put(c->q, NULL, 0), CONC_ESTATE);
    return 0;
}

static void
test_bound_to_one_loop(void **state)
{
    (void)state;
    struct ctx c = {0}, *pc = &c;
    assert_conc_ok(conc_aio_lock_new(&c.lock));
    assert_conc_ok(conc_aio_event_new(&c.ev));
    assert_conc_ok(conc_aio_queue_new(NULL, &c.q));
    /* Outside any loop: asyncio's RuntimeError. */
    assert_conc(conc_aio_lock_acquire(c.lock, 0), CONC_ESTATE);
    assert_conc(conc_aio_lock_release(c.lock), CONC_ESTATE);
    assert_conc(conc_aio_event_wait(c.ev, 0), CONC_ESTATE);
    assert_conc(conc_aio_queue_put_nowait(c.q, NULL), CONC_ESTATE);
    /* The first loop to use them owns them; it stays alive meanwhile so
     * that the second loop cannot reuse its address. */
    conc_aio_loop *first;
    conc_future *f;
    assert_conc_ok(conc_aio_loop_new(NULL, &first));
    assert_conc_ok(
        conc_aio_loop_create_task(first, bind_main, &pc, sizeof pc, NULL, &f));
    assert_conc_ok(conc_aio_loop_run_until_complete(first, f));
    conc_future_free(f);
    assert_conc_ok(conc_aio_run(other_loop_main, &pc, sizeof pc, NULL));
    conc_aio_loop_free(first);
    conc_aio_lock_free(c.lock);
    conc_aio_event_free(c.ev);
    conc_aio_queue_free(c.q);
}

/* ---- Event ------------------------------------------------------------- */

CHILD(event_waiter)
{
    CHILD_ARGS;
    c->rc[id] = conc_aio_event_wait(c->ev, c->timeout);
    if (c->rc[id] == 0)
        record(c, id);
    return 0;
}

CHILD(event_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_event_new(&c.ev));
    assert_int_equal(conc_aio_event_is_set(c.ev), 0);
    assert_conc(conc_aio_event_wait(c.ev, 0), CONC_ETIMEDOUT);
    assert_conc(conc_aio_event_wait(c.ev, NAN), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_aio_event_wait(c.ev, SHORT), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    conc_future *f[4];
    for (int i = 0; i < 4; i++)
        f[i] = spawn(event_waiter, &c, i);
    step();
    conc_aio_task_cancel(f[3], NULL); /* cancellation while it waits */
    step();
    assert_conc(c.rc[3], CONC_ECANCELED);
    /* set wakes every waiter; cleared before they run, they still see
     * their wake-up (asyncio's). */
    assert_conc_ok(conc_aio_event_set(c.ev));
    assert_conc_ok(conc_aio_event_clear(c.ev));
    for (int i = 0; i < 4; i++)
        finish(f[i]);
    int want[3] = {0, 1, 2};
    assert_order(&c, want, 3);
    assert_int_equal(conc_aio_event_is_set(c.ev), 0);
    assert_conc_ok(conc_aio_event_set(c.ev));
    assert_conc_ok(conc_aio_event_wait(c.ev, 0)); /* set: at once */
    conc_aio_event_free(c.ev);
    return 0;
}

static void
test_event(void **state)
{
    (void)state;
    run(event_main);
}

/* ---- Condition --------------------------------------------------------- */

/* Waits once under the lock; records itself if notified. */
CHILD(cond_waiter)
{
    CHILD_ARGS;
    assert_conc_ok(conc_aio_cond_acquire(c->cond, BOUND));
    c->rc[id] = conc_aio_cond_wait(c->cond, c->timeout);
    assert_int_equal(conc_aio_cond_locked(c->cond), 1); /* held again */
    if (c->rc[id] == 0)
        record(c, id);
    assert_conc_ok(conc_aio_cond_release(c->cond));
    return 0;
}

static int
flag_is_set(void *arg)
{
    return ((struct ctx *)arg)->flag;
}

CHILD(cond_pred_waiter)
{
    CHILD_ARGS;
    assert_conc_ok(conc_aio_cond_acquire(c->cond, BOUND));
    c->rc[id] = conc_aio_cond_wait_for(c->cond, flag_is_set, c, c->timeout);
    assert_int_equal(conc_aio_cond_locked(c->cond), 1);
    if (c->rc[id] == 0)
        record(c, id);
    assert_conc_ok(conc_aio_cond_release(c->cond));
    return 0;
}

CHILD(cond_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_cond_new(NULL, &c.cond));
    /* Waiting or notifying without the lock: RuntimeError. */
    assert_conc(conc_aio_cond_wait(c.cond, 0), CONC_ENOTOWNER);
    assert_conc(conc_aio_cond_notify(c.cond, 1), CONC_ENOTOWNER);
    assert_conc(conc_aio_cond_notify_all(c.cond), CONC_ENOTOWNER);
    assert_conc_ok(conc_aio_cond_acquire(c.cond, 0));
    assert_conc(conc_aio_cond_wait(c.cond, NAN), CONC_EINVAL);
    assert_conc(conc_aio_cond_wait(c.cond, 0), CONC_ETIMEDOUT);
    double t0 = conc_monotonic();
    assert_conc(conc_aio_cond_wait(c.cond, SHORT), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    assert_int_equal(conc_aio_cond_locked(c.cond), 1);
    assert_conc_ok(conc_aio_cond_release(c.cond));
    conc_future *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = spawn(cond_waiter, &c, i);
    step();
    /* notify(1) wakes the oldest; notify(0) none; notify_all the rest. */
    assert_conc_ok(conc_aio_cond_acquire(c.cond, BOUND));
    assert_conc_ok(conc_aio_cond_notify(c.cond, 0));
    assert_conc_ok(conc_aio_cond_notify(c.cond, 1));
    assert_conc_ok(conc_aio_cond_release(c.cond));
    step();
    int want1[1] = {0};
    assert_order(&c, want1, 1);
    assert_conc_ok(conc_aio_cond_acquire(c.cond, BOUND));
    assert_conc_ok(conc_aio_cond_notify_all(c.cond));
    assert_conc_ok(conc_aio_cond_release(c.cond));
    for (int i = 0; i < 3; i++)
        finish(f[i]);
    int want[3] = {0, 1, 2};
    assert_order(&c, want, 3);
    conc_aio_cond_free(c.cond);
    return 0;
}

static void
test_cond_wait_notify(void **state)
{
    (void)state;
    run(cond_main);
}

CHILD(cond_wait_for_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    conc_aio_lock *lock;
    assert_conc_ok(conc_aio_lock_new(&lock));
    assert_conc_ok(
        conc_aio_cond_new(&(conc_aio_cond_opts){.lock = lock}, &c.cond));
    assert_conc_ok(conc_aio_cond_acquire(c.cond, 0));
    assert_int_equal(conc_aio_lock_locked(lock), 1); /* the borrowed lock */
    assert_conc(conc_aio_cond_wait_for(c.cond, NULL, NULL, 0), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_aio_cond_wait_for(c.cond, flag_is_set, &c, SHORT),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    assert_conc_ok(conc_aio_cond_release(c.cond));
    conc_future *f = spawn(cond_pred_waiter, &c, 0);
    step();
    /* A notify while the predicate is false: it waits again. */
    assert_conc_ok(conc_aio_cond_acquire(c.cond, BOUND));
    assert_conc_ok(conc_aio_cond_notify_all(c.cond));
    assert_conc_ok(conc_aio_cond_release(c.cond));
    step();
    assert_int_equal(c.rc[0], PENDING);
    assert_conc_ok(conc_aio_cond_acquire(c.cond, BOUND));
    c.flag = 1;
    assert_conc_ok(conc_aio_cond_notify(c.cond, 1));
    assert_conc_ok(conc_aio_cond_release(c.cond));
    finish(f);
    assert_conc_ok(c.rc[0]);
    /* True at once: no wait at all. */
    assert_conc_ok(conc_aio_cond_acquire(c.cond, 0));
    assert_conc_ok(conc_aio_cond_wait_for(c.cond, flag_is_set, &c, 0));
    assert_conc_ok(conc_aio_cond_release(c.cond));
    conc_aio_cond_free(c.cond);
    conc_aio_lock_free(lock);
    return 0;
}

static void
test_cond_wait_for(void **state)
{
    (void)state;
    run(cond_wait_for_main);
}

/* A notified waiter cancelled before it runs: it still returns with the
 * lock held, reports CONC_ECANCELED, and notifies the next waiter in its
 * place, so the notify is not lost. A waiter cancelled while it takes the
 * lock again also reports the cancellation once it holds the lock. */
CHILD(cond_cancel_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_cond_new(NULL, &c.cond));
    conc_future *a, *b;
    spawn_two(cond_waiter, &c, 0, &a, &b);
    assert_conc_ok(conc_aio_cond_acquire(c.cond, BOUND));
    assert_conc_ok(conc_aio_cond_notify(c.cond, 1)); /* for a */
    assert_int_equal(conc_aio_task_cancel(a, NULL), 1);
    assert_conc_ok(conc_aio_cond_release(c.cond));
    finish_handed_over(&c, a, b, 0);
    /* Cancelled while re-acquiring: notified, then the lock is held by
     * this task when the cancellation comes. */
    conc_future *d = spawn(cond_waiter, &c, 2);
    step();
    assert_conc_ok(conc_aio_cond_acquire(c.cond, BOUND));
    assert_conc_ok(conc_aio_cond_notify(c.cond, 1));
    step(); /* d now waits for the lock */
    assert_int_equal(c.rc[2], PENDING);
    conc_aio_task_cancel(d, NULL);
    step();
    assert_int_equal(c.rc[2], PENDING); /* the lock is still ours */
    assert_conc_ok(conc_aio_cond_release(c.cond));
    finish(d);
    assert_conc(c.rc[2], CONC_ECANCELED);
    assert_int_equal(conc_aio_cond_locked(c.cond), 0);
    conc_aio_cond_free(c.cond);
    return 0;
}

static void
test_cond_cancel(void **state)
{
    (void)state;
    run(cond_cancel_main);
}

/* ---- Semaphore and BoundedSemaphore ------------------------------------ */

/* Takes a unit and keeps it (records itself). */
CHILD(sem_waiter)
{
    CHILD_ARGS;
    c->rc[id] = c->sem ? conc_aio_sem_acquire(c->sem, c->timeout)
                       : conc_aio_bsem_acquire(c->bsem, c->timeout);
    if (c->rc[id] == 0)
        record(c, id);
    return 0;
}

CHILD(sem_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc(conc_aio_sem_new(1u + INT32_MAX, &c.sem), CONC_EINVAL);
    assert_conc_ok(conc_aio_sem_new(2, &c.sem));
    assert_int_equal(conc_aio_sem_value(c.sem), 2);
    assert_int_equal(conc_aio_sem_locked(c.sem), 0);
    assert_conc_ok(conc_aio_sem_acquire(c.sem, 0));
    assert_conc_ok(conc_aio_sem_acquire(c.sem, 0));
    assert_int_equal(conc_aio_sem_locked(c.sem), 1);
    assert_conc(conc_aio_sem_acquire(c.sem, 0), CONC_ETIMEDOUT);
    assert_conc(conc_aio_sem_acquire(c.sem, NAN), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_aio_sem_acquire(c.sem, SHORT), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    conc_future *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = spawn(sem_waiter, &c, i);
    step();
    /* A unit released goes to the oldest waiter, and a newcomer cannot
     * overtake it even though the value is briefly above 0. */
    assert_conc_ok(conc_aio_sem_release(c.sem));
    assert_int_equal(conc_aio_sem_value(c.sem), 0);
    assert_conc(conc_aio_sem_acquire(c.sem, 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_aio_sem_release(c.sem));
    assert_conc_ok(conc_aio_sem_release(c.sem));
    for (int i = 0; i < 3; i++)
        finish(f[i]);
    int want[3] = {0, 1, 2};
    assert_order(&c, want, 3);
    /* An unbounded semaphore may rise above its initial value. */
    for (int i = 0; i < 3; i++)
        assert_conc_ok(conc_aio_sem_release(c.sem));
    assert_int_equal(conc_aio_sem_value(c.sem), 3);
    conc_aio_sem_free(c.sem);
    return 0;
}

static void
test_sem(void **state)
{
    (void)state;
    run(sem_main);
}

/* A woken waiter cancelled before it runs gives its unit to the next
 * waiter (asyncio 3.13's `self._value += 1` and wake-up loop); a waiter
 * cancelled while it waits leaves the count as it was. */
CHILD(sem_handover_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_sem_new(0, &c.sem));
    conc_future *a = spawn(sem_waiter, &c, 0);
    conc_future *b = spawn(sem_waiter, &c, 1);
    conc_future *d = spawn(sem_waiter, &c, 2);
    step();
    conc_aio_task_cancel(d, NULL); /* not woken: nothing to give back */
    step();
    assert_conc(c.rc[2], CONC_ECANCELED);
    assert_conc_ok(conc_aio_sem_release(c.sem)); /* the unit goes to a */
    assert_int_equal(conc_aio_task_cancel(a, NULL), 1);
    finish(a);
    finish(b);
    finish(d);
    assert_conc(c.rc[0], CONC_ECANCELED);
    assert_conc_ok(c.rc[1]);
    assert_int_equal(conc_aio_sem_value(c.sem), 0);
    conc_aio_sem_free(c.sem);
    return 0;
}

static void
test_sem_cancel_passes_unit(void **state)
{
    (void)state;
    run(sem_handover_main);
}

CHILD(bsem_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_bsem_new(1, &c.bsem));
    assert_conc(conc_aio_bsem_release(c.bsem), CONC_EVALUE);
    assert_int_equal(conc_aio_bsem_value(c.bsem), 1);
    assert_conc_ok(conc_aio_bsem_acquire(c.bsem, 0));
    assert_int_equal(conc_aio_bsem_locked(c.bsem), 1);
    conc_future *f = spawn(sem_waiter, &c, 0);
    step();
    /* The unit is handed to f at once: one more release is allowed. */
    assert_conc_ok(conc_aio_bsem_release(c.bsem));
    assert_int_equal(conc_aio_bsem_value(c.bsem), 0);
    assert_conc_ok(conc_aio_bsem_release(c.bsem));
    finish(f);
    assert_conc_ok(c.rc[0]);
    assert_conc(conc_aio_bsem_release(c.bsem), CONC_EVALUE);
    assert_int_equal(conc_aio_bsem_value(c.bsem), 1);
    conc_aio_bsem_free(c.bsem);
    return 0;
}

static void
test_bsem_released_too_often(void **state)
{
    (void)state;
    run(bsem_main);
}

/* ---- Barrier ----------------------------------------------------------- */

CHILD(barrier_waiter)
{
    CHILD_ARGS;
    c->rc[id] = conc_aio_barrier_wait(c->bar, c->timeout, &c->idx[id]);
    if (c->rc[id] == 0)
        record(c, id);
    return 0;
}

CHILD(barrier_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc(conc_aio_barrier_new(0, &c.bar), CONC_EINVAL);
    assert_conc_ok(conc_aio_barrier_new(3, &c.bar));
    assert_int_equal(conc_aio_barrier_parties(c.bar), 3);
    assert_conc(conc_aio_barrier_wait(c.bar, NAN, NULL), CONC_EINVAL);
    for (int round = 0; round < 2; round++) {
        c.n = 0;
        conc_future *f[2];
        for (int i = 0; i < 2; i++)
            f[i] = spawn(barrier_waiter, &c, i);
        step();
        assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 2);
        unsigned mine = 99;
        assert_conc_ok(conc_aio_barrier_wait(c.bar, BOUND, &mine));
        for (int i = 0; i < 2; i++)
            finish(f[i]);
        assert_int_equal(c.n, 2);
        /* Distinct indexes 0..2, the last arrival's is parties-1. */
        assert_int_equal(mine, 2);
        assert_int_equal(c.idx[0] + c.idx[1], 1);
        assert_int_not_equal(c.idx[0], c.idx[1]);
        assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 0);
    }
    /* A waiter that times out leaves without breaking the barrier. */
    double t0 = conc_monotonic();
    assert_conc(conc_aio_barrier_wait(c.bar, SHORT, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    assert_conc(conc_aio_barrier_wait(c.bar, 0, NULL), CONC_ETIMEDOUT);
    assert_int_equal(conc_aio_barrier_broken(c.bar), 0);
    assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 0);
    conc_aio_barrier_free(c.bar);
    return 0;
}

static void
test_barrier(void **state)
{
    (void)state;
    run(barrier_main);
}

CHILD(barrier_break_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_barrier_new(3, &c.bar));
    /* Cancelled while waiting: it no longer counts, nothing breaks. */
    conc_future *a, *b;
    spawn_two(barrier_waiter, &c, 0, &a, &b);
    assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 2);
    conc_aio_task_cancel(a, NULL);
    finish(a);
    assert_conc(c.rc[0], CONC_ECANCELED);
    assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 1);
    assert_int_equal(conc_aio_barrier_broken(c.bar), 0);
    /* reset: the waiter gets BrokenBarrierError; the barrier fills again. */
    assert_conc_ok(conc_aio_barrier_reset(c.bar));
    finish(b);
    assert_conc(c.rc[1], CONC_EBROKEN);
    assert_int_equal(conc_aio_barrier_broken(c.bar), 0);
    assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 0);
    /* abort: waiting and later waiters get it, until reset. */
    a = spawn(barrier_waiter, &c, 2);
    step();
    assert_conc_ok(conc_aio_barrier_abort(c.bar));
    finish(a);
    assert_conc(c.rc[2], CONC_EBROKEN);
    assert_int_equal(conc_aio_barrier_broken(c.bar), 1);
    assert_conc(conc_aio_barrier_wait(c.bar, BOUND, NULL), CONC_EBROKEN);
    assert_conc_ok(conc_aio_barrier_reset(c.bar));
    assert_int_equal(conc_aio_barrier_broken(c.bar), 0);
    conc_aio_barrier_free(c.bar);
    return 0;
}

static void
test_barrier_cancel_reset_abort(void **state)
{
    (void)state;
    run(barrier_break_main);
}

/* ---- Queues ------------------------------------------------------------ */

CHILD(getter)
{
    CHILD_ARGS;
    c->rc[id] = conc_aio_queue_get(c->q, c->timeout, &c->got[id]);
    if (c->rc[id] == 0)
        record(c, id);
    return 0;
}

/* Puts the item (intptr_t)(id + 100). */
CHILD(putter)
{
    CHILD_ARGS;
    c->rc[id] =
        conc_aio_queue_put(c->q, (void *)(intptr_t)(id + 100), c->timeout);
    if (c->rc[id] == 0)
        record(c, id);
    return 0;
}

static intptr_t
get_now(conc_aio_queue *q)
{
    void *item = (void *)-1;
    assert_conc_ok(conc_aio_queue_get_nowait(q, &item));
    return (intptr_t)item;
}

static void
put_ints(conc_aio_queue *q, const int *v, int n)
{
    for (int i = 0; i < n; i++)
        assert_conc_ok(conc_aio_queue_put_nowait(q, (void *)(intptr_t)v[i]));
}

static int
by_value(void *arg, const void *a, const void *b)
{
    int *calls = arg;
    ++*calls;
    return (intptr_t)a < (intptr_t)b ? -1 : (intptr_t)a > (intptr_t)b;
}

CHILD(queue_kinds_main)
{
    (void)arg, (void)len, (void)result;
    int v[5] = {3, 1, 4, 1, 5};
    conc_aio_queue *q;
    assert_conc_ok(conc_aio_queue_new(NULL, &q)); /* FIFO */
    put_ints(q, v, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(get_now(q), v[i]);
    conc_aio_queue_free(q);
    assert_conc_ok(conc_aio_queue_new(
        &(conc_aio_queue_opts){.kind = CONC_QUEUE_LIFO}, &q));
    put_ints(q, v, 5);
    for (int i = 4; i >= 0; i--)
        assert_int_equal(get_now(q), v[i]);
    assert_conc(conc_aio_queue_put_priority(q, NULL, 1, 0), CONC_EINVAL);
    conc_aio_queue_free(q);
    /* Integer priorities: lowest first, equal ones in arrival order. */
    assert_conc_ok(conc_aio_queue_new(
        &(conc_aio_queue_opts){.kind = CONC_QUEUE_PRIORITY}, &q));
    int64_t prio[5] = {2, 0, 2, 1, 0};
    for (int i = 0; i < 5; i++)
        assert_conc_ok(
            conc_aio_queue_put_priority(q, (void *)(intptr_t)i, prio[i], 0));
    int want[5] = {1, 4, 3, 0, 2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(get_now(q), want[i]);
    conc_aio_queue_free(q);
    /* A comparison function orders items of equal priority. */
    int calls = 0;
    assert_conc_ok(conc_aio_queue_new(
        &(conc_aio_queue_opts){
            .kind = CONC_QUEUE_PRIORITY, .cmp = by_value, .cmp_arg = &calls},
        &q));
    put_ints(q, v, 5);
    int sorted[5] = {1, 1, 3, 4, 5};
    for (int i = 0; i < 5; i++)
        assert_int_equal(get_now(q), sorted[i]);
    assert_true(calls > 0);
    conc_aio_queue_free(q);
    assert_conc(conc_aio_queue_new(&(conc_aio_queue_opts){.cmp = by_value}, &q),
                CONC_EINVAL);
    assert_conc(conc_aio_queue_new(&(conc_aio_queue_opts){.kind = 42}, &q),
                CONC_EINVAL);
    return 0;
}

static void
test_queue_kinds(void **state)
{
    (void)state;
    run(queue_kinds_main);
}

CHILD(queue_bounded_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.maxsize = 2}, &c.q));
    assert_int_equal(conc_aio_queue_maxsize(c.q), 2);
    assert_int_equal(conc_aio_queue_empty(c.q), 1);
    void *item = (void *)7;
    assert_conc(conc_aio_queue_get_nowait(c.q, &item), CONC_EEMPTY);
    assert_conc(conc_aio_queue_get(c.q, 0, &item), CONC_EEMPTY);
    assert_ptr_equal(item, (void *)7); /* left alone on failure */
    double t0 = conc_monotonic();
    assert_conc(conc_aio_queue_get(c.q, SHORT, &item), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= SHORT);
    assert_conc(conc_aio_queue_get(c.q, NAN, &item), CONC_EINVAL);
    assert_conc_ok(conc_aio_queue_put(c.q, NULL, 0)); /* NULL is an item */
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)1));
    assert_int_equal(conc_aio_queue_full(c.q), 1);
    assert_int_equal(conc_aio_queue_qsize(c.q), 2);
    assert_conc(conc_aio_queue_put_nowait(c.q, (void *)2), CONC_EFULL);
    t0 = conc_monotonic();
    assert_conc(conc_aio_queue_put(c.q, (void *)2, SHORT), CONC_EFULL);
    assert_true(conc_monotonic() - t0 >= SHORT);
    assert_conc(conc_aio_queue_put(c.q, (void *)2, NAN), CONC_EINVAL);
    /* A blocked put goes on when a get makes room, in FIFO order. */
    conc_future *p[2];
    for (int i = 0; i < 2; i++)
        p[i] = spawn(putter, &c, i);
    step();
    assert_int_equal(c.n, 0);
    assert_ptr_equal((void *)get_now(c.q), NULL);
    assert_int_equal(get_now(c.q), 1);
    for (int i = 0; i < 2; i++)
        finish(p[i]);
    int want[2] = {0, 1};
    assert_order(&c, want, 2);
    assert_int_equal(get_now(c.q), 100);
    assert_int_equal(get_now(c.q), 101);
    /* A blocked get goes on when a put brings an item. */
    c.n = 0;
    conc_future *g[2];
    for (int i = 0; i < 2; i++)
        g[i] = spawn(getter, &c, i);
    step();
    put_ints(c.q, (int[]){5, 6}, 2);
    for (int i = 0; i < 2; i++)
        finish(g[i]);
    assert_order(&c, want, 2);
    assert_int_equal((intptr_t)c.got[0], 5);
    assert_int_equal((intptr_t)c.got[1], 6);
    conc_aio_queue_free(c.q);
    return 0;
}

static void
test_queue_bounded_blocking(void **state)
{
    (void)state;
    run(queue_bounded_main);
}

/* A getter woken by a put and cancelled before it runs passes the wake-up
 * on: the item goes to the next getter. Likewise for putters. */
CHILD(queue_handover_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.maxsize = 1}, &c.q));
    conc_future *a, *b;
    spawn_two(getter, &c, 0, &a, &b);
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)9)); /* wakes a */
    assert_int_equal(conc_aio_task_cancel(a, NULL), 1);
    finish_handed_over(&c, a, b, 0);
    assert_int_equal((intptr_t)c.got[1], 9);
    /* Putters: the queue is full, two wait; a get wakes the first, which
     * is cancelled before it runs; the second puts. */
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)8));
    c.n = 0;
    spawn_two(putter, &c, 2, &a, &b);
    assert_int_equal(get_now(c.q), 8);
    assert_int_equal(conc_aio_task_cancel(a, NULL), 1);
    finish_handed_over(&c, a, b, 2);
    assert_int_equal(get_now(c.q), 103);
    assert_int_equal(conc_aio_queue_empty(c.q), 1);
    conc_aio_queue_free(c.q);
    return 0;
}

static void
test_queue_cancel_passes_wakeup(void **state)
{
    (void)state;
    run(queue_handover_main);
}

CHILD(joiner)
{
    CHILD_ARGS;
    c->rc[id] = conc_aio_queue_join(c->q, c->timeout);
    if (c->rc[id] == 0)
        record(c, id);
    return 0;
}

CHILD(queue_join_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_queue_new(NULL, &c.q));
    assert_conc_ok(conc_aio_queue_join(c.q, 0)); /* nothing unfinished */
    assert_conc(conc_aio_queue_task_done(c.q), CONC_EVALUE);
    put_ints(c.q, (int[]){1, 2}, 2);
    assert_conc(conc_aio_queue_join(c.q, 0), CONC_ETIMEDOUT);
    assert_conc(conc_aio_queue_join(c.q, NAN), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_aio_queue_join(c.q, SHORT), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    conc_future *j[2];
    for (int i = 0; i < 2; i++)
        j[i] = spawn(joiner, &c, i);
    step();
    conc_aio_task_cancel(j[1], NULL); /* cancelled while it waits */
    get_now(c.q);
    get_now(c.q);
    assert_conc_ok(conc_aio_queue_task_done(c.q));
    step();
    assert_int_equal(c.n, 0); /* one item still unfinished */
    assert_conc_ok(conc_aio_queue_task_done(c.q));
    for (int i = 0; i < 2; i++)
        finish(j[i]);
    int want[1] = {0};
    assert_order(&c, want, 1);
    assert_conc(c.rc[1], CONC_ECANCELED);
    assert_conc(conc_aio_queue_task_done(c.q), CONC_EVALUE);
    conc_aio_queue_free(c.q);
    return 0;
}

static void
test_queue_join_task_done(void **state)
{
    (void)state;
    run(queue_join_main);
}

static int dropped;

static void
count_drop(void *item)
{
    (void)item;
    dropped++;
}

CHILD(queue_shutdown_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    /* Blocked getters wake with QueueShutDown. */
    assert_conc_ok(conc_aio_queue_new(NULL, &c.q));
    conc_future *g = spawn(getter, &c, 0);
    step();
    assert_conc_ok(conc_aio_queue_shutdown(c.q, 0));
    finish(g);
    assert_conc(c.rc[0], CONC_ECLOSED);
    assert_conc(conc_aio_queue_put_nowait(c.q, NULL), CONC_ECLOSED);
    conc_aio_queue_free(c.q);
    /* Blocked putters too; gets drain what is left, then fail. */
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.maxsize = 1}, &c.q));
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)1));
    conc_future *p = spawn(putter, &c, 1);
    step();
    assert_conc_ok(conc_aio_queue_shutdown(c.q, 0));
    finish(p);
    assert_conc(c.rc[1], CONC_ECLOSED);
    assert_conc(conc_aio_queue_put(c.q, NULL, BOUND), CONC_ECLOSED);
    void *item;
    assert_conc_ok(conc_aio_queue_get(c.q, BOUND, &item));
    assert_ptr_equal(item, (void *)1);
    assert_conc(conc_aio_queue_get(c.q, BOUND, &item), CONC_ECLOSED);
    assert_conc(conc_aio_queue_get_nowait(c.q, &item), CONC_ECLOSED);
    assert_conc_ok(conc_aio_queue_shutdown(c.q, 0)); /* again: allowed */
    conc_aio_queue_free(c.q);
    /* immediate: the items go to drop, count as done, join returns. */
    dropped = 0;
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.drop = count_drop}, &c.q));
    put_ints(c.q, (int[]){1, 2, 3}, 3);
    get_now(c.q);
    conc_future *j = spawn(joiner, &c, 2);
    step();
    assert_conc_ok(conc_aio_queue_shutdown(c.q, 1));
    assert_int_equal(dropped, 2);
    assert_int_equal(conc_aio_queue_qsize(c.q), 0);
    assert_conc(conc_aio_queue_get(c.q, BOUND, &item), CONC_ECLOSED);
    step();
    assert_int_equal(c.rc[2], PENDING); /* the item taken is not done */
    assert_conc_ok(conc_aio_queue_task_done(c.q));
    finish(j);
    assert_conc_ok(c.rc[2]);
    conc_aio_queue_free(c.q);
    /* Items left at free go to drop as well. */
    dropped = 0;
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.drop = count_drop}, &c.q));
    put_ints(c.q, (int[]){1, 2}, 2);
    conc_aio_queue_free(c.q);
    assert_int_equal(dropped, 2);
    return 0;
}

static void
test_queue_shutdown(void **state)
{
    (void)state;
    run(queue_shutdown_main);
}

/* Every wait is a cancellation point: a task cancelled while it waits
 * gets CONC_ECANCELED from each of them (lock, event, condition and the
 * semaphores are covered above; here the queue's put and get). */
CHILD(queue_cancel_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = CONC_FOREVER};
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.maxsize = 1}, &c.q));
    conc_future *g = spawn(getter, &c, 0);
    step();
    conc_aio_task_cancel(g, NULL);
    finish(g);
    assert_conc(c.rc[0], CONC_ECANCELED);
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)1));
    conc_future *p = spawn(putter, &c, 1);
    step();
    conc_aio_task_cancel(p, NULL);
    finish(p);
    assert_conc(c.rc[1], CONC_ECANCELED);
    assert_int_equal(conc_aio_queue_qsize(c.q), 1);
    conc_aio_queue_free(c.q);
    return 0;
}

static void
test_queue_cancel_while_waiting(void **state)
{
    (void)state;
    run(queue_cancel_main);
}

/* ---- Cancellation at every wait ---------------------------------------- */

enum wait_kind {
    W_LOCK,
    W_EVENT,
    W_COND,
    W_COND_FOR,
    W_SEM,
    W_BSEM,
    W_BARRIER,
    W_PUT,
    W_GET,
    W_JOIN,
    W_COUNT
};

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

/* Waits forever on the wait named by its id. */
CHILD(forever_waiter)
{
    CHILD_ARGS;
    void *item;
    switch (id) {
    case W_LOCK:
        return c->rc[0] = conc_aio_lock_acquire(c->lock, CONC_FOREVER), 0;
    case W_EVENT:
        return c->rc[0] = conc_aio_event_wait(c->ev, CONC_FOREVER), 0;
    case W_COND:
    case W_COND_FOR:
        assert_conc_ok(conc_aio_cond_acquire(c->cond, BOUND));
        c->rc[0] = id == W_COND ? conc_aio_cond_wait(c->cond, CONC_FOREVER)
                                : conc_aio_cond_wait_for(c->cond, never, NULL,
                                                         CONC_FOREVER);
        assert_int_equal(conc_aio_cond_locked(c->cond), 1);
        return conc_aio_cond_release(c->cond);
    case W_SEM:
        return c->rc[0] = conc_aio_sem_acquire(c->sem, CONC_FOREVER), 0;
    case W_BSEM:
        return c->rc[0] = conc_aio_bsem_acquire(c->bsem, CONC_FOREVER), 0;
    case W_BARRIER:
        return c->rc[0] = conc_aio_barrier_wait(c->bar, CONC_FOREVER, NULL), 0;
    case W_PUT:
        return c->rc[0] = conc_aio_queue_put(c->q, NULL, CONC_FOREVER), 0;
    case W_GET:
        return c->rc[0] = conc_aio_queue_get(c->q, CONC_FOREVER, &item), 0;
    default:
        return c->rc[0] = conc_aio_queue_join(c->q, CONC_FOREVER), 0;
    }
}

CHILD(cancel_every_wait_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {0};
    conc_aio_queue *full, *empty;
    assert_conc_ok(conc_aio_lock_new(&c.lock));
    assert_conc_ok(conc_aio_lock_acquire(c.lock, 0));
    assert_conc_ok(conc_aio_event_new(&c.ev));
    assert_conc_ok(conc_aio_cond_new(NULL, &c.cond));
    assert_conc_ok(conc_aio_sem_new(0, &c.sem));
    assert_conc_ok(conc_aio_bsem_new(0, &c.bsem));
    assert_conc_ok(conc_aio_barrier_new(2, &c.bar));
    assert_conc_ok(
        conc_aio_queue_new(&(conc_aio_queue_opts){.maxsize = 1}, &full));
    assert_conc_ok(conc_aio_queue_put_nowait(full, NULL));
    assert_conc_ok(conc_aio_queue_new(NULL, &empty));
    for (int k = 0; k < W_COUNT; k++) {
        c.q = k == W_PUT || k == W_JOIN ? full : empty;
        conc_future *f = spawn(forever_waiter, &c, k);
        c.rc[0] = PENDING;
        step();
        assert_int_equal(c.rc[0], PENDING); /* it waits */
        assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
        finish(f);
        assert_conc(c.rc[0], CONC_ECANCELED);
    }
    /* Nothing was broken or lost on the way. */
    assert_int_equal(conc_aio_barrier_broken(c.bar), 0);
    assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 0);
    assert_int_equal(conc_aio_queue_qsize(full), 1);
    assert_int_equal(conc_aio_cond_locked(c.cond), 0);
    assert_conc_ok(conc_aio_lock_release(c.lock));
    conc_aio_lock_free(c.lock);
    conc_aio_event_free(c.ev);
    conc_aio_cond_free(c.cond);
    conc_aio_sem_free(c.sem);
    conc_aio_bsem_free(c.bsem);
    conc_aio_barrier_free(c.bar);
    conc_aio_queue_free(full);
    conc_aio_queue_free(empty);
    return 0;
}

static void
test_cancel_every_wait(void **state)
{
    (void)state;
    run(cancel_every_wait_main);
}

/* A newcomer that arrives while the last round drains waits for it, then
 * starts the next round with index 0. */
CHILD(barrier_drain_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_barrier_new(2, &c.bar));
    conc_future *a = spawn(barrier_waiter, &c, 0);
    step();
    conc_future *late = spawn(barrier_waiter, &c, 1); /* runs before a */
    unsigned mine = 9;
    assert_conc_ok(conc_aio_barrier_wait(c.bar, BOUND, &mine)); /* drains */
    assert_int_equal(mine, 1);
    finish(a);
    assert_int_equal(c.idx[0], 0);
    step();
    assert_int_equal(conc_aio_barrier_n_waiting(c.bar), 1); /* late */
    assert_conc_ok(conc_aio_barrier_wait(c.bar, BOUND, &mine));
    finish(late);
    assert_int_equal(c.idx[1], 0);
    assert_int_equal(mine, 1);
    conc_aio_barrier_free(c.bar);
    return 0;
}

static void
test_barrier_newcomer_waits_for_drain(void **state)
{
    (void)state;
    run(barrier_drain_main);
}

/* A getter woken by a put finds the item gone (another task took it
 * first without waiting): it waits again, as asyncio's get loops. */
CHILD(queue_barge_main)
{
    (void)arg, (void)len, (void)result;
    struct ctx c = {.timeout = BOUND};
    assert_conc_ok(conc_aio_queue_new(NULL, &c.q));
    conc_future *g = spawn(getter, &c, 0);
    step();
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)1)); /* wakes g */
    assert_int_equal(get_now(c.q), 1);                         /* barges */
    step();
    assert_int_equal(c.rc[0], PENDING);
    assert_conc_ok(conc_aio_queue_put_nowait(c.q, (void *)2));
    finish(g);
    assert_conc_ok(c.rc[0]);
    assert_int_equal((intptr_t)c.got[0], 2);
    conc_aio_queue_free(c.q);
    return 0;
}

static void
test_queue_woken_getter_waits_again(void **state)
{
    (void)state;
    run(queue_barge_main);
}

/* ---- Many tasks, cancelled at random points ---------------------------- */

enum { WORKERS = 8, ROUNDS = 100, SEM_UNITS = 3 };

struct stress {
    conc_aio_lock *lock;
    conc_aio_sem *sem;
    int inside_lock, inside_sem, max_sem;
    int done[WORKERS];      /* rounds completed */
    int cancelled[WORKERS]; /* stopped by a cancellation */
};

struct worker_arg {
    struct stress *s;
    int id;
};

/* One round: a unit of the semaphore, then the lock, each held across a
 * suspension. Returns 0 or the code that ended it. */
static int
stress_round(struct stress *s)
{
    int r = conc_aio_sem_acquire(s->sem, BOUND);
    if (r < 0)
        return r;
    if (++s->inside_sem > s->max_sem)
        s->max_sem = s->inside_sem;
    assert_true(s->inside_sem <= SEM_UNITS);
    r = conc_aio_sleep(0);
    s->inside_sem--;
    assert_conc_ok(conc_aio_sem_release(s->sem));
    if (r < 0)
        return r;
    if ((r = conc_aio_lock_acquire(s->lock, BOUND)) < 0)
        return r;
    assert_int_equal(s->inside_lock++, 0);
    r = conc_aio_sleep(0);
    s->inside_lock--;
    assert_conc_ok(conc_aio_lock_release(s->lock));
    return r;
}

static int
stress_worker(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct worker_arg *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        int r = stress_round(w->s);
        if (r == CONC_ECANCELED) {
            w->s->cancelled[w->id] = 1;
            return 0;
        }
        assert_conc_ok(r); /* a lost wake-up would time out here */
        w->s->done[w->id]++;
    }
    return 0;
}

CHILD(stress_main)
{
    (void)arg, (void)len, (void)result;
    static struct stress s;
    memset(&s, 0, sizeof s);
    assert_conc_ok(conc_aio_lock_new(&s.lock));
    assert_conc_ok(conc_aio_sem_new(SEM_UNITS, &s.sem));
    conc_future *f[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        struct worker_arg w = {&s, i};
        assert_conc_ok(
            conc_aio_create_task(stress_worker, &w, sizeof w, NULL, &f[i]));
    }
    /* Cancel half the workers, one every few turns, wherever they are. */
    for (int turn = 1, next = 0; next < WORKERS / 2; turn++) {
        assert_conc_ok(conc_aio_sleep(0));
        if (turn % 7 == 0)
            conc_aio_task_cancel(f[2 * next++], NULL);
    }
    for (int i = 0; i < WORKERS; i++)
        finish(f[i]);
    for (int i = 0; i < WORKERS; i++) {
        if (i % 2 == 0)
            assert_true(s.cancelled[i] || s.done[i] == ROUNDS);
        else
            assert_int_equal(s.done[i], ROUNDS);
    }
    assert_int_equal(s.max_sem, SEM_UNITS);
    assert_int_equal(conc_aio_lock_locked(s.lock), 0);
    assert_int_equal(conc_aio_sem_value(s.sem), SEM_UNITS);
    conc_aio_lock_free(s.lock);
    conc_aio_sem_free(s.sem);
    return 0;
}

static void
test_many_tasks_random_cancels(void **state)
{
    (void)state;
    run(stress_main);
}

/* Out of memory while a put grows the queue: CONC_ENOMEM, the queue is
 * unchanged and the item stays with the caller; constructors fail
 * cleanly too. */
CHILD(queue_enomem_main)
{
    (void)arg, (void)len, (void)result;
    conc_aio_queue *q;
    assert_conc_ok(conc_aio_queue_new(NULL, &q));
    conc_test_fail_alloc_after(1);
    assert_conc(conc_aio_queue_put_nowait(q, (void *)1), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_int_equal(conc_aio_queue_qsize(q), 0);
    assert_conc(conc_aio_queue_join(q, 0), 0); /* nothing was counted */
    assert_conc_ok(conc_aio_queue_put(q, (void *)2, 0));
    assert_int_equal(get_now(q), 2);
    conc_aio_queue_free(q);
    conc_aio_lock *lock;
    conc_aio_barrier *b;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_aio_lock_new(&lock), CONC_ENOMEM);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_aio_barrier_new(2, &b), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    return 0;
}

static void
test_out_of_memory(void **state)
{
    (void)state;
    run(queue_enomem_main);
}

/* Another thread sets an event through call_soon_threadsafe, the way
 * aio_sync.h says to reach a loop-local object from outside its loop. */
struct from_afar {
    conc_aio_loop *loop;
    conc_aio_event *ev;
    int set_rc;
};

static void
set_cb(void *arg)
{
    struct from_afar *a = arg;
    a->set_rc = conc_aio_event_set(a->ev);
}

static int
setter_thread(void *arg)
{
    struct from_afar *a = arg;
    return conc_aio_call_soon_threadsafe(a->loop, set_cb, a, NULL);
}

CHILD(threadsafe_set_main)
{
    (void)arg, (void)len, (void)result;
    struct from_afar a = {.set_rc = PENDING};
    assert_conc_ok(conc_aio_get_running_loop(&a.loop));
    assert_conc_ok(conc_aio_event_new(&a.ev));
    assert_conc_ok(conc_aio_event_clear(a.ev)); /* binds it to this loop */
    conc_thread *th;
    assert_conc_ok(conc_thread_start(setter_thread, &a, NULL, &th));
    assert_conc_ok(conc_aio_event_wait(a.ev, BOUND));
    assert_conc_ok(a.set_rc);
    int status = -1;
    assert_conc_ok(conc_thread_join(th, BOUND, &status));
    assert_int_equal(status, 0);
    conc_thread_free(th);
    conc_aio_event_free(a.ev);
    return 0;
}

static void
test_event_set_from_another_thread(void **state)
{
    (void)state;
    run(threadsafe_set_main);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_lock_basic_fifo_timeout),
        conc_unit_test(test_lock_cancel_passes_wakeup),
        conc_unit_test(test_lock_cancel_while_waiting),
        conc_unit_test(test_bound_to_one_loop),
        conc_unit_test(test_event),
        conc_unit_test(test_cond_wait_notify),
        conc_unit_test(test_cond_wait_for),
        conc_unit_test(test_cond_cancel),
        conc_unit_test(test_sem),
        conc_unit_test(test_sem_cancel_passes_unit),
        conc_unit_test(test_bsem_released_too_often),
        conc_unit_test(test_barrier),
        conc_unit_test(test_barrier_cancel_reset_abort),
        conc_unit_test(test_queue_kinds),
        conc_unit_test(test_queue_bounded_blocking),
        conc_unit_test(test_queue_cancel_passes_wakeup),
        conc_unit_test(test_queue_join_task_done),
        conc_unit_test(test_queue_shutdown),
        conc_unit_test(test_queue_cancel_while_waiting),
        conc_unit_test(test_cancel_every_wait),
        conc_unit_test(test_barrier_newcomer_waits_for_drain),
        conc_unit_test(test_queue_woken_getter_waits_again),
        conc_unit_test(test_many_tasks_random_cancels),
        conc_unit_test(test_out_of_memory),
        conc_unit_test(test_event_set_from_another_thread),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
