/* Process-shared Lock, contended by two processes: the parent and a forked
 * child each increment one counter in shared memory, taking the lock around
 * every increment; with a conc_lock made in an arena (.arena) and with a
 * process-shared pthread_mutex. The twin is bench_shlock.py.
 *
 * Row:
 *   shlock_contended   increments per second, both processes together
 *
 * A process-shared conc_lock is robust (a holder that dies is detected), so
 * the pthread baseline is a robust process-shared mutex too. As in
 * bench_lock's lock_contended, each side aims at n increments and the first
 * to finish stops the other, so the whole interval is contended; the clock
 * runs from the moment both sides are released until both have stopped.
 * Each measurement forks its own child (a raw fork, so that only the lock
 * is conc's) and reaps it before returning. */
#include "bench_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/arena.h"
#include "conc/sync.h"

/* What both processes share, in a MAP_SHARED page. */
typedef struct shared {
    bench_gate gate;
    atomic_int stop;       /* set by the first side to finish */
    atomic_int child_done; /* the child has stopped counting */
    long counter;          /* guarded by the lock under test */
    long mine[2];          /* increments made by the parent [0], child [1] */
    pthread_mutex_t mutex; /* the baseline's lock */
} shared;

typedef struct lock_ops {
    void (*acquire)(void *lock);
    void (*release)(void *lock);
    void *lock;
    shared *sh;
    atomic_long *less_served; /* share of the less served side, 1e-6 */
} lock_ops;

static void
conc_acquire(void *lock)
{
    BENCH_CHECK(conc_lock_acquire(lock, CONC_FOREVER));
}

static void
conc_release(void *lock)
{
    BENCH_CHECK(conc_lock_release(lock));
}

static void
mutex_acquire(void *lock)
{
    BENCH_CHECK(-pthread_mutex_lock(lock));
}

static void
mutex_release(void *lock)
{
    BENCH_CHECK(-pthread_mutex_unlock(lock));
}

static void
count(const lock_ops *l, long n, int side)
{
    shared *sh = l->sh;
    long i = 0;
    while (i < n && !atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        l->acquire(l->lock);
        sh->counter++;
        l->release(l->lock);
        i++;
    }
    atomic_store(&sh->stop, 1);
    sh->mine[side] = i;
}

static double
contended(void *ctx, long n, long *ops)
{
    const lock_ops *l = ctx;
    shared *sh = l->sh;
    atomic_store(&sh->gate.open, 0);
    atomic_store(&sh->gate.ready, 0);
    atomic_store(&sh->stop, 0);
    atomic_store(&sh->child_done, 0);
    sh->counter = 0;
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid == 0) {
        /* The child must not outlive a parent that failed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        bench_gate_wait(&sh->gate);
        count(l, n, 1);
        atomic_store_explicit(&sh->child_done, 1, memory_order_release);
        _exit(0);
    }
    bench_gate_open(&sh->gate);
    long long t0 = bench_now_ns();
    count(l, n, 0);
    while (!atomic_load_explicit(&sh->child_done, memory_order_acquire))
        sched_yield();
    double s = bench_seconds_since(t0);
    int status;
    BENCH_ASSERT(waitpid(pid, &status, 0) == pid);
    BENCH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    BENCH_ASSERT(sh->counter == sh->mine[0] + sh->mine[1]);
    long lo = sh->mine[0] < sh->mine[1] ? sh->mine[0] : sh->mine[1];
    atomic_store(l->less_served, (long)(1e6 * lo / sh->counter));
    *ops = sh->counter;
    return s;
}

static void
init_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    BENCH_CHECK(-pthread_mutexattr_init(&a));
    BENCH_CHECK(-pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED));
    BENCH_CHECK(-pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST));
    BENCH_CHECK(-pthread_mutex_init(m, &a));
    pthread_mutexattr_destroy(&a);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    atomic_long less[2] = {0, 0};
    conc_arena *arena;
    conc_lock *lock;
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_ASSERT(sh != MAP_FAILED);
    init_mutex(&sh->mutex);
    BENCH_CHECK(conc_arena_new(1 << 20, &arena));
    BENCH_CHECK(conc_lock_new(&(conc_sync_opts){.arena = arena}, &lock));
    lock_ops raw = {mutex_acquire, mutex_release, &sh->mutex, sh, &less[0]};
    lock_ops cl = {conc_acquire, conc_release, lock, sh, &less[1]};
    bench_impl impls[] = {
        {"pthread", contended, &raw},
        {"conc", contended, &cl},
    };
    bench_row(&o, "shlock_contended", impls, 2, 1, 1000);
    printf("INFO shlock_contended conc share of the less served process "
           "%.2f (pthread %.2f), last measurement\n",
           atomic_load(&less[1]) / 1e6, atomic_load(&less[0]) / 1e6);
    conc_lock_free(lock);
    conc_arena_free(arena);
    pthread_mutex_destroy(&sh->mutex);
    munmap(sh, sizeof *sh);
    return 0;
}
