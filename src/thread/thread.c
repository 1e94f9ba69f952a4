/* Starting, joining and freeing threads (threading.Thread).
 *
 * Life of a handle. conc_thread_start allocates the handle and its name in
 * one block with one reference for the new thread and one for the
 * creator, lists it in the registry and calls pthread_create. The thread
 * (trampoline) names itself, publishes `started`, runs the function,
 * reports a failure to the excepthook, leaves the visible registry, runs
 * its locals' destructors, then unlists itself and publishes `done` in one
 * step, and drops its reference. The creator keeps its reference as the
 * caller's handle, or drops it once the thread has started. Whoever drops
 * the last reference frees the block; if nobody joined the OS thread by
 * then, it is detached so that it cannot leak.
 *
 * Starting. CPython's start() waits until the new thread has set itself
 * up, and then, since the new thread holds the GIL, until it first
 * blocks, returns, or has run for the switch interval (5 ms); only then
 * does the starting thread go on. Programs written for Python rely on
 * that order without knowing it: a thread's first lines print before
 * what the starter does next, and a thread that starts by waiting on a
 * Condition waits before the next thread notifies it. conc keeps the
 * order, not the GIL: conc_thread_start returns once the new thread is
 * in its function and then asleep in any system call, or returned, or
 * has used HOLD_CPU_NS of CPU; from then on both run in parallel.
 *
 * One futex word, `started`, carries the phases (STARTING, RUNNING,
 * RETURNED) and a bit that says the creator may sleep on it; the thread
 * sets each phase with one exchange and calls futex wake only if the bit
 * was set. The creator spins a moment for RUNNING (a new thread usually
 * runs within microseconds), then sleeps. While RUNNING it sleeps in
 * short slices, and after each asks the kernel whether the thread sleeps
 * ('S' or 'D' in /proc: blocked in a lock, a queue, a sleep or any I/O)
 * and how much CPU it used. Every question is about the thread's own
 * progress, never the clock, so the order holds on a loaded machine;
 * only without /proc does a wall-clock bound stand in. A thread whose
 * function returns at once (the common start-and-join) costs one futex
 * wake, as a plain handshake would.
 *
 * Joining. The OS thread must be reaped exactly once, however many threads
 * join. The `reap` word elects the reaper: a joiner that wins FREE -> BUSY
 * calls pthread_join and then publishes REAPED; the others sleep on the
 * word. A joiner without a time limit reaps at once (pthread_join is the
 * cheapest wait there is); a joiner with a deadline first sleeps on `done`
 * with that deadline, and reaps only once the thread has ended, when
 * pthread_join returns promptly. Sleepers announce themselves by setting a
 * "waited" state, so a thread that nobody waits for ends without a wake-up
 * system call. */
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/wait.h"
#include "thread/thread_internal.h"
#include "unix/platform.h"
#include "unix/coro.h"

/* Numbers Thread-N and Dummy-N, from 1, process-wide. */
static _Atomic unsigned long name_counter;

size_t
conc__thread_default_name(char *buf, size_t size, const char *prefix)
{
    unsigned long n =
        atomic_fetch_add_explicit(&name_counter, 1, memory_order_relaxed) + 1;
    char digits[24];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t len = strlen(prefix);
    CONC__ASSERT(len + 1 + nd < size);
    memcpy(buf, prefix, len);
    buf[len++] = '-';
    while (nd)
        buf[len++] = digits[--nd];
    buf[len] = '\0';
    return len;
}

void
conc__thread_os_name(char os_name[16], const char *name)
{
    size_t n = strlen(name);
    if (n > 15)
        n = 15;
    memcpy(os_name, name, n);
    os_name[n] = '\0';
}

/* ---- References ---------------------------------------------------------- */

