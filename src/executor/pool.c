/* Pool and ThreadPool: multiprocessing.pool's API over the executors.
 *
 * A pool is an executor plus Python's lifecycle (RUN, CLOSE, TERMINATE)
 * and callbacks. The executor calls the pool's hook just before each job's
 * future completes, so that, as in Python, a callback has run by the time
 * get() returns. A map over an array is one aggregate AsyncResult over
 * array chunks; in a process pool the input and output live in the
 * engine's shared arena, so a chunk is a pointer pair, not a copy. The
 * pool reaches the executor only through executor/pool_engine.h.
 *
 * Lock order: `lock` (the pool's state) is a leaf. `cb_lock` (one
 * callback at a time) is taken before the engine's lock: a callback may
 * submit to its own pool, and the engine runs the hook with none of its
 * locks held. */
#include <stdio.h>
#include <string.h>

#include "conc/pool.h"
#include "executor/pool_engine.h"
#include "future/future_internal.h"
#include "unix/coro.h"

enum { RUN, CLOSE, TERMINATE };

/* A map's first failure message is kept up to this size, as an
 * executor's broken message is: enough for a sentence and a path. */
#define FAILURE_MSG_MAX 256

/* Python's default chunk size: ceil(count / (CHUNKS_PER_WORKER *
 * workers)), so each worker gets about four chunks (Pool._map_async). */
#define CHUNKS_PER_WORKER 4

struct conc_pool {
    conc_executor *ex;
    conc__lockword lock; /* guards state */
    int state;
    conc__lockword cb_lock; /* one callback at a time */
};

/* What a job carries for the pool (its record: conc__job_owner). */
struct apply_rec {
    conc_pool *pool;
    conc_apply_opts cb;
};

/* An aggregate map: the chunks' common record. */
struct map_rec {
    conc_pool *pool;
    conc_future *result; /* the AsyncResult */
    conc_apply_opts cb;
    conc_map_opts opts;
    _Atomic size_t chunks_left;
    size_t items_done, total;
    uint64_t failed; /* lowest failing index, UINT64_MAX for none */
    int fcode;
    char fmsg[FAILURE_MSG_MAX];
    uint8_t *user_out;
    uint8_t *sh_in, *sh_out;              /* arena copies (process pools) */
    struct conc__chunk_progress *sh_prog; /* one per chunk (same) */
    size_t out_size;
};

/* The pool's tags for its jobs (conc__executor_submit's kind). */
#define KIND_APPLY 1u
#define KIND_MAP   2u

static int
state_check(conc_pool *p)
{
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
    int s = p->state;
    conc__lockword_release(&p->lock, 0);
    return s == RUN ? 0 : conc_fail(CONC_ECLOSED, "Pool not running");
}

/* ---- The hook ----------------------------------------------------------- */

static void
apply_done(struct apply_rec *a, conc_future *f, int code, const char *msg)
{
    conc__lockword_acquire(&a->pool->cb_lock, CONC__FOREVER, 0);
    const conc_buf *res = conc__future_result_buf(f);
    if (code >= 0 && a->cb.callback)
        a->cb.callback(a->cb.arg, res->data, res->len);
    else if (code < 0 && a->cb.error_callback)
        a->cb.error_callback(a->cb.arg, code, msg);
    conc__lockword_release(&a->pool->cb_lock, 0);
}

/* Gives the map's shared memory back to the arena. */
static void
unshare_arrays(struct map_rec *m)
{
    conc_arena *arena = conc__executor_arena(m->pool->ex);
    if (m->sh_in)
        conc_arena_dealloc(arena, m->sh_in);
    if (m->sh_out)
        conc_arena_dealloc(arena, m->sh_out);
    if (m->sh_prog)
        conc_arena_dealloc(arena, m->sh_prog);
    m->sh_in = m->sh_out = NULL;
    m->sh_prog = NULL;
}

/* Completes the map's AsyncResult once every chunk is in. Its data is the
 * caller's array itself (pool.h), not a copy: the future's result borrows
 * it, so conc_async_result_get and conc_future_result both return it. */
