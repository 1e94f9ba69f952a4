/* The loop: its life (new, run, stop, close, free) and one iteration.
 *
 * One iteration follows asyncio's _run_once: take what other threads sent;
 * compute how long to wait (0 if anything is ready or the loop is
 * stopping, else until the earliest timer); wait for descriptors; move the
 * timers that are due to the ready queue; then run exactly the callbacks
 * that were ready at that moment, so that callbacks scheduled meanwhile
 * run in the next iteration. The wait uses epoll_pwait2, whose timeout is
 * in nanoseconds, so a timer is neither early (the loop compares against
 * the clock, never against the wait's own timeout) nor a millisecond late;
 * where the kernel lacks it, epoll_wait with the timeout rounded up.
 *
 * A loop runs on its thread's own stack; tasks run on theirs and switch
 * back to it whenever they suspend (task.c). */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "aio/aio_internal.h"
#include "unix/platform.h"

_Thread_local conc_aio_loop *conc__aio_running;

#define MAX_WAIT_NS      (24LL * 3600 * 1000000000) /* asyncio's cap */
#define SLOW_DEFAULT     0.1         /* asyncio's slow_callback_duration */
#define WATCHDOG_DEFAULT 0.1         /* the same bound for a task's stretch */
#define EVFD_TAG         ((void *)0) /* epoll data of the wake-up eventfd */
#define POLL_EVERY       32 /* iterations with ready work between looks */
#define POLL_SOON        2  /* ... or after a reader found its socket empty */
#define GONE_TAG         ((void *)1) /* an event of a descriptor removed since */

int
conc_aio_loop_new(const conc_aio_loop_opts *opts, conc_aio_loop **out)
{
    if (!out)
        return CONC_EINVAL;
    double slow = opts && opts->slow_callback_duration > 0
                      ? opts->slow_callback_duration
                      : SLOW_DEFAULT;
    if (opts && (!(opts->slow_callback_duration >= 0) ||
                 !(opts->watchdog >= 0 || opts->watchdog == CONC_FOREVER)))
        return CONC_EINVAL; /* negative or NaN */
    conc_aio_loop *loop = conc__calloc(1, sizeof *loop);
    if (!loop)
        return CONC_ENOMEM;
    loop->debug = opts ? opts->debug : 0;
    loop->slow_ns = (int64_t)(slow * 1e9);
    double wd = opts && opts->watchdog != 0 ? opts->watchdog : WATCHDOG_DEFAULT;
    loop->watchdog_ns = wd == CONC_FOREVER ? 0 : (int64_t)(wd * 1e9);
    loop->watchdog_fn = opts ? opts->watchdog_fn : NULL;
    loop->watchdog_arg = opts ? opts->watchdog_arg : NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    int r = loop->epfd < 0 ? -errno : 0;
    if (!r && (loop->evfd = conc__eventfd_new()) < 0)
        r = loop->evfd;
    if (!r) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = EVFD_TAG};
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev) < 0)
            r = -errno;
        else
            loop->evfd += 0;
    } else {
        loop->evfd = -1;
    }
    if (r) {
        if (loop->epfd >= 0)
            close(loop->epfd);
        if (loop->evfd >= 0)
            close(loop->evfd);
        conc__free(loop);
        return r;
    }
    pthread_mutex_init(&loop->lock, NULL);
    conc__aio_registry_add(loop);
    *out = loop;
    return 0;
}

/* Moves everything other threads sent onto the ready queue, in the order
 * it was sent. */
static void
take_remote(conc_aio_loop *loop)
{
    if (!atomic_load_explicit(&loop->remote, memory_order_relaxed) &&
        !atomic_load_explicit(&loop->wake_pending, memory_order_relaxed))
        return;
    /* Clear the flag first, even with nothing to take (a sender that
     * pushed before this iteration's take may set it after): a push after
     * the exchange below then finds it clear and signals again. */
    atomic_store_explicit(&loop->wake_pending, 0, memory_order_seq_cst);
    conc_aio_handle *h =
        atomic_exchange_explicit(&loop->remote, NULL, memory_order_acquire);
    conc_aio_handle *rev = NULL;
    while (h) { /* the list is newest first */
        conc_aio_handle *next = h->next;
        h->next = rev;
        rev = h;
        h = next;
    }
    while (rev) {
        conc_aio_handle *next = rev->next;
        conc__aio_ready_push(loop, rev);
        rev = next;
    }
}

/* How long the iteration may wait for descriptors, in ns (-1: forever). */
static int64_t
wait_budget(conc_aio_loop *loop)
{
    if (loop->ready.n || loop->stopping ||
        atomic_load_explicit(&loop->remote, memory_order_relaxed))
        return 0;
    conc_aio_handle *first = conc__aio_timer_first(&loop->timers);
    if (!first)
        return -1;
    int64_t d = first->when - conc__now_ns();
    return d < 0 ? 0 : d > MAX_WAIT_NS ? MAX_WAIT_NS : d;
}

