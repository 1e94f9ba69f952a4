/* The process engine's supervision of its workers, run by the result
 * thread between results: a worker's end (its results read, its running
 * task failed, the others handed back, a replacement started or the queue
 * failed when none can be), time limits, the checks of each worker's
 * shared region against what the parent knows, and the workers' stop
 * (procs.c has the design). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/process.h"
#include "executor/procs_internal.h"

/* How long a slot whose worker could not be started waits before the
 * next try: a failed fork or allocation rarely heals at once, and each try
 * costs a fork. */
#define RESTART_NS 1000000000
#define NS_PER_S   1000000000

/* ---- Deaths and limits -------------------------------------------------- */

/* Fails the task a dead worker was running. */
static void
fail_dead(struct pengine *e, struct worker *w, conc_future *f, int code)
{
    if (w->killed_seq && conc__job_of(f)->seq == w->killed_seq) {
        conc__pe_complete(
            e, f, CONC_ETIMEDOUT,
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
    conc__pe_complete(e, f, CONC_EBROKEN, msg);
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
    if (ran)
        conc__job_of(ran)->next = NULL;
    w->head = w->tail = NULL;
    w->nout = 0;
    w->alive = 0;
    w->cancel_killed = 0;
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
        conc__pe_break(e, why);
    }
}

/* Reaps a dead worker and returns its exit code (minus a signal number).
 * A worker that left because it found its region overwritten said what
 * it found on its socket: w is then marked corrupt, with that reason. */
static int
reap_dead(struct worker *w)
{
    char found[160];
    ssize_t n = recv(w->sock, found, sizeof found - 1, MSG_DONTWAIT);
    int code = conc__pe_reap_worker(w);
    if (code == CONC__EXIT_CORRUPT && n > 0 && !w->corrupt) {
        found[n] = 0;
        w->corrupt = 1;
        snprintf(w->why, sizeof w->why, "it found %s", found);
    }
    return code;
}

/* Fails a list of a dead worker's tasks. */
static void
fail_all_dead(struct pengine *e, struct worker *w, conc_future *f, int code)
{
    while (f) {
        conc_future *next = conc__job_of(f)->next;
        conc__job_of(f)->next = NULL;
        fail_dead(e, w, f, code);
        f = next;
    }
}

/* Puts a dead worker's unclaimed tasks back at the backlog's front, or
 * fails them if the engine is broken (no worker will come). */
static void
requeue_front(struct pengine *e, conc_future *head, conc_future *tail)
{
    conc__pe_lock(e);
    if (tail) {
        for (conc_future *q = head; q; q = conc__job_of(q)->next)
            e->backlog++;
        conc__job_of(tail)->next = e->bl_head;
        e->bl_head = head;
        if (!e->bl_tail)
            e->bl_tail = tail;
    }
    int broken = e->ex.broken;
    conc__pe_unlock(e);
    if (broken)
        conc__pe_fail_backlog(e);
}

/* Handles the end of worker i: its written results first, then the task
 * it ran fails, the others go back to the backlog's front (or fail, when
 * its region made no sense: the claim words no longer say which ran), and
 * a replacement starts; if none can, its queue fails with why. */
static void
worker_ended(struct pengine *e, size_t i)
{
    struct worker *w = &e->w[i];
    conc__pe_drain(e, w);
    conc_future *requeue = NULL, *rq_tail = NULL;
    conc__pe_lock(e);
    conc_future *ran = split_dead_locked(e, w, &requeue, &rq_tail);
    int replace = !e->terminating && !e->ex.broken;
    conc__pe_unlock(e);
    conc_future *partial = w->partial; /* died half-way through writing it */
    w->partial = NULL;
    int code = reap_dead(w);
    fail_all_dead(e, w, partial, code);
    fail_all_dead(e, w, ran, code);
    if (w->corrupt) {
        fail_all_dead(e, w, requeue, code);
        requeue = rq_tail = NULL;
    }
    w->corrupt = 0;
    w->why[0] = 0;
    w->killed_seq = 0;
    int r = replace ? conc__pe_start_worker(e, i) : 0;
    if (r < 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "worker pid %d ended and could not be replaced (%s: %s)",
                 w->pid, conc_err_name(r), conc_strerror(r));
        conc__pe_fail_list(e, requeue, r, msg);
        requeue = rq_tail = NULL;
        replace_failed(e, i, msg);
    }
    requeue_front(e, requeue, rq_tail);
}

/* Kills workers whose task ran past the time limit. */
void
conc__pe_enforce_limits(struct pengine *e, int64_t now)
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
region_fault_locked(struct pengine *e, struct worker *w, char *why, size_t size)
{
    struct conc__wshared *sh = w->sh;
    uint64_t th = atomic_load(&sh->task.head), tt = atomic_load(&sh->task.tail);
    uint64_t rh = atomic_load(&sh->res.head), rt = atomic_load(&sh->res.tail);
    uint64_t settled = atomic_load(&sh->settled); /* before popped: <= it */
    uint64_t popped = atomic_load(&sh->popped);
    uint64_t started = atomic_load(&sh->started);
    int64_t started_ns = atomic_load(&sh->started_ns);
    int64_t now = conc__now_ns(); /* after the start time it is compared to */
    if (tt != w->task_tail || w->task_tail - th > CONC__RING_CAP)
        snprintf(why, size, "its task ring reads head %llu, tail %llu",
                 (unsigned long long)th, (unsigned long long)tt);
    else if (rh != w->res_head || rt - rh > CONC__RING_CAP)
        snprintf(why, size, "its result ring reads head %llu, tail %llu",
                 (unsigned long long)rh, (unsigned long long)rt);
    else if (w->wseq - settled > w->wseq - w->settled_seen ||
             popped - settled > w->wseq - settled)
        snprintf(why, size,
                 "it counts %llu tasks consumed and %llu settled of %llu sent",
                 (unsigned long long)popped, (unsigned long long)settled,
                 (unsigned long long)w->wseq);
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
void
conc__pe_check_regions(struct pengine *e)
{
    char why[sizeof e->w->why];
    conc__pe_lock(e);
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (w->alive && !w->corrupt && !w->killed_seq && !w->cancel_killed &&
            region_fault_locked(e, w, why, sizeof why))
            conc__pe_reject(w, why);
    }
    conc__pe_unlock(e);
}

/* Handles ended workers and restarts missing ones. Returns how many. */
size_t
conc__pe_tend_workers(struct pengine *e)
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
    conc__pe_drain(e, w);
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
    conc__pe_fail_list(e, f, CONC_ECLOSED, "the pool was terminated");
    conc__pe_reap_worker(w);
}

/* Tells every live worker to leave, and reaps them all. When terminating,
 * only the busy ones are killed: an idle one leaves as after a close, so
 * that what its earlier tasks printed is flushed, as in Python, where a
 * pool's idle workers end before terminate() kills the rest. */
void
conc__pe_stop_workers(struct pengine *e, int terminating)
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
