/* Robust process-shared Lock, RLock and Condition: a holder that dies is
 * reported to the next acquirer as CONC_EOWNERDEAD, the lock can be made
 * consistent again, and a lock released without that is unusable.
 *
 * A child process takes a lock in the arena, says so through a pipe, and
 * then dies holding it: killed with SIGKILL while it waits on the pipe for
 * ever, or by _exit. Waits on pipes and locks are bounded, so a bug fails
 * a test instead of hanging it. Processes are forked only while the test
 * process has a single thread (besides the sanitizer's own). */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "sync/sync_internal.h"

#define BOUND 20.0

/* ---- Helpers ------------------------------------------------------------ */

/* Everything the processes share; allocated in the arena. */
struct shared {
    conc_lock *lock;
    conc_rlock *rlock;
    conc_cond *cond;
    int data;       /* guarded by the lock under test */
    int kill_depth; /* how many times the child takes the RLock */
};

static conc_arena *
shared_new(struct shared **out)
{
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 20, &a));
    void *p;
    assert_conc_ok(conc_arena_alloc(a, sizeof(struct shared), &p));
    *out = p;
    return a;
}

/* A shared struct in a new arena (returned) with a lock of the arena in
 * sh->lock; shared_with_rlock makes sh->rlock instead. */
static conc_arena *
shared_with_lock(struct shared **sh)
{
    conc_arena *a = shared_new(sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &(*sh)->lock));
    return a;
}

static conc_arena *
shared_with_rlock(struct shared **sh)
{
    conc_arena *a = shared_new(sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_rlock_new(&so, &(*sh)->rlock));
    return a;
}

/* Reads one byte from `fd` within `timeout` seconds: 1 if one came. */
static int
read_byte(int fd, double timeout)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(timeout * 1000)) != 1)
        return 0;
    char c;
    return read(fd, &c, 1) == 1;
}

static void
write_byte(int fd)
{
    char c = 1;
    if (write(fd, &c, 1) != 1)
        _exit(99);
}

enum death { KILLED, EXITED };

struct child {
    pid_t pid;
    int up[2];   /* child -> parent: "I hold the lock" */
    int down[2]; /* parent -> child: "release it now" */
};

/* Forks a child that runs `take(sh)`, reports its result through the pipe,
 * then waits to be told to release (with `give`) or killed. */
static void
start_holder(struct child *c, struct shared *sh, int (*take)(struct shared *),
             int (*give)(struct shared *))
{
    assert_int_equal(pipe2(c->up, O_CLOEXEC), 0);
    assert_int_equal(pipe2(c->down, O_CLOEXEC), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        if (take(sh) != 0)
            _exit(1);
        write_byte(c->up[1]);
        /* Held until told to release (or killed meanwhile). */
        if (!read_byte(c->down[0], 2 * BOUND))
            _exit(2);
        _exit(give && give(sh) != 0 ? 3 : 0);
    }
    assert_true(read_byte(c->up[0], BOUND));
}

static void
close_pipes(struct child *c)
{
    close(c->up[0]);
    close(c->up[1]);
    close(c->down[0]);
    close(c->down[1]);
}

/* Ends the child: killed, or told to go on, and reaped. Returns its wait
 * status. */
static int
end_holder(struct child *c, enum death how)
{
    if (how == KILLED)
        assert_int_equal(kill(c->pid, SIGKILL), 0);
    else
        write_byte(c->down[1]);
    int status;
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
    close_pipes(c);
    return status;
}

static int
take_lock(struct shared *sh)
{
    return conc_lock_acquire(sh->lock, BOUND);
}

static int
give_lock(struct shared *sh)
{
    return conc_lock_release(sh->lock);
}

static int
take_rlock(struct shared *sh)
{
    for (int i = 0; i < sh->kill_depth; i++)
        if (conc_rlock_acquire(sh->rlock, BOUND) != 0)
            return 1;
    return 0;
}

static int
give_rlock(struct shared *sh)
{
    for (int i = 0; i < sh->kill_depth; i++)
        if (conc_rlock_release(sh->rlock) != 0)
            return 1;
    return 0;
}

