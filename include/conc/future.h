/* conc/future.h: futures, wait and as_completed (concurrent.futures).
 *
 * A conc_future is the eventual outcome of a task: PENDING until a worker
 * picks it up, RUNNING, then either FINISHED (with result bytes, or with a
 * failure: the task's negative code and message) or CANCELLED. Every call
 * here is thread-safe. Futures are reference counted: each handle a
 * function returns is a new reference, released with conc_future_free; the
 * executor keeps its own reference until the future is done, so a caller
 * may drop a future it no longer cares about at any time.
 *
 * Failures in C: where Python raises the task's exception, conc returns the
 * task's code and records its message as the calling thread's failure
 * message (conc_failure_message), so one line reports it:
 *     int r = conc_future_result(f, CONC_FOREVER, &data, &len);
 *     if (r < 0) printf("%s: %s\n", conc_err_name(r), conc_failure_message());
 */
#ifndef CONC_FUTURE_H
#define CONC_FUTURE_H

#include "common.h"
#include "error.h"
#include "task.h"

CONC_BEGIN_DECLS

typedef struct conc_future conc_future;

typedef enum conc_future_state {
    CONC_FUTURE_PENDING = 0,
    CONC_FUTURE_RUNNING,
    CONC_FUTURE_CANCELLED,
    CONC_FUTURE_FINISHED,
} conc_future_state;

/* A done callback. It runs in the thread that completes the future (a
 * worker, a pool's result thread, or a thread calling cancel), or at once
 * in the thread adding it if the future is already done. A negative return
 * is reported, not lost: "exception calling callback for future: CONC_EXXX:
 * message" goes to stderr, as Python logs it. */
typedef int (*conc_future_cb)(void *arg, conc_future *f);

/* ---- Consumers ---------------------------------------------------------- */

/* Waits up to `timeout` seconds for the future, then hands out its result:
 * `*data` and `*len` (either may be NULL) describe the result bytes,
 * borrowed from the future and valid while the caller holds its reference
 * (`*data` is NULL for an empty result). Returns 0, the task's negative
 * code (its message becomes the calling thread's failure message),
 * CONC_ECANCELED (cancelled), CONC_ETIMEDOUT (not done in time),
 * CONC_EINVAL (NULL future, NaN timeout). */
CONC_EXTERN int conc_future_result(conc_future *f, double timeout,
                                   const void **data, size_t *len);

/* Python's exception(timeout): waits like conc_future_result, then stores
 * in *code the task's negative code, or 0 if it succeeded, and returns 0.
 * Returns CONC_ECANCELED, CONC_ETIMEDOUT, CONC_EINVAL (NULL pointer, NaN
 * timeout) without touching *code.
 * Any thread. */
CONC_EXTERN int conc_future_exception(conc_future *f, double timeout,
                                      int *code);

/* The task's failure message ("" if none, or before it is done), valid
 * while the caller holds its reference.
 * Any thread. */
CONC_EXTERN const char *conc_future_message(conc_future *f);

/* Cancels the future if it is still pending: returns 1 (it is now
 * cancelled, its callbacks have run and it will never run) or 1 again if it
 * was already cancelled; returns 0 if it is running or finished, as Python
 * does. For a task running in a thread executor or ThreadPool, cancel also
 * raises the task's token (conc_task_cancelled) and still returns 0. For
 * a task running in a process executor or Pool made with cancel_kills,
 * cancel kills its worker and returns 1 (executor.h), or 0 if the task
 * had already finished.
 * CONC_EINVAL for a NULL future. */
CONC_EXTERN int conc_future_cancel(conc_future *f);

/* The state, and Python's predicates over it (1 or 0). done is true once
 * the future is finished or cancelled.
 * Any thread.
 * conc_future_state_of gives CONC_FUTURE_PENDING (0) for a NULL future; the
 * predicates return CONC_EINVAL. */
CONC_EXTERN conc_future_state conc_future_state_of(conc_future *f);
CONC_EXTERN int conc_future_done(conc_future *f);
CONC_EXTERN int conc_future_running(conc_future *f);
CONC_EXTERN int conc_future_cancelled(conc_future *f);

