/* A Redis worker's serving threads: take a batch of tasks (XREADGROUP
 * COUNT batch), check their result keys in one round trip, and hold them
 * in the worker's queue (held.c), which every serving thread takes from:
 * a task held behind a long one runs on the first thread free, and a
 * thread that holds more than it can start wakes the threads waiting in
 * their XREADGROUP (CLIENT UNBLOCK). A thread runs the registered
 * function, writes the first result and acknowledges it (the finish
 * script, sent as the task ends, its reply read with the next round trip),
 * in a loop; the held tasks go back at a stop; thread 0 now and then takes
 * over dead workers' tasks (reclaim.c). The monitor thread (monitor.c)
 * watches what each thread runs through its slot and renews the held
 * tasks' claims.
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

/* A task run whose finish was sent as soon as it ended, its reply not read
 * yet: the replies of a batch's finishes are read with the next round
 * trip the thread makes (the cancel check of the rest of the batch, the
 * next XREADGROUP), so a batch of tiny tasks costs two round trips, not
 * two per task. Kept until then to be written again if the connection
 * fails (a finish written twice is harmless: its SET is NX). */
struct deferred {
    int has;
    char entry[CONC__DIST_ENTRY_MAX];
    char id[CONC__DIST_NAME_MAX + 1], sub[CONC__DIST_NAME_MAX + 1];
    struct conc__dist_task t; /* id and sub point into the above */
    conc_buf value;
};

/* Runs a decoded task (its result key found absent) and finishes it, or
 * leaves its result in `later` when given. */
static int
run_decoded(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
            const char *entry, size_t entry_len,
            const struct conc__dist_task *t, struct deferred *later)
{
    conc_buf value = CONC_BUF_INIT;
    set_slot(w, idx, entry, t);
    int r = run_task(w, idx, t, &value);
    set_slot(w, idx, NULL, NULL);
    if (r == 0 && later && entry_len < sizeof later->entry) {
        memcpy(later->entry, entry, entry_len + 1);
        memcpy(later->id, t->id, t->id_len); /* decoded: at most NAME_MAX */
        memcpy(later->sub, t->sub, t->sub_len);
        later->t = (struct conc__dist_task){.id = later->id,
                                            .id_len = t->id_len,
                                            .sub = later->sub,
                                            .sub_len = t->sub_len,
                                            .ttl_ms = t->ttl_ms};
        conc_buf_free(&later->value);
        later->value = value; /* moved */
        later->has = 1;
        return 0;
    }
    if (r == 0)
        r = conc__dist_finish(w, c, t, entry, &value,
                              conc__now_ns() + FINISH_TIMEOUT_NS);
    conc_buf_free(&value);
    return r;
}

/* Whether entry e is well formed with fields; handles it if not. Returns
 * 1 (go on with it), 0 (handled) or an error. */
static int
entry_usable(conc_dist_worker *w, struct conc__rconn *c, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return CONC_EPROTO;
    if (e->element[1]->type != REDIS_REPLY_ARRAY) {
        /* Deleted under us (nil fields, before Redis 7's XAUTOCLAIM). */
        const char *entry = e->element[0]->str;
        int r = conc__dist_report_lost(w, c, entry, e->element[0]->len);
        return r < 0 ? r : drop_entry(w, c, entry);
    }
    return 1;
}

int
conc__dist_handle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
                  const redisReply *e, uint64_t deliveries)
{
    CONC__UNUSED(deliveries);
    int r = entry_usable(w, c, e);
    if (r <= 0)
        return r;
    const char *entry = e->element[0]->str;
    struct conc__dist_task t;
    const char *why;
    if (decode_entry(e->element[1], &t, &why) < 0)
        return reject(w, c, entry, &t, why);
    int exists = 0;
    r = result_exists(w, c, &t, &exists);
    if (r < 0 || exists)
        return r < 0 ? r : drop_entry(w, c, entry);
    return run_decoded(w, idx, c, entry, e->element[0]->len, &t, NULL);
}

/* What a serving thread keeps between rounds: the replies it has yet to
 * read (finishes, wake-ups), and room for a batch and its replies. */
struct round {
    struct deferred *fin; /* w->batch of them */
    size_t nfin;
    redisReply **reps;             /* 2 * w->batch + 1 */
    struct conc__dist_task *tasks; /* the batch's, decoded */
    signed char *state;            /* per entry: one of enum entry_state */
    struct conc__dist_held **held; /* w->batch: taken from the queue */
};

