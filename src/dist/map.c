/* The Redis executor's map (conc_dist_map): Executor.map over Redis.
 *
 * Design. The iterator reads its input only as far as it needs to keep
 * max_in_flight tasks submitted, one task per item, sent in pipelined
 * batches (conc__dist_submit_items) rather than in chunks: the workers
 * run one named function per entry, and a pipeline already makes a
 * batch of tasks one round trip. The futures wait in a ring in input
 * order; conc_map_next refills the ring, then waits on the oldest and
 * hands out its result. Nothing is submitted before the first
 * conc_map_next, whose timeout bounds the wait for the server.
 *
 * A generator's items cannot be read twice, so items read but not yet
 * submitted (no room came in time) stay in `pend` and go first at the
 * next refill.
 *
 * A batch sent whose replies do not come within the caller's timeout
 * (the server hangs) is not waited for: its tasks may be in Redis or
 * not, so its futures go in the ring as if it was acknowledged, and the
 * watcher sends the tasks again until the server takes them (resend.c).
 * conc_map_next then returns CONC_ETIMEDOUT on time, and no task is left
 * in Redis without a future.
 *
 * One thread at a time uses an iterator (conc/executor.h); nothing here
 * is shared with the watcher thread but the futures, which lock
 * themselves. */
#include <string.h>

#include "core/internal.h"
#include "dist/executor_internal.h"
#include "executor/pool_engine.h"
#include "unix/coro.h"

/* Tasks in flight when the options do not say (a map over Redis feeds
 * workers on many machines: more than a local pool's two per worker). */
#define MAP_IN_FLIGHT 1024
/* A batch of submits gets at least this long for the server's replies,
 * so that a conc_map_next with timeout 0 (a poll) still submits over a
 * healthy connection instead of leaving every batch to the watcher. */
#define MAP_SEND_MIN_NS (100 * 1000 * 1000LL)

struct dist_map {
    conc_dist_executor *dx;
    char *name;
    conc_items items;
    size_t consumed; /* items read from the input */
    int input_end;   /* the input is exhausted, or failed (input_err) */
    int input_err;
    int64_t deadline; /* the whole map's, or CONC__FOREVER */
    size_t cap;       /* tasks in flight at most */
    conc_future **ring;
    size_t head, count; /* count futures in input order from head */
    size_t head_index;  /* input index of ring[head] */
    conc_future *cur;   /* the one handed out last */
    size_t last_index, done;
    conc_progress_fn progress;
    void *progress_arg;
    /* A generator's items read and not yet submitted: npend items, their
     * bytes one after another in pend. */
    conc_buf pend;
    size_t npend;
    size_t lens[CONC__DIST_BATCH_MAX];
    const void *ptrs[CONC__DIST_BATCH_MAX];
};

/* Reads generator items into pend until it holds `want` (or the input
 * ends). Returns 0 or CONC_ENOMEM (then the input ends with it). */
static int
read_generator(struct dist_map *m, size_t want)
{
    conc_buf item = CONC_BUF_INIT;
    int r = 0;
    while (m->npend < want && !m->input_end) {
        item.len = 0;
        r = m->items.next(m->items.ctx, &item);
        if (r > 0 &&
            (conc_buf_append(&m->pend, &item.len, sizeof item.len) < 0 ||
             conc_buf_append(&m->pend, item.data, item.len) < 0))
            r = conc_fail(CONC_ENOMEM, "no memory for the map's item %zu",
                          m->consumed + m->npend);
        if (r <= 0) {
            m->input_end = 1;
            m->input_err = r;
            break;
        }
        m->npend++;
    }
    conc_buf_free(&item);
    return r < 0 ? r : 0;
}

/* Points ptrs/lens at the n pending generator items. */
static void
index_pending(struct dist_map *m, size_t n)
{
    const char *p = (const char *)m->pend.data;
    for (size_t i = 0; i < n; i++) {
        memcpy(&m->lens[i], p, sizeof m->lens[i]);
        m->ptrs[i] = p + sizeof m->lens[i];
        p += sizeof m->lens[i] + m->lens[i];
    }
}