static int
poll_events(conc_aio_loop *loop, struct epoll_event *evs, int64_t budget)
{
    if (budget == 0) /* nothing to wait for: one cheap look */
        return epoll_wait(loop->epfd, evs, CONC__AIO_MAX_EVENTS, 0);
#ifdef HAVE_EPOLL_PWAIT2
    static int no_pwait2;
    if (!no_pwait2) {
        struct timespec ts = {budget / 1000000000, budget % 1000000000};
        int n = epoll_pwait2(loop->epfd, evs, CONC__AIO_MAX_EVENTS,
                             budget < 0 ? NULL : &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1;
    }
#endif
    int ms = budget < 0 ? -1 : (int)((budget + 999999) / 1000000);
    return epoll_wait(loop->epfd, evs, CONC__AIO_MAX_EVENTS, ms);
}

int
conc__aio_io_add(conc_aio_loop *loop, struct conc__aio_io *io, uint32_t events,
                 int modify)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd,
                  &ev) < 0)
        return -errno;
    return 0;
}

void
conc__aio_io_del(conc_aio_loop *loop, struct conc__aio_io *io)
{
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    /* Forget events already collected for it in this iteration. */
    for (int i = loop->nevents_seen; i < loop->nevents; i++)
        if (loop->events[i].data.ptr == io)
            loop->events[i].data.ptr = GONE_TAG;
}

static void
dispatch_events(conc_aio_loop *loop)
{
    for (loop->nevents_seen = 0; loop->nevents_seen < loop->nevents;) {
        struct epoll_event *ev = &loop->events[loop->nevents_seen++];
        if (ev->data.ptr == EVFD_TAG) {
            conc__eventfd_drain(loop->evfd);
            conc__aio_signals_dispatch(loop);
            continue;
        }
        if (ev->data.ptr == GONE_TAG)
            continue;
        struct conc__aio_io *io = ev->data.ptr;
        io->ready(io, ev->events);
    }
    loop->nevents = 0;
    take_remote(loop);
}

static void
run_due_timers(conc_aio_loop *loop)
{
    conc_aio_handle *h = conc__aio_timer_first(&loop->timers);
    if (!h)
        return;
    int64_t now = conc__now_ns();
    while ((h = conc__aio_timer_first(&loop->timers)) && h->when <= now) {
        conc__aio_timer_remove(&loop->timers, h);
        conc__aio_ready_push(loop, h);
    }
}

static void
run_one(conc_aio_loop *loop, conc_aio_handle *h)
{
    if (h->flags & HANDLE_EMBEDDED) {
        h->queued = 0;
        h->fn(h->arg);
        return;
    }
    if (!atomic_load_explicit(&h->cancelled, memory_order_relaxed)) {
        if (CONC__UNLIKELY(loop->debug)) {
            int64_t t0 = conc__now_ns();
            h->fn(h->arg);
            int64_t took = conc__now_ns() - t0;
            if (took >= loop->slow_ns)
                fprintf(stderr, "conc: a callback took %.3f seconds\n",
                        (double)took / 1e9);
        } else {
            h->fn(h->arg);
        }
    }
    conc__aio_handle_unref(h);
}

void
conc__aio_run_once(conc_aio_loop *loop)
{
    take_remote(loop);
    int64_t budget = wait_budget(loop);
    /* With work ready, a look at the descriptors (a system call that
     * finds nothing, mostly) is made only every POLL_EVERY iterations: a
     * descriptor waits at most that many turns of ready work, which are
     * short, and a task switch costs no system call. A stream reader that
     * found its socket empty asks for a look within POLL_SOON turns
     * (poll_soon): one epoll_wait instead of a recv per reader, and none
     * at all when the loop runs out of work first (the task it woke
     * answers, then the loop waits in epoll anyway). */
    int n = 0;
    if (budget != 0 || loop->ready.n == 0 || ++loop->unpolled >= POLL_EVERY ||
        (loop->poll_soon && loop->unpolled >= POLL_SOON)) {
        loop->unpolled = 0;
        loop->poll_soon = 0;
        n = poll_events(loop, loop->events, budget);
    }
    if (n > 0) {
        loop->nevents = n;
        dispatch_events(loop);
    } else if (budget != 0) {
        take_remote(loop);
    }
    run_due_timers(loop);
    /* Exactly the callbacks ready now; the ones they add wait their turn. */
    for (size_t todo = loop->ready.n; todo > 0; todo--) {
        conc_aio_handle *h = loop->ready.head;
        loop->ready.head = h->next;
        if (!loop->ready.head)
            loop->ready.tail = NULL;
        loop->ready.n--;
        run_one(loop, h);
    }
}

/* Makes `loop` this thread's running loop. Returns 0 or an error. */
static int
enter(conc_aio_loop *loop)
{
    if (!loop)
        return CONC_EINVAL;
    if (loop->closed)
        return CONC_ECLOSED;
    if (conc__aio_running || loop->running)
        return CONC_ESTATE;
    if (!(loop->fiber = conc__fiber_self()))
        return CONC_ENOMEM;
    loop->thread = pthread_self();
    loop->tid = conc__tid();
    __atomic_store_n(&loop->running, 1, __ATOMIC_RELEASE);
    conc__aio_running = loop;
    if (loop->watchdog_ns)
        conc__aio_watchdog_ensure();
    return 0;
}