static void
map_finish(struct map_rec *m)
{
    unshare_arrays(m);
    if (m->failed == UINT64_MAX)
        conc__future_finish_borrowed(m->result, m->user_out,
                                     m->total * m->out_size);
    else
        conc_future_set_exception(m->result, m->fcode, m->fmsg);
    conc_future_free(m->result);
    conc__free(m);
}

/* Records `count` items from `first` (callback lock held): the first of
 * them to fail is `idx` (UINT64_MAX: none), with `icode` and `imsg`; with
 * `copy`, their results move from shared memory to the caller's array. */
static void
note_items_locked(struct map_rec *m, size_t first, size_t count, uint64_t idx,
                  int icode, const char *imsg, int copy)
{
    if (idx < m->failed) {
        m->failed = idx;
        m->fcode = icode;
        snprintf(m->fmsg, sizeof m->fmsg, "%s", imsg ? imsg : "");
    }
    if (m->sh_out && copy && m->out_size && count)
        memcpy(m->user_out + first * m->out_size,
               m->sh_out + first * m->out_size, count * m->out_size);
    m->items_done += count;
    if (m->opts.progress)
        m->opts.progress(m->opts.progress_arg, m->items_done, m->total);
}

/* Ends one chunk (callback lock held). Returns 1 for the last: then the
 * caller completes the map with map_finish, after the lock. */
static int
end_chunk_locked(struct map_rec *m)
{
    int last = atomic_fetch_sub(&m->chunks_left, 1) == 1;
    if (last) {
        if (m->failed == UINT64_MAX && m->cb.callback)
            m->cb.callback(m->cb.arg, m->user_out, m->total * m->out_size);
        else if (m->failed != UINT64_MAX && m->cb.error_callback)
            m->cb.error_callback(m->cb.arg, m->fcode, m->fmsg);
    }
    return last;
}

/* Records the outcome of array chunk `c`: `code` < 0 when the whole chunk
 * failed (the pool was terminated, a submit failed), else `res` holds the
 * chunk's first failing item, if any. In a process pool the chunk's
 * results are in shared memory: one copy per chunk moves them to the
 * caller's array. The last chunk completes the map. */
static void
map_record(struct map_rec *m, const struct conc__array_chunk *c, int code,
           const char *msg, conc_buf *res)
{
    conc__lockword_acquire(&m->pool->cb_lock, CONC__FOREVER, 0);
    uint64_t idx = UINT64_MAX;
    int icode = code;
    const char *imsg = msg;
    if (code < 0) {
        idx = c->first;
    } else if (res && res->len >= 12) {
        memcpy(&idx, res->data, 8);
        memcpy(&icode, res->data + 8, 4);
        conc_buf_append(res, "", 1);
        imsg = (const char *)res->data + 12;
    }
    note_items_locked(m, c->first, c->count, idx, icode, imsg, code >= 0);
    int last = end_chunk_locked(m);
    conc__lockword_release(&m->pool->cb_lock, 0);
    if (last)
        map_finish(m);
}

/* Submits the `count` items of chunk `c` from its item `skip` on as a new
 * chunk with the same progress record, in place of `c`. */
static int
rerun_rest(struct map_rec *m, const struct conc__array_chunk *c, size_t skip)
{
    struct conc__array_chunk d = *c;
    d.first += skip;
    d.count -= skip;
    d.in += skip * d.in_size;
    if (d.out)
        d.out += skip * d.out_size;
    atomic_store_explicit(&d.progress->done, 0, memory_order_relaxed);
    d.progress->failed = UINT64_MAX;
    conc__chunk_rerun = 1;
    int r = conc__executor_submit(m->pool->ex, conc__array_chunk_task, &d,
                                  sizeof d, -1, KIND_MAP, m, 0, NULL);
    conc__chunk_rerun = 0;
    return r;
}

/* A chunk whose worker died (or was killed at its time limit): what the
 * chunk's progress record says it finished is kept, the item it was
 * running fails with the death's `code` and `msg`, and the items after it
 * run again as a new chunk. The record was written by another process: its
 * numbers are checked before use. */
