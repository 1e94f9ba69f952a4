/* Lazy maps: Executor.map, Pool.imap and imap_unordered.
 *
 * Design. The iterator reads its input only as far as it needs to keep
 * max_in_flight chunks submitted; each chunk is one task (chunk.c). In
 * input order it waits on the oldest chunk; in completion order a watch on
 * every chunk in flight queues the chunks as they finish. A chunk's result
 * holds one outcome per item, handed out one by one; the data a call
 * returns stays in the chunk's future until the next call.
 *
 * Completion order. Each slot has its own watch, so a notification knows
 * its slot without reading the slot array, which the consumer rewrites as
 * it submits and takes chunks. A notification runs in the completing
 * thread under that future's lock and touches the iterator only under
 * it->lock: it queues the slot's index, bumps seq and wakes a sleeping
 * consumer, all before it releases it->lock. The consumer takes an index
 * under the same lock, so once it holds a finished chunk, that chunk's
 * notification has left the iterator for good. conc_map_free unwatches
 * every chunk still in a slot; unwatch takes the future's lock, so a
 * notification still running for it is over when unwatch returns. No
 * notification can then touch the iterator after it is freed.
 *
 * Lock order: a future's lock, then it->lock. */
#include <stddef.h>
#include <string.h>

#include "executor/executor_internal.h"
#include "unix/futex.h"
#include "unix/coro.h"

struct slot {
    conc_future *f;
    size_t first, n;          /* input indexes first .. first + n - 1 */
    struct conc__watch watch; /* unordered: this slot's, set at creation */
    conc_map_iter *it;        /* set at creation, read by notifications */
    struct conc__watch_link link;
};

struct conc_map_iter {
    conc_executor *ex;
    conc_task_fn fn;
    conc_items items;
    size_t consumed; /* items read from the input */
    int input_end;   /* 1 at the end of the input, or its error */
    int input_err;
    size_t chunksize, cap;
    int ordered;
    int64_t deadline;    /* the whole map's, or CONC__FOREVER */
    struct slot *slots;  /* the consumer's; notifications read only the
                            pointer and their own slot's `it` */
    size_t head, count;  /* ordered: a ring of count slots from head */
    conc__lockword lock; /* unordered: guards ready, ready_head, nready,
                            and orders seq and sleeping with them */
    size_t *ready, ready_head, nready;
    _Atomic uint32_t seq, sleeping; /* a futex word and its sleeper flag */
    struct slot cur;                /* the chunk being handed out */
    size_t cur_pos, cur_index, cur_left;
    size_t last_index;
    size_t done; /* items handed out, for progress */
    conc_progress_fn progress;
    void *progress_arg;
    conc_buf chunk, item;
    /* Process executors: one log per slot in the shared arena (chunk.c),
     * and what a chunk that ended early or died left, handed out instead
     * of its result. */
    conc_arena *arena;
    struct conc__chunk_log *logs;
    conc_buf salvage;
    const conc_buf *cur_res;
    /* Set for a map served elsewhere (conc__map_new_ops): every call
     * forwards to ops with self, and the fields above stay unused. */
    const struct conc__map_ops *ops;
    void *self;
};

/* A chunk finished: queue its slot for the consumer. */
static void
ready_notify(struct conc__watch *w, conc_future *f)
{
    CONC__UNUSED(f);
    struct slot *s = (struct slot *)((char *)w - offsetof(struct slot, watch));
    conc_map_iter *it = s->it;
    conc__lockword_acquire(&it->lock, CONC__FOREVER, 0);
    it->ready[(it->ready_head + it->nready++) % it->cap] =
        (size_t)(s - it->slots);
    atomic_fetch_add_explicit(&it->seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&it->sleeping, memory_order_seq_cst))
        conc__futex_wake(&it->seq, 1, 0);
    conc__lockword_release(&it->lock, 0);
}

/* ---- Feeding ------------------------------------------------------------ */

