/* A Redis worker's serving threads: take a batch of tasks (XREADGROUP
 * COUNT batch), check their result keys (with the read itself, check.c,
 * or, for a large batch, in one round trip after it), and hold them
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
#include "dist/trace.h"
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

/* Encodes a task's failure `code` with the message it left. A worker
 * always writes "e<code> <message>": "c" is the submitter's cancel claim
 * alone (docs/scale-out.md), which a cancelled task with no message of
 * its own would otherwise be written as. */
static int
encode_failure(conc_buf *value, int code)
{
    const char *msg = conc_failure_message();
    if (code == CONC_ECANCELED && !*msg)
        msg = "the task was cancelled";
    return conc__dist_result_encode(value, code, msg, strlen(msg));
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
        r = encode_failure(value, code);
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
        r = encode_failure(value, code);
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

/* Runs a decoded task (its result key found absent) and hands its result
 * to the result writer, or writes it itself without memory. With `keep`,
 * a result the thread can send with its next round trip (no task is held,
 * so that round trip comes at once) stays in *keep: one result written
 * alone goes out without a hand-over to the writer's thread. Only when
 * the writer has written all it was handed, so that a worker's results
 * still reach the server in the order its threads ran the tasks. */
static int
run_decoded(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
            const char *entry, const struct conc__dist_task *t,
            struct conc__dist_fin **keep)
{
    conc_buf value = CONC_BUF_INIT;
    set_slot(w, idx, entry, t);
    CONC__DIST_TRACE("run", t->id, t->id_len);
    int r = run_task(w, idx, t, &value);
    CONC__DIST_TRACE("ran", t->id, t->id_len);
    set_slot(w, idx, NULL, NULL);
    struct conc__dist_fin *f =
        r == 0 ? conc__dist_fin_new(entry, t, &value) : NULL;
    if (r == 0 && !f)
        r = conc__dist_finish(w, c, t, entry, &value,
                              conc__now_ns() + FINISH_TIMEOUT_NS);
    else if (f && keep && !conc__dist_held_any(w) && conc__dist_fin_idle(w))
        *keep = f;
    else if (f)
        conc__dist_fin_hand(w, f);
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
    return run_decoded(w, idx, c, entry, &t, NULL);
}

/* What a serving thread keeps between rounds: room for a batch, its
 * replies and the held tasks it takes. */
struct round {
    struct conc__dist_fin *mine;   /* a result kept for the next round */
    redisReply **reps;             /* w->batch + 2 */
    struct conc__dist_task *tasks; /* the batch's, decoded */
    signed char *state;            /* per entry: one of enum entry_state */
    signed char *verdict;          /* per entry: its check's (check.c) */
    struct conc__dist_held **held; /* w->batch */
    /* The newest entry id read by this thread's consumer, which the
     * check sent with the next read starts after. */
    char seen[CONC__DIST_ENTRY_MAX];
    size_t last_n; /* entries the last read brought */
};

enum entry_state { E_BAD = -1, E_UNCHECKED, E_ABSENT, E_EXISTS };

/* How old the check of a held task's result key may grow before the task
 * starts (it is then made again): a task cancelled while held does not
 * run. */
#define FLUSH_NS (1000 * 1000LL)

/* Checks the result keys of n tasks in one MGET: state[i] becomes
 * E_ABSENT or E_EXISTS for each ts[i] not NULL. */
static int
check_keys(conc_dist_worker *w, struct conc__rconn *c, struct round *rd,
           const struct conc__dist_task *const *ts, size_t n)
{
    const char **a = conc__calloc(n + 1, sizeof *a);
    size_t *l = conc__calloc(n + 1, sizeof *l);
    char(*keys)[CONC__DIST_NAME_MAX * 2 + 32] = conc__calloc(n, sizeof *keys);
    int r = a && l && keys ? 0 : CONC_ENOMEM;
    size_t k = 0;
    if (r == 0) {
        a[k++] = "MGET";
        for (size_t i = 0; i < n; i++)
            if (ts[i]) {
                conc__dist_keyf(keys[i], sizeof keys[i], w->queue, "res:%.*s",
                                (int)ts[i]->id_len, ts[i]->id);
                a[k++] = keys[i];
            }
        for (size_t i = 0; i < k; i++)
            l[i] = strlen(a[i]);
    }
    redisReply *rep = NULL;
    if (r == 0 && k > 1)
        r = conc__rconn_cmd(c, conc__now_ns() + ROUND_NS, 0, &rep, (int)k, a,
                            l);
    if (r == 0 && rep &&
        (rep->type != REDIS_REPLY_ARRAY || rep->elements != k - 1)) {
        /* Refused (an ACL, say): the backoff keeps a retry from spinning. */
        r = CONC_EPROTO;
        conc__rconn_fail(c, r);
    }
    for (size_t i = 0, j = 0; r == 0 && rep && i < n; i++)
        if (ts[i])
            rd->state[i] = rep->element[j++]->type == REDIS_REPLY_NIL
                               ? E_ABSENT
                               : E_EXISTS;
    if (rep)
        freeReplyObject(rep);
    conc__free(a);
    conc__free(l);
    conc__free(keys);
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
 * (CLIENT UNBLOCK, pipelined), so that the tasks this thread holds and
 * cannot start yet start on them. */
static void
wake_idle(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
          struct round *rd, size_t n)
{
    size_t m = 0;
    int r = 0;
    for (size_t i = 0; i < w->nthreads && m < n && r == 0; i++) {
        long long id = atomic_load(&w->slots[i].client_id);
        if (i == idx || !id || !atomic_load(&w->slots[i].blocked))
            continue;
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", id);
        const char *a[] = {"CLIENT", "UNBLOCK", ids};
        size_t l[] = {6, 7, strlen(ids)};
        r = conc__rconn_append(c, 3, a, l);
        m++;
    }
    if (r < 0)
        conc__rconn_close(c);
    else if (m && conc__rconn_pipeline(c, conc__now_ns() + ROUND_NS, m,
                                       rd->reps) == 0)
        while (m)
            freeReplyObject(rd->reps[--m]);
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
        if (rd->state[i] == E_UNCHECKED)
            CONC__DIST_TRACE("read", rd->tasks[i].id, rd->tasks[i].id_len);
    }
    return r;
}

/* Takes in the entries the check sent with the read answered for
 * (check.c), and notes the newest entry id read. */
static void
apply_check(struct round *rd, const redisReply *chk, const redisReply *entries,
            size_t n)
{
    conc__dist_check_apply(chk, entries, n, rd->verdict);
    for (size_t i = 0; i < n; i++)
        if (rd->state[i] == E_UNCHECKED && rd->verdict[i] >= 0)
            rd->state[i] = rd->verdict[i] ? E_EXISTS : E_ABSENT;
    const redisReply *last = n ? entries->element[n - 1] : NULL;
    if (last && last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
        last->element[0]->type == REDIS_REPLY_STRING &&
        last->element[0]->len < sizeof rd->seen)
        memcpy(rd->seen, last->element[0]->str, last->element[0]->len + 1);
}

/* Takes a batch in: decodes it, takes the verdicts of the check that came
 * with it (`chk`), checks the result keys it left out in one round trip,
 * drops the tasks cancelled or done, and holds the others. On an error
 * the rest stay pending here: reclaimed after reclaim_idle. */
static int
take_batch(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd, const redisReply *entries, const redisReply *chk)
{
    size_t n = entries->elements < w->batch ? entries->elements : w->batch;
    int r = decode_batch(w, idx, c, rd, entries, n);
    apply_check(rd, chk, entries, n);
    const struct conc__dist_task **ts = conc__calloc(n, sizeof *ts);
    if (r == 0 && !ts)
        r = CONC_ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++)
        ts[i] = rd->state[i] == E_UNCHECKED ? &rd->tasks[i] : NULL;
    if (r == 0)
        r = check_keys(w, c, rd, ts, n);
    conc__free(ts);
    for (size_t i = 0; i < n && r == 0; i++)
        if (rd->state[i] == E_EXISTS)
            r = drop_entry(w, c, entries->element[i]->element[0]->str);
    if (r == 0)
        hold_batch(w, idx, c, rd, entries, n);
    return r;
}

