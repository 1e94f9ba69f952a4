/* The process engine's result thread: it reads the workers' results
 * (their frames decoded by frames.c) and completes their futures, refills
 * the rings from the backlog and hands queued tasks from a stuck worker to
 * an idle one; between results it has procs_workers.c supervise the
 * workers (procs.c has the design). */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/process.h"
#include "core/wait.h"
#include "executor/procs_internal.h"
#include "unix/platform.h"

/* The longest sleep while a worker has no pidfd to wake the thread. */
#define NAP_MS ((int)(CONC__CHILD_NAP_MAX_NS / 1000000))

/* How long a worker's task must have run before the tasks queued behind
 * it go to an idle worker: at least this, and four average tasks. */
#define STUCK_NS 1000000

/* The work a ring holds: depth = QUEUED_NS / average task time (procs.c
 * says why 200 us). */
#define QUEUED_NS 200000

/* The result thread's longest sleeps while a task waits behind a running
 * one, and while a time limit runs. */
#define REBALANCE_MS       2
#define LIMIT_SLEEP_MAX_MS 1000

/* ---- Completing futures ------------------------------------------------- */

/* Releases what the engine held for a finished job and completes it. */
void
conc__pe_complete(struct pengine *e, conc_future *f, int code, const char *msg)
{
    if (conc__future_state_raw(f) ==
        CONC_FUTURE_CANCELLED) { /* in the backlog, when it ends */
        code = CONC_ECANCELED;
        msg = "cancelled";
    }
    conc__pe_release(e, f);
    if (e->ex.on_done)
        e->ex.on_done(f, code < 0 ? code : 0, code < 0 && msg ? msg : "");
    conc__future_finish(f, code, msg);
    conc_future_free(f);
}

/* Fails every job of a list with `code`. */
void
conc__pe_fail_list(struct pengine *e, conc_future *f, int code, const char *msg)
{
    while (f) {
        conc_future *next = conc__job_of(f)->next;
        conc__job_of(f)->next = NULL;
        conc__pe_complete(e, f, code, msg);
        f = next;
    }
}

/* Takes the head of w's list, whose result (of task `seq`) is arriving:
 * its worker claimed it, so it is running from now on for a cancel too.
 * NULL if the head is not that task: the frame is malformed. */
static conc_future *
pop_outstanding(struct pengine *e, struct worker *w, uint64_t seq)
{
    conc__pe_lock(e);
    conc_future *f = w->head;
    if (f && conc__job_of(f)->seq != seq)
        f = NULL;
    if (f) {
        w->head = conc__job_of(f)->next;
        if (!w->head)
            w->tail = NULL;
        conc__job_of(f)->next = NULL;
        conc__job_of(f)->ticket = 0;
        w->nout--;
        conc_future_set_running(f);
    }
    conc__pe_unlock(e);
    return f;
}

/* Fails the backlog of a broken engine. */
void
conc__pe_fail_backlog(struct pengine *e)
{
    conc__pe_lock(e);
    conc_future *bl = e->bl_head;
    e->bl_head = e->bl_tail = NULL;
    e->backlog = 0;
    conc__pe_unlock(e);
    conc__pe_fail_list(e, bl, CONC_EBROKEN, e->ex.broken_msg);
    conc__executor_signal_room(&e->ex, 0);
}

/* Marks the engine broken, for the reason `why`, and fails its backlog. */
void
conc__pe_break(struct pengine *e, const char *why)
{
    conc__pe_lock(e);
    if (!e->ex.broken) { /* the message first: readers look after broken */
        snprintf(e->ex.broken_msg, sizeof e->ex.broken_msg, "%s", why);
        atomic_store_explicit(&e->ex.broken, 1, memory_order_seq_cst);
    }
    conc__pe_unlock(e);
    conc__pe_fail_backlog(e);
}

/* Marks the engine broken by a failed initializer. */
static void
break_init(struct pengine *e, int code, const char *msg, size_t mlen)
{
    char why[256];
    snprintf(why, sizeof why,
             "a worker's initializer failed (%s: %.*s): the pool is broken",
             conc_err_name(code), (int)mlen, msg);
    conc__pe_break(e, why);
}

