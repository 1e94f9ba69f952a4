/* conc/aio.h: the event loop, coroutines and tasks (asyncio).
 *
 * A loop runs in one thread and runs three kinds of work in asyncio's
 * order: callbacks made ready (call_soon), timers that fell due
 * (call_later, call_at), and coroutine tasks. A coroutine is an ordinary
 * conc_task_fn, the signature thread pools, process pools and remote
 * workers run, executing on a stack of its own inside the loop's thread;
 * conc_aio_create_task returns its conc_future, the same future type every
 * executor returns (DESIGN.md principles 3 and 4).
 *
 * There are no function colours. Inside a coroutine, every conc call that
 * would block its thread (conc_aio_sleep, a future's result, conc_wait,
 * locks, queues, events...) suspends only the coroutine and lets the loop
 * run the others; outside a coroutine the same call blocks as it always
 * did. What Python writes as `await x` is, in C, the call itself.
 *
 * Cancellation follows asyncio: conc_aio_task_cancel asks a task to stop;
 * the task's next suspension (or the one it is in) returns CONC_ECANCELED,
 * and a task that returns CONC_ECANCELED ends cancelled. A task that
 * ignores the code and returns normally "swallowed" its cancellation, as in
 * Python; debug loops report it.
 *
 * Threads: a loop belongs to the thread that runs it. Calls that name a
 * loop must be made in that thread unless their comment says "any
 * thread"; calls without a loop argument act on the calling thread's
 * running loop and its current task. Errors: CONC_ESTATE ("no running
 * loop", "not inside a task") where asyncio raises RuntimeError. */
#ifndef CONC_AIO_H
#define CONC_AIO_H

#include "common.h"
#include "error.h"
#include "executor.h"
#include "future.h"
#include "task.h"

CONC_BEGIN_DECLS

typedef struct conc_aio_loop conc_aio_loop;
typedef struct conc_aio_handle conc_aio_handle;

/* A callback run by a loop: its context argument first, as everywhere in
 * conc. */
typedef void (*conc_aio_cb)(void *arg);

/* ---- The loop ------------------------------------------------------------ */

/* What the watchdog reports: the task's name, how long it has run
 * without suspending, and the return addresses of its stack at that
 * moment, innermost first (the backtrace(3) format). Everything is
 * borrowed for the call. */
typedef void (*conc_aio_watchdog_fn)(void *arg, const char *task,
                                     double seconds, void *const *pcs,
                                     int npcs);

typedef struct conc_aio_loop_opts {
    /* asyncio's debug mode: slow callbacks and tasks that swallowed a
     * cancellation are reported on stderr. */
    int debug;
    /* What "slow" means in debug mode, in seconds (0: asyncio's 0.1). */
    double slow_callback_duration;
    /* The watchdog, always on: a task that runs this long without
     * suspending is reported once per stretch, with its backtrace (0: 0.1
     * s; CONC_FOREVER: off). The backtrace is taken by a SIGURG sent to
     * the loop's thread (a handler is installed once, and passes on
     * SIGURGs that are not its own to the one installed before). */
    double watchdog;
    /* Where reports go: NULL prints them on stderr. Called in the
     * watchdog's own thread, while the task still runs. */
    conc_aio_watchdog_fn watchdog_fn;
    void *watchdog_arg;
} conc_aio_loop_opts;

/* A new loop (new_event_loop). `opts` may be NULL for asyncio's defaults.
 * Returns 0 and the loop in *out (freed with conc_aio_loop_free),
 * CONC_EINVAL (NULL out, a negative or NaN duration), CONC_ENOMEM, or a
 * system error from epoll_create1/eventfd. Any thread; the loop then
 * belongs to whichever thread runs it first. */
CONC_EXTERN int conc_aio_loop_new(const conc_aio_loop_opts *opts,
                                  conc_aio_loop **out);

/* Runs the loop until conc_aio_loop_stop (run_forever). Returns 0 once
 * stopped, CONC_EINVAL (NULL), CONC_ECLOSED (closed), CONC_ESTATE (this
 * loop or another is already running in this thread). The loop's thread. */
CONC_EXTERN int conc_aio_loop_run_forever(conc_aio_loop *loop);

/* Runs the loop until `f` (any conc_future: a task, a thread-pool result)
 * is done, then returns f's outcome as conc_future_exception would: 0 if
 * it succeeded, its negative code, CONC_ECANCELED. Also CONC_EINVAL,
 * CONC_ECLOSED, CONC_ESTATE as run_forever, and CONC_ESTATE ("loop stopped
 * before the future completed") when stopped first. Borrows f. The loop's
 * thread. */