/* Adds the next input item to it->chunk. Returns 1, 0 at the end of the
 * input, or CONC_ENOMEM. An array item that did not fit is read again next
 * time; a generator's item cannot be, so its loss ends the input with the
 * failure, as the generator's own failure would. */
static int
add_item(conc_map_iter *it)
{
    int r;
    if (it->items.next) {
        it->item.len = 0;
        r = it->items.next(it->items.ctx, &it->item);
        if (r > 0 &&
            conc__chunk_add(&it->chunk, it->item.data, it->item.len) < 0)
            r = conc_fail(CONC_ENOMEM, "no memory for the map's item %zu",
                          it->consumed);
        if (r <= 0) {
            it->input_end = 1;
            it->input_err = r;
            return r;
        }
        return 1;
    }
    if (it->consumed == it->items.count) {
        it->input_end = 1;
        return 0;
    }
    const uint8_t *p = it->items.base;
    r = conc__chunk_add(&it->chunk, p + it->consumed * it->items.size,
                        it->items.size);
    return r < 0 ? r : 1;
}

/* Reads up to chunksize items into it->chunk and stores how many in *n.
 * Returns 0, or CONC_ENOMEM when not even one item could be read. */
static int
read_chunk(conc_map_iter *it, size_t *n)
{
    *n = 0;
    int r = conc__chunk_begin(&it->chunk, it->fn);
    void *log = NULL; /* its slot's, set by fill */
    if (r == 0 && it->logs)
        r = conc_buf_append(&it->chunk, &log, sizeof log);
    if (r < 0)
        return r; /* without its task the chunk must not run */
    while (*n < it->chunksize && !it->input_end) {
        r = add_item(it);
        if (r <= 0)
            break;
        it->consumed++;
        (*n)++;
    }
    return r < 0 && *n == 0 && !it->input_end ? r : 0;
}

/* A free slot index for unordered maps. */
static size_t
free_slot(conc_map_iter *it)
{
    size_t i = 0;
    while (it->slots[i].f)
        i++;
    return i;
}

/* Submits the chunk in it->chunk, of `n` items from `first`, in slot i,
 * with that slot's log. Returns 0 or the submit's error. */
static int
submit_chunk(conc_map_iter *it, size_t i, size_t first, size_t n)
{
    struct slot *s = &it->slots[i];
    conc_task_fn task = conc__chunk_task;
    if (it->logs) {
        struct conc__chunk_log *log = &it->logs[i];
        atomic_store_explicit(&log->done, 0, memory_order_relaxed);
        atomic_store_explicit(&log->used, 0, memory_order_relaxed);
        memcpy(it->chunk.data + sizeof(conc_task_fn), &log, sizeof log);
        task = conc__chunk_task_logged;
    }
    int r = conc__executor_submit(it->ex, task, it->chunk.data, it->chunk.len,
                                  -1, 0, NULL, 0, &s->f);
    if (r < 0)
        return r;
    s->first = first;
    s->n = n;
    it->count++;
    if (!it->ordered) {
        s->link.watch = &s->watch;
        s->link.future = s->f;
        if (!conc__future_watch(&s->link))
            ready_notify(&s->watch, s->f);
    }
    return 0;
}

/* Submits chunks until cap are in flight or the input ends. Returns 0, a
 * submit error, or CONC_ENOMEM when no chunk could be built (the caller
 * may call again). */
static int
fill(conc_map_iter *it)
{
    while (it->count < it->cap && !it->input_end) {
        size_t first = it->consumed, n;
        int r = read_chunk(it, &n);
        if (r < 0)
            return r;
        if (n == 0)
            break;
        size_t i =
            it->ordered ? (it->head + it->count) % it->cap : free_slot(it);
        if ((r = submit_chunk(it, i, first, n)) < 0)
            return r;
    }
    return 0;
}

/* ---- Chunks that end early or die -------------------------------------- */

