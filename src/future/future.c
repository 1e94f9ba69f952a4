/* Futures.
 *
 * Design. The state word is also the futex that result() sleeps on. The
 * transitions to a done state (FINISHED, CANCELLED) happen under the
 * future's lock, which also guards the callback list and the watch links,
 * so that adding a callback or a watch either sees the future done or is
 * seen by the completer. PENDING -> RUNNING is a plain compare-and-swap:
 * nothing is attached to it. Watches are notified under the lock (their
 * owner unlinks them under it too, so a watch is never used after its
 * owner has left); callbacks run after it, in the completing thread.
 *
 * A future knows nothing of who completes it. A producer that embeds it in
 * a block of its own (an executor's job) gives it a table of hooks
 * (struct conc__future_ops): its part in a cancel, in reading the state,
 * and the block's release once the last reference goes. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/wait.h"
#include "future/future_internal.h"
#include "unix/futex.h"
#include "unix/coro.h"

static int
is_done(uint32_t s)
{
    return s == CONC_FUTURE_FINISHED || s == CONC_FUTURE_CANCELLED;
}

static void
lock(conc_future *f)
{
    conc__lockword_acquire(&f->lock, CONC__FOREVER, 0);
}

static void
unlock(conc_future *f)
{
    conc__lockword_release(&f->lock, 0);
}

#define SET CONC__SET
#define SET_ATOMIC(field, v)                                                   \
    do {                                                                       \
        if (atomic_load_explicit(&(field), memory_order_relaxed) != (v))       \
            atomic_store_explicit(&(field), (v), memory_order_relaxed);        \
    } while (0)

void
conc__future_reset(conc_future *f, const struct conc__future_ops *ops,
                   uint32_t refs)
{
    SET_ATOMIC(f->state, CONC_FUTURE_PENDING);
    SET_ATOMIC(f->sleepers, 0);
    SET_ATOMIC(f->refs, refs);
    SET_ATOMIC(f->cancel, 0);
    SET_ATOMIC(f->lock.all, 0);
    SET(f->code, 0);
    SET(f->msg, NULL);
    SET(f->result.data, (uint8_t *)f->small);
    SET(f->result.len, 0);
    SET(f->result.cap, sizeof f->small);
    SET(f->result.borrowed, 1);
    SET(f->cbs, NULL);
    SET(f->cbs_tail, &f->cbs);
    SET(f->links, NULL);
    SET(f->ops, ops);
}

int
conc_future_new(conc_future **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_future *f = conc__calloc(1, sizeof *f);
    if (!f)
        return CONC_ENOMEM;
    conc__future_reset(f, NULL, 1);
    *out = f;
    return 0;
}

conc_future *
conc_future_ref(conc_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void
conc_future_free(conc_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct conc__callback *c = f->cbs;
    while (c) {
        struct conc__callback *next = c->next;
        conc__free(c);
        c = next;
    }
    if (!f->result.borrowed) /* else nothing to free, nor to write */
        conc_buf_free(&f->result);
    conc__free(f->msg);
    if (f->ops && f->ops->release)
        f->ops->release(f); /* the producer's block */
    else
        conc__free(f);
}

/* ---- Completion --------------------------------------------------------- */

/* Moves `f` to the done state `to` (the caller holds the lock and checked
 * the transition), notifies the watches, and returns the callbacks for the
 * caller to run once it has unlocked. */
static struct conc__callback *
complete_locked(conc_future *f, uint32_t to)
{
    atomic_store_explicit(&f->state, to, memory_order_seq_cst);
    /* A notified watcher may free its link at once: read next first. */
    for (struct conc__watch_link *l = f->links, *next; l; l = next) {
        next = l->next;
        l->linked = 0;
        l->watch->notify(l->watch, f);
    }
    f->links = NULL;
    struct conc__callback *cbs = f->cbs;
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
    return cbs;
}