enum entry_state { E_BAD = -1, E_UNCHECKED, E_ABSENT, E_EXISTS };

/* How old the check of a held task's result key may grow before the task
 * starts (it is then made again, with the finishes' replies): a task
 * cancelled while held does not run. */
#define FLUSH_NS (1000 * 1000LL)

/* Writes the deferred results one by one, with retries (after a failed
 * pipeline: a finish written twice is harmless, its SET is NX). */
static void
finish_each(conc_dist_worker *w, struct conc__rconn *c, struct round *rd)
{
    for (size_t i = 0; i < rd->nfin; i++) {
        if (rd->fin[i].has)
            conc__dist_finish(w, c, &rd->fin[i].t, rd->fin[i].entry,
                              &rd->fin[i].value,
                              conc__now_ns() + FINISH_TIMEOUT_NS);
        rd->fin[i].has = 0;
    }
    rd->nfin = 0;
}

/* Sends what was appended (`m` commands) and reads the replies of the
 * commands sent before them and theirs, in one round trip; the replies of
 * the m commands go to rd->reps. On failure the finishes are written one
 * by one. Returns 0 or an error. */
static int
collect(conc_dist_worker *w, struct conc__rconn *c, struct round *rd, int r,
        size_t m)
{
    size_t n = rd->nfin + m;
    if (r == 0)
        r = conc__rconn_pipeline(c, conc__now_ns() + ROUND_NS, n, rd->reps);
    else
        conc__rconn_close(c);
    if (r < 0) { /* the finishes may not have run: again, with retries */
        finish_each(w, c, rd);
        return r;
    }
    for (size_t i = 0; i < rd->nfin; i++) {
        rd->fin[i].has = 0;
        freeReplyObject(rd->reps[i]); /* an error: the task is reclaimed */
    }
    memmove(rd->reps, rd->reps + rd->nfin, m * sizeof *rd->reps);
    rd->nfin = 0;
    return 0;
}

/* Reads the replies of the commands sent; before any command sent on its
 * own, whose reply must not be taken for theirs. */
static int
drain(conc_dist_worker *w, struct conc__rconn *c, struct round *rd)
{
    return rd->nfin ? collect(w, c, rd, 0, 0) : 0;
}

/* Sends an appended command whose reply is read with the next round trip
 * (a finish when `d` has one). A failure writes the finishes not
 * confirmed again now, one by one on a new connection, so that no reply
 * is awaited on a connection they were not sent on. */
static void
send_deferred(conc_dist_worker *w, struct conc__rconn *c, struct round *rd,
              int r)
{
    rd->nfin++;
    if (r < 0 || conc__rconn_send(c, conc__now_ns() + ROUND_NS) < 0) {
        conc__rconn_close(c);
        finish_each(w, c, rd);
    }
}

/* Appends the EXISTS of the result key of a task. */
static int
append_exists(conc_dist_worker *w, struct conc__rconn *c,
              const struct conc__dist_task *t)
{
    char key[CONC__DIST_NAME_MAX * 2 + 32];
    conc__dist_keyf(key, sizeof key, w->queue, "res:%.*s", (int)t->id_len,
                    t->id);
    const char *a[] = {"EXISTS", key};
    size_t l[] = {6, strlen(key)};
    return conc__rconn_append(c, 2, a, l);
}

/* The state an EXISTS reply says. */
static signed char
exists_state(const redisReply *x)
{
    return x->type == REDIS_REPLY_INTEGER && x->integer > 0 ? E_EXISTS
                                                            : E_ABSENT;
}

/* Reads the replies in flight and checks the result keys of the batch's
 * decoded entries, in one round trip. */
