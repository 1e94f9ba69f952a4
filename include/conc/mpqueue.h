/* conc/mpqueue.h: queues between processes (multiprocessing.Queue,
 * SimpleQueue and JoinableQueue).
 *
 * A process queue carries messages: byte strings of any length, 0 included,
 * that put copies in and get copies out (processes share bytes, not
 * pointers). It lives in a shared arena and is used by every process forked
 * after it was created, and by any thread of those processes, with the same
 * calls: any number of producers and consumers.
 *
 * Speed. Messages travel through a ring of bytes in shared memory. While
 * producers and consumers are busy, neither makes a system call; a side
 * that must wait spins briefly and then sleeps on a futex, and the other
 * side wakes it only when it sleeps. A consumer that waits copies a large
 * message out while the producer is still writing it in. put returns once
 * the message is in the ring: there is no feeder thread, so Python's
 * join_thread and cancel_join_thread have no equivalent and nothing is
 * lost when a process exits right after a put.
 *
 * Sizes. The ring holds `capacity` bytes (4 MiB by default); a message
 * uses its length plus an 8-byte frame header, rounded up to 8 bytes. A
 * message larger than the ring still goes through, in pieces: its put then
 * blocks until consumers have taken all but the last piece, so a process
 * that puts such a message with nobody else consuming waits for its
 * timeout. A get that has begun to receive a message still being written
 * (in pieces, or a large one streamed) finishes receiving it, even past
 * its own timeout, while the producer is alive and writing it (as Python's
 * get does once a message has begun to arrive).
 *
 * Crashes. A producer or consumer killed at any moment (SIGKILL included)
 * does not stop the others: the next process that needs the side it held
 * detects that its owner died and carries on. Guarantees:
 *   - every message whose put returned 0 is delivered exactly once, to a
 *     get that returns it, unless the consumer that took it died before
 *     its get returned;
 *   - a consumer that dies while copying a message that fits in the ring
 *     loses nothing: the message stays queued for the next get. Only a
 *     message in pieces that a consumer had begun to receive when it died
 *     is lost;
 *   - a put that did not return delivers its message whole or not at all;
 *   - nothing is delivered twice.
 * A dead owner is noticed within one sleep slice of its waiters (1 ms at
 * first, growing to 64 ms), not at once; this is also why an idle waiter
 * wakes up every 64 ms to look around. Recovery needs /proc; without it a
 * dead owner blocks its side.
 *
 * Corruption. The queue's shared memory is writable by every process that
 * inherited it, so its bytes are checked as they are read: a process that
 * writes over the ring or the queue's positions makes the next put or get
 * that meets the damage fail with CONC_EBROKEN (the failure message says
 * what was found), and from then on every put and get, in every process,
 * fails the same way. Nothing crashes or hangs because of such bytes.
 *
 * Timeouts: put returns CONC_EFULL and get CONC_EEMPTY when their timeout
 * runs out (queue.Full / queue.Empty), also for 0. */
#ifndef CONC_MPQUEUE_H
#define CONC_MPQUEUE_H

#include "arena.h"
#include "buf.h"
#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_mpqueue conc_mpqueue;

/* The ring's default capacity and its limits, in bytes. */
#define CONC_MPQUEUE_CAPACITY     ((size_t)4 << 20)
#define CONC_MPQUEUE_MIN_CAPACITY ((size_t)1 << 10)
#define CONC_MPQUEUE_MAX_CAPACITY ((size_t)1 << 30)

/* Bytes a message of `len` bytes uses in the ring when it fits whole: the
 * frame header plus the payload rounded up to 8 bytes. The largest message
 * that travels whole (not in pieces) is capacity - 8 bytes. */
#define CONC_MPQUEUE_FRAME_SIZE(len) (8 + (((size_t)(len) + 7) & ~(size_t)7))

typedef struct conc_mpqueue_opts {
    size_t maxsize;    /* most messages queued at once; 0: no limit
                          (Python's default). Memory stays bounded by the
                          ring's capacity either way. */
    size_t capacity;   /* ring bytes; 0: CONC_MPQUEUE_CAPACITY. Rounded up
                          to a power of two, at least 1 KiB, at most 1 GiB */
    conc_arena *arena; /* NULL: conc_arena_default() */
} conc_mpqueue_opts;

