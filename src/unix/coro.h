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

#include <errno.h>
#include <poll.h>
#include <stdint.h>

struct conc__coro;

struct conc__coro_ops {
    /* Called in the coroutine: suspends it until wake(c, token) with the
     * token conc__coro_token last returned, the absolute monotonic
     * deadline (CONC__FOREVER: none), or, if `cancellable`, a
     * cancellation. Returns 0 when woken, -ETIMEDOUT at the deadline,
     * -ECANCELED when cancelled (the cancellation is then consumed). */
    int (*suspend)(struct conc__coro *c, int64_t deadline, int cancellable);
    /* Called in the coroutine: makes a consumed cancellation pending
     * again, for its next suspension. */
    void (*recancel)(struct conc__coro *c);
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
    uint64_t token;  /* the current suspension's number */
    int scope;       /* inside a public blocking call: waits are cancellable */
    int cancel_seen; /* a wait in that call was cancelled */
};

/* The coroutine running in this thread, or NULL on a thread's own stack
 * (the loop itself, or a thread without a loop). Set by the async layer
 * around every switch. Read by every wait, so kept in the static TLS
 * block. */
extern _Thread_local struct conc__coro *conc__coro_self
    __attribute__((tls_model("initial-exec")));

/* ---- Cancellation points ----------------------------------------------------
 *
 * Every public blocking call of conc is a cancellation point when a
 * coroutine makes it: a cancelled task's call returns CONC_ECANCELED. The
 * call opens a scope around its waiting; inside it a cancellation ends the
 * wait as a timeout would (the waits already undo themselves correctly on
 * a timeout: a sleeper uncounts itself, a half-taken lock is given back),
 * every further wait in the scope times out at once, and the scope's exit
 * turns the call's failure into CONC_ECANCELED. A call that succeeded
 * anyway (the lock came free as the cancellation arrived) keeps its
 * result, and the cancellation stays pending for the task's next
 * suspension, so it is never lost. Waits outside a scope (the library's
 * own short internal waits) are never cut short. */
struct conc__cancel_scope {
    struct conc__coro *coro;
    int outer;
};

static inline void
conc__cancel_enter(struct conc__cancel_scope *s)
{
    struct conc__coro *c = conc__coro_self;
    s->coro = c;
    s->outer = 0;
    if (c) {
        s->outer = c->scope;
        c->scope = 1;
    }
}

static inline int
conc__cancel_exit(struct conc__cancel_scope *s, int r)
{
    struct conc__coro *c = s->coro;
    if (!c)
        return r;
    c->scope = s->outer;
    if (s->outer || !c->cancel_seen)
        return r;
    c->cancel_seen = 0;
    if (r < 0)
        return -ECANCELED; /* CONC_ECANCELED */
    c->ops->recancel(c);
    return r;
}

/* Runs `expr` (an int) as a cancellation point and returns its value. */
#define CONC__CANCEL_POINT(expr)                                               \
    do {                                                                       \
        struct conc__cancel_scope cancel_scope_;                               \
        conc__cancel_enter(&cancel_scope_);                                    \
        int cancel_r_ = (expr);                                                \
        return conc__cancel_exit(&cancel_scope_, cancel_r_);                   \
    } while (0)

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

/* In a child just forked: the child's one thread runs no coroutine (even
 * if it was forked from one: it continues on that stack as a plain
 * thread), and no coroutine of the parent is parked in it. */
void conc__park_atfork_child(void);

/* Takes (1) or releases (0) every bucket's lock, around a fork. */
void conc__park_fork_lock(int take);

/* Wakes up to n coroutines parked on `word`; returns how many. Cheap when
 * none is parked anywhere. Any thread. */
int conc__park_wake(_Atomic uint32_t *word, int n);

#endif
