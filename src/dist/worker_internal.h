/* A Redis worker's state, shared by worker.c (the serving threads),
 * run.c (starting and stopping them), monitor.c (heartbeats,
 * cancellation, time limits) and reclaim.c (dead workers' tasks and dead
 * letters).
 *
 * Lock order: a slot's lock, then (the monitor cancelling a task run in
 * a worker process) that task's future's. The held tasks' lock and the
 * results' condition (fin_cond) are leaves. */
#ifndef CONC_DIST_WORKER_INTERNAL_H
#define CONC_DIST_WORKER_INTERNAL_H

#include <stdatomic.h>

#include "conc/dist.h"
#include "conc/executor.h"
#include "conc/sync.h"
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
    /* Whether the thread waits in an XREADGROUP, and its connection's
     * CLIENT ID (0: unknown): a thread that holds more tasks than it can
     * start wakes it with CLIENT UNBLOCK. */
    _Atomic int blocked;
    _Atomic long long client_id;
};

/* A task taken from the stream and not started yet (held.c): a copy of
 * its decoded entry, which any serving thread of the worker may run. */
struct conc__dist_held {
    struct conc__dist_held *next;
    size_t owner;       /* the thread whose consumer it is pending with */
    int64_t checked_ns; /* monotonic: when its result key was found absent */
    char entry[CONC__DIST_ENTRY_MAX];
    char id[CONC__DIST_NAME_MAX], fn[CONC__DIST_NAME_MAX];
    char sub[CONC__DIST_NAME_MAX];
    struct conc__dist_task t; /* points into this block */
    unsigned char arg[];      /* t.arg_len bytes */
};

/* A task's result for the result writer (writer.c): what its finish
 * needs, copied. */
struct conc__dist_fin {
    struct conc__dist_fin *next;
    char entry[CONC__DIST_ENTRY_MAX];
    char id[CONC__DIST_NAME_MAX], sub[CONC__DIST_NAME_MAX];
    struct conc__dist_task t; /* id, sub and ttl; points into this block */
    size_t len;
    unsigned char value[]; /* the result value, len bytes */
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
    /* The held tasks, oldest first, that every serving thread takes
     * from (held.c). */
    conc__lockword held_lock;
    struct conc__dist_held *held_head, *held_tail;
    size_t held_n;
    /* The results for the writer, oldest first, and its state; all
     * guarded by fin_cond. */
    conc_cond *fin_cond;
    struct conc__dist_fin *fin_head, *fin_tail;
    int fin_waiting; /* the writer waits for one */
    int fin_stop;    /* the serving threads are done: end when written */
    _Atomic int stop;
    _Atomic int running;
    /* The end of the run (monotonic ns): its deadline plus
     * CONC__DIST_END_SLACK_NS, or a stop's time plus that; every
     * connection of the run is limited by it (conc__rconn.limit). */
    _Atomic int64_t end_ns;
};

/* How long after its deadline, or a stop, a run's calls to the server
 * may still take: more than the serving threads' XREADGROUP blocks (500
 * ms, worker.c), so that a read in progress at the deadline ends on its
 * own when the server answers. */
#define CONC__DIST_END_SLACK_NS (550 * 1000 * 1000LL)

/* A new held task copied from an entry's id (entry_len bytes) and its
 * decoded task, pending with thread `owner`'s consumer, its result key
 * found absent at checked_ns. NULL without memory or for an entry id or
 * name too long to copy. */
struct conc__dist_held *conc__dist_held_new(size_t owner, const char *entry,
                                            size_t entry_len,
                                            const struct conc__dist_task *t,
                                            int64_t checked_ns);

/* Frees a list of held tasks linked through `next`. NULL does nothing. */
void conc__dist_held_free(struct conc__dist_held *h);

/* Adds hs[0..n) to the worker's held tasks in this order, after the others
 * or (front) before them. */
void conc__dist_held_push(conc_dist_worker *w, struct conc__dist_held **hs,
                          size_t n, int front);

/* Takes the oldest held task into out[0] and, if it was checked before
 * `stale_before`, the stale ones after it, up to `max` in all. Returns how
 * many (0: none held). */
size_t conc__dist_held_take(conc_dist_worker *w, struct conc__dist_held **out,
                            size_t max, int64_t stale_before);

/* Whether any task is held. */
int conc__dist_held_any(conc_dist_worker *w);

/* Takes every held task: a list through `next`, or NULL. */
struct conc__dist_held *conc__dist_held_take_all(conc_dist_worker *w);

/* Copies the entry ids of the held tasks pending with thread `owner`'s
 * consumer into a new array *ids (conc__free; NULL when none). Returns
 * how many. */
size_t conc__dist_held_ids(conc_dist_worker *w, size_t owner,
                           char (**ids)[CONC__DIST_ENTRY_MAX]);

/* A task's result for a finish (copied from the entry id, the decoded
 * task and the result value), freed with conc__free; NULL without memory
 * or for an entry id or name too long to copy. */
struct conc__dist_fin *conc__dist_fin_new(const char *entry,
                                          const struct conc__dist_task *t,
                                          const conc_buf *value);

/* Hands a result to the result writer (writer.c), which frees it. */
void conc__dist_fin_hand(conc_dist_worker *w, struct conc__dist_fin *f);

/* Whether the writer waits with nothing to write: every result handed to
 * it is written. */
int conc__dist_fin_idle(conc_dist_worker *w);

/* The result writer's thread: writes the results handed to it, those that
 * came together in one script, until conc__dist_writer_stop and none is
 * left. */
int conc__dist_writer_main(void *arg);

/* Tells the writer the serving threads are done. */
void conc__dist_writer_stop(conc_dist_worker *w);

/* The most entries the check sent with a read looks at, and the most
 * entries a read may have brought for the next to carry a check. The
 * script costs the server far more than an MGET (measured: 12 to 16 us
 * for one entry, against 0.1 us, at load 8), which a worker whose reads
 * bring many tasks, and whose server is its bottleneck, would pay on
 * every read, while the round trip it saves matters when a read brings a
 * task or two: a read that brought more is followed by one without the
 * check, whose batch is checked with the MGET in a round trip its tasks
 * share; the script itself answers nothing for more (an XPENDING of one
 * more entry says so). */
#define CONC__DIST_CHECK_MAX 4

/* Appends, behind the XREADGROUP of thread `idx` just appended to `c`,
 * the check of the result keys of the entries it will bring (check.c):
 * those pending with the thread's consumer after entry id `after`, the
 * newest it has seen. Returns 0 or an error (nothing appended). */
int conc__dist_check_append(conc_dist_worker *w, size_t idx,
                            struct conc__rconn *c, const char *after);

/* Reads the check's reply `chk` (NULL for none) for the n entries of a
 * batch: verdict[i] becomes 1 if entry i's result key exists, 0 if not,
 * -1 where the reply does not say (then check it otherwise). */
void conc__dist_check_apply(const struct redisReply *chk,
                            const struct redisReply *entries, size_t n,
                            signed char *verdict);

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
 * cancels it there, which kills that process (monitor.c); only if the
 * slot still runs the task of stream entry `entry`. */
void conc__dist_stop_task(conc_dist_worker *w, size_t i, const char *entry);

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
