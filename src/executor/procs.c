/* The process engine: ProcessPoolExecutor and Pool. Submitting,
 * dispatching, cancelling and the workers' start; the result thread is in
 * procs_results.c, its supervision of the workers in procs_workers.c, the
 * frames' decoding in frames.c and the worker's side in worker.c.
 *
 * Design. Each worker process has two shared-memory rings with the parent
 * (ring.h): tasks in, results out. A submit writes the task straight into
 * the ring of the least loaded worker, under the engine lock, when that
 * worker has fewer than `depth` tasks outstanding; otherwise the task waits
 * in the backlog. One result thread in the parent reads every worker's
 * results, completes the futures, refills the rings from the backlog,
 * watches each worker's pidfd, and enforces task time limits. It sleeps in
 * poll() on the workers' pidfds and an eventfd the workers write only when
 * it sleeps, so a busy pool makes no system call per task.
 *
 * A task in a ring is still pending: the worker claims it (a claim word in
 * shared memory, procs_internal.h) just before it runs it, and reading the
 * future's state then finds it running (engine_sync). Until the claim, the
 * parent may revoke the task: to cancel it, or to hand it to an idle worker
 * when the worker it waits on is stuck in a long task. After the claim, a
 * cancel that may kill (cancel_kills, or a TaskGroup's) kills the worker
 * instead, unless the worker has already marked the task done
 * (cancel_claimed; the claim word's states are in procs_internal.h). A
 * worker's tasks complete in the order it claimed them, so its results
 * always belong to the head of its outstanding list. `depth` adapts to task
 * length: deep queues for tiny tasks, short ones for long tasks.
 *
 * Trust. The shared region is written by a process that runs user code: a
 * wild pointer may rewrite it. Each side checks what it reads against what
 * it alone wrote or knows (frames.c; the region checks in procs_workers.c),
 * and a worker whose region makes no sense is killed, its tasks failed.
 *
 * A task:
 *
 *           submit              dispatch (lock)
 *   caller --------> backlog -----------------------> in a ring: QUEUED
 *                     ^   ^                                |    |
 *                     |   +-- revoke (lock: cancel, -------+    | claim
 *                     |       rebalance, shutdown):             | (worker's
 *                     |       REVOKED, out of the ring          |  CAS)
 *                     |                                         v
 *                     +-- its worker died before it    TAKEN: running
 *                         claimed it (requeued)                 |
 *                                                               | frames,
 *                             KILLING: cancelled, its  <--------+ DONE
 *                             worker killed (lock)              |
 *   done: its result, or EBROKEN, ETIMEDOUT, ENOMEM, ECLOSED <--+
 *
 * A worker (a slot of e->w):
 *
 *   empty --start--> alive --it ends: died, killed at --> ended: its
 *     ^   (fork)       |     the time limit or for a       results read,
 *     |                |     region that makes no sense    the TAKEN task
 *     |                |     (seen on its pidfd, or by     fails, QUEUED
 *     |                |     pid without pidfds)           ones go back to
 *     |                |                                   the backlog (or
 *     |                +-- exit frame (close, or            all fail, for a
 *     |                    terminate when idle)             bad region)
 *     |                                                          | reaped
 *     +-- replacement; if it cannot start, the dead one's queue fails with
 *         why, the slot retries after RESTART_NS, and with no worker left
 *         the engine is broken
 *
 * Lock order: the engine lock (e->lock) before a future's lock (a revoke
 * cancels, and a result marks running, under the engine lock); a pool's
 * callback lock (pool.c) before the engine lock. The engine lock is never
 * held while a future completes or a callback runs.
 *
 * Numbers, and where they come from:
 * - CONC__RES_MSG_MAX (1024, and 1025 with its NUL): the longest failure
 *   message a result frame carries; longer ones are cut by the worker.
 * - CONC__PE_WORKERS_MAX (4096, and 4097 descriptors in the result
 *   thread's poll: one per worker and the eventfd): executor.c refuses
 *   more workers.
 * - SLEEP_PAGE (4096): the page that holds the result thread's "asleep"
 *   flag, shared with the workers; mmap maps whole pages.
 * - QUEUED_NS (200000, in procs_results.c): the work queued in a ring,
 *   depth = QUEUED_NS / average task time: 200 us outlasts the result
 *   thread's wake-up, so a worker never idles while the thread sleeps,
 *   and a ring of long tasks holds few.
 * - REBALANCE_MS (2 ms) and LIMIT_SLEEP_MAX_MS (1 s), in procs_results.c:
 *   the longest sleeps of the result thread while tasks wait behind a
 *   running one (so that a stuck worker's queue moves within a few ms),
 *   and while a time limit runs (a quarter of it, at most 1 s).
 * - EXIT_PUT_NS (1 s, in procs_workers.c): how long a full ring may keep
 *   the exit frame out before its worker is killed instead. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/process.h"
#include "executor/procs_internal.h"
#include "unix/platform.h"

#define INLINE_MAX (CONC__RING_MAX_FRAME - sizeof(struct conc__task_hdr))
#define SLEEP_PAGE 4096

void
conc__pe_wake_thread(struct pengine *e)
{
    conc__eventfd_signal(e->wake_fd);
}

void
conc__pe_push_back(conc_future **head, conc_future **tail, conc_future *f)
{
    conc__job_of(f)->next = NULL;
    if (*tail)
        conc__job_of(*tail)->next = f;
    else
        *head = f;
    *tail = f;
}

void
conc__pe_release(struct pengine *e, conc_future *f)
{
    struct conc__job *j = conc__job_of(f);
    if (j->shared) {
        conc_arena_dealloc(e->arena, j->shared);
        j->shared = NULL;
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
}

/* ---- Dispatch ----------------------------------------------------------- */