/* Kills a child that holds sh->lock. With EXITED, the child leaves by
 * _exit without releasing. */
static void
die_holding_lock(struct shared *sh, enum death how)
{
    struct child c;
    start_holder(&c, sh, take_lock, NULL);
    int status = end_holder(&c, how);
    if (how == KILLED)
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    else
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* In a child: the lock is free again and works as usual. */
static int
lock_usable_proc(struct shared *sh)
{
    if (conc_lock_acquire(sh->lock, BOUND) != 0)
        return 1;
    sh->data++;
    return conc_lock_release(sh->lock) != 0;
}

static void
run_in_child(struct shared *sh, int (*fn)(struct shared *))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(sh));
    reap(pid);
}

/* ---- Misuse ------------------------------------------------------------- */

static void
test_make_consistent_errors(void **state)
{
    (void)state;
    conc_lock *pl;
    conc_rlock *pr;
    assert_conc_ok(conc_lock_new(NULL, &pl));
    assert_conc_ok(conc_rlock_new(NULL, &pr));
    /* A private lock has no owner-died state. */
    assert_conc_ok(conc_lock_acquire(pl, 0));
    assert_conc(conc_lock_make_consistent(pl), CONC_EINVAL);
    assert_conc_ok(conc_lock_release(pl));
    assert_conc_ok(conc_rlock_acquire(pr, 0));
    assert_conc(conc_rlock_make_consistent(pr), CONC_EINVAL);
    assert_conc_ok(conc_rlock_release(pr));

    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    assert_conc_ok(conc_rlock_new(&so, &sh->rlock));
    /* Not held by the caller, then held but consistent. */
    assert_conc(conc_lock_make_consistent(sh->lock), CONC_ENOTOWNER);
    assert_conc(conc_rlock_make_consistent(sh->rlock), CONC_ENOTOWNER);
    assert_conc_ok(conc_lock_acquire(sh->lock, 0));
    assert_conc_ok(conc_rlock_acquire(sh->rlock, 0));
    assert_conc(conc_lock_make_consistent(sh->lock), CONC_EINVAL);
    assert_conc(conc_rlock_make_consistent(sh->rlock), CONC_EINVAL);
    assert_conc_ok(conc_lock_release(sh->lock));
    assert_conc_ok(conc_rlock_release(sh->rlock));
    conc_lock_free(pl);
    conc_rlock_free(pr);
    conc_lock_free(sh->lock);
    conc_rlock_free(sh->rlock);
    conc_arena_free(a);
}

static void *
release_other_main(void *p)
{
    conc_lock *l = p;
    return (void *)(intptr_t)conc_lock_release(l);
}

static void *
try_other_main(void *p)
{
    conc_lock *l = p;
    return (void *)(intptr_t)conc_lock_acquire(l, 0);
}

static int
run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    assert_int_equal(pthread_join(t, &ret), 0);
    return (int)(intptr_t)ret;
}

/* A shared Lock has an owner: only it may release, and the errors of an
 * unlocked lock stay as they were. */