/* Hands the result the thread kept to the writer. */
static void
release_mine(conc_dist_worker *w, struct round *rd)
{
    if (rd->mine)
        conc__dist_fin_hand(w, rd->mine);
    rd->mine = NULL;
}

/* Sends the XREADGROUP appended, after the finish of the result the thread
 * kept if any and, when the last read brought a few entries, before the
 * check of what it brings (check.c), and reads their replies in one round
 * trip: the read's into *rep, the check's into *chk (NULL without). A
 * finish that fails goes to the writer, which retries (a finish written
 * twice is harmless: its SET is NX). */
static int
xreadgroup(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd, int argc, const char **a, const size_t *l,
           redisReply **rep, redisReply **chk)
{
    int r = 0;
    if (rd->mine) {
        struct finish_keys k;
        const char *fa[FINISH_ARGC];
        size_t fl[FINISH_ARGC];
        conc_buf v = {rd->mine->value, rd->mine->len, rd->mine->len, 1};
        finish_argv(w, &rd->mine->t, rd->mine->entry, &v, &k, fa, fl);
        r = conc__rconn_append(c, FINISH_ARGC, fa, fl);
    }
    if (r == 0)
        r = conc__rconn_append(c, argc, a, l);
    size_t checks = rd->last_n <= CONC__DIST_CHECK_MAX;
    if (r == 0 && checks)
        r = conc__dist_check_append(w, idx, c, rd->seen);
    if (r < 0)
        conc__rconn_close(c);
    if (rd->mine)
        CONC__DIST_TRACE("send", rd->mine->t.id, rd->mine->t.id_len);
    atomic_store(&w->slots[idx].blocked, 1);
    if (r == 0)
        r = conc__rconn_pipeline(c, conc__now_ns() + ROUND_NS,
                                 (rd->mine ? 2 : 1) + checks, rd->reps);
    atomic_store(&w->slots[idx].blocked, 0);
    if (r < 0) {
        release_mine(w, rd);
        return r;
    }
    if (rd->mine) {
        if (rd->reps[0]->type == REDIS_REPLY_ERROR)
            release_mine(w, rd); /* the server loading its data: again */
        freeReplyObject(rd->reps[0]);
        conc__free(rd->mine);
        rd->mine = NULL;
        rd->reps[0] = rd->reps[1];
        rd->reps[1] = rd->reps[2];
    }
    *rep = rd->reps[0];
    *chk = checks ? rd->reps[1] : NULL;
    return 0;
}