/* Sends the descriptor of a task just put in the worker's ring, with one
 * byte. The worker waits for one such message per task that has a
 * descriptor, so if the descriptor cannot go the byte goes alone: the
 * worker then fails that task instead of waiting forever. A byte that
 * cannot go either means the worker is dead, which it reports itself. */
static void
send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    if (conc__fd_send(sock, &iov, 1, &fd, 1, 0) < 0)
        conc__fd_send(sock, &iov, 1, NULL, 0, 0);
}

/* Sends `f` to worker i if its ring has room (lock held). Returns 1 if
 * sent, 0 if there is no room, -1 if `f` was cancelled while pending. */
static int
send_task(struct pengine *e, size_t i, conc_future *f)
{
    struct worker *w = &e->w[i];
    if (conc__future_state_raw(f) == CONC_FUTURE_CANCELLED)
        return -1; /* cancels take the engine lock: no race */
    /* Task ws takes the claim word of task ws - CONC__SLOTS: free once
     * the worker has settled that task and it has left w's list
     * (procs_internal.h). */
    uint64_t ws = w->wseq + 1;
    if (w->head &&
        ws - conc__ticket_wseq(conc__job_of(w->head)->ticket) >= CONC__SLOTS)
        return 0;
    if (w->wseq - w->settled_seen >= CONC__SLOTS) { /* read it again */
        w->settled_seen =
            atomic_load_explicit(&w->sh->settled, memory_order_acquire);
        if (w->wseq - w->settled_seen >= CONC__SLOTS)
            return 0;
    }
    struct conc__job *j = conc__job_of(f);
    struct conc__task_hdr h = {.seq = j->seq,
                               .wseq = ws,
                               .fn = (uint64_t)(uintptr_t)j->fn,
                               .len = j->len};
    const void *parts[2] = {&h, j->arg};
    size_t lens[2] = {sizeof h, j->len};
    if (j->shared) {
        h.flags |= CONC__TASK_ARENA;
        h.arena_off = (uint64_t)((uint8_t *)j->shared - (uint8_t *)e->arena);
        lens[1] = 0;
    }
    if (j->fd >= 0)
        h.flags |= CONC__TASK_FD;
    /* Only this side writes the tail: if it moved, a task wrote over the
     * region, and the result thread will kill the worker. */
    if (atomic_load_explicit(&w->sh->task.tail, memory_order_relaxed) !=
        w->task_tail)
        return 0;
    /* The word's last task is settled (the checks above): reuse it. */
    atomic_store_explicit(conc__claim_of(w, ws),
                          conc__claim_word(ws, CONC__CLAIM_QUEUED),
                          memory_order_relaxed);
    if (!conc__ring_put(&w->sh->task, parts, lens, 2))
        return 0;
    w->wseq = ws;
    w->task_tail =
        atomic_load_explicit(&w->sh->task.tail, memory_order_relaxed);
    if (j->fd >= 0)
        send_fd(w->sock, j->fd);
    j->ticket = conc__ticket(i, ws);
    conc__pe_push_back(&w->head, &w->tail, f);
    w->nout++;
    w->dispatched++;
    return 1;
}