/* How many whole outcomes `b` holds; `b` is cut to them. */
static size_t
whole_outcomes(conc_buf *b)
{
    size_t pos = 0, k = 0, end = 0, mlen, len;
    int code;
    const char *msg;
    const void *data;
    while (conc__chunk_next(b, &pos, &code, &msg, &mlen, &data, &len) == 1) {
        k++;
        end = pos;
    }
    b->len = end;
    return k;
}

/* Runs the items of the current chunk from its item `skip` on as a new
 * chunk in slot i, the one the current chunk left: the next to be taken
 * in input order. Returns 0 or the submit's error. */
static int
rerun_rest(conc_map_iter *it, size_t i, size_t skip)
{
    conc_future *f = it->cur.f;
    const uint8_t *p = conc__job_of(f)->arg, *end = p + conc__job_of(f)->len;
    size_t head = sizeof(conc_task_fn) + sizeof(void *);
    p += head;
    for (size_t k = 0; k < skip; k++) { /* our own bytes: well formed */
        uint64_t n;
        memcpy(&n, p, 8);
        p += 8 + ((n + 7) & ~(uint64_t)7);
    }
    it->chunk.len = 0;
    int r = conc_buf_append(&it->chunk, conc__job_of(f)->arg, head);
    if (r == 0 && end > p)
        r = conc_buf_append(&it->chunk, p, (size_t)(end - p));
    if (r < 0)
        return r;
    if (it->ordered)
        it->head = i;
    r = submit_chunk(it, i, it->cur.first + skip, it->cur.n - skip);
    if (r < 0 && it->ordered)
        it->head = (i + 1) % it->cap;
    return r;
}

/* Hands out, in place of the current chunk's result, the outcomes it
 * kept: those of its result when it ended early (its log was full), or of
 * its log when its worker died, then the failure of the item it died in.
 * The items after them run again as a new chunk. The log was written by
 * another process: only the outcomes that parse are kept. */
static void
salvage(conc_map_iter *it, size_t i)
{
    conc_future *f = it->cur.f;
    int died = f->code == CONC_EBROKEN || f->code == CONC_ETIMEDOUT;
    if (!it->logs || conc_future_cancelled(f) || (f->code < 0 && !died))
        return;
    conc_buf *kept = &it->salvage;
    kept->len = 0;
    const struct conc__chunk_log *log = &it->logs[i];
    uint64_t used = atomic_load_explicit(&log->used, memory_order_acquire);
    const uint8_t *src = died ? log->bytes : f->result.data;
    size_t len = died ? (used < sizeof log->bytes ? used : sizeof log->bytes)
                      : f->result.len;
    if (conc_buf_append(kept, src, len) < 0)
        return; /* then the whole chunk fails, as before */
    size_t k = whole_outcomes(kept);
    if (k > it->cur.n || (!died && k == it->cur.n))
        return;
    size_t skip = k;
    if (died && k < it->cur.n) {
        if (conc__chunk_put_failure(kept, f->code, conc_future_message(f)) < 0)
            return;
        skip++;
    }
    int r = skip < it->cur.n ? rerun_rest(it, i, skip) : 0;
    for (size_t j = skip; r < 0 && j < it->cur.n; j++)
        conc__chunk_put_failure(kept, r,
                                "the rest of a chunk whose worker "
                                "died could not run again");
    it->cur.n = r < 0 ? it->cur.n : skip;
    it->cur_res = kept;
}

/* ---- Taking chunks ------------------------------------------------------ */

static int
wait_ready(conc_map_iter *it, int64_t deadline, size_t *out)
{
    for (;;) {
        uint32_t seen = atomic_load(&it->seq);
        conc__lockword_acquire(&it->lock, CONC__FOREVER, 0);
        int got = it->nready > 0;
        if (got) {
            *out = it->ready[it->ready_head];
            it->ready_head = (it->ready_head + 1) % it->cap;
            it->nready--;
        }
        conc__lockword_release(&it->lock, 0);
        if (got)
            return 0;
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
        atomic_store_explicit(&it->sleeping, 1, memory_order_seq_cst);
        int r = 0;
        if (atomic_load_explicit(&it->seq, memory_order_seq_cst) == seen)
            r = conc__futex_wait(&it->seq, seen, deadline, 0);
        atomic_store_explicit(&it->sleeping, 0, memory_order_relaxed);
        if (r == -ETIMEDOUT && atomic_load(&it->seq) == seen)
            return CONC_ETIMEDOUT;
    }
}

