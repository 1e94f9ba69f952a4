/* conc/sync.h: Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event
 * and Barrier, as in Python's threading module.
 *
 * Each object is created with conc_<kind>_new and freed with
 * conc_<kind>_free; freeing NULL does nothing, and freeing an object that a
 * thread still waits on is a bug. All other functions may be called from any
 * thread. Every blocking call takes a timeout in seconds: CONC_FOREVER waits
 * without limit, 0 never blocks, and a wait that runs out returns
 * CONC_ETIMEDOUT.
 *
 * Process-shared objects: give `.arena` in the options and the object is
 * allocated in that shared arena, so processes forked after its creation
 * use it with the same calls. Without an arena the object is private to the
 * process (and faster to wake).
 *
 * Process-shared Locks and RLocks are robust. If the thread that holds one
 * dies (its process is killed, or it exits) without releasing it, the next
 * acquirer gets CONC_EOWNERDEAD instead of waiting for ever: that caller
 * now holds the lock, may repair the state the lock guards, and calls
 * conc_lock_make_consistent (conc_rlock_make_consistent) before releasing
 * it. A lock released without that becomes unusable: every later acquire
 * returns CONC_ENOTRECOVERABLE at once (pthread's robust mutex rules). A
 * process-shared Lock therefore has an owner, the thread that acquired it,
 * and only that thread may release it (CONC_ENOTOWNER otherwise). A process
 * killed inside another object's call (a Semaphore's, an Event's, a
 * Barrier's) is not detected. */
#ifndef CONC_SYNC_H
#define CONC_SYNC_H

#include "arena.h"
#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_sync_opts {
    conc_arena *arena; /* NULL: private to this process */
} conc_sync_opts;

/* ---- Lock (threading.Lock) ----------------------------------------------
 * A mutual-exclusion lock with no owner: any thread may release it, as in
 * Python (except for a process-shared Lock, see above). Waiters spin
 * briefly, then sleep on a futex. */
typedef struct conc_lock conc_lock;

/* Creates an unlocked lock in *out, freed with conc_lock_free. `opts` may be
 * NULL. Returns 0 or CONC_ENOMEM (also when the arena is full).
 * conc_lock_free: any thread, once no other thread uses the object. The others:
 * any thread. */
CONC_EXTERN int conc_lock_new(const conc_sync_opts *opts, conc_lock **out);
CONC_EXTERN void conc_lock_free(conc_lock *lock);

/* Acquires the lock, waiting up to `timeout`. Returns 0, CONC_ETIMEDOUT,
 * or CONC_EINVAL for a NaN timeout. A thread that acquires a Lock it
 * already holds waits for itself (as in Python): use an RLock for that.
 * A process-shared lock may also return CONC_EOWNERDEAD (the lock is now
 * held by the caller; its previous owner died holding it) or
 * CONC_ENOTRECOVERABLE (not acquired: the lock is unusable). */
CONC_EXTERN int conc_lock_acquire(conc_lock *lock, double timeout);

/* Releases the lock, waking one waiter. Returns 0, or CONC_ENOTLOCKED if
 * the lock was not locked (Python's RuntimeError); for a process-shared
 * lock, CONC_ENOTOWNER if another thread holds it. */
CONC_EXTERN int conc_lock_release(conc_lock *lock);

/* Marks a process-shared lock, acquired with CONC_EOWNERDEAD, consistent
 * again: call it once the state it guards is repaired, before releasing
 * it (pthread_mutex_consistent). Only the thread holding the lock may call
 * it. Returns 0, CONC_ENOTOWNER if the caller does not hold the lock, or
 * CONC_EINVAL if the lock is private or not in the owner-died state. */
CONC_EXTERN int conc_lock_make_consistent(conc_lock *lock);

/* Whether the lock is locked at this instant (1 or 0). Any thread.
 * CONC_EINVAL for a NULL lock. */
CONC_EXTERN int conc_lock_locked(const conc_lock *lock);

/* ---- RLock (threading.RLock) --------------------------------------------
 * A reentrant lock: its owner may acquire it again and must release it as
 * many times. Ownership is by thread (across processes when shared). */
typedef struct conc_rlock conc_rlock;

