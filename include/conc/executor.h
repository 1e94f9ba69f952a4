/* conc/executor.h: thread and process executors (concurrent.futures).
 *
 * One interface over two kinds of workers: conc_thread_executor_new runs
 * tasks on threads of this process (ThreadPoolExecutor), and
 * conc_process_executor_new on worker processes (ProcessPoolExecutor).
 * Both run conc_task_fn tasks (task.h), so a program switches between them
 * by changing one line.
 *
 * Process workers are forked from the calling process when the executor is
 * created, and again to replace one that died. A worker that dies (a
 * signal, abort, exit) fails only the task it was running, with
 * CONC_EBROKEN and a message naming the pid and the signal or status; the
 * executor starts a replacement and keeps serving (Python's executor would
 * become unusable). A task over its time limit (task_timeout) is killed with
 * its worker and fails with CONC_ETIMEDOUT. A running task is cancelled
 * only by killing its worker: with the cancel_kills option, or by a
 * TaskGroup that aborts; by default, as in Python, cancel leaves it
 * running.
 *
 * Every function here may be called from any thread, except that
 * conc_executor_free must be the last call on an executor. */
#ifndef CONC_EXECUTOR_H
#define CONC_EXECUTOR_H

#include "common.h"
#include "future.h"
#include "task.h"

CONC_BEGIN_DECLS

typedef struct conc_executor conc_executor;

/* What a submit does when the bounded submission queue is full. */
typedef enum conc_submit_mode {
    CONC_SUBMIT_BLOCK = 0, /* wait for room (the default) */
    CONC_SUBMIT_TIMEOUT,   /* wait up to submit_timeout, then CONC_ETIMEDOUT */
    CONC_SUBMIT_FAIL,      /* return CONC_EFULL at once */
} conc_submit_mode;

typedef struct conc_executor_opts {
    /* 0: Python's default, min(32, CPUs + 4) threads or CPUs processes. */
    size_t max_workers;
    /* Threads: "PREFIX_N" names (default "ThreadPoolExecutor-E"). */
    const char *thread_name_prefix;
    /* Runs once in each worker before its first task, with a copy of
     * initarg. A failing initializer breaks the executor: pending and later
     * tasks fail with CONC_EBROKEN (BrokenThreadPool, BrokenProcessPool). */
    conc_task_fn initializer;
    const void *initarg;
    size_t initarg_len;
    /* Bounded submission: at most max_pending tasks submitted and not yet
     * started (0: unbounded), and what submit does when that is reached. */
    size_t max_pending;
    conc_submit_mode submit_mode;
    double submit_timeout;
    /* Processes only: a worker is replaced after this many tasks (0: never),
     * and a task running longer than task_timeout seconds (0: no limit) is
     * killed with its worker and fails with CONC_ETIMEDOUT. */
    size_t max_tasks_per_child;
    double task_timeout;
    /* Processes only: with cancel_kills set, conc_future_cancel on a
     * running task kills the worker running it (SIGKILL, as task_timeout
     * does): the future ends cancelled (cancel returns 1, waiters see
     * CONC_ECANCELED), the worker is replaced, and the tasks queued behind
     * it go to other workers, none lost. A result the task wrote before
     * the kill landed is dropped; once the parent has begun reading that
     * result, the cancel comes too late and returns 0. A task may be
     * killed anywhere: what it does outside its result (files, shared
     * memory, locks shared with other processes) may be left half done.
     * Without it (the default), as in Python, a running task cannot be
     * cancelled: cancel returns 0 and the task runs on. A TaskGroup
     * (aio.h) that holds a process task kills it either way when the
     * group aborts. A map's conc_map_free then kills its running chunks
     * too. Ignored by thread executors. */
    int cancel_kills;
} conc_executor_opts;

/* Creates an executor; `opts` may be NULL. Returns 0 and a new executor in
 * *out (freed with conc_executor_free), CONC_EINVAL (bad options),
 * CONC_ENOMEM, CONC_EAGAIN (no thread or process could be started), or the
 * error that stopped a worker from starting. Thread workers start on
 * demand; process workers all start here. */
CONC_EXTERN int conc_thread_executor_new(const conc_executor_opts *opts,
                                         conc_executor **out);
CONC_EXTERN int conc_process_executor_new(const conc_executor_opts *opts,
                                          conc_executor **out);

/* Extra, per-call submit settings; NULL means none. */
typedef struct conc_submit_opts {
    /* A descriptor handed to the task (duplicated now; the task gets its
     * own copy through conc_task_fd): how a pool serves a connected socket.
     * Set to -1 or leave the whole struct NULL for none; 0 is a valid
     * descriptor only when has_fd is set. */
    int has_fd;
    int fd;
    /* With `timed` set, a submit that finds the bounded submission queue
     * full (max_pending reached) waits up to `timeout` seconds for room,
     * whatever the executor's submit_mode says, then returns
     * CONC_ETIMEDOUT; 0 never waits, NaN is CONC_EINVAL. Without it, the
     * executor's submit_mode decides. */
    int timed;
    double timeout;
} conc_submit_opts;