static void
run_callback(conc_future *f, struct conc__callback *c)
{
    int r = c->fn(c->arg, f);
    if (r < 0) {
        const char *m = conc_failure_message();
        fprintf(stderr, "exception calling callback for future: %s%s%s\n",
                conc_err_name(r), *m ? ": " : "", m);
    }
}

/* Wakes the sleepers and runs (then frees) the callbacks, in order. */
static void
after_complete(conc_future *f, struct conc__callback *cbs)
{
    if (atomic_load_explicit(&f->sleepers, memory_order_seq_cst))
        conc__futex_wake(&f->state, INT32_MAX, 0);
    while (cbs) {
        struct conc__callback *next = cbs->next;
        run_callback(f, cbs);
        conc__free(cbs);
        cbs = next;
    }
}

/* Completes `f` with `code` and the message `copy` (owned; NULL for
 * none). Returns 0 or CONC_ESTATE (then `copy` is freed). */
static int
finish_with(conc_future *f, int code, char *copy)
{
    lock(f);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (is_done(s)) {
        unlock(f);
        conc__free(copy);
        return CONC_ESTATE;
    }
    f->code = code < 0 ? code : 0;
    f->msg = copy;
    if (code < 0)
        conc_buf_free(&f->result); /* a failure has no result */
    struct conc__callback *cbs = complete_locked(f, CONC_FUTURE_FINISHED);
    unlock(f);
    after_complete(f, cbs);
    return 0;
}

int
conc__future_finish(conc_future *f, int code, const char *msg)
{
    char *copy = NULL;
    if (code < 0 && msg && *msg)
        copy = conc__strdup(msg); /* on ENOMEM the code still travels */
    return finish_with(f, code, copy);
}

int
conc_future_set_result(conc_future *f, const void *data, size_t len)
{
    if (!f || (!data && len))
        return CONC_EINVAL;
    if (conc_future_done(f))
        return CONC_ESTATE;
    conc_buf b = CONC_BUF_INIT;
    if (len && conc_buf_append(&b, data, len) < 0)
        return CONC_ENOMEM;
    lock(f);
    if (is_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        unlock(f);
        conc_buf_free(&b);
        return CONC_ESTATE;
    }
    conc_buf_free(&f->result);
    f->result = b;
    f->code = 0;
    struct conc__callback *cbs = complete_locked(f, CONC_FUTURE_FINISHED);
    unlock(f);
    after_complete(f, cbs);
    return 0;
}

int
conc__future_finish_borrowed(conc_future *f, const void *data, size_t len)
{
    lock(f);
    if (is_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        unlock(f);
        return CONC_ESTATE;
    }
    conc_buf_free(&f->result);
    conc_buf_init_with(&f->result, (void *)data, len);
    f->result.len = len;
    f->code = 0;
    struct conc__callback *cbs = complete_locked(f, CONC_FUTURE_FINISHED);
    unlock(f);
    after_complete(f, cbs);
    return 0;
}

int
conc_future_set_exception(conc_future *f, int code, const char *msg)
{
    if (!f || code >= 0)
        return CONC_EINVAL;
    /* Unlike a worker's failure, which must travel even without its
     * message, a caller's is refused whole: it may try again. */
    if (conc_future_done(f))
        return CONC_ESTATE;
    char *copy = NULL;
    if (msg && *msg && !(copy = conc__strdup(msg)))
        return CONC_ENOMEM;
    return finish_with(f, code, copy);
}

int
conc_future_set_running(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    uint32_t s = CONC_FUTURE_PENDING;
    if (atomic_compare_exchange_strong(&f->state, &s, CONC_FUTURE_RUNNING))
        return 1;
    return s == CONC_FUTURE_CANCELLED ? 0 : CONC_ESTATE;
}

