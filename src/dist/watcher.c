/* The Redis executor's result watcher: one thread per executor that reads
 * the submitter's done stream and completes futures (design in
 * executor.c).
 *
 * Why a stream read with XREAD and not a list popped with BLPOP: XREAD
 * leaves the entry in place until the watcher deletes it, and the watcher
 * resumes after the last entry id it handled, so a connection lost while a
 * reply is on its way loses nothing; a BLPOP'ed element is gone from the
 * server before its reply arrives. After a reconnection the watcher also
 * looks up the result key of every future still in flight, for a result
 * whose notice the server lost (a restart without appendfsync always).
 * Each round first sends again the tasks a map could not confirm in time
 * (resend.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/executor_internal.h"
#include "dist/trace.h"

/* How long one XREAD blocks: the longest the watcher takes to see that it
 * should stop when nobody wakes it. */
#define BLOCK_MS "500"
/* Entries read at a time. */
#define READ_COUNT   "256"
#define READ_COUNT_N 256
/* The deadline of one round: the block plus a connection attempt. */
#define ROUND_NS (1500 * 1000 * 1000LL)
/* Result keys looked up per round trip after a reconnection. */
#define RECOVER_BATCH 256

/* Fields of a notice decoded at a time (16 results; a worker's notice
 * holds up to CONC__DIST_FINISH_MANY_MAX): no allocation per entry. */
#define NOTICE_WINDOW 64

#ifdef CONC_DIST_TRACE
/* Stamps `stage` for this submitter's task `seq` (trace.h). */
static void
trace_seq(const conc_dist_executor *dx, const char *stage, uint64_t seq)
{
    char id[CONC__DIST_NAME_MAX + 24];
    int n = snprintf(id, sizeof id, "%s:%" PRIu64, dx->sub, seq);
    conc__dist_trace(stage, id, n > 0 ? (size_t)n : 0);
}
#else
#define trace_seq(dx, stage, seq) ((void)0)
#endif

/* Completes the job of one result of a notice (conc__dist_notice_fn). */
static void
complete_one(void *arg, uint64_t seq, const char *v, size_t len)
{
    trace_seq(arg, "notice", seq);
    struct conc__dist_job *j = conc__dist_take(arg, seq);
    if (j)
        conc__dist_complete(j, v, len);
    trace_seq(arg, "done", seq);
}

static int
is_r_field(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING && r->len == 1 && r->str[0] == 'r';
}

/* How many of the `m` fields from `at` make a window: up to its last "r"
 * pair, unless it is the last window, so that an "id" and its "r" are
 * always decoded together (even with fields between them). */
static size_t
window_end(const redisReply *f, size_t at, size_t m)
{
    if (at + m >= f->elements)
        return m;
    for (size_t k = m; k >= 2; k -= 2)
        if (is_r_field(f->element[at + k - 2]))
            return k;
    return m; /* no result in it: nothing to split */
}

/* Handles one entry [id, [field, value, ...]] of the done stream: pairs
 * of fields id and r, one pair per result (a worker writes several
 * results of one submitter in one entry); a wake-up entry has none. The
 * fields go to conc__dist_notice_decode, a pure function, a window of
 * pairs at a time. */
static void
handle_entry(conc_dist_executor *dx, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *f = e->element[1];
    const char *vals[NOTICE_WINDOW];
    size_t lens[NOTICE_WINDOW];
    for (size_t at = 0; at + 1 < f->elements;) {
        size_t m =
            f->elements - at < NOTICE_WINDOW ? f->elements - at : NOTICE_WINDOW;
        m = window_end(f, at, m);
        for (size_t i = 0; i < m; i++) {
            const redisReply *r = f->element[at + i];
            int str = r->type == REDIS_REPLY_STRING;
            vals[i] = str ? r->str : NULL;
            lens[i] = str ? r->len : 0;
        }
        conc__dist_notice_decode(dx->sub, m, vals, lens, complete_one, dx);
        at += m;
    }
}

/* The done entries handled and not yet deleted: their XDEL goes with the
 * next XREAD, in the same round trip. */
