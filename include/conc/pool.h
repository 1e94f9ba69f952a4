/* conc/pool.h: Pool and ThreadPool (multiprocessing.pool).
 *
 * conc_pool_new starts worker processes (multiprocessing.Pool);
 * conc_threadpool_new the same API over threads
 * (multiprocessing.pool.ThreadPool). Tasks are conc_task_fn (task.h).
 *
 * Python's lifecycle: a pool serves until conc_pool_close (no more work;
 * queued work still runs) or conc_pool_terminate (stop now: queued work
 * fails with CONC_ECLOSED, running process workers are killed); then
 * conc_pool_join waits for the workers. Join before close or terminate is
 * an error (CONC_ESTATE), as in Python.
 *
 * Callbacks (apply_async, map_async) run in the parent, one at a time, in
 * completion order: in the pool's result thread for a process Pool, in the
 * worker that finished the task (under the pool's callback lock) for a
 * ThreadPool. A callback must not wait on its own pool's results.
 *
 * A process worker that dies fails only the task it was running with
 * CONC_EBROKEN ("worker pid N died: signal 9 (Killed)") and is replaced;
 * with task_timeout, a task running too long is killed with its worker and
 * fails with CONC_ETIMEDOUT (CPython's Pool would hang in both cases).
 *
 * All calls are thread-safe unless noted. */
#ifndef CONC_POOL_H
#define CONC_POOL_H

#include "common.h"
#include "error.h"
#include "executor.h"
#include "future.h"
#include "task.h"

CONC_BEGIN_DECLS

typedef struct conc_pool conc_pool;

typedef struct conc_pool_opts {
    size_t processes;         /* workers; 0: the CPU count, as in Python */
    conc_task_fn initializer; /* runs once in each worker with initarg */
    const void *initarg;
    size_t initarg_len;
    size_t maxtasksperchild; /* processes: replace a worker after N tasks */
    double task_timeout;     /* processes: per-task time limit, 0 for none */
    /* Processes: conc_future_cancel on a running AsyncResult kills its
     * worker (conc_executor_opts.cancel_kills says how); 0, the default,
     * leaves it running. */
    int cancel_kills;
} conc_pool_opts;

/* Starts a pool; `opts` may be NULL. Returns 0 and a new pool in *out
 * (freed with conc_pool_free), CONC_EINVAL, CONC_ENOMEM, CONC_EAGAIN, or
 * the error that stopped a worker from starting.
 * Any thread. */
CONC_EXTERN int conc_pool_new(const conc_pool_opts *opts, conc_pool **out);
CONC_EXTERN int conc_threadpool_new(const conc_pool_opts *opts,
                                    conc_pool **out);

/* ---- AsyncResult -------------------------------------------------------- */

/* An AsyncResult is a future (future.h): these are Python's names for it. */
typedef conc_future conc_async_result;

/* get(timeout): 0 with the result bytes (borrowed, as conc_future_result,
 * which gives the same answer), the task's code (its message as the
 * caller's failure message), CONC_ETIMEDOUT. For map_async and
 * starmap_async the data is the output array itself (the `out` pointer
 * passed to them, filled in place, not a copy) and the length is count *
 * out_size (NULL and 0 when that is 0). Any thread. */
CONC_EXTERN int conc_async_result_get(conc_async_result *r, double timeout,
                                      const void **data, size_t *len);
/* wait(timeout): 0 once ready, CONC_ETIMEDOUT otherwise. Any thread. */
CONC_EXTERN int conc_async_result_wait(conc_async_result *r, double timeout);
/* ready(): 1 or 0. Any thread.
 * CONC_EINVAL for a NULL result. */
CONC_EXTERN int conc_async_result_ready(conc_async_result *r);
/* successful(): 1 or 0 once ready; CONC_ESTATE before (Python's
 * ValueError "not ready").
 * Any thread. */
CONC_EXTERN int conc_async_result_successful(conc_async_result *r);
/* Drops the caller's reference (the pool keeps its own until done). Any thread,
 * once no other thread uses the object. */
CONC_EXTERN void conc_async_result_free(conc_async_result *r);

/* apply_async's callbacks: callback(arg, data, len) with the result bytes
 * on success, error_callback(arg, code, message) on failure. Either may be
 * NULL. */
typedef void (*conc_pool_callback)(void *arg, const void *data, size_t len);
typedef void (*conc_pool_error_callback)(void *arg, int code,
                                         const char *message);

typedef struct conc_apply_opts {
    conc_pool_callback callback;
    conc_pool_error_callback error_callback;
    void *arg;
    int has_fd; /* hand descriptor `fd` to the task (conc_task_fd) */
    int fd;
} conc_apply_opts;

/* ---- Single tasks ------------------------------------------------------- */

/* apply: runs fn on a copy of the argument in a worker and waits up to
 * `timeout` for it. On success the result bytes replace the content of
 * `result` (may be NULL); on failure `result` is unchanged. Returns 0, the
 * task's code (message as the caller's failure message), CONC_ETIMEDOUT
 * (the task goes on; its result is dropped), CONC_ECLOSED (closed: "Pool not
 * running"), CONC_EINVAL, CONC_ENOMEM.
 * Any thread. */
CONC_EXTERN int conc_pool_apply(conc_pool *p, conc_task_fn fn, const void *arg,
                                size_t len, double timeout, conc_buf *result);