CONC_EXTERN int conc_aio_loop_run_until_complete(conc_aio_loop *loop,
                                                 conc_future *f);

/* Asks the loop to stop after the callbacks already ready have run. Safe
 * from any thread and from a signal handler's callback. Returns 0,
 * CONC_EINVAL (NULL), CONC_ECLOSED. Any thread. */
CONC_EXTERN int conc_aio_loop_stop(conc_aio_loop *loop);

/* 1 while the loop runs, else 0; CONC_EINVAL for NULL. Any thread. */
CONC_EXTERN int conc_aio_loop_is_running(conc_aio_loop *loop);

/* 1 once the loop is closed, else 0; CONC_EINVAL for NULL. Any thread. */
CONC_EXTERN int conc_aio_loop_is_closed(conc_aio_loop *loop);

/* Closes the loop (close): cancels pending callbacks and timers, and
 * refuses new work with CONC_ECLOSED. Tasks still pending are cancelled
 * and run to their end first, so no stack or task is leaked. Returns 0,
 * CONC_EINVAL (NULL), CONC_ESTATE (running). Closing twice is a no-op.
 * The loop's thread (or any thread once no thread runs it). */
CONC_EXTERN int conc_aio_loop_close(conc_aio_loop *loop);

/* Closes the loop if needed and frees it; NULL does nothing. Handles the
 * caller still holds stay valid until freed. Any thread, while no thread
 * runs the loop. */
CONC_EXTERN void conc_aio_loop_free(conc_aio_loop *loop);

/* The loop's clock (loop.time()): monotonic seconds. 0 for NULL. Any
 * thread. */
CONC_EXTERN double conc_aio_loop_time(conc_aio_loop *loop);

/* The calling thread's running loop in *out, borrowed
 * (get_running_loop). Returns 0, CONC_EINVAL (NULL out), CONC_ESTATE ("no
 * running event loop"). Any thread. */
CONC_EXTERN int conc_aio_get_running_loop(conc_aio_loop **out);

/* asyncio.run: a new loop runs `main` as a task with its own copy of the
 * `len` argument bytes until it returns, then cancels what is left, closes
 * and frees the loop. Main's result bytes are appended to `result` (NULL:
 * dropped). Returns main's code (>= 0 success, its failure, or
 * CONC_ECANCELED), CONC_EINVAL (NULL main, NULL arg with len > 0),
 * CONC_ESTATE (a loop already runs in this thread), CONC_ENOMEM. Any
 * thread not running a loop. */
CONC_EXTERN int conc_aio_run(conc_task_fn main, const void *arg, size_t len,
                             conc_buf *result);

/* ---- Callbacks and timers -------------------------------------------------
 *
 * Each scheduling call may hand out a handle in *out (pass NULL when not
 * wanted): a new reference, freed with conc_aio_handle_free whether or
 * not the callback ran. `arg` is borrowed: it must stay valid until the
 * callback has run or was cancelled. Timers never fire early: a callback
 * scheduled for time t runs at the first iteration whose clock reads t or
 * later. */

/* Schedules fn(arg) for the next iteration (call_soon), after the
 * callbacks scheduled before it. *out (optional): a new handle, freed with
 * conc_aio_handle_free. Returns 0, CONC_EINVAL (NULL loop or fn),
 * CONC_ECLOSED, CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_aio_call_soon(conc_aio_loop *loop, conc_aio_cb fn,
                                   void *arg, conc_aio_handle **out);

/* Schedules fn(arg) `delay` seconds from now (call_later); a negative delay
 * is 0. *out (optional): a new handle, freed with conc_aio_handle_free.
 * Returns 0, CONC_EINVAL (NULL loop or fn, NaN or infinite delay),
 * CONC_ECLOSED, CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_aio_call_later(conc_aio_loop *loop, double delay,
                                    conc_aio_cb fn, void *arg,
                                    conc_aio_handle **out);

/* Schedules fn(arg) at loop time `when` (call_at, conc_aio_loop_time's
 * clock). *out (optional): a new handle, freed with conc_aio_handle_free.
 * Errors as conc_aio_call_later. The loop's thread. */
CONC_EXTERN int conc_aio_call_at(conc_aio_loop *loop, double when,
                                 conc_aio_cb fn, void *arg,
                                 conc_aio_handle **out);

