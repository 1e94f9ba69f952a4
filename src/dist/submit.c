/* Submitting tasks and shutting the Redis executor down (conc/dist.h; the
 * design is in executor.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/executor_internal.h"
#include "dist/trace.h"

/* How long a shutdown's cancel waits for the server, in all. */
#define CANCEL_TIMEOUT_S 2.0

static double
seconds_left(int64_t deadline)
{
    if (deadline == CONC__FOREVER)
        return CONC_FOREVER;
    int64_t left = deadline - conc__now_ns();
    return left > 0 ? (double)left / 1e9 : 0;
}

/* XADDs sent in one round trip at most. */
#define BATCH_MAX CONC__DIST_BATCH_MAX

/* Takes up to `want` slots of max_in_flight (at least one, waiting for
 * room until `deadline`), with consecutive sequence numbers from *first. */
static int
take_slots(conc_dist_executor *dx, int64_t deadline, size_t want,
           uint64_t *first, size_t *got)
{
    int r = 0;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    while (!dx->closed && dx->in_flight >= dx->max_in_flight && r == 0)
        if (conc_cond_wait(dx->cond, seconds_left(deadline)) == CONC_ETIMEDOUT)
            r = CONC_ETIMEDOUT;
    if (dx->closed)
        r = CONC_ECLOSED;
    if (r == 0) {
        size_t room = dx->max_in_flight - dx->in_flight;
        *got = want < room ? want : room;
        dx->in_flight += *got;
        *first = dx->next_seq;
        dx->next_seq += *got;
    }
    conc_cond_release(dx->cond);
    return r;
}

static void
release_slots(conc_dist_executor *dx, size_t n)
{
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    dx->in_flight -= n;
    conc_cond_notify_all(dx->cond);
    conc_cond_release(dx->cond);
}

static void
insert(conc_dist_executor *dx, struct conc__dist_job *j)
{
    size_t b =
        (size_t)(j->seq * 0x9E3779B97F4A7C15ull >> 32) & (dx->nbuckets - 1);
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    atomic_store(&j->dx, dx);
    j->next = dx->table[b];
    dx->table[b] = j;
    conc_cond_release(dx->cond);
}

/* Item i of `it`: its bytes and their length. */
static const void *
item_at(const struct conc__dist_items *it, size_t i, size_t *len)
{
    if (it->ptrs) {
        *len = it->lens[i];
        return it->ptrs[i];
    }
    *len = it->size;
    return it->base + i * it->size;
}

/* The items from item `skip` on. */
static struct conc__dist_items
items_from(const struct conc__dist_items *it, size_t skip)
{
    struct conc__dist_items r = *it;
    if (it->ptrs) {
        r.ptrs += skip;
        r.lens += skip;
    } else {
        r.base += skip * it->size;
    }
    return r;
}

int
conc__dist_append_xadd(conc_dist_executor *dx, struct conc__rconn *c,
                       uint64_t seq, const char *name, const void *arg,
                       size_t len)
{
    char id[CONC__DIST_NAME_MAX + 24], ttl[24], lim[24];
    snprintf(id, sizeof id, "%s:%" PRIu64, dx->sub, seq);
    CONC__DIST_TRACE("submit", id, strlen(id));
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
    return conc__rconn_append(c, 15, argv, lens);
}

/* Sends and reads the XADDs of n tasks from sequence `first` in one round
 * trip. Returns 0 or an error; the connection is dropped on failure. */
static int
pipeline_xadds(conc_dist_executor *dx, const char *name,
               const struct conc__dist_items *it, struct conc__dist_job **jobs,
               uint64_t first, size_t n, int64_t deadline, redisReply **reps)
{
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        size_t len;
        const void *arg = item_at(it, i, &len);
        r = conc__dist_append_xadd(dx, &dx->cmd, first + i, name, arg, len);
    }
    if (r == 0)
        r = conc__rconn_pipeline(&dx->cmd, deadline, n, reps);
    else
        conc__rconn_close(&dx->cmd);
    if (r < 0)
        return r;
    conc_cond_acquire(dx->cond, CONC_FOREVER); /* guards jobs' entry */
    for (size_t i = 0; i < n; i++)
        if (reps[i]->type == REDIS_REPLY_STRING)
            snprintf(jobs[i]->entry, sizeof jobs[i]->entry, "%s", reps[i]->str);
    conc_cond_release(dx->cond);
    for (size_t i = 0; i < n; i++) {
        int e = conc__reply_transient(reps[i]);
        if (e < 0 && r == 0)
            r = e; /* a server still loading its data: again */
        else if (reps[i]->type != REDIS_REPLY_STRING && r == 0)
            r = CONC_EPROTO;
        freeReplyObject(reps[i]);
    }
    return r;
}

