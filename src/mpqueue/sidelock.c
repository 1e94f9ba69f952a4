/* Side locks: the producer lock and the consumer lock of a process queue,
 * made to survive the death of their owner.
 *
 * Design. A lock is one 64-bit word in shared memory: 0 when free, else
 * the owner's identity. The identity is the owner thread's kernel id (low
 * 30 bits) and the low 32 bits of that thread's start time in clock ticks
 * since boot (high half), read once per thread from /proc (0 when it cannot
 * be read: then only the thread's disappearance counts). The pair names
 * one thread for the life of the machine: a thread id is reused only after
 * the kernel has cycled through every id, never within the same clock
 * tick. Bit 31 is the waiters bit, and the low half is the futex word, as
 * in Drepper's "Futexes Are Tricky" mutex: acquire is one CAS from 0 to
 * the identity; a waiter that finds the lock held sets the waiters bit and
 * sleeps on the low half; release exchanges the word with 0 and calls
 * futex wake only if the bit was set. A waiter that acquires after a sleep
 * keeps the bit set, since others may still sleep. No count of sleepers
 * survives a sleeper's death, so a killed waiter costs at most one
 * needless wake.
 *
 * A dead owner never releases. Waiters therefore sleep in slices (1 ms,
 * doubling to 64 ms) and, when a slice ends with the same owner still in
 * the word, read /proc/<tid>/task/<tid>/stat: if the thread is gone, is a
 * zombie, or has another start time (its id was reused), the owner is
 * dead, and the waiter takes the lock over with a CAS from the dead
 * owner's word to its own, so that exactly one waiter does. It then
 * repairs the side's state (the caller knows how) before going on. A live
 * owner is never taken over: the word holds the identity from the very CAS
 * that acquired the lock, so there is no moment at which it names anybody
 * else. Without /proc (or when it hides other users' processes) nothing is
 * ever judged dead and a dead owner blocks its side.
 *
 * The rule on dead owners, the same here and in sync/robust.c: a thread id
 * alone never decides who owns a lock, because the system gives a dead
 * thread's id to a new thread. An owner is judged dead only on evidence a
 * reused id cannot fake: here no thread with the owner's id, or one with
 * another start time (a reused id); under a process-shared Lock, the
 * kernel's robust list. The side locks cannot use that list (it links only
 * glibc's robust pthread mutexes, and the side lock is one 64-bit word the
 * ring's repair logic reads), so they carry the start time instead. When
 * the owner could not read its start time, the word holds 0 there and only
 * the thread's disappearance counts: a reused id then makes a dead owner
 * look alive, which blocks the side but never hands a live owner's lock to
 * another. */
#include <errno.h>

#include "mpqueue/mpqueue_internal.h"
#include "unix/platform.h"

/* Whether /proc answered for this process's own threads: 1 yes, -1 no, 0
 * not known yet. Only when it did are other threads judged through it. */
static _Atomic int proc_works;

static __thread uint32_t self_tid;
static __thread uint64_t self_word;

uint64_t
conc__mpq_self(void)
{
    uint32_t tid = conc__tid();
    if (CONC__LIKELY(self_tid == tid))
        return self_word;
    char state;
    uint64_t start = 0;
    if (conc__thread_stat(0, &state, &start) == 0)
        atomic_store(&proc_works, 1);
    else if (atomic_load(&proc_works) == 0)
        atomic_store(&proc_works, -1);
    self_word = (start & 0xffffffffu) << 32 | (tid & CONC__MPQ_TID_MASK);
    self_tid = tid;
    return self_word;
}

int
conc__mpq_owner_dead(uint64_t owner)
{
    if (atomic_load(&proc_works) != 1)
        return 0;
    uint32_t tid = (uint32_t)(owner & CONC__MPQ_TID_MASK);
    char state;
    uint64_t start;
    int r = conc__thread_stat(tid, &state, &start);
    if (r == -ENOENT || r == -ESRCH)
        return 1;
    if (r != 0)
        return 0;
    if (state == 'Z' || state == 'X' || state == 'x')
        return 1;
    /* A start time of 0 means the owner could not read its own; then only
     * its disappearance says it died. */
    uint32_t want = (uint32_t)(owner >> 32);
    return want != 0 && (uint32_t)start != want;
}

