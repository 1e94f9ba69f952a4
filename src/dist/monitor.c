/* A Redis worker's monitor thread: what the serving threads cannot do
 * while they run a task.
 *   - Heartbeats: XCLAIM ... JUSTID of each running task's entry, to this
 *     worker itself, resets its idle time well within reclaim_idle, so no
 *     other worker takes a long task over (JUSTID leaves the delivery
 *     count alone); the same for the held tasks, not started yet.
 *     An entry the heartbeat finds gone was deleted under the task: its
 *     future fails with CONC_EBROKEN and the task is cancelled.
 *   - Cancellation: a running task whose result key appeared (the
 *     submitter claimed it with "c") gets its cancel token raised; one
 *     running in a worker process (conc_dist_worker_opts.processes) is
 *     killed with that process instead, which the pool replaces.
 *   - Time limits: a task past its limit gets its token raised and its
 *     future failed with CONC_ETIMEDOUT now (the task's own result, later,
 *     loses to that one).
 *   - The worker's "last seen" time in the queue's workers hash, for the
 *     status call. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/worker_internal.h"
#include "unix/platform.h"

/* The monitor looks at the slots this often at most (cancellation and
 * time limits are seen within it). */
#define TICK_NS  (100 * 1000 * 1000LL)
#define ROUND_NS (2000 * 1000 * 1000LL)

struct seen {
    int busy;
    char entry[64];
    char res_key[CONC__DIST_NAME_MAX * 2 + 32];
    char consumer[CONC__DIST_NAME_MAX + 16];
    struct conc__dist_task t;
    char id[CONC__DIST_NAME_MAX + 1], sub[CONC__DIST_NAME_MAX + 1];
    int over_limit;
};

/* Copies slot i under its lock; marks it timed out if over its limit. */
static void
look(conc_dist_worker *w, size_t i, struct seen *v)
{
    struct conc__dist_slot *s = &w->slots[i];
    conc__lockword_acquire(&s->lock, CONC__FOREVER, 0);
    v->busy = s->busy;
    v->over_limit = 0;
    if (s->busy) {
        memcpy(v->entry, s->entry, sizeof v->entry);
        memcpy(v->res_key, s->res_key, sizeof v->res_key);
        memcpy(v->consumer, s->consumer, sizeof v->consumer);
        memcpy(v->id, s->id, sizeof v->id);
        memcpy(v->sub, s->sub, sizeof v->sub);
        v->t = (struct conc__dist_task){.id = v->id,
                                        .id_len = strlen(v->id),
                                        .sub = v->sub,
                                        .sub_len = strlen(v->sub),
                                        .ttl_ms = s->ttl_ms};
        if (s->limit_ns && !s->timed_out && conc__now_ns() >= s->limit_ns) {
            s->timed_out = v->over_limit = 1;
        }
    }
    conc__lockword_release(&s->lock, 0);
}

void
conc__dist_stop_task(conc_dist_worker *w, size_t i, const char *entry)
{
    struct conc__dist_slot *s = &w->slots[i];
    conc__lockword_acquire(&s->lock, CONC__FOREVER, 0);
    /* The monitor decided on a copy of the slot: the task may have ended
     * since, and the thread started the next, which must not be stopped. */
    if (s->busy && strcmp(s->entry, entry) == 0) {
        atomic_store(&s->cancel, 1);
        /* The pool was made with cancel_kills: this kills the process. */
        if (s->pool_f)
            conc_future_cancel(s->pool_f);
    }
    conc__lockword_release(&s->lock, 0);
}

/* Fails a running task's future now with `code` and `msg`. */
static void
fail_task(conc_dist_worker *w, struct conc__rconn *c, const struct seen *v,
          int code, const char *msg)
{
    conc_buf val = CONC_BUF_INIT;
    if (conc__dist_result_encode(&val, code, msg, strlen(msg)) == 0)
        conc__dist_finish(w, c, &v->t, v->entry, &val,
                          conc__now_ns() + ROUND_NS);
    conc_buf_free(&val);
}