struct to_delete {
    char ids[READ_COUNT_N][CONC__DIST_ENTRY_MAX];
    size_t n;
};

/* Appends the XDEL of the entries handled, if any. Returns how many
 * commands it appended (0 or 1) or an error. */
static int
append_delete(conc_dist_executor *dx, const struct to_delete *del)
{
    if (!del->n)
        return 0;
    const char *argv[READ_COUNT_N + 2];
    size_t lens[READ_COUNT_N + 2];
    argv[0] = "XDEL";
    argv[1] = dx->k_done;
    for (size_t i = 0; i < del->n; i++)
        argv[i + 2] = del->ids[i];
    for (size_t i = 0; i < del->n + 2; i++)
        lens[i] = strlen(argv[i]);
    int r = conc__rconn_append(&dx->watch, (int)(del->n + 2), argv, lens);
    return r < 0 ? r : 1;
}

/* Fails the job of a task entry deleted from the stream while it was
 * pending (a worker's XAUTOCLAIM reported it), unless its result came. */
static void
handle_lost(conc_dist_executor *dx, const redisReply *e, int64_t deadline)
{
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements != 2 ||
        f->element[1]->type != REDIS_REPLY_STRING)
        return;
    struct conc__dist_job *j =
        conc__dist_take_entry(dx, f->element[1]->str, f->element[1]->len);
    if (!j)
        return; /* another submitter's */
    redisReply *rep = NULL;
    if (conc__rconn_cmdf(&dx->watch, deadline, 0, &rep, "GET %s%s:%" PRIu64,
                         dx->k_res, dx->sub, j->seq) == 0 &&
        rep->type == REDIS_REPLY_STRING) {
        conc__dist_complete(j, rep->str, rep->len);
    } else {
        static const char v[] = "e-10003 " CONC__DIST_DELETED_MSG;
        _Static_assert(CONC_EBROKEN == -10003, "the code in the value");
        conc__dist_complete(j, v, sizeof v - 1);
    }
    if (rep)
        freeReplyObject(rep);
}

/* Handles the entries of one stream of an XREAD reply; `last` becomes
 * the last entry id handled; the done entries go to `del`. */
static void
handle_stream(conc_dist_executor *dx, const redisReply *s, char *last,
              struct to_delete *del, int64_t deadline)
{
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
        s->element[0]->type != REDIS_REPLY_STRING ||
        s->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    int lost = strcmp(s->element[0]->str, dx->k_lost) == 0;
    const redisReply *entries = s->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            break;
        if (lost)
            handle_lost(dx, e, deadline);
        else
            handle_entry(dx, e);
        snprintf(last, CONC__DIST_ENTRY_MAX, "%s", e->element[0]->str);
        if (!lost && del->n < READ_COUNT_N)
            memcpy(del->ids[del->n++], last, CONC__DIST_ENTRY_MAX);
    }
}

/* One XREAD of the done stream and the lost-entry notices, after the
 * XDEL of the done entries handled last round, in one round trip;
 * handles what it brings. */
static void
read_round(conc_dist_executor *dx, char *last_done, char *last_lost,
           struct to_delete *del)
{
    int64_t deadline = conc__now_ns() + ROUND_NS;
    redisReply *reps[2], *rep;
    int m = append_delete(dx, del);
    int r =
        m < 0
            ? m
            : conc__rconn_appendf(&dx->watch,
                                  "XREAD COUNT " READ_COUNT " BLOCK " BLOCK_MS
                                  " STREAMS %s %s %s %s",
                                  dx->k_done, dx->k_lost, last_done, last_lost);
    if (r < 0)
        conc__rconn_close(&dx->watch);
    if (r < 0 ||
        conc__rconn_pipeline(&dx->watch, deadline, (size_t)m + 1, reps) < 0)
        return; /* the XDEL goes with the next round */
    if (m)
        freeReplyObject(reps[0]);
    del->n = 0;
    rep = reps[m];
    /* [[stream, [entry, ...]], ...] or nil when the block ran out. */
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements;
         i++) {
        const redisReply *s = rep->element[i];
        int lost = s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
                   s->element[0]->type == REDIS_REPLY_STRING &&
                   strcmp(s->element[0]->str, dx->k_lost) == 0;
        handle_stream(dx, s, lost ? last_lost : last_done, del, deadline);
    }
    freeReplyObject(rep);
}

