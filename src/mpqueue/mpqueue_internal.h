/* Internal to the process queues: the shared layout, the side locks that
 * survive their owner's death, and the ring operations. The design is
 * written at the top of ring.c; the side lock's at the top of sidelock.c.
 *
 * Lock ordering: a process holds one side lock of a queue at a time (the
 * producer lock or the consumer lock), with one exception: a producer whose
 * message in pieces failed takes the consumer lock while it holds the
 * producer lock, to take its pieces back (ring.c); consumers never take the
 * producer lock, so that order cannot deadlock. No other lock is held with
 * a side lock, except the arena's inside conc_buf growth (heap, not
 * arena). */
#ifndef CONC_MPQUEUE_INTERNAL_H
#define CONC_MPQUEUE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "conc/buf.h"
#include "conc/mpqueue.h"
#include "core/internal.h"
#include "core/wait.h"
#include "unix/futex.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the side lock's futex word is the low half of a 64-bit word"
#endif

#define CONC__MPQ_LINE 64

/* ---- Spinning -----------------------------------------------------------
 * A side that must wait first spins by the policy of core/wait.h, checking
 * its condition: the other side usually acts within a microsecond while
 * both are busy, and a futex sleep and wake costs several. */

/* ---- Side locks (sidelock.c) --------------------------------------------
 * `word` is 0 when free; otherwise the owner's identity, its kernel thread
 * id in the low 30 bits and the low 32 bits of that thread's start time
 * (clock ticks since boot, from /proc) in the high half, so that a reused
 * thread id is not mistaken for the dead owner. Bit 31 says that waiters
 * may sleep on the low half, the futex word. */
typedef struct conc__mpq_lock {
    _Atomic uint64_t word;
} conc__mpq_lock;

#define CONC__MPQ_WAITERS  ((uint64_t)1 << 31)
#define CONC__MPQ_TID_MASK ((uint64_t)0x3fffffff)

/* What conc__mpq_lock_acquire returns besides errors: the lock was taken
 * from an owner that had died holding it, so the side's state needs the
 * repair the caller knows. */
#define CONC__MPQ_RECOVERED 1

/* The calling thread's identity as stored in a lock word. */
uint64_t conc__mpq_self(void);

/* Whether the thread identified by `owner` (a lock word, waiters bit
 * ignored) has certainly ended. 0 when unsure (no /proc). */
int conc__mpq_owner_dead(uint64_t owner);

/* Acquires `l` by the absolute `deadline`. Returns 0, CONC__MPQ_RECOVERED
 * (acquired from a dead owner), or CONC_ETIMEDOUT. */
int conc__mpq_lock_acquire(conc__mpq_lock *l, int64_t deadline);

/* Releases `l`, waking one sleeping waiter if any. */
void conc__mpq_lock_release(conc__mpq_lock *l);

/* Every sleep is cut into slices, after which the sleeper looks again: a
 * process killed between publishing a change and waking the sleepers, or
 * holding a lock, cannot keep anyone asleep longer than a slice. Slices
 * start at 1 ms and double up to 64 ms within one wait. */
#define CONC__MPQ_SLICE_MIN 1000000LL  /* 1 ms */
#define CONC__MPQ_SLICE_MAX 64000000LL /* 64 ms */

/* The next sleep slice's deadline: `slice` from now, but not past
 * `deadline`. */
int64_t conc__mpq_slice_end(int64_t slice, int64_t deadline);

/* Sleeps on `word` while it holds `seq`, for one slice (*slice, then
 * doubled) at most and not past `deadline`. Returns what conc__futex_wait
 * returns. */
int conc__mpq_sleep(_Atomic uint32_t *word, uint32_t seq, int64_t *slice,
                    int64_t deadline);

/* ---- The shared part of a queue (in the arena) --------------------------
 * Positions are 64-bit words that pack two counters so that one store
 * commits both: the low half is a byte position in the ring (modulo 2^32;
 * the capacity is a power of two of at most 2^30, so differences are
 * exact), the high half a message count (modulo 2^32). `tail` packs the
 * bytes and messages put, `head` those taken. */
#define CONC__MPQ_MAGIC    0x6d70717565756521ull /* "mpqueue!" */
#define CONC__MPQ_JOINABLE 1u

struct conc__mpq_shared {
    /* Set at creation, read-only afterwards. */
    uint64_t magic;
    uint32_t cap; /* ring bytes, a power of two */
    uint32_t flags;
    uint64_t maxsize; /* messages; 0 unbounded */
    char pad0[CONC__MPQ_LINE - 24];

    /* Producer side: everything here is guarded by plock, except that
     * consumers read `chunk` and `chunk_owner` without it. */
    conc__mpq_lock plock;
    uint64_t head_seen;     /* a recent value of `head`, never ahead of it */
    uint64_t chunk_gen;     /* the last generation given to a chunked message */
    _Atomic uint64_t chunk; /* generation << 1 | 1 while a message in
                               pieces is being put, generation << 1
                               once it is over */
    _Atomic uint64_t chunk_owner; /* plock's word while it is put */
    char pad1[CONC__MPQ_LINE - 40];