/* Heartbeat and cancel check for one running task. */
static void
watch_one(conc_dist_worker *w, size_t i, struct conc__rconn *c,
          const struct seen *v, int beat)
{
    int64_t deadline = conc__now_ns() + ROUND_NS;
    redisReply *rep = NULL;
    if (beat && conc__rconn_cmdf(
                    c, deadline, 0, &rep, "XCLAIM %s %s %s 0 %s JUSTID",
                    w->k_tasks, CONC__DIST_GROUP, v->consumer, v->entry) == 0) {
        /* Nothing claimed: the entry is no longer pending. Either the task
         * just finished (its result is written, and this one loses) or its
         * entry was deleted, which Redis 7's XCLAIM also drops from the
         * pending list: the future fails, then the task is stopped (its
         * own result, written later, loses). */
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 0) {
            fail_task(w, c, v, CONC_EBROKEN, CONC__DIST_DELETED_MSG);
            conc__dist_stop_task(w, i, v->entry);
        }
        freeReplyObject(rep);
    }
    if (conc__rconn_cmdf(c, deadline, 0, &rep, "EXISTS %s", v->res_key) == 0) {
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
            conc__dist_stop_task(w, i, v->entry);
        freeReplyObject(rep);
    }
}

/* Renews the claims of the worker's held tasks (not started yet), one
 * XCLAIM ... JUSTID per consumer they are pending with. An entry gone
 * meanwhile is left to the serving thread: the check before it starts
 * finds it, or its finish fails (nothing to acknowledge). */
#define XCLAIM_ARGS 6 /* XCLAIM key group consumer 0 ... JUSTID */

static void
beat_held(conc_dist_worker *w, struct conc__rconn *c)
{
    for (size_t i = 0; i < w->nthreads; i++) {
        char(*ids)[CONC__DIST_ENTRY_MAX] = NULL;
        size_t n = conc__dist_held_ids(w, i, &ids);
        const char **a = n ? conc__calloc(n + XCLAIM_ARGS, sizeof *a) : NULL;
        size_t *l = n ? conc__calloc(n + XCLAIM_ARGS, sizeof *l) : NULL;
        if (a && l) {
            size_t k = 0;
            a[k++] = "XCLAIM";
            a[k++] = w->k_tasks;
            a[k++] = CONC__DIST_GROUP;
            a[k++] = w->slots[i].consumer;
            a[k++] = "0";
            for (size_t j = 0; j < n; j++)
                a[k++] = ids[j];
            a[k++] = "JUSTID";
            for (size_t j = 0; j < k; j++)
                l[j] = strlen(a[j]);
            redisReply *rep = NULL;
            if (conc__rconn_cmd(c, conc__now_ns() + ROUND_NS, 0, &rep, (int)k,
                                a, l) == 0)
                freeReplyObject(rep);
        }
        conc__free(ids);
        conc__free(a);
        conc__free(l);
    }
}

void
conc__dist_mark_seen(conc_dist_worker *w, struct conc__rconn *c)
{
    redisReply *rep = NULL;
    if (conc__rconn_cmdf(c, conc__now_ns() + ROUND_NS, 0, &rep,
                         "EVAL %s 1 %s %s",
                         "local t = redis.call('TIME')\n"
                         "redis.call('HSET', KEYS[1], ARGV[1],"
                         " t[1] * 1000 + math.floor(t[2] / 1000))",
                         w->k_workers, w->name) == 0)
        freeReplyObject(rep);
}

int
conc__dist_monitor_main(void *arg)
{
    conc_dist_worker *w = arg;
    struct conc__rconn c;
    if (conc__rconn_init(&c, w->address, w->password, w->connect_timeout) < 0)
        return 0; /* the serving threads report the same error */
    c.limit = &w->end_ns;
    int64_t beat_every = w->reclaim_idle_ms * 1000000 / 3;
    int64_t next_beat = 0;
    while (!atomic_load(&w->stop)) {
        conc__poll_until(NULL, 0, conc__now_ns() + TICK_NS);
        if (conc__rconn_ensure(&c, conc__now_ns() + ROUND_NS) < 0)
            continue;
        int beat = conc__now_ns() >= next_beat;
        if (beat) {
            next_beat = conc__now_ns() + beat_every;
            conc__dist_mark_seen(w, &c);
        }
        /* The stop is seen between two calls, each bounded by the end
         * of the run (conc__rconn.limit), not after a whole round. */
        for (size_t i = 0; i < w->nthreads && !atomic_load(&w->stop); i++) {
            struct seen v;
            look(w, i, &v);
            if (v.over_limit) {
                /* The failure first, so the task's own outcome, once it
                 * stops, loses to it. */
                fail_task(w, &c, &v, CONC_ETIMEDOUT,
                          "the task ran past its time limit");
                conc__dist_stop_task(w, i, v.entry);
            } else if (v.busy)
                watch_one(w, i, &c, &v, beat);
        }
        if (beat && !atomic_load(&w->stop))
            beat_held(w, &c);
    }
    conc__rconn_fini(&c);
    return 0;
}
