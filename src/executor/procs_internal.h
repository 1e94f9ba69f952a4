/* The process engine's shared structures: what the parent and its worker
 * processes both see. */
#ifndef CONC_EXECUTOR_PROCS_INTERNAL_H
#define CONC_EXECUTOR_PROCS_INTERNAL_H

#include "conc/arena.h"
#include "conc/process.h"
#include "executor/executor_internal.h"
#include "executor/frames.h"
#include "executor/ring.h"

/* A task in a worker's ring is claimed before it runs: the worker and the
 * parent race for its claim word with a compare-and-swap, the worker to
 * run it (TAKEN), the parent to take it back (REVOKED) for a cancel or to
 * hand it to an idle worker. Once it has written the task's result, the
 * worker races again, to mark it DONE, with a parent that cancels it by
 * killing the worker (KILLING): a worker that loses takes no other task
 * and waits for its SIGKILL, so that the kill ends that task alone. A
 * claim word holds wseq << CONC__CLAIM_BITS | state, so a stale
 * compare-and-swap on a reused word fails. There are CONC__SLOTS words,
 * task wseq using word wseq % CONC__SLOTS: the parent reuses a word only
 * once the worker has settled the task that last used it (skipped it, or
 * marked it DONE: the worker touches its word no more; `settled`) and that
 * task has left the parent's list, so that no word serves two tasks that
 * either side still looks at. Consuming a task's frame is not enough: the
 * worker marks the task DONE after running it. */
#define CONC__SLOTS         256u
#define CONC__CLAIM_BITS    3u
#define CONC__CLAIM_QUEUED  0u
#define CONC__CLAIM_TAKEN   1u
#define CONC__CLAIM_REVOKED 2u
#define CONC__CLAIM_DONE    3u
#define CONC__CLAIM_KILLING 4u

/* One worker's shared region, mapped before it is forked. */
struct conc__wshared {
    struct conc__ring task;     /* parent -> worker */
    struct conc__ring res;      /* worker -> parent */
    _Atomic uint64_t started;   /* seq of the running task, 0 for none */
    _Atomic int64_t started_ns; /* when it started (monotonic) */
    _Atomic uint64_t popped;    /* task frames the worker has consumed */
    _Atomic uint64_t settled;   /* tasks whose claim words it is done with */
    _Atomic uint64_t claim[CONC__SLOTS];
};

/* What a worker process is started with (its argument bytes). */
struct conc__worker_arg {
    struct conc__wshared *sh;
    _Atomic uint32_t *parent_sleeping;
    int wake_fd; /* eventfd: wakes the parent's result thread */
    int sock;    /* the worker's end of the descriptor socket */
    conc_arena *arena;
    conc_task_fn initializer;
    const uint8_t *initarg; /* the parent's copy, inherited by fork */
    size_t initarg_len;
    size_t max_tasks; /* 0: no limit */
    /* The worker's own copies of what it alone moves in the region (0 in
     * a new one), checked against the region before it is trusted. */
    uint64_t task_head, res_tail, popped, settled, wseq;
};

/* The exit status of a worker that found its shared region overwritten;
 * it first writes what it found on its socket, for the parent's message. */
#define CONC__EXIT_CORRUPT 86

/* The size of a process engine's shared arena. */
#define CONC__ARENA_SIZE ((size_t)1 << 30)

/* The worker process's main function. */
int conc__worker_main(const void *arg, size_t len);

/* ---- The parent's side (procs.c, procs_results.c) ----------------------- */

/* The most workers an executor has (executor.c refuses more). */
#define CONC__PE_WORKERS_MAX 4096

#define CONC__DEPTH_MIN 1   /* tasks in a worker's ring: for long tasks */
#define CONC__DEPTH_MAX 128 /* for tiny ones */