/* Adapts the queue depth to the running average task time. */
static void
learn(struct pengine *e, uint64_t run_ns)
{
    e->avg_ns =
        e->avg_ns ? (7 * e->avg_ns + (int64_t)run_ns) / 8 : (int64_t)run_ns;
    size_t d =
        e->avg_ns ? (size_t)(QUEUED_NS / (e->avg_ns + 1)) : CONC__DEPTH_MAX;
    d = d < CONC__DEPTH_MIN   ? CONC__DEPTH_MIN
        : d > CONC__DEPTH_MAX ? CONC__DEPTH_MAX
                              : d;
    atomic_store_explicit(&e->depth, d, memory_order_relaxed);
}

/* Starts the result of task `seq`, which must be the head of w's list.
 * NULL if it is not: the frame does not fit what the worker was given. */
static conc_future *
start_result(struct pengine *e, struct worker *w, const struct conc__res_hdr *h,
             const char *msg, size_t mlen)
{
    conc_future *f = pop_outstanding(e, w, h->seq);
    if (!f)
        return NULL;
    learn(e, h->run_ns);
    /* Cancelled by a kill that came too late to stop the result: it is
     * dropped, as a result without memory is, and `f` stays cancelled. */
    w->partial_nomem = conc__future_state_raw(f) == CONC_FUTURE_CANCELLED;
    if (!w->partial_nomem)
        f->code = h->code;
    memcpy(w->partial_msg, msg, mlen + 1); /* mlen <= CONC__RES_MSG_MAX */
    return f;
}

/* Kills a worker whose shared region no longer makes sense (`why`, or a
 * malformed result frame if NULL): a task overwrote it, and nothing more
 * the worker wrote can be trusted. Its end is handled as a death
 * (worker_ended), which fails its tasks. */
void
conc__pe_reject(struct worker *w, const char *why)
{
    if (w->corrupt)
        return;
    w->corrupt = 1;
    snprintf(w->why, sizeof w->why, "%s", why ? why : "");
    kill(w->pid, SIGKILL);
}

/* Kills a worker whose result frame is malformed. */
static void
reject_frame(struct worker *w, const char *what)
{
    char why[sizeof w->why];
    snprintf(why, sizeof why, "it wrote a malformed result (%s)", what);
    conc__pe_reject(w, why);
}

/* Completes a result of `total` bytes whose last frame came. */
static void
end_result(struct pengine *e, struct worker *w, conc_future *f, uint64_t total)
{
    if (w->partial_nomem)
        snprintf(w->partial_msg, sizeof w->partial_msg,
                 "no memory in the parent for the task's %llu-byte result",
                 (unsigned long long)total);
    int code = w->partial_nomem ? CONC_ENOMEM : f->code;
    conc__pe_complete(e, f, code, code < 0 ? w->partial_msg : NULL);
}

/* Handles one result frame of w, of `len` bytes (conc__res_decode). */
static void
take_frame(struct pengine *e, struct worker *w, int64_t len)
{
    struct conc__ring *r = &w->sh->res;
    struct conc__res_hdr raw;
    conc__ring_read(r, 0, &raw,
                    (uint64_t)len < sizeof raw ? (size_t)len : sizeof raw);
    struct conc__res_frame fr;
    const char *what;
    if (conc__res_decode(&w->rs, &raw, (uint64_t)len, &fr, &what) < 0) {
        reject_frame(w, what);
        return;
    }
    char msg[CONC__RES_MSG_MAX + 1]; /* not cleared: a result's path */
    conc__ring_read(r, fr.msg_off, msg, fr.msglen);
    msg[fr.msglen] = 0;
    if (fr.init) {
        conc__ring_pop(r);
        break_init(e, fr.h.code, msg, fr.msglen);
        return;
    }
    conc_future *f =
        fr.first ? start_result(e, w, &fr.h, msg, fr.msglen) : w->partial;
    if (!f) {
        reject_frame(w, "a result for a task it was not running");
        return;
    }
    uint64_t total = fr.first ? fr.h.total : w->rs.total;
    conc__res_advance(&w->rs, &fr);
    if (!w->partial_nomem && fr.piece) {
        if (conc_buf_reserve(&f->result, fr.piece) == 0) {
            conc__ring_read(r, fr.data_off, f->result.data + f->result.len,
                            fr.piece);
            f->result.len += fr.piece;
        } else {
            w->partial_nomem = 1;
        }
    }
    conc__ring_pop(r);
    w->partial = fr.last ? NULL : f;
    if (fr.last)
        end_result(e, w, f, total);
}