void
conc__thread_release(conc_thread *t)
{
    if (t->kind == CONC__THREAD_MAIN)
        return; /* static: lives as long as the process */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* The last reference: the thread has dropped its own, so it has ended
     * or is past its last touch of the handle. */
    if (t->kind == CONC__THREAD_STARTED &&
        atomic_load_explicit(&t->reap, memory_order_relaxed) != CONC__REAPED &&
        t->fork_gen ==
            atomic_load_explicit(&conc__fork_gen, memory_order_relaxed))
        pthread_detach(
            (pthread_t)atomic_load_explicit(&t->ident, memory_order_relaxed));
    if (t->name_heap)
        conc__free(t->name);
    conc__free(t);
}

void
conc_thread_free(conc_thread *t)
{
    if (t)
        conc__thread_release(t);
}

/* ---- Publication of the thread's identity and end ------------------------ */

void
conc__thread_publish_tid(conc_thread *t, uint32_t tid)
{
    uint32_t old = atomic_exchange_explicit(&t->tid, tid, memory_order_release);
    if (old == UINT32_MAX)
        conc__futex_wake(&t->tid, INT32_MAX, 0);
}

/* The kernel id of a live thread, without a system call: Linux encodes it
 * in the thread's CPU-time clock id (MAKE_THREAD_CPUCLOCK: ~tid << 3 | 6),
 * which glibc and musl compute from the id they keep. Returns 0 if the
 * encoding is not the expected one. */
static uint32_t
tid_of(pthread_t pt)
{
    clockid_t c;
    if (pthread_getcpuclockid(pt, &c) || (c & 7) != 6)
        return 0;
    long tid = ~((long)c >> 3);
    return tid > 0 && tid < (long)CONC__TID_NONE ? (uint32_t)tid : 0;
}

/* Waits until the thread has published its kernel id. A thread that
 * exists publishes it first thing, so the wait is short. */
static uint32_t
wait_tid(const conc_thread *ct)
{
    conc_thread *t = (conc_thread *)ct;
    for (;;) {
        uint32_t v = atomic_load_explicit(&t->tid, memory_order_acquire);
        if (v != 0 && v != UINT32_MAX)
            return v;
        if (v == 0 && !atomic_compare_exchange_strong_explicit(
                          &t->tid, &v, UINT32_MAX, memory_order_relaxed,
                          memory_order_relaxed))
            continue;
        conc__futex_wait(&t->tid, UINT32_MAX, CONC__FOREVER, 0);
    }
}

uint32_t
conc__thread_mark_done(conc_thread *t)
{
    return atomic_exchange_explicit(&t->done, CONC__DONE, memory_order_acq_rel);
}

void
conc__thread_wake_joiners(conc_thread *t, uint32_t old_done)
{
    if (old_done == CONC__RUNNING_WAITED)
        conc__futex_wake(&t->done, INT32_MAX, 0);
}

/* ---- Starting ------------------------------------------------------------ */

static int claim(conc_thread *t);
static void unclaim(conc_thread *t, uint32_t to);

/* The thread names itself for the OS; see conc_thread_set_name. */
static void
name_self(conc_thread *t)
{
    conc__lockword_acquire(&t->name_lock, CONC__FOREVER, 0);
    pthread_setname_np(pthread_self(), t->os_name);
    t->os_named = 1;
    conc__lockword_release(&t->name_lock, 0);
}

/* Publishes the thread's phase and wakes its creator if it sleeps. */
static void
enter_phase(conc_thread *t, uint32_t phase)
{
    if (atomic_exchange_explicit(&t->started, phase, memory_order_release) &
        CONC__START_WAITED)
        conc__futex_wake(&t->started, 1, 0);
}