/* Makes the next finished chunk current. Returns 0, CONC_ECLOSED at the
 * end, CONC_ETIMEDOUT. */
static int
take_chunk(conc_map_iter *it, int64_t deadline)
{
    int r = fill(it);
    if (r < 0 && it->count == 0)
        return r; /* in-flight chunks first: they may carry cancellations */
    if (it->count == 0)
        return it->input_err < 0 ? it->input_err : CONC_ECLOSED;
    size_t i = it->head;
    if (it->ordered) {
        struct slot *s = &it->slots[i];
        double left = CONC_FOREVER;
        if (deadline != CONC__FOREVER) {
            left = (double)(deadline - conc__now_ns()) / 1e9;
            left = left < 0 ? 0 : left;
        }
        int code;
        r = conc_future_exception(s->f, left, &code);
        if (r == CONC_ETIMEDOUT)
            return r;
        it->head = (it->head + 1) % it->cap;
    } else if ((r = wait_ready(it, deadline, &i)) < 0) {
        return r;
    }
    it->cur = it->slots[i];
    it->slots[i].f = NULL;
    it->count--;
    it->cur_res = &it->cur.f->result;
    salvage(it, i);
    it->cur_pos = 0;
    it->cur_index = it->cur.first;
    it->cur_left = it->cur.n;
    return 0;
}

/* Hands out the current chunk's next outcome. */
static int
next_outcome(conc_map_iter *it, const void **data, size_t *len)
{
    conc_future *f = it->cur.f;
    int code;
    it->last_index = it->cur_index++;
    it->cur_left--;
    if (conc_future_cancelled(f))
        return conc_fail(CONC_ECANCELED, "the map's chunk was cancelled");
    if (f->code < 0 && it->cur_res == &f->result) /* the whole chunk */
        return conc_fail(f->code, "%s", conc_future_message(f));
    const char *msg;
    size_t mlen;
    int r = conc__chunk_next(it->cur_res, &it->cur_pos, &code, &msg, &mlen,
                             data, len);
    if (r <= 0)
        return conc_fail(CONC_EPROTO, "a chunk result is malformed");
    if (code < 0)
        return conc_fail(code, "%.*s", (int)mlen, msg);
    return 0;
}