static int
check_batch(conc_dist_worker *w, struct conc__rconn *c, struct round *rd,
            size_t n)
{
    int r = 0;
    size_t m = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        if (rd->state[i] != E_BAD) {
            r = append_exists(w, c, &rd->tasks[i]);
            m++;
        }
    if ((r = collect(w, c, rd, r, m)) < 0)
        return r;
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (rd->state[i] != E_BAD) {
            rd->state[i] = exists_state(rd->reps[m]);
            freeReplyObject(rd->reps[m++]);
        }
    return 0;
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

/* At a stop, the held tasks go back: they stay pending (a pending entry
 * cannot be handed to nobody, and adding it again would give it a new
 * entry id, which the submitter's lost notices name), but an XCLAIM
 * JUSTID to this thread's consumer with a long IDLE makes them look
 * abandoned at once, so the next XAUTOCLAIM of any other worker takes them
 * over without waiting out reclaim_idle. JUSTID leaves their delivery
 * count alone; the take-over raises it, as for a dead worker's task. */
#define HAND_BACK_IDLE_MS "315360000000" /* ten years */
#define HAND_BACK_ARGS    8 /* XCLAIM key group consumer 0 IDLE ms JUSTID */

static void
hand_back(conc_dist_worker *w, size_t idx, struct conc__rconn *c)
{
    struct conc__dist_held *all = conc__dist_held_take_all(w);
    size_t n = 0;
    for (struct conc__dist_held *h = all; h; h = h->next)
        n++;
    const char **a = n ? conc__calloc(n + HAND_BACK_ARGS, sizeof *a) : NULL;
    size_t *l = n ? conc__calloc(n + HAND_BACK_ARGS, sizeof *l) : NULL;
    if (a && l) {
        size_t k = 0;
        a[k++] = "XCLAIM";
        a[k++] = w->k_tasks;
        a[k++] = CONC__DIST_GROUP;
        a[k++] = w->slots[idx].consumer;
        a[k++] = "0";
        for (struct conc__dist_held *h = all; h; h = h->next)
            a[k++] = h->entry;
        a[k++] = "IDLE";
        a[k++] = HAND_BACK_IDLE_MS;
        a[k++] = "JUSTID";
        for (size_t i = 0; i < k; i++)
            l[i] = strlen(a[i]);
        redisReply *rep = NULL;
        if (conc__rconn_cmd(c, conc__now_ns() + ROUND_NS, 0, &rep, (int)k, a,
                            l) == 0)
            freeReplyObject(rep);
    }
    conc__free(a);
    conc__free(l);
    conc__dist_held_free(all); /* left pending: reclaimed in time */
}

/* Wakes up to `n` other threads of the worker waiting in an XREADGROUP
 * (CLIENT UNBLOCK, its reply read with the next round trip), so that the
 * tasks this thread holds and cannot start yet start on them. */
static void
wake_idle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
          struct round *rd, size_t n)
{
    for (size_t i = 0; i < w->nthreads && n > 0; i++) {
        long long id = atomic_load(&w->slots[i].client_id);
        if (i == idx || !id || !atomic_load(&w->slots[i].blocked))
            continue;
        if (rd->nfin == w->batch && drain(w, c, rd) < 0)
            return;
        rd->fin[rd->nfin].has = 0;
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", id);
        const char *a[] = {"CLIENT", "UNBLOCK", ids};
        size_t l[] = {6, 7, strlen(ids)};
        send_deferred(w, c, rd, conc__rconn_append(c, 3, a, l));
        n--;
    }
}

/* Adds the batch's tasks whose result keys were found absent to the
 * worker's held tasks, and wakes idle threads for all but one of them. */
static void
hold_batch(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd, const redisReply *entries, size_t n)
{
    size_t k = 0;
    int64_t now = conc__now_ns();
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = entries->element[i]->element[0];
        if (rd->state[i] == E_ABSENT &&
            (rd->held[k] = conc__dist_held_new(idx, id->str, id->len,
                                               &rd->tasks[i], now)) != NULL)
            k++;
        /* Without memory the task stays pending here: reclaimed. */
    }
    conc__dist_held_push(w, rd->held, k, 0);
    if (k > 1)
        wake_idle(w, idx, c, rd, k - 1);
}

/* Decodes the batch's entries into rd; handles at once those that are
 * not tasks (deleted, malformed) or whose entry id is too long to hold. */
static int
decode_batch(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
             struct round *rd, const redisReply *entries, size_t n)
{
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const redisReply *e = entries->element[i];
        rd->state[i] = E_BAD;
        if ((r = entry_usable(w, c, e)) <= 0)
            continue;
        r = 0;
        const char *why;
        if (e->element[0]->len >= CONC__DIST_ENTRY_MAX)
            r = conc__dist_handle(w, idx, c, e, 0);
        else if (decode_entry(e->element[1], &rd->tasks[i], &why) < 0)
            r = reject(w, c, e->element[0]->str, &rd->tasks[i], why);
        else
            rd->state[i] = E_UNCHECKED;
    }
    return r;
}

