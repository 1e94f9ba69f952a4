/* Event (threading.Event).
 *
 * Design. One 32-bit futex word holds everything:
 *
 *   bit 0      the flag;
 *   bit 1      SLEEPERS: a waiter may be asleep in the kernel;
 *   bits 2-31  a generation, advanced by every set that raises the flag.
 *
 * wait returns at once when the flag is up. Otherwise it spins briefly,
 * sets SLEEPERS with a CAS and sleeps on the word. set raises the flag,
 * advances the generation and clears SLEEPERS in one CAS, and makes the
 * wake system call only if SLEEPERS was on: setting an event nobody sleeps
 * on costs one atomic operation.
 *
 * The generation gives Python's guarantee that a waiter woken by set
 * returns success even if clear ran before it was scheduled: it compares
 * the generation it saw before sleeping with the current one. A waiter
 * could miss a set only if the generation wrapped (2^30 set/clear cycles)
 * while it slept. */
#include <math.h>

#include "sync/sync_internal.h"
#include "unix/coro.h"

#define FLAG     1u
#define SLEEPERS 2u
#define GEN_ONE  4u

struct conc_event {
    _Atomic uint32_t word;
    uint32_t shared;
    conc_arena *arena;
};

int
conc_event_new(const conc_sync_opts *opts, conc_event **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_arena *arena = opts ? opts->arena : NULL;
    conc_event *ev = conc__sync_alloc(arena, sizeof *ev);
    if (!ev)
        return CONC_ENOMEM;
    ev->shared = arena != NULL;
    ev->arena = arena;
    *out = ev;
    return 0;
}

void
conc_event_free(conc_event *ev)
{
    if (ev)
        conc__sync_dealloc(ev->arena, ev);
}

void
conc_event_set(conc_event *ev)
{
    if (!ev)
        return;
    /* Copied now: a waiter released by the CAS may free the event. */
    int shared = (int)ev->shared;
    uint32_t w = atomic_load_explicit(&ev->word, memory_order_relaxed);
    uint32_t next;
    do {
        if (w & FLAG)
            return; /* already set; nobody sleeps on a set event */
        next = ((w & ~(FLAG | SLEEPERS)) + GEN_ONE) | FLAG;
    } while (!atomic_compare_exchange_weak_explicit(
        &ev->word, &w, next, memory_order_release, memory_order_relaxed));
    if (w & SLEEPERS)
        conc__futex_wake(&ev->word, INT32_MAX, shared);
}

void
conc_event_clear(conc_event *ev)
{
    if (!ev)
        return;
    atomic_fetch_and_explicit(&ev->word, ~FLAG, memory_order_relaxed);
}

int
conc_event_is_set(const conc_event *ev)
{
    if (!ev)
        return CONC_EINVAL;
    return (atomic_load_explicit((_Atomic uint32_t *)&ev->word,
                                 memory_order_acquire) &
            FLAG) != 0;
}

/* Whether the event was set since the caller saw `seen`. */
static int
fired(uint32_t w, uint32_t seen)
{
    return (w & FLAG) || (w & ~SLEEPERS) != (seen & ~SLEEPERS);
}

static int
sleep_until_set_body(conc_event *ev, uint32_t seen, int64_t deadline)
{
    for (;;) {
        uint32_t w = atomic_load_explicit(&ev->word, memory_order_acquire);
        if (fired(w, seen))
            return 0;
        if (!(w & SLEEPERS) && !atomic_compare_exchange_weak_explicit(
                                   &ev->word, &w, w | SLEEPERS,
                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        int r = conc__futex_wait(&ev->word, w | SLEEPERS, deadline,
                                 (int)ev->shared);
        if (r == -ETIMEDOUT) {
            w = atomic_load_explicit(&ev->word, memory_order_acquire);
            return fired(w, seen) ? 0 : CONC_ETIMEDOUT;
        }
    }
}

/* sleep_until_set_body as a cancellation point in a coroutine, out of
 * line so that the fast path needs no stack frame. */
static __attribute__((noinline)) int
sleep_until_set(conc_event *ev, uint32_t seen, int64_t deadline)
{
    CONC__CANCEL_POINT(sleep_until_set_body(ev, seen, deadline));
}

int
conc_event_wait(conc_event *ev, double timeout)
{
    if (!ev)
        return CONC_EINVAL;
    if (CONC__UNLIKELY(isnan(timeout)))
        return CONC_EINVAL;
    uint32_t seen = atomic_load_explicit(&ev->word, memory_order_acquire);
    if (seen & FLAG)
        return 0;
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if (fired(atomic_load_explicit(&ev->word, memory_order_acquire), seen))
            return 0;
    return sleep_until_set(ev, seen, deadline);
}

int
conc__event_sleepers(const conc_event *ev)
{
    return (atomic_load_explicit((_Atomic uint32_t *)&ev->word,
                                 memory_order_relaxed) &
            SLEEPERS) != 0;
}
