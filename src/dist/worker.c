/* A Redis worker's serving threads: take a task (XREADGROUP), run the
 * registered function, write the first result and acknowledge it (the
 * finish script, sent in one round trip with the next XREADGROUP), in a
 * loop; now and then take over dead workers' tasks
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

/* The finish script's command for a task, in argv/lens (FINISH_ARGC
 * arguments); the keys go into `keys`, which must outlive the command. */
#define FINISH_ARGC 11
struct finish_keys {
    char res[CONC__DIST_NAME_MAX * 2 + 32], done[CONC__DIST_NAME_MAX * 2 + 32];
    char ttl[24];
};

static void
finish_argv(conc_dist_worker *w, const struct conc__dist_task *t,
            const char *entry, const conc_buf *value, struct finish_keys *k,
            const char **argv, size_t *lens)
{
    conc__dist_keyf(k->res, sizeof k->res, w->queue, "res:%.*s", (int)t->id_len,
                    t->id);
    conc__dist_keyf(k->done, sizeof k->done, w->queue, "done:%.*s",
                    (int)t->sub_len, t->sub);
    snprintf(k->ttl, sizeof k->ttl, "%" PRIu64, t->ttl_ms);
    const char *a[FINISH_ARGC] = {"EVAL",
                                  conc__dist_finish_lua,
                                  "3",
                                  k->res,
                                  k->done,
                                  w->k_tasks,
                                  "",
                                  k->ttl,
                                  "",
                                  entry,
                                  CONC__DIST_GROUP};
    for (size_t i = 0; i < FINISH_ARGC; i++) {
        argv[i] = a[i];
        lens[i] = strlen(a[i]);
    }
    /* The result value and the task id are bytes. */
    argv[6] = value->len ? (const char *)value->data : "";
    lens[6] = value->len;
    argv[8] = t->id;
    lens[8] = t->id_len;
}

int
conc__dist_finish(conc_dist_worker *w, struct conc__rconn *c,
                  const struct conc__dist_task *t, const char *entry,
                  const conc_buf *value, int64_t deadline)
{
    struct finish_keys k;
    const char *argv[FINISH_ARGC];
    size_t lens[FINISH_ARGC];
    finish_argv(w, t, entry, value, &k, argv, lens);
    redisReply *rep = NULL;
    int r = conc__rconn_cmd(c, deadline, 1, &rep, FINISH_ARGC, argv, lens);
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

/* A task run whose result is still to be written: its finish goes out
 * in one round trip with the serving thread's next XREADGROUP. */
struct deferred {
    int has;
    char entry[CONC__DIST_ENTRY_MAX];
    char id[CONC__DIST_NAME_MAX + 1], sub[CONC__DIST_NAME_MAX + 1];
    struct conc__dist_task t; /* id and sub point into the above */
    conc_buf value;
};

/* Handles an entry as conc__dist_handle does; when `later` is given and
 * the task ran, its result is left there to be written by the caller. */
static int
handle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
       const redisReply *e, struct deferred *later)
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
    conc_buf value = CONC_BUF_INIT;
    set_slot(w, idx, entry, &t);
    r = run_task(w, idx, &t, &value);
    set_slot(w, idx, NULL, NULL);
    if (r == 0 && later && e->element[0]->len < sizeof later->entry) {
        memcpy(later->entry, entry, e->element[0]->len + 1);
        memcpy(later->id, t.id, t.id_len); /* decoded: at most NAME_MAX */
        memcpy(later->sub, t.sub, t.sub_len);
        later->t = (struct conc__dist_task){.id = later->id,
                                            .id_len = t.id_len,
                                            .sub = later->sub,
                                            .sub_len = t.sub_len,
                                            .ttl_ms = t.ttl_ms};
        conc_buf_free(&later->value);
        later->value = value; /* moved */
        later->has = 1;
        return 0;
    }
    if (r == 0)
        r = conc__dist_finish(w, c, &t, entry, &value,
                              conc__now_ns() + FINISH_TIMEOUT_NS);
    conc_buf_free(&value);
    return r;
}

int
conc__dist_handle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
                  const redisReply *e, uint64_t deliveries)
{
    CONC__UNUSED(deliveries);
    return handle(w, idx, c, e, NULL);
}

