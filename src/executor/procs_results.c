/* The process engine's result thread: it reads the workers' results and
 * completes their futures, refills the rings
 * from the backlog, hands queued tasks from a stuck worker to an idle one,
 * enforces task time limits, and replaces workers that die (procs.c has
 * the design). */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/process.h"
#include "executor/procs_internal.h"
#include "unix/platform.h"

/* The longest sleep while a worker has no pidfd to wake the thread. */
#define NAP_MS ((int)(CONC__CHILD_NAP_MAX_NS / 1000000))

/* How long a worker's task must have run before the tasks queued behind
 * it go to an idle worker: at least this, and four average tasks. */
#define STUCK_NS 1000000

/* How long a slot whose worker could not be started waits before the
 * next try: a failed fork or allocation rarely heals at once, and each try
 * costs a fork. */
#define RESTART_NS 1000000000
#define NS_PER_S   1000000000

/* How often the result thread checks the workers' shared regions while
 * they have tasks: a task that wrote over its worker's region is found
 * within this, even when no result comes. */
#define CHECK_MS 100

/* ---- Completing futures ------------------------------------------------- */

/* Releases what the engine held for a finished job and completes it. */
static void
complete(struct pengine *e, conc_future *f, int code, const char *msg)
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
static void
fail_list(struct pengine *e, conc_future *f, int code, const char *msg)
{
    while (f) {
        conc_future *next = conc__job_of(f)->next;
        conc__job_of(f)->next = NULL;
        complete(e, f, code, msg);
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
static void
fail_backlog(struct pengine *e)
{
    conc__pe_lock(e);
    conc_future *bl = e->bl_head;
    e->bl_head = e->bl_tail = NULL;
    e->backlog = 0;
    conc__pe_unlock(e);
    fail_list(e, bl, CONC_EBROKEN, e->ex.broken_msg);
    conc__executor_signal_room(&e->ex, 0);
}

/* Marks the engine broken, for the reason `why`, and fails its backlog. */
static void
break_engine(struct pengine *e, const char *why)
{
    conc__pe_lock(e);
    if (!e->ex.broken) { /* the message first: readers look after broken */
        snprintf(e->ex.broken_msg, sizeof e->ex.broken_msg, "%s", why);
        atomic_store_explicit(&e->ex.broken, 1, memory_order_seq_cst);
    }
    conc__pe_unlock(e);
    fail_backlog(e);
}

/* Marks the engine broken by a failed initializer. */
static void
break_init(struct pengine *e, int code, const char *msg, size_t mlen)
{
    char why[256];
    snprintf(why, sizeof why,
             "a worker's initializer failed (%s: %.*s): the pool is broken",
             conc_err_name(code), (int)mlen, msg);
    break_engine(e, why);
}

/* Adapts the queue depth to the running average task time. */
static void
learn(struct pengine *e, uint64_t run_ns)
{
    e->avg_ns =
        e->avg_ns ? (7 * e->avg_ns + (int64_t)run_ns) / 8 : (int64_t)run_ns;
    size_t d = e->avg_ns ? (size_t)(200000 / (e->avg_ns + 1)) : CONC__DEPTH_MAX;
    d = d < CONC__DEPTH_MIN   ? CONC__DEPTH_MIN
        : d > CONC__DEPTH_MAX ? CONC__DEPTH_MAX
                              : d;
    atomic_store_explicit(&e->depth, d, memory_order_relaxed);
}

/* Starts a result: the head of w's list, or the one arriving in pieces.
 * NULL if the frame does not fit what the worker was given. */
static conc_future *
frame_future(struct pengine *e, struct worker *w, const struct conc__res_hdr *h,
             const char *msg, size_t mlen)
{
    if (h->flags & CONC__RES_CONT)
        return w->partial && conc__job_of(w->partial)->seq == h->seq
                   ? w->partial
                   : NULL;
    if (w->partial)
        return NULL; /* a new result before the last one's end */
    conc_future *f = pop_outstanding(e, w, h->seq);
    if (!f)
        return NULL;
    learn(e, h->run_ns);
    f->code = h->code;
    w->partial_total = h->total;
    w->partial_got = 0;
    w->partial_nomem = 0;
    memcpy(w->partial_msg, msg, mlen + 1); /* mlen <= 1024, with its NUL */
    return f;
}

/* Kills a worker whose shared region no longer makes sense (`why`, or a
 * malformed result frame if NULL): a task overwrote it, and nothing more
 * the worker wrote can be trusted. Its end is handled as a death
 * (worker_ended), which fails its tasks. */
static void
reject_worker(struct worker *w, const char *why)
{
    if (w->corrupt)
        return;
    w->corrupt = 1;
    snprintf(w->why, sizeof w->why, "%s", why ? why : "");
    kill(w->pid, SIGKILL);
}

/* Handles one result frame of w. */
static void
take_frame(struct pengine *e, struct worker *w, int64_t len)
{
    struct conc__res_hdr h;
    struct conc__ring *r = &w->sh->res;
    if ((uint64_t)len < sizeof h) {
        reject_worker(w, NULL);
        return;
    }
    conc__ring_read(r, 0, &h, sizeof h);
    size_t off = sizeof h;
    if (h.msglen > 1024 || h.msglen > (uint64_t)len - off) {
        reject_worker(w, NULL);
        return;
    }
    char msg[1025]; /* not cleared: a result's path, and m bytes are read */
    size_t m = h.msglen;
    conc__ring_read(r, off, msg, m);
    msg[m] = 0;
    off += h.msglen;
    if (h.flags & CONC__RES_INIT) {
        conc__ring_pop(r);
        break_init(e, h.code, msg, m);
        return;
    }
    conc_future *f = frame_future(e, w, &h, msg, m);
    size_t piece = (size_t)len - off;
    uint64_t left = f ? w->partial_total - w->partial_got : 0;
    int cont = (h.flags & CONC__RES_CONT) != 0;
    if (!f || piece > left || (cont && piece == 0) ||
        (!cont && !(h.flags & CONC__RES_MORE) && piece != left)) {
        if (f && !cont)
            w->partial = f; /* popped: its death fails it */
        reject_worker(w, NULL);
        return;
    }
    if (!w->partial_nomem && piece) {
        if (conc_buf_reserve(&f->result, piece) == 0) {
            conc__ring_read(r, off, f->result.data + f->result.len, piece);
            f->result.len += piece;
        } else {
            w->partial_nomem = 1;
        }
    }
    w->partial_got += piece;
    conc__ring_pop(r);
    if (w->partial_got < w->partial_total) {
        w->partial = f;
        return;
    }
    w->partial = NULL;
    if (w->partial_nomem)
        snprintf(w->partial_msg, sizeof w->partial_msg,
                 "no memory in the parent for the task's %llu-byte result",
                 (unsigned long long)w->partial_total);
    int code = w->partial_nomem ? CONC_ENOMEM : f->code;
    complete(e, f, code, code < 0 ? w->partial_msg : NULL);
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
    reject_worker(w, why);
    return 0;
}

/* Reads every result w has written. Returns how many frames. */
static size_t
drain(struct pengine *e, struct worker *w)
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

/* ---- Deaths and limits -------------------------------------------------- */

/* Fails the task a dead worker was running. */
static void
fail_dead(struct pengine *e, struct worker *w, conc_future *f, int code)
{
    if (w->killed_seq && conc__job_of(f)->seq == w->killed_seq) {
        complete(e, f, CONC_ETIMEDOUT,
                 "the task ran past its time limit and its worker was killed");
        return;
    }
    char msg[320];
    if (w->corrupt && w->why[0])
        snprintf(msg, sizeof msg,
                 "worker pid %d was killed: %s (a task overwrote its shared "
                 "memory)",
                 w->pid, w->why);
    else if (w->corrupt)
        snprintf(msg, sizeof msg,
                 "worker pid %d wrote a malformed result (its shared memory "
                 "was overwritten) and was killed",
                 w->pid);
    else if (code < 0)
        snprintf(msg, sizeof msg, "worker pid %d died: signal %d (%s)", w->pid,
                 -code, strsignal(-code));
    else
        snprintf(msg, sizeof msg, "worker pid %d exited with status %d", w->pid,
                 code);
    complete(e, f, CONC_EBROKEN, msg);
}

/* Splits a dead worker's list (lock held): the task it claimed (marked
 * running, so that no cancel takes it now) and the ones it never saw. It
 * runs one task at a time, in order: only the first claimed one can be
 * true (a task may have overwritten the others' claim words). */
static conc_future *
split_dead_locked(struct pengine *e, struct worker *w, conc_future **requeue,
                  conc_future **rq_tail)
{
    conc_future *ran = NULL;
    for (conc_future *f = w->head, *next; f; f = next) {
        next = conc__job_of(f)->next;
        if (!ran && conc__pe_claimed_locked(e, f)) {
            conc_future_set_running(f);
            ran = f;
        } else {
            conc__pe_push_back(requeue, rq_tail, f);
        }
        conc__job_of(f)->ticket = 0;
    }
    w->head = w->tail = NULL;
    w->nout = 0;
    w->alive = 0;
    return ran;
}

/* Whether some worker is alive (lock held). */
static int
any_alive_locked(struct pengine *e)
{
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive)
            return 1;
    return 0;
}

/* After slot i could not get a worker: the pool serves on with the
 * workers it has and tries again later; with none left, it is broken, so
 * that its queued tasks and new submits fail instead of waiting for a
 * worker that may never come. */
static void
replace_failed(struct pengine *e, size_t i, const char *msg)
{
    e->w[i].restart_at = conc__now_ns() + RESTART_NS;
    conc__pe_lock(e);
    int none = !any_alive_locked(e);
    conc__pe_unlock(e);
    if (none) {
        char why[256];
        snprintf(why, sizeof why, "%.200s, and no worker is left", msg);
        break_engine(e, why);
    }
}

/* Handles the end of worker i: its written results first, then the task
 * it ran fails, the others go back to the backlog's front, and a
 * replacement starts. */
static void
worker_ended(struct pengine *e, size_t i)
{
    struct worker *w = &e->w[i];
    drain(e, w);
    conc_future *requeue = NULL, *rq_tail = NULL;
    conc__pe_lock(e);
    conc_future *ran = split_dead_locked(e, w, &requeue, &rq_tail);
    if (ran)
        conc__job_of(ran)->next = NULL;
    conc__pe_unlock(e);
    conc_future *partial = w->partial;
    w->partial = NULL;
    char found[160];
    ssize_t n = recv(w->sock, found, sizeof found - 1, MSG_DONTWAIT);
    int code = conc__pe_reap_worker(w);
    if (code == CONC__EXIT_CORRUPT && n > 0 && !w->corrupt) {
        found[n] = 0;
        w->corrupt = 1;
        snprintf(w->why, sizeof w->why, "it found %s", found);
    }
    if (partial) /* died half-way through writing a result */
        fail_dead(e, w, partial, code);
    if (ran)
        fail_dead(e, w, ran, code);
    /* A region that made no sense says nothing sure of which task ran:
     * none is run again. */
    for (conc_future *q = w->corrupt ? requeue : NULL, *next; q; q = next) {
        next = conc__job_of(q)->next;
        conc__job_of(q)->next = NULL;
        fail_dead(e, w, q, code);
    }
    if (w->corrupt)
        requeue = rq_tail = NULL;
    w->corrupt = 0;
    w->why[0] = 0;
    w->killed_seq = 0;
    conc__pe_lock(e);
    int replace = !e->terminating && !e->ex.broken;
    conc__pe_unlock(e);
    int r = replace ? conc__pe_start_worker(e, i) : 0;
    if (r < 0) { /* its queue fails with what stopped the replacement */
        char msg[256];
        snprintf(msg, sizeof msg,
                 "worker pid %d ended and could not be replaced (%s: %s)",
                 w->pid, conc_err_name(r), conc_strerror(r));
        fail_list(e, requeue, r, msg);
        requeue = rq_tail = NULL;
        replace_failed(e, i, msg);
    }
    conc__pe_lock(e);
    if (rq_tail) {
        for (conc_future *q = requeue; q; q = conc__job_of(q)->next)
            e->backlog++;
        conc__job_of(rq_tail)->next = e->bl_head;
        e->bl_head = requeue;
        if (!e->bl_tail)
            e->bl_tail = rq_tail;
    }
    int broken = e->ex.broken;
    conc__pe_unlock(e);
    if (broken) /* no worker will come: fail what it left */
        fail_backlog(e);
}

/* Kills workers whose task ran past the time limit. */
static void
enforce_limits(struct pengine *e, int64_t now)
{
    int64_t limit = (int64_t)(e->ex.opts.task_timeout * 1e9);
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->alive || w->killed_seq)
            continue;
        uint64_t s = atomic_load(&w->sh->started);
        if (s && now - atomic_load(&w->sh->started_ns) > limit &&
            atomic_load(&w->sh->started) == s) {
            w->killed_seq = s;
            kill(w->pid, SIGKILL);
        }
    }
}