/* Whether the frame of `len` bytes at the head of w's result ring lies
 * where a frame can: the head where this side left it, the frame inside
 * what the ring holds. Cheap comparisons on lines this side owns. */
static int
frame_fits(struct worker *w, int64_t len)
{
    struct conc__ring *r = &w->sh->res;
    char why[sizeof w->why];
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t held = r->tail_seen - head;
    if (head != w->res_head)
        snprintf(why, sizeof why,
                 "its result ring's head moved from %llu to %llu",
                 (unsigned long long)w->res_head, (unsigned long long)head);
    else if (held > CONC__RING_CAP || (uint64_t)len > CONC__RING_MAX_FRAME ||
             8 + (((uint64_t)len + 7) & ~(uint64_t)7) > held)
        snprintf(why, sizeof why,
                 "a result frame of %lld bytes where its ring holds %llu",
                 (long long)len, (unsigned long long)held);
    else
        return 1;
    conc__pe_reject(w, why);
    return 0;
}

/* Reads every result w has written. Returns how many frames. */
size_t
conc__pe_drain(struct pengine *e, struct worker *w)
{
    size_t n = 0;
    int64_t len;
    while (!w->corrupt && (len = conc__ring_peek(&w->sh->res)) >= 0 &&
           frame_fits(w, len)) {
        take_frame(e, w, len);
        w->res_head =
            atomic_load_explicit(&w->sh->res.head, memory_order_relaxed);
        n++;
    }
    return n;
}

/* ---- Rebalancing -------------------------------------------------------- */

/* Whether some live worker has an empty ring and may take more tasks
 * (lock held). */
static int
has_idle_locked(struct pengine *e)
{
    size_t cap = e->ex.opts.max_tasks_per_child;
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (w->alive && w->nout == 0 && (!cap || w->dispatched < cap))
            return 1;
    }
    return 0;
}

/* Revokes the tasks queued behind w's running head, last first (the
 * worker claims in order, so the first refusal ends it), onto the list. */
static void
revoke_behind_locked(struct pengine *e, struct worker *w, conc_future **head,
                     conc_future **tail)
{
    conc_future *q[CONC__DEPTH_MAX + CONC__SLOTS];
    size_t n = 0;
    for (conc_future *f = conc__job_of(w->head)->next;
         f && n < sizeof q / sizeof *q; f = conc__job_of(f)->next)
        q[n++] = f;
    size_t k = n;
    while (k > 0 && conc__pe_revoke_locked(e, q[k - 1]))
        k--;
    for (size_t j = k; j < n; j++)
        conc__pe_push_back(head, tail, q[j]);
}

/* Hands the tasks queued behind a long-running task to the backlog when a
 * worker idles, so that refill gives them to it (lock held). */
static void
rebalance_locked(struct pengine *e, int64_t now)
{
    if (e->bl_head || !has_idle_locked(e))
        return;
    int64_t stuck = 4 * e->avg_ns > STUCK_NS ? 4 * e->avg_ns : STUCK_NS;
    conc_future *head = NULL, *tail = NULL;
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->alive || w->nout < 2 || !conc__pe_claimed_locked(e, w->head) ||
            now - atomic_load(&w->sh->started_ns) < stuck)
            continue;
        revoke_behind_locked(e, w, &head, &tail);
    }
    if (!head)
        return;
    for (conc_future *f = head; f; f = conc__job_of(f)->next)
        e->backlog++;
    e->bl_head = head;
    e->bl_tail = tail;
}

/* Whether a task waits behind another in some ring (lock held): then the
 * thread must look again soon, to rebalance. */