/* Creates an unlocked RLock in *out, a new object freed with
 * conc_rlock_free. `opts` may be NULL. Returns 0, CONC_ENOMEM (also when
 * the arena is full), CONC_EINVAL for a NULL out. conc_rlock_free: NULL
 * does nothing; any thread, once no other thread uses the lock.
 * conc_rlock_new: any thread. */
CONC_EXTERN int conc_rlock_new(const conc_sync_opts *opts, conc_rlock **out);
CONC_EXTERN void conc_rlock_free(conc_rlock *rlock);

/* Acquires (or re-enters) the lock. Returns 0, CONC_ETIMEDOUT, CONC_EINVAL
 * for a NaN timeout, or CONC_EOVERFLOW past 2^32-1 nested acquisitions.
 * A process-shared RLock may also return CONC_EOWNERDEAD (acquired once by
 * the caller; the previous owner died holding it) or CONC_ENOTRECOVERABLE,
 * as a Lock does.
 * Any thread. */
CONC_EXTERN int conc_rlock_acquire(conc_rlock *rlock, double timeout);

/* Undoes one acquisition; the lock is free when the count reaches 0.
 * Returns 0, or CONC_ENOTOWNER if the calling thread does not own it. */
CONC_EXTERN int conc_rlock_release(conc_rlock *rlock);

/* Whether the calling thread owns the lock (1 or 0).
 * CONC_EINVAL for a NULL lock. */
CONC_EXTERN int conc_rlock_is_owned(const conc_rlock *rlock);

/* As conc_lock_make_consistent, for a process-shared RLock acquired with
 * CONC_EOWNERDEAD; the caller may hold it at any depth. Returns 0,
 * CONC_ENOTOWNER, or CONC_EINVAL (private, or not in the owner-died
 * state).
 * The thread that holds the lock. */
CONC_EXTERN int conc_rlock_make_consistent(conc_rlock *rlock);

/* ---- Condition (threading.Condition) ------------------------------------
 * A condition variable bound to a lock: by default a new RLock of its own,
 * or the Lock or RLock given in the options. Waiters are woken in the
 * order they began to wait, and notify(n) wakes at most n of them. */
typedef struct conc_cond conc_cond;

typedef struct conc_cond_opts {
    conc_lock *lock;   /* use this Lock (borrowed; must outlive the cond) */
    conc_rlock *rlock; /* or this RLock; at most one of the two */
    conc_arena *arena; /* process-shared: allocate in this arena */
} conc_cond_opts;

/* Creates a condition in *out, freed with conc_cond_free (which frees its
 * own RLock, never a borrowed lock). Returns 0, CONC_ENOMEM, or CONC_EINVAL
 * when both lock and rlock are given, or a borrowed lock is not in the same
 * arena as the condition.
 * conc_cond_free: any thread, once no other thread uses the object. The others:
 * any thread. */
CONC_EXTERN int conc_cond_new(const conc_cond_opts *opts, conc_cond **out);
CONC_EXTERN void conc_cond_free(conc_cond *cond);

/* Acquire and release the underlying lock; errors as for that lock. Any thread.
 */
CONC_EXTERN int conc_cond_acquire(conc_cond *cond, double timeout);
CONC_EXTERN int conc_cond_release(conc_cond *cond);

/* Marks the condition's process-shared lock consistent after an acquire or
 * a wait returned CONC_EOWNERDEAD (conc_lock_make_consistent or
 * conc_rlock_make_consistent on it; the only way to reach the condition's
 * own RLock). Errors as those.
 * The thread that holds the condition's lock. */
CONC_EXTERN int conc_cond_make_consistent(conc_cond *cond);

/* Releases the lock (fully, for an RLock), waits to be notified or for the
 * timeout, then re-acquires the lock (waiting for it as long as needed)
 * before returning. Returns 0 when notified, CONC_ETIMEDOUT, CONC_EINVAL
 * (NULL, NaN timeout), or CONC_ENOTOWNER if the caller does not hold the
 * lock (for a plain Lock: if it is not locked), as Python's RuntimeError.
 * A process-shared condition records each waiter in its arena: CONC_ENOMEM
 * if the arena is full (the lock is still held). With a process-shared lock
 * whose holder died, it returns CONC_EOWNERDEAD once it holds the lock again,
 * notified or not (recover it as after conc_lock_acquire), or
 * CONC_ENOTRECOVERABLE without the lock if the lock is unusable. Waiting
 * releases the lock: a caller that holds it after CONC_EOWNERDEAD must make it
 * consistent before waiting, or the wait leaves it unusable. The thread that
 * holds the condition's lock. */
