/* The watchdog: a task that runs too long without suspending is reported,
 * with its name and its stack, always (asyncio does it in debug mode only,
 * and without the stack).
 *
 * The loops count the task steps they begin and show which task runs;
 * a thread of the watchdog's own looks at every running loop several
 * times per bound. A loop whose count has not moved for longer than its
 * bound while a task runs is stuck in that task: the watchdog asks the
 * loop's thread for its stack with a SIGURG, whose handler walks the
 * frame pointers of the interrupted code inside the task's stack
 * (async-signal-safe: it reads memory and stores addresses), then reports
 * once per stretch. The thread ends when no loop runs, so a program
 * without a running loop has no extra thread.
 *
 * Cost to the loop: a relaxed increment and a pointer store per step. */
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

#include "aio/aio_internal.h"
#include "unix/fdwait.h"

#define LOOKS_PER_BOUND 4
#define LOOK_MIN_NS     (5 * 1000000LL)
#define LOOK_MAX_NS     (25 * 1000000LL)
#define SIGNAL_WAIT_NS  (20 * 1000000LL)

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static int wd_running;
static int handler_installed;
static struct sigaction previous;

/* ---- The stack of the interrupted task (signal handler) ----------------- */

static int
walk(void *pc, void *fp, void *lo, size_t size, void **pcs, int max)
{
    int n = 0;
    pcs[n++] = pc;
    /* Frame pointers are checked as numbers: the interrupted code's frame
     * pointer may hold anything, and arithmetic on a pointer outside the
     * stack would itself be undefined. */
    uintptr_t low = (uintptr_t)lo, high = low + size;
    while (n < max) {
        uintptr_t f = (uintptr_t)fp;
        if (f < low || f > high || high - f < 2 * sizeof(void *) ||
            (f & (sizeof(void *) - 1)))
            break;
        void *next = ((void **)fp)[0], *ret = ((void **)fp)[1];
        if (!ret)
            break; /* the zeroed base frame */
        pcs[n++] = ret;
        if ((uintptr_t)next <= f)
            break;
        fp = next;
    }
    return n;
}

static void
on_sigurg(int sig, siginfo_t *si, void *ucv)
{
    conc_aio_loop *loop = conc__aio_running;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!loop || !t || !t->fiber ||
        !atomic_load_explicit(&loop->wd_want, memory_order_acquire)) {
        /* Not ours: the handler installed before, or SIGURG's default
         * (ignore). */
        if (previous.sa_flags & SA_SIGINFO)
            previous.sa_sigaction(sig, si, ucv);
        else if (previous.sa_handler != SIG_IGN &&
                 previous.sa_handler != SIG_DFL)
            previous.sa_handler(sig);
        return;
    }
    ucontext_t *uc = ucv;
    void *pc = NULL, *fp = NULL;
#if defined(__x86_64__)
    pc = (void *)uc->uc_mcontext.gregs[REG_RIP];
    fp = (void *)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
    pc = (void *)uc->uc_mcontext.pc;
    fp = (void *)uc->uc_mcontext.regs[29];
#else
    (void)uc;
#endif
    void *lo;
    size_t size = conc__fiber_stack(t->fiber, &lo);
    int n = pc ? walk(pc, fp, lo, size, loop->wd_pcs, CONC__AIO_WD_FRAMES) : 0;
    atomic_store_explicit(&loop->wd_npcs, n, memory_order_relaxed);
    atomic_store_explicit(&loop->wd_want, 0, memory_order_release);
}

static void
install_handler(void)
{
    if (handler_installed)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigurg;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGURG, &sa, &previous) == 0)
        handler_installed = 1;
}

/* ---- Looking at the loops (watchdog thread) --------------------------------
 */

static void
report(conc_aio_loop *loop, const char *name, double seconds, void **pcs, int n)
{
    if (loop->watchdog_fn) {
        loop->watchdog_fn(loop->watchdog_arg, name, seconds, pcs, n);
        return;
    }
    fprintf(stderr,
            "conc: watchdog: task '%s' has run %.3f s without suspending; "
            "its stack:\n",
            name, seconds);
    backtrace_symbols_fd(pcs, n, 2);
}

