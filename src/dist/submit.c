/* Submitting tasks and shutting the Redis executor down (conc/dist.h; the
 * design is in executor.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/executor_internal.h"

/* How long the watcher may take to notice it should end: its XREAD blocks
 * this long at most (watcher.c), plus a connection attempt. */
#define STOP_TIMEOUT_S 30.0

static double
seconds_left(int64_t deadline)
{
    if (deadline == CONC__FOREVER)
        return CONC_FOREVER;
    int64_t left = deadline - conc__now_ns();
    return left > 0 ? (double)left / 1e9 : 0;
}

/* Takes a slot of max_in_flight and a sequence number, waiting for room
 * until `deadline`. */
static int
take_slot(conc_dist_executor *dx, int64_t deadline, uint64_t *seq)
{
    int r = 0;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    while (!dx->closed && dx->in_flight >= dx->max_in_flight && r == 0)
        if (conc_cond_wait(dx->cond, seconds_left(deadline)) == CONC_ETIMEDOUT)
            r = CONC_ETIMEDOUT;
    if (dx->closed)
        r = CONC_ECLOSED;
    if (r == 0) {
        dx->in_flight++;
        *seq = dx->next_seq++;
    }
    conc_cond_release(dx->cond);
    return r;
}

static void
insert(conc_dist_executor *dx, struct conc__dist_job *j)
{
    size_t b =
        (size_t)(j->seq * 0x9E3779B97F4A7C15ull >> 32) & (dx->nbuckets - 1);
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    j->dx = dx;
    j->next = dx->table[b];
    dx->table[b] = j;
    conc_cond_release(dx->cond);
}

/* XADDs the task, reconnecting until `deadline` if the server goes away
 * (a task added twice is harmless: both copies share one task id, so one
 * result key, and the second result written loses). */
static int
xadd(conc_dist_executor *dx, uint64_t seq, const char *name, const void *arg,
     size_t len, int64_t deadline)
{
    char id[CONC__DIST_NAME_MAX + 24], ttl[24], lim[24];
    snprintf(id, sizeof id, "%s:%" PRIu64, dx->sub, seq);
    snprintf(ttl, sizeof ttl, "%" PRIu64, dx->ttl_ms);
    snprintf(lim, sizeof lim, "%" PRIu64, dx->lim_ms);
    /* The argument is bytes: set after the lengths of the strings. */
    const char *argv[] = {"XADD", dx->k_tasks, "*",   "id",    id,
                          "fn",   name,        "sub", dx->sub, "ttl",
                          ttl,    "lim",       lim,   "arg",   ""};
    size_t lens[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        lens[i] = strlen(argv[i]);
    argv[14] = len ? (const char *)arg : "";
    lens[14] = len;
    redisReply *rep = NULL;
    conc_lock_acquire(dx->cmd_lock, CONC_FOREVER);
    int r = conc__rconn_cmd(&dx->cmd, deadline, 1, &rep, 15, argv, lens);
    conc_lock_release(dx->cmd_lock);
    if (r == 0 && rep->type != REDIS_REPLY_STRING)
        r = CONC_EPROTO;
    if (rep)
        freeReplyObject(rep);
    return r;
}

int
conc_dist_submit(conc_dist_executor *dx, const char *name, const void *arg,
                 size_t len, double timeout, conc_future **out)
{
    int64_t deadline;
    if (!dx || !name || !out || (!arg && len))
        return CONC_EINVAL;
    if (!conc__dist_name_ok(name, strlen(name)))
        return CONC_EINVAL;
    int r = conc__deadline(timeout, &deadline);
    if (r < 0)
        return r;
    struct conc__dist_job *j = conc__calloc(1, sizeof *j);
    if (!j)
        return CONC_ENOMEM;
    uint64_t seq = 0;
    if ((r = take_slot(dx, deadline, &seq)) < 0) {
        conc__free(j);
        return r;
    }
    conc__future_reset(&j->f, &conc__dist_future_ops, 2);
    j->seq = seq;
    insert(dx, j);
    if ((r = xadd(dx, seq, name, arg, len, deadline)) < 0) {
        if (conc__dist_take(dx, seq) == j)
            conc_future_free(&j->f);
        conc_future_free(&j->f);
        return r;
    }
    *out = &j->f;
    return 0;
}

/* Cancels every job still in the table (see claim_cancelled). */
static void
cancel_all(conc_dist_executor *dx)
{
    for (;;) {
        struct conc__dist_job *j = NULL;
        conc_cond_acquire(dx->cond, CONC_FOREVER);
        for (size_t b = 0; b < dx->nbuckets && !j; b++)
            j = dx->table[b];
        uint64_t seq = j ? j->seq : 0;
        conc_cond_release(dx->cond);
        if (!j)
            return;
        int won;
        conc__dist_claim_cancelled(dx, &j, 1, &won);
        if ((j = conc__dist_take(dx, seq)) != NULL) {
            /* Claimed or not (the server may be gone), the executor stops
             * watching: the future ends cancelled. */
            conc__future_cancel_pending(&j->f);
            conc_future_free(&j->f);
        }
    }
}

int
conc_dist_shutdown(conc_dist_executor *dx, int wait, int cancel_futures,
                   double timeout)
{
    int64_t deadline;
    if (!dx || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    dx->closed = 1;
    conc_cond_notify_all(dx->cond);
    conc_cond_release(dx->cond);
    if (cancel_futures)
        cancel_all(dx);
    if (!wait)
        return 0;
    int r = 0;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    while (dx->in_flight > 0 && r == 0)
        if (conc_cond_wait(dx->cond, seconds_left(deadline)) == CONC_ETIMEDOUT)
            r = dx->in_flight > 0 ? CONC_ETIMEDOUT : 0;
    conc_cond_release(dx->cond);
    return r;
}

void
conc_dist_executor_free(conc_dist_executor *dx)
{
    if (!dx)
        return;
    conc_dist_shutdown(dx, 0, 1, 0);
    atomic_store(&dx->stopping, 1);
    /* Wakes the watcher's XREAD with an entry of its own; without a
     * connection it notices within its block time. */
    redisReply *rep = NULL;
    int64_t deadline = conc__now_ns() + (int64_t)1e9;
    conc_lock_acquire(dx->cmd_lock, CONC_FOREVER);
    if (dx->cmd.ctx && conc__rconn_cmdf(&dx->cmd, deadline, 0, &rep,
                                        "XADD %s * stop 1", dx->k_done) == 0)
        freeReplyObject(rep);
    conc_lock_release(dx->cmd_lock);
    if (dx->watcher) {
        if (conc_thread_join(dx->watcher, STOP_TIMEOUT_S, NULL) < 0)
            conc__panic("dist: the result watcher did not stop");
        conc_thread_free(dx->watcher);
    }
    conc__dist_free_executor(dx);
}
