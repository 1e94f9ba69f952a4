/* conc/dist.h: executors over Redis Streams (a distributed task queue).
 *
 * The same conc_task_fn that a thread or process pool runs also runs on
 * workers on other machines, found by name, with its argument and result
 * carried as bytes through a Redis server (7.0 or later). A submit returns
 * a plain conc_future, which conc_wait, conc_as_completed and everything
 * else that takes futures accept beside those of other executors.
 *
 * Guarantees (docs/scale-out.md says more, and gives the wire format):
 *   - a task is delivered at least once and its future completes once: the
 *     first result written wins (a result key written with NX), so a task
 *     run again after its worker died never replaces the first result;
 *   - a worker that dies mid-task leaves its task pending; another worker
 *     takes it over once it has been idle for reclaim_idle seconds;
 *   - a task delivered more than max_deliveries times without a result
 *     (its worker died each time) goes to the queue's dead-letter stream
 *     instead of running again, and its future fails with CONC_EBROKEN and
 *     a message giving the count;
 *   - a task whose stream entry is deleted before it is done fails its
 *     future with CONC_EBROKEN instead of vanishing;
 *   - results expire from Redis after result_ttl seconds.
 * Tasks should still be idempotent: one may run more than once.
 *
 * Every function here may be called from any thread, except that a
 * _free must be the last call on its object.
 *
 * Every call that waits for the server is bounded, also while the server
 * hangs (stopped, or a network that drops packets): by its timeout, or,
 * for the calls that take none, by the bound its comment gives
 * (docs/scale-out.md, "Timeouts", lists them all). */
#ifndef CONC_DIST_H
#define CONC_DIST_H

#include "common.h"
#include "executor.h"
#include "future.h"
#include "task.h"

CONC_BEGIN_DECLS

/* ---- The executor (the submitting side) -------------------------------- */

typedef struct conc_dist_executor conc_dist_executor;

typedef struct conc_dist_opts {
    /* Seconds for one connection attempt with its AUTH (0: 5). */
    double connect_timeout;
    /* Nonzero: conc_dist_executor_new succeeds while the server cannot be
     * reached and keeps trying in the background, as Celery's
     * broker_connection_retry_on_startup does; submits then wait for the
     * connection within their timeout. A wrong password still fails. */
    int retry_on_startup;
    /* Backpressure: at most this many tasks submitted and not completed
     * (0: 10000); a submit waits for room within its timeout. */
    size_t max_in_flight;
    /* Seconds a result stays in Redis after it is written (0: one day). */
    double result_ttl;
    /* Seconds a task may run before its future fails with CONC_ETIMEDOUT
     * (the task sees conc_task_cancelled; 0: no limit). */
    double time_limit;
} conc_dist_opts;

/* Creates an executor that submits to `queue` on the Redis server at
 * `address` ("redis://[:password@]host[:port]", "host:port" or "host";
 * port 6379 by default), authenticating with `password` (NULL: the one in
 * the address, or none). Connects now, unless opts->retry_on_startup, and
 * starts one thread that watches for results; either way it waits for the
 * server up to opts->connect_timeout (5 s by default). `opts` may be NULL.
 * Borrows every pointer argument (the strings are copied). Returns 0 and a
 * new executor in *out, freed with conc_dist_executor_free; CONC_EINVAL
 * (NULL address, queue or out, a bad address, an empty queue name or one
 * with characters outside [A-Za-z0-9_.:-], NaN or negative options);
 * CONC_EAUTH (the server refused the password, or wants one);
 * -ECONNREFUSED, CONC_ETIMEDOUT or another negated errno (no connection);
 * CONC_EPROTO (the server's replies make no sense, or it is older than
 * 7.0); CONC_ENOMEM; CONC_EAGAIN (no thread could be started).
 * Any thread. */
CONC_EXTERN int conc_dist_executor_new(const char *address,
                                       const char *password, const char *queue,
                                       const conc_dist_opts *opts,
                                       conc_dist_executor **out);

/* Submits a run of the task registered as `name` (conc_dist_register, on
 * the workers) on a copy of `len` bytes at `arg`. Waits up to `timeout`
 * seconds for room (max_in_flight), for the connection (another thread's
 * submit may hold it) and for the server to acknowledge the task,
 * reconnecting if it must. Once it returns 0 the task is in Redis:
 * with `appendfsync always` on the server, it survives the server's
 * restart. Returns 0 and a new future in *out (freed with
 * conc_future_free); CONC_ECLOSED after shutdown; CONC_ETIMEDOUT (no room
 * or no server in time: nothing was submitted; a copy the server got all
 * the same is claimed in the background, as a cancel does, so that no
 * worker runs it; one that started it meanwhile sees it cancelled);
 * CONC_EINVAL (NULL dx, name or out,
 * NULL arg with len > 0, an empty name, NaN timeout); CONC_EAUTH;
 * CONC_ENOMEM. Borrows name and arg. conc_future_cancel on the future
 * claims the task's result key first, waiting for the server up to 2 s in
 * all; if it cannot, the cancel returns 0 and the future stays pending.
 * Any thread. */
