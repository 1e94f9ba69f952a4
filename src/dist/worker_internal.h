/* A Redis worker's state, shared by worker.c (the serving threads),
 * run.c (starting and stopping them), monitor.c (heartbeats,
 * cancellation, time limits) and reclaim.c (dead workers' tasks and dead
 * letters).
 *
 * Lock order: a slot's lock, then (the monitor cancelling a task run in
 * a worker process) that task's future's. */
#ifndef CONC_DIST_WORKER_INTERNAL_H
#define CONC_DIST_WORKER_INTERNAL_H

#include <stdatomic.h>

#include "conc/dist.h"
#include "conc/executor.h"
#include "core/lockword.h"
#include "dist/dist_internal.h"

struct redisReply;

/* What one serving thread is running, for the monitor thread. */
struct conc__dist_slot {
    conc__lockword lock; /* guards the fields below */
    int busy;
    char entry[64]; /* stream entry id */
    char res_key[CONC__DIST_NAME_MAX * 2 + 32];
    char id[CONC__DIST_NAME_MAX + 1], sub[CONC__DIST_NAME_MAX + 1];
    uint64_t ttl_ms;
    int64_t limit_ns;        /* monotonic; 0: none */
    _Atomic uint32_t cancel; /* the task's cancel token */
    int timed_out;           /* the monitor failed it */
    /* With process workers, the process executor's future of the task
     * (NULL otherwise): the monitor cancels it to kill a task it stops. */
    conc_future *pool_f;
    char consumer[CONC__DIST_NAME_MAX + 16];
    /* The entries of the thread's current batch not started yet,
     * held[held_from..held_n) (w->batch places): the monitor renews their
     * claims as it does the running task's. */
    char (*held)[CONC__DIST_ENTRY_MAX];
    size_t held_from, held_n;
};

struct conc_dist_worker {
    char *address, *password, *queue, *name;
    char *k_tasks, *k_dead, *k_workers, *k_lost;
    double connect_timeout;
    int retry_on_startup;
    int64_t reclaim_idle_ms;
    unsigned max_deliveries;
    size_t nthreads;
    size_t batch;                  /* entries per XREADGROUP and thread */
    size_t nprocs;                 /* worker processes, 0 for none */
    conc_executor *pool;           /* their executor while running, or NULL */
    struct conc__dist_slot *slots; /* one per serving thread */
    _Atomic int stop;
    _Atomic int running;
};

/* The registered function for a task name, or NULL (registry.c). */
conc_task_fn conc__dist_lookup(const char *name, size_t len);

/* One serving thread's loop (worker.c): serves until w->stop or
 * `deadline`. Returns 0 or CONC_EAUTH. */
int conc__dist_serve(conc_dist_worker *w, size_t idx, int64_t deadline);

/* Handles one delivered entry [id, [field, value, ...]] that has been
 * delivered `deliveries` times (worker.c). Returns 0 or a connection
 * error. */
int conc__dist_handle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
                      const struct redisReply *entry, uint64_t deliveries);

/* Writes a task's result with the finish script (dist_internal.h), given
 * the decoded task, its entry id and the result value. Retries on a new
 * connection until `deadline`. Returns 0 or an error. */
int conc__dist_finish(conc_dist_worker *w, struct conc__rconn *c,
                      const struct conc__dist_task *t, const char *entry,
                      const conc_buf *value, int64_t deadline);

/* Takes over entries idle longer than reclaim_idle (reclaim.c), handling
 * each, or dead-lettering it after max_deliveries. Returns 0 or an
 * error. */
int conc__dist_reclaim(conc_dist_worker *w, size_t idx, struct conc__rconn *c);

/* Tells the submitters that the task of stream entry `entry` was
 * deleted while pending (a notice on the queue's lost stream, which every
 * result watcher reads). Returns 0 or an error. */
int conc__dist_report_lost(conc_dist_worker *w, struct conc__rconn *c,
                           const char *entry, size_t len);

/* Raises slot i's cancel token and, for a task in a worker process,
 * cancels it there, which kills that process (monitor.c). */
void conc__dist_stop_task(conc_dist_worker *w, size_t i);

/* The monitor thread (monitor.c): renews the claims of running tasks,
 * raises their cancel tokens when their result key was claimed by a
 * cancel, fails those over their time limit, and records the worker as
 * seen. Runs until w->stop. */
int conc__dist_monitor_main(void *arg);

/* Records the worker as seen now in the queue's workers hash
 * (milliseconds since the epoch, on the server's clock). */
void conc__dist_mark_seen(conc_dist_worker *w, struct conc__rconn *c);

/* The key "{conc:Q}:SUFFIX..." into buf, printf-style after the prefix. */
void conc__dist_keyf(char *buf, size_t size, const char *queue, const char *fmt,
                     ...) CONC_PRINTF(4, 5);

#endif
