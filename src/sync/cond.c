/* Condition (threading.Condition).
 *
 * Design. The condition keeps a FIFO of waiter records, a doubly linked
 * list guarded by the condition's own lock (the Lock or RLock it is bound
 * to): wait and notify both require that lock, so the list needs no lock of
 * its own. Each record carries a 32-bit futex word, `state`, on which only
 * its waiter sleeps:
 *
 *   WAITING  linked, its waiter may still be spinning;
 *   SLEEPING linked, its waiter may be in the kernel (it set this itself);
 *   NOTIFIED unlinked by notify.
 *
 * wait links a record at the tail, releases the lock (fully, for an RLock,
 * remembering the count), spins briefly on `state`, then moves it from
 * WAITING to SLEEPING and sleeps on it. notify(n) unlinks up to n records
 * from the head, exchanges each state to NOTIFIED and makes the wake system
 * call only if the old state was SLEEPING. That is what makes wake-ups
 * exactly FIFO and "at most n": a record, once unlinked, is never woken by
 * anyone else, and a waiter returns only on NOTIFIED or its deadline (never
 * on a spurious futex wake).
 *
 * A waiter whose deadline passes re-acquires the lock and then looks at its
 * state: still linked means nobody chose it, so it unlinks itself and
 * reports the timeout; NOTIFIED means a notify chose it in the meantime, and
 * it reports success rather than lose that notification.
 *
 * Lifetimes. A record is freed only by its waiter, and only after it holds
 * the lock again; notify touches records only while holding the lock. So a
 * record is never touched after it is freed. A private condition keeps the
 * record on the waiter's stack; a process-shared one allocates it in the
 * arena, where a notifier in another process can reach it at the same
 * address.
 *
 * Lock order: the condition's lock, then the arena's (to allocate a
 * record). */
#include <math.h>

#include "sync/sync_internal.h"
#include "unix/coro.h"

enum { WAITING = 0, NOTIFIED = 1, SLEEPING = 2 };

struct waiter {
    _Atomic uint32_t state;
    struct waiter *next, *prev; /* guarded by the condition's lock */
};

struct conc_cond {
    conc_lock *lock;   /* exactly one of lock and rlock is set */
    conc_rlock *rlock; /* owned when own_rlock */
    uint32_t own_rlock;
    uint32_t shared;
    conc_arena *arena;
    struct waiter *head, *tail; /* guarded by the condition's lock */
};

static int
lock_arena_matches(const conc_cond_opts *opts)
{
    if (opts->lock)
        return opts->lock->arena == opts->arena;
    if (opts->rlock)
        return opts->rlock->arena == opts->arena;
    return 1;
}

int
conc_cond_new(const conc_cond_opts *opts, conc_cond **out)
{
    if (!out)
        return CONC_EINVAL;
    static const conc_cond_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if ((opts->lock && opts->rlock) || !lock_arena_matches(opts))
        return CONC_EINVAL;
    conc_cond *c = conc__sync_alloc(opts->arena, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    c->arena = opts->arena;
    c->shared = opts->arena != NULL;
    c->lock = opts->lock;
    c->rlock = opts->rlock;
    if (!c->lock && !c->rlock) {
        conc_sync_opts ro = {.arena = opts->arena};
        if (conc_rlock_new(&ro, &c->rlock) != 0)
            goto fail;
        c->own_rlock = 1;
    }
    *out = c;
    return 0;
fail:
    conc__sync_dealloc(opts->arena, c);
    return CONC_ENOMEM;
}

void
conc_cond_free(conc_cond *cond)
{
    if (!cond)
        return;
    if (cond->own_rlock)
        conc_rlock_free(cond->rlock);
    conc__sync_dealloc(cond->arena, cond);
}

static int
cond_acquire_uncancelled(conc_cond *cond, double timeout)
{
    if (!cond)
        return CONC_EINVAL;
    if (cond->rlock)
        return conc_rlock_acquire(cond->rlock, timeout);
    return conc_lock_acquire(cond->lock, timeout);
}

int
conc_cond_acquire(conc_cond *cond, double timeout)
{
    CONC__CANCEL_POINT(cond_acquire_uncancelled(cond, timeout));
}

int
conc_cond_release(conc_cond *cond)
{
    if (!cond)
        return CONC_EINVAL;
    if (cond->rlock)
        return conc_rlock_release(cond->rlock);
    return conc_lock_release(cond->lock);
}

int
conc_cond_make_consistent(conc_cond *cond)
{
    if (!cond)
        return CONC_EINVAL;
    if (cond->rlock)
        return conc_rlock_make_consistent(cond->rlock);
    return conc_lock_make_consistent(cond->lock);
}

/* Whether the caller may wait or notify: it owns the RLock, or the Lock is
 * locked (a Lock has no owner, so that is all Python can check too; a
 * process-shared Lock has one, and it must be the caller). */
static int
held(const conc_cond *c)
{
    if (c->rlock)
        return conc__rlock_owned(c->rlock);
    return conc__lock_held(c->lock);
}

static uint32_t
unlock_fully(conc_cond *c)
{
    if (c->rlock)
        return conc__rlock_release_save(c->rlock);
    conc_lock_release(c->lock);
    return 1;
}

/* Takes the lock back. Returns 0; with a process-shared lock also
 * CONC_EOWNERDEAD (taken) or CONC_ENOTRECOVERABLE (not taken). */
static int
relock(conc_cond *c, uint32_t count)
{
    if (c->rlock)
        return conc__rlock_acquire_restore(c->rlock, count);
    return conc__lock_relock(c->lock);
}

static void
link_tail(conc_cond *c, struct waiter *w)
{
    w->next = NULL;
    w->prev = c->tail;
    if (c->tail)
        c->tail->next = w;
    else
        c->head = w;
    c->tail = w;
}

static void
unlink_waiter(conc_cond *c, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        c->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        c->tail = w->prev;
    w->next = w->prev = NULL;
}

/* Spins, then sleeps, until `w` is notified or the deadline passes.
 * Returns 0 or CONC_ETIMEDOUT; the caller settles which under the lock. */
static int
await_notify(struct waiter *w, int64_t deadline, int shared)
{
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if (atomic_load_explicit(&w->state, memory_order_acquire) == NOTIFIED)
            return 0;
    uint32_t expected = WAITING;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expected, SLEEPING,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire))
        return 0; /* it can only have become NOTIFIED */
    while (atomic_load_explicit(&w->state, memory_order_acquire) == SLEEPING) {
        if (conc__futex_wait(&w->state, SLEEPING, deadline, shared) ==
            -ETIMEDOUT)
            return CONC_ETIMEDOUT;
    }
    return 0;
}

