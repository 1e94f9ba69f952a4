/* Lock and RLock: an uncontended acquire+release pair, and a shared counter
 * incremented under the lock by two threads at once; each beside the same
 * workload on pthread_mutex. The twin is bench_lock.py.
 *
 * Rows:
 *   lock_pair       ns per acquire+release, one thread
 *   lock_contended  increments per second, two threads on one counter
 *   rlock_pair      ns per acquire+release of an RLock (a recursive
 *                   pthread_mutex beside it) */
#include <errno.h>
#include <unistd.h>

#include "bench_common.h"

#include "conc/sync.h"

/* ---- Uncontended pairs -------------------------------------------------- */

static double
conc_lock_pair(void *ctx, long n, long *ops)
{
    conc_lock *l = ctx;
    int err = 0;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        err |= conc_lock_acquire(l, CONC_FOREVER);
        err |= conc_lock_release(l);
        bench_clobber();
    }
    double s = bench_seconds_since(t0);
    BENCH_CHECK(err);
    return s;
}

static double
pthread_pair(void *ctx, long n, long *ops)
{
    pthread_mutex_t *m = ctx;
    int err = 0;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        err |= pthread_mutex_lock(m);
        err |= pthread_mutex_unlock(m);
        bench_clobber();
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(err == 0);
    return s;
}

static double
conc_rlock_pair(void *ctx, long n, long *ops)
{
    conc_rlock *l = ctx;
    int err = 0;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        err |= conc_rlock_acquire(l, CONC_FOREVER);
        err |= conc_rlock_release(l);
        bench_clobber();
    }
    double s = bench_seconds_since(t0);
    BENCH_CHECK(err);
    return s;
}

/* ---- Two threads on one counter ----------------------------------------
 * Each thread increments the counter under the lock up to n times; the
 * first to finish stops the other, so the whole measured interval is
 * contended (an unfair lock could otherwise let one thread finish alone
 * and then run the other's share uncontended). */

typedef struct contend {
    conc_lock *lock;     /* the lock under test, or NULL ... */
    pthread_mutex_t *mx; /* ... for this mutex */
    long target;
    long counter; /* guarded by lock or mx */
    atomic_int stop;
    atomic_int helper_done;
    long helper_incs;
    bench_gate gate;
} contend;

static long
contend_loop(contend *c)
{
    long k = 0;
    int err = 0;
    while (k < c->target &&
           !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        if (c->lock) {
            err |= conc_lock_acquire(c->lock, CONC_FOREVER);
            c->counter++;
            err |= conc_lock_release(c->lock);
        } else {
            err |= pthread_mutex_lock(c->mx);
            c->counter++;
            err |= pthread_mutex_unlock(c->mx);
        }
        k++;
    }
    atomic_store(&c->stop, 1);
    BENCH_ASSERT(err == 0);
    return k;
}

static void *
contend_helper(void *arg)
{
    contend *c = arg;
    bench_gate_wait(&c->gate);
    c->helper_incs = contend_loop(c);
    atomic_store_explicit(&c->helper_done, 1, memory_order_release);
    return NULL;
}

/* The lock of a contended row, and how the increments fell between the two
 * threads over all its runs (an unfair lock may starve one of them). */
typedef struct contend_stats {
    conc_lock *lock;
    pthread_mutex_t *mx;
    long incs[2];
} contend_stats;

static double
contend_run(void *ctx, long n, long *ops)
{
    contend_stats *st = ctx;
    contend c = {.lock = st->lock, .mx = st->mx, .target = n};
    pthread_t t = bench_spawn(contend_helper, &c);
    bench_gate_open(&c.gate);
    long long t0 = bench_now_ns();
    long mine = contend_loop(&c);
    while (!atomic_load_explicit(&c.helper_done, memory_order_acquire))
        sched_yield();
    double s = bench_seconds_since(t0);
    bench_join(t);
    BENCH_ASSERT(c.counter == mine + c.helper_incs);
    st->incs[0] += mine;
    st->incs[1] += c.helper_incs;
    *ops = c.counter;
    return s;
}

static void
contend_info(const char *impl, const contend_stats *st)
{
    long lo = st->incs[0] < st->incs[1] ? st->incs[0] : st->incs[1];
    double total = (double)st->incs[0] + (double)st->incs[1];
    printf("INFO lock_contended %s share of the less served thread: %.2f\n",
           impl, total > 0 ? lo / total : 0);
}

static void
contended_row(const bench_opts *o, conc_lock *lock, pthread_mutex_t *mx)
{
    contend_stats pst = {.mx = mx}, cst = {.lock = lock};
    bench_impl impls[] = {
        {"pthread", contend_run, &pst},
        {"conc", contend_run, &cst},
    };
    bench_row(o, "lock_contended", impls, 2, 1, 1000);
    contend_info("pthread", &pst);
    contend_info("conc", &cst);
}

/* ---- Main ---------------------------------------------------------------
 * A lock matters only once a second thread exists, and glibc takes a
 * shortcut without atomic instructions in pthread_mutex_lock while the
 * process has a single thread. So a second thread stays alive, blocked on
 * a pipe, while the uncontended pairs are measured. */

static void *
idle_thread(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void
rlock_row(const bench_opts *o)
{
    conc_rlock *rl;
    pthread_mutex_t rm;
    pthread_mutexattr_t attr;
    BENCH_CHECK(conc_rlock_new(NULL, &rl));
    BENCH_ASSERT(pthread_mutexattr_init(&attr) == 0);
    BENCH_ASSERT(pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE) ==
                 0);
    BENCH_ASSERT(pthread_mutex_init(&rm, &attr) == 0);
    bench_impl impls[] = {
        {"pthread", pthread_pair, &rm},
        {"conc", conc_rlock_pair, rl},
    };
    bench_row(o, "rlock_pair", impls, 2, 0, 1000);
    pthread_mutex_destroy(&rm);
    pthread_mutexattr_destroy(&attr);
    conc_rlock_free(rl);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    int fds[2];
    BENCH_ASSERT(pipe(fds) == 0);
    pthread_t idle = bench_spawn(idle_thread, &fds[0]);
    conc_lock *lock;
    pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
    BENCH_CHECK(conc_lock_new(NULL, &lock));

    bench_impl pairs[] = {
        {"pthread", pthread_pair, &mx},
        {"conc", conc_lock_pair, lock},
    };
    bench_row(&o, "lock_pair", pairs, 2, 0, 1000);

    contended_row(&o, lock, &mx);

    rlock_row(&o);
    conc_lock_free(lock);
    close(fds[1]);
    bench_join(idle);
    close(fds[0]);
    return 0;
}