/* Schedules fn(arg) from any thread (call_soon_threadsafe). Calls from
 * many threads are batched: one wake-up of the loop per batch. *out
 * (optional): a new handle, freed with conc_aio_handle_free. Returns 0,
 * CONC_EINVAL (NULL loop or fn), CONC_ECLOSED, CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_call_soon_threadsafe(conc_aio_loop *loop,
                                              conc_aio_cb fn, void *arg,
                                              conc_aio_handle **out);

/* Cancels the callback if it has not run (Handle.cancel); a no-op after.
 * Returns 0, CONC_EINVAL (NULL). The handle's loop's thread (or any
 * thread for a handle from call_soon_threadsafe). */
CONC_EXTERN int conc_aio_handle_cancel(conc_aio_handle *h);

/* 1 if the handle was cancelled, else 0; CONC_EINVAL for NULL. Same
 * threads as conc_aio_handle_cancel. */
CONC_EXTERN int conc_aio_handle_cancelled(conc_aio_handle *h);

/* Drops the caller's reference; NULL does nothing. Does not cancel. Any
 * thread. */
CONC_EXTERN void conc_aio_handle_free(conc_aio_handle *h);

/* ---- Tasks -----------------------------------------------------------------
 */

typedef struct conc_aio_task_opts {
    /* The task's name (copied); NULL gives asyncio's "Task-N". */
    const char *name;
    /* Stack size in bytes; 0 for the default (256 KiB reserved, of which
     * only the pages touched use memory). */
    size_t stack_size;
} conc_aio_task_opts;

/* Starts fn as a coroutine task on the calling thread's running loop
 * (create_task), with its own copy of the `len` argument bytes. It first
 * runs at the loop's next iteration. The loop keeps the task alive until it
 * is done: dropping the returned future never loses the task. Returns 0 and
 * a new reference in *out (NULL: not wanted; free it with
 * conc_future_free), CONC_EINVAL (NULL fn, NULL arg with len > 0, a stack
 * size over 1 GiB), CONC_ESTATE (no running loop), CONC_ENOMEM. The loop's
 * thread. */
CONC_EXTERN int conc_aio_create_task(conc_task_fn fn, const void *arg,
                                     size_t len, const conc_aio_task_opts *opts,
                                     conc_future **out);

/* conc_aio_create_task on a given loop, which need not be running yet
 * (loop.create_task). *out (optional): a new reference, freed with
 * conc_future_free. Errors as conc_aio_create_task, and CONC_ECLOSED.
 * The loop's thread, or any thread while no thread runs it. */
CONC_EXTERN int conc_aio_loop_create_task(conc_aio_loop *loop, conc_task_fn fn,
                                          const void *arg, size_t len,
                                          const conc_aio_task_opts *opts,
                                          conc_future **out);

/* The task running this code in *out, borrowed (current_task). Returns 0,
 * CONC_EINVAL (NULL out), CONC_ESTATE (not inside a task). Any thread. */
CONC_EXTERN int conc_aio_current_task(conc_future **out);

/* The task's name, borrowed until the task is freed or renamed; NULL if f
 * is NULL or not a coroutine task. The task's loop's thread. */
CONC_EXTERN const char *conc_aio_task_name(conc_future *f);

/* Renames the task (copied). Returns 0, CONC_EINVAL (NULL, not a task),
 * CONC_ENOMEM. The task's loop's thread. */
CONC_EXTERN int conc_aio_task_set_name(conc_future *f, const char *name);

/* Asks the task to stop (Task.cancel(msg)): its next suspension, or the
 * one it is in, returns CONC_ECANCELED; `msg` (copied; may be NULL)
 * becomes the cancelled future's message. Returns 1 if the request was
 * made, 0 if the task is already done, CONC_EINVAL (NULL, not a task),
 * CONC_ENOMEM. For any other future, conc_future_cancel. The task's loop's
 * thread. */
CONC_EXTERN int conc_aio_task_cancel(conc_future *f, const char *msg);

/* The number of pending cancellation requests (Task.cancelling()); 0 for
 * a future that is not a task; CONC_EINVAL for NULL. The task's loop's
 * thread. */
CONC_EXTERN int conc_aio_task_cancelling(conc_future *f);

/* Withdraws one cancellation request (Task.uncancel()) and returns the
 * count left; 0 for a non-task; CONC_EINVAL for NULL. A task whose count falls
 * to 0 no longer has a cancellation delivered at its next suspension. The
 * task's loop's thread. */
