/* Executors from the inside: the common front and its two engines. */
#ifndef CONC_EXECUTOR_INTERNAL_H
#define CONC_EXECUTOR_INTERNAL_H

#include "conc/arena.h"
#include "conc/executor.h"
#include "conc/thread.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "future/future_internal.h"

struct conc_executor;

/* What an engine provides. */
struct conc__engine_ops {
    /* Queues `f` (which holds a reference for the engine), honouring the
     * bounded-submission options. Returns 0, or an error after which the
     * caller still owns that reference. */
    int (*submit)(struct conc_executor *ex, conc_future *f);
    /* Stops accepting work; cancels pending work if asked; with wait,
     * returns once every worker has ended. */
    int (*shutdown)(struct conc_executor *ex, int wait, int cancel);
    /* Stops at once: pending work fails with CONC_ECLOSED; process workers
     * are killed. Does not wait. */
    int (*terminate)(struct conc_executor *ex);
    /* Waits until every worker has ended after a shutdown or terminate.
     * Returns 0 or CONC_ETIMEDOUT. */
    int (*join)(struct conc_executor *ex, double timeout);
    /* Releases the engine after a waited shutdown. */
    void (*destroy)(struct conc_executor *ex);
};

/* A Pool's hook, run once per job just before its future completes with
 * `code` (its result in f->result) and `msg` (see pool.h for where). */
typedef void (*conc__job_done_fn)(conc_future *f, int code, const char *msg);

struct conc_executor {
    const struct conc__engine_ops *ops;
    conc_executor_opts opts; /* initarg copied; prefix copied */
    uint8_t *initarg;
    char *prefix;
    size_t workers;              /* the maximum number of workers */
    int is_process;              /* 1: process engine */
    _Atomic int closed;          /* no more submits */
    conc__job_done_fn on_done;   /* a Pool's per-job hook, or NULL */
    struct conc__fpool *futures; /* where its futures' blocks come from */
    /* Written under the engine's lock: */
    _Atomic int stopping; /* shut down: no more submits */
    _Atomic int broken;   /* an initializer failed */
    char broken_msg[256]; /* why; written before broken */
    /* Bounded submission: bumped when room may have appeared; a futex. */
    _Atomic uint32_t room, room_sleepers;
};

/* The shared arena a process engine's workers see, or NULL. */
conc_arena *conc__executor_arena(conc_executor *ex);

/* The default number of workers: CPUs, or min(32, CPUs + 4) for threads. */
size_t conc__cpu_count(void);

/* Fills the common part of `ex` from `opts` (NULL: defaults). Returns 0,
 * CONC_EINVAL, CONC_ENOMEM. */
int conc__executor_init(struct conc_executor *ex, const conc_executor_opts *o,
                        int is_process);
void conc__executor_fini(struct conc_executor *ex);

/* Why a submit is refused now (the engine's lock held): CONC_EBROKEN or
 * CONC_ECLOSED with the failure message set, or 0. */
int conc__executor_refuse_locked(struct conc_executor *ex);

/* The bounded-submission deadline of a submit starting now. */
int64_t conc__executor_submit_deadline(const struct conc_executor *ex);

/* Waits while `*count` is at max_pending, as submit_mode says, with
 * `lock` held on entry and exit and released while asleep. Whoever lowers
 * the count calls conc__executor_signal_room after. Returns 0, CONC_EFULL,
 * CONC_ETIMEDOUT or the refusal of a shut-down or broken engine. */
int conc__executor_wait_room_locked(struct conc_executor *ex,
                                    conc__lockword *lock,
                                    const _Atomic size_t *count,
                                    int64_t deadline);

/* Wakes the submitters waiting for room: when a pending job leaves, or
 * (`all`) when the engine stops. */
void conc__executor_signal_room(struct conc_executor *ex, int all);

/* The engines' constructors. */
int conc__thread_engine_new(const conc_executor_opts *opts,
                            conc__job_done_fn on_done, conc_executor **out);
int conc__process_engine_new(const conc_executor_opts *opts,
                             conc__job_done_fn on_done, conc_executor **out);

/* Submits a new job and returns its future (a new reference in *out, or
 * none if out is NULL). The job's owner is `owner`, or, with `rec_len`
 * non-zero, a copy of the `rec_len` bytes at `owner` kept in the future's
 * block (conc__future_extra: no allocation of its own, and gone with the
 * future). */
int conc__executor_submit(conc_executor *ex, conc_task_fn fn, const void *arg,
                          size_t len, int fd, uint32_t kind, void *owner,
                          size_t rec_len, conc_future **out);

/* Whether the calling thread is running one of ex's tasks. */
int conc__executor_in_task(const conc_executor *ex);
void conc__executor_set_current(const conc_executor *ex);

/* Runs a job's task in the calling thread and completes its future, in
 * the thread engine (with the cancel token and descriptor in place). */
void conc__run_job(conc_future *f);

/* A lazy map iterator over ex (map.c): in input order or not; `timeout`
 * > 0 bounds the whole map. */
int conc__map_new(conc_executor *ex, conc_task_fn fn, const conc_items *items,
                  const conc_map_opts *opts, int ordered, double timeout,
                  conc_map_iter **out);

/* ---- Chunks (chunk.c): several items as one task ------------------------ */

/* A chunk's argument: the task to run per item, then the items, each as a
 * 64-bit length and its bytes padded to 8. Its result: per item, a 32-bit
 * code, a 32-bit message length, a 64-bit result length, then the message
 * and the result, padded to 8. */
int conc__chunk_task(const void *arg, size_t len, conc_buf *result);

/* Appends one item to a chunk argument being built. */
int conc__chunk_add(conc_buf *chunk, const void *item, size_t len);

/* Starts a chunk argument for `fn`. */
int conc__chunk_begin(conc_buf *chunk, conc_task_fn fn);

/* Reads the next item result of a chunk result at *pos: returns 1 with
 * code, message and data set, 0 at the end, CONC_EPROTO if malformed. */
int conc__chunk_next(const conc_buf *res, size_t *pos, int *code,
                     const char **msg, size_t *msglen, const void **data,
                     size_t *len);

/* An array chunk: fn over `count` elements of in_size bytes at `in`, the
 * results (exactly out_size bytes each, or dropped when out_size is 0)
 * stored at `out`. Both pointers are valid in the worker: the caller's
 * memory in a thread pool, shared memory in a process pool. */
struct conc__array_chunk {
    conc_task_fn fn;
    const uint8_t *in;
    uint8_t *out;
    size_t count, in_size, out_size;
    size_t first; /* index of the first element, for messages */
};

/* Runs an array chunk. Succeeds with an empty result, or fails with the
 * first failing element's code and message (the others still run); the
 * failing index is in the message's first 8 bytes of the result. */
int conc__array_chunk_task(const void *arg, size_t len, conc_buf *result);

#endif
