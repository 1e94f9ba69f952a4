/* The choke points' view of coroutines.
 *
 * The platform's two blocking calls, conc__futex_wait and the descriptor
 * wait, block the calling thread; inside a coroutine they must suspend
 * only the coroutine. The platform knows nothing of loops or tasks (the
 * async layer sits far above it), so the async layer describes each
 * coroutine to it through this small interface: the running coroutine of
 * the thread, and how to suspend it and wake it. The futex half lives in
 * park.c: a parking lot of coroutines keyed by futex address, which
 * conc__futex_wake consults after the kernel's own waiters, so the one
 * wake call every primitive already makes wakes threads and coroutines
 * alike, and the primitives' fast paths stay as they are. */
#ifndef CONC_UNIX_CORO_H
#define CONC_UNIX_CORO_H

#include <poll.h>
#include <stdint.h>

struct conc__coro;

struct conc__coro_ops {
    /* Called in the coroutine: suspends it until wake(c, token) with the
     * token conc__coro_token last returned, the absolute monotonic
     * deadline (CONC__FOREVER: none), or a cancellation. Returns 0 when
     * woken, -ETIMEDOUT at the deadline, -ECANCELED when cancelled. */
    int (*suspend)(struct conc__coro *c, int64_t deadline);
    /* Any thread: wakes the coroutine if it is still in the suspension
     * `token` names; a stale token does nothing. The caller guarantees
     * that `c` is alive (park.c wakes under the lot's lock). */
    void (*wake)(struct conc__coro *c, uint64_t token);
    /* Called in the coroutine: waits for descriptors as conc__poll_until
     * does, suspending only the coroutine. -ENOTSUP (or a NULL hook): the
     * caller polls the plain way (a look that does not block). */
    int (*poll)(struct conc__coro *c, struct pollfd *fds, unsigned n,
                int64_t deadline);
};

/* A coroutine as the platform sees it; the async layer embeds it. */
struct conc__coro {
    const struct conc__coro_ops *ops;
    uint64_t token; /* the current suspension's number */
};

/* The coroutine running in this thread, or NULL on a thread's own stack
 * (the loop itself, or a thread without a loop). Set by the async layer
 * around every switch. */
extern _Thread_local struct conc__coro *conc__coro_self;

/* Starts a new suspension of c and returns its token, for a waker to
 * name it. */
static inline uint64_t
conc__coro_token(struct conc__coro *c)
{
    return ++c->token;
}

/* conc__futex_wait for a coroutine: parks it on `word` (park.c). */
int conc__park_wait(struct conc__coro *c, _Atomic uint32_t *word,
                    uint32_t expected, int64_t deadline, int shared);

/* Wakes up to n coroutines parked on `word`; returns how many. Cheap when
 * none is parked anywhere. Any thread. */
int conc__park_wake(_Atomic uint32_t *word, int n);

#endif