/* Takes a batch in: decodes it, checks its result keys in one round trip,
 * drops the tasks cancelled or done, and holds the others. On an error
 * the rest stay pending here: reclaimed after reclaim_idle. */
static int
take_batch(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd, const redisReply *entries)
{
    size_t n = entries->elements < w->batch ? entries->elements : w->batch;
    int r = decode_batch(w, idx, c, rd, entries, n);
    if (r == 0)
        r = check_batch(w, c, rd, n);
    for (size_t i = 0; i < n && r == 0; i++)
        if (rd->state[i] == E_EXISTS)
            r = drop_entry(w, c, entries->element[i]->element[0]->str);
    if (r == 0)
        hold_batch(w, idx, c, rd, entries, n);
    return r;
}

/* One XREADGROUP for thread idx (after the replies in flight, in the same
 * round trip); holds what it brings. */
static int
read_round(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd)
{
    char count[24];
    snprintf(count, sizeof count, "%zu", w->batch);
    const char *ra[] = {"XREADGROUP",
                        "GROUP",
                        CONC__DIST_GROUP,
                        w->slots[idx].consumer,
                        "COUNT",
                        count,
                        "BLOCK",
                        BLOCK_MS,
                        "STREAMS",
                        w->k_tasks,
                        ">"};
    size_t rl[sizeof ra / sizeof *ra];
    for (size_t i = 0; i < sizeof ra / sizeof *ra; i++)
        rl[i] = strlen(ra[i]);
    int r = conc__rconn_append(c, (int)(sizeof ra / sizeof *ra), ra, rl);
    atomic_store(&w->slots[idx].blocked, 1);
    r = collect(w, c, rd, r, 1);
    atomic_store(&w->slots[idx].blocked, 0);
    if (r < 0)
        return r;
    redisReply *rep = rd->reps[0];
    if (conc__reply_error_is(rep, "NOGROUP")) /* the server lost it */
        r = ensure_group(w, c, conc__now_ns() + ROUND_NS);
    else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
             rep->element[0]->type == REDIS_REPLY_ARRAY &&
             rep->element[0]->elements == 2 &&
             rep->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
        r = take_batch(w, idx, c, rd, rep->element[0]->element[1]);
    freeReplyObject(rep);
    return r;
}

/* Checks again the result keys of the held tasks hs[0..n), whose check
 * grew stale, with the replies in flight, in one round trip; drops those
 * cancelled or done meanwhile (hs[i] becomes NULL). */
static int
recheck(conc_dist_worker *w, struct conc__rconn *c, struct round *rd,
        struct conc__dist_held **hs, size_t n)
{
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = append_exists(w, c, &hs[i]->t);
    if ((r = collect(w, c, rd, r, n)) < 0)
        return r;
    int64_t now = conc__now_ns();
    for (size_t i = 0; i < n; i++) {
        rd->state[i] = exists_state(rd->reps[i]);
        freeReplyObject(rd->reps[i]);
        hs[i]->checked_ns = now;
    }
    for (size_t i = 0; i < n && r == 0; i++)
        if (rd->state[i] == E_EXISTS) {
            r = drop_entry(w, c, hs[i]->entry);
            conc__free(hs[i]);
            hs[i] = NULL;
        }
    return r;
}

/* Starts a held task: runs it, and sends its finish, whose reply is read
 * with the next round trip. */
static int
start_held(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd, const struct conc__dist_held *h)
{
    if (rd->nfin == w->batch) {
        int r = drain(w, c, rd);
        if (r < 0)
            return r;
    }
    struct deferred *later = &rd->fin[rd->nfin];
    int r = run_decoded(w, idx, c, h->entry, strlen(h->entry), &h->t, later);
    if (r < 0 || !later->has)
        return r;
    struct finish_keys k;
    const char *fa[FINISH_ARGC];
    size_t fl[FINISH_ARGC];
    finish_argv(w, &later->t, later->entry, &later->value, &k, fa, fl);
    send_deferred(w, c, rd, conc__rconn_append(c, FINISH_ARGC, fa, fl));
    return 0;
}

/* Runs the oldest held task, checking it first (with those stale behind
 * it) if its check grew stale. Returns 1 if there was one, 0 if none is
 * held, or an error (the tasks taken go back to the queue). */