static struct waiter *
new_waiter(conc_cond *c, struct waiter *local)
{
    if (!c->shared) {
        atomic_init(&local->state, WAITING);
        return local;
    }
    void *p;
    return conc_arena_alloc(c->arena, sizeof(struct waiter), &p) == 0 ? p
                                                                      : NULL;
}

/* conc_cond_wait with an absolute deadline; the caller holds the lock. */
static int
wait_until(conc_cond *c, int64_t deadline)
{
    if (deadline == CONC__POLL) {
        /* As in Python, a zero timeout still lets others take the lock. */
        int e = relock(c, unlock_fully(c));
        return e ? e : CONC_ETIMEDOUT;
    }
    struct waiter local;
    struct waiter *w = new_waiter(c, &local);
    if (!w)
        return CONC_ENOMEM;
    link_tail(c, w);
    uint32_t count = unlock_fully(c);
    await_notify(w, deadline, (int)c->shared);
    /* A process-shared lock whose holder died is still taken back, and the
     * caller is told so. An unrecoverable one cannot be: a record still
     * linked then stays so (no thread can ever hold the lock to reach it
     * again), a notified one is no one's but ours. */
    int e = relock(c, count);
    if (e == CONC_ENOTRECOVERABLE) {
        if (c->shared &&
            atomic_load_explicit(&w->state, memory_order_acquire) == NOTIFIED)
            conc_arena_dealloc(c->arena, w);
        return e;
    }
    int r = 0;
    if (atomic_load_explicit(&w->state, memory_order_relaxed) != NOTIFIED) {
        unlink_waiter(c, w);
        r = CONC_ETIMEDOUT;
    }
    if (c->shared)
        conc_arena_dealloc(c->arena, w);
    return e ? e : r;
}

static int
cond_wait_uncancelled(conc_cond *cond, double timeout)
{
    if (!cond)
        return CONC_EINVAL;
    /* A NaN timeout is bad input, refused before the state is looked at. */
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    if (!held(cond))
        return CONC_ENOTOWNER;
    return wait_until(cond, deadline);
}

int
conc_cond_wait(conc_cond *cond, double timeout)
{
    CONC__CANCEL_POINT(cond_wait_uncancelled(cond, timeout));
}

static int
cond_wait_for_uncancelled(conc_cond *cond, conc_predicate_fn pred, void *arg,
                          double timeout)
{
    if (!cond)
        return CONC_EINVAL;
    if (!pred)
        return CONC_EINVAL;
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    if (!held(cond))
        return CONC_ENOTOWNER;
    /* Python's loop: one last look at the predicate after the deadline. */
    while (!pred(arg)) {
        if (r == CONC_ETIMEDOUT)
            return CONC_ETIMEDOUT;
        r = wait_until(cond, deadline);
        if (r != 0 && r != CONC_ETIMEDOUT)
            return r;
    }
    return 0;
}

int
conc_cond_wait_for(conc_cond *cond, conc_predicate_fn pred, void *arg,
                   double timeout)
{
    CONC__CANCEL_POINT(cond_wait_for_uncancelled(cond, pred, arg, timeout));
}

int
conc_cond_notify(conc_cond *cond, unsigned n)
{
    if (!cond)
        return CONC_EINVAL;
    if (!held(cond))
        return CONC_ENOTOWNER;
    while (n > 0 && cond->head) {
        struct waiter *w = cond->head;
        unlink_waiter(cond, w);
        if (atomic_exchange_explicit(&w->state, NOTIFIED,
                                     memory_order_acq_rel) == SLEEPING)
            conc__futex_wake(&w->state, 1, (int)cond->shared);
        n--;
    }
    return 0;
}

int
conc_cond_notify_all(conc_cond *cond)
{
    if (!cond)
        return CONC_EINVAL;
    return conc_cond_notify(cond, UINT_MAX);
}

unsigned
conc__cond_waiters(const conc_cond *c)
{
    unsigned n = 0;
    for (const struct waiter *w = c->head; w; w = w->next)
        n++;
    return n;
}