/* XADDs the tasks, reconnecting until `deadline` if the server goes away
 * (a task added twice is harmless: both copies share one task id, so one
 * result key, and the second result written loses). */
static int
send_batch(conc_dist_executor *dx, const char *name,
           const struct conc__dist_items *it, struct conc__dist_job **jobs,
           uint64_t first, size_t n, int64_t deadline)
{
    redisReply *reps[BATCH_MAX];
    /* Within the deadline: another thread may hold the connection for
     * as long as its own, longer, timeout. */
    int r = conc_lock_acquire(dx->cmd_lock, seconds_left(deadline));
    if (r < 0)
        return r;
    for (;;) {
        r = conc__rconn_ensure(&dx->cmd, deadline);
        if (r == 0)
            r = pipeline_xadds(dx, name, it, jobs, first, n, deadline, reps);
        if (r == 0 || r == CONC_EAUTH || r == CONC_EPROTO ||
            conc__now_ns() >= deadline)
            break;
        conc__rconn_fail(&dx->cmd, r);
    }
    conc_lock_release(dx->cmd_lock);
    return r;
}

/* Keeps the tasks of a batch that failed with `err` for the watcher to
 * send again, unless sending again cannot help (a wrong password, a reply
 * that is not an entry id). Returns 0, or an error if it kept nothing
 * usable (the copies kept are dropped unsent once their jobs leave). */