static void *
trampoline(void *arg)
{
    conc_thread *t = arg;
    struct conc__thread_tls *me = &conc__tls;
    me->self = t;
    me->exit_hooked = 1;
    pthread_t pt = pthread_self();
    atomic_store_explicit(&t->ident, (unsigned long)pt, memory_order_relaxed);
    uint32_t tid = tid_of(pt);
    conc__thread_publish_tid(t, tid ? tid : conc__tid());
    name_self(t);
    conc_clear_failure();
    /* The creator holds its reference until it has seen RUNNING change. */
    enter_phase(t, CONC__PHASE_RUNNING);
    int status = t->fn(t->arg);
    enter_phase(t, CONC__PHASE_RETURNED);
    t->status = status;
    if (status < 0)
        conc__thread_report_failure(t, status);
    conc__registry_finish(t);
    conc__local_thread_exit();
    me->exit_hooked = 0;
    conc__registry_remove(t);
    me->self = NULL;
    int daemon = t->daemon;
    conc__thread_release(t);
    if (!daemon)
        conc__nondaemon_remove(); /* last: exit() may go on from here */
    return NULL;
}

/* The creating thread's daemon flag, without making it a handle: a
 * foreign thread would get a daemon Dummy handle, the main thread is not a
 * daemon. */
static int
creator_daemon(void)
{
    conc_thread *self = conc__tls.self;
    if (self)
        return self->daemon;
    return conc__tid() != (uint32_t)getpid();
}

static conc_thread *
new_handle(conc_thread_fn fn, void *arg, const conc_thread_opts *opts)
{
    char def[32];
    const char *name = opts->name;
    if (!name || !*name) {
        conc__thread_default_name(def, sizeof def, "Thread");
        name = def;
    }
    size_t len = strlen(name);
    conc_thread *t = conc__malloc(sizeof *t + len + 1);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    atomic_init(&t->refs, 2); /* the thread's and the creator's */
    t->kind = CONC__THREAD_STARTED;
    t->fork_gen = atomic_load_explicit(&conc__fork_gen, memory_order_relaxed);
    if (opts->daemon == CONC_DAEMON_INHERIT)
        t->daemon = (uint8_t)creator_daemon();
    else
        t->daemon = opts->daemon == CONC_DAEMON_YES;
    memcpy(t->name_buf, name, len + 1);
    t->name = t->name_buf;
    conc__thread_os_name(t->os_name, name);
    t->fn = fn;
    t->arg = arg;
    return t;
}

/* Undoes a start whose pthread_create failed. enumerate may have handed
 * out references meanwhile, so the handle ends as a thread that ran and
 * was reaped, and is freed through its references. */
static void
abandon(conc_thread *t)
{
    if (!t->daemon)
        conc__nondaemon_remove();
    atomic_store_explicit(&t->reap, CONC__REAPED, memory_order_relaxed);
    conc__thread_publish_tid(t, CONC__TID_NONE);
    conc__registry_remove(t);
    conc__thread_release(t); /* the creator's */
    conc__thread_release(t); /* the thread's, which never ran */
}

/* The CPU a new thread may use before its creator goes on without waiting
 * for it to block: CPython's switch interval (sys.getswitchinterval()). */
#define HOLD_CPU_NS 5000000

/* The creator's sleep slices while the new thread runs: the first short,
 * as most threads block within microseconds, doubling up to the longest. */
#define HOLD_SLICE_MIN_NS 20000
#define HOLD_SLICE_MAX_NS 1000000

static uint32_t
phase_of(conc_thread *t)
{
    return atomic_load_explicit(&t->started, memory_order_acquire) &
           ~CONC__START_WAITED;
}

/* Sleeps until the thread leaves `phase`, or until `deadline`. Returns the
 * phase it is in then. */
static uint32_t
await_phase(conc_thread *t, uint32_t phase, int64_t deadline)
{
    uint32_t v = phase;
    if (!atomic_compare_exchange_strong_explicit(
            &t->started, &v, phase | CONC__START_WAITED, memory_order_acquire,
            memory_order_acquire) &&
        v != (phase | CONC__START_WAITED))
        return v & ~CONC__START_WAITED;
    conc__futex_wait(&t->started, phase | CONC__START_WAITED, deadline, 0);
    return phase_of(t);
}