/* ---- Checking the workers' regions -------------------------------------- */

/* Whether the task at the head of w's list has vanished (lock held): its
 * worker consumed its frame (it claims a task before it consumes it, so
 * the claim is settled), yet it neither runs it nor wrote its result. A
 * worker skips a task only when the parent revoked it, which takes it out
 * of the list: so a task overwrote the claim word or the worker's record
 * of what it runs. */
static int
vanished_locked(struct worker *w, uint64_t popped)
{
    conc_future *f = w->head;
    if (!f || popped < conc__ticket_wseq(conc__job_of(f)->ticket) ||
        atomic_load_explicit(&w->sh->started, memory_order_acquire) ==
            conc__job_of(f)->seq)
        return 0;
    /* A worker writes the result before it clears `started`. */
    struct conc__ring *r = &w->sh->res;
    return atomic_load_explicit(&r->tail, memory_order_acquire) ==
           atomic_load_explicit(&r->head, memory_order_relaxed);
}

/* What makes no sense in w's shared region, written to `why`; 0 if all
 * does (lock held). Each check compares a word with what this side wrote
 * or knows: the positions it alone moves, the worker's ones within the
 * bounds this side's imply, the claim word of the next task, the running
 * task's record. */
static int
region_fault_locked(struct pengine *e, struct worker *w, int64_t now, char *why,
                    size_t size)
{
    struct conc__wshared *sh = w->sh;
    uint64_t th = atomic_load(&sh->task.head), tt = atomic_load(&sh->task.tail);
    uint64_t rh = atomic_load(&sh->res.head), rt = atomic_load(&sh->res.tail);
    uint64_t popped = atomic_load(&sh->popped);
    uint64_t started = atomic_load(&sh->started);
    int64_t started_ns = atomic_load(&sh->started_ns);
    if (tt != w->task_tail || w->task_tail - th > CONC__RING_CAP)
        snprintf(why, size, "its task ring reads head %llu, tail %llu",
                 (unsigned long long)th, (unsigned long long)tt);
    else if (rh != w->res_head || rt - rh > CONC__RING_CAP)
        snprintf(why, size, "its result ring reads head %llu, tail %llu",
                 (unsigned long long)rh, (unsigned long long)rt);
    else if (w->wseq - popped > w->wseq - w->popped_seen)
        snprintf(why, size, "it counts %llu tasks consumed of %llu sent",
                 (unsigned long long)popped, (unsigned long long)w->wseq);
    else if (started > e->seq || (started && started_ns - now > NS_PER_S))
        snprintf(why, size, "its running task reads %llu, started at %lld",
                 (unsigned long long)started, (long long)started_ns);
    else if (w->head && !conc__pe_claim_valid_locked(e, w->head))
        snprintf(why, size, "the claim word of its task %llu was overwritten",
                 (unsigned long long)conc__ticket_wseq(
                     conc__job_of(w->head)->ticket));
    else if (vanished_locked(w, popped))
        snprintf(why, size,
                 "its task %llu was consumed but neither runs nor has a result",
                 (unsigned long long)conc__ticket_wseq(
                     conc__job_of(w->head)->ticket));
    else
        return 0;
    return 1;
}