/* Writes a deferred result now, reconnecting if need be. */
static int
flush_deferred(conc_dist_worker *w, struct conc__rconn *c, struct deferred *d)
{
    if (!d->has)
        return 0;
    d->has = 0;
    return conc__dist_finish(w, c, &d->t, d->entry, &d->value,
                             conc__now_ns() + FINISH_TIMEOUT_NS);
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

/* Sends the XREADGROUP of thread idx, after the deferred finish if there
 * is one (one round trip for both), and hands back its reply. */
static int
read_tasks(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct deferred *d, redisReply **out)
{
    int64_t deadline = conc__now_ns() + ROUND_NS;
    if (!d->has)
        return conc__rconn_cmdf(
            c, deadline, 0, out,
            "XREADGROUP GROUP %s %s COUNT 1 BLOCK " BLOCK_MS " STREAMS %s >",
            CONC__DIST_GROUP, w->slots[idx].consumer, w->k_tasks);
    struct finish_keys k;
    const char *fa[FINISH_ARGC];
    size_t fl[FINISH_ARGC];
    finish_argv(w, &d->t, d->entry, &d->value, &k, fa, fl);
    const char *ra[] = {"XREADGROUP",
                        "GROUP",
                        CONC__DIST_GROUP,
                        w->slots[idx].consumer,
                        "COUNT",
                        "1",
                        "BLOCK",
                        BLOCK_MS,
                        "STREAMS",
                        w->k_tasks,
                        ">"};
    size_t rl[sizeof ra / sizeof *ra];
    for (size_t i = 0; i < sizeof ra / sizeof *ra; i++)
        rl[i] = strlen(ra[i]);
    redisReply *reps[2];
    int r = conc__rconn_append(c, FINISH_ARGC, fa, fl);
    if (r == 0)
        r = conc__rconn_append(c, (int)(sizeof ra / sizeof *ra), ra, rl);
    if (r == 0)
        r = conc__rconn_pipeline(c, deadline, 2, reps);
    else
        conc__rconn_close(c);
    if (r < 0) { /* the finish may not have run: again, with retries */
        flush_deferred(w, c, d);
        return r;
    }
    d->has = 0;
    freeReplyObject(reps[0]); /* an error reply: the task is reclaimed */
    *out = reps[1];
    return 0;
}

/* One XREADGROUP for thread idx (with the last task's finish); handles
 * what it brings, leaving the result of a task it runs in `d`. */
static int
read_round(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct deferred *d)
{
    redisReply *rep = NULL;
    int r = read_tasks(w, idx, c, d, &rep);
    if (r < 0)
        return r;
    if (conc__reply_error_is(rep, "NOGROUP")) /* the server lost it */
        r = ensure_group(w, c, conc__now_ns() + ROUND_NS);
    else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
             rep->element[0]->type == REDIS_REPLY_ARRAY &&
             rep->element[0]->elements == 2) {
        const redisReply *entries = rep->element[0]->element[1];
        for (size_t i = 0; i < entries->elements && r == 0; i++) {
            if ((r = flush_deferred(w, c, d)) == 0)
                r = handle(w, idx, c, entries->element[i], d);
        }
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
    struct deferred d = {.value = CONC_BUF_INIT};
    while (!atomic_load(&w->stop) && conc__now_ns() < deadline) {
        r = conc__rconn_ensure(&c, conc__now_ns() + ROUND_NS);
        if (r == CONC_EAUTH)
            break;
        if (r < 0) {
            flush_deferred(w, &c, &d); /* retries on its own */
            continue;                  /* backs off inside */
        }
        if (idx == 0 && c.connects != seen) {
            /* Seen from the first connection on, not a beat later. */
            conc__dist_mark_seen(w, &c);
            seen = c.connects;
        }
        if (idx == 0 && conc__now_ns() >= next_reclaim) {
            flush_deferred(w, &c, &d);
            conc__dist_reclaim(w, idx, &c);
            next_reclaim = conc__now_ns() + reclaim_every;
        }
        read_round(w, idx, &c, &d);
    }
    flush_deferred(w, &c, &d);
    conc_buf_free(&d.value);
    conc__rconn_fini(&c);
    return r == CONC_EAUTH ? r : 0;
}