/* Sends `f` to the least loaded worker that has room (lock held), with
 * send_task's result (0 when no worker has room). */
static int
dispatch_locked(struct pengine *e, conc_future *f)
{
    size_t best = SIZE_MAX;
    size_t cap = e->ex.opts.max_tasks_per_child;
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->alive || w->cancel_killed || /* dying: it takes no task */
            w->nout >= atomic_load_explicit(&e->depth, memory_order_relaxed) ||
            (cap && w->dispatched >= cap))
            continue;
        if (best == SIZE_MAX || w->nout < e->w[best].nout)
            best = i;
    }
    return best != SIZE_MAX ? send_task(e, best, f) : 0;
}

/* Drops the engine's reference to a job cancelled while in the backlog. */
static void
drop_cancelled(struct pengine *e, conc_future *f)
{
    conc__pe_release(e, f);
    if (e->ex.on_done)
        e->ex.on_done(f, CONC_ECANCELED, "cancelled");
    conc_future_free(f);
}

void
conc__pe_end_dropped(struct pengine *e, conc_future *f)
{
    while (f) {
        conc_future *next = conc__job_of(f)->next;
        conc__job_of(f)->next = NULL;
        if (e->ex.on_done)
            e->ex.on_done(f, CONC_ECANCELED, "cancelled");
        conc_future_free(f);
        f = next;
    }
}

size_t
conc__pe_refill_locked(struct pengine *e)
{
    size_t moved = 0;
    while (e->bl_head) {
        conc_future *f = e->bl_head;
        conc_future *next = conc__job_of(f)->next;
        int r = e->ex.broken ? -2 : dispatch_locked(e, f);
        if (r == 0 || r == -2)
            break;
        e->bl_head = next;
        if (!next)
            e->bl_tail = NULL;
        e->backlog--;
        moved++;
        if (r < 0) { /* its hook runs once the lock goes */
            conc__pe_release(e, f);
            conc__pe_push_back(&e->dropped, &e->dropped_tail, f);
        }
    }
    return moved;
}

/* ---- Revoking ----------------------------------------------------------- */

int
conc__pe_revoke_locked(struct pengine *e, conc_future *f)
{
    uint64_t ws = conc__ticket_wseq(conc__job_of(f)->ticket);
    struct worker *w = &e->w[conc__ticket_worker(conc__job_of(f)->ticket)];
    uint64_t want = conc__claim_word(ws, CONC__CLAIM_QUEUED);
    if (!atomic_compare_exchange_strong(
            conc__claim_of(w, ws), &want,
            conc__claim_word(ws, CONC__CLAIM_REVOKED)))
        return 0;
    conc_future **pp = &w->head, *prev = NULL;
    while (*pp != f) {
        prev = *pp;
        pp = &conc__job_of(*pp)->next;
    }
    *pp = conc__job_of(f)->next;
    if (w->tail == f)
        w->tail = prev;
    conc__job_of(f)->next = NULL;
    conc__job_of(f)->ticket = 0;
    w->nout--;
    w->dispatched--;
    return 1;
}

