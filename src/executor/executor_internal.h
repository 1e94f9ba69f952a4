/* Executors from the inside: the common front and its two engines.
 *
 * Lock order, for the whole module: a Pool's callback lock, then an
 * engine's lock (the process engine's `lock`, the thread engine's `lock`
 * or its poppers' `qlock`, never both), then a future's lock (future.h's
 * internals), then a watcher's lock. The job pool's lock is a leaf. A
 * callback (the Pool's, a future's) runs with no engine or future lock
 * held, so it may submit. */
#ifndef CONC_EXECUTOR_INTERNAL_H
#define CONC_EXECUTOR_INTERNAL_H

#include "conc/arena.h"
#include "conc/executor.h"
#include "conc/thread.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "executor/job.h"
#include "executor/pool_engine.h"
#include "future/future_internal.h"

struct conc_executor;

/* What an engine provides. */
struct conc__engine_ops {
    /* Queues `f` (which holds a reference for the engine), honouring the
     * bounded-submission options. Returns 0, or an error after which the
     * caller still owns that reference. */
    int (*submit)(struct conc_executor *ex, conc_future *f, int64_t deadline);
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

/* A broken executor's message is kept up to this size: an initializer's
 * failure and its message, cut if longer. */
#define CONC__BROKEN_MSG_MAX 256

struct conc_executor {
    const struct conc__engine_ops *ops;
    conc_executor_opts opts; /* initarg copied; prefix copied */
    uint8_t *initarg;
    char *prefix;
    size_t workers;             /* the maximum number of workers */
    int is_process;             /* 1: process engine */
    conc__job_done_fn on_done;  /* a Pool's per-job hook, or NULL */
    struct conc__jobpool *jobs; /* where its jobs' blocks come from */
    const struct conc__future_ops *future_ops; /* its futures' hooks */
    /* Written under the engine's lock: */
    _Atomic int stopping;                  /* shut down: no more submits */
    _Atomic int broken;                    /* an initializer failed */
    char broken_msg[CONC__BROKEN_MSG_MAX]; /* why; written before broken */
    /* Bounded submission: bumped when room may have appeared; a futex. */
    _Atomic uint32_t room, room_sleepers;
};

/* Fills the common part of `ex` from `opts` (NULL: defaults). Returns 0,
 * CONC_EINVAL, CONC_ENOMEM. */
int conc__executor_init(struct conc_executor *ex, const conc_executor_opts *o,
                        int is_process);
void conc__executor_fini(struct conc_executor *ex);

/* Why a submit is refused now (the engine's lock held): CONC_EBROKEN or
 * CONC_ECLOSED with the failure message set, or 0. */
int conc__executor_refuse_locked(struct conc_executor *ex);

/* A submit deadline that means "never wait: CONC_EFULL at once", the
 * executor's CONC_SUBMIT_FAIL. */
#define CONC__SUBMIT_FAIL_FULL INT64_MIN

/* The bounded-submission deadline of a submit starting now, as the
 * executor's submit_mode and submit_timeout say (CONC__SUBMIT_FAIL_FULL
 * for CONC_SUBMIT_FAIL). */
int64_t conc__executor_submit_deadline(const struct conc_executor *ex);

/* Waits while `*count` is at max_pending, until `deadline` (a submit
 * deadline, above), with `lock` held on entry and exit and released while
 * asleep. Whoever lowers the count calls conc__executor_signal_room after.
 * Returns 0, CONC_EFULL, CONC_ETIMEDOUT or the refusal of a shut-down or
 * broken engine. */
int conc__executor_wait_room_locked(struct conc_executor *ex,
                                    conc__lockword *lock,
                                    const _Atomic size_t *count,
                                    int64_t deadline);

/* Wakes the submitters waiting for room: when a pending job leaves, or
 * (`all`) when the engine stops. */
void conc__executor_signal_room(struct conc_executor *ex, int all);

/* Marks the calling thread as running ex's tasks or hooks (NULL: none),
 * for conc__executor_in_task. */
void conc__executor_set_current(const conc_executor *ex);

/* The hooks of a thread engine's futures (the default of an executor). */
extern const struct conc__future_ops conc__job_future_ops;

/* Runs a job's task in the calling thread and completes its future, in
 * the thread engine (with the cancel token and descriptor in place). */
void conc__run_job(conc_future *f);

/* The task context of the calling thread (task.c), set by the engines
 * around a task so that conc_task_cancelled and conc_task_fd can answer. */
struct conc__task_ctx {
    _Atomic uint32_t *cancel; /* the future's token, or NULL */
    int fd;
};
void conc__task_enter(struct conc__task_ctx *ctx);
void conc__task_leave(void);

/* ---- Chunks (chunk.c): several items as one task ------------------------ */

/* A chunk's argument: the task to run per item, then the items, each as a
 * 64-bit length and its bytes padded to 8. Its result: per item, a 32-bit
 * code, a 32-bit message length, a 64-bit result length, then the message
 * and the result, padded to 8. */
int conc__chunk_task(const void *arg, size_t len, conc_buf *result);

/* A chunk's log: the outcomes of the items it finished, as in its result,
 * in a process pool's shared memory, where the parent reads them if the
 * chunk's worker dies. The worker writes the bytes, then `used`, then
 * `done`; the parent checks them before use. */
#define CONC__CHUNK_LOG_BYTES ((size_t)16 << 10)
struct conc__chunk_log {
    _Atomic uint64_t done; /* outcomes in the log */
    _Atomic uint64_t used; /* their bytes */
    uint8_t bytes[CONC__CHUNK_LOG_BYTES];
};

/* conc__chunk_task with a log: its argument holds, after the task, the
 * log's address (valid in the worker). It may end after fewer items than
 * it holds, when the log is full: the result then has fewer outcomes, and
 * the caller runs the rest. */
int conc__chunk_task_logged(const void *arg, size_t len, conc_buf *result);

/* Appends a failed item's outcome to a chunk result. */
int conc__chunk_put_failure(conc_buf *res, int code, const char *msg);

/* Appends one item to a chunk argument being built. */
int conc__chunk_add(conc_buf *chunk, const void *item, size_t len);

/* Starts a chunk argument for `fn`. */
int conc__chunk_begin(conc_buf *chunk, conc_task_fn fn);

/* Reads the next item result of a chunk result at *pos: returns 1 with
 * code, message and data set, 0 at the end, CONC_EPROTO if malformed. */
int conc__chunk_next(const conc_buf *res, size_t *pos, int *code,
                     const char **msg, size_t *msglen, const void **data,
                     size_t *len);

#endif