struct conc__callback *
conc__future_cancel_begin(conc_future *f, int *cancelled)
{
    lock(f);
    /* A compare-and-swap, not a store: set_running takes PENDING without
     * the lock, and exactly one of the two may win. */
    uint32_t s = CONC_FUTURE_PENDING;
    if (!atomic_compare_exchange_strong(&f->state, &s, CONC_FUTURE_CANCELLED)) {
        unlock(f);
        *cancelled = s == CONC_FUTURE_CANCELLED;
        return NULL;
    }
    f->code = CONC_ECANCELED;
    struct conc__callback *cbs = complete_locked(f, CONC_FUTURE_CANCELLED);
    unlock(f);
    *cancelled = 1;
    return cbs;
}

void
conc__future_complete_end(conc_future *f, struct conc__callback *cbs)
{
    after_complete(f, cbs);
}

int
conc__future_cancel_pending(conc_future *f)
{
    int cancelled;
    struct conc__callback *cbs = conc__future_cancel_begin(f, &cancelled);
    if (cancelled)
        after_complete(f, cbs);
    return cancelled;
}

struct conc__callback *
conc__future_cancel_running_begin(conc_future *f, int *cancelled)
{
    lock(f);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (s != CONC_FUTURE_RUNNING) {
        unlock(f);
        *cancelled = s == CONC_FUTURE_CANCELLED;
        return NULL;
    }
    conc_buf_free(&f->result); /* a cancelled future has no result */
    f->code = CONC_ECANCELED;
    struct conc__callback *cbs = complete_locked(f, CONC_FUTURE_CANCELLED);
    unlock(f);
    *cancelled = 1;
    return cbs;
}

int
conc__future_cancel_running(conc_future *f)
{
    lock(f);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) !=
        CONC_FUTURE_RUNNING) {
        unlock(f);
        return CONC_ESTATE;
    }
    conc_buf_free(&f->result); /* a cancelled future has no result */
    f->code = CONC_ECANCELED;
    struct conc__callback *cbs = complete_locked(f, CONC_FUTURE_CANCELLED);
    unlock(f);
    after_complete(f, cbs);
    return 0;
}

int
conc_future_cancel(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    uint32_t s = conc__future_state_raw(f);
    if (is_done(s)) /* and its engine may be gone */
        return s == CONC_FUTURE_CANCELLED;
    if (f->ops && f->ops->cancel) {
        int r = f->ops->cancel(f);
        if (r)
            return r > 0;
    }
    if (conc__future_cancel_pending(f))
        return 1;
    if (atomic_load(&f->state) == CONC_FUTURE_RUNNING)
        atomic_store(&f->cancel, 1);
    return 0;
}

int
conc__future_cancel_hard(conc_future *f)
{
    uint32_t s = conc__future_state_raw(f);
    if (is_done(s)) /* and its engine may be gone */
        return s == CONC_FUTURE_CANCELLED;
    if (f->ops && f->ops->cancel_hard) {
        int r = f->ops->cancel_hard(f);
        if (r)
            return r > 0;
    }
    return conc_future_cancel(f);
}

/* ---- Observers ---------------------------------------------------------- */

conc_future_state
conc_future_state_of(conc_future *f)
{
    if (!f)
        return 0;
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (s == CONC_FUTURE_PENDING && f->ops && f->ops->sync) {
        f->ops->sync(f); /* a process worker may have started it */
        s = atomic_load_explicit(&f->state, memory_order_acquire);
    }
    return (conc_future_state)s;
}

int
conc_future_done(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    return is_done(conc__future_state_raw(f));
}

int
conc_future_running(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    return conc_future_state_of(f) == CONC_FUTURE_RUNNING;
}

int
conc_future_cancelled(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    return conc__future_state_raw(f) == CONC_FUTURE_CANCELLED;
}

int
conc__future_failed(conc_future *f)
{
    uint32_t s = conc__future_state_raw(f);
    return s == CONC_FUTURE_CANCELLED ||
           (s == CONC_FUTURE_FINISHED && f->code < 0);
}