CONC_EXTERN int conc_cond_wait(conc_cond *cond, double timeout);

/* A predicate for conc_cond_wait_for: nonzero when the awaited state holds.
 * It runs with the lock held. */
typedef int (*conc_predicate_fn)(void *arg);

/* Waits until pred(arg) is true, checking it first and after each wake-up,
 * with the lock held. The timeout covers the whole wait. Returns 0 when the
 * predicate is true, CONC_ETIMEDOUT if it is still false at the deadline,
 * CONC_ENOTOWNER, CONC_EOWNERDEAD or CONC_ENOTRECOVERABLE as
 * conc_cond_wait, CONC_EINVAL for a NULL predicate or a NaN timeout.
 * The thread that holds the condition's lock. */
CONC_EXTERN int conc_cond_wait_for(conc_cond *cond, conc_predicate_fn pred,
                                   void *arg, double timeout);

/* Wakes up to `n` waiters (the longest-waiting first). The caller must hold
 * the lock: otherwise CONC_ENOTOWNER. n == 0 does nothing.
 * The thread that holds the condition's lock. */
CONC_EXTERN int conc_cond_notify(conc_cond *cond, unsigned n);

/* Wakes every waiter. Errors as conc_cond_notify. The thread that holds the
 * condition's lock. */
CONC_EXTERN int conc_cond_notify_all(conc_cond *cond);

/* ---- Semaphore and BoundedSemaphore -------------------------------------
 * A counter that acquire decrements, waiting while it is 0, and release
 * increments. A BoundedSemaphore refuses to rise above its initial value. */
typedef struct conc_sem conc_sem;
typedef struct conc_bsem conc_bsem;

/* Creates a semaphore with the given initial value (Python's default is 1).
 * Returns 0, CONC_ENOMEM, or CONC_EINVAL for a value above INT32_MAX.
 * conc_sem_free: any thread, once no other thread uses the object. The others:
 * any thread.
 * The semaphore in *out is new, freed with conc_sem_free. */
CONC_EXTERN int conc_sem_new(unsigned value, const conc_sync_opts *opts,
                             conc_sem **out);
CONC_EXTERN void conc_sem_free(conc_sem *sem);

/* Takes one unit, waiting up to `timeout` while the value is 0. Returns 0,
 * CONC_ETIMEDOUT or CONC_EINVAL (NaN timeout).
 * Any thread. */
CONC_EXTERN int conc_sem_acquire(conc_sem *sem, double timeout);

/* Adds `n` units, waking up to n waiters. Returns 0, CONC_EINVAL for n == 0,
 * or CONC_EOVERFLOW if the value would pass INT32_MAX (nothing added).
 * Any thread. */
CONC_EXTERN int conc_sem_release(conc_sem *sem, unsigned n);

/* The current value (a snapshot). Any thread. */
CONC_EXTERN unsigned conc_sem_value(const conc_sem *sem);

/* BoundedSemaphore: as above, with the initial value as the ceiling.
 * conc_bsem_free: any thread, once no other thread uses the object. The others:
 * any thread.
 * conc_bsem_new: errors and ownership as conc_sem_new (the new semaphore is
 * freed with conc_bsem_free); conc_bsem_acquire: errors as conc_sem_acquire. */
CONC_EXTERN int conc_bsem_new(unsigned value, const conc_sync_opts *opts,
                              conc_bsem **out);
CONC_EXTERN void conc_bsem_free(conc_bsem *sem);
CONC_EXTERN int conc_bsem_acquire(conc_bsem *sem, double timeout);

/* Adds `n` units. Returns 0, CONC_EINVAL for n == 0, or CONC_EVALUE if the
 * value would exceed the initial value (Python's "Semaphore released too
 * many times"); then nothing is added.
 * Any thread. */
