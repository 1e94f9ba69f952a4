/* A Redis worker's result writer: one thread with its own connection that
 * writes the results the serving threads hand it, as many at a time as
 * have come since its last write, with one script (finish_many in
 * wire.c): a result key per task, one notice per submitter for all its
 * results, one XACK for all the entries, which it removes with a trim
 * where it can (dist_internal.h says why).
 *
 * Why a thread of its own: a serving thread that wrote each result itself
 * made the server run five commands per task; one that held results back
 * to write them together would make them wait behind its next task, which
 * may be long. The writer batches without waiting: a result that comes
 * while the writer is idle goes out at once, alone; those that come while
 * a write is on its way go together with the next (group commit).
 *
 * A result not written (the server gone for FINISH_TIMEOUT, or at the
 * end of the run: CONC__DIST_END_SLACK_NS after its deadline or a stop)
 * is dropped: its task stays pending, is reclaimed after reclaim_idle and
 * runs again.
 *
 * Lock order: w->fin_cond is a leaf. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "conc/sync.h"
#include "core/internal.h"
#include "dist/worker_internal.h"

/* How long the writer keeps trying to write results, reconnecting, before
 * it leaves their tasks to be reclaimed. */
#define FINISH_TIMEOUT_NS (30 * 1000 * 1000 * 1000LL)
/* Arguments of the script's command before the tasks': EVAL script
 * numkeys task-stream group. */
#define HEAD_ARGS 5
#define KEY_MAX   (CONC__DIST_NAME_MAX * 2 + 32)

struct conc__dist_fin *
conc__dist_fin_new(const char *entry, const struct conc__dist_task *t,
                   const conc_buf *value)
{
    size_t elen = strlen(entry);
    if (elen >= CONC__DIST_ENTRY_MAX || t->id_len > CONC__DIST_NAME_MAX ||
        t->sub_len > CONC__DIST_NAME_MAX)
        return NULL;
    struct conc__dist_fin *f = conc__malloc(sizeof *f + value->len);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    memcpy(f->entry, entry, elen + 1);
    memcpy(f->id, t->id, t->id_len);
    memcpy(f->sub, t->sub, t->sub_len);
    f->t = (struct conc__dist_task){.id = f->id,
                                    .id_len = t->id_len,
                                    .sub = f->sub,
                                    .sub_len = t->sub_len,
                                    .ttl_ms = t->ttl_ms};
    f->len = value->len;
    if (value->len)
        memcpy(f->value, value->data, value->len);
    return f;
}

void
conc__dist_fin_hand(conc_dist_worker *w, struct conc__dist_fin *f)
{
    f->next = NULL;
    conc_cond_acquire(w->fin_cond, CONC_FOREVER);
    if (w->fin_tail)
        w->fin_tail->next = f;
    else
        w->fin_head = f;
    w->fin_tail = f;
    if (w->fin_waiting)
        conc_cond_notify(w->fin_cond, 1);
    conc_cond_release(w->fin_cond);
}

int
conc__dist_fin_idle(conc_dist_worker *w)
{
    conc_cond_acquire(w->fin_cond, CONC_FOREVER);
    int idle = !w->fin_head && w->fin_waiting;
    conc_cond_release(w->fin_cond);
    return idle;
}

/* Takes up to CONC__DIST_FINISH_MANY_MAX results, waiting for one until
 * the serving threads are done; NULL once they are and none is left. */
static struct conc__dist_fin *
take(conc_dist_worker *w, size_t *n)
{
    conc_cond_acquire(w->fin_cond, CONC_FOREVER);
    while (!w->fin_head && !w->fin_stop) {
        w->fin_waiting = 1;
        conc_cond_wait(w->fin_cond, CONC_FOREVER);
        w->fin_waiting = 0;
    }
    struct conc__dist_fin *list = w->fin_head, *last = list;
    *n = list ? 1 : 0;
    while (last && last->next && *n < CONC__DIST_FINISH_MANY_MAX) {
        last = last->next;
        (*n)++;
    }
    if (last) {
        w->fin_head = last->next;
        if (!w->fin_head)
            w->fin_tail = NULL;
        last->next = NULL;
    }
    conc_cond_release(w->fin_cond);
    return list;
}

/* Appends argument `p` of `len` bytes to a/l at *k. */
static void
put(const char **a, size_t *l, size_t *k, const void *p, size_t len)
{
    a[*k] = len ? p : "";
    l[(*k)++] = len;
}