const char *
conc_future_message(conc_future *f)
{
    if (!f)
        return NULL;
    if (!conc_future_done(f) || !f->msg)
        return "";
    return f->msg;
}

/* Waits until `f` is done or the deadline passes. Returns 0 or
 * CONC_ETIMEDOUT. */
static int
wait_done(conc_future *f, int64_t deadline)
{
    if (is_done(atomic_load_explicit(&f->state, memory_order_acquire)))
        return 0;
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    /* Tiny tasks finish within microseconds: watching for that long costs
     * less than a sleep and a wake-up. */
    struct conc__spin sp =
        conc__spin_start_flags(CONC__SPIN_TASK_NS, deadline, CONC__SPIN_EAGER);
    while (conc__spin_more(&sp))
        if (is_done(atomic_load_explicit(&f->state, memory_order_acquire)))
            return 0;
    for (;;) {
        atomic_fetch_add_explicit(&f->sleepers, 1, memory_order_seq_cst);
        uint32_t s = atomic_load_explicit(&f->state, memory_order_seq_cst);
        int r = 0;
        if (!is_done(s))
            r = conc__futex_wait(&f->state, s, deadline, 0);
        atomic_fetch_sub_explicit(&f->sleepers, 1, memory_order_relaxed);
        if (is_done(atomic_load_explicit(&f->state, memory_order_acquire)))
            return 0;
        if (r == -ETIMEDOUT)
            return CONC_ETIMEDOUT;
    }
}

static int
future_exception_uncancelled(conc_future *f, double timeout, int *code)
{
    int64_t deadline;
    if (!f || !code || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    int r = wait_done(f, deadline);
    if (r < 0)
        return r;
    if (conc__future_state_raw(f) == CONC_FUTURE_CANCELLED)
        return conc_fail(CONC_ECANCELED, "the future was cancelled");
    *code = f->code;
    return 0;
}

int
conc_future_exception(conc_future *f, double timeout, int *code)
{
    CONC__CANCEL_POINT(future_exception_uncancelled(f, timeout, code));
}

static int
future_result_uncancelled(conc_future *f, double timeout, const void **data,
                          size_t *len)
{
    int code;
    int r = conc_future_exception(f, timeout, &code);
    if (r < 0)
        return r;
    if (code < 0) {
        if (f->msg)
            conc_fail(code, "%s", f->msg);
        else
            conc_clear_failure();
        return code;
    }
    if (data)
        *data = f->result.len ? f->result.data : NULL;
    if (len)
        *len = f->result.len;
    return 0;
}

int
conc_future_result(conc_future *f, double timeout, const void **data,
                   size_t *len)
{
    CONC__CANCEL_POINT(future_result_uncancelled(f, timeout, data, len));
}

/* ---- Callbacks and watches ---------------------------------------------- */

int
conc_future_add_done_callback(conc_future *f, conc_future_cb fn, void *arg)
{
    if (!f || !fn)
        return CONC_EINVAL;
    struct conc__callback *c = conc__malloc(sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    lock(f);
    if (!is_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        *f->cbs_tail = c;
        f->cbs_tail = &c->next;
        unlock(f);
        return 0;
    }
    unlock(f);
    run_callback(f, c);
    conc__free(c);
    return 0;
}

int
conc__future_watch(struct conc__watch_link *l)
{
    conc_future *f = l->future;
    lock(f);
    if (is_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        unlock(f);
        return 0;
    }
    l->linked = 1;
    l->prev = NULL;
    l->next = f->links;
    if (f->links)
        f->links->prev = l;
    f->links = l;
    unlock(f);
    return 1;
}

void
conc__future_unwatch(struct conc__watch_link *l)
{
    conc_future *f = l->future;
    lock(f);
    if (l->linked) {
        if (l->next)
            l->next->prev = l->prev;
        if (l->prev)
            l->prev->next = l->next;
        else
            f->links = l->next;
        l->linked = 0;
    }
    unlock(f);
}
