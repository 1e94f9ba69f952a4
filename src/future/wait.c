/* conc_wait and conc_as_completed: waiting on many futures at once.
 *
 * Both link a watch into every future that is not done yet. A completing
 * future notifies the watch under its own lock; the waiter unlinks every
 * link before it returns, under each future's lock, so no notification
 * can reach a watch that is gone.
 *
 * Lock order: only futures' locks, one at a time; a notification runs
 * under its future's lock and takes none (it bumps a futex word). */
#include <stdlib.h>
#include <string.h>

#include "future/future_internal.h"
#include "unix/futex.h"
#include "unix/coro.h"

/* ---- A watch that counts and wakes one sleeper -------------------------- */

struct counter {
    struct conc__watch watch;
    _Atomic uint32_t seq; /* bumped by every notification; a futex word */
    _Atomic uint32_t sleeping;
};

static void
counter_notify(struct conc__watch *w, conc_future *f)
{
    CONC__UNUSED(f);
    struct counter *c = (struct counter *)w;
    atomic_fetch_add_explicit(&c->seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&c->sleeping, memory_order_seq_cst))
        conc__futex_wake(&c->seq, 1, 0);
}

/* Sleeps until c->seq moves past `seen` or the deadline. Returns 0 or
 * CONC_ETIMEDOUT. */
static int
counter_sleep(struct counter *c, uint32_t seen, int64_t deadline)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    atomic_store_explicit(&c->sleeping, 1, memory_order_seq_cst);
    int r = 0;
    if (atomic_load_explicit(&c->seq, memory_order_seq_cst) == seen)
        r = conc__futex_wait(&c->seq, seen, deadline, 0);
    atomic_store_explicit(&c->sleeping, 0, memory_order_relaxed);
    if (r == -ETIMEDOUT && atomic_load(&c->seq) == seen)
        return CONC_ETIMEDOUT;
    return 0;
}

/* ---- wait --------------------------------------------------------------- */

/* Whether `when` holds; fills `done` when given. */
static int
condition_holds(conc_future *const *fs, size_t n, conc_return_when when,
                unsigned char *done)
{
    size_t ndone = 0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        int d = conc_future_done(fs[i]);
        if (done)
            done[i] = (unsigned char)d;
        ndone += (size_t)d;
        if (d && conc_future_state_of(fs[i]) == CONC_FUTURE_FINISHED &&
            fs[i]->code < 0)
            failed = 1;
    }
    if (ndone == n)
        return 1;
    if (when == CONC_FIRST_COMPLETED)
        return ndone > 0;
    if (when == CONC_FIRST_EXCEPTION)
        return failed;
    return 0;
}

static int
wait_uncancelled(conc_future *const *fs, size_t n, conc_return_when when,
                 double timeout, unsigned char *done)
{
    int64_t deadline;
    if ((!fs && n) || (unsigned)when > CONC_FIRST_EXCEPTION ||
        conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return CONC_EINVAL;
    if (condition_holds(fs, n, when, done))
        return 0;
    struct conc__watch_link *links = conc__calloc(n, sizeof *links);
    if (!links)
        return CONC_ENOMEM;
    struct counter c = {.watch.notify = counter_notify};
    for (size_t i = 0; i < n; i++) {
        links[i].watch = &c.watch;
        links[i].future = fs[i];
        conc__future_watch(&links[i]);
    }
    int r = 0;
    for (;;) {
        uint32_t seen = atomic_load(&c.seq);
        if (condition_holds(fs, n, when, NULL))
            break;
        if ((r = counter_sleep(&c, seen, deadline)) < 0)
            break;
    }
    for (size_t i = 0; i < n; i++)
        conc__future_unwatch(&links[i]);
    conc__free(links);
    if (condition_holds(fs, n, when, done))
        return 0;
    return r;
}

int
conc_wait(conc_future *const *fs, size_t n, conc_return_when when,
          double timeout, unsigned char *done)
{
    CONC__CANCEL_POINT(wait_uncancelled(fs, n, when, timeout, done));
}

/* ---- as_completed ------------------------------------------------------- */

struct conc_as_completed_iter {
    struct conc__watch watch;
    conc__lockword lock; /* guards ready and nready */
    _Atomic uint32_t seq;
    _Atomic uint32_t sleeping;
    int64_t deadline;
    size_t n, nready, yielded, pushed; /* pushed: entries written to ready */
    conc_future **fs;    /* the distinct futures, one reference each */
    conc_future **ready; /* completed futures, in completion order */
    struct conc__watch_link *links;
};

static void
iter_notify(struct conc__watch *w, conc_future *f)
{
    conc_as_completed_iter *it = (conc_as_completed_iter *)w;
    conc__lockword_acquire(&it->lock, CONC__FOREVER, 0);
    it->ready[it->pushed++] = f;
    it->nready++;
    conc__lockword_release(&it->lock, 0);
    atomic_fetch_add_explicit(&it->seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&it->sleeping, memory_order_seq_cst))
        conc__futex_wake(&it->seq, 1, 0);
}