static int
map_next_uncancelled(conc_map_iter *it, double timeout, const void **data,
                     size_t *len)
{
    int64_t deadline;
    if (!it || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    if (it->ops)
        return it->ops->next(it->self, timeout, data, len);
    if (it->deadline < deadline)
        deadline = it->deadline;
    if (it->cur.f && it->cur_left == 0) {
        conc_future_free(it->cur.f);
        it->cur.f = NULL;
    }
    if (!it->cur.f) {
        int r = take_chunk(it, deadline);
        if (r == CONC_ETIMEDOUT)
            return conc_fail(r, "the map's next result did not come in time");
        if (r < 0)
            return r;
    }
    const void *d = NULL;
    size_t l = 0;
    int r = next_outcome(it, &d, &l);
    it->done++;
    if (it->progress)
        it->progress(it->progress_arg, it->done,
                     !it->items.next ? it->items.count
                     : it->input_end ? it->consumed
                                     : 0);
    if (r == 0) {
        if (data)
            *data = d;
        if (len)
            *len = l;
    }
    return r;
}

int
conc_map_next(conc_map_iter *it, double timeout, const void **data, size_t *len)
{
    CONC__CANCEL_POINT(map_next_uncancelled(it, timeout, data, len));
}

size_t
conc_map_index(const conc_map_iter *it)
{
    if (it && it->ops)
        return it->ops->index(it->self);
    return it ? it->last_index : 0;
}

/* ---- Life --------------------------------------------------------------- */

void
conc_map_free(conc_map_iter *it)
{
    if (!it)
        return;
    if (it->ops) {
        it->ops->free(it->self);
        conc__free(it);
        return;
    }
    for (size_t i = 0; it->slots && i < it->cap; i++) {
        struct slot *s = &it->slots[i];
        if (!s->f)
            continue;
        /* After this no notification through the slot runs or will. */
        if (!it->ordered)
            conc__future_unwatch(&s->link);
        conc_future_cancel(s->f);
        int code;
        conc_future_exception(s->f, CONC_FOREVER, &code);
        conc_future_free(s->f);
    }
    conc_future_free(it->cur.f);
    conc_buf_free(&it->chunk);
    conc_buf_free(&it->item);
    conc_buf_free(&it->salvage);
    if (it->logs)
        conc_arena_dealloc(it->arena, it->logs);
    conc__free(it->slots);
    conc__free(it->ready);
    conc__free(it);
}

int
conc__map_new(conc_executor *ex, conc_task_fn fn, const conc_items *items,
              const conc_map_opts *opts, int ordered, int64_t deadline,
              conc_map_iter **out)
{
    conc_map_opts none = {0};
    if (!opts)
        opts = &none;
    if (!ex || !fn || !items || !out ||
        (!items->next && ((!items->base && items->count) || !items->size)))
        return CONC_EINVAL;
    conc_map_iter *it = conc__calloc(1, sizeof *it);
    if (!it)
        return CONC_ENOMEM;
    it->ex = ex;
    it->fn = fn;
    it->items = *items;
    it->ordered = ordered;
    it->chunksize = opts->chunksize ? opts->chunksize : 1;
    it->cap = opts->max_in_flight ? opts->max_in_flight : 2 * ex->workers;
    if (it->cap < 4)
        it->cap = 4;
    it->progress = opts->progress;
    it->progress_arg = opts->progress_arg;
    it->deadline = deadline;
    it->slots = conc__calloc(it->cap, sizeof *it->slots);
    it->ready = conc__calloc(it->cap, sizeof *it->ready);
    if (!it->slots || !it->ready) {
        conc_map_free(it);
        return CONC_ENOMEM;
    }
    for (size_t i = 0; i < it->cap; i++) {
        it->slots[i].watch.notify = ready_notify;
        it->slots[i].it = it;
    }
    /* Without room for the logs, a death fails whole chunks. */
    it->arena = conc__executor_arena(ex);
    if (it->arena && conc_arena_alloc(it->arena, it->cap * sizeof *it->logs,
                                      (void **)&it->logs) < 0)
        it->logs = NULL;
    int r = fill(it);
    if (r < 0) {
        conc_map_free(it);
        return r;
    }
    *out = it;
    return 0;
}

int
conc__map_new_ops(const struct conc__map_ops *ops, void *self,
                  conc_map_iter **out)
{
    conc_map_iter *it = conc__calloc(1, sizeof *it);
    if (!it)
        return CONC_ENOMEM;
    it->ops = ops;
    it->self = self;
    *out = it;
    return 0;
}

int
conc_executor_map(conc_executor *ex, conc_task_fn fn, const conc_items *items,
                  const conc_map_opts *opts, conc_map_iter **out)
{
    int64_t deadline = CONC__FOREVER;
    if (opts && opts->timed) {
        double t = opts->timeout;
        if (t < 0 && t != CONC_FOREVER)
            t = 0; /* a deadline already past never waits forever */
        if (conc__deadline(t, &deadline) < 0)
            return conc_fail(CONC_EINVAL, "the map's timeout is NaN");
    }
    return conc__map_new(ex, fn, items, opts, 1, deadline, out);
}