static void
test_shared_lock_owner(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_lock(&sh);
    assert_conc(conc_lock_release(sh->lock), CONC_ENOTLOCKED);
    assert_conc(conc_lock_acquire(sh->lock, NAN), CONC_EINVAL);
    assert_int_equal(conc_lock_locked(sh->lock), 0);
    assert_conc_ok(conc_lock_acquire(sh->lock, CONC_FOREVER));
    assert_int_equal(conc_lock_locked(sh->lock), 1);
    assert_conc(run_thread(release_other_main, sh->lock), CONC_ENOTOWNER);
    assert_conc(run_thread(try_other_main, sh->lock), CONC_ETIMEDOUT);
    /* The holder waits for itself, as with a private Lock. */
    double t0 = conc_monotonic();
    assert_conc(conc_lock_acquire(sh->lock, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc(conc_lock_acquire(sh->lock, 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_lock_release(sh->lock));
    assert_conc(conc_lock_release(sh->lock), CONC_ENOTLOCKED);
    assert_int_equal(conc_lock_locked(sh->lock), 0);
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

/* ---- Timeouts against another process ----------------------------------- */

static void
test_shared_timeouts(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    assert_conc_ok(conc_rlock_new(&so, &sh->rlock));
    sh->kill_depth = 2;

    struct child c;
    start_holder(&c, sh, take_lock, give_lock);
    assert_int_equal(conc_lock_locked(sh->lock), 1);
    assert_conc(conc_lock_acquire(sh->lock, 0), CONC_ETIMEDOUT);
    double t0 = conc_monotonic();
    assert_conc(conc_lock_acquire(sh->lock, 0.1), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.1);
    assert_conc(conc_lock_release(sh->lock), CONC_ENOTOWNER);
    assert_true(WIFEXITED(end_holder(&c, EXITED)));
    assert_conc_ok(conc_lock_acquire(sh->lock, BOUND));
    assert_conc_ok(conc_lock_release(sh->lock));

    start_holder(&c, sh, take_rlock, give_rlock);
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 0);
    assert_conc(conc_rlock_acquire(sh->rlock, 0), CONC_ETIMEDOUT);
    t0 = conc_monotonic();
    assert_conc(conc_rlock_acquire(sh->rlock, 0.1), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.1);
    assert_conc(conc_rlock_release(sh->rlock), CONC_ENOTOWNER);
    int status = end_holder(&c, EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_conc_ok(conc_rlock_acquire(sh->rlock, BOUND));
    assert_conc_ok(conc_rlock_release(sh->rlock));
    conc_lock_free(sh->lock);
    conc_rlock_free(sh->rlock);
    conc_arena_free(a);
}

/* ---- Owner death: Lock -------------------------------------------------- */

static void
check_recovered_lock(struct shared *sh, enum death how)
{
    die_holding_lock(sh, how);
    assert_int_equal(conc_lock_locked(sh->lock), 1);
    assert_conc(conc_lock_acquire(sh->lock, BOUND), CONC_EOWNERDEAD);
    /* The caller holds it now. */
    assert_int_equal(conc_lock_locked(sh->lock), 1);
    assert_conc(run_thread(try_other_main, sh->lock), CONC_ETIMEDOUT);
    assert_conc_ok(conc_lock_make_consistent(sh->lock));
    assert_conc(conc_lock_make_consistent(sh->lock), CONC_EINVAL);
    assert_conc_ok(conc_lock_release(sh->lock));
    /* Normal again, here and in another process. */
    assert_conc_ok(conc_lock_acquire(sh->lock, 0));
    assert_conc_ok(conc_lock_release(sh->lock));
    sh->data = 0;
    run_in_child(sh, lock_usable_proc);
    assert_int_equal(sh->data, 1);
}

static void
test_lock_owner_killed(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_lock(&sh);
    check_recovered_lock(sh, KILLED);
    check_recovered_lock(sh, EXITED);
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

/* A timeout of 0 also reports the dead owner (and takes the lock). */
static void
test_lock_owner_dead_poll(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_lock(&sh);
    die_holding_lock(sh, KILLED);
    assert_conc(conc_lock_acquire(sh->lock, 0), CONC_EOWNERDEAD);
    assert_conc_ok(conc_lock_make_consistent(sh->lock));
    assert_conc_ok(conc_lock_release(sh->lock));
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

static int
lock_unusable_proc(struct shared *sh)
{
    if (conc_lock_acquire(sh->lock, BOUND) != CONC_ENOTRECOVERABLE)
        return 1;
    return conc_lock_acquire(sh->lock, 0) != CONC_ENOTRECOVERABLE;
}

static void
test_lock_not_recoverable(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_lock(&sh);
    die_holding_lock(sh, KILLED);
    assert_conc(conc_lock_acquire(sh->lock, BOUND), CONC_EOWNERDEAD);
    /* Released without being made consistent: unusable for good. */
    assert_conc_ok(conc_lock_release(sh->lock));
    assert_int_equal(conc_lock_locked(sh->lock), 0);
    assert_conc(conc_lock_acquire(sh->lock, CONC_FOREVER),
                CONC_ENOTRECOVERABLE);
    assert_conc(conc_lock_acquire(sh->lock, 0), CONC_ENOTRECOVERABLE);
    assert_conc(conc_lock_acquire(sh->lock, 0.01), CONC_ENOTRECOVERABLE);
    assert_conc(conc_lock_release(sh->lock), CONC_ENOTLOCKED);
    assert_conc(conc_lock_make_consistent(sh->lock), CONC_ENOTOWNER);
    run_in_child(sh, lock_unusable_proc);
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

/* A thread that exits while holding a shared lock is a dead owner too. */
static void *
take_and_exit_main(void *p)
{
    return (void *)(intptr_t)conc_lock_acquire(p, 0);
}

static void
test_lock_owner_thread_exited(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_lock(&sh);
    assert_conc_ok(run_thread(take_and_exit_main, sh->lock));
    assert_conc(conc_lock_release(sh->lock), CONC_ENOTOWNER);
    assert_conc(conc_lock_acquire(sh->lock, BOUND), CONC_EOWNERDEAD);
    assert_conc_ok(conc_lock_make_consistent(sh->lock));
    assert_conc_ok(conc_lock_release(sh->lock));
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

/* The rule (robust.c, and mpqueue/sidelock.c for the side locks): a dead
 * owner's thread id may be given to a new thread, so an id alone never
 * says who owns a lock. conc keeps the owner's id beside a shared lock's
 * mutex, but only the mutex, whose word the kernel clears when its owner
 * dies, decides. The reuse is made here by writing this thread's id where
 * the dead owner's is, as the system may hand it out. */
static void *
take_rlock_and_exit_main(void *p)
{
    return (void *)(intptr_t)conc_rlock_acquire(p, 0);
}

static void
test_dead_owner_id_reused(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    assert_conc_ok(run_thread(take_and_exit_main, sh->lock));
    atomic_store(&sh->lock->word.locked, conc__tid());
    assert_conc(conc_lock_release(sh->lock), CONC_ENOTOWNER);
    assert_conc(conc_lock_make_consistent(sh->lock), CONC_ENOTOWNER);
    assert_int_equal(conc_lock_locked(sh->lock), 1);
    assert_conc(conc_lock_acquire(sh->lock, BOUND), CONC_EOWNERDEAD);
    assert_conc_ok(conc_lock_make_consistent(sh->lock));
    assert_conc_ok(conc_lock_release(sh->lock));
    conc_lock_free(sh->lock);

    assert_conc_ok(conc_rlock_new(&so, &sh->rlock));
    assert_conc_ok(run_thread(take_rlock_and_exit_main, sh->rlock));
    atomic_store(&sh->rlock->owner, conc__tid());
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 0);
    assert_conc(conc_rlock_release(sh->rlock), CONC_ENOTOWNER);
    assert_conc(conc_rlock_make_consistent(sh->rlock), CONC_ENOTOWNER);
    assert_conc(conc_rlock_acquire(sh->rlock, BOUND), CONC_EOWNERDEAD);
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 1);
    assert_conc_ok(conc_rlock_make_consistent(sh->rlock));
    assert_conc_ok(conc_rlock_release(sh->rlock));
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 0);
    conc_rlock_free(sh->rlock);
    conc_arena_free(a);
}

/* ---- Waiters asleep when the owner dies --------------------------------- */

struct waiter {
    conc_lock *lock;
    _Atomic uint32_t tid;
    int result;
};

static void *
waiter_main(void *p)
{
    struct waiter *w = p;
    atomic_store(&w->tid, conc__tid());
    w->result = conc_lock_acquire(w->lock, BOUND);
    if (w->result == CONC_EOWNERDEAD && conc_lock_make_consistent(w->lock))
        w->result = 1;
    if ((w->result == 0 || w->result == CONC_EOWNERDEAD) &&
        conc_lock_release(w->lock))
        w->result = 2;
    return NULL;
}

/* Whether thread `tid` of this process is asleep (state S). */
static int
thread_sleeping(void *p)
{
    struct waiter *w = p;
    uint32_t tid = atomic_load(&w->tid);
    if (tid == 0)
        return 0;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%u/stat", tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *s = strrchr(buf, ')');
    return s && s[1] == ' ' && s[2] == 'S';
}

static void
test_waiters_at_death(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_lock(&sh);
    struct child c;
    start_holder(&c, sh, take_lock, NULL);
    struct waiter w[2] = {{.lock = sh->lock}, {.lock = sh->lock}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, waiter_main, &w[i]), 0);
        assert_true(conc_test_wait_until(thread_sleeping, &w[i], BOUND));
    }
    end_holder(&c, KILLED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    /* One waiter learns of the death and recovers; the other then gets
     * the lock as usual. */
    int dead =
        (w[0].result == CONC_EOWNERDEAD) + (w[1].result == CONC_EOWNERDEAD);
    int ok = (w[0].result == 0) + (w[1].result == 0);
    assert_int_equal(dead, 1);
    assert_int_equal(ok, 1);
    assert_int_equal(conc_lock_locked(sh->lock), 0);
    assert_conc_ok(conc_lock_acquire(sh->lock, 0));
    assert_conc_ok(conc_lock_release(sh->lock));
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

/* ---- Owner death: RLock ------------------------------------------------- */

static int
rlock_usable_proc(struct shared *sh)
{
    if (conc_rlock_acquire(sh->rlock, BOUND) != 0 ||
        conc_rlock_acquire(sh->rlock, 0) != 0)
        return 1;
    sh->data++;
    return conc_rlock_release(sh->rlock) != 0 ||
           conc_rlock_release(sh->rlock) != 0;
}

static void
test_rlock_owner_killed(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_rlock(&sh);
    sh->kill_depth = 3;
    struct child c;
    start_holder(&c, sh, take_rlock, NULL);
    end_holder(&c, KILLED);
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 0);
    assert_conc(conc_rlock_acquire(sh->rlock, BOUND), CONC_EOWNERDEAD);
    /* Held once by the caller, whatever depth the dead owner had. */
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 1);
    assert_conc_ok(conc_rlock_acquire(sh->rlock, 0));
    assert_conc_ok(conc_rlock_make_consistent(sh->rlock));
    assert_conc(conc_rlock_make_consistent(sh->rlock), CONC_EINVAL);
    assert_conc_ok(conc_rlock_release(sh->rlock));
    assert_conc_ok(conc_rlock_release(sh->rlock));
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 0);
    assert_conc(conc_rlock_release(sh->rlock), CONC_ENOTOWNER);
    sh->data = 0;
    run_in_child(sh, rlock_usable_proc);
    assert_int_equal(sh->data, 1);

    /* Died by _exit, and this time the lock is given up unrepaired. */
    sh->kill_depth = 1;
    start_holder(&c, sh, take_rlock, NULL);
    end_holder(&c, EXITED);
    assert_conc(conc_rlock_acquire(sh->rlock, 0), CONC_EOWNERDEAD);
    assert_conc_ok(conc_rlock_release(sh->rlock));
    assert_conc(conc_rlock_acquire(sh->rlock, BOUND), CONC_ENOTRECOVERABLE);
    assert_conc(conc_rlock_acquire(sh->rlock, 0), CONC_ENOTRECOVERABLE);
    assert_int_equal(conc_rlock_is_owned(sh->rlock), 0);
    conc_rlock_free(sh->rlock);
    conc_arena_free(a);
}

/* A shared RLock re-enters through its mutex, with the same ceiling. */
static void
test_shared_rlock_reentry(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_with_rlock(&sh);
    conc_rlock *r = sh->rlock;
    assert_conc_ok(conc_rlock_acquire(r, 0));
    assert_conc_ok(conc_rlock_acquire(r, 0));
    assert_conc_ok(conc_rlock_acquire(r, CONC_FOREVER));
    assert_int_equal(r->count, 3);
    r->count = UINT32_MAX;
    assert_conc(conc_rlock_acquire(r, 0), CONC_EOVERFLOW);
    r->count = 2;
    assert_conc_ok(conc_rlock_release(r));
    assert_int_equal(conc_rlock_is_owned(r), 1);
    assert_conc_ok(conc_rlock_release(r));
    assert_int_equal(conc_rlock_is_owned(r), 0);
    assert_conc(conc_rlock_release(r), CONC_ENOTOWNER);
    assert_conc(conc_rlock_acquire(r, NAN), CONC_EINVAL);
    conc_rlock_free(r);
    conc_arena_free(a);
}

/* ---- Condition whose lock holder dies ------------------------------------
 * The parent waits; a child takes the lock, notifies, and dies holding it.
 * The parent's wait takes the lock back and reports the death. */

static int
notify_and_die_proc(struct shared *sh)
{
    if (conc_cond_acquire(sh->cond, BOUND) != 0)
        return 1;
    if (conc__cond_waiters(sh->cond) != 1)
        return 2;
    if (conc_cond_notify(sh->cond, 1) != 0)
        return 3;
    sh->data = 42;
    _exit(0); /* holding the lock */
}

static void
check_cond_owner_dies(struct shared *sh)
{
    assert_conc_ok(conc_cond_acquire(sh->cond, BOUND));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(notify_and_die_proc(sh));
    sh->data = 0;
    assert_conc(conc_cond_wait(sh->cond, BOUND), CONC_EOWNERDEAD);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(sh->data, 42);
    assert_conc_ok(conc_cond_make_consistent(sh->cond));
    assert_conc_ok(conc_cond_notify(sh->cond, 1));
    assert_int_equal(conc__cond_waiters(sh->cond), 0);
    assert_conc_ok(conc_cond_release(sh->cond));
    assert_conc_ok(conc_cond_acquire(sh->cond, 0));
    assert_conc_ok(conc_cond_release(sh->cond));
}

static void *
cond_wait_main(void *p)
{
    conc_cond *c = p;
    int r = conc_cond_wait(c, 0);
    if (r == 0 && conc_cond_notify(c, 1) != CONC_ENOTOWNER)
        r = 1;
    return (void *)(intptr_t)r;
}

static void
test_cond_owner_dies(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    size_t avail = conc_arena_available(a);
    conc_cond_opts co = {.arena = a};
    assert_conc_ok(conc_cond_new(&co, &sh->cond));
    check_cond_owner_dies(sh);
    assert_conc(conc_cond_make_consistent(sh->cond), CONC_ENOTOWNER);
    conc_cond_free(sh->cond);

    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    co.lock = sh->lock;
    assert_conc_ok(conc_cond_new(&co, &sh->cond));
    check_cond_owner_dies(sh);
    /* A shared Lock has an owner: another thread may neither wait nor
     * notify while the caller holds it. */
    assert_conc_ok(conc_cond_acquire(sh->cond, 0));
    assert_int_equal(conc__lock_held(sh->lock), 1);
    assert_conc(run_thread(cond_wait_main, sh->cond), CONC_ENOTOWNER);
    assert_conc(conc_cond_make_consistent(sh->cond), CONC_EINVAL);
    assert_conc_ok(conc_cond_release(sh->cond));
    assert_conc(conc_cond_wait(sh->cond, 0), CONC_ENOTOWNER);
    conc_cond_free(sh->cond);
    conc_lock_free(sh->lock);
    /* Every waiter record went back to the arena. */
    assert_int_equal(conc_arena_available(a), avail);
    conc_arena_free(a);
}

/* A wait whose lock becomes unusable returns without it: a thread waits, a
 * child takes the lock and dies holding it, and the parent, which finds
 * the dead owner, notifies the waiter and gives the lock up unrepaired. */
struct cond_waiter {
    struct waiter w; /* tid, result */
    conc_cond *cond;
    int held_after;
};

static void *
cond_waiter_main(void *p)
{
    struct cond_waiter *cw = p;
    if (conc_cond_acquire(cw->cond, BOUND) != 0) {
        cw->w.result = 1;
        return NULL;
    }
    atomic_store(&cw->w.tid, conc__tid());
    cw->w.result = conc_cond_wait(cw->cond, BOUND);
    cw->held_after = conc__lock_held(cw->w.lock);
    return NULL;
}

static int
take_when_waiting_proc(struct shared *sh)
{
    if (conc_lock_acquire(sh->lock, BOUND) != 0)
        return 1;
    return conc__cond_waiters(sh->cond) == 1 ? 0 : 2;
}

static void
check_wait_unrecoverable(struct shared *sh)
{
    struct child c;
    assert_int_equal(pipe2(c.up, O_CLOEXEC), 0);
    c.pid = fork();
    assert_true(c.pid >= 0);
    if (c.pid == 0) {
        if (!read_byte(c.up[0], BOUND))
            _exit(3);
        _exit(take_when_waiting_proc(sh)); /* holding the lock */
    }
    struct cond_waiter cw = {.w = {.lock = sh->lock}, .cond = sh->cond};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cond_waiter_main, &cw), 0);
    assert_true(conc_test_wait_until(thread_sleeping, &cw.w, BOUND));
    write_byte(c.up[1]);
    int status;
    assert_int_equal(waitpid(c.pid, &status, 0), c.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(c.up[0]);
    close(c.up[1]);
    assert_conc(conc_cond_acquire(sh->cond, BOUND), CONC_EOWNERDEAD);
    assert_conc_ok(conc_cond_notify(sh->cond, 1));
    assert_conc_ok(conc_cond_release(sh->cond)); /* unrepaired */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_conc(cw.w.result, CONC_ENOTRECOVERABLE);
    assert_int_equal(cw.held_after, 0);
}

static void
test_cond_lock_unrecoverable(void **state)
{
    (void)state;
    struct shared *sh;
    conc_arena *a = shared_new(&sh);
    conc_sync_opts so = {.arena = a};
    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    conc_cond_opts co = {.arena = a, .lock = sh->lock};
    assert_conc_ok(conc_cond_new(&co, &sh->cond));
    /* Break the lock: a dead owner, released unrepaired. */
    die_holding_lock(sh, EXITED);
    assert_conc(conc_lock_acquire(sh->lock, 0), CONC_EOWNERDEAD);
    assert_conc_ok(conc_lock_release(sh->lock));
    assert_conc(conc_cond_acquire(sh->cond, 0), CONC_ENOTRECOVERABLE);
    assert_conc(conc_cond_wait(sh->cond, 0), CONC_ENOTOWNER);
    conc_cond_free(sh->cond);
    conc_lock_free(sh->lock);

    assert_conc_ok(conc_lock_new(&so, &sh->lock));
    assert_conc_ok(conc_cond_new(&co, &sh->cond));
    check_wait_unrecoverable(sh);
    conc_cond_free(sh->cond);
    conc_lock_free(sh->lock);
    conc_arena_free(a);
}

/* ---- Allocation ----------------------------------------------------------
 * A shared lock needs room for its mutex too; a full arena refuses it. */
static void
test_shared_alloc_failure(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 14, &a));
    conc_sync_opts so = {.arena = a};
    void *p;
    while (conc_arena_alloc(a, 64, &p) == 0)
        ;
    conc_lock *l = NULL;
    conc_rlock *r = NULL;
    assert_conc(conc_lock_new(&so, &l), CONC_ENOMEM);
    assert_conc(conc_rlock_new(&so, &r), CONC_ENOMEM);
    assert_null(l);
    assert_null(r);
    conc_arena_free(a);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_make_consistent_errors),
        conc_unit_test(test_shared_lock_owner),
        conc_unit_test(test_shared_timeouts),
        conc_unit_test(test_lock_owner_killed),
        conc_unit_test(test_lock_owner_dead_poll),
        conc_unit_test(test_lock_not_recoverable),
        conc_unit_test(test_lock_owner_thread_exited),
        conc_unit_test(test_dead_owner_id_reused),
        conc_unit_test(test_waiters_at_death),
        conc_unit_test(test_rlock_owner_killed),
        conc_unit_test(test_shared_rlock_reentry),
        conc_unit_test(test_cond_owner_dies),
        conc_unit_test(test_cond_lock_unrecoverable),
        conc_unit_test(test_shared_alloc_failure),
    };
    return conc_run_tests(tests);
}