/* Creates a queue (multiprocessing.Queue(maxsize)) in *out. `opts` may be
 * NULL. Create it before forking the processes that use it. The process
 * that created it frees it with conc_mpqueue_free once the others are done
 * with it. Returns 0, CONC_ENOMEM (no memory for the handle, or the arena
 * has no free block for the ring), or CONC_EINVAL (capacity over 1 GiB).
 * Any thread. */
CONC_EXTERN int conc_mpqueue_new(const conc_mpqueue_opts *opts,
                                 conc_mpqueue **out);

/* Creates a SimpleQueue: a queue without a maxsize. Use it with the
 * conc_mpqueue_* calls. Errors as conc_mpqueue_new, and CONC_EINVAL when
 * opts->maxsize is not 0.
 * Any thread.
 * The queue in *out is new, freed with conc_mpqueue_free. */
CONC_EXTERN int conc_mpsimplequeue_new(const conc_mpqueue_opts *opts,
                                       conc_mpqueue **out);

/* Creates a JoinableQueue: a queue that also counts unfinished tasks, for
 * conc_joinable_task_done and conc_joinable_join. Use it with the
 * conc_mpqueue_* calls. Errors as conc_mpqueue_new.
 * Any thread.
 * The queue in *out is new, freed with conc_mpqueue_free. */
CONC_EXTERN int conc_joinable_new(const conc_mpqueue_opts *opts,
                                  conc_mpqueue **out);

/* Frees this process's handle. In the process that created the queue it
 * also returns the queue's shared memory to the arena: no other process
 * may use the queue afterwards (join them first). Messages still queued
 * are discarded. No thread of this process may be using the queue. NULL
 * does nothing. */
CONC_EXTERN void conc_mpqueue_free(conc_mpqueue *q);

/* Copies `len` bytes from `data` (NULL allowed when len is 0) into the
 * queue as one message, waiting up to `timeout` for room (free bytes in
 * the ring, and a free slot when the queue has a maxsize). Returns 0 once
 * the message is queued; CONC_EFULL when there was no room in time (the
 * message is then not queued, not even in part); CONC_ECLOSED after
 * conc_mpqueue_close in this process or conc_mpqueue_shutdown in any (a
 * put waiting for room at the shutdown fails too); CONC_EBROKEN when the
 * queue's shared memory was found corrupt; CONC_EINVAL for a NULL queue,
 * NULL data with len > 0, or a NaN timeout. Borrows `data`. Any
 * thread of any process that inherited the queue. */
CONC_EXTERN int conc_mpqueue_put(conc_mpqueue *q, const void *data, size_t len,
                                 double timeout);

/* conc_mpqueue_put with a timeout of 0 (put_nowait). Any thread.
 * Errors as conc_mpqueue_put. */
CONC_EXTERN int conc_mpqueue_put_nowait(conc_mpqueue *q, const void *data,
                                        size_t len);

/* Takes the oldest message, waiting up to `timeout` for one, and stores it
 * in *out, replacing the buffer's content (its memory is reused and grown
 * as needed; the caller frees it with conc_buf_free). Returns 0; CONC_EEMPTY
 * when no message came in time; CONC_ECLOSED after conc_mpqueue_close in
 * this process, or once the queue is shut down and empty; CONC_ENOMEM
 * (the message stays queued); CONC_EBROKEN (corrupt shared memory, see
 * above); CONC_EINVAL for a NULL argument or a NaN timeout. On failure
 * `out` is unchanged. Any thread of any
 * process. */
CONC_EXTERN int conc_mpqueue_get(conc_mpqueue *q, double timeout,
                                 conc_buf *out);

/* conc_mpqueue_get with a timeout of 0 (get_nowait). Any thread.
 * Errors as conc_mpqueue_get. */
CONC_EXTERN int conc_mpqueue_get_nowait(conc_mpqueue *q, conc_buf *out);

/* Takes the oldest message into `buf`, which holds `cap` bytes, and stores
 * its length in *len (recv_bytes_into). Returns 0, or CONC_EMSGSIZE when
 * the message is longer than `cap`: it then stays queued, *len receives
 * its length and `buf` is untouched. Other errors as conc_mpqueue_get
 * (CONC_EINVAL also for a NULL buf with cap > 0, or a NULL len).
 * Any thread. */