/* Adds a done callback (see conc_future_cb). Callbacks run in the order
 * they were added. Returns 0, CONC_EINVAL (NULL f or fn), CONC_ENOMEM.
 * Any thread. */
CONC_EXTERN int conc_future_add_done_callback(conc_future *f, conc_future_cb fn,
                                              void *arg);

/* A new reference to `f` (returned). Any thread. */
CONC_EXTERN conc_future *conc_future_ref(conc_future *f);

/* Releases a reference; the last one frees the future. NULL does nothing.
 * A future still held by an executor lives on until it is done.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_future_free(conc_future *f);

/* ---- Producers (for those who write their own executor) ----------------- */

/* A new pending future, to complete with the calls below. Returns 0 and the
 * future in *out, CONC_ENOMEM, CONC_EINVAL.
 * Any thread. */
CONC_EXTERN int conc_future_new(conc_future **out);

/* Python's set_running_or_notify_cancel: returns 1 and marks the future
 * running if it was pending, 0 if it was cancelled (the caller must then
 * not run the task), CONC_ESTATE if it is running or done.
 * Any thread. */
CONC_EXTERN int conc_future_set_running(conc_future *f);

/* Completes the future with a copy of `len` bytes at `data`, or with the
 * failure `code` (negative) and message `msg` (copied; NULL for none), then
 * wakes its waiters and runs its callbacks in the calling thread. Returns
 * 0, CONC_ESTATE if the future is already done (InvalidStateError),
 * CONC_EINVAL (code >= 0), CONC_ENOMEM (the future is left untouched). */
CONC_EXTERN int conc_future_set_result(conc_future *f, const void *data,
                                       size_t len);
CONC_EXTERN int conc_future_set_exception(conc_future *f, int code,
                                          const char *msg);

/* ---- Waiting on many (concurrent.futures.wait, as_completed) ------------ */

typedef enum conc_return_when {
    CONC_ALL_COMPLETED = 0,
    CONC_FIRST_COMPLETED,
    CONC_FIRST_EXCEPTION, /* a failed task; otherwise all completed */
} conc_return_when;

/* Waits up to `timeout` seconds until `when` holds over the `n` futures
 * (any mix of executors; duplicates allowed). If `done` is not NULL it
 * receives n flags: done[i] is 1 if fs[i] is done on return (Python's
 * done set; the others are not_done). Returns 0 when the condition holds,
 * CONC_ETIMEDOUT when time ran out first (the flags are still filled),
 * CONC_EINVAL (NULL fs with n > 0, a NULL future, a bad `when`, NaN
 * timeout), CONC_ENOMEM.
 * Any thread. */
CONC_EXTERN int conc_wait(conc_future *const *fs, size_t n,
                          conc_return_when when, double timeout,
                          unsigned char *done);

typedef struct conc_as_completed_iter conc_as_completed_iter;

/* Python's as_completed(fs, timeout): an iterator yielding each of the n
 * futures once, as it completes (those already done first). The timeout
 * counts from this call, as in Python. Returns 0 and a new iterator in *out
 * (freed with conc_as_completed_free), CONC_EINVAL, CONC_ENOMEM. The
 * iterator takes its own references; duplicates are yielded once.
 * Any thread. */
CONC_EXTERN int conc_as_completed(conc_future *const *fs, size_t n,
                                  double timeout, conc_as_completed_iter **out);

/* The next completed future in *f (borrowed from the iterator: valid until
 * it is freed). Returns 0, CONC_ECLOSED when every future was yielded
 * (StopIteration), CONC_ETIMEDOUT ("N (of M) futures unfinished"; a later
 * call times out again). One thread at a time per iterator. */
CONC_EXTERN int conc_as_completed_next(conc_as_completed_iter *it,
                                       conc_future **f);

/* Frees the iterator; NULL does nothing. Any thread, once no other thread uses
 * the object. */
CONC_EXTERN void conc_as_completed_free(conc_as_completed_iter *it);

CONC_END_DECLS

#endif