/* One XREADGROUP for thread idx; holds what it brings. */
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
    redisReply *rep = NULL, *chk = NULL;
    int r = xreadgroup(w, idx, c, rd, (int)(sizeof ra / sizeof *ra), ra, rl,
                       &rep, &chk);
    if (r < 0)
        return r;
    if (conc__reply_error_is(rep, "NOGROUP")) /* the server lost it */
        r = ensure_group(w, c, conc__now_ns() + ROUND_NS);
    else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
             rep->element[0]->type == REDIS_REPLY_ARRAY &&
             rep->element[0]->elements == 2 &&
             rep->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        rd->last_n = rep->element[0]->element[1]->elements;
        r = take_batch(w, idx, c, rd, rep->element[0]->element[1], chk);
    } else {
        rd->last_n = 0; /* nothing came: the next may be a lone task */
    }
    freeReplyObject(rep);
    if (chk)
        freeReplyObject(chk);
    return r;
}

/* Checks again the result keys of the held tasks hs[0..n), whose check
 * grew stale, in one round trip; drops those cancelled or done meanwhile
 * (hs[i] becomes NULL). */
static int
recheck(conc_dist_worker *w, struct conc__rconn *c, struct round *rd,
        struct conc__dist_held **hs, size_t n)
{
    const struct conc__dist_task **ts = conc__calloc(n, sizeof *ts);
    if (!ts)
        return CONC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        ts[i] = &hs[i]->t;
    int r = check_keys(w, c, rd, ts, n);
    conc__free(ts);
    if (r < 0)
        return r;
    int64_t now = conc__now_ns();
    for (size_t i = 0; i < n && r == 0; i++) {
        hs[i]->checked_ns = now;
        if (rd->state[i] == E_EXISTS) {
            r = drop_entry(w, c, hs[i]->entry);
            conc__free(hs[i]);
            hs[i] = NULL;
        }
    }
    return r;
}