/* Drops a reference to the engine's struct: its owner's, or a future's.
 * A future keeps the struct (and so its lock) for a cancel or a state
 * read that began before the executor was freed: the job is done by then
 * and its ticket 0, so those calls touch only the lock. */
static void
engine_unref(void *engine)
{
    struct pengine *e = engine;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        conc__free(e);
}

/* Cancels `f`, which its worker has claimed (lock held, unlocked on
 * return), by killing that worker when `hard`. The claim word decides
 * against the worker finishing it at the same moment: a task marked DONE
 * has its result written, which wins; one marked KILLING here ends
 * cancelled at once, still in the worker's list, and its worker takes no
 * other task (procs_internal.h). The result thread then handles the death
 * as any other (the tasks queued behind go back to the backlog, a
 * replacement starts) and ends the engine's hold on `f`, which it finds
 * cancelled (conc__pe_complete); a result written before the kill is
 * dropped unread (start_result). */
static int
cancel_claimed(struct pengine *e, conc_future *f, int hard)
{
    uint64_t ticket = conc__job_of(f)->ticket;
    struct worker *w = &e->w[conc__ticket_worker(ticket)];
    uint64_t ws = conc__ticket_wseq(ticket);
    uint64_t want = conc__claim_word(ws, CONC__CLAIM_TAKEN);
    if (!hard || !atomic_compare_exchange_strong(
                     conc__claim_of(w, ws), &want,
                     conc__claim_word(ws, CONC__CLAIM_KILLING))) {
        conc__pe_unlock(e); /* KILLING already: an earlier cancel won */
        return conc__future_state_raw(f) == CONC_FUTURE_CANCELLED ? 1 : -1;
    }
    conc_future_set_running(f); /* claimed: pending no more */
    int cancelled;
    struct conc__callback *cbs =
        conc__future_cancel_running_begin(f, &cancelled);
    w->cancel_killed = 1;
    kill(w->pid, SIGKILL);   /* reaped by the result thread only */
    conc__pe_wake_thread(e); /* under the lock: the engine stays */
    conc__pe_unlock(e);
    conc__future_complete_end(f, cbs);
    return cancelled ? 1 : -1;
}

/* conc_future_cancel's part in the engine, and with `hard` that of
 * conc__future_cancel_hard: a job in the backlog is cancelled there
 * (refill drops it), one in a ring is revoked first, and one its worker
 * has claimed is cancelled by killing the worker when `hard`. */
static int
engine_cancel(conc_future *f, int hard)
{
    struct pengine *e = conc__job_of(f)->engine;
    conc__pe_lock(e);
    int in_ring = conc__job_of(f)->ticket != 0;
    if (in_ring && !conc__pe_revoke_locked(e, f))
        return cancel_claimed(e, f, hard);
    int cancelled;
    struct conc__callback *cbs = conc__future_cancel_begin(f, &cancelled);
    if (in_ring) /* before the lock goes: then the engine may end */
        conc__pe_release(e, f);
    conc__pe_unlock(e);
    if (in_ring && e->ex.on_done) /* the engine's reference is ours */
        e->ex.on_done(f, CONC_ECANCELED, "cancelled");
    conc__future_complete_end(f, cbs);
    if (in_ring)
        conc_future_free(f);
    return cancelled ? 1 : -1;
}

/* The cancel hook: kills a running task's worker only if the executor
 * was made with cancel_kills (conc_executor_opts). */
static int
engine_revoke(conc_future *f)
{
    struct pengine *e = conc__job_of(f)->engine;
    return engine_cancel(f, e->ex.opts.cancel_kills);
}

/* The cancel_hard hook: kills a running task's worker. */
static int
engine_cancel_hard(conc_future *f)
{
    return engine_cancel(f, 1);
}