/* Kills the workers whose shared regions make no sense: a task wrote
 * over them, and every task behind would wait forever. */
static void
check_regions(struct pengine *e, int64_t now)
{
    char why[sizeof e->w->why];
    conc__pe_lock(e);
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (w->alive && !w->corrupt && !w->killed_seq &&
            region_fault_locked(e, w, now, why, sizeof why))
            reject_worker(w, why);
    }
    conc__pe_unlock(e);
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
        ms = ms < 1 ? 1 : ms > 1000 ? 1000 : ms;
    }
    conc__pe_lock(e);
    if (queued_behind_locked(e) && (ms < 0 || ms > 2))
        ms = 2;
    if (outstanding_locked(e) && (ms < 0 || ms > CHECK_MS))
        ms = CHECK_MS;
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
    struct pollfd pf[4097];
    size_t n = 0, idx[4096];
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
    int r = poll(pf, n, timeout_ms);
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

/* Handles ended workers and restarts missing ones. Returns how many. */
static size_t
tend_workers(struct pengine *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->ex.workers; i++) {
        if (e->w[i].ended) {
            e->w[i].ended = 0;
            worker_ended(e, i);
            n++;
        } else if (!e->w[i].alive && !e->terminating && !e->ex.broken &&
                   !e->w[i].proc && conc__now_ns() >= e->w[i].restart_at) {
            int r = conc__pe_start_worker(e, i);
            if (r == 0)
                n++;
            else
                e->w[i].restart_at = conc__now_ns() + RESTART_NS;
        }
    }
    return n;
}