struct worker {
    struct conc__wshared *sh;
    conc_process *proc;
    int pid, pidfd, sock;
    /* Guarded by the engine lock: */
    conc_future *head, *tail; /* in its ring, in dispatch order */
    size_t nout;
    size_t dispatched;     /* tasks it will run (max_tasks_per_child) */
    uint64_t wseq;         /* the last task number sent to it */
    uint64_t settled_seen; /* sh->settled as last read */
    uint64_t task_tail;    /* where this side left the task ring's tail */
    int alive;             /* 0 once its death is handled */
    int cancel_killed;     /* killed to cancel the task it ran */
    /* The result thread's own: */
    int ended;            /* its pidfd said it ended */
    int64_t restart_at;   /* an empty slot's next start, after a failure */
    uint64_t killed_seq;  /* the task it was killed for, or 0 */
    int corrupt;          /* killed: its shared region made no sense */
    char why[200];        /* what was wrong with it ("": a frame) */
    uint64_t res_head;    /* where this side left the result ring's head */
    conc_future *partial; /* a result arriving in several frames */
    struct conc__res_stream rs; /* where its result frames stand */
    int partial_nomem;
    char partial_msg[CONC__RES_MSG_MAX + 1];
};

struct pengine {
    struct conc_executor ex;
    _Atomic size_t refs; /* the owner's and one per future it accepted */
    conc__lockword lock; /* guards the workers' lists, backlog, flags */
    /* Jobs cancelled in the backlog whose hook runs once the lock is
     * released (conc__pe_unlock): a Pool's hook takes its callback lock,
     * which comes before this one. Beside the lock: every unlock reads
     * `dropped`. */
    conc_future *dropped, *dropped_tail;
    struct worker *w;
    conc_future *bl_head, *bl_tail;
    _Atomic size_t backlog; /* written under the lock */
    uint64_t seq;
    _Atomic size_t depth; /* tasks a ring may hold: set by the result thread */
    _Atomic int terminating; /* set under the lock; read without it */
    conc_arena *arena;
    _Atomic uint32_t *parent_sleeping; /* in a shared page */
    int wake_fd;
    conc_thread *thread;
    int64_t avg_ns;     /* running average task time (result thread) */
    int64_t checked_ns; /* the workers' regions' last check (same) */
};

static inline void
conc__pe_lock(struct pengine *e)
{
    conc__lockword_acquire(&e->lock, CONC__FOREVER, 0);
}

/* Ends jobs dropped under the lock: their hook, then the engine's
 * reference (lock not held). */
void conc__pe_end_dropped(struct pengine *e, conc_future *list);

static inline void
conc__pe_unlock(struct pengine *e)
{
    conc_future *dropped = e->dropped;
    if (dropped)
        e->dropped = e->dropped_tail = NULL;
    conc__lockword_release(&e->lock, 0);
    if (dropped)
        conc__pe_end_dropped(e, dropped);
}

/* A claim word's value. */
static inline uint64_t
conc__claim_word(uint64_t wseq, uint64_t state)
{
    return wseq << CONC__CLAIM_BITS | state;
}

/* The claim word of w's task `wseq`. */
static inline _Atomic uint64_t *
conc__claim_of(struct worker *w, uint64_t wseq)
{
    return &w->sh->claim[wseq % CONC__SLOTS];
}

/* A dispatched job's ticket: its worker's slot (plus one, so that 0 means
 * "in no ring") and its number among that worker's tasks. */
static inline uint64_t
conc__ticket(size_t worker, uint64_t wseq)
{
    return (uint64_t)(worker + 1) << 48 | wseq;
}

static inline size_t
conc__ticket_worker(uint64_t ticket)
{
    return (size_t)(ticket >> 48) - 1;
}

static inline uint64_t
conc__ticket_wseq(uint64_t ticket)
{
    return ticket & (((uint64_t)1 << 48) - 1);
}

/* The claim word of `f`, in its worker's list (lock held). */
static inline uint64_t
conc__pe_claim_locked(struct pengine *e, conc_future *f)
{
    uint64_t ticket = conc__job_of(f)->ticket;
    struct worker *w = &e->w[conc__ticket_worker(ticket)];
    return atomic_load_explicit(conc__claim_of(w, conc__ticket_wseq(ticket)),
                                memory_order_acquire);
}

