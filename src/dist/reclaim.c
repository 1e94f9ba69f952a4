/* Taking over the tasks of dead workers, and dead letters.
 *
 * An entry stays in the consumer group's pending list (PEL) from its
 * delivery until its worker acknowledges it. A live worker renews its
 * running tasks' claims (monitor.c), so an entry idle for reclaim_idle
 * belongs to a worker that died or lost the server: XAUTOCLAIM hands it to
 * this worker, which raises its delivery count. An entry delivered more
 * than max_deliveries times (a task that kills its worker every time) is
 * copied to the dead-letter stream and its future failed with the count,
 * instead of being run again. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/worker_internal.h"

/* Entries taken over per XAUTOCLAIM, and XAUTOCLAIM calls per round (the
 * serving thread goes back to new tasks in between). */
#define CLAIM_COUNT  "16"
#define CLAIM_ROUNDS 4
#define ROUND_NS     (2000 * 1000 * 1000LL)

/* The delivery count of `entry`, from the pending list; 0 if unknown. */
static uint64_t
deliveries_of(conc_dist_worker *w, struct conc__rconn *c, const char *entry)
{
    redisReply *rep = NULL;
    uint64_t n = 0;
    if (conc__rconn_cmdf(c, conc__now_ns() + ROUND_NS, 0, &rep,
                         "XPENDING %s %s %s %s 1", w->k_tasks, CONC__DIST_GROUP,
                         entry, entry) < 0)
        return 0;
    /* [[id, consumer, idle ms, deliveries]] */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements == 4 &&
        rep->element[0]->element[3]->type == REDIS_REPLY_INTEGER &&
        rep->element[0]->element[3]->integer > 0)
        n = (uint64_t)rep->element[0]->element[3]->integer;
    freeReplyObject(rep);
    return n;
}

/* Copies the entry to the dead-letter stream with its count. */
static int
copy_to_dead(conc_dist_worker *w, struct conc__rconn *c, const redisReply *e,
             uint64_t deliveries)
{
    const redisReply *f = e->element[1];
    size_t n = 7 + f->elements;
    const char **argv = conc__malloc(n * sizeof *argv);
    size_t *lens = conc__malloc(n * sizeof *lens);
    char count[24];
    snprintf(count, sizeof count, "%" PRIu64, deliveries);
    int r = CONC_ENOMEM;
    if (argv && lens) {
        const char *head[] = {"XADD",  w->k_dead,          "*",
                              "entry", e->element[0]->str, "deliveries",
                              count};
        for (size_t i = 0; i < 7; i++) {
            argv[i] = head[i];
            lens[i] = strlen(head[i]);
        }
        for (size_t i = 0; i < f->elements; i++) {
            argv[7 + i] = f->element[i]->str;
            lens[7 + i] = f->element[i]->len;
        }
        redisReply *rep = NULL;
        r = conc__rconn_cmd(c, conc__now_ns() + ROUND_NS, 1, &rep, (int)n, argv,
                            lens);
        if (r == 0)
            freeReplyObject(rep);
    }
    conc__free(argv);
    conc__free(lens);
    return r;
}

/* Dead-letters the entry `e` and fails its future with the count. */
static int
dead_letter(conc_dist_worker *w, struct conc__rconn *c, const redisReply *e,
            uint64_t deliveries)
{
    const redisReply *f = e->element[1];
    const char *vals[32];
    size_t lens[32], n = 0;
    for (; n < f->elements && n < 32; n++) {
        if (f->element[n]->type != REDIS_REPLY_STRING)
            return CONC_EPROTO;
        vals[n] = f->element[n]->str;
        lens[n] = f->element[n]->len;
    }
    int r = copy_to_dead(w, c, e, deliveries);
    struct conc__dist_task t;
    const char *why;
    if (r < 0 || conc__dist_task_decode(n - n % 2, vals, lens, &t, &why) < 0)
        return r; /* a malformed entry: its copy is all there is */
    char msg[160];
    int ml = snprintf(msg, sizeof msg,
                      "delivered %" PRIu64 " times without a result "
                      "(max_deliveries %u): moved to the dead-letter stream",
                      deliveries, w->max_deliveries);
    conc_buf v = CONC_BUF_INIT;
    r = conc__dist_result_encode(&v, CONC_EBROKEN, msg, (size_t)ml);
    if (r == 0)
        r = conc__dist_finish(w, c, &t, e->element[0]->str, &v,
                              conc__now_ns() + ROUND_NS);
    conc_buf_free(&v);
    return r;
}

int
conc__dist_report_lost(conc_dist_worker *w, struct conc__rconn *c,
                       const char *entry, size_t len)
{
    redisReply *rep = NULL;
    int r =
        conc__rconn_cmdf(c, conc__now_ns() + ROUND_NS, 1, &rep,
                         "XADD %s MAXLEN ~ " CONC__DIST_LOST_KEEP " * entry %b",
                         w->k_lost, entry, len);
    if (r == 0)
        freeReplyObject(rep);
    return r;
}

/* Reports the ids XAUTOCLAIM found deleted (its third element, Redis 7):
 * it has dropped them from the pending list, so without a notice their
 * futures would wait forever. */
static int
report_deleted(conc_dist_worker *w, struct conc__rconn *c,
               const redisReply *rep)
{
    if (rep->elements < 3 || rep->element[2]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *ids = rep->element[2];
    int r = 0;
    for (size_t i = 0; i < ids->elements && r == 0; i++)
        if (ids->element[i]->type == REDIS_REPLY_STRING)
            r = conc__dist_report_lost(w, c, ids->element[i]->str,
                                       ids->element[i]->len);
    return r;
}

/* One XAUTOCLAIM from `cursor`; handles the entries it hands over. */
static int
claim_round(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
            char *cursor, size_t size)
{
    redisReply *rep = NULL;
    int r = conc__rconn_cmdf(
        c, conc__now_ns() + ROUND_NS, 0, &rep,
        "XAUTOCLAIM %s %s %s %" PRId64 " %s COUNT " CLAIM_COUNT, w->k_tasks,
        CONC__DIST_GROUP, w->slots[idx].consumer, w->reclaim_idle_ms, cursor);
    if (r < 0)
        return r;
    /* [next cursor, [entries], [deleted ids]] */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return CONC_EPROTO;
    }
    snprintf(cursor, size, "%s", rep->element[0]->str);
    r = report_deleted(w, c, rep);
    const redisReply *entries = rep->element[1];
    for (size_t i = 0; i < entries->elements && r == 0; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            continue; /* deleted entries come as [id, nil] before 7.0 */
        uint64_t n = deliveries_of(w, c, e->element[0]->str);
        if (n > w->max_deliveries)
            r = dead_letter(w, c, e, n);
        else
            r = conc__dist_handle(w, idx, c, e, n);
    }
    freeReplyObject(rep);
    return r;
}

int
conc__dist_reclaim(conc_dist_worker *w, size_t idx, struct conc__rconn *c)
{
    char cursor[64] = "0-0";
    int r = 0;
    for (int i = 0; i < CLAIM_ROUNDS && r == 0 && !atomic_load(&w->stop); i++) {
        r = claim_round(w, idx, c, cursor, sizeof cursor);
        if (strcmp(cursor, "0-0") == 0)
            break;
    }
    return r;
}