/* Drops the first n pending items (submitted). */
static void
drop_pending(struct dist_map *m, size_t n)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += sizeof m->lens[i] + m->lens[i];
    memmove(m->pend.data, (char *)m->pend.data + off, m->pend.len - off);
    m->pend.len -= off;
    m->npend -= n;
}

/* The next batch of at most `want` items. Returns how many. */
static size_t
next_batch(struct dist_map *m, size_t want, struct conc__dist_items *it)
{
    if (!m->items.next) {
        size_t left = m->items.count - m->consumed;
        *it = (struct conc__dist_items){.base = (const char *)m->items.base +
                                                m->consumed * m->items.size,
                                        .size = m->items.size};
        if (left <= want)
            m->input_end = 1;
        return left < want ? left : want;
    }
    read_generator(m, want);
    size_t n = m->npend < want ? m->npend : want;
    index_pending(m, n);
    *it = (struct conc__dist_items){.ptrs = m->ptrs, .lens = m->lens};
    return n;
}

/* Submits items until cap are in flight or the input ends, waiting for
 * room until `deadline`. Returns 0 or the submit's error. */
static int
fill(struct dist_map *m, int64_t deadline)
{
    conc_future *fs[CONC__DIST_BATCH_MAX];
    while (m->count < m->cap) {
        size_t want = m->cap - m->count;
        if (want > CONC__DIST_BATCH_MAX)
            want = CONC__DIST_BATCH_MAX;
        struct conc__dist_items it;
        size_t n = next_batch(m, want, &it), sent = 0;
        if (n == 0)
            return 0;
        int64_t send = conc__now_ns() + MAP_SEND_MIN_NS;
        if (send < deadline)
            send = deadline;
        int r = conc__dist_submit_items(m->dx, m->name, &it, n, deadline, send,
                                        1, fs, &sent);
        for (size_t i = 0; i < sent; i++)
            m->ring[(m->head + m->count++) % m->cap] = fs[i];
        m->consumed += sent;
        if (m->items.next)
            drop_pending(m, sent);
        else if (sent < n)
            m->input_end = 0; /* the rest is read again next time */
        if (r < 0)
            return r;
    }
    return 0;
}

/* Hands out the oldest future's outcome. */
static int
take_oldest(struct dist_map *m, int64_t deadline, const void **data,
            size_t *len)
{
    double left = CONC_FOREVER;
    if (deadline != CONC__FOREVER) {
        left = (double)(deadline - conc__now_ns()) / 1e9;
        left = left < 0 ? 0 : left;
    }
    conc_future *f = m->ring[m->head];
    int code;
    int r = conc_future_exception(f, left, &code);
    if (r == CONC_ETIMEDOUT)
        return conc_fail(r, "the map's next result did not come in time");
    m->ring[m->head] = NULL;
    m->head = (m->head + 1) % m->cap;
    m->count--;
    m->cur = f;
    m->last_index = m->head_index++;
    if (r == CONC_ECANCELED)
        return conc_fail(r, "the map's task was cancelled");
    return conc_future_result(f, 0, data, len); /* with its message */
}