    /* Written under plock, read by everyone. `fill` and `fill_owner`
     * describe a large frame being streamed (ring.c). */
    _Atomic uint64_t tail;
    _Atomic uint64_t fill;
    _Atomic uint64_t fill_owner;
    _Atomic uint64_t fill_pos;
    char pad2[CONC__MPQ_LINE - 32];

    /* Consumer side, guarded by clock. */
    conc__mpq_lock clock;
    uint64_t tail_seen; /* a recent value of `tail`, never ahead of it */
    char pad3[CONC__MPQ_LINE - 16];

    /* Written under clock, read by everyone. */
    _Atomic uint64_t head;
    char pad4[CONC__MPQ_LINE - 8];

    /* Sleeping: rarely written, so that reading it costs the busy sides
     * no cache-line transfer. A `*_waiting` flag is set only by the holder
     * of the side lock that sleeps on it (only that holder waits), and
     * the other side bumps the matching sequence word and calls futex
     * wake only when it is set. */
    _Atomic uint32_t data_waiting; /* a consumer sleeps on data_seq */
    _Atomic uint32_t data_seq;
    _Atomic uint32_t room_waiting; /* a producer sleeps on room_seq */
    _Atomic uint32_t room_seq;
    _Atomic uint32_t shut;   /* conc_mpqueue_shutdown was called */
    _Atomic uint32_t broken; /* bytes found corrupt: every call fails */
    char pad5[CONC__MPQ_LINE - 24];

    /* JoinableQueue: task_done calls, and joiners. */
    _Atomic uint64_t done;
    _Atomic uint32_t join_waiters;
    _Atomic uint32_t join_seq;
    char pad6[CONC__MPQ_LINE - 16];

    unsigned char ring[]; /* cap bytes */
};

_Static_assert(sizeof(struct conc__mpq_shared) == 7 * CONC__MPQ_LINE,
               "one cache line per group of fields");

/* The per-process handle. */
struct conc_mpqueue {
    struct conc__mpq_shared *s;
    uint32_t cap; /* s->cap as created: shared bytes are checked */
    conc_arena *arena;
    pid_t creator;        /* only this process returns `s` to the arena */
    _Atomic pid_t closed; /* the process that called close, or 0 */
};

static inline uint32_t
conc__mpq_bytes(uint64_t pos)
{
    return (uint32_t)pos;
}

static inline uint32_t
conc__mpq_msgs(uint64_t pos)
{
    return (uint32_t)(pos >> 32);
}

/* ---- Ring operations (ring.c) -------------------------------------------
 * Each runs with the matching side lock held and returns 0 or a conc
 * code. */

/* Where a get puts the message: a growable buffer, or caller memory. */
struct conc__mpq_sink {
    conc_buf *buf; /* when not NULL */
    uint8_t *dst;  /* otherwise: dst holds cap bytes */
    size_t cap;
    size_t len; /* bytes received so far, or the length asked for */
};

/* Bytes another process can write are checked like input: a side that
 * finds the queue's shared part making no sense (a frame header, a
 * position, the capacity) marks the queue broken for every process, wakes
 * its sleepers and fails with CONC_EBROKEN and a message saying what it
 * found; every later call fails the same way. */

/* Marks the queue broken. Returns CONC_EBROKEN, with `what` (and the ring
 * position `pos`) as the calling thread's failure message. */
int conc__mpq_corrupt(struct conc__mpq_shared *s, const char *what,
                      uint32_t pos);

/* CONC_EBROKEN if the queue is marked broken, or if its read-only fields
 * differ from what the creator wrote (`cap`, from the handle); else 0. */
int conc__mpq_check(struct conc__mpq_shared *s, uint32_t cap);

/* Puts one message; plock held. CONC_EFULL, CONC_ECLOSED, CONC_EBROKEN. */
int conc__mpq_put_locked(struct conc__mpq_shared *s, const uint8_t *data,
                         size_t len, int64_t deadline);

/* Takes one message into `sink`; clock held. CONC_EEMPTY, CONC_ECLOSED,
 * CONC_EMSGSIZE (sink->len then holds the message's length), CONC_ENOMEM,
 * CONC_EBROKEN. */
int conc__mpq_get_locked(struct conc__mpq_shared *s,
                         struct conc__mpq_sink *sink, int64_t deadline);

/* Repairs a side taken from a dead owner; the side's lock is held. */
void conc__mpq_repair_producer(struct conc__mpq_shared *s);
void conc__mpq_repair_consumer(struct conc__mpq_shared *s);

/* Wakes every sleeper of the queue (after a shutdown). */
void conc__mpq_wake_all(struct conc__mpq_shared *s);

#endif