static void
map_salvage(struct map_rec *m, const struct conc__array_chunk *c, int code,
            const char *msg)
{
    const struct conc__chunk_progress *p = c->progress;
    uint64_t done = atomic_load_explicit(&p->done, memory_order_acquire);
    done = done < c->count ? done : c->count;
    uint64_t pidx = p->failed;
    char pmsg[sizeof p->fmsg + 1];
    snprintf(pmsg, sizeof pmsg, "%.*s", (int)sizeof p->fmsg, p->fmsg);
    if (pidx < c->first || pidx - c->first >= done)
        pidx = UINT64_MAX;
    conc__lockword_acquire(&m->pool->cb_lock, CONC__FOREVER, 0);
    note_items_locked(m, c->first, done, pidx, p->fcode, pmsg, 1);
    if (done < c->count)
        note_items_locked(m, c->first + done, 1, c->first + done, code, msg, 0);
    conc__lockword_release(&m->pool->cb_lock, 0);
    size_t skip = done < c->count ? done + 1 : done;
    int r = skip < c->count ? rerun_rest(m, c, skip) : 0;
    if (r == 0 && skip < c->count)
        return; /* the new chunk ends this one's part */
    char rmsg[sizeof m->fmsg];
    snprintf(rmsg, sizeof rmsg, "%s", conc_failure_message());
    conc__lockword_acquire(&m->pool->cb_lock, CONC__FOREVER, 0);
    if (r < 0)
        note_items_locked(m, c->first + skip, c->count - skip, c->first + skip,
                          r, rmsg, 0);
    int last = end_chunk_locked(m);
    conc__lockword_release(&m->pool->cb_lock, 0);
    if (last)
        map_finish(m);
}

static void
map_chunk_done(struct map_rec *m, conc_future *f, int code, const char *msg)
{
    const struct conc__array_chunk *c = conc__job_arg(f);
    if (c->progress && (code == CONC_EBROKEN || code == CONC_ETIMEDOUT))
        map_salvage(m, c, code, msg);
    else
        map_record(m, c, code, msg, conc__future_result_buf(f));
}

static void
pool_hook(conc_future *f, int code, const char *msg)
{
    uint32_t kind = conc__job_kind(f);
    if (kind == KIND_APPLY)
        apply_done(conc__job_owner(f), f, code, msg);
    else if (kind == KIND_MAP)
        map_chunk_done(conc__job_owner(f), f, code, msg);
}

/* ---- Creating ----------------------------------------------------------- */

static int
pool_new(const conc_pool_opts *o, int process, conc_pool **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_pool_opts d = {0};
    if (!o)
        o = &d;
    conc_executor_opts eo = {.max_workers = o->processes,
                             .initializer = o->initializer,
                             .initarg = o->initarg,
                             .initarg_len = o->initarg_len,
                             .max_tasks_per_child = o->maxtasksperchild,
                             .task_timeout = o->task_timeout,
                             .cancel_kills = o->cancel_kills};
    if (!process)
        eo.max_workers = o->processes ? o->processes : conc__cpu_count();
    conc_pool *p = conc__calloc(1, sizeof *p);
    if (!p)
        return CONC_ENOMEM;
    int r = process ? conc__process_engine_new(&eo, pool_hook, &p->ex)
                    : conc__thread_engine_new(&eo, pool_hook, &p->ex);
    if (r < 0) {
        conc__free(p);
        return r;
    }
    *out = p;
    return 0;
}

int
conc_pool_new(const conc_pool_opts *opts, conc_pool **out)
{
    return pool_new(opts, 1, out);
}

int
conc_threadpool_new(const conc_pool_opts *opts, conc_pool **out)
{
    return pool_new(opts, 0, out);
}

size_t
conc_pool_processes(const conc_pool *p)
{
    return p ? conc_executor_max_workers(p->ex) : 0;
}

/* ---- Single tasks ------------------------------------------------------- */

