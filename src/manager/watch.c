/* A client that hangs up while a method of its blocks in the server (a
 * Barrier's wait, a Condition's wait, a Queue's get, a Lock's acquire)
 * is noticed at once, not when the call would have returned: until then
 * it would count as a Barrier's party and could take a Condition's
 * notify or a queue's item meant for a live client.
 *
 * The waits of such a method go through the futex choke point
 * (conc__futex_wait). While a serving thread is inside a watched wait
 * (conc__mgr_watch_begin .. _end), it presents itself to the platform as
 * a coroutine (unix/coro.h): each futex wait then parks in the parking
 * lot and calls this file's suspend, which sleeps in the descriptor wait
 * on an eventfd (the wake) and on the client's socket for a hang-up
 * (POLLRDHUP, POLLHUP). A hang-up ends the wait as a cancellation does in
 * a coroutine: the blocking conc call returns CONC_ECANCELED, having
 * undone itself as on a timeout, and so does every later watched wait of
 * that client. Only public blocking calls, which are cancellation points
 * and undo themselves, are cut short: the library's own short internal
 * waits (a lock word) are not, and watched regions contain only such
 * calls (conc__mgr_mon_wait, the queue type's get, put and join).
 *
 * Lock order: none here (wake runs under a parking-lot bucket's lock and
 * only stores and writes to the eventfd). */
#include <stdatomic.h>
#include <unistd.h>

#include "manager/manager_internal.h"
#include "unix/coro.h"
#include "unix/platform.h"

static _Thread_local struct conc__mgr_watch *current;
static _Atomic uint64_t hangups; /* for tests: noticed so far */
static _Atomic int watching;     /* for tests: threads asleep in them */

static int
watch_sleep(struct conc__mgr_watch *w, uint64_t token, int64_t deadline,
            int cancellable)
{
    for (;;) {
        if (atomic_load_explicit(&w->woken, memory_order_acquire) == token)
            return 0;
        if (cancellable && w->gone)
            return -ECANCELED;
        /* Once the client is gone, a wait that may not be cut short
         * waits for its wake alone (the socket would stay ready). */
        struct pollfd fds[2] = {
            {.fd = w->evfd, .events = POLLIN},
            {.fd = w->gone ? -1 : w->sock, .events = POLLRDHUP}};
        int n = conc__poll_until(fds, 2, deadline);
        if (n == 0)
            return -ETIMEDOUT;
        if (n < 0)
            return 0; /* as a spurious wake: the caller looks again */
        if (fds[0].revents)
            conc__eventfd_drain(w->evfd);
        if (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            w->gone = 1;
            atomic_fetch_add_explicit(&hangups, 1, memory_order_relaxed);
        }
    }
}

static int
watch_suspend(struct conc__coro *c, int64_t deadline, int cancellable)
{
    struct conc__mgr_watch *w = (struct conc__mgr_watch *)c;
    atomic_fetch_add_explicit(&watching, 1, memory_order_relaxed);
    int rc = watch_sleep(w, c->token, deadline, cancellable);
    atomic_fetch_sub_explicit(&watching, 1, memory_order_relaxed);
    return rc;
}

/* The hang-up stays: every later cancellable wait sees it. */
static void
watch_recancel(struct conc__coro *c)
{
    (void)c;
}

static void
watch_wake(struct conc__coro *c, uint64_t token)
{
    struct conc__mgr_watch *w = (struct conc__mgr_watch *)c;
    atomic_store_explicit(&w->woken, token, memory_order_release);
    conc__eventfd_signal(w->evfd);
}

/* poll is NULL: a descriptor wait inside a watched region blocks the
 * plain way (suspend's own among them). */
static const struct conc__coro_ops watch_ops = {
    .suspend = watch_suspend,
    .recancel = watch_recancel,
    .wake = watch_wake,
};

void
conc__mgr_watch_start(struct conc__mgr_watch *w, conc_conn *c)
{
    *w = (struct conc__mgr_watch){.coro.ops = &watch_ops, .evfd = -1};
    atomic_init(&w->woken, 0);
    if (conc_conn_fileno(c, &w->sock) < 0)
        w->sock = -1;
    current = w;
}

void
conc__mgr_watch_stop(struct conc__mgr_watch *w)
{
    if (w->evfd >= 0)
        close(w->evfd);
    w->evfd = -1;
    current = NULL;
}

int
conc__mgr_watch_begin(void)
{
    struct conc__mgr_watch *w = current;
    /* Not a serving thread (a fuzz target's handle, a type used
     * directly), or already inside a watched wait. */
    if (!w || w->sock < 0 || conc__coro_self)
        return 0;
    if (w->evfd < 0 && (w->evfd = conc__eventfd_new()) < 0)
        return 0; /* unwatched: the call only ends as it would have */
    conc__coro_self = &w->coro;
    return 1;
}

void
conc__mgr_watch_end(int began)
{
    if (began)
        conc__coro_self = NULL;
}

int
conc__mgr_watch_count(void)
{
    return atomic_load_explicit(&watching, memory_order_relaxed);
}

uint64_t
conc__mgr_watch_hangups(void)
{
    return atomic_load_explicit(&hangups, memory_order_relaxed);
}

struct conc__mgr_watch *
conc__mgr_watch_current(void)
{
    return current;
}

int
conc__mgr_watch_gone(struct conc__mgr_watch *w)
{
    if (!w || w->sock < 0)
        return 0;
    /* A look that does not block: the thread that watches may not have
     * run since the kernel closed the client's end. */
    struct pollfd p = {.fd = w->sock, .events = POLLRDHUP};
    return conc__poll_until(&p, 1, CONC__POLL) == 1 &&
           (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void
conc__mgr_watch_reset(void)
{
    struct conc__mgr_watch *w = current;
    if (w && conc__coro_self == &w->coro)
        conc__coro_self = NULL;
}

/* ---- The watch as a registered type's method uses it (conc/manager.h) */

int
conc_manager_watch_begin(void)
{
    return conc__mgr_watch_begin();
}

void
conc_manager_watch_end(int began)
{
    /* Only the watch's own view of the thread is taken down: never an
     * async task's, whatever the caller passes. */
    if (began)
        conc__mgr_watch_reset();
}

int
conc_manager_client_gone(void)
{
    struct conc__mgr_watch *w = current;
    if (!w || w->sock < 0)
        return 0;
    if (!w->gone && conc__mgr_watch_gone(w))
        w->gone = 1; /* as a watched wait would have seen it */
    return w->gone;
}
