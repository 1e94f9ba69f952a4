/* Failure reporting (threading.excepthook) and the end of the program:
 * waiting for non-daemon threads at exit, and conc_exit.
 *
 * Daemon threads in C. Python's interpreter, before it exits, joins every
 * thread not marked daemon; daemon threads are simply abandoned. C has no
 * interpreter, so conc registers the first stage of its exit sequence
 * (core/internal.h) when it starts its first thread: exit() (and returning
 * from main, which calls it) first waits until every non-daemon thread conc
 * started has ended, then goes on to the later stages (children, shared
 * memory) and the other handlers, and ends the process, which stops the
 * daemon threads wherever they are. conc_exit does the same wait explicitly,
 * then calls exit. _exit, quick_exit and fatal signals wait for nobody.
 *
 * The wait needs no list: `nondaemon` counts the non-daemon threads that
 * have not ended. A thread decrements it as the very last thing it does,
 * after its locals' destructors, and wakes the exiting thread only if one
 * announced itself in `exiting` (so ordinary thread ends make no system
 * call). The two sides are Dekker's pattern: each writes its own word and
 * then reads the other's, with sequentially consistent order, so at least
 * one of them sees the other; the futex wait re-checks the count. A thread
 * started while exit waits is counted before its creator can end, so it is
 * waited for too, as in Python. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "thread/thread_internal.h"

/* ---- excepthook ------------------------------------------------------------
 */

static conc__lockword hook_lock;
static conc_excepthook_fn hook_fn; /* guarded by hook_lock; NULL: default */
static void *hook_arg;             /* guarded by hook_lock */

void
conc_set_excepthook(conc_excepthook_fn hook, void *arg)
{
    conc__lockword_acquire(&hook_lock, CONC__FOREVER, 0);
    hook_fn = hook;
    hook_arg = hook ? arg : NULL;
    conc__lockword_release(&hook_lock, 0);
}

/* Prints the report in one call, so reports of threads failing together do
 * not interleave. An empty message is replaced by the code's description. */
static void
default_hook(const conc_thread_failure *f)
{
    const char *msg = f->message[0] ? f->message : conc_strerror(f->status);
    fprintf(stderr, "Exception in thread %s: %s: %s\n",
            conc_thread_name(f->thread), conc_err_name(f->status), msg);
}

void
conc__thread_report_failure(conc_thread *t, int status)
{
    conc__lockword_acquire(&hook_lock, CONC__FOREVER, 0);
    conc_excepthook_fn fn = hook_fn;
    void *arg = hook_arg;
    conc__lockword_release(&hook_lock, 0);

    conc_thread_failure f = {
        .thread = t,
        .status = status,
        .message = conc_failure_message(),
    };
    if (fn)
        fn(arg, &f);
    else
        default_hook(&f);
}

void
conc__hook_atfork_prepare(void)
{
    conc__lockword_acquire(&hook_lock, CONC__FOREVER, 0);
}

void
conc__hook_atfork_parent(void)
{
    conc__lockword_release(&hook_lock, 0);
}

void
conc__hook_atfork_child(void)
{
    conc__thread_lock_reset(&hook_lock);
}

/* ---- Waiting for non-daemon threads -----------------------------------------
 */

static _Atomic uint32_t nondaemon; /* futex: non-daemon threads not ended */
static _Atomic uint32_t exiting;   /* someone waits for nondaemon to drop */
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void join_nondaemon(void);

static void
register_atexit(void)
{
    conc__at_exit(CONC__EXIT_THREADS, join_nondaemon);
}

void
conc__nondaemon_add(void)
{
    pthread_once(&atexit_once, register_atexit);
    atomic_fetch_add(&nondaemon, 1);
}

void
conc__nondaemon_remove(void)
{
    atomic_fetch_sub(&nondaemon, 1);
    if (atomic_load(&exiting))
        conc__futex_wake(&nondaemon, INT32_MAX, 0);
}

void
conc__nondaemon_after_fork(uint32_t self_counted)
{
    atomic_store(&nondaemon, self_counted);
    atomic_store(&exiting, 0);
}

/* Waits until every non-daemon thread conc started has ended, except the
 * calling thread, which cannot wait for itself. */
static void
join_nondaemon(void)
{
    conc_thread *self = conc__tls.self;
    uint32_t mine = self && self->kind == CONC__THREAD_STARTED && !self->daemon;
    atomic_store(&exiting, 1);
    for (;;) {
        uint32_t n = atomic_load(&nondaemon);
        if (n <= mine)
            break;
        conc__futex_wait(&nondaemon, n, CONC__FOREVER, 0);
    }
}

_Noreturn void
conc_exit(int status)
{
    join_nondaemon();
    exit(status);
}
