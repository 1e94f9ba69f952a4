/* Tasks sent again, and tasks claimed, by the watcher (executor_internal.h
 * says when and why).
 *
 * A copy is kept per task, with its name and argument (or, for a claim,
 * only its sequence number), in a list on the executor guarded by cond.
 * The watcher takes the whole list, drops the copies whose job has left
 * the table, XADDs the others (or SETs their result keys to "c", NX) in
 * pipelined batches on its own connection and puts back those not
 * acknowledged. Only the watcher takes from the list, so no copy is sent
 * by two threads.
 *
 * Lock order: cond alone (the watcher's connection is its own). */
#include <inttypes.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/executor_internal.h"

struct conc__dist_resend {
    struct conc__dist_resend *next;
    uint64_t seq;
    int claim;   /* a claim of its result key, not a task to send */
    size_t len;  /* bytes of argument */
    char *name;  /* points into data, after the argument */
    char data[]; /* the argument, then the name and its NUL */
};

int
conc__dist_resend_add(conc_dist_executor *dx, uint64_t seq, const char *name,
                      const void *arg, size_t len)
{
    size_t nlen = strlen(name) + 1;
    struct conc__dist_resend *c = conc__malloc(sizeof *c + len + nlen);
    if (!c)
        return CONC_ENOMEM;
    c->seq = seq;
    c->claim = 0;
    c->len = len;
    if (len)
        memcpy(c->data, arg, len);
    c->name = c->data + len;
    memcpy(c->name, name, nlen);
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    c->next = dx->resend;
    dx->resend = c;
    conc_cond_release(dx->cond);
    return 0;
}

int
conc__dist_claim_add(conc_dist_executor *dx, uint64_t seq)
{
    struct conc__dist_resend *c = conc__malloc(sizeof *c + 1);
    if (!c)
        return CONC_ENOMEM;
    *c = (struct conc__dist_resend){.seq = seq, .claim = 1, .name = c->data};
    c->data[0] = '\0';
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    c->next = dx->resend;
    dx->resend = c;
    conc_cond_release(dx->cond);
    return 0;
}

/* Whether the job of task `seq` is still in the table (its future waits
 * for this task). Holds cond. */
static int
in_table(conc_dist_executor *dx, uint64_t seq)
{
    for (struct conc__dist_job *j = dx->table[conc__dist_bucket(dx, seq)]; j;
         j = j->next)
        if (j->seq == seq)
            return 1;
    return 0;
}

/* Takes the whole list, dropping the copies no job waits for. */
static struct conc__dist_resend *
take_wanted(conc_dist_executor *dx)
{
    struct conc__dist_resend *want = NULL, *drop = NULL;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    struct conc__dist_resend *all = dx->resend;
    dx->resend = NULL;
    while (all) {
        struct conc__dist_resend *c = all;
        all = c->next;
        struct conc__dist_resend **to = in_table(dx, c->seq) ? &want : &drop;
        c->next = *to;
        *to = c;
    }
    conc_cond_release(dx->cond);
    while (drop) {
        struct conc__dist_resend *c = drop;
        drop = c->next;
        conc__free(c);
    }
    return want;
}

/* Puts copies back on the list (not acknowledged). */
static void
put_back(conc_dist_executor *dx, struct conc__dist_resend *list)
{
    if (!list)
        return;
    struct conc__dist_resend *last = list;
    while (last->next)
        last = last->next;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    last->next = dx->resend;
    dx->resend = list;
    conc_cond_release(dx->cond);
}

/* Records the entry id of task `seq` from its XADD reply, as a first
 * send does (the watcher finds a deleted entry's job by it). */
static void
note_entry(conc_dist_executor *dx, uint64_t seq, const redisReply *rep)
{
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    for (struct conc__dist_job *j = dx->table[conc__dist_bucket(dx, seq)]; j;
         j = j->next)
        if (j->seq == seq && rep->len < sizeof j->entry) {
            memcpy(j->entry, rep->str, rep->len);
            j->entry[rep->len] = '\0';
        }
    conc_cond_release(dx->cond);
}