int
conc_pool_apply_async(conc_pool *p, conc_task_fn fn, const void *arg,
                      size_t len, const conc_apply_opts *opts,
                      conc_async_result **out)
{
    if (!p || !fn || (!arg && len))
        return CONC_EINVAL;
    int r = state_check(p);
    if (r < 0)
        return r;
    int fd = opts && opts->has_fd ? opts->fd : -1;
    if (opts && opts->has_fd && fd < 0)
        return conc_fail(CONC_EBADF, "descriptor %d is negative", fd);
    /* The callbacks' record lives in the future's block. */
    struct apply_rec a = {.pool = p};
    int cb = opts && (opts->callback || opts->error_callback);
    if (cb)
        a.cb = *opts;
    r = conc__executor_submit(p->ex, fn, arg, len, fd, cb ? KIND_APPLY : 0, &a,
                              cb ? sizeof a : 0, out);
    if (r == CONC_ECLOSED)
        r = conc_fail(CONC_ECLOSED, "Pool not running");
    return r;
}

static int
pool_apply_uncancelled(conc_pool *p, conc_task_fn fn, const void *arg,
                       size_t len, double timeout, conc_buf *result)
{
    if (timeout != timeout)
        return CONC_EINVAL;
    conc_future *f;
    int r = conc_pool_apply_async(p, fn, arg, len, NULL, &f);
    if (r < 0)
        return r;
    const void *data;
    size_t n;
    r = conc_future_result(f, timeout, &data, &n);
    if (r == 0 && result)
        r = conc__buf_set(result, data, n);
    conc_future_free(f);
    return r;
}

int
conc_pool_apply(conc_pool *p, conc_task_fn fn, const void *arg, size_t len,
                double timeout, conc_buf *result)
{
    CONC__CANCEL_POINT(
        pool_apply_uncancelled(p, fn, arg, len, timeout, result));
}

/* ---- Maps --------------------------------------------------------------- */

static size_t
default_chunksize(conc_pool *p, size_t count)
{
    size_t d = CHUNKS_PER_WORKER * conc_executor_max_workers(p->ex);
    size_t c = count / d + (count % d != 0);
    return c ? c : 1;
}

/* Copies the input to shared memory and reserves the output there, for a
 * process pool. */
static int
share_arrays(conc_pool *p, struct map_rec *m, const conc_items *in,
             size_t chunks)
{
    conc_arena *arena = conc__executor_arena(p->ex);
    size_t nin = in->count * in->size, nout = in->count * m->out_size;
    size_t nprog = chunks * sizeof *m->sh_prog;
    if (nprog && conc_arena_alloc(arena, nprog, (void **)&m->sh_prog) < 0)
        return conc_fail(CONC_ENOMEM,
                         "no room for the map's %zu chunk "
                         "records in the pool's shared memory",
                         chunks);
    for (size_t i = 0; i < chunks; i++) {
        atomic_init(&m->sh_prog[i].done, 0);
        m->sh_prog[i].failed = UINT64_MAX;
    }
    if (nin && conc_arena_alloc(arena, nin, (void **)&m->sh_in) < 0)
        return conc_fail(CONC_ENOMEM,
                         "no room for the map's %zu input bytes "
                         "in the pool's shared memory",
                         nin);
    if (nout && conc_arena_alloc(arena, nout, (void **)&m->sh_out) < 0)
        return conc_fail(CONC_ENOMEM,
                         "no room for the map's %zu output "
                         "bytes in the pool's shared memory",
                         nout);
    if (nin)
        memcpy(m->sh_in, in->base, nin);
    return 0;
}