/* Marks `f` running if its worker has claimed it, so that a task that
 * has visibly started reads as running. */
static void
engine_sync(conc_future *f)
{
    struct pengine *e = conc__job_of(f)->engine;
    conc__pe_lock(e);
    if (conc__job_of(f)->ticket && conc__pe_claimed_locked(e, f))
        conc_future_set_running(f);
    conc__pe_unlock(e);
}

/* Releases a freed future's job, then the future's hold on the engine
 * (none if its submit failed before it took one). */
static void
engine_release(conc_future *f)
{
    struct pengine *e = conc__job_of(f)->engine;
    conc__job_release(f);
    if (e)
        engine_unref(e);
}

/* The hooks of a process engine's futures. */
static const struct conc__future_ops process_future_ops = {
    .cancel = engine_revoke,
    .cancel_hard = engine_cancel_hard,
    .sync = engine_sync,
    .release = engine_release,
};

/* ---- Workers' lives ----------------------------------------------------- */

/* Forks the worker for slot i into `w` (a private copy). */
static int
fork_worker(struct pengine *e, size_t i, struct worker *w)
{
    struct conc__worker_arg a = {
        .sh = w->sh,
        .parent_sleeping = e->parent_sleeping,
        .wake_fd = e->wake_fd,
        .arena = e->arena,
        .initializer = e->ex.opts.initializer,
        .initarg = e->ex.initarg,
        .initarg_len = e->ex.opts.initarg_len,
        .max_tasks = e->ex.opts.max_tasks_per_child,
    };
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    a.sock = sv[1];
    char name[64];
    snprintf(name, sizeof name, "PoolWorker-%zu", i + 1);
    conc_process_opts po = {
        .name = name, .daemon = CONC_DAEMON_YES, .method = CONC_START_FORK};
    int r = conc_process_new(conc__worker_main, &a, sizeof a, &po, &w->proc);
    if (r == 0)
        r = conc_process_start(w->proc);
    close(sv[1]);
    w->sock = sv[0];
    if (r < 0)
        return r;
    pid_t pid = 0;
    conc_process_pid(w->proc, &pid); /* cannot fail: started, not closed */
    w->pid = pid;
    /* The result thread polls it; without pidfds it looks by pid. */
    int fd = conc__pidfd_of(w->pid);
    if (fd < 0 && fd != CONC__NO_PIDFD) {
        conc_process_kill(w->proc);
        conc_process_join(w->proc, CONC_FOREVER);
        return fd;
    }
    w->pidfd = fd < 0 ? -1 : fd;
    return 0;
}

int
conc__pe_start_worker(struct pengine *e, size_t i)
{
    /* Built aside, then published under the lock: dispatch reads the slot
     * under the lock meanwhile. */
    struct worker w = {.pidfd = -1, .sock = -1};
    w.sh = mmap(NULL, sizeof *w.sh, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w.sh == MAP_FAILED)
        return CONC_ENOMEM;
    int r = fork_worker(e, i, &w);
    if (r < 0) {
        conc_process_free(w.proc);
        if (w.sock >= 0)
            close(w.sock);
        munmap(w.sh, sizeof *w.sh);
        return r;
    }
    w.alive = 1;
    conc__pe_lock(e);
    e->w[i] = w;
    conc__pe_unlock(e);
    return 0;
}

int
conc__pe_reap_worker(struct worker *w)
{
    int code = 0;
    conc_process_join(w->proc, CONC_FOREVER);
    conc_process_exitcode(w->proc, &code);
    conc_process_free(w->proc);
    close(w->pidfd);
    close(w->sock);
    munmap(w->sh, sizeof *w->sh);
    w->proc = NULL;
    w->sh = NULL;
    w->pidfd = w->sock = -1;
    return code;
}

/* ---- The engine's operations -------------------------------------------- */