CONC_EXTERN int conc_mpqueue_get_into(conc_mpqueue *q, void *buf, size_t cap,
                                      double timeout, size_t *len);

/* The number of messages queued (a snapshot, as Python's qsize), whether
 * the queue is empty, and whether it is full: at its maxsize, or without
 * room in the ring for even an empty message. A message still being put in
 * pieces counts only once its last piece is in. Any thread.
 * For a NULL queue: 0, and CONC_EINVAL from empty and full. */
CONC_EXTERN size_t conc_mpqueue_qsize(conc_mpqueue *q);
CONC_EXTERN int conc_mpqueue_empty(conc_mpqueue *q);
CONC_EXTERN int conc_mpqueue_full(conc_mpqueue *q);

/* The ring's capacity in bytes, after rounding. Any thread. */
CONC_EXTERN size_t conc_mpqueue_capacity(const conc_mpqueue *q);

/* Python's close(): this process will use the queue no more. Later puts
 * and gets in this process return CONC_ECLOSED; other processes are not
 * affected, and a put or get already under way here completes. Returns 0,
 * also when called again.
 * Any thread. */
CONC_EXTERN int conc_mpqueue_close(conc_mpqueue *q);

/* Shuts the queue down for every process (Python 3.13's Queue.shutdown):
 * from now on put returns CONC_ECLOSED everywhere, and get returns the
 * messages still queued, then CONC_ECLOSED instead of waiting. Every
 * blocked put and get wakes. Returns 0, also when called again.
 * Any thread. */
CONC_EXTERN int conc_mpqueue_shutdown(conc_mpqueue *q);

/* ---- Handing a queue to a process ---------------------------------------
 * A forked child may use the parent's handle as it is. A process started
 * by the fork server has no such handle: give it a conc_mpqueue_ref (bytes,
 * for the argument of conc_process_new or a pool's initializer) and let it
 * open its own handle with conc_mpqueue_open. Opening works after a fork
 * too, so one child function serves both start methods. */
typedef struct conc_mpqueue_ref {
    conc_arena_ref arena;
    uint64_t offset; /* of the queue's shared part in the arena */
    uint32_t capacity;
    uint32_t flags;
} conc_mpqueue_ref;

/* Fills *ref with the bytes that name `q`. Returns 0; CONC_EINVAL for a
 * NULL argument; errors of conc_arena_share. Borrows `q`. Any thread of any
 * process that has the queue. */
CONC_EXTERN int conc_mpqueue_share(const conc_mpqueue *q,
                                   conc_mpqueue_ref *ref);

/* Opens the queue that `ref` names (opening its arena with
 * conc_arena_open) and returns a new handle in *out for this process,
 * freed with conc_mpqueue_free, which then frees only the handle: the
 * queue itself belongs to its creator. Returns 0; CONC_EINVAL for a NULL
 * argument or bytes that name no queue; CONC_ENOMEM; errors of
 * conc_arena_open. Any thread. */
CONC_EXTERN int conc_mpqueue_open(const conc_mpqueue_ref *ref,
                                  conc_mpqueue **out);

/* ---- JoinableQueue -------------------------------------------------------
 * Each message put counts as an unfinished task until some process calls
 * task_done for it. A consumer that dies before calling task_done leaves
 * its task unfinished, as in Python: join then waits for its timeout. */

/* Marks one task (a message taken with get) as done. Returns 0;
 * CONC_EVALUE when called more times than messages were put (Python's
 * ValueError); CONC_EINVAL on a queue not made by conc_joinable_new. Any
 * thread of any process. */
CONC_EXTERN int conc_joinable_task_done(conc_mpqueue *q);

/* Waits until every message put has been marked done, in any process.
 * Returns 0, CONC_ETIMEDOUT, or CONC_EINVAL (a NaN timeout, or a queue not
 * made by conc_joinable_new).
 * Any thread. */
CONC_EXTERN int conc_joinable_join(conc_mpqueue *q, double timeout);

CONC_END_DECLS

#endif