static int
map_next(struct dist_map *m, double timeout, const void **data, size_t *len)
{
    int64_t deadline;
    if (conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    if (m->deadline < deadline)
        deadline = m->deadline;
    conc_future_free(m->cur);
    m->cur = NULL;
    int r = fill(m, deadline);
    if (r == CONC_ECLOSED && !m->input_end) {
        /* Shut down under the map: what was not submitted never runs. */
        m->input_end = 1;
        m->input_err = CONC_ECANCELED;
    }
    if (m->count == 0) {
        if (m->input_err == CONC_ECANCELED)
            return conc_fail(CONC_ECANCELED,
                             "the executor was shut down before the map's "
                             "item %zu was submitted",
                             m->consumed);
        if (r < 0)
            return r;
        return m->input_err < 0 ? m->input_err : CONC_ECLOSED;
    }
    const void *d = NULL;
    size_t l = 0;
    r = take_oldest(m, deadline, &d, &l);
    if (r == CONC_ETIMEDOUT && !m->cur)
        return r;
    m->done++;
    if (m->progress)
        m->progress(m->progress_arg, m->done,
                    !m->items.next ? m->items.count
                    : m->input_end ? m->consumed + m->npend
                                   : 0);
    if (r == 0) {
        if (data)
            *data = d;
        if (len)
            *len = l;
    }
    return r;
}

static int
ops_next(void *self, double timeout, const void **data, size_t *len)
{
    CONC__CANCEL_POINT(map_next(self, timeout, data, len));
}

static size_t
ops_index(const void *self)
{
    return ((const struct dist_map *)self)->last_index;
}

/* Cancels what has not run (each cancel claims the task's result key, so
 * no worker takes it up later; all within one bound on the wait for the
 * server) and drops the futures. */
static void
ops_free(void *self)
{
    struct dist_map *m = self;
    conc_future **fs = m->ring;
    if (m->count && m->head + m->count > m->cap) {
        /* The futures in flight wrap around the ring: two runs. */
        size_t first = m->cap - m->head;
        conc__dist_cancel_many(m->dx, fs + m->head, first);
        conc__dist_cancel_many(m->dx, fs, m->count - first);
    } else if (m->count) {
        conc__dist_cancel_many(m->dx, fs + m->head, m->count);
    }
    for (size_t i = 0; i < m->count; i++)
        conc_future_free(m->ring[(m->head + i) % m->cap]);
    conc_future_free(m->cur);
    conc_buf_free(&m->pend);
    conc__free(m->ring);
    conc__free(m->name);
    conc__free(m);
}

static const struct conc__map_ops dist_map_ops = {
    .next = ops_next,
    .index = ops_index,
    .free = ops_free,
};

/* Whether dx is shut down (the map submits nothing before its first
 * conc_map_next, which has a timeout: creating one never blocks). */
static int
executor_closed(conc_dist_executor *dx)
{
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    int closed = dx->closed;
    conc_cond_release(dx->cond);
    return closed;
}

static int
map_deadline(const conc_map_opts *o, int64_t *deadline)
{
    *deadline = CONC__FOREVER;
    if (!o || !o->timed)
        return 0;
    double t = o->timeout;
    if (t < 0 && t != CONC_FOREVER)
        t = 0; /* a deadline already past never waits forever */
    return conc__deadline(t, deadline);
}

int
conc_dist_map(conc_dist_executor *dx, const char *name, const conc_items *items,
              const conc_map_opts *opts, conc_map_iter **out)
{
    int64_t deadline;
    if (!dx || !name || !items || !out ||
        !conc__dist_name_ok(name, strlen(name)) ||
        (!items->next && ((!items->base && items->count) || !items->size)) ||
        map_deadline(opts, &deadline) < 0)
        return CONC_EINVAL;
    struct dist_map *m = conc__calloc(1, sizeof *m);
    if (!m)
        return CONC_ENOMEM;
    m->dx = dx;
    m->items = *items;
    m->deadline = deadline;
    m->cap = opts && opts->max_in_flight ? opts->max_in_flight : MAP_IN_FLIGHT;
    m->progress = opts ? opts->progress : NULL;
    m->progress_arg = opts ? opts->progress_arg : NULL;
    if (!items->next && items->count == 0)
        m->input_end = 1;
    m->name = conc__strdup(name);
    m->ring = conc__calloc(m->cap, sizeof *m->ring);
    int r = m->name && m->ring ? 0 : CONC_ENOMEM;
    if (r == 0 && executor_closed(dx))
        r = CONC_ECLOSED;
    if (r == 0)
        r = conc__map_new_ops(&dist_map_ops, m, out);
    if (r < 0)
        ops_free(m);
    return r;
}