/* One round: results, deaths, limits, refill. Returns 1 if it did work. */
static int
round_once(struct pengine *e)
{
    size_t got = 0;
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive)
            got += drain(e, &e->w[i]);
    got += tend_workers(e);
    int64_t now = conc__now_ns();
    if (now - e->checked_ns >= CHECK_MS * 1000000) {
        check_regions(e, now);
        e->checked_ns = now;
    }
    if (e->ex.opts.task_timeout > 0)
        enforce_limits(e, now);
    conc__pe_lock(e);
    rebalance_locked(e, now);
    size_t moved = conc__pe_refill_locked(e);
    conc__pe_unlock(e);
    if (moved)
        conc__executor_signal_room(&e->ex, 0);
    return got || moved;
}

/* How long the ring of a worker asked to leave may stay too full for the
 * exit frame, and how long a worker asked to leave by a terminate may
 * take to do so, before it is killed. */
#define EXIT_PUT_NS  1000000000
#define EXIT_WAIT_NS 5000000000

/* Asks w to leave: it reads the exit frame after its tasks, flushes its
 * stdio and exits. Returns 0 if the frame found no room in time. */
static int
ask_exit(struct worker *w)
{
    struct conc__task_hdr h = {.flags = CONC__TASK_EXIT};
    const void *p[1] = {&h};
    size_t l[1] = {sizeof h};
    return conc__ring_put_wait(&w->sh->task, p, l, 1,
                               conc__now_ns() + EXIT_PUT_NS);
}

