/* The async layer from the inside: the loop, its handles, its tasks.
 *
 * Everything here belongs to one loop and is touched only by the loop's
 * thread, except what is marked "any thread": the remote queue (the
 * lock-free list call_soon_threadsafe and cross-thread wakes push onto),
 * the wake flag, a handle's reference count and cancelled flag, and a
 * task's remote wake fields. */
#ifndef CONC_AIO_INTERNAL_H
#define CONC_AIO_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>

#include "conc/aio.h"
#include "conc_config.h"
#include "core/internal.h"
#include "future/future_internal.h"
#include "unix/coro.h"
#include "unix/fiber.h"

/* ---- Handles ---------------------------------------------------------------
 */

enum {
    HANDLE_EMBEDDED = 1, /* part of a task: never freed on its own */
    HANDLE_TIMER = 2,    /* in (or meant for) the timer heap */
    HANDLE_REMOTE = 4,   /* a task's wake from another thread: holds a ref */
};

struct conc_aio_handle {
    conc_aio_cb fn;
    void *arg;
    conc_aio_loop *loop;
    struct conc_aio_handle *next; /* ready queue, remote list, free list */
    int64_t when;                 /* timers: absolute monotonic ns */
    uint64_t seq;                 /* timers: order among equal `when` */
    size_t heap_index;            /* timers: SIZE_MAX when not in the heap */
    _Atomic uint32_t refs;        /* any thread */
    _Atomic uint32_t cancelled;   /* any thread */
    uint32_t flags;
    uint32_t queued; /* in the ready queue (embedded handles only) */
};

/* A new handle with one reference for the loop, plus one for the caller
 * if `out` is not NULL (stored there). NULL without memory. */
conc_aio_handle *conc__aio_handle_new(conc_aio_loop *loop, conc_aio_cb fn,
                                      void *arg, conc_aio_handle **out);
/* Drops one reference. Any thread. */
void conc__aio_handle_unref(conc_aio_handle *h);

/* ---- The ready queue and the timer heap
 * -------------------------------------- */

struct conc__aio_ready {
    conc_aio_handle *head, *tail;
    size_t n;
};

struct conc__aio_timers {
    conc_aio_handle **heap; /* a 4-ary min-heap on (when, seq) */
    size_t n, cap;
    uint64_t seq;
};

/* Appends h (loop thread). */
void conc__aio_ready_push(conc_aio_loop *loop, conc_aio_handle *h);

/* Arms h at h->when. Returns 0 or CONC_ENOMEM. */
int conc__aio_timer_add(struct conc__aio_timers *t, conc_aio_handle *h);
/* Disarms h if armed. */
void conc__aio_timer_remove(struct conc__aio_timers *t, conc_aio_handle *h);
/* The earliest timer, or NULL. */
static inline conc_aio_handle *
conc__aio_timer_first(const struct conc__aio_timers *t)
{
    return t->n ? t->heap[0] : NULL;
}
void conc__aio_timers_free(struct conc__aio_timers *t);

/* ---- Tasks
 * ------------------------------------------------------------------- */

struct conc__aio_task {
    conc_future future; /* first: a task is its future */
    struct conc__coro coro;
    conc_aio_loop *loop;
    conc__fiber *fiber;
    conc_task_fn fn;
    void *arg;
    size_t len;
    char *name;        /* autoname, or a copy of the caller's */
    char autoname[32]; /* "Task-N" */
    size_t stack_size;
    char msg[CONC__FAILURE_MAX]; /* the task's failure message */
    int code;                    /* what fn returned, once it returned */
    int must_cancel; /* a cancellation to deliver at the next resume */
    int ncancel;     /* cancellation requests (cancelling()) */
    char *cancel_msg;
    const char *what;      /* what the suspension waits for, for dumps */
    int suspended;         /* in conc__aio_suspend */
    int cancellable;       /* ... in a suspension a cancellation ends */
    int wake_code;         /* what the suspension returns when resumed */
    int finished;          /* fn returned; the fiber is done */
    conc_aio_handle step;  /* runs the next step (embedded) */
    conc_aio_handle timer; /* a suspension's deadline (embedded) */
    /* Cross-thread wakes (any thread): the token named and the flag that
     * says the task's remote node is on the loop's remote list. */
    _Atomic uint64_t remote_token;
    _Atomic uint32_t remote_queued;
    conc_aio_handle remote; /* embedded, pushed on the remote list */
    struct conc__aio_task *prev, *next; /* the loop's list of live tasks */
};

/* The task running in this thread, or NULL. */
struct conc__aio_task *conc__aio_task_self(void);
/* The task of future f, or NULL if f is not a coroutine task. */
struct conc__aio_task *conc__aio_task_of(conc_future *f);
/* Cancels every task of the loop and runs the loop until they are done
 * (close). */
void conc__aio_cancel_all(conc_aio_loop *loop);

/* Suspends the running task until conc__aio_wake, the deadline, or (if
 * `cancellable`) a cancellation. CONC__POLL yields: the task runs again at
 * the next iteration. Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_ENOMEM (no room for the deadline's timer). */
int conc__aio_suspend(struct conc__aio_task *t, int64_t deadline,
                      int cancellable);
/* Resumes a suspended task with `code` (loop thread). */
void conc__aio_wake(struct conc__aio_task *t, int code);
/* Drops, unrun, a task's wake sent from another thread (its `remote`
 * handle, which holds a reference on the task until it runs): for a loop
 * that closes with it still queued. */
void conc__aio_remote_wake_drop(conc_aio_handle *h);