static int
keep_batch(conc_dist_executor *dx, const char *name,
           const struct conc__dist_items *it, uint64_t first, size_t n, int err)
{
    if (err == CONC_EAUTH || err == CONC_EPROTO || err == CONC_ENOMEM)
        return err;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const void *arg = item_at(it, i, &len);
        int r = conc__dist_resend_add(dx, first + i, name, arg, len);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Drops the jobs of a batch that failed with `err` (their futures are
 * not handed out). The server may have some of its tasks all the same
 * (a reply that did not come in time, a connection lost after the
 * send): each stays in the table for the watcher to claim its result
 * key, so that no worker runs it (a worker that started it sees it
 * cancelled). Without memory for that, or when nothing was sent (a
 * wrong password), the job leaves the table now. */
static void
drop_batch(conc_dist_executor *dx, struct conc__dist_job **jobs, uint64_t first,
           size_t n, int err)
{
    for (size_t i = 0; i < n; i++) {
        if (err == CONC_EAUTH || conc__dist_claim_add(dx, first + i) < 0) {
            if (conc__dist_take(dx, first + i) == jobs[i])
                conc_future_free(&jobs[i]->f);
        }
        conc_future_free(&jobs[i]->f); /* the caller's reference */
    }
}

int
conc__dist_submit_items(conc_dist_executor *dx, const char *name,
                        const struct conc__dist_items *it, size_t count,
                        int64_t room_deadline, int64_t deadline, int keep,
                        conc_future **out, size_t *done)
{
    struct conc__dist_job *jobs[BATCH_MAX];
    *done = 0;
    while (*done < count) {
        size_t want = count - *done < BATCH_MAX ? count - *done : BATCH_MAX;
        size_t got = 0, made = 0;
        uint64_t first;
        int r = take_slots(dx, room_deadline, want, &first, &got);
        if (r < 0)
            return r;
        for (; made < got; made++)
            if (!(jobs[made] = conc__calloc(1, sizeof *jobs[made])))
                break;
        if (made < got) {
            while (made)
                conc__free(jobs[--made]);
            release_slots(dx, got);
            return CONC_ENOMEM;
        }
        for (size_t i = 0; i < got; i++) {
            conc__future_reset(&jobs[i]->f, &conc__dist_future_ops, 2);
            jobs[i]->seq = first + i;
            insert(dx, jobs[i]);
        }
        struct conc__dist_items batch = items_from(it, *done);
        if ((r = send_batch(dx, name, &batch, jobs, first, got, deadline)) <
            0) {
            if (keep && keep_batch(dx, name, &batch, first, got, r) == 0) {
                for (size_t i = 0; i < got; i++)
                    out[*done + i] = &jobs[i]->f;
                *done += got;
                return r;
            }
            drop_batch(dx, jobs, first, got, r);
            return r;
        }
        for (size_t i = 0; i < got; i++)
            out[*done + i] = &jobs[i]->f;
        *done += got;
    }
    return 0;
}

int
conc_dist_submit(conc_dist_executor *dx, const char *name, const void *arg,
                 size_t len, double timeout, conc_future **out)
{
    int64_t deadline;
    if (!dx || !name || !out || (!arg && len) ||
        !conc__dist_name_ok(name, strlen(name)) ||
        conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    size_t done;
    struct conc__dist_items it = {.base = arg, .size = len};
    return conc__dist_submit_items(dx, name, &it, 1, deadline, deadline, 0, out,
                                   &done);
}

int
conc_dist_submit_many(conc_dist_executor *dx, const char *name,
                      const conc_items *items, double timeout,
                      conc_future **out, size_t *submitted)
{
    int64_t deadline;
    if (!dx || !name || !items || !out || !submitted || items->next ||
        (!items->base && items->count) || !items->size ||
        !conc__dist_name_ok(name, strlen(name)) ||
        conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__dist_items it = {.base = items->base, .size = items->size};
    return conc__dist_submit_items(dx, name, &it, items->count, deadline,
                                   deadline, 0, out, submitted);
}

/* Takes every job out of the table, into a list through `next`. */
static struct conc__dist_job *
take_all(conc_dist_executor *dx)
{
    struct conc__dist_job *all = NULL;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    for (size_t b = 0; b < dx->nbuckets; b++)
        while (dx->table[b]) {
            struct conc__dist_job *j = dx->table[b];
            dx->table[b] = j->next;
            atomic_store(&j->dx, NULL);
            j->next = all;
            all = j;
            dx->in_flight--;
        }
    conc_cond_notify_all(dx->cond);
    conc_cond_release(dx->cond);
    return all;
}

/* Claims the result keys of the jobs in `all` with "c", pipelined, by
 * `deadline`: a worker then skips those tasks. Best effort: the server
 * may be gone, and the futures end cancelled all the same. */
static void
claim_all(conc_dist_executor *dx, struct conc__dist_job *all, int64_t deadline)
{
    redisReply *reps[BATCH_MAX];
    if (conc_lock_acquire(dx->cmd_lock, seconds_left(deadline)) < 0)
        return;
    while (all && conc__rconn_ensure(&dx->cmd, deadline) == 0) {
        size_t n = 0;
        int r = 0;
        for (; all && n < BATCH_MAX && r == 0; all = all->next, n++)
            r = conc__rconn_appendf(&dx->cmd,
                                    "SET %s%s:%" PRIu64 " c NX PX %" PRIu64,
                                    dx->k_res, dx->sub, all->seq, dx->ttl_ms);
        if (r < 0)
            conc__rconn_close(&dx->cmd);
        if (r < 0 || conc__rconn_pipeline(&dx->cmd, deadline, n, reps) < 0)
            break;
        while (n)
            freeReplyObject(reps[--n]);
    }
    conc_lock_release(dx->cmd_lock);
}

/* Cancels every job still in flight, claiming their results by
 * `deadline`. */
static void
cancel_all(conc_dist_executor *dx, int64_t deadline)
{
    struct conc__dist_job *all = take_all(dx);
    claim_all(dx, all, deadline);
    while (all) {
        struct conc__dist_job *j = all;
        all = j->next;
        conc__future_cancel_pending(&j->f);
        conc_future_free(&j->f);
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
    if (cancel_futures) {
        /* The claims share the call's timeout, within the cancel's own
         * bound: the futures end cancelled whether they are made or not. */
        int64_t claim = conc__now_ns() + (int64_t)(CANCEL_TIMEOUT_S * 1e9);
        cancel_all(dx, claim < deadline ? claim : deadline);
    }
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

/* Wakes the watcher's XREAD with an entry of its own, without waiting
 * for the server's reply (the connection is closed right after): a
 * server that hangs costs nothing here. Holds cmd_lock. */
static void
wake_watcher(conc_dist_executor *dx)
{
    /* The stream expires as the workers' notices make it, since no
     * watcher deletes this entry. */
    if (dx->cmd.ctx &&
        conc__rconn_appendf(&dx->cmd, "XADD %s * stop 1", dx->k_done) == 0 &&
        conc__rconn_appendf(&dx->cmd, "PEXPIRE %s %" PRIu64, dx->k_done,
                            dx->ttl_ms) == 0)
        conc__rconn_send(&dx->cmd, conc__now_ns());
}

void
conc_dist_executor_free(conc_dist_executor *dx)
{
    if (!dx)
        return;
    /* The watcher ends at its next look at `stopping`, and its calls to
     * the server from now on end within CONC__DIST_LATE_NS (its
     * connection's limit): it stops in bounded time, while the claims
     * below are made, whatever the server does. */
    atomic_store(&dx->end_ns, conc__now_ns());
    atomic_store(&dx->stopping, 1);
    conc_dist_shutdown(dx, 0, 1, CANCEL_TIMEOUT_S);
    conc_lock_acquire(dx->cmd_lock, CONC_FOREVER);
    wake_watcher(dx);
    conc_lock_release(dx->cmd_lock);
    if (dx->watcher) {
        conc_thread_join(dx->watcher, CONC_FOREVER, NULL);
        conc_thread_free(dx->watcher);
    }
    conc__dist_free_executor(dx);
}