/* Copies a large argument into the arena. */
static int
share_arg(struct pengine *e, conc_future *f)
{
    struct conc__job *j = conc__job_of(f);
    if (j->len <= INLINE_MAX)
        return 0;
    void *p;
    if (conc_arena_alloc(e->arena, j->len, &p) < 0)
        return conc_fail(CONC_ENOMEM,
                         "no room for a %zu-byte argument in the "
                         "pool's shared memory",
                         j->len);
    memcpy(p, j->arg, j->len);
    j->shared = p;
    return 0;
}

static int
engine_submit(struct conc_executor *ex, conc_future *f, int64_t deadline)
{
    struct pengine *e = (struct pengine *)ex;
    int r = share_arg(e, f);
    if (r < 0)
        return r;
    conc__job_of(f)->engine = e; /* released with the future */
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    conc__pe_lock(e);
    /* A chunk's rest, run again for a map accepted before a close, is
     * taken after the close only from the result thread: that thread is
     * then sure to be there to run it. */
    if (!conc__chunk_rerun || !conc__executor_in_task(ex) || ex->broken ||
        e->terminating) {
        r = conc__executor_refuse_locked(ex);
        if (r < 0)
            goto undo;
    }
    conc__job_of(f)->seq = ++e->seq;
    if (!e->bl_head && dispatch_locked(e, f) == 1) {
        conc__pe_unlock(e);
        return 0;
    }
    if (ex->opts.max_pending && (r = conc__executor_wait_room_locked(
                                     ex, &e->lock, &e->backlog, deadline)) < 0)
        goto undo;
    if (!e->bl_head && dispatch_locked(e, f) == 1) {
        conc__pe_unlock(e);
        return 0;
    }
    conc__pe_push_back(&e->bl_head, &e->bl_tail, f);
    e->backlog++;
    conc__pe_unlock(e);
    /* The result thread refills the rings; if it went to sleep after its
     * last look at the backlog, it needs a nudge (it looks again after
     * announcing its sleep, so one of the two sees the other). The first
     * to see the sleep takes the flag, so a run of submits nudges once. */
    if (atomic_load_explicit(e->parent_sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(e->parent_sleeping, 0, memory_order_seq_cst))
        conc__pe_wake_thread(e);
    return 0;
undo:
    conc__pe_unlock(e);
    if (conc__job_of(f)->shared)
        conc_arena_dealloc(e->arena, conc__job_of(f)->shared);
    conc__job_of(f)->shared = NULL;
    return r;
}

/* Takes every job that has not started out of the backlog and the rings
 * (lock held), as a list. */
static conc_future *
take_unstarted_locked(struct pengine *e)
{
    conc_future *gone = e->bl_head, *tail = e->bl_tail;
    e->bl_head = e->bl_tail = NULL;
    e->backlog = 0;
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->alive)
            continue;
        conc_future *f = w->head;
        while (f) {
            conc_future *next = conc__job_of(f)->next;
            if (conc__pe_revoke_locked(e, f))
                conc__pe_push_back(&gone, &tail, f);
            f = next;
        }
    }
    return gone;
}

static int
engine_shutdown(struct conc_executor *ex, int wait, int cancel)
{
    struct pengine *e = (struct pengine *)ex;
    if (wait && conc__executor_in_task(ex))
        return conc_fail(CONC_EDEADLK, "shutdown(wait) from the executor's "
                                       "own callback would wait for itself");
    conc__pe_lock(e);
    e->ex.stopping = 1;
    conc_future *gone = cancel ? take_unstarted_locked(e) : NULL;
    conc__pe_unlock(e);
    /* Out of every list: no one but a cancel can touch them now. */
    while (gone) {
        conc_future *next = conc__job_of(gone)->next;
        conc__job_of(gone)->next = NULL;
        conc__future_cancel_pending(gone);
        drop_cancelled(e, gone);
        gone = next;
    }
    conc__executor_signal_room(ex, 1);
    conc__pe_wake_thread(e);
    if (wait && e->thread)
        conc_thread_join(e->thread, CONC_FOREVER, NULL);
    return 0;
}