/* ---- Descriptors ------------------------------------------------------------
 */

/* A descriptor registered with the loop's epoll; `ready` runs in the loop
 * thread with the events that fired (EPOLLIN, EPOLLOUT, EPOLLERR...). The
 * owner keeps the record alive while it is registered. */
struct conc__aio_io {
    int fd;
    void (*ready)(struct conc__aio_io *io, uint32_t events);
};

/* Registers io->fd for `events` (epoll flags; EPOLLONESHOT allowed), or
 * changes them if `modify`. Returns 0 or a negated errno (-EEXIST: the
 * descriptor is registered already, -EPERM: a regular file). Loop
 * thread. */
int conc__aio_io_add(conc_aio_loop *loop, struct conc__aio_io *io,
                     uint32_t events, int modify);
/* Unregisters io->fd; no event for it is delivered afterwards, even one
 * already collected in this iteration. Loop thread. */
void conc__aio_io_del(conc_aio_loop *loop, struct conc__aio_io *io);

/* The descriptor wait of the platform (conc__poll_until) for task t:
 * registers the descriptors with the loop and suspends (fdwait.c).
 * Returns the number of ready descriptors (revents filled), 0 at the
 * deadline, CONC_ECANCELED, a negated errno, or -ENOTSUP for a wait it
 * does not take (a look that must not block, too many descriptors): the
 * caller then polls the plain way. */
int conc__aio_poll(struct conc__aio_task *t, struct pollfd *fds, unsigned n,
                   int64_t deadline, int cancellable);

/* ---- The loop
 * ------------------------------------------------------------------ */

#define CONC__AIO_MAX_EVENTS 64
#define CONC__AIO_WD_FRAMES  32

/* The registry of loops (registry.c): every loop from new to free. */
void conc__aio_registry_add(conc_aio_loop *loop);
void conc__aio_registry_remove(conc_aio_loop *loop);
/* Runs fn(loop, arg) for every loop, under the registry's lock; returns
 * how many loops are running. */
int conc__aio_registry_each(void (*fn)(conc_aio_loop *loop, void *arg),
                            void *arg);
/* Resets the async layer's process state in a child just forked (each
 * file's part: registry.c, task.c, watchdog.c, signal.c). */
void conc__aio_atfork_child(void);
void conc__aio_task_atfork_child(void);
void conc__aio_watchdog_atfork_child(void);
/* Takes (1) or releases (0) a file's lock around a fork. */
void conc__aio_watchdog_fork_lock(int take);
void conc__aio_signals_fork_lock(int take);
/* Registers conc__aio_atfork_child once (registry.c). */
void conc__aio_atfork_register(void);

/* Runs the handlers of the signals that arrived (signal.c). */
void conc__aio_signals_dispatch(conc_aio_loop *loop);
/* Removes every signal handler of the loop. */
void conc__aio_signals_close(conc_aio_loop *loop);
/* Shuts down and frees the loop's default executors (executors.c). */
void conc__aio_executors_close(conc_aio_loop *loop);
/* Starts the watchdog thread unless it runs (watchdog.c); called when a
 * loop with a watchdog starts running. */
void conc__aio_watchdog_ensure(void);

struct conc_aio_loop {
    int epfd, evfd;
    struct epoll_event events[CONC__AIO_MAX_EVENTS]; /* this iteration's */
    int nevents, nevents_seen;
    int unpolled;  /* iterations since the last look at the descriptors */
    int poll_soon; /* a reader waits on a socket it found empty: look at
                    * the descriptors within a few iterations */
    int running, stopping, closed;
    int debug;
    int64_t slow_ns;
    struct conc__aio_ready ready;
    struct conc__aio_timers timers;
    conc_aio_handle *free_handles;
    size_t nfree;
    conc__fiber *fiber; /* the loop thread's own stack while it runs */
    struct conc__aio_task *tasks; /* live tasks, newest first */
    size_t ntasks;
    /* The registry of loops (registry.c), under the registry's lock. */
    struct conc_aio_loop *reg_prev, *reg_next;
    /* Guards the links of `tasks` and the tasks' names, which dumps read
     * from other threads. */
    pthread_mutex_t lock;
    pthread_t thread; /* while running */
    uint32_t tid;
    /* The watchdog (watchdog.c): the loop counts task steps and shows
     * the task that runs; the watchdog thread reads both. */
    _Atomic uint64_t steps;
    struct conc__aio_task *_Atomic in_step;
    int64_t watchdog_ns; /* 0: off */
    conc_aio_watchdog_fn watchdog_fn;
    void *watchdog_arg;
    _Atomic uint32_t wd_want; /* a backtrace is asked of the loop's thread */
    _Atomic int wd_npcs;
    void *wd_pcs[CONC__AIO_WD_FRAMES];
    uint64_t wd_steps_seen; /* the watchdog thread's own */
    int64_t wd_since;
    int wd_reported;
    conc_executor *thread_executor, *process_executor; /* made on use */
    /* any thread */
    _Atomic uint32_t sig_pending; /* a signal of this loop's arrived */
    _Atomic(conc_aio_handle *) remote;
    _Atomic uint32_t wake_pending;
    _Atomic uint32_t closed_remote;
};

/* The loop running in this thread, or NULL. */
extern _Thread_local conc_aio_loop *conc__aio_running;

/* Pushes h on the loop's remote list and wakes the loop once per batch.
 * Any thread. */
void conc__aio_remote_push(conc_aio_loop *loop, conc_aio_handle *h);

/* Runs one iteration of the loop. */
void conc__aio_run_once(conc_aio_loop *loop);

#endif
