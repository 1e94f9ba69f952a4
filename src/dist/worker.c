/* A Redis worker's serving threads: take a task (XREADGROUP), run the
 * registered function, write the first result and acknowledge it (the
 * finish script), in a loop; now and then take over dead workers' tasks
 * (reclaim.c). The monitor thread (monitor.c) watches what each thread
 * runs through its slot.
 *
 * A task whose result key already exists is skipped, not run: its
 * submitter cancelled it, or another worker finished it first. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/worker_internal.h"
#include "executor/executor_internal.h"

/* How long one XREADGROUP blocks: the longest a stop waits for an idle
 * thread. */
#define BLOCK_MS "500"
/* The deadline of one round trip that may block that long. */
#define ROUND_NS (2000 * 1000 * 1000LL)
/* How long a worker keeps trying to write a result before it gives the
 * task up to be reclaimed and run again. */
#define FINISH_TIMEOUT_NS (30 * 1000 * 1000 * 1000LL)

void
conc__dist_keyf(char *buf, size_t size, const char *queue, const char *fmt, ...)
{
    int n = snprintf(buf, size, "{conc:%s}:", queue);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < size)
        vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
}

int
conc__dist_finish(conc_dist_worker *w, struct conc__rconn *c,
                  const struct conc__dist_task *t, const char *entry,
                  const conc_buf *value, int64_t deadline)
{
    char res[CONC__DIST_NAME_MAX * 2 + 32], done[CONC__DIST_NAME_MAX * 2 + 32];
    char ttl[24];
    conc__dist_keyf(res, sizeof res, w->queue, "res:%.*s", (int)t->id_len,
                    t->id);
    conc__dist_keyf(done, sizeof done, w->queue, "done:%.*s", (int)t->sub_len,
                    t->sub);
    snprintf(ttl, sizeof ttl, "%" PRIu64, t->ttl_ms);
    /* The result value and the task id are bytes: set after the lengths
     * of the strings are taken. */
    const char *argv[] = {
        "EVAL", conc__dist_finish_lua, "3", res, done, w->k_tasks, "", ttl, "",
        entry,  CONC__DIST_GROUP};
    size_t lens[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        lens[i] = strlen(argv[i]);
    argv[6] = value->len ? (const char *)value->data : "";
    lens[6] = value->len;
    argv[8] = t->id;
    lens[8] = t->id_len;
    redisReply *rep = NULL;
    int r = conc__rconn_cmd(c, deadline, 1, &rep, 11, argv, lens);
    if (r == 0) {
        if (rep->type == REDIS_REPLY_ERROR)
            r = CONC_EPROTO;
        freeReplyObject(rep);
    }
    return r;
}

/* Acknowledges and deletes an entry that is not to run. */
static int
drop_entry(conc_dist_worker *w, struct conc__rconn *c, const char *entry)
{
    int64_t deadline = conc__now_ns() + ROUND_NS;
    redisReply *rep = NULL;
    int r = conc__rconn_cmdf(c, deadline, 1, &rep, "XACK %s %s %s", w->k_tasks,
                             CONC__DIST_GROUP, entry);
    if (r == 0) {
        freeReplyObject(rep);
        r = conc__rconn_cmdf(c, deadline, 1, &rep, "XDEL %s %s", w->k_tasks,
                             entry);
    }
    if (r == 0)
        freeReplyObject(rep);
    return r;
}

/* Whether the task's result key exists already (cancelled or done). */
static int
result_exists(conc_dist_worker *w, struct conc__rconn *c,
              const struct conc__dist_task *t, int *exists)
{
    redisReply *rep = NULL;
    int r =
        conc__rconn_cmdf(c, conc__now_ns() + ROUND_NS, 1, &rep,
                         "EXISTS {conc:%s}:res:%b", w->queue, t->id, t->id_len);
    if (r == 0) {
        *exists = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
        freeReplyObject(rep);
    }
    return r;
}

/* Publishes what thread `idx` runs, for the monitor; NULL entry: nothing. */
static void
set_slot(conc_dist_worker *w, size_t idx, const char *entry,
         const struct conc__dist_task *t)
{
    struct conc__dist_slot *s = &w->slots[idx];
    conc__lockword_acquire(&s->lock, CONC__FOREVER, 0);
    s->busy = entry != NULL;
    if (entry) {
        snprintf(s->entry, sizeof s->entry, "%s", entry);
        conc__dist_keyf(s->res_key, sizeof s->res_key, w->queue, "res:%.*s",
                        (int)t->id_len, t->id);
        s->limit_ns =
            t->lim_ms ? conc__now_ns() + (int64_t)t->lim_ms * 1000000 : 0;
        s->timed_out = 0;
        snprintf(s->id, sizeof s->id, "%.*s", (int)t->id_len, t->id);
        snprintf(s->sub, sizeof s->sub, "%.*s", (int)t->sub_len, t->sub);
        s->ttl_ms = t->ttl_ms;
        atomic_store(&s->cancel, 0);
    }
    conc__lockword_release(&s->lock, 0);
}

/* Publishes (or, with NULL, withdraws) the pool future of thread idx's
 * task, for the monitor to cancel. */
static void
set_pool_future(conc_dist_worker *w, size_t idx, conc_future *f)
{
    struct conc__dist_slot *s = &w->slots[idx];
    conc__lockword_acquire(&s->lock, CONC__FOREVER, 0);
    s->pool_f = f;
    conc__lockword_release(&s->lock, 0);
}

/* Runs the task in one of the worker processes and encodes its outcome.
 * A process that dies fails the task alone, with the pool's message
 * (pid and signal), and is replaced; the monitor stops a task by
 * cancelling its future, which kills its process. */
static int
run_in_pool(conc_dist_worker *w, size_t idx, conc_task_fn fn,
            const struct conc__dist_task *t, conc_buf *value)
{
    conc_future *f = NULL;
    const void *data = NULL;
    size_t len = 0;
    conc_clear_failure();
    int code = conc_executor_submit(w->pool, fn, t->arg_len ? t->arg : NULL,
                                    t->arg_len, &f);
    if (code == 0) {
        set_pool_future(w, idx, f);
        if (atomic_load(&w->slots[idx].cancel)) /* raised before: again */
            conc_future_cancel(f);
        code = conc_future_result(f, CONC_FOREVER, &data, &len);
        set_pool_future(w, idx, NULL);
    }
    int r;
    if (code >= 0) {
        r = conc__dist_result_encode(value, 0, data, len);
    } else {
        const char *msg = conc_failure_message();
        if (code == CONC_ECANCELED && !*msg)
            msg = "the task was cancelled";
        r = conc__dist_result_encode(value, code, msg, strlen(msg));
    }
    conc_future_free(f);
    return r;
}

/* Runs the task's function and encodes its outcome as a result value. */
static int
run_task(conc_dist_worker *w, size_t idx, const struct conc__dist_task *t,
         conc_buf *value)
{
    conc_task_fn fn = conc__dist_lookup(t->fn, t->fn_len);
    if (!fn) {
        char msg[CONC__DIST_NAME_MAX + 64];
        int n = snprintf(msg, sizeof msg, "no task named %.*s on worker %s",
                         (int)t->fn_len, t->fn, w->name);
        return conc__dist_result_encode(value, CONC_ENOENT, msg, (size_t)n);
    }
    if (w->pool)
        return run_in_pool(w, idx, fn, t, value);
    conc_buf arg = CONC_BUF_INIT, result = CONC_BUF_INIT;
    /* The task's own aligned copy, as task.h promises. */
    if (t->arg_len && conc_buf_append(&arg, t->arg, t->arg_len) < 0)
        return CONC_ENOMEM;
    struct conc__task_ctx ctx = {.cancel = &w->slots[idx].cancel, .fd = -1};
    conc_clear_failure();
    conc__task_enter(&ctx);
    int code = fn(t->arg_len ? arg.data : NULL, t->arg_len, &result);
    conc__task_leave();
    int r;
    if (code >= 0) {
        r = conc__dist_result_encode(value, 0, result.data, result.len);
    } else {
        const char *msg = conc_failure_message();
        r = conc__dist_result_encode(value, code, msg, strlen(msg));
    }
    conc_buf_free(&arg);
    conc_buf_free(&result);
    return r;
}

/* Fails a task whose entry is malformed, if it names its submitter. */
static int
reject(conc_dist_worker *w, struct conc__rconn *c, const char *entry,
       const struct conc__dist_task *t, const char *why)
{
    if (!conc__dist_name_ok(t->sub, t->sub_len) ||
        !conc__dist_name_ok(t->id, t->id_len))
        return drop_entry(w, c, entry); /* nobody to tell */
    struct conc__dist_task fixed = *t;
    if (!fixed.ttl_ms)
        fixed.ttl_ms = (uint64_t)(CONC__DIST_RESULT_TTL * 1000);
    conc_buf v = CONC_BUF_INIT;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "malformed task entry: %s", why);
    int r = conc__dist_result_encode(&v, CONC_EPROTO, msg, (size_t)n);
    if (r == 0)
        r = conc__dist_finish(w, c, &fixed, entry, &v,
                              conc__now_ns() + ROUND_NS);
    conc_buf_free(&v);
    return r;
}