/* Waits while the thread is in its function and neither asleep in the
 * kernel nor past HOLD_CPU_NS of CPU (see the top of this file). */
static void
hold_first_run(conc_thread *t)
{
    /* A spin catches a function that returns at once (core/wait.h). */
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, CONC__FOREVER);
    while (phase_of(t) == CONC__PHASE_RUNNING && conc__spin_more(&sp))
        ;
    if (phase_of(t) != CONC__PHASE_RUNNING)
        return;
    uint32_t tid = atomic_load_explicit(&t->tid, memory_order_acquire);
    int64_t cpu0 = conc__thread_cpu_ns(tid);
    int64_t wall_end = conc__now_ns() + HOLD_CPU_NS;
    int64_t slice = HOLD_SLICE_MIN_NS;
    while (await_phase(t, CONC__PHASE_RUNNING, conc__now_ns() + slice) ==
           CONC__PHASE_RUNNING) {
        char state = 0;
        uint64_t since;
        if (conc__thread_stat(tid, &state, &since) == 0 && state != 'R')
            return; /* asleep, stopped or ending */
        int64_t cpu = conc__thread_cpu_ns(tid);
        if (cpu < 0 || cpu0 < 0 || cpu - cpu0 >= HOLD_CPU_NS)
            return;
        if (!state && conc__now_ns() >= wall_end)
            return; /* no /proc: the clock decides */
        if (slice < HOLD_SLICE_MAX_NS)
            slice *= 2;
    }
}

/* Waits until the thread is in its function, then while it runs its first
 * stretch. The creator holds a reference, so `t` lives throughout. */
static void
wait_started(conc_thread *t, int hold)
{
    /* A new thread on an idle core runs within a few microseconds; a
     * creator that spins longer takes the CPU from it on a busy machine,
     * which is the spin policy of core/wait.h. */
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, CONC__FOREVER);
    while (phase_of(t) == CONC__PHASE_STARTING && conc__spin_more(&sp))
        ;
    while (phase_of(t) == CONC__PHASE_STARTING)
        await_phase(t, CONC__PHASE_STARTING, CONC__FOREVER);
    if (hold)
        hold_first_run(t);
}

/* Stores the new thread's ident and kernel id from the creator, so that a
 * joiner or conc_thread_native_id need not wait for the thread to run and
 * store them itself. The claim on `reap` keeps the pthread_t from being
 * reaped (through a handle from enumerate) while it is read; the kernel id
 * is stored only if the thread has not stored it first. */
static void
publish_early(conc_thread *t, pthread_t pt)
{
    atomic_store_explicit(&t->ident, (unsigned long)pt, memory_order_relaxed);
    if (!claim(t))
        return;
    uint32_t tid = tid_of(pt);
    uint32_t v = atomic_load_explicit(&t->tid, memory_order_relaxed);
    while (tid && (v == 0 || v == UINT32_MAX)) {
        if (atomic_compare_exchange_weak_explicit(
                &t->tid, &v, tid, memory_order_release, memory_order_relaxed)) {
            if (v == UINT32_MAX)
                conc__futex_wake(&t->tid, INT32_MAX, 0);
            break;
        }
    }
    unclaim(t, CONC__REAP_FREE);
}

/* Prepares attributes for a stack size; *ap stays NULL for the default. */
static int
make_attr(pthread_attr_t *attr, size_t stack_size, pthread_attr_t **ap)
{
    *ap = NULL;
    if (!stack_size)
        return 0;
    if (stack_size < (size_t)PTHREAD_STACK_MIN)
        return CONC_EINVAL;
    int r = pthread_attr_init(attr);
    if (r)
        return -r;
    r = pthread_attr_setstacksize(attr, stack_size);
    if (r) {
        pthread_attr_destroy(attr);
        return -r;
    }
    *ap = attr;
    return 0;
}