/* Runs the oldest held task, checking it first (with those stale behind
 * it) if its check grew stale. Returns 1 if there was one, 0 if none is
 * held, or an error (the tasks taken go back to the queue). */
static int
serve_held(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
           struct round *rd)
{
    struct conc__dist_held **hs = rd->held;
    int64_t stale = conc__now_ns() - FLUSH_NS;
    size_t n = conc__dist_held_take(w, hs, w->batch, stale);
    if (n == 0)
        return 0;
    release_mine(w, rd); /* it must not wait for this task */
    int r = hs[0]->checked_ns < stale ? recheck(w, c, rd, hs, n) : 0;
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
    r = run_decoded(w, idx, c, hs[0]->entry, &hs[0]->t, &rd->mine);
    conc__free(hs[0]);
    return r < 0 ? r : 1;
}

static int
round_init(conc_dist_worker *w, struct round *rd)
{
    rd->reps = conc__calloc(w->batch + 2, sizeof *rd->reps);
    rd->tasks = conc__calloc(w->batch, sizeof *rd->tasks);
    rd->state = conc__calloc(w->batch, sizeof *rd->state);
    rd->verdict = conc__calloc(w->batch, sizeof *rd->verdict);
    rd->held = conc__calloc(w->batch, sizeof *rd->held);
    snprintf(rd->seen, sizeof rd->seen, "0-0");
    return rd->reps && rd->tasks && rd->state && rd->verdict && rd->held
               ? 0
               : CONC_ENOMEM;
}

static void
round_fini(struct round *rd)
{
    conc__free(rd->reps);
    conc__free(rd->tasks);
    conc__free(rd->state);
    conc__free(rd->verdict);
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

int
conc__dist_serve(conc_dist_worker *w, size_t idx, int64_t deadline)
{
    struct conc__rconn c;
    int r = conc__rconn_init(&c, w->address, w->password, w->connect_timeout);
    if (r < 0)
        return r;
    c.limit = &w->end_ns;
    struct round rd = {0};
    if ((r = round_init(w, &rd)) < 0) {
        round_fini(&rd);
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
        if (r < 0)
            continue; /* backs off inside */
        if (c.connects != seen) {
            /* Seen from the first connection on, not a beat later. */
            if (idx == 0)
                conc__dist_mark_seen(w, &c);
            if (w->nthreads > 1)
                publish_client_id(w, idx, &c);
            seen = c.connects;
        }
        if (idx == 0 && conc__now_ns() >= next_reclaim) {
            release_mine(w, &rd);
            conc__dist_reclaim(w, idx, &c);
            next_reclaim = conc__now_ns() + reclaim_every;
        }
        if (serve_held(w, idx, &c, &rd) == 0)
            read_round(w, idx, &c, &rd);
    }
    release_mine(w, &rd);  /* the writer ends after this thread */
    hand_back(w, idx, &c); /* every thread: the last one finds them all */
    round_fini(&rd);
    conc__rconn_fini(&c);
    return r == CONC_EAUTH ? r : 0;
}