/* The id of the newest lost-entry notice, so that the watcher reads only
 * those that come after it starts. */
static void
newest_lost(conc_dist_executor *dx, char *last)
{
    redisReply *rep = NULL;
    if (conc__rconn_cmdf(&dx->watch, conc__now_ns() + ROUND_NS, 0, &rep,
                         "XREVRANGE %s + - COUNT 1", dx->k_lost) < 0)
        return;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements == 2 &&
        rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(last, CONC__DIST_ENTRY_MAX, "%s",
                 rep->element[0]->element[0]->str);
    freeReplyObject(rep);
}

/* The sequence numbers of up to `max` jobs in flight, from `*bucket` on
 * (whole buckets, unless one alone has more than `max`). */
static size_t
collect_seqs(conc_dist_executor *dx, size_t *bucket, uint64_t *seqs, size_t max)
{
    size_t n = 0;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    for (; *bucket < dx->nbuckets; (*bucket)++) {
        size_t k = 0;
        for (struct conc__dist_job *j = dx->table[*bucket]; j; j = j->next)
            k++;
        if (n > 0 && n + k > max)
            break; /* this bucket goes in the next batch */
        for (struct conc__dist_job *j = dx->table[*bucket]; j && n < max;
             j = j->next)
            seqs[n++] = j->seq;
    }
    conc_cond_release(dx->cond);
    return n;
}

/* After a reconnection: GETs the result key of every job in flight and
 * completes those that have one (their notice may have been lost). */
static void
recover(conc_dist_executor *dx)
{
    uint64_t seqs[RECOVER_BATCH];
    redisReply *reps[RECOVER_BATCH];
    size_t bucket = 0, n;
    while ((n = collect_seqs(dx, &bucket, seqs, RECOVER_BATCH)) > 0) {
        int64_t deadline = conc__now_ns() + ROUND_NS;
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
            r = conc__rconn_appendf(&dx->watch, "GET %s%s:%" PRIu64, dx->k_res,
                                    dx->sub, seqs[i]);
        if (r < 0)
            conc__rconn_close(&dx->watch);
        if (r < 0 || conc__rconn_pipeline(&dx->watch, deadline, n, reps) < 0)
            return; /* the next reconnection tries again */
        for (size_t i = 0; i < n; i++) {
            struct conc__dist_job *j;
            if (reps[i]->type == REDIS_REPLY_STRING &&
                (j = conc__dist_take(dx, seqs[i])) != NULL)
                conc__dist_complete(j, reps[i]->str, reps[i]->len);
            freeReplyObject(reps[i]);
        }
    }
}

int
conc__dist_watcher_main(void *arg)
{
    conc_dist_executor *dx = arg;
    char last_done[CONC__DIST_ENTRY_MAX] = "0-0";
    char last_lost[CONC__DIST_ENTRY_MAX] = "";
    int seen = 0;                    /* connections handled */
    struct to_delete del = {.n = 0}; /* 12 KB: the thread's stack is larger */
    while (!atomic_load(&dx->stopping)) {
        if (conc__rconn_ensure(&dx->watch, conc__now_ns() + ROUND_NS) < 0)
            continue; /* backs off inside */
        if (dx->watch.connects != seen) {
            if (seen)
                recover(dx);
            seen = dx->watch.connects;
            if (!dx->watch.ctx)
                continue;
        }
        if (!last_lost[0]) {
            snprintf(last_lost, sizeof last_lost, "0-0");
            newest_lost(dx, last_lost);
        }
        if (!atomic_load(&dx->stopping))
            conc__dist_resend_run(dx, conc__now_ns() + ROUND_NS);
        read_round(dx, last_done, last_lost, &del);
    }
    return 0;
}