int
conc_thread_start(conc_thread_fn fn, void *arg, const conc_thread_opts *opts,
                  conc_thread **out)
{
    static const conc_thread_opts defaults;
    pthread_attr_t attr, *ap;
    if (!opts)
        opts = &defaults;
    if (!fn || (unsigned)opts->daemon > CONC_DAEMON_NO)
        return CONC_EINVAL;
    int r = make_attr(&attr, opts->stack_size, &ap);
    if (r)
        return r;
    conc_thread *t = new_handle(fn, arg, opts);
    if (!t) {
        r = CONC_ENOMEM;
        goto out;
    }
    conc__registry_add(t);
    if (!t->daemon)
        conc__nondaemon_add();
    pthread_t pt;
    r = -pthread_create(&pt, ap, trampoline, t);
    if (r) {
        abandon(t);
        goto out;
    }
    publish_early(t, pt);
    wait_started(t, !opts->parallel_start);
    if (out)
        *out = t;
    else
        conc__thread_release(t);
out:
    if (ap)
        pthread_attr_destroy(ap);
    return r;
}

/* ---- Joining ------------------------------------------------------------- */

/* Waits for `done` until the deadline. Returns 0 or CONC_ETIMEDOUT. */
static int
wait_done(conc_thread *t, int64_t deadline)
{
    for (;;) {
        uint32_t v = atomic_load_explicit(&t->done, memory_order_acquire);
        if (v == CONC__DONE)
            return 0;
        if (v == CONC__RUNNING &&
            !atomic_compare_exchange_strong_explicit(
                &t->done, &v, CONC__RUNNING_WAITED, memory_order_relaxed,
                memory_order_relaxed))
            continue;
        if (conc__futex_wait(&t->done, CONC__RUNNING_WAITED, deadline, 0) ==
                -ETIMEDOUT &&
            atomic_load_explicit(&t->done, memory_order_acquire) != CONC__DONE)
            return CONC_ETIMEDOUT;
    }
}

/* Gives up the BUSY claim on `reap`, publishing `to`. */
static void
unclaim(conc_thread *t, uint32_t to)
{
    uint32_t old = atomic_exchange_explicit(&t->reap, to, memory_order_acq_rel);
    if (old == CONC__REAP_BUSY_WAITED)
        conc__futex_wake(&t->reap, INT32_MAX, 0);
}

static int
claim(conc_thread *t)
{
    uint32_t v = CONC__REAP_FREE;
    return atomic_compare_exchange_strong_explicit(
        &t->reap, &v, CONC__REAP_BUSY, memory_order_acquire,
        memory_order_relaxed);
}

/* Sleeps while another thread holds the BUSY claim. Returns 0 to look
 * again, or CONC_ETIMEDOUT. */
static int
wait_claim(conc_thread *t, uint32_t v, int64_t deadline)
{
    if (v == CONC__REAP_BUSY && !atomic_compare_exchange_strong_explicit(
                                    &t->reap, &v, CONC__REAP_BUSY_WAITED,
                                    memory_order_relaxed, memory_order_relaxed))
        return 0;
    if (conc__futex_wait(&t->reap, CONC__REAP_BUSY_WAITED, deadline, 0) ==
            -ETIMEDOUT &&
        atomic_load_explicit(&t->reap, memory_order_acquire) != CONC__REAPED)
        return CONC_ETIMEDOUT;
    return 0;
}

/* Makes sure the thread has ended and its OS thread is reaped. */
static int
reap(conc_thread *t, int64_t deadline)
{
    for (;;) {
        uint32_t v = atomic_load_explicit(&t->reap, memory_order_acquire);
        if (v == CONC__REAPED)
            return 0;
        if (v != CONC__REAP_FREE) {
            int r = wait_claim(t, v, deadline);
            if (r)
                return r;
            continue;
        }
        if (deadline != CONC__FOREVER) {
            int r = wait_done(t, deadline);
            if (r)
                return r;
        }
        if (claim(t)) {
            /* In a forked child, the threads of the parent do not exist. */
            if (t->fork_gen ==
                atomic_load_explicit(&conc__fork_gen, memory_order_relaxed))
                pthread_join((pthread_t)conc_thread_ident(t), NULL);
            unclaim(t, CONC__REAPED);
            return 0;
        }
    }
}