/* Fails what a stopped worker still held, and reaps it. */
static void
retire_worker(struct pengine *e, struct worker *w)
{
    drain(e, w);
    conc__pe_lock(e);
    w->alive = 0;
    conc_future *f = w->head;
    for (conc_future *g = f; g; g = conc__job_of(g)->next)
        conc__job_of(g)->ticket = 0;
    w->head = w->tail = NULL;
    w->nout = 0;
    conc__pe_unlock(e);
    if (w->partial) {
        conc__job_of(w->partial)->next = f;
        f = w->partial;
        w->partial = NULL;
    }
    fail_list(e, f, CONC_ECLOSED, "the pool was terminated");
    conc__pe_reap_worker(w);
}

/* Tells every live worker to leave, and reaps them all. When terminating,
 * only the busy ones are killed: an idle one leaves as after a close, so
 * that what its earlier tasks printed is flushed, as in Python, where a
 * pool's idle workers end before terminate() kills the rest. */
static void
stop_workers(struct pengine *e, int terminating)
{
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->proc)
            continue;
        conc__pe_lock(e);
        int busy = w->nout || w->partial;
        conc__pe_unlock(e);
        if ((terminating && busy) || !ask_exit(w))
            conc_process_kill(w->proc);
    }
    int64_t deadline = conc__now_ns() + EXIT_WAIT_NS;
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->proc)
            continue;
        double left = (double)(deadline - conc__now_ns()) / 1e9;
        if (terminating &&
            conc_process_join(w->proc, left > 0 ? left : 0) == CONC_ETIMEDOUT)
            conc_process_kill(w->proc);
        retire_worker(e, w);
    }
}

