/* The parking lot: coroutines waiting on futex words.
 *
 * A coroutine that would sleep on a futex word parks here instead, in a
 * bucket chosen by the word's address, and suspends through its loop. The
 * wake call every primitive already makes (conc__futex_wake) looks here
 * after the kernel: one global count of parked coroutines makes that a
 * single load when none is parked, so threads that never meet a coroutine
 * pay nothing but that load on their (already slow) wake path.
 *
 * The check and the park are atomic with respect to wakers, as the
 * kernel's are: the parker takes the bucket's lock, re-reads the word, and
 * links itself only if the word still holds the expected value; a waker
 * changes the word first and then takes the same lock to look for parked
 * coroutines, so it either finds the parker or the parker saw the change.
 * The waker claims (unlinks) a parked coroutine and calls its wake hook
 * under the lock, because the coroutine's record lives on its own stack
 * and may vanish as soon as it is unlinked and running again. A
 * coroutine cancelled after a waker claimed it passes the wake on to the
 * next waiter, so a release is never lost to a cancellation.
 *
 * Locks: a bucket's lock is a spin lock that yields, held for a few list
 * operations and the wake hook (a lock-free push and at most one eventfd
 * write); it never calls anything that could park. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/internal.h"
#include "unix/coro.h"
#include "unix/futex.h"

_Thread_local struct conc__coro *conc__coro_self;

#define NBUCKETS 256 /* a power of two */

struct parked {
    _Atomic uint32_t *word;
    struct conc__coro *coro;
    uint64_t token;
    struct parked *prev, *next;
};

struct bucket {
    atomic_flag lock;
    struct parked *head, *tail;
} __attribute__((aligned(64)));

static struct bucket buckets[NBUCKETS];
static _Atomic uint64_t nparked;

static struct bucket *
bucket_of(_Atomic uint32_t *word)
{
    uintptr_t a = (uintptr_t)word;
    a ^= a >> 17;
    a *= 0x9E3779B97F4A7C15u;
    return &buckets[(a >> 40) & (NBUCKETS - 1)];
}

static void
bucket_lock(struct bucket *b)
{
    unsigned spins = 0;
    while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire)) {
        if (++spins < 64)
            conc__cpu_relax();
        else
            sched_yield(); /* the holder was probably preempted */
    }
}

static void
bucket_unlock(struct bucket *b)
{
    atomic_flag_clear_explicit(&b->lock, memory_order_release);
}

static void
unlink_parked(struct bucket *b, struct parked *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        b->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        b->tail = p->prev;
    p->prev = p->next = NULL;
    p->word = NULL; /* marks it claimed */
}

int
conc__park_wait(struct conc__coro *c, _Atomic uint32_t *word, uint32_t expected,
                int64_t deadline, int shared)
{
    if (deadline != CONC__FOREVER && deadline <= conc__now_ns())
        return -ETIMEDOUT;
    struct bucket *b = bucket_of(word);
    struct parked p = {.word = word, .coro = c, .token = conc__coro_token(c)};

    atomic_fetch_add_explicit(&nparked, 1, memory_order_seq_cst);
    bucket_lock(b);
    if (atomic_load_explicit(word, memory_order_seq_cst) != expected) {
        bucket_unlock(b);
        atomic_fetch_sub_explicit(&nparked, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    p.prev = b->tail;
    if (b->tail)
        b->tail->next = &p;
    else
        b->head = &p;
    b->tail = &p;
    bucket_unlock(b);

    int r = c->ops->suspend(c, deadline); /* CONC_ETIMEDOUT is -ETIMEDOUT */

    bucket_lock(b);
    int claimed = p.word == NULL;
    if (!claimed) /* a timeout or a cancellation */
        unlink_parked(b, &p);
    bucket_unlock(b);
    atomic_fetch_sub_explicit(&nparked, 1, memory_order_relaxed);
    if (claimed && r == -ECANCELED)
        conc__futex_wake(word, 1, shared); /* pass the wake on, not lose it */
    else if (claimed)
        r = 0; /* woken as well: the caller re-checks its condition */
    return r;
}

int
conc__park_wake(_Atomic uint32_t *word, int n)
{
    /* Pairs with the parker's increment: whoever changed the word before
     * this call is ordered before the load. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&nparked, memory_order_relaxed) == 0)
        return 0;
    struct bucket *b = bucket_of(word);
    int woken = 0;
    bucket_lock(b);
    for (struct parked *p = b->head, *next; p && woken < n; p = next) {
        next = p->next;
        if (p->word != word)
            continue;
        struct conc__coro *c = p->coro;
        uint64_t token = p->token;
        unlink_parked(b, p);
        c->ops->wake(c, token);
        woken++;
    }
    bucket_unlock(b);
    return woken;
}