CONC_EXTERN int conc_bsem_release(conc_bsem *sem, unsigned n);
CONC_EXTERN unsigned conc_bsem_value(const conc_bsem *sem);

/* ---- Event (threading.Event) --------------------------------------------
 * A flag that threads wait for. */
typedef struct conc_event conc_event;

/* Creates a cleared event in *out, a new object freed with
 * conc_event_free. `opts` may be NULL. Returns 0, CONC_ENOMEM (also when
 * the arena is full), CONC_EINVAL for a NULL out. conc_event_free: NULL
 * does nothing; any thread, once no other thread uses the event.
 * conc_event_new: any thread. */
CONC_EXTERN int conc_event_new(const conc_sync_opts *opts, conc_event **out);
CONC_EXTERN void conc_event_free(conc_event *ev);

/* Sets the flag and wakes every waiter. Any thread. */
CONC_EXTERN void conc_event_set(conc_event *ev);

/* Clears the flag. Any thread. */
CONC_EXTERN void conc_event_clear(conc_event *ev);

/* Whether the flag is set (1 or 0). Any thread.
 * CONC_EINVAL for a NULL event. */
CONC_EXTERN int conc_event_is_set(const conc_event *ev);

/* Waits until the flag is set. Returns 0 if it is (at once if already set),
 * CONC_ETIMEDOUT, or CONC_EINVAL for a NaN timeout.
 * Any thread. */
CONC_EXTERN int conc_event_wait(conc_event *ev, double timeout);

/* ---- Barrier (threading.Barrier) ----------------------------------------
 * `parties` threads meet; when the last arrives, the optional action runs in
 * that thread, then all are released and the barrier is ready for the next
 * round. A barrier broken by abort, a timeout or a failed action stays
 * broken until reset. */
typedef struct conc_barrier conc_barrier;

/* The action run once per round by the last thread to arrive. A nonzero
 * return breaks the barrier: every waiter of that round gets CONC_EBROKEN.
 * It runs with the barrier's internal lock held (as in Python): it may call
 * conc_barrier_parties, _n_waiting and _broken, but not wait, abort or
 * reset on the same barrier. */
typedef int (*conc_barrier_action_fn)(void *arg);

typedef struct conc_barrier_opts {
    conc_barrier_action_fn action; /* NULL: none */
    void *action_arg;
    conc_arena *arena; /* process-shared: allocate in this arena */
} conc_barrier_opts;

/* Creates a barrier for `parties` threads. Returns 0, CONC_ENOMEM, or
 * CONC_EINVAL for 0 parties.
 * The barrier in *out is new, freed with conc_barrier_free. */
CONC_EXTERN int conc_barrier_new(unsigned parties,
                                 const conc_barrier_opts *opts,
                                 conc_barrier **out);
CONC_EXTERN void conc_barrier_free(conc_barrier *b);

/* Waits for all parties. On success returns 0 and, if `index` is not NULL,
 * a distinct number from 0 to parties-1 in *index (Python's return value).
 * Returns CONC_EBROKEN if the barrier is or becomes broken (abort, reset
 * while waiting, another waiter's timeout, a failed action), or
 * CONC_ETIMEDOUT when this caller's timeout ran out, which also breaks it.
 * Any thread. */
CONC_EXTERN int conc_barrier_wait(conc_barrier *b, double timeout,
                                  unsigned *index);

/* Breaks the barrier: current and future waiters get CONC_EBROKEN until
 * conc_barrier_reset.
 * Any thread. */
CONC_EXTERN void conc_barrier_abort(conc_barrier *b);

/* Returns the barrier to its initial state; threads waiting at that moment
 * get CONC_EBROKEN. */
CONC_EXTERN void conc_barrier_reset(conc_barrier *b);

/* The number of parties, the number of threads waiting at this
 * instant, and whether the barrier is broken (1 or 0). For a NULL barrier
 * they return 0, 0 and CONC_EINVAL. Any thread, the barrier's action
 * included. */
CONC_EXTERN unsigned conc_barrier_parties(const conc_barrier *b);
CONC_EXTERN unsigned conc_barrier_n_waiting(const conc_barrier *b);
CONC_EXTERN int conc_barrier_broken(const conc_barrier *b);

CONC_END_DECLS

#endif