CONC_EXTERN int conc_aio_task_uncancel(conc_future *f);

/* Every task of the loop not yet done (all_tasks), as new references in a
 * new array in *tasks and its length in *n; free them with
 * conc_aio_tasks_free. NULL loop: the running loop. Returns 0,
 * CONC_EINVAL (NULL tasks or n), CONC_ESTATE (no loop), CONC_ENOMEM.
 * The loop's thread. */
CONC_EXTERN int conc_aio_all_tasks(conc_aio_loop *loop, conc_future ***tasks,
                                   size_t *n);

/* Frees what conc_aio_all_tasks returned; NULL does nothing. Any thread. */
CONC_EXTERN void conc_aio_tasks_free(conc_future **tasks, size_t n);

/* ---- Suspending
 * -------------------------------------------------------------- */

/* Suspends the calling task for `delay` seconds (asyncio.sleep); 0 yields
 * to the other ready work once. Outside a task it sleeps the thread.
 * Returns 0, CONC_ECANCELED (the task was cancelled), CONC_EINVAL (NaN).
 * Any thread. */
CONC_EXTERN int conc_aio_sleep(double delay);

/* `await f` for any future, with asyncio's cancellation: waits until f is
 * done and returns its outcome as conc_future_exception would (0, its
 * negative code, CONC_ECANCELED). If the calling task is cancelled while it
 * waits, f is cancelled too (a task with the same message) and the wait
 * goes on until f is done, as asyncio does; if f cannot be cancelled any
 * more (a running thread-pool task) the call returns CONC_ECANCELED at
 * once. Outside a task it waits like conc_future_exception. Returns
 * CONC_EINVAL for NULL. Borrows f. Any thread. */
CONC_EXTERN int conc_aio_await(conc_future *f);

/* asyncio.gather: waits for the n futures (any mix of kinds). With
 * return_exceptions 0 it returns as soon as one fails, with that failure
 * (the others keep running, as in Python); with 1 it waits for all and
 * returns 0, each outcome staying readable from its future. If the calling
 * task is cancelled, every future not done is cancelled and the call
 * returns CONC_ECANCELED. Returns 0, a child's failure code, CONC_ECANCELED,
 * CONC_EINVAL (NULL fs with n > 0, a NULL future), CONC_ENOMEM. Borrows
 * the futures. Any thread. */
CONC_EXTERN int conc_aio_gather(conc_future *const *fs, size_t n,
                                int return_exceptions);

/* asyncio.wait: waits until `when` holds over the n futures or `timeout`
 * passes, and never cancels anything; done[i] (if `done` is not NULL)
 * says whether fs[i] is done (Python's done and pending sets). The same
 * call as conc_wait, under asyncio's name: in a task it suspends only the
 * task, and it is a cancellation point (CONC_ECANCELED). Returns 0,
 * CONC_ETIMEDOUT, CONC_ECANCELED, and conc_wait's errors. Borrows the
 * futures. Any thread. */
CONC_EXTERN int conc_aio_wait(conc_future *const *fs, size_t n,
                              conc_return_when when, double timeout,
                              unsigned char *done);

/* asyncio.as_completed: conc_as_completed under asyncio's name; in a task,
 * conc_as_completed_next suspends only the task and is a cancellation
 * point. Returns 0 and a new iterator in *out (freed with
 * conc_as_completed_free), CONC_EINVAL, CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_as_completed(conc_future *const *fs, size_t n,
                                      double timeout,
                                      conc_as_completed_iter **out);

/* asyncio.wait_for: waits up to `timeout` seconds for f; when time runs
 * out it cancels f, waits until f is done, and returns CONC_ETIMEDOUT (or
 * f's outcome, if it finished anyway). A cancelled caller cancels f the
 * same way and returns CONC_ECANCELED. Otherwise returns f's outcome as
 * conc_aio_await. CONC_EINVAL for NULL or a NaN timeout. Borrows f. Any
 * thread. */
CONC_EXTERN int conc_aio_wait_for(conc_future *f, double timeout);

/* asyncio.shield: a new future in *out that completes as f does, but whose
 * cancellation leaves f running. Returns 0, CONC_EINVAL (NULL), CONC_ENOMEM.
 * *out is a new reference (conc_future_free). Any thread. */
CONC_EXTERN int conc_aio_shield(conc_future *f, conc_future **out);

/* ---- Executors from coroutines
 * ----------------------------------------------- */