static void
leave(conc_aio_loop *loop)
{
    __atomic_store_n(&loop->running, 0, __ATOMIC_RELEASE);
    loop->stopping = 0;
    conc__aio_running = NULL;
}

int
conc_aio_loop_run_forever(conc_aio_loop *loop)
{
    int r = enter(loop);
    if (r)
        return r;
    while (!loop->stopping)
        conc__aio_run_once(loop);
    leave(loop);
    return 0;
}

struct until {
    struct conc__watch watch;
    conc_aio_loop *loop;
};

static void
until_notify(struct conc__watch *w, conc_future *f)
{
    CONC__UNUSED(f);
    conc_aio_loop_stop(((struct until *)w)->loop);
}

int
conc_aio_loop_run_until_complete(conc_aio_loop *loop, conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    int r = enter(loop);
    if (r)
        return r;
    struct until u = {.watch.notify = until_notify, .loop = loop};
    struct conc__watch_link link = {.watch = &u.watch, .future = f};
    if (conc__future_watch(&link)) {
        while (!loop->stopping)
            conc__aio_run_once(loop);
        conc__future_unwatch(&link);
    }
    leave(loop);
    int code = 0;
    r = conc_future_exception(f, 0, &code);
    if (r == CONC_ETIMEDOUT)
        return CONC_ESTATE; /* stopped before f was done */
    return r < 0 ? r : code;
}

int
conc_aio_loop_stop(conc_aio_loop *loop)
{
    if (!loop)
        return CONC_EINVAL;
    if (atomic_load_explicit(&loop->closed_remote, memory_order_acquire))
        return CONC_ECLOSED;
    if (conc__aio_running == loop) {
        loop->stopping = 1;
        return 0;
    }
    /* Another thread: the loop reads `stopping` after its wait. */
    __atomic_store_n(&loop->stopping, 1, __ATOMIC_SEQ_CST);
    conc__eventfd_signal(loop->evfd);
    return 0;
}

int
conc_aio_loop_is_running(conc_aio_loop *loop)
{
    if (!loop)
        return CONC_EINVAL;
    return __atomic_load_n(&loop->running, __ATOMIC_ACQUIRE);
}

int
conc_aio_loop_is_closed(conc_aio_loop *loop)
{
    if (!loop)
        return CONC_EINVAL;
    return (int)atomic_load(&loop->closed_remote);
}

double
conc_aio_loop_time(conc_aio_loop *loop)
{
    return loop ? (double)conc__now_ns() / 1e9 : 0.0;
}

int
conc_aio_get_running_loop(conc_aio_loop **out)
{
    if (!out)
        return CONC_EINVAL;
    if (!conc__aio_running)
        return conc_fail(CONC_ESTATE, "no running event loop");
    *out = conc__aio_running;
    return 0;
}

/* Drops every callback and timer still scheduled. A task's wake that
 * another thread sent after the task stopped waiting (a thread that saw
 * the task as a waiter just before the task moved on) may still be
 * queued when the loop closes: it holds a reference on its task, which
 * goes with it (the task leaked, 800 bytes, before). */
static void
drop_scheduled(conc_aio_loop *loop)
{
    take_remote(loop);
    while (loop->ready.head) {
        conc_aio_handle *h = loop->ready.head;
        loop->ready.head = h->next;
        if (h->flags & HANDLE_REMOTE) /* its task may end with it */
            conc__aio_remote_wake_drop(h);
        else if (h->flags & HANDLE_EMBEDDED)
            h->queued = 0;
        else
            conc__aio_handle_unref(h);
    }
    loop->ready.tail = NULL;
    loop->ready.n = 0;
    conc_aio_handle *h;
    while ((h = conc__aio_timer_first(&loop->timers))) {
        conc__aio_timer_remove(&loop->timers, h);
        conc__aio_handle_unref(h);
    }
}

int
conc_aio_loop_close(conc_aio_loop *loop)
{
    if (!loop)
        return CONC_EINVAL;
    if (loop->running)
        return CONC_ESTATE;
    if (loop->closed)
        return 0;
    if (loop->ntasks) { /* finish every task, so no stack is leaked */
        int r = enter(loop);
        if (r)
            return r;
        conc__aio_cancel_all(loop);
        leave(loop);
    }
    conc__aio_signals_close(loop);
    conc__aio_executors_close(loop);
    atomic_store(&loop->closed_remote, 1);
    loop->closed = 1;
    drop_scheduled(loop);
    return 0;
}

void
conc_aio_loop_free(conc_aio_loop *loop)
{
    if (!loop)
        return;
    conc_aio_loop_close(loop);
    drop_scheduled(loop); /* threadsafe calls that raced with close */
    conc__aio_timers_free(&loop->timers);
    while (loop->free_handles) {
        conc_aio_handle *h = loop->free_handles;
        loop->free_handles = h->next;
        conc__free(h);
    }
    conc__aio_registry_remove(loop);
    pthread_mutex_destroy(&loop->lock);
    close(loop->evfd);
    close(loop->epfd);
    conc__free(loop);
}