CONC_EXTERN int conc_dist_submit(conc_dist_executor *dx, const char *name,
                                 const void *arg, size_t len, double timeout,
                                 conc_future **out);

/* Submits one run of `name` per item of `items` (an array: CONC_ITEMS;
 * not a generator), sending up to 256 tasks per round trip to the server
 * (pipelined): much faster than a submit per item. Waits up to `timeout`
 * seconds in all, for room and for the server. out[i] receives item i's
 * new future (freed with conc_future_free); *submitted says how many
 * were submitted, also on failure, when the caller owns out[0..
 * *submitted) and nothing else was written. Returns 0 once all are
 * submitted; errors as conc_dist_submit, and CONC_EINVAL for NULL items,
 * out or submitted, a generator, a zero item size. Borrows name and
 * items. Any thread. */
CONC_EXTERN int conc_dist_submit_many(conc_dist_executor *dx, const char *name,
                                      const conc_items *items, double timeout,
                                      conc_future **out, size_t *submitted);

/* Python's Executor.map over Redis: runs the task registered as `name`
 * once per item of `items` (an array, CONC_ITEMS, or a generator) and
 * returns 0 and a new iterator in *out (freed with conc_map_free) that
 * conc_map_next reads in input order, as conc_executor_map's. The input
 * is read lazily: at most opts->max_in_flight tasks (0: 1024) are
 * submitted ahead of the consumer, sent up to 256 per round trip.
 * opts->chunksize is ignored (each item is one task; pipelining does what
 * chunks do for a local pool); opts->timed and opts->timeout bound the
 * whole map; opts->progress is called from conc_map_next with the items
 * handed out so far. Nothing is submitted here (creating a map never
 * blocks): each conc_map_next first tops up the tasks in flight, waiting
 * for room and for the server within its timeout (a batch being sent
 * gets at least 0.1 s, so that a poll with timeout 0 still submits), then
 * waits for the oldest result. A batch whose acknowledgement does not come
 * in time is not waited for: its futures stay, and the executor's thread
 * sends its tasks again until the server takes them (a task may then be
 * in the stream twice: it runs at least once, its future completes once).
 * conc_map_next returns CONC_ETIMEDOUT when nothing could be submitted or
 * came back in time; CONC_ECANCELED for the items of a map
 * whose executor was shut down (those in flight with cancel_futures, and
 * those not yet submitted); a task's own failure for a failed item, then
 * goes on. conc_map_free cancels the tasks not yet handed out (one not
 * yet started never runs), waiting for the server up to 2 s in all; a task
 * it could not cancel runs and completes unobserved. Returns CONC_EINVAL (NULL
 * dx, name, items or out; a bad name; an array with NULL base and count > 0 or
 * a zero item size; a NaN timeout with `timed` set), CONC_ECLOSED (after
 * shutdown), CONC_ENOMEM. Borrows every pointer argument: an array's items must
 * stay valid and unchanged until the map is freed, and the map must be freed
 * before the executor. Any thread; the iterator, one thread at a time. */
CONC_EXTERN int conc_dist_map(conc_dist_executor *dx, const char *name,
                              const conc_items *items,
                              const conc_map_opts *opts, conc_map_iter **out);

/* No further submits. With cancel_futures, every future not yet done is
 * cancelled (each task's result key is claimed first, so a worker that
 * takes the task up later skips it; one already running finishes
 * unobserved). With wait, waits up to `timeout` seconds for the futures in
 * flight to complete. `timeout` bounds the whole call: the claims wait for
 * the server up to the smaller of it and 2 s (with 0, they are sent and
 * not waited for; a claim that does not reach the server lets its task
 * run, unobserved, while its future ends cancelled all the same). Calling
 * it again is harmless. Returns 0,
 * CONC_ETIMEDOUT (futures still in flight: the executor is shut down all
 * the same), CONC_EINVAL (NULL dx, NaN timeout). Any thread. */
CONC_EXTERN int conc_dist_shutdown(conc_dist_executor *dx, int wait,
                                   int cancel_futures, double timeout);

/* Shuts the executor down without waiting, cancels the futures still in
 * flight (as conc_dist_shutdown with cancel_futures and a timeout of 2 s),
 * stops its thread and frees it. Futures the caller holds stay valid.
 * While the server hangs it takes up to about 2 s (the claims; the
 * thread ends meanwhile: its round trip in progress, then 0.2 s at most
 * per call to the server). NULL does nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_dist_executor_free(conc_dist_executor *dx);

/* ---- Workers (the serving side) ---------------------------------------- */

/* Registers `fn` under `name` for this process's workers (a later call
 * with the same name replaces it). Returns 0, CONC_EINVAL (NULL or empty
 * name, NULL fn), CONC_ENOMEM. Borrows name (copied). Any thread, before
 * the workers that should see the task start. */
CONC_EXTERN int conc_dist_register(const char *name, conc_task_fn fn);