static int
serve_held(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd)
{
    struct conc__dist_held **hs = rd->held;
    size_t n = conc__dist_held_take(w, hs, w->batch, conc__now_ns() - FLUSH_NS);
    if (n == 0)
        return 0;
    int r = n > 1 || hs[0]->checked_ns < conc__now_ns() - FLUSH_NS
                ? recheck(w, c, rd, hs, n)
                : 0;
    size_t k = 0; /* the absent ones, in order */
    for (size_t i = 0; i < n; i++)
        if (hs[i])
            hs[k++] = hs[i];
    if (r < 0 || k == 0) {
        conc__dist_held_push(w, hs, k, 1);
        return r < 0 ? r : 1;
    }
    /* The others go back before this one runs, however long it takes. */
    conc__dist_held_push(w, hs + 1, k - 1, 1);
    r = start_held(w, idx, c, rd, hs[0]);
    conc__free(hs[0]);
    return r < 0 ? r : 1;
}

static int
round_init(conc_dist_worker *w, struct round *rd)
{
    rd->fin = conc__calloc(w->batch, sizeof *rd->fin);
    rd->reps = conc__calloc(2 * w->batch + 1, sizeof *rd->reps);
    rd->tasks = conc__calloc(w->batch, sizeof *rd->tasks);
    rd->state = conc__calloc(w->batch, sizeof *rd->state);
    rd->held = conc__calloc(w->batch, sizeof *rd->held);
    return rd->fin && rd->reps && rd->tasks && rd->state && rd->held
               ? 0
               : CONC_ENOMEM;
}

static void
round_fini(conc_dist_worker *w, struct round *rd)
{
    for (size_t i = 0; rd->fin && i < w->batch; i++)
        conc_buf_free(&rd->fin[i].value);
    conc__free(rd->fin);
    conc__free(rd->reps);
    conc__free(rd->tasks);
    conc__free(rd->state);
    conc__free(rd->held);
}

/* Publishes the connection's CLIENT ID, which other threads use to wake
 * this one (0 if the server does not say). */
static void
publish_client_id(conc_dist_worker *w, size_t idx, struct conc__rconn *c)
{
    redisReply *rep = NULL;
    long long id = 0;
    if (conc__rconn_cmdf(c, conc__now_ns() + ROUND_NS, 0, &rep, "CLIENT ID") ==
        0) {
        if (rep->type == REDIS_REPLY_INTEGER)
            id = rep->integer;
        freeReplyObject(rep);
    }
    atomic_store(&w->slots[idx].client_id, id);
}

/* What a thread does on a connection new to it: thread 0 records the
 * worker as seen (from the first connection on, not a beat later); every
 * thread publishes its client id. */
static void
on_connect(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd)
{
    if (drain(w, c, rd) < 0)
        return;
    if (idx == 0)
        conc__dist_mark_seen(w, c);
    if (w->nthreads > 1)
        publish_client_id(w, idx, c);
}

int
conc__dist_serve(conc_dist_worker *w, size_t idx, int64_t deadline)
{
    struct conc__rconn c;
    int r = conc__rconn_init(&c, w->address, w->password, w->connect_timeout);
    if (r < 0)
        return r;
    struct round rd = {0};
    if ((r = round_init(w, &rd)) < 0) {
        round_fini(w, &rd);
        conc__rconn_fini(&c);
        return r;
    }
    /* Thread 0 also takes over dead workers' tasks, twice per idle time. */
    int64_t reclaim_every = w->reclaim_idle_ms * 1000000 / 2;
    int64_t next_reclaim = 0;
    int seen = 0;
    while (!atomic_load(&w->stop) && conc__now_ns() < deadline) {
        r = conc__rconn_ensure(&c, conc__now_ns() + ROUND_NS);
        if (r == CONC_EAUTH)
            break;
        if (r < 0) {
            finish_each(w, &c, &rd); /* retries on its own */
            continue;                /* backs off inside */
        }
        if (c.connects != seen) {
            seen = c.connects;
            on_connect(w, idx, &c, &rd);
        }
        if (idx == 0 && conc__now_ns() >= next_reclaim) {
            drain(w, &c, &rd);
            conc__dist_reclaim(w, idx, &c);
            next_reclaim = conc__now_ns() + reclaim_every;
        }
        if (serve_held(w, idx, &c, &rd) == 0)
            read_round(w, idx, &c, &rd);
    }
    drain(w, &c, &rd);
    hand_back(w, idx, &c); /* every thread: the last one finds them all */
    round_fini(w, &rd);
    conc__rconn_fini(&c);
    return r == CONC_EAUTH ? r : 0;
}
