/* Process-shared Lock, RLock, Semaphore, Event, Condition and Barrier:
 * each object is placed in a shared arena and used by forked processes with
 * the same calls as between threads. Children report through shared memory
 * and exit with _exit; the parent reaps every one. Nothing sleeps to
 * synchronize. The in-process behaviour of each primitive is tested in
 * test_sync.c. */
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

static void *
arena_cell(conc_arena *a, size_t size)
{
    void *p;
    assert_conc_ok(conc_arena_alloc(a, size, &p));
    return p;
}

static int
count_action(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

#define SEM_LIMIT  2   /* units of the shared semaphore */
#define SEM_ROUNDS 300 /* acquisitions per process */

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

/* ---- Process-shared objects --------------------------------------------- */

#define N_PROCS  3
#define P_INCS   20000
#define P_ROUNDS 20

/* Everything the processes share; allocated in the arena. */
struct shared {
    conc_lock *lock;
    conc_rlock *rlock;
    conc_sem *sem;
    conc_sem *ready;
    conc_event *ev;
    conc_cond *cond;
    conc_barrier *barrier;
    long counter; /* guarded by lock or rlock */
    int flag;     /* guarded by the cond's lock */
    atomic_int inside, max_inside, actions;
    unsigned index[P_ROUNDS][N_PROCS + 1];
};

struct proc_arg {
    struct shared *sh;
    int id;
};

static conc_arena *
shared_new(struct shared **out)
{
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 20, &a));
    *out = arena_cell(a, sizeof **out);
    return a;
}

static int
lock_incr_proc(void *p)
{
    struct shared *sh = p;
    for (int i = 0; i < P_INCS; i++) {
        if (conc_lock_acquire(sh->lock, BOUND) != 0)
            return 1;
        sh->counter++;
        if (conc_lock_release(sh->lock) != 0)
            return 2;
    }
    return 0;
}

static void
test_shared_lock(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    assert_true(conc_arena_contains(a, sh->lock));
    pid_t pid[N_PROCS];
    for (int i = 0; i < N_PROCS; i++)
        pid[i] = fork_child(lock_incr_proc, sh);
    assert_int_equal(lock_incr_proc(sh), 0);
    for (int i = 0; i < N_PROCS; i++)
        reap(pid[i]);
    assert_int_equal(sh->counter, (long)(N_PROCS + 1) * P_INCS);
    assert_int_equal(conc_lock_locked(sh->lock), 0);
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

static int
rlock_incr_proc(void *p)
{
    struct shared *sh = p;
    for (int i = 0; i < P_INCS; i++) {
        if (conc_rlock_acquire(sh->rlock, BOUND) != 0 ||
            conc_rlock_acquire(sh->rlock, 0) != 0)
            return 1;
        sh->counter++;
        if (conc_rlock_release(sh->rlock) != 0 ||
            conc_rlock_release(sh->rlock) != 0)
            return 2;
    }
    return conc_rlock_is_owned(sh->rlock) ? 3 : 0;
}

/* The parent holds the lock: a child neither owns nor may release it. */
static int
rlock_not_owner_proc(void *p)
{
    struct shared *sh = p;
    if (conc_rlock_is_owned(sh->rlock))
        return 1;
    if (conc_rlock_release(sh->rlock) != CONC_ENOTOWNER)
        return 2;
    return conc_rlock_acquire(sh->rlock, 0) == CONC_ETIMEDOUT ? 0 : 3;
}

static void
test_shared_rlock(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_rlock_new(&so, &sh->rlock));
    assert_conc_ok(conc_rlock_acquire(sh->rlock, CONC_FOREVER));
    reap(fork_child(rlock_not_owner_proc, sh));
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 1);
    assert_conc_ok(conc_rlock_release(sh->rlock));

    pid_t pid[N_PROCS];
    for (int i = 0; i < N_PROCS; i++)
        pid[i] = fork_child(rlock_incr_proc, sh);
    assert_int_equal(rlock_incr_proc(sh), 0);
    for (int i = 0; i < N_PROCS; i++)
        reap(pid[i]);
    assert_int_equal(sh->counter, (long)(N_PROCS + 1) * P_INCS);
    conc_rlock_free(sh->rlock);
    conc_arena_free(a);
}

static int
sem_limit_proc(void *p)
{
    struct shared *sh = p;
    for (int i = 0; i < SEM_ROUNDS; i++) {
        if (conc_sem_acquire(sh->sem, BOUND) != 0)
            return 1;
        int now = atomic_fetch_add(&sh->inside, 1) + 1;
        int max = atomic_load(&sh->max_inside);
        while (now > max &&
               !atomic_compare_exchange_weak(&sh->max_inside, &max, now))
            ;
        sched_yield();
        atomic_fetch_sub(&sh->inside, 1);
        if (conc_sem_release(sh->sem, 1) != 0)
            return 2;
    }
    return 0;
}

static void
test_shared_sem(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_sem_new(SEM_LIMIT, &so, &sh->sem));
    pid_t pid[N_PROCS];
    for (int i = 0; i < N_PROCS; i++)
        pid[i] = fork_child(sem_limit_proc, sh);
    assert_int_equal(sem_limit_proc(sh), 0);
    for (int i = 0; i < N_PROCS; i++)
        reap(pid[i]);
    assert_true(atomic_load(&sh->max_inside) >= 1);
    assert_true(atomic_load(&sh->max_inside) <= SEM_LIMIT);
    assert_int_equal(conc_sem_value(sh->sem), SEM_LIMIT);
    conc_sem_free(sh->sem);

    conc_bsem *b;
    assert_conc_ok(conc_bsem_new(1, &so, &b));
    assert_conc(conc_bsem_release(b, 1), CONC_EVALUE);
    assert_conc_ok(conc_bsem_acquire(b, 0));
    assert_conc_ok(conc_bsem_release(b, 1));
    conc_bsem_free(b);
    conc_arena_free(a);
}