static int
queued_behind_locked(struct pengine *e)
{
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive && e->w[i].nout >= 2)
            return 1;
    return 0;
}

/* Whether a worker has tasks, or a slot waits to start one (lock held):
 * then the thread must wake to check regions or start workers. */
static int
outstanding_locked(struct pengine *e)
{
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].nout || e->w[i].partial || (!e->w[i].alive && e->backlog))
            return 1;
    return 0;
}

/* ---- The result thread -------------------------------------------------- */

/* Whether any worker has results waiting. */
static int
any_results(struct pengine *e)
{
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive && !e->w[i].corrupt &&
            conc__ring_peek(&e->w[i].sh->res) >= 0)
            return 1;
    return 0;
}

/* How long the thread may sleep, in ms: until the nearest time limit, or
 * the next look for a stuck worker. */
static int
sleep_ms(struct pengine *e)
{
    int ms = -1;
    if (e->ex.opts.task_timeout > 0) {
        ms = (int)(e->ex.opts.task_timeout * 1000 / 4);
        ms = ms < 1 ? 1 : ms > LIMIT_SLEEP_MAX_MS ? LIMIT_SLEEP_MAX_MS : ms;
    }
    conc__pe_lock(e);
    if (queued_behind_locked(e) && (ms < 0 || ms > REBALANCE_MS))
        ms = REBALANCE_MS;
    if (outstanding_locked(e) && (ms < 0 || ms > CONC__CHECK_MS))
        ms = CONC__CHECK_MS;
    conc__pe_unlock(e);
    return ms;
}

/* Workers without a pidfd (the platform has none) are looked at by pid
 * before each sleep, which then lasts at most a reaper's nap. Returns 0
 * when there are none, 1 when there are, 2 when one has ended (marked). */
static int
look_by_pid(struct pengine *e)
{
    int r = 0;
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive && e->w[i].pidfd < 0) {
            r = r ? r : 1;
            if (conc__child_ended(e->w[i].pid)) {
                e->w[i].ended = 1;
                r = 2;
            }
        }
    return r;
}

/* Sleeps until a worker writes a result, a worker ends, a submit nudges,
 * or `timeout_ms` passes; marks the workers that ended. */
static void
sleep_poll(struct pengine *e, int timeout_ms)
{
    int by_pid = look_by_pid(e);
    if (by_pid == 2)
        return;
    if (by_pid && (timeout_ms < 0 || timeout_ms > NAP_MS))
        timeout_ms = NAP_MS;
    struct pollfd pf[CONC__PE_WORKERS_MAX + 1];
    size_t n = 0, idx[CONC__PE_WORKERS_MAX];
    pf[n++] = (struct pollfd){.fd = e->wake_fd, .events = POLLIN};
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive) {
            idx[n - 1] = i;
            pf[n++] = (struct pollfd){.fd = e->w[i].pidfd, .events = POLLIN};
        }
    if (timeout_ms) {
        /* Announce the sleep, then look once more: a worker or submitter
         * that wrote before the announcement is seen here, one after it
         * writes the eventfd. */
        atomic_store_explicit(e->parent_sleeping, 1, memory_order_seq_cst);
        conc__pe_lock(e);
        size_t moved = conc__pe_refill_locked(e);
        conc__pe_unlock(e);
        if (moved || any_results(e))
            timeout_ms = 0;
    }
    int64_t deadline = timeout_ms < 0 ? CONC__FOREVER
                       : timeout_ms == 0
                           ? CONC__POLL
                           : conc__now_ns() + timeout_ms * 1000000LL;
    int r = conc__poll_until(pf, (unsigned)n, deadline);
    atomic_store_explicit(e->parent_sleeping, 0, memory_order_relaxed);
    if (r <= 0)
        return;
    if (pf[0].revents) {
        uint64_t v;
        ssize_t k = read(e->wake_fd, &v, sizeof v);
        CONC__UNUSED(k);
    }
    for (size_t j = 1; j < n; j++)
        if (pf[j].revents)
            e->w[idx[j - 1]].ended = 1;
}