static int
cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (conc_future *const *)a;
    uintptr_t y = (uintptr_t) * (conc_future *const *)b;
    return (x > y) - (x < y);
}

/* Copies the distinct futures of fs to out, each with a reference, and
 * returns how many there are. */
static size_t
dedup(conc_future *const *fs, size_t n, conc_future **out)
{
    if (n == 0)
        return 0;
    memcpy(out, fs, n * sizeof *out);
    qsort(out, n, sizeof *out, cmp_ptr);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (out[i] != out[m - 1])
            out[m++] = out[i];
    for (size_t i = 0; i < m; i++)
        conc_future_ref(out[i]);
    return m;
}

int
conc_as_completed(conc_future *const *fs, size_t n, double timeout,
                  conc_as_completed_iter **out)
{
    int64_t deadline;
    if (!out || (!fs && n) || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return CONC_EINVAL;
    conc_as_completed_iter *it = conc__calloc(1, sizeof *it);
    conc_future **arr = n ? conc__calloc(2 * n, sizeof *arr) : NULL;
    struct conc__watch_link *links = n ? conc__calloc(n, sizeof *links) : NULL;
    if (!it || (n && (!arr || !links))) {
        conc__free(it);
        conc__free(arr);
        conc__free(links);
        return CONC_ENOMEM;
    }
    it->watch.notify = iter_notify;
    it->deadline = deadline;
    it->fs = arr;
    it->ready = arr ? arr + n : NULL;
    it->links = links;
    it->n = dedup(fs, n, arr);
    for (size_t i = 0; i < it->n; i++) {
        links[i].watch = &it->watch;
        links[i].future = arr[i];
        if (!conc__future_watch(&links[i])) {
            conc__lockword_acquire(&it->lock, CONC__FOREVER, 0);
            it->ready[it->pushed++] = arr[i];
            it->nready++;
            conc__lockword_release(&it->lock, 0);
        }
    }
    *out = it;
    return 0;
}

/* Pops a ready future into *f: 1, or 0 if none. */
static int
pop_ready(conc_as_completed_iter *it, conc_future **f)
{
    conc__lockword_acquire(&it->lock, CONC__FOREVER, 0);
    int got = it->nready > 0;
    if (got) {
        /* Each future enters once: a plain array read in completion
         * order. */
        *f = it->ready[it->yielded];
        it->nready--;
    }
    conc__lockword_release(&it->lock, 0);
    return got;
}

static int
as_completed_next_uncancelled(conc_as_completed_iter *it, conc_future **f)
{
    if (!it || !f)
        return CONC_EINVAL;
    if (it->yielded == it->n)
        return CONC_ECLOSED;
    for (;;) {
        uint32_t seen = atomic_load(&it->seq);
        if (pop_ready(it, f)) {
            it->yielded++;
            return 0;
        }
        if (it->deadline == CONC__POLL)
            goto timeout;
        atomic_store_explicit(&it->sleeping, 1, memory_order_seq_cst);
        int r = 0;
        if (atomic_load_explicit(&it->seq, memory_order_seq_cst) == seen)
            r = conc__futex_wait(&it->seq, seen, it->deadline, 0);
        atomic_store_explicit(&it->sleeping, 0, memory_order_relaxed);
        if (r == -ETIMEDOUT && atomic_load(&it->seq) == seen)
            goto timeout;
    }
timeout:
    return conc_fail(CONC_ETIMEDOUT, "%zu (of %zu) futures unfinished",
                     it->n - it->yielded, it->n);
}

int
conc_as_completed_next(conc_as_completed_iter *it, conc_future **f)
{
    CONC__CANCEL_POINT(as_completed_next_uncancelled(it, f));
}

void
conc_as_completed_free(conc_as_completed_iter *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++)
        conc__future_unwatch(&it->links[i]);
    for (size_t i = 0; i < it->n; i++)
        conc_future_free(it->fs[i]);
    conc__free(it->links);
    conc__free(it->fs);
    conc__free(it);
}