static int
engine_terminate(struct conc_executor *ex)
{
    struct pengine *e = (struct pengine *)ex;
    conc__pe_lock(e);
    e->ex.stopping = 1;
    e->terminating = 1;
    conc__pe_unlock(e);
    conc__pe_wake_thread(e);
    return 0;
}

static int
engine_join(struct conc_executor *ex, double timeout)
{
    struct pengine *e = (struct pengine *)ex;
    if (!e->thread)
        return 0;
    return conc_thread_join(e->thread, timeout, NULL) < 0 ? CONC_ETIMEDOUT : 0;
}

conc_arena *
conc__executor_arena(conc_executor *ex)
{
    return ex->is_process ? ((struct pengine *)ex)->arena : NULL;
}

static void
engine_destroy(struct conc_executor *ex)
{
    struct pengine *e = (struct pengine *)ex;
    conc_thread_free(e->thread);
    for (size_t i = 0; e->w && i < ex->workers; i++)
        if (e->w[i].proc)
            conc__pe_reap_worker(&e->w[i]);
    conc__free(e->w);
    if (e->arena)
        conc_arena_free(e->arena);
    if (e->parent_sleeping)
        munmap((void *)e->parent_sleeping, SLEEP_PAGE);
    if (e->wake_fd >= 0)
        close(e->wake_fd);
    e->w = NULL;
    conc__executor_fini(ex);
    engine_unref(e); /* the struct stays while a future may still ask */
}

static const struct conc__engine_ops process_ops = {
    .submit = engine_submit,
    .shutdown = engine_shutdown,
    .terminate = engine_terminate,
    .join = engine_join,
    .destroy = engine_destroy,
};

/* Maps the parent's shared page, the arena and the wake-up eventfd. */
static int
engine_setup(struct pengine *e)
{
    void *page = mmap(NULL, SLEEP_PAGE, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return CONC_ENOMEM;
    e->parent_sleeping = page;
    e->wake_fd = conc__eventfd_new();
    if (e->wake_fd < 0)
        return e->wake_fd;
    e->w = conc__calloc(e->ex.workers, sizeof *e->w);
    if (!e->w)
        return CONC_ENOMEM;
    for (size_t i = 0; i < e->ex.workers; i++)
        e->w[i].pidfd = e->w[i].sock = -1;
    return conc_arena_new(CONC__ARENA_SIZE, &e->arena);
}

int
conc__process_engine_new(const conc_executor_opts *opts,
                         conc__job_done_fn on_done, conc_executor **out)
{
    struct pengine *e = conc__calloc(1, sizeof *e);
    if (!e)
        return CONC_ENOMEM;
    e->wake_fd = -1;
    atomic_init(&e->refs, 1);
    int r = conc__executor_init(&e->ex, opts, 1);
    if (r < 0) {
        conc__free(e);
        return r;
    }
    e->ex.ops = &process_ops;
    e->ex.future_ops = &process_future_ops;
    e->ex.on_done = on_done;
    atomic_init(&e->depth, CONC__DEPTH_MIN);
    if ((r = engine_setup(e)) < 0)
        goto fail;
    for (size_t i = 0; i < e->ex.workers; i++)
        if ((r = conc__pe_start_worker(e, i)) < 0)
            goto fail;
    conc_thread_opts to = {.name = "PoolResultHandler",
                           .daemon = CONC_DAEMON_YES};
    if ((r = conc_thread_start(conc__pe_result_main, e, &to, &e->thread)) < 0)
        goto fail;
    *out = &e->ex;
    return 0;
fail:
    for (size_t i = 0; e->w && i < e->ex.workers; i++)
        if (e->w[i].proc)
            conc_process_kill(e->w[i].proc);
    engine_destroy(&e->ex);
    return r;
}