/* The script's command for the n results of `list` in a/l; its keys and
 * ttls are written into `keys` (2 per result) and `ttls`. */
static void
build(conc_dist_worker *w, const struct conc__dist_fin *list, size_t n,
      const char **a, size_t *l, char (*keys)[KEY_MAX], char (*ttls)[24],
      char *nkeys)
{
    size_t k = 0, i = 0;
    snprintf(nkeys, 24, "%zu", 2 * n + 1);
    put(a, l, &k, "EVAL", 4);
    put(a, l, &k, conc__dist_finish_many_lua,
        strlen(conc__dist_finish_many_lua));
    put(a, l, &k, nkeys, strlen(nkeys));
    put(a, l, &k, w->k_tasks, strlen(w->k_tasks));
    for (const struct conc__dist_fin *f = list; f; f = f->next, i++) {
        conc__dist_keyf(keys[2 * i], KEY_MAX, w->queue, "res:%.*s",
                        (int)f->t.id_len, f->id);
        conc__dist_keyf(keys[2 * i + 1], KEY_MAX, w->queue, "done:%.*s",
                        (int)f->t.sub_len, f->sub);
        put(a, l, &k, keys[2 * i], strlen(keys[2 * i]));
        put(a, l, &k, keys[2 * i + 1], strlen(keys[2 * i + 1]));
    }
    put(a, l, &k, CONC__DIST_GROUP, strlen(CONC__DIST_GROUP));
    i = 0;
    for (const struct conc__dist_fin *f = list; f; f = f->next, i++) {
        snprintf(ttls[i], sizeof ttls[i], "%" PRIu64, f->t.ttl_ms);
        put(a, l, &k, f->value, f->len); /* bytes */
        put(a, l, &k, ttls[i], strlen(ttls[i]));
        put(a, l, &k, f->id, f->t.id_len); /* not terminated */
        put(a, l, &k, f->entry, strlen(f->entry));
    }
}

/* Writes the n results of `list` with one script, or one by one if the
 * server refuses the script. */
static void
write_all(conc_dist_worker *w, struct conc__rconn *c,
          const struct conc__dist_fin *list, size_t n)
{
    size_t argc = HEAD_ARGS + 6 * n;
    const char **a = conc__calloc(argc, sizeof *a);
    size_t *l = conc__calloc(argc, sizeof *l);
    char(*keys)[KEY_MAX] = conc__calloc(2 * n, sizeof *keys);
    char(*ttls)[24] = conc__calloc(n, sizeof *ttls);
    char nkeys[24];
    int64_t deadline = conc__now_ns() + FINISH_TIMEOUT_NS;
    int r = CONC_ENOMEM;
    if (a && l && keys && ttls) {
        build(w, list, n, a, l, keys, ttls, nkeys);
        redisReply *rep = NULL;
        r = conc__rconn_cmd(c, deadline, 1, &rep, (int)argc, a, l);
        if (r == 0) {
            r = rep->type == REDIS_REPLY_ERROR ? CONC_EPROTO : 0;
            freeReplyObject(rep);
        }
    }
    conc__free(a);
    conc__free(l);
    conc__free(keys);
    conc__free(ttls);
    if (r != CONC_EPROTO && r != CONC_ENOMEM)
        return; /* written, or the server is gone: reclaimed later */
    for (const struct conc__dist_fin *f = list; f; f = f->next) {
        conc_buf v = {(uint8_t *)f->value, f->len, f->len, 1}; /* borrowed */
        conc__dist_finish(w, c, &f->t, f->entry, &v, deadline);
    }
}

int
conc__dist_writer_main(void *arg)
{
    conc_dist_worker *w = arg;
    struct conc__rconn c;
    int r = conc__rconn_init(&c, w->address, w->password, w->connect_timeout);
    c.limit = &w->end_ns; /* a result not written by then is reclaimed */
    size_t n;
    struct conc__dist_fin *list;
    while ((list = take(w, &n)) != NULL) {
        if (r == 0)
            write_all(w, &c, list, n);
        while (list) {
            struct conc__dist_fin *next = list->next;
            conc__free(list);
            list = next;
        }
    }
    if (r == 0)
        conc__rconn_fini(&c);
    return 0;
}

void
conc__dist_writer_stop(conc_dist_worker *w)
{
    conc_cond_acquire(w->fin_cond, CONC_FOREVER);
    w->fin_stop = 1;
    conc_cond_notify_all(w->fin_cond);
    conc_cond_release(w->fin_cond);
}