int64_t
conc__mpq_slice_end(int64_t slice, int64_t deadline)
{
    int64_t now = conc__now_ns();
    return deadline - now > slice ? now + slice : deadline;
}

int
conc__mpq_sleep(_Atomic uint32_t *word, uint32_t seq, int64_t *slice,
                int64_t deadline)
{
    int64_t end = conc__mpq_slice_end(*slice, deadline);
    if (*slice < CONC__MPQ_SLICE_MAX)
        *slice *= 2;
    return conc__futex_wait(word, seq, end, 1);
}

static _Atomic uint32_t *
futex_word(conc__mpq_lock *l)
{
    return (_Atomic uint32_t *)(void *)&l->word;
}

static int
try_from(conc__mpq_lock *l, uint64_t from, uint64_t to)
{
    return atomic_compare_exchange_strong_explicit(
        &l->word, &from, to, memory_order_seq_cst, memory_order_relaxed);
}

/* A holder keeps the lock for about the time it takes to put or take one
 * message, so a short spin usually gets it; even a call that must not
 * block spins for it, as a non-blocking conc_queue call takes its lock. */
static int
spin(conc__mpq_lock *l, uint64_t me)
{
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, CONC__FOREVER);
    while (conc__spin_more(&sp))
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
            try_from(l, 0, me))
            return 1;
    return 0;
}

/* Called when a wait for `v` (the word with the waiters bit) ended without
 * the lock: takes it over if its owner is dead. */
static int
take_from_dead(conc__mpq_lock *l, uint64_t v, uint64_t me)
{
    if (atomic_load_explicit(&l->word, memory_order_seq_cst) != v)
        return 0;
    if (!conc__mpq_owner_dead(v & ~CONC__MPQ_WAITERS))
        return 0;
    return try_from(l, v, me | CONC__MPQ_WAITERS);
}

int
conc__mpq_lock_acquire(conc__mpq_lock *l, int64_t deadline)
{
    uint64_t me = conc__mpq_self();
    if (CONC__LIKELY(try_from(l, 0, me)) || spin(l, me))
        return 0;
    int64_t slice = CONC__MPQ_SLICE_MIN;
    uint64_t owner = 0;
    for (;;) {
        uint64_t v = atomic_load_explicit(&l->word, memory_order_seq_cst);
        if (v == 0) {
            if (try_from(l, 0, me | CONC__MPQ_WAITERS))
                return 0;
            continue;
        }
        if (!(v & CONC__MPQ_WAITERS)) {
            if (!try_from(l, v, v | CONC__MPQ_WAITERS))
                continue;
            v |= CONC__MPQ_WAITERS;
        }
        if (v != owner) { /* a new owner: look at it soon */
            owner = v;
            slice = CONC__MPQ_SLICE_MIN;
        }
        int64_t end = conc__mpq_slice_end(slice, deadline);
        if (end > conc__now_ns() &&
            conc__futex_wait(futex_word(l), (uint32_t)v, end, 1) != -ETIMEDOUT)
            continue;
        if (take_from_dead(l, v, me))
            return CONC__MPQ_RECOVERED;
        if (end == deadline && conc__now_ns() >= deadline)
            return try_from(l, 0, me | CONC__MPQ_WAITERS) ? 0 : CONC_ETIMEDOUT;
        if (slice < CONC__MPQ_SLICE_MAX)
            slice *= 2;
    }
}

void
conc__mpq_lock_release(conc__mpq_lock *l)
{
    uint64_t old = atomic_exchange_explicit(&l->word, 0, memory_order_seq_cst);
    if (old & CONC__MPQ_WAITERS)
        conc__futex_wake(futex_word(l), 1, 1);
}