/* Fails the future of task `seq`, whose command the server refused with
 * `rep` (`what` says what the reply should have been). */
static void
fail_job(conc_dist_executor *dx, uint64_t seq, const redisReply *rep,
         const char *what)
{
    struct conc__dist_job *j = conc__dist_take(dx, seq);
    if (!j)
        return;
    conc_future_set_exception(&j->f, CONC_EPROTO,
                              rep->type == REDIS_REPLY_ERROR ? rep->str : what);
    conc_future_free(&j->f);
}

/* The claim of task `seq` answered `rep`: won ("OK"), the job is
 * cancelled; lost (nil), the task's result exists and its notice
 * completes the job. */
static void
claimed(conc_dist_executor *dx, uint64_t seq, const redisReply *rep)
{
    if (rep->type == REDIS_REPLY_NIL)
        return;
    if (rep->type != REDIS_REPLY_STATUS) {
        fail_job(dx, seq, rep, "the server's reply to SET is no status");
        return;
    }
    struct conc__dist_job *j = conc__dist_take(dx, seq);
    if (j) {
        conc__future_cancel_pending(&j->f);
        conc_future_free(&j->f);
    }
}

/* Appends what copy `c` sends: its XADD, or the claim of its result key. */
static int
append_copy(conc_dist_executor *dx, const struct conc__dist_resend *c)
{
    if (!c->claim)
        return conc__dist_append_xadd(dx, &dx->watch, c->seq, c->name, c->data,
                                      c->len);
    return conc__rconn_appendf(&dx->watch,
                               "SET %s%s:%" PRIu64 " c NX PX %" PRIu64,
                               dx->k_res, dx->sub, c->seq, dx->ttl_ms);
}

/* Sends up to CONC__DIST_BATCH_MAX copies from *list in one round trip.
 * Frees those acknowledged (or refused: their futures fail) and moves
 * those to try again (a server still loading its data) to *again.
 * Returns 0, or an error with the batch left on *list (the connection
 * dropped). */
static int
send_some(conc_dist_executor *dx, struct conc__dist_resend **list,
          struct conc__dist_resend **again, int64_t deadline)
{
    redisReply *reps[CONC__DIST_BATCH_MAX];
    size_t n = 0;
    int r = 0;
    for (struct conc__dist_resend *c = *list;
         c && n < CONC__DIST_BATCH_MAX && r == 0; c = c->next, n++)
        r = append_copy(dx, c);
    if (r == 0)
        r = conc__rconn_pipeline(&dx->watch, deadline, n, reps);
    else
        conc__rconn_close(&dx->watch); /* drops what was appended */
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        struct conc__dist_resend *c = *list;
        *list = c->next;
        if (conc__reply_transient(reps[i]) < 0) {
            c->next = *again;
            *again = c;
            c = NULL;
        } else if (c->claim) {
            claimed(dx, c->seq, reps[i]);
        } else if (reps[i]->type == REDIS_REPLY_STRING) {
            note_entry(dx, c->seq, reps[i]);
        } else {
            fail_job(dx, c->seq, reps[i],
                     "the server's reply to XADD is no entry id");
        }
        freeReplyObject(reps[i]);
        conc__free(c);
    }
    return 0;
}

void
conc__dist_resend_run(conc_dist_executor *dx, int64_t deadline)
{
    struct conc__dist_resend *list = take_wanted(dx), *again = NULL;
    while (list && dx->watch.ctx)
        if (send_some(dx, &list, &again, deadline) < 0)
            break;
    put_back(dx, list);
    put_back(dx, again);
}

void
conc__dist_resend_free(conc_dist_executor *dx)
{
    while (dx->resend) {
        struct conc__dist_resend *c = dx->resend;
        dx->resend = c->next;
        conc__free(c);
    }
}
