/* Handles: call_soon, call_later, call_at, call_soon_threadsafe, and the
 * handles they hand out.
 *
 * A handle carries one reference for the loop while it is scheduled and
 * one for the caller who asked for it. Handles freed in the loop's own
 * thread go to a small free list, so scheduling a callback on a warm loop
 * allocates nothing.
 *
 * call_soon_threadsafe pushes onto a lock-free list (an atomic exchange
 * loop, LIFO) that the loop takes whole and reverses, and wakes the loop
 * through its eventfd only when it is the first push since the loop last
 * took the list: a burst of calls from many threads costs one write and
 * one wake-up, libuv's coalescing. */
#include <errno.h>
#include <stdint.h>

#include "aio/aio_internal.h"
#include "unix/platform.h"

#define FREE_HANDLES_MAX 1024

conc_aio_handle *
conc__aio_handle_new(conc_aio_loop *loop, conc_aio_cb fn, void *arg,
                     conc_aio_handle **out)
{
    conc_aio_handle *h = NULL;
    if (conc__aio_running == loop && loop->free_handles) {
        h = loop->free_handles;
        loop->free_handles = h->next;
        loop->nfree--;
    } else if (!(h = conc__malloc(sizeof *h))) {
        return NULL;
    }
    h->fn = fn;
    h->arg = arg;
    h->loop = loop;
    h->next = NULL;
    h->when = 0;
    h->heap_index = SIZE_MAX;
    h->flags = 0;
    h->queued = 0;
    atomic_init(&h->cancelled, 0);
    atomic_init(&h->refs, out ? 2 : 1);
    if (out)
        *out = h;
    return h;
}

void
conc__aio_handle_unref(conc_aio_handle *h)
{
    if (h->flags & HANDLE_EMBEDDED)
        return;
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
        return;
    conc_aio_loop *loop = h->loop;
    if (conc__aio_running == loop && loop->nfree < FREE_HANDLES_MAX) {
        h->next = loop->free_handles;
        loop->free_handles = h;
        loop->nfree++;
        return;
    }
    conc__free(h);
}

void
conc__aio_ready_push(conc_aio_loop *loop, conc_aio_handle *h)
{
    h->next = NULL;
    if (loop->ready.tail)
        loop->ready.tail->next = h;
    else
        loop->ready.head = h;
    loop->ready.tail = h;
    loop->ready.n++;
}

void
conc__aio_remote_push(conc_aio_loop *loop, conc_aio_handle *h)
{
    conc_aio_handle *head =
        atomic_load_explicit(&loop->remote, memory_order_relaxed);
    do
        h->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &loop->remote, &head, h, memory_order_release, memory_order_relaxed));
    if (!atomic_exchange_explicit(&loop->wake_pending, 1, memory_order_acq_rel))
        conc__eventfd_signal(loop->evfd);
}

int
conc_aio_call_soon(conc_aio_loop *loop, conc_aio_cb fn, void *arg,
                   conc_aio_handle **out)
{
    if (!loop || !fn)
        return CONC_EINVAL;
    if (loop->closed)
        return CONC_ECLOSED;
    conc_aio_handle *h = conc__aio_handle_new(loop, fn, arg, out);
    if (!h)
        return CONC_ENOMEM;
    conc__aio_ready_push(loop, h);
    return 0;
}

/* Schedules at the absolute monotonic time `when` (ns). */
static int
call_at_ns(conc_aio_loop *loop, int64_t when, conc_aio_cb fn, void *arg,
           conc_aio_handle **out)
{
    if (loop->closed)
        return CONC_ECLOSED;
    conc_aio_handle *h = conc__aio_handle_new(loop, fn, arg, NULL);
    if (!h)
        return CONC_ENOMEM;
    h->when = when;
    h->flags = HANDLE_TIMER;
    if (conc__aio_timer_add(&loop->timers, h) < 0) {
        conc__aio_handle_unref(h);
        return CONC_ENOMEM;
    }
    if (out) {
        atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
        *out = h;
    }
    return 0;
}

/* Seconds to nanoseconds, rounded up (a timer is never early) and
 * saturating; CONC_EINVAL for NaN or infinity. */
static int
to_ns(double s, int64_t *ns)
{
    if (s != s || s == 1.0 / 0.0 || s == -1.0 / 0.0)
        return CONC_EINVAL;
    double v = s * 1e9;
    if (v >= 9.2e18) {
        *ns = INT64_MAX / 2;
    } else if (v <= -9.2e18) {
        *ns = -(INT64_MAX / 2);
    } else {
        int64_t i = (int64_t)v; /* toward zero */
        *ns = (double)i < v ? i + 1 : i;
    }
    return 0;
}

int
conc_aio_call_later(conc_aio_loop *loop, double delay, conc_aio_cb fn,
                    void *arg, conc_aio_handle **out)
{
    int64_t d;
    if (!loop || !fn || to_ns(delay, &d) < 0)
        return CONC_EINVAL;
    if (d < 0)
        d = 0;
    int64_t now = conc__now_ns();
    return call_at_ns(loop, d > INT64_MAX - now ? INT64_MAX : now + d, fn, arg,
                      out);
}

int
conc_aio_call_at(conc_aio_loop *loop, double when, conc_aio_cb fn, void *arg,
                 conc_aio_handle **out)
{
    int64_t w;
    if (!loop || !fn || to_ns(when, &w) < 0)
        return CONC_EINVAL;
    return call_at_ns(loop, w, fn, arg, out);
}

int
conc_aio_call_soon_threadsafe(conc_aio_loop *loop, conc_aio_cb fn, void *arg,
                              conc_aio_handle **out)
{
    if (!loop || !fn)
        return CONC_EINVAL;
    if (atomic_load_explicit(&loop->closed_remote, memory_order_acquire))
        return CONC_ECLOSED;
    conc_aio_handle *h = conc__malloc(sizeof *h);
    if (!h)
        return CONC_ENOMEM;
    *h = (conc_aio_handle){
        .fn = fn, .arg = arg, .loop = loop, .heap_index = SIZE_MAX};
    atomic_init(&h->refs, out ? 2 : 1);
    if (out)
        *out = h;
    conc__aio_remote_push(loop, h);
    return 0;
}

int
conc_aio_handle_cancel(conc_aio_handle *h)
{
    if (!h)
        return CONC_EINVAL;
    if (atomic_exchange(&h->cancelled, 1))
        return 0;
    if (h->heap_index != SIZE_MAX) { /* an armed timer: leave the heap now */
        conc__aio_timer_remove(&h->loop->timers, h);
        conc__aio_handle_unref(h);
    }
    return 0;
}

int
conc_aio_handle_cancelled(conc_aio_handle *h)
{
    if (!h)
        return CONC_EINVAL;
    return (int)atomic_load(&h->cancelled);
}

void
conc_aio_handle_free(conc_aio_handle *h)
{
    if (h)
        conc__aio_handle_unref(h);
}