typedef struct conc_dist_worker conc_dist_worker;

typedef struct conc_dist_worker_opts {
    /* Threads that serve the queue (0: 1). Each has its own connection
     * and runs one task at a time. */
    size_t threads;
    /* Nonzero: tasks run in this many worker processes (a process
     * executor, conc/executor.h, forked when conc_dist_worker_run starts,
     * after the tasks are registered), and `threads` is raised to it if
     * smaller: each serving thread hands its task to a process and waits.
     * A task that crashes its process then fails alone, with CONC_EBROKEN
     * and a message naming the pid and the signal, and the process is
     * replaced: it is not delivered again. A task cancelled, over its time
     * limit or deleted under it is killed with its process. 0: tasks run
     * on the serving threads. */
    size_t processes;
    /* As in conc_dist_opts. */
    double connect_timeout;
    int retry_on_startup;
    /* Seconds a task may sit with a worker that shows no sign of life
     * before another worker takes it over (0: 60). A worker running a long
     * task renews its claim every reclaim_idle / 3 seconds. */
    double reclaim_idle;
    /* Runs a task may have without a result: the delivery after them
     * sends it to the dead-letter stream (0: 5). */
    unsigned max_deliveries;
    /* This worker's name in the consumer group (NULL: "host-pid"). */
    const char *name;
    /* Tasks a serving thread takes per XREADGROUP (0: 64, at most 1024;
     * 1 with `processes`, whose tasks are rarely tiny). They wait in one
     * queue per worker that every serving thread of the worker takes
     * from, so a task taken behind a long one runs on another thread as
     * soon as one is free; those not started yet are renewed with the
     * running ones, so no other worker takes them over, and are handed
     * back at a stop. */
    size_t batch;
} conc_dist_worker_opts;

/* Creates a worker for `queue` at `address` (as conc_dist_executor_new),
 * creating the queue's stream and consumer group if they do not exist;
 * waits for the server up to opts->connect_timeout (5 s by default), also
 * with retry_on_startup. `opts` may be NULL. Borrows every pointer
 * argument. Returns 0 and a new worker in *out, freed with
 * conc_dist_worker_free; errors as conc_dist_executor_new. Any thread. */
CONC_EXTERN int conc_dist_worker_new(const char *address, const char *password,
                                     const char *queue,
                                     const conc_dist_worker_opts *opts,
                                     conc_dist_worker **out);

/* Serves the queue with the worker's threads (the calling thread is one of
 * them) until conc_dist_worker_stop or `timeout` seconds (CONC_FOREVER:
 * no limit). Takes tasks with XREADGROUP, runs the registered function,
 * writes the first result, acknowledges; takes over the tasks of dead
 * workers; sends tasks delivered too often to the dead-letter stream.
 * Reconnects with backoff when the server goes away. With
 * opts->processes, starts the worker processes first and stops them
 * before it returns. Out of time, it returns within about 1 s more, also
 * while the server hangs: every call of its threads to the server ends
 * 0.55 s after the deadline at the latest, and those made later get 0.2 s
 * each. Once stopped, its threads finish the round trip in progress (2 s
 * at most while the server hangs), and then the same. The tasks in hand
 * run to their end, and a result then waits for the server up to 30 s
 * (0.2 s after the end) before its task is left to be taken over by
 * another worker. Returns 0 once
 * stopped or out of time; CONC_EAUTH (wrong password); CONC_ESTATE (already
 * running); CONC_EINVAL (NULL w, NaN timeout); CONC_EAGAIN (no thread could be
 * started); CONC_ENOMEM. Any thread, one at a time. */
CONC_EXTERN int conc_dist_worker_run(conc_dist_worker *w, double timeout);

/* Asks a running conc_dist_worker_run to return once its tasks in hand are
 * done (a task not yet started goes back to the queue for another worker).
 * Does not wait: the run returns within the bounds its comment gives.
 * Returns 0, or CONC_EINVAL for NULL. Any thread; async-signal-safe. */
CONC_EXTERN int conc_dist_worker_stop(conc_dist_worker *w);

/* Frees a worker that is not running. NULL does nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_dist_worker_free(conc_dist_worker *w);

/* ---- Status ------------------------------------------------------------ */

typedef struct conc_dist_status {
    uint64_t queued;       /* tasks in the stream not yet delivered */
    uint64_t in_flight;    /* delivered, not yet acknowledged */
    uint64_t workers_seen; /* workers active within the last minute */
    uint64_t dead_letters; /* entries in the dead-letter stream */
} conc_dist_status;

/* Reads the queue's status from the server at `address`, waiting up to
 * `timeout` seconds in all (connection and reply). Borrows its pointer
 * arguments. Returns 0 and fills *out (left unchanged on failure); errors as
 * conc_dist_executor_new, CONC_ETIMEDOUT. Any thread. */
CONC_EXTERN int conc_dist_status_get(const char *address, const char *password,
                                     const char *queue, double timeout,
                                     conc_dist_status *out);

CONC_END_DECLS

#endif