/* Decodes an entry's fields into t. Returns 0 or CONC_EPROTO with `why`. */
static int
decode_entry(const redisReply *f, struct conc__dist_task *t, const char **why)
{
    const char *vals[32];
    size_t lens[32];
    size_t n = f->elements < 32 ? f->elements : 32; /* fields past 16: later
                                                       versions' extras */
    n -= n % 2;
    for (size_t i = 0; i < n; i++) {
        if (f->element[i]->type != REDIS_REPLY_STRING) {
            memset(t, 0, sizeof *t);
            *why = "a field that is not a string";
            return CONC_EPROTO;
        }
        vals[i] = f->element[i]->str;
        lens[i] = f->element[i]->len;
    }
    return conc__dist_task_decode(n, vals, lens, t, why);
}

int
conc__dist_handle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
                  const redisReply *e, uint64_t deliveries)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return CONC_EPROTO;
    const char *entry = e->element[0]->str;
    if (e->element[1]->type != REDIS_REPLY_ARRAY) {
        /* Deleted under us (nil fields, before Redis 7's XAUTOCLAIM). */
        int r = conc__dist_report_lost(w, c, entry, e->element[0]->len);
        return r < 0 ? r : drop_entry(w, c, entry);
    }
    struct conc__dist_task t;
    const char *why;
    if (decode_entry(e->element[1], &t, &why) < 0)
        return reject(w, c, entry, &t, why);
    int exists = 0;
    int r = result_exists(w, c, &t, &exists);
    if (r < 0 || exists)
        return r < 0 ? r : drop_entry(w, c, entry);
    CONC__UNUSED(deliveries);
    conc_buf value = CONC_BUF_INIT;
    set_slot(w, idx, entry, &t);
    r = run_task(w, idx, &t, &value);
    set_slot(w, idx, NULL, NULL);
    if (r == 0)
        r = conc__dist_finish(w, c, &t, entry, &value,
                              conc__now_ns() + FINISH_TIMEOUT_NS);
    conc_buf_free(&value);
    return r;
}