static int
is_self(const conc_thread *t)
{
    if (t == conc__tls.self)
        return 1;
    return t->kind != CONC__THREAD_STARTED &&
           atomic_load_explicit((_Atomic uint32_t *)&t->tid,
                                memory_order_relaxed) == conc__tid();
}

static int
thread_join_uncancelled(conc_thread *t, double timeout, int *status)
{
    int64_t deadline;
    if (!t || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (is_self(t))
        return CONC_EDEADLK;
    if (t->kind != CONC__THREAD_STARTED)
        return CONC_ESTATE;
    int r = reap(t, deadline);
    if (r)
        return r;
    if (status)
        *status = t->status;
    return 0;
}

int
conc_thread_join(conc_thread *t, double timeout, int *status)
{
    CONC__CANCEL_POINT(thread_join_uncancelled(t, timeout, status));
}

/* ---- Accessors ------------------------------------------------------------
 */

int
conc_thread_is_alive(const conc_thread *t)
{
    if (!t)
        return CONC_EINVAL;
    return atomic_load_explicit((_Atomic uint32_t *)&t->done,
                                memory_order_acquire) != CONC__DONE;
}

const char *
conc_thread_name(const conc_thread *t)
{
    if (!t)
        return NULL;
    return t->name;
}

int
conc_thread_daemon(const conc_thread *t)
{
    if (!t)
        return CONC_EINVAL;
    return t->daemon;
}

unsigned long
conc_thread_ident(const conc_thread *t)
{
    if (!t)
        return 0;
    unsigned long id = atomic_load_explicit((_Atomic unsigned long *)&t->ident,
                                            memory_order_relaxed);
    if (id)
        return id;
    wait_tid(t);
    return atomic_load_explicit((_Atomic unsigned long *)&t->ident,
                                memory_order_relaxed);
}

long
conc_thread_native_id(const conc_thread *t)
{
    if (!t)
        return 0;
    uint32_t tid = wait_tid(t);
    return tid == CONC__TID_NONE ? 0 : (long)tid;
}

/* ---- Renaming -------------------------------------------------------------
 */

/* Tells the OS. A thread renames itself directly. Another thread conc
 * started is renamed through its pthread_t, which the BUSY claim keeps
 * from being reaped meanwhile; if it has not named itself yet, it will
 * pick the new name up when it does. Main and dummy threads are renamed
 * for the OS only by themselves, since nothing keeps their pthread_t
 * valid. */
static void
rename_os(conc_thread *t, const char *name)
{
    conc__lockword_acquire(&t->name_lock, CONC__FOREVER, 0);
    conc__thread_os_name(t->os_name, name);
    if (is_self(t)) {
        pthread_setname_np(pthread_self(), t->os_name);
    } else if (t->kind == CONC__THREAD_STARTED && t->os_named && claim(t)) {
        if (conc_thread_is_alive(t))
            pthread_setname_np((pthread_t)conc_thread_ident(t), t->os_name);
        unclaim(t, CONC__REAP_FREE);
    }
    conc__lockword_release(&t->name_lock, 0);
}

int
conc_thread_set_name(conc_thread *t, const char *name)
{
    if (!t || !name || !*name)
        return CONC_EINVAL;
    char *copy = conc__strdup(name);
    if (!copy)
        return CONC_ENOMEM;
    char *old = t->name_heap ? t->name : NULL;
    t->name = copy;
    t->name_heap = 1;
    conc__free(old);
    rename_os(t, copy);
    return 0;
}