/* Takes the running task's stack from the loop's thread. */
static int
take_stack(conc_aio_loop *loop, void **pcs)
{
    atomic_store_explicit(&loop->wd_npcs, 0, memory_order_relaxed);
    atomic_store_explicit(&loop->wd_want, 1, memory_order_release);
    if (pthread_kill(loop->thread, SIGURG) != 0) {
        atomic_store(&loop->wd_want, 0);
        return 0;
    }
    int64_t until = conc__now_ns() + SIGNAL_WAIT_NS;
    while (atomic_load_explicit(&loop->wd_want, memory_order_acquire) &&
           conc__now_ns() < until)
        conc__poll_until(NULL, 0, conc__now_ns() + 100000);
    if (atomic_exchange(&loop->wd_want, 0))
        return 0; /* no answer: the thread blocks signals, or moved on */
    int n = atomic_load_explicit(&loop->wd_npcs, memory_order_relaxed);
    memcpy(pcs, loop->wd_pcs, (size_t)n * sizeof *pcs);
    return n;
}

static void
look(conc_aio_loop *loop, void *arg)
{
    (void)arg;
    if (conc_aio_loop_is_running(loop) != 1 || !loop->watchdog_ns)
        return;
    int64_t now = conc__now_ns();
    uint64_t steps = atomic_load_explicit(&loop->steps, memory_order_relaxed);
    struct conc__aio_task *t =
        atomic_load_explicit(&loop->in_step, memory_order_acquire);
    if (steps != loop->wd_steps_seen || !t) {
        loop->wd_steps_seen = steps;
        loop->wd_since = now;
        loop->wd_reported = 0;
        return;
    }
    if (loop->wd_reported || now - loop->wd_since < loop->watchdog_ns)
        return;
    loop->wd_reported = 1;
    void *pcs[CONC__AIO_WD_FRAMES];
    int n = take_stack(loop, pcs);
    char name[128];
    pthread_mutex_lock(&loop->lock);
    /* The task is still the loop's (its step has not ended) if the count
     * has not moved: only then is its name safe to read. */
    int same =
        atomic_load(&loop->steps) == steps && atomic_load(&loop->in_step) == t;
    snprintf(name, sizeof name, "%s", same ? t->name : "?");
    pthread_mutex_unlock(&loop->lock);
    if (same)
        report(loop, name, (double)(now - loop->wd_since) / 1e9, pcs, n);
}

static int64_t shortest_bound;

static void
bound_of(conc_aio_loop *loop, void *arg)
{
    (void)arg;
    if (loop->watchdog_ns &&
        (!shortest_bound || loop->watchdog_ns < shortest_bound))
        shortest_bound = loop->watchdog_ns;
}

static void *
watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&wd_lock);
        shortest_bound = 0;
        int running = conc__aio_registry_each(bound_of, NULL);
        if (!running) {
            wd_running = 0;
            pthread_mutex_unlock(&wd_lock);
            return NULL;
        }
        pthread_mutex_unlock(&wd_lock);
        int64_t gap = shortest_bound / LOOKS_PER_BOUND;
        gap = gap < LOOK_MIN_NS   ? LOOK_MIN_NS
              : gap > LOOK_MAX_NS ? LOOK_MAX_NS
                                  : gap;
        conc__poll_until(NULL, 0, conc__now_ns() + gap);
        conc__aio_registry_each(look, NULL);
    }
}

void
conc__aio_watchdog_fork_lock(int take)
{
    if (take)
        pthread_mutex_lock(&wd_lock);
    else
        pthread_mutex_unlock(&wd_lock);
}

void
conc__aio_watchdog_atfork_child(void)
{
    wd_running = 0; /* the thread stayed in the parent */
}

void
conc__aio_watchdog_ensure(void)
{
    pthread_mutex_lock(&wd_lock);
    if (!wd_running) {
        install_handler();
        pthread_attr_t attr;
        pthread_t th;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        /* The thread must not take the signals meant for loops. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&th, &attr, watchdog_main, NULL) == 0)
            wd_running = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&wd_lock);
}