/* Creates the queue's stream and consumer group if missing. */
static int
ensure_group(conc_dist_worker *w, struct conc__rconn *c, int64_t deadline)
{
    redisReply *rep = NULL;
    int r =
        conc__rconn_cmdf(c, deadline, 1, &rep, "XGROUP CREATE %s %s 0 MKSTREAM",
                         w->k_tasks, CONC__DIST_GROUP);
    if (r == 0) {
        if (rep->type == REDIS_REPLY_ERROR &&
            !conc__reply_error_is(rep, "BUSYGROUP"))
            r = CONC_EPROTO;
        freeReplyObject(rep);
    }
    return r;
}

/* One XREADGROUP for thread idx; handles what it brings. */
static int
read_round(conc_dist_worker *w, size_t idx, struct conc__rconn *c)
{
    redisReply *rep = NULL;
    int r = conc__rconn_cmdf(
        c, conc__now_ns() + ROUND_NS, 0, &rep,
        "XREADGROUP GROUP %s %s COUNT 1 BLOCK " BLOCK_MS " STREAMS %s >",
        CONC__DIST_GROUP, w->slots[idx].consumer, w->k_tasks);
    if (r < 0)
        return r;
    if (conc__reply_error_is(rep, "NOGROUP")) /* the server lost it */
        r = ensure_group(w, c, conc__now_ns() + ROUND_NS);
    else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
             rep->element[0]->type == REDIS_REPLY_ARRAY &&
             rep->element[0]->elements == 2) {
        const redisReply *entries = rep->element[0]->element[1];
        for (size_t i = 0; i < entries->elements && r == 0; i++)
            r = conc__dist_handle(w, idx, c, entries->element[i], 1);
    }
    freeReplyObject(rep);
    return r;
}

int
conc__dist_serve(conc_dist_worker *w, size_t idx, int64_t deadline)
{
    struct conc__rconn c;
    int r = conc__rconn_init(&c, w->address, w->password, w->connect_timeout);
    if (r < 0)
        return r;
    /* Thread 0 also takes over dead workers' tasks, twice per idle time. */
    int64_t reclaim_every = w->reclaim_idle_ms * 1000000 / 2;
    int64_t next_reclaim = 0;
    int seen = 0;
    while (!atomic_load(&w->stop) && conc__now_ns() < deadline) {
        r = conc__rconn_ensure(&c, conc__now_ns() + ROUND_NS);
        if (r == CONC_EAUTH)
            break;
        if (r < 0)
            continue; /* backs off inside */
        if (idx == 0 && c.connects != seen) {
            /* Seen from the first connection on, not a beat later. */
            conc__dist_mark_seen(w, &c);
            seen = c.connects;
        }
        if (idx == 0 && conc__now_ns() >= next_reclaim) {
            conc__dist_reclaim(w, idx, &c);
            next_reclaim = conc__now_ns() + reclaim_every;
        }
        read_round(w, idx, &c);
    }
    conc__rconn_fini(&c);
    return r == CONC_EAUTH ? r : 0;
}