/* Idle rounds the thread spins before it sleeps: at most, and at least. */
#define SPIN_ROUNDS     256
#define SPIN_ROUNDS_MIN 8

/* Runs rounds until the engine is finished. Between results the thread
 * spins a while before it sleeps: results of tiny tasks come in
 * microseconds. How long adapts, as an adaptive mutex does: a spin that
 * caught a result, or a sleep shorter than the spin before it, doubles
 * the next; a sleep over twice as long halves it, so that with long tasks
 * the thread does not take, after each result, the CPU time the workers
 * need. */
static void
serve(struct pengine *e)
{
    int idle_rounds = 0, spin = SPIN_ROUNDS;
    int64_t idle_since = 0;
    for (;;) {
        int worked = round_once(e);
        conc__pe_lock(e);
        int done = finished_locked(e);
        conc__pe_unlock(e);
        if (done)
            return;
        if (worked) {
            if (idle_rounds > 0 && idle_rounds <= spin && spin < SPIN_ROUNDS)
                spin *= 2; /* the spin caught it */
            idle_rounds = 0;
            continue;
        }
        if (++idle_rounds == 1)
            idle_since = conc__now_ns();
        /* A poll with no wait also notices ended workers. */
        if (idle_rounds <= spin) {
            for (int i = 0; i < 64; i++)
                conc__cpu_relax();
            if (idle_rounds % 16 == 0)
                sleep_poll(e, 0);
            continue;
        }
        int64_t slept = conc__now_ns(), spun = slept - idle_since;
        sleep_poll(e, sleep_ms(e));
        slept = conc__now_ns() - slept;
        if (idle_rounds == spin + 1) { /* the first sleep after a spin */
            if (slept > 2 * spun && spin > SPIN_ROUNDS_MIN)
                spin /= 2; /* results are far apart: spinning is vain */
            else if (slept < spun && spin < SPIN_ROUNDS)
                spin *= 2; /* a longer spin would have caught it */
        }
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
    fail_list(e, bl, CONC_ECLOSED, "the pool was terminated");
    stop_workers(e, killing);
    return 0;
}