static int
event_sleeping(void *p)
{
    return conc__event_sleepers(p);
}

/* Sets the event once the parent sleeps on it. */
static int
event_set_proc(void *p)
{
    struct shared *sh = p;
    if (!conc_test_wait_until(event_sleeping, sh->ev, BOUND))
        return 1;
    conc_event_set(sh->ev);
    return 0;
}

static int
event_wait_proc(void *p)
{
    struct shared *sh = p;
    return conc_event_wait(sh->ev, BOUND) == 0 ? 0 : 1;
}

static void
test_shared_event(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_event_new(&so, &sh->ev));
    pid_t pid = fork_child(event_set_proc, sh);
    assert_conc_ok(conc_event_wait(sh->ev, BOUND));
    reap(pid);
    assert_int_equal(conc_event_is_set(sh->ev), 1);

    /* And the other way: a sleeping child woken by the parent. */
    conc_event_clear(sh->ev);
    pid = fork_child(event_wait_proc, sh);
    assert_true(conc_test_wait_until(event_sleeping, sh->ev, BOUND));
    conc_event_set(sh->ev);
    reap(pid);
    conc_event_free(sh->ev);
    conc_arena_free(a);
}

static int
shared_flag(void *p)
{
    struct shared *sh = p;
    /* Announce each wait about to begin (and only those). */
    if (!sh->flag)
        conc_sem_release(sh->ready, 1);
    return sh->flag;
}

static int
cond_wait_proc(void *p)
{
    struct shared *sh = p;
    if (conc_cond_acquire(sh->cond, BOUND) != 0)
        return 1;
    int r = conc_cond_wait_for(sh->cond, shared_flag, sh, BOUND);
    int flag = sh->flag;
    conc_cond_release(sh->cond);
    return r == 0 && flag == 1 ? 0 : 2;
}

/* Once the other side checked its predicate (and so waits), sets the flag
 * and notifies. */
static int
cond_notify_proc(void *p)
{
    struct shared *sh = p;
    if (conc_sem_acquire(sh->ready, BOUND) != 0 ||
        conc_cond_acquire(sh->cond, BOUND) != 0)
        return 1;
    int queued = conc__cond_waiters(sh->cond);
    sh->flag = 1;
    int r = conc_cond_notify(sh->cond, 1);
    conc_cond_release(sh->cond);
    return queued == 1 && r == 0 ? 0 : 2;
}

static void
check_shared_cond(struct shared *sh)
{
    sh->flag = 0;
    pid_t pid = fork_child(cond_wait_proc, sh);
    assert_int_equal(cond_notify_proc(sh), 0);
    reap(pid);

    sh->flag = 0;
    pid = fork_child(cond_notify_proc, sh);
    assert_int_equal(cond_wait_proc(sh), 0);
    reap(pid);
}

static void
test_shared_cond(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    size_t avail = conc_arena_available(a);
    conc_sync_opts so = {.arena = a};
    conc_cond_opts co = {.arena = a};
    assert_conc_ok(conc_sem_new(0, &so, &sh->ready));
    assert_conc_ok(conc_cond_new(&co, &sh->cond));
    check_shared_cond(sh);
    conc_cond_free(sh->cond);

    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    co.lock = sh->lock;
    assert_conc_ok(conc_cond_new(&co, &sh->cond));
    check_shared_cond(sh);
    conc_cond_free(sh->cond);
    conc_lock_free(sh->lock);
    conc_sem_free(sh->ready);
    /* Every waiter record went back to the arena. */
    assert_int_equal(conc_arena_available(a), avail);
    conc_arena_free(a);
}

static int
barrier_proc(void *p)
{
    struct proc_arg *a = p;
    struct shared *sh = a->sh;
    for (int r = 0; r < P_ROUNDS; r++) {
        if (conc_barrier_wait(sh->barrier, BOUND, &sh->index[r][a->id]) != 0)
            return 1;
        if (atomic_load(&sh->actions) < r + 1)
            return 2;
    }
    return 0;
}

static void
test_shared_barrier(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_barrier_opts bo = {
        .action = count_action, .action_arg = &sh->actions, .arena = a};
    assert_conc_ok(conc_barrier_new(N_PROCS + 1, &bo, &sh->barrier));
    struct proc_arg args[N_PROCS + 1];
    pid_t pid[N_PROCS];
    for (int i = 0; i <= N_PROCS; i++)
        args[i] = (struct proc_arg){sh, i};
    for (int i = 0; i < N_PROCS; i++)
        pid[i] = fork_child(barrier_proc, &args[i + 1]);
    assert_int_equal(barrier_proc(&args[0]), 0);
    for (int i = 0; i < N_PROCS; i++)
        reap(pid[i]);
    assert_int_equal(atomic_load(&sh->actions), P_ROUNDS);
    check_indices(&sh->index[0][0], P_ROUNDS, N_PROCS + 1);
    assert_int_equal(conc_barrier_broken(sh->barrier), 0);
    conc_barrier_free(sh->barrier);
    conc_arena_free(a);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_shared_lock), conc_unit_test(test_shared_rlock),
        conc_unit_test(test_shared_sem),  conc_unit_test(test_shared_event),
        conc_unit_test(test_shared_cond), conc_unit_test(test_shared_barrier),
    };
    return conc_run_tests(tests);
}
