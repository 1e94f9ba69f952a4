/* The Redis executor's state, shared by executor.c (submit, cancel,
 * shutdown) and watcher.c (the thread that completes futures).
 *
 * Lock order: cmd_lock, then cond's lock, then a future's lock. Neither is
 * held while a future's callbacks run (they run in conc_future_set_* after
 * the job left the table). */
#ifndef CONC_DIST_EXECUTOR_INTERNAL_H
#define CONC_DIST_EXECUTOR_INTERNAL_H

#include <stdatomic.h>

#include "conc/sync.h"
#include "conc/thread.h"
#include "dist/dist_internal.h"
#include "future/future_internal.h"

/* A submitted task: its future first (the block the future's release
 * frees), then what the executor needs to find it again. */
struct conc__dist_job {
    conc_future f;
    uint64_t seq;
    struct conc__dist_job *next; /* in the table; guarded by cond */
    /* The executor while in its table, NULL once out (written under
     * cond; read without it by the cancel hook, to find the executor). */
    _Atomic(conc_dist_executor *) dx;
    char entry[CONC__DIST_ENTRY_MAX]; /* its stream entry id, once added
                                         ("" before; cond) */
};

struct conc_dist_executor {
    char *queue;
    char sub[CONC__DIST_NAME_MAX + 1]; /* this submitter's id */
    char *k_tasks, *k_done, *k_res;    /* keys; k_res ends in "res:" */
    char *k_lost;                      /* deleted entries' notices */
    uint64_t ttl_ms, lim_ms;

    conc_lock *cmd_lock;      /* guards cmd */
    struct conc__rconn cmd;   /* submits and cancels */
    struct conc__rconn watch; /* the watcher thread's own */

    conc_cond *cond; /* guards the fields below */
    struct conc__dist_job **table;
    size_t nbuckets; /* a power of two */
    size_t in_flight, max_in_flight;
    uint64_t next_seq;
    int closed;
    _Atomic int stopping; /* the watcher should end */
    /* The limit of the watcher's connection (conc__rconn.limit):
     * CONC__FOREVER, then the time of the free, so that the watcher's
     * calls after it end within CONC__DIST_LATE_NS, answered or not. */
    _Atomic int64_t end_ns;
    conc_thread *watcher;
    /* Tasks whose XADD was not acknowledged in time, for the watcher to
     * send again (resend.c). */
    struct conc__dist_resend *resend;
};

/* The table's bucket of sequence number `seq` (Fibonacci hashing). */
static inline size_t
conc__dist_bucket(const conc_dist_executor *dx, uint64_t seq)
{
    return (size_t)(seq * 0x9E3779B97F4A7C15ull >> 32) & (dx->nbuckets - 1);
}

/* The watcher thread (watcher.c): reads the done stream and completes
 * futures until dx->stopping. */
int conc__dist_watcher_main(void *arg);

/* Takes the job for `seq` out of the table (NULL if absent), releasing its
 * slot of max_in_flight. The caller then owns the executor's reference. */
struct conc__dist_job *conc__dist_take(conc_dist_executor *dx, uint64_t seq);

/* Completes a job taken out of the table with the result value `v` (len
 * bytes) and drops the executor's reference. */
void conc__dist_complete(struct conc__dist_job *j, const void *v, size_t len);

/* Takes out of the table the job whose task is stream entry `entry`, or
 * returns NULL (an O(n) search: for the rare lost entry). */
struct conc__dist_job *conc__dist_take_entry(conc_dist_executor *dx,
                                             const char *entry, size_t len);

/* XADDs sent in one round trip at most (submit.c). */
#define CONC__DIST_BATCH_MAX 256

/* Task arguments to submit: either `size` bytes each from `base`, or
 * (when ptrs is set) lens[i] bytes at ptrs[i]. */
struct conc__dist_items {
    const char *base;
    size_t size;
    const void *const *ptrs;
    const size_t *lens;
};

/* Submits `count` tasks of `name` (submit.c), pipelined in batches,
 * waiting for room in max_in_flight until `room_deadline` and for the
 * server until `deadline` (both monotonic ns). out[0..*done) receive the
 * futures of those submitted, also on failure. With `keep`, a batch the
 * server did not acknowledge in time (it may or may not have its tasks)
 * counts as submitted: its futures go to `out` and the watcher sends its
 * tasks again (resend.c), and the error is still returned. Without it,
 * such a batch is not submitted: the watcher claims its tasks' result
 * keys (conc__dist_claim_add), so that none runs. Returns 0 or an error
 * of conc_dist_submit. */
int conc__dist_submit_items(conc_dist_executor *dx, const char *name,
                            const struct conc__dist_items *it, size_t count,
                            int64_t room_deadline, int64_t deadline, int keep,
                            conc_future **out, size_t *done);

/* Appends the XADD of task `seq` to `c` (submit.c). Returns 0 or an
 * error (then nothing is appended). */
int conc__dist_append_xadd(conc_dist_executor *dx, struct conc__rconn *c,
                           uint64_t seq, const char *name, const void *arg,
                           size_t len);

/* ---- Tasks sent again (resend.c) ----------------------------------------
 *
 * A map's batch of XADDs whose replies did not come within the caller's
 * timeout may be in Redis or not. Its futures stay in the table and the
 * map goes on; a copy of each task is kept here, and the watcher XADDs it
 * again on its own connection (one task added twice is harmless: both
 * copies share a task id, so one result key, and the first result wins).
 * A copy whose job has left the table (completed or cancelled) is dropped
 * unsent. */

/* Keeps a copy of task `seq` (copies name and arg). Returns 0 or
 * CONC_ENOMEM. Takes cond. */
int conc__dist_resend_add(conc_dist_executor *dx, uint64_t seq,
                          const char *name, const void *arg, size_t len);

/* Keeps task `seq` for the watcher to claim its result key with "c"
 * (NX), as a cancel does: the task of a submit that failed after sending
 * it, whose job stays in the table, holding its slot of max_in_flight,
 * until the claim is made (the job is then cancelled, with no one to see
 * it) or its result comes. Returns 0 or CONC_ENOMEM. Takes cond. */
int conc__dist_claim_add(conc_dist_executor *dx, uint64_t seq);

/* Sends the kept tasks and claims on dx->watch (connected) by `deadline`; those
 * not acknowledged stay for the next call. The watcher thread. */
void conc__dist_resend_run(conc_dist_executor *dx, int64_t deadline);

/* Frees the copies left (the watcher joined). */
void conc__dist_resend_free(conc_dist_executor *dx);

/* The hooks of the executor's futures (executor.c). */
extern const struct conc__future_ops conc__dist_future_ops;

/* Claims the result keys of `n` jobs with "c" (NX), so that no worker's
 * result can complete them; won[i] says whether the claim of jobs[i] won
 * (none did if the server could not be reached in time). Takes cmd_lock. */
void conc__dist_claim_cancelled(conc_dist_executor *dx,
                                struct conc__dist_job **jobs, size_t n,
                                int *won);

/* Cancels the futures fs[0..n) of dx's submits, as conc_future_cancel
 * would one by one, but within one bound on the wait for the server in
 * all (a map freed while the server is gone must not wait for it once
 * per task). A future already done or being completed is left alone. */
void conc__dist_cancel_many(conc_dist_executor *dx, conc_future **fs, size_t n);

/* Frees what the executor owns (its thread already joined). */
void conc__dist_free_executor(conc_dist_executor *dx);

#endif