/* Whether the result thread may leave: shut down and nothing left. */
static int
finished_locked(struct pengine *e)
{
    if (e->terminating)
        return 1;
    if (!e->ex.stopping || e->backlog)
        return 0;
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].nout)
            return 0;
    return 1;
}

/* One round: results, deaths, limits, refill. Returns 1 if it did work. */
static int
round_once(struct pengine *e)
{
    size_t got = 0;
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive)
            got += conc__pe_drain(e, &e->w[i]);
    got += conc__pe_tend_workers(e);
    int64_t now = conc__now_ns();
    if (now - e->checked_ns >= CONC__CHECK_MS * 1000000) {
        conc__pe_check_regions(e);
        e->checked_ns = now;
    }
    if (e->ex.opts.task_timeout > 0)
        conc__pe_enforce_limits(e, now);
    conc__pe_lock(e);
    rebalance_locked(e, now);
    size_t moved = conc__pe_refill_locked(e);
    conc__pe_unlock(e);
    if (moved)
        conc__executor_signal_room(&e->ex, 0);
    return got || moved;
}

/* The thread's spin budget (core/wait.h) adapts between these, where the
 * policy's is fixed: how far apart results come depends on the tasks, from
 * a few microseconds for tiny ones (a spin long enough to catch the next
 * is what lets apply_async reach a million tasks a second) to seconds, and
 * a spin that outlasts the gap only takes the CPU the workers need. */
#define SPIN_MIN_NS 10000  /* 10 us: a futex sleep and wake-up */
#define SPIN_MAX_NS 320000 /* 320 us */

/* Looks between two polls without a wait, which notice ended workers. */
#define LOOKS_PER_POLL 16

/* Runs rounds until the engine is finished. Between results the thread
 * spins a while before it sleeps: results of tiny tasks come in
 * microseconds. How long adapts, as an adaptive mutex does: a spin that
 * caught a result, or a sleep shorter than the spin before it, doubles
 * the next; a sleep over twice as long halves it, so that with long tasks
 * the thread does not take, after each result, the CPU time the workers
 * need. A round takes the engine lock that submits take: the spin looks
 * sparsely. */
static void
serve(struct pengine *e)
{
    int64_t budget = SPIN_MAX_NS;
    struct conc__spin sp = CONC__SPIN_STEP_INIT;
    unsigned looks = 0; /* idle rounds since the last result */
    int slept = 0;      /* whether the thread slept since */
    for (;;) {
        int worked = round_once(e);
        conc__pe_lock(e);
        int done = finished_locked(e);
        conc__pe_unlock(e);
        if (done)
            return;
        if (worked) {
            if (looks > 0 && !slept && budget < SPIN_MAX_NS)
                budget *= 2; /* the spin caught it */
            looks = 0;
            slept = 0;
            continue;
        }
        if (looks++ == 0)
            sp = conc__spin_start_flags(budget, CONC__FOREVER,
                                        CONC__SPIN_SPARSE);
        if (!slept && conc__spin_more(&sp)) {
            if (looks % LOOKS_PER_POLL == 0)
                sleep_poll(e, 0);
            continue;
        }
        int64_t t0 = conc__now_ns();
        sleep_poll(e, sleep_ms(e));
        int64_t took = conc__now_ns() - t0;
        if (!slept) { /* the first sleep after a spin */
            if (took > 2 * budget && budget > SPIN_MIN_NS)
                budget /= 2; /* results are far apart: spinning is vain */
            else if (took < budget && budget < SPIN_MAX_NS)
                budget *= 2; /* a longer spin would have caught it */
        }
        slept = 1;
    }
}

int
conc__pe_result_main(void *arg)
{
    struct pengine *e = arg;
    conc__executor_set_current(&e->ex); /* callbacks may not join the pool */
    serve(e);
    conc__pe_lock(e);
    int killing = e->terminating;
    conc_future *bl = e->bl_head;
    e->bl_head = e->bl_tail = NULL;
    e->backlog = 0;
    conc__pe_unlock(e);
    conc__pe_fail_list(e, bl, CONC_ECLOSED, "the pool was terminated");
    conc__pe_stop_workers(e, killing);
    return 0;
}