/* Submits the chunks of a map; the record frees itself after the last. */
static int
submit_chunks(conc_pool *p, struct map_rec *m, conc_task_fn fn,
              const conc_items *in, size_t chunk)
{
    const uint8_t *base = m->sh_in ? m->sh_in : in->base;
    uint8_t *out = m->sh_out ? m->sh_out : m->user_out;
    size_t n = (in->count + chunk - 1) / chunk;
    atomic_store(&m->chunks_left, n);
    for (size_t i = 0, k = 0; i < in->count; i += chunk, k++) {
        struct conc__array_chunk c = {
            .fn = fn,
            .in = base + i * in->size,
            .out = m->out_size ? out + i * m->out_size : NULL,
            .count = in->count - i < chunk ? in->count - i : chunk,
            .in_size = in->size,
            .out_size = m->out_size,
            .first = i,
            .progress = m->sh_prog ? &m->sh_prog[k] : NULL,
        };
        int r = conc__executor_submit(p->ex, conc__array_chunk_task, &c,
                                      sizeof c, -1, KIND_MAP, m, 0, NULL);
        if (r < 0) {
            /* The chunks not submitted count as failed now. */
            char msg[sizeof m->fmsg];
            snprintf(msg, sizeof msg, "%s", conc_failure_message());
            for (size_t j = k; j < n; j++) {
                struct conc__array_chunk d = c;
                d.first = j * chunk;
                d.count =
                    in->count - d.first < chunk ? in->count - d.first : chunk;
                map_record(m, &d, r, msg, NULL);
            }
            return 0;
        }
    }
    return 0;
}

int
conc_pool_map_async(conc_pool *p, conc_task_fn fn, const conc_items *in,
                    void *out, size_t out_size, const conc_map_opts *opts,
                    const conc_apply_opts *cb, conc_async_result **result)
{
    if (!p || !fn || !in || in->next || (!in->base && in->count) || !in->size ||
        (out_size && !out && in->count))
        return conc_fail(CONC_EINVAL, "map needs an array input (use imap "
                                      "for a generator) and an output");
    int r = state_check(p);
    if (r < 0)
        return r;
    struct map_rec *m = conc__calloc(1, sizeof *m);
    if (!m || conc_future_new(&m->result) < 0) {
        conc__free(m);
        return CONC_ENOMEM;
    }
    m->pool = p;
    m->failed = UINT64_MAX;
    m->user_out = out;
    m->out_size = out_size;
    m->total = in->count;
    if (cb)
        m->cb = *cb;
    if (opts)
        m->opts = *opts;
    size_t chunk = opts && opts->chunksize ? opts->chunksize
                                           : default_chunksize(p, in->count);
    size_t chunks = (in->count + chunk - 1) / chunk;
    if (conc__executor_arena(p->ex) &&
        (r = share_arrays(p, m, in, chunks)) < 0) {
        unshare_arrays(m); /* the message stays: the arena takes none */
        conc_future_free(m->result);
        conc__free(m);
        return r;
    }
    conc_future *res = conc_future_ref(m->result);
    if (in->count == 0) {
        conc__future_finish_borrowed(m->result, out, 0);
        conc_future_free(m->result);
        conc__free(m);
    } else {
        submit_chunks(p, m, fn, in, chunk);
    }
    if (result)
        *result = res;
    else
        conc_future_free(res);
    return 0;
}

static int
pool_map_uncancelled(conc_pool *p, conc_task_fn fn, const conc_items *in,
                     void *out, size_t out_size, const conc_map_opts *opts,
                     double timeout)
{
    if (timeout != timeout)
        return CONC_EINVAL;
    conc_future *f;
    int r = conc_pool_map_async(p, fn, in, out, out_size, opts, NULL, &f);
    if (r < 0)
        return r;
    r = conc_future_result(f, timeout, NULL, NULL);
    conc_future_free(f);
    return r;
}

int
conc_pool_map(conc_pool *p, conc_task_fn fn, const conc_items *in, void *out,
              size_t out_size, const conc_map_opts *opts, double timeout)
{
    CONC__CANCEL_POINT(
        pool_map_uncancelled(p, fn, in, out, out_size, opts, timeout));
}

static int
pool_starmap_uncancelled(conc_pool *p, conc_task_fn fn, const conc_items *in,
                         void *out, size_t out_size, const conc_map_opts *opts,
                         double timeout)
{
    return conc_pool_map(p, fn, in, out, out_size, opts, timeout);
}

int
conc_pool_starmap(conc_pool *p, conc_task_fn fn, const conc_items *in,
                  void *out, size_t out_size, const conc_map_opts *opts,
                  double timeout)
{
    CONC__CANCEL_POINT(
        pool_starmap_uncancelled(p, fn, in, out, out_size, opts, timeout));
}

