/* Barrier (threading.Barrier).
 *
 * Design. Python's algorithm, unchanged. The barrier is in one of four
 * states: FILLING (threads arrive and wait), DRAINING (the round is complete
 * and its threads are leaving), RESETTING (reset ran while threads waited;
 * they leave with an error) and BROKEN. `count` is the number of threads
 * inside wait. A thread arriving while the barrier drains or resets waits
 * for the previous round to empty, so rounds never mix: that is what makes
 * the barrier reusable. The last thread of a round runs the action and
 * switches to DRAINING; the last thread to leave a draining or resetting
 * barrier switches it back to FILLING.
 *
 * Where Python uses a Condition, this uses a lock word plus one futex word,
 * `seq`, that every state change advances under the lock. A thread that
 * must wait reads `seq` under the lock, releases it, and sleeps while `seq`
 * keeps that value, so it cannot miss a change made after it looked. The
 * wake system call happens only when `sleepers` (threads between releasing
 * the lock and taking it back) is nonzero.
 *
 * The action runs with the lock held, as in Python: it may read the
 * barrier (parties, n_waiting, broken) but must not wait on, abort or reset
 * it. */
#include "sync/sync_internal.h"
#include "unix/coro.h"

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

/* state and count change only under the lock; they are atomic so that
 * n_waiting and broken may read them without it (from the action, too). */
struct conc_barrier {
    conc__lockword lock;           /* guards every field below except seq */
    _Atomic uint32_t seq;          /* advanced under the lock at each change */
    uint32_t shared;               /* immutable */
    uint32_t parties;              /* immutable */
    _Atomic uint32_t count;        /* threads inside conc_barrier_wait */
    _Atomic int32_t state;         /* FILLING, DRAINING, ... */
    uint32_t sleepers;             /* threads that may sleep on seq */
    conc_barrier_action_fn action; /* immutable */
    void *action_arg;              /* immutable */
    conc_arena *arena;             /* immutable */
};

int
conc_barrier_new(unsigned parties, const conc_barrier_opts *opts,
                 conc_barrier **out)
{
    if (!out)
        return CONC_EINVAL;
    if (parties == 0)
        return CONC_EINVAL;
    conc_arena *arena = opts ? opts->arena : NULL;
    conc_barrier *b = conc__sync_alloc(arena, sizeof *b);
    if (!b)
        return CONC_ENOMEM;
    b->shared = arena != NULL;
    b->parties = parties;
    atomic_init(&b->state, FILLING);
    b->action = opts ? opts->action : NULL;
    b->action_arg = opts ? opts->action_arg : NULL;
    b->arena = arena;
    *out = b;
    return 0;
}

void
conc_barrier_free(conc_barrier *b)
{
    if (b)
        conc__sync_dealloc(b->arena, b);
}

static void
lock(conc_barrier *b)
{
    conc__lockword_acquire(&b->lock, CONC__FOREVER, (int)b->shared);
}

static void
unlock(conc_barrier *b)
{
    conc__lockword_release(&b->lock, (int)b->shared);
}

/* Wakes every thread waiting for a change; the lock is held. */
static void
broadcast(conc_barrier *b)
{
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_release);
    if (b->sleepers > 0)
        conc__futex_wake(&b->seq, INT32_MAX, (int)b->shared);
}

/* Releases the lock, waits for a broadcast or the deadline, and takes the
 * lock back. Returns 0 (woken, perhaps spuriously) or CONC_ETIMEDOUT. */
static int
await_change(conc_barrier *b, int64_t deadline)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    uint32_t seen = atomic_load_explicit(&b->seq, memory_order_relaxed);
    b->sleepers++;
    unlock(b);
    int r = conc__wait_while(&b->seq, seen, deadline, (int)b->shared);
    lock(b);
    b->sleepers--;
    return r;
}

static void
break_locked(conc_barrier *b)
{
    b->state = BROKEN;
    broadcast(b);
}

/* The last thread of a round: run the action, then release the others. */
static int
release_round(conc_barrier *b)
{
    if (b->action && b->action(b->action_arg) != 0) {
        break_locked(b);
        return CONC_EBROKEN;
    }
    b->state = DRAINING;
    broadcast(b);
    return 0;
}

/* Waits for the round to complete; the lock is held. */
static int
wait_round(conc_barrier *b, int64_t deadline)
{
    int r = 0;
    while (b->state == FILLING) {
        if (r == CONC_ETIMEDOUT) {
            break_locked(b);
            return CONC_ETIMEDOUT;
        }
        r = await_change(b, deadline);
    }
    return b->state < 0 ? CONC_EBROKEN : 0;
}

/* Leaves the barrier; the last to leave a finished round reopens it. */
static void
leave(conc_barrier *b)
{
    if (--b->count == 0 && (b->state == RESETTING || b->state == DRAINING)) {
        b->state = FILLING;
        broadcast(b);
    }
}

static int
barrier_wait_uncancelled(conc_barrier *b, double timeout, unsigned *index)
{
    if (!b)
        return CONC_EINVAL;
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    lock(b);
    /* Wait for the previous round to drain or a reset to finish. */
    while (b->state == DRAINING || b->state == RESETTING)
        await_change(b, CONC__FOREVER);
    if (b->state == BROKEN) {
        unlock(b);
        return CONC_EBROKEN;
    }
    unsigned i = b->count++;
    if (i + 1 == b->parties)
        r = release_round(b);
    else
        r = wait_round(b, deadline);
    leave(b);
    unlock(b);
    if (r == 0 && index)
        *index = i;
    return r;
}

int
conc_barrier_wait(conc_barrier *b, double timeout, unsigned *index)
{
    CONC__CANCEL_POINT(barrier_wait_uncancelled(b, timeout, index));
}

void
conc_barrier_abort(conc_barrier *b)
{
    if (!b)
        return;
    lock(b);
    break_locked(b);
    unlock(b);
}

void
conc_barrier_reset(conc_barrier *b)
{
    if (!b)
        return;
    lock(b);
    if (b->count > 0) {
        /* Waiters of a filling or broken round leave with an error; a
         * draining round is allowed to finish. */
        if (b->state == FILLING || b->state == BROKEN)
            b->state = RESETTING;
    } else {
        b->state = FILLING;
    }
    broadcast(b);
    unlock(b);
}

unsigned
conc_barrier_parties(const conc_barrier *b)
{
    if (!b)
        return 0;
    return b->parties;
}

/* As in Python, these two read without the lock: the answer may be stale
 * by the time the caller looks at it anyway. */
unsigned
conc_barrier_n_waiting(const conc_barrier *b)
{
    if (!b)
        return 0;
    conc_barrier *m = (conc_barrier *)b;
    if (atomic_load_explicit(&m->state, memory_order_relaxed) != FILLING)
        return 0;
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

int
conc_barrier_broken(const conc_barrier *b)
{
    if (!b)
        return CONC_EINVAL;
    conc_barrier *m = (conc_barrier *)b;
    return atomic_load_explicit(&m->state, memory_order_relaxed) == BROKEN;
}