/* Schedules fn on a copy of `len` bytes at `arg`. Returns 0 and a new
 * future in *out (NULL `out`: fire and forget), CONC_ECLOSED (after
 * shutdown: "cannot schedule new futures after shutdown"), CONC_EBROKEN
 * (the initializer failed), CONC_EFULL or CONC_ETIMEDOUT (bounded queue, as
 * chosen in the options), CONC_EINVAL (NULL fn, NULL arg with len > 0),
 * CONC_ENOMEM, CONC_EBADF (a bad descriptor). conc_executor_submit_with
 * takes per-call settings (`opts` may be NULL; borrowed): a descriptor for
 * the task, and a timeout for the wait for room in a bounded queue
 * (CONC_EINVAL for a NaN one).
 * Any thread. */
CONC_EXTERN int conc_executor_submit(conc_executor *ex, conc_task_fn fn,
                                     const void *arg, size_t len,
                                     conc_future **out);
CONC_EXTERN int conc_executor_submit_with(conc_executor *ex, conc_task_fn fn,
                                          const void *arg, size_t len,
                                          const conc_submit_opts *opts,
                                          conc_future **out);

/* Python's shutdown(wait, cancel_futures): no further submits; with
 * cancel_futures, pending tasks are cancelled; with wait, waits up to
 * `timeout` until every task has finished and every worker has ended
 * (ignored without wait). Calling it again is harmless, and waits again.
 * Returns 0; CONC_ETIMEDOUT when the tasks or workers were not done in
 * time (the executor is shut down all the same); CONC_EDEADLK when called
 * with wait from one of the executor's own tasks; CONC_EINVAL for a NULL
 * executor or a NaN timeout. Any thread. */
CONC_EXTERN int conc_executor_shutdown(conc_executor *ex, int wait,
                                       int cancel_futures, double timeout);

/* Shuts down with wait (no cancelling) and frees the executor. Futures the
 * caller still holds stay valid. NULL does nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_executor_free(conc_executor *ex);

/* The scoped form (Python's `with ... as ex:`): a variable declared
 *     CONC_EXECUTOR_SCOPED conc_executor *ex = NULL;
 * is shut down and freed when it goes out of scope (GCC and Clang).
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc__executor_freep(conc_executor **ex);
#define CONC_EXECUTOR_SCOPED __attribute__((cleanup(conc__executor_freep)))

/* The number of workers the executor may run. Any thread. */
CONC_EXTERN size_t conc_executor_max_workers(const conc_executor *ex);

/* ---- Mapping ------------------------------------------------------------ */

/* A generator of map items: appends the next item's bytes to `item` and
 * returns 1, returns 0 at the end, or a negative code that ends the map
 * with that failure. Called from the thread that drives the map. */
typedef int (*conc_next_fn)(void *ctx, conc_buf *item);

/* The input of a map: an array of `count` elements of `size` bytes each, or
 * (when `next` is set) a generator. */
typedef struct conc_items {
    const void *base;
    size_t size;
    size_t count;
    conc_next_fn next;
    void *ctx;
} conc_items;

/* The items of a C array: CONC_ITEMS(array, n). */
#define CONC_ITEMS(array, n)                                                   \
    ((conc_items){.base = (array), .size = sizeof *(array), .count = (n)})

/* Progress of a map: `done` of `total` items have completed (total is 0 for
 * a generator whose end is not reached yet). Called with done increasing,
 * from the thread that collects results; keep it short. */
typedef void (*conc_progress_fn)(void *arg, size_t done, size_t total);

typedef struct conc_map_opts {
    size_t chunksize; /* items per task (0 or 1: one item per task) */
    /* Executor map only: with `timed` nonzero, `timeout` bounds the whole
     * map, as in Python, under the usual rules (CONC_FOREVER waits
     * forever, 0 never waits, any other negative value acts as 0, NaN is
     * CONC_EINVAL); with `timed` 0 (a zeroed struct) there is no bound,
     * Python's None. */
    int timed;
    double timeout;
    size_t max_in_flight; /* chunks submitted ahead of the consumer
                             (0: 2 per worker, at least 4) */
    conc_progress_fn progress;
    void *progress_arg;
} conc_map_opts;

typedef struct conc_map_iter conc_map_iter;

/* Python's Executor.map: returns 0 and a new iterator in *out that yields
 * fn's results in input order, consuming the input lazily with a bounded
 * number of chunks in flight. Returns CONC_ECLOSED (after shutdown),
 * CONC_EINVAL (NULL fn or items, an array with NULL base and count > 0, a
 * zero element size, a NaN timeout with `timed` set), CONC_ENOMEM.
 * Any thread. */
CONC_EXTERN int conc_executor_map(conc_executor *ex, conc_task_fn fn,
                                  const conc_items *items,
                                  const conc_map_opts *opts,
                                  conc_map_iter **out);

/* The next result: 0 with `*data`/`*len` borrowed until the next call on
 * the iterator; CONC_ECLOSED after the last one; the item's negative code
 * (message as the caller's failure message) for a failed item, after which
 * the map goes on with the next item; CONC_ETIMEDOUT when the map's timeout
 * (or, for a Pool's imap, `timeout` here) ran out, CONC_ECANCELED if the
 * executor was shut down with cancel_futures. One thread at a time. */
CONC_EXTERN int conc_map_next(conc_map_iter *it, double timeout,
                              const void **data, size_t *len);

/* The 0-based input index of the item conc_map_next returned last (useful
 * with imap_unordered).
 * One thread at a time per iterator. */
CONC_EXTERN size_t conc_map_index(const conc_map_iter *it);

/* Frees the iterator, cancelling what has not started and waiting for what
 * runs. NULL does nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_map_free(conc_map_iter *it);

CONC_END_DECLS

#endif