int
conc_pool_starmap_async(conc_pool *p, conc_task_fn fn, const conc_items *in,
                        void *out, size_t out_size, const conc_map_opts *opts,
                        const conc_apply_opts *cb, conc_async_result **result)
{
    return conc_pool_map_async(p, fn, in, out, out_size, opts, cb, result);
}

static int
imap(conc_pool *p, conc_task_fn fn, const conc_items *in,
     const conc_map_opts *opts, int ordered, conc_map_iter **out)
{
    if (!p)
        return CONC_EINVAL;
    int r = state_check(p);
    if (r < 0)
        return r;
    return conc__map_new(p->ex, fn, in, opts, ordered, CONC__FOREVER, out);
}

int
conc_pool_imap(conc_pool *p, conc_task_fn fn, const conc_items *in,
               const conc_map_opts *opts, conc_map_iter **out)
{
    return imap(p, fn, in, opts, 1, out);
}

int
conc_pool_imap_unordered(conc_pool *p, conc_task_fn fn, const conc_items *in,
                         const conc_map_opts *opts, conc_map_iter **out)
{
    return imap(p, fn, in, opts, 0, out);
}

/* ---- AsyncResult -------------------------------------------------------- */

static int
async_result_get_uncancelled(conc_async_result *r, double timeout,
                             const void **data, size_t *len)
{
    return conc_future_result(r, timeout, data, len);
}

int
conc_async_result_get(conc_async_result *r, double timeout, const void **data,
                      size_t *len)
{
    CONC__CANCEL_POINT(async_result_get_uncancelled(r, timeout, data, len));
}

static int
async_result_wait_uncancelled(conc_async_result *r, double timeout)
{
    int code;
    int rc = conc_future_exception(r, timeout, &code);
    return rc == CONC_ECANCELED ? 0 : rc;
}

int
conc_async_result_wait(conc_async_result *r, double timeout)
{
    CONC__CANCEL_POINT(async_result_wait_uncancelled(r, timeout));
}

int
conc_async_result_ready(conc_async_result *r)
{
    return conc_future_done(r);
}

int
conc_async_result_successful(conc_async_result *r)
{
    if (!r)
        return CONC_EINVAL;
    if (!conc_future_done(r))
        return conc_fail(CONC_ESTATE, "AsyncResult is not ready");
    return !conc__future_failed(r);
}

void
conc_async_result_free(conc_async_result *r)
{
    conc_future_free(r);
}

/* ---- Lifecycle ---------------------------------------------------------- */

static void
set_state(conc_pool *p, int s)
{
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
    if (p->state < s)
        p->state = s;
    conc__lockword_release(&p->lock, 0);
}

int
conc_pool_close(conc_pool *p)
{
    if (!p)
        return CONC_EINVAL;
    set_state(p, CLOSE);
    return conc_executor_shutdown(p->ex, 0, 0, CONC_FOREVER);
}

int
conc_pool_terminate(conc_pool *p)
{
    if (!p)
        return CONC_EINVAL;
    set_state(p, TERMINATE);
    return conc__executor_terminate(p->ex);
}

static int
pool_join_uncancelled(conc_pool *p, double timeout)
{
    if (!p || timeout != timeout)
        return CONC_EINVAL;
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
    int s = p->state;
    conc__lockword_release(&p->lock, 0);
    if (s == RUN)
        return conc_fail(CONC_ESTATE, "join() before close() or terminate()");
    if (conc__executor_in_task(p->ex))
        return conc_fail(CONC_EDEADLK, "a pool's task or callback cannot "
                                       "join its own pool");
    return conc__executor_join(p->ex, timeout);
}

int
conc_pool_join(conc_pool *p, double timeout)
{
    CONC__CANCEL_POINT(pool_join_uncancelled(p, timeout));
}

void
conc_pool_free(conc_pool *p)
{
    if (!p)
        return;
    if (p->state == RUN)
        conc_pool_terminate(p);
    conc_executor_free(p->ex); /* a waited shutdown, then the engine goes */
    conc__free(p);
}