/* Whether the worker holding `f` (in its list; lock held) has claimed it:
 * it runs it, has finished it, or is being killed for it. */
static inline int
conc__pe_claimed_locked(struct pengine *e, conc_future *f)
{
    uint64_t ws = conc__ticket_wseq(conc__job_of(f)->ticket);
    uint64_t word = conc__pe_claim_locked(e, f);
    return word == conc__claim_word(ws, CONC__CLAIM_TAKEN) ||
           word == conc__claim_word(ws, CONC__CLAIM_DONE) ||
           word == conc__claim_word(ws, CONC__CLAIM_KILLING);
}

/* Whether the claim word of `f`, in its worker's list, is one the two
 * sides write for it: queued or claimed (lock held). */
static inline int
conc__pe_claim_valid_locked(struct pengine *e, conc_future *f)
{
    uint64_t ws = conc__ticket_wseq(conc__job_of(f)->ticket);
    return conc__pe_claim_locked(e, f) ==
               conc__claim_word(ws, CONC__CLAIM_QUEUED) ||
           conc__pe_claimed_locked(e, f);
}

/* Appends `f` to a list linked by its jobs' next. */
void conc__pe_push_back(conc_future **head, conc_future **tail, conc_future *f);

/* Moves backlog into the rings (lock held). Returns how many moved. */
size_t conc__pe_refill_locked(struct pengine *e);

/* Takes `f`, in a worker's ring, out of that worker's list if the worker
 * has not claimed it (lock held). Returns 1 if revoked, 0 if claimed. */
int conc__pe_revoke_locked(struct pengine *e, conc_future *f);

/* Releases what the engine holds for a job: its shared argument and its
 * descriptor. */
void conc__pe_release(struct pengine *e, conc_future *f);

/* Wakes the result thread. */
void conc__pe_wake_thread(struct pengine *e);

/* Starts worker i (lock not held). Returns 0 or an error. */
int conc__pe_start_worker(struct pengine *e, size_t i);

/* Reaps a worker that has ended and unmaps its region. Returns its exit
 * code (minus a signal number). */
int conc__pe_reap_worker(struct worker *w);

/* The result thread. */
int conc__pe_result_main(void *arg);

/* ---- Shared by the result thread's two files ----------------------------- */

/* How often the result thread checks the workers' shared regions while
 * they have tasks: a task that wrote over its worker's region is found
 * within this, even when no result comes. */
#define CONC__CHECK_MS 100

/* Releases what the engine held for a finished job and completes it. */
void conc__pe_complete(struct pengine *e, conc_future *f, int code,
                       const char *msg);

/* Fails every job of a list with `code`. */
void conc__pe_fail_list(struct pengine *e, conc_future *f, int code,
                        const char *msg);

/* Fails the backlog of a broken engine. */
void conc__pe_fail_backlog(struct pengine *e);

/* Marks the engine broken, for the reason `why`, and fails its backlog. */
void conc__pe_break(struct pengine *e, const char *why);

/* Reads every result w has written. Returns how many frames. */
size_t conc__pe_drain(struct pengine *e, struct worker *w);

/* Kills a worker whose shared region no longer makes sense (`why`). */
void conc__pe_reject(struct worker *w, const char *why);

/* Handles ended workers and restarts missing ones. Returns how many. */
size_t conc__pe_tend_workers(struct pengine *e);

/* Kills workers whose task ran past the time limit. */
void conc__pe_enforce_limits(struct pengine *e, int64_t now);

/* Kills the workers whose shared regions make no sense. */
void conc__pe_check_regions(struct pengine *e);

/* Tells every live worker to leave (when terminating, kills the busy
 * ones), and reaps them all. */
void conc__pe_stop_workers(struct pengine *e, int terminating);

#endif