/* loop.run_in_executor: submits fn to `ex` (NULL: the running loop's
 * default thread executor, made on first use and shut down when the loop
 * closes) and hands back its future in *out, a new reference: await it
 * with conc_aio_await, gather it, or add it to a TaskGroup. Returns 0,
 * CONC_EINVAL (NULL fn or out, NULL arg with len > 0), CONC_ESTATE (ex is
 * NULL and no loop runs), the errors of conc_executor_submit. The loop's
 * thread (any thread with an executor). */
CONC_EXTERN int conc_aio_run_in_executor(conc_executor *ex, conc_task_fn fn,
                                         const void *arg, size_t len,
                                         conc_future **out);

/* asyncio.to_thread: runs fn in the loop's default thread executor and
 * waits for it, suspending only the calling task; its result bytes are
 * appended to `result` (NULL: dropped). If the task is cancelled
 * meanwhile, fn's future is cancelled (a running fn sees
 * conc_task_cancelled() == 1) and the call returns CONC_ECANCELED at once.
 * Returns fn's code, CONC_ECANCELED, CONC_EINVAL, CONC_ESTATE (no running
 * loop), CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_aio_to_thread(conc_task_fn fn, const void *arg, size_t len,
                                   conc_buf *result);

/* conc_aio_to_thread in a process instead: fn runs in the loop's default
 * process executor (made on first use, with Python's default size, shut
 * down when the loop closes), so it may use every CPU. If the task is
 * cancelled, fn's future is cancelled if it has not started (a running
 * process task runs to its end; its result is dropped). Errors as
 * conc_aio_to_thread. The loop's thread. */
CONC_EXTERN int conc_aio_to_process(conc_task_fn fn, const void *arg,
                                    size_t len, conc_buf *result);

/* ---- Signals (loop.add_signal_handler)
 * --------------------------------------- */

/* Runs fn(arg) in the loop, as a callback, each time signal `sig` arrives
 * (several arrivals before the loop looks may run it once). Replaces an
 * earlier handler of this loop for `sig`. The signal's disposition becomes
 * conc's (one process-wide handler that only notes the arrival and wakes
 * the loop) until conc_aio_remove_signal_handler. Returns 0, CONC_EINVAL
 * (NULL loop or fn, a signal number out of range, SIGKILL, SIGSTOP, or
 * SIGURG, which the watchdog uses), CONC_ECLOSED, CONC_ESTATE (another
 * loop handles `sig`), CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_aio_add_signal_handler(conc_aio_loop *loop, int sig,
                                            conc_aio_cb fn, void *arg);

/* Removes the loop's handler for `sig` and restores the disposition it
 * had before. Returns 1 if a handler was removed, 0 if there was none,
 * CONC_EINVAL (NULL, a bad signal number). The loop's thread. */
CONC_EXTERN int conc_aio_remove_signal_handler(conc_aio_loop *loop, int sig);

/* ---- Seeing inside
 * ------------------------------------------------------------- */

/* Appends to `out` a report of every loop of the process and every task
 * of each (asyncio's ps/pstree): the loop's thread and state, each task's
 * name, state (running, ready, suspended), what it waits for, and the
 * backtrace of its suspended stack. A loop that does not answer within 0.2
 * s (a task that never suspends) is reported as blocked, with the name of
 * the task that runs. Returns 0, CONC_EINVAL (NULL), CONC_ENOMEM. Any
 * thread, also inside a task. */
CONC_EXTERN int conc_aio_dump(conc_buf *out);

/* ---- Timeouts (asyncio.timeout) -------------------------------------------
 *
 *     conc_aio_timeout *t;
 *     conc_aio_timeout_enter(0.5, &t);        // async with timeout(0.5):
 *     int rc = work();                        //     await work()
 *     rc = conc_aio_timeout_exit(t, rc);      // CONC_ETIMEDOUT if it expired
 *
 * On expiry the timeout cancels its task; on exit it turns that task's
 * CONC_ECANCELED into CONC_ETIMEDOUT only if the cancellation was its own
 * (uncancel brings the task's count back to what it was on entry), as
 * asyncio does, so an outer cancellation is never mistaken for a timeout. */
typedef struct conc_aio_timeout conc_aio_timeout;

/* Enters a timeout of `delay` seconds in the current task (CONC_FOREVER: no
 * deadline, as timeout(None)). Returns 0 and a new timeout in *out, owned
 * by the caller and freed by conc_aio_timeout_exit, CONC_EINVAL (NULL out,
 * NaN), CONC_ESTATE (not inside a task), CONC_ENOMEM. The task's thread. */