/* apply_async: schedules fn and returns 0 with a new AsyncResult in *out
 * (NULL `out`: only the callbacks will see the result). Errors as
 * conc_pool_apply, plus CONC_EBADF for a bad descriptor.
 * Any thread. */
CONC_EXTERN int conc_pool_apply_async(conc_pool *p, conc_task_fn fn,
                                      const void *arg, size_t len,
                                      const conc_apply_opts *opts,
                                      conc_async_result **out);

/* ---- Maps --------------------------------------------------------------- */

/* map over a C array: runs fn on each of the in->count elements (each
 * in->size bytes) and stores each result, which must be exactly out_size
 * bytes (else the item fails with CONC_EVALUE), at out + i * out_size.
 * With out_size 0 results are dropped. Process pools move whole chunks
 * through shared memory: no per-item copy or system call. Returns 0, or
 * the code of the first failing item in input order (its message as the
 * caller's failure message; the other items still ran), CONC_ECLOSED
 * (closed), CONC_EINVAL (a generator input: use imap; NULL pointers),
 * CONC_ENOMEM. opts (may be NULL): chunksize (0: Python's default of
 * count / (4 * workers), rounded up) and progress; `timed` and the
 * options' `timeout` are ignored: `timeout` bounds the wait for the
 * results.
 * Any thread. */
CONC_EXTERN int conc_pool_map(conc_pool *p, conc_task_fn fn,
                              const conc_items *in, void *out, size_t out_size,
                              const conc_map_opts *opts, double timeout);

/* map_async: the same, returning at once with an AsyncResult in *out that
 * becomes ready when every item is done (its data is `out`, which must
 * stay valid until then). cb (may be NULL) gets the callbacks.
 * Any thread.
 * Errors as conc_pool_map. *result is a new AsyncResult, freed with
 * conc_async_result_free. */
CONC_EXTERN int conc_pool_map_async(conc_pool *p, conc_task_fn fn,
                                    const conc_items *in, void *out,
                                    size_t out_size, const conc_map_opts *opts,
                                    const conc_apply_opts *cb,
                                    conc_async_result **result);

/* starmap, starmap_async: in C a task's argument is already a struct of
 * its arguments, so these are map and map_async under Python's names.
 * Any thread.
 * Errors and ownership as conc_pool_map and conc_pool_map_async (a new
 * AsyncResult, freed with conc_async_result_free). */
CONC_EXTERN int conc_pool_starmap(conc_pool *p, conc_task_fn fn,
                                  const conc_items *in, void *out,
                                  size_t out_size, const conc_map_opts *opts,
                                  double timeout);
CONC_EXTERN int
conc_pool_starmap_async(conc_pool *p, conc_task_fn fn, const conc_items *in,
                        void *out, size_t out_size, const conc_map_opts *opts,
                        const conc_apply_opts *cb, conc_async_result **result);

/* imap and imap_unordered: lazy maps over an array or a generator, with
 * results of any size, read with conc_map_next (whose timeout is Python's
 * next(timeout)) and freed with conc_map_free. imap yields in input order,
 * imap_unordered in completion order (conc_map_index tells the input
 * index). At most opts->max_in_flight chunks are queued at a time, so
 * memory stays bounded however long the input. A process worker dying in
 * a chunk fails only the item it ran (CONC_EBROKEN); the chunk's other
 * items still come.
 * Any thread.
 * Returns 0 and a new iterator in *out, freed with conc_map_free; CONC_ECLOSED
 * (closed), CONC_EINVAL (NULL pointers, an array with NULL base and count > 0,
 * a zero element size), CONC_ENOMEM. */
CONC_EXTERN int conc_pool_imap(conc_pool *p, conc_task_fn fn,
                               const conc_items *in, const conc_map_opts *opts,
                               conc_map_iter **out);
CONC_EXTERN int conc_pool_imap_unordered(conc_pool *p, conc_task_fn fn,
                                         const conc_items *in,
                                         const conc_map_opts *opts,
                                         conc_map_iter **out);

/* ---- Lifecycle ---------------------------------------------------------- */

/* close: no more tasks; queued ones still run. Returns 0. Any thread.
 * CONC_EINVAL for a NULL pool. */
CONC_EXTERN int conc_pool_close(conc_pool *p);

/* terminate: stops at once; tasks not yet finished fail with CONC_ECLOSED,
 * process workers are killed. Returns 0.
 * Any thread. */
CONC_EXTERN int conc_pool_terminate(conc_pool *p);

/* join: waits up to `timeout` for every queued task to finish and every
 * worker to end. Returns 0, CONC_ESTATE (the pool is still running: call
 * close or terminate first), CONC_ETIMEDOUT, CONC_EDEADLK (from one of the
 * pool's own tasks or callbacks).
 * Any thread. */
CONC_EXTERN int conc_pool_join(conc_pool *p, double timeout);

/* The number of workers. Any thread. */
CONC_EXTERN size_t conc_pool_processes(const conc_pool *p);

/* Terminates the pool if it still runs (as Python's Pool.__exit__ does),
 * joins it and frees it; AsyncResults the caller holds stay valid. NULL
 * does nothing. Must be the last call on the pool.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_pool_free(conc_pool *p);

CONC_END_DECLS

#endif