CONC_EXTERN int conc_aio_timeout_enter(double delay, conc_aio_timeout **out);

/* Moves the deadline to `delay` seconds from now (CONC_FOREVER: none)
 * (Timeout.reschedule). Returns 0, CONC_EINVAL (NULL, NaN), CONC_ESTATE
 * (already expired or exited). The task's thread. */
CONC_EXTERN int conc_aio_timeout_reschedule(conc_aio_timeout *t, double delay);

/* 1 if the timeout expired (Timeout.expired()), else 0; CONC_EINVAL for
 * NULL. The task's thread. */
CONC_EXTERN int conc_aio_timeout_expired(conc_aio_timeout *t);

/* Leaves the timeout and frees it. `code` is the body's outcome; returns
 * it, or CONC_ETIMEDOUT in place of a CONC_ECANCELED this timeout caused.
 * CONC_EINVAL for NULL. The task's thread. */
CONC_EXTERN int conc_aio_timeout_exit(conc_aio_timeout *t, int code);

/* ---- TaskGroup --------------------------------------------------------------
 *
 *     conc_aio_taskgroup *tg;
 *     conc_aio_taskgroup_new(&tg);                  // async with TaskGroup():
 *     conc_aio_taskgroup_create_task(tg, fn, ...);  //     tg.create_task(...)
 *     rc = conc_aio_taskgroup_exit(tg, rc);         // waits for every child
 *     conc_aio_taskgroup_free(tg);
 *
 * The first child that fails cancels the other children and the task that
 * owns the group (once), as asyncio's TaskGroup does. Beyond asyncio, a
 * group also holds futures of thread and process executors and pools
 * (conc_aio_taskgroup_add): when the group fails or is cancelled they are
 * cancelled too (pending ones never run, running thread tasks see
 * conc_task_cancelled, running process tasks are killed with their
 * worker, whatever the executor's cancel_kills says). */
typedef struct conc_aio_taskgroup conc_aio_taskgroup;

/* A new group owned by the current task. Returns 0 and *out, CONC_EINVAL
 * (NULL), CONC_ESTATE (not inside a task), CONC_ENOMEM. The task's
 * thread. */
CONC_EXTERN int conc_aio_taskgroup_new(conc_aio_taskgroup **out);

/* Starts a child task in the group (TaskGroup.create_task). *out, when not
 * NULL, receives a new reference. Returns 0, the errors of
 * conc_aio_create_task, CONC_ESTATE (the group is exiting after a failure
 * or has exited: "TaskGroup is shutting down"). The owner's thread. */
CONC_EXTERN int conc_aio_taskgroup_create_task(conc_aio_taskgroup *tg,
                                               conc_task_fn fn, const void *arg,
                                               size_t len,
                                               const conc_aio_task_opts *opts,
                                               conc_future **out);

/* Adds any future to the group (the group takes its own reference): the
 * group waits for it, and cancels it if the group fails or is cancelled.
 * Returns 0, CONC_EINVAL (NULL), CONC_ESTATE as above, CONC_ENOMEM. The
 * owner's thread. */
CONC_EXTERN int conc_aio_taskgroup_add(conc_aio_taskgroup *tg, conc_future *f);

/* Leaves the group (`async with` exit): `code` is the body's outcome (a
 * negative code fails the group as a child would). Waits until every
 * member is done. Returns 0; the first failure of a member or the body
 * (the others: conc_aio_taskgroup_errors); CONC_ECANCELED if the owner
 * was cancelled from outside. CONC_EINVAL for NULL, CONC_ESTATE if already
 * exited. The owner's thread. */
CONC_EXTERN int conc_aio_taskgroup_exit(conc_aio_taskgroup *tg, int code);

/* The members that failed (ExceptionGroup.exceptions), in the order they
 * failed, borrowed from the group until it is freed: *fs and *n. Returns
 * 0, CONC_EINVAL (NULL). The owner's thread. */
CONC_EXTERN int conc_aio_taskgroup_errors(conc_aio_taskgroup *tg,
                                          conc_future *const **fs, size_t *n);

/* Frees the group, exiting it first (with code 0) if needed; NULL does
 * nothing. The owner's thread. */
CONC_EXTERN void conc_aio_taskgroup_free(conc_aio_taskgroup *tg);

CONC_END_DECLS

#endif
