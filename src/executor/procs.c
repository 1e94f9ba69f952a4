/* The process engine: ProcessPoolExecutor and Pool.
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
 * A worker's tasks complete in the order it received them, so its results
 * always belong to the head of its outstanding list. When a worker dies,
 * the results it wrote are read first; then the task named in its
 * `started` word fails (CONC_EBROKEN, or CONC_ETIMEDOUT if the pool killed
 * it for its time limit) and its other tasks go back to the backlog's
 * front. `depth` adapts to task length: deep queues for tiny tasks, short
 * ones for long tasks, so that one slow worker does not hold up work
 * another could do. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conc/process.h"
#include "executor/procs_internal.h"
#include "unix/futex.h"

#define INLINE_MAX (CONC__RING_MAX_FRAME - sizeof(struct conc__task_hdr))
#define ARENA_SIZE ((size_t)1 << 30)
#define SPIN_NS    50000
#define DEPTH_MIN  1
#define DEPTH_MAX  128

struct worker {
    struct conc__wshared *sh;
    conc_process *proc;
    int pid, pidfd, sock;
    conc_future *head, *tail; /* outstanding, in dispatch order */
    size_t nout;
    size_t dispatched;    /* tasks sent since it started */
    int alive;            /* 0 once its death is handled */
    uint64_t killed_seq;  /* the task it was killed for, or 0 */
    conc_future *partial; /* a result arriving in several frames */
    uint64_t partial_total, partial_got;
    int partial_nomem;
    char partial_msg[1025];
};

struct pengine {
    struct conc_executor ex;
    conc__lockword lock; /* guards the workers' lists, backlog, flags */
    struct worker *w;
    conc_future *bl_head, *bl_tail;
    size_t backlog;
    uint64_t seq;
    size_t depth;
    int stopping, terminating, broken;
    char broken_msg[256];
    conc_arena *arena;
    _Atomic uint32_t *parent_sleeping; /* in a shared page */
    int wake_fd;
    conc_thread *thread;
    _Atomic uint32_t room, room_sleepers;
    int64_t avg_ns; /* running average task time (result thread) */
};

static void
lock(struct pengine *e)
{
    conc__lockword_acquire(&e->lock, CONC__FOREVER, 0);
}

static void
unlock(struct pengine *e)
{
    conc__lockword_release(&e->lock, 0);
}

static void
wake_thread(struct pengine *e)
{
    uint64_t one = 1;
    ssize_t n = write(e->wake_fd, &one, sizeof one);
    CONC__UNUSED(n);
}

static void
push_back(conc_future **head, conc_future **tail, conc_future *f)
{
    f->job.next = NULL;
    if (*tail)
        (*tail)->job.next = f;
    else
        *head = f;
    *tail = f;
}

/* ---- Dispatch ----------------------------------------------------------- */

static int
send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

/* Sends `f` to worker `w` if its ring has room (lock held). Returns 1 if
 * sent, 0 if there is no room, -1 if `f` was cancelled. */
static int
send_task(struct pengine *e, struct worker *w, conc_future *f)
{
    struct conc__task_hdr h = {.seq = f->job.seq,
                               .fn = (uint64_t)(uintptr_t)f->job.fn,
                               .len = f->job.len};
    const void *parts[2] = {&h, f->job.arg};
    size_t lens[2] = {sizeof h, f->job.len};
    if (f->job.shared) {
        h.flags |= CONC__TASK_ARENA;
        h.arena_off =
            (uint64_t)((uint8_t *)f->job.shared - (uint8_t *)e->arena);
        lens[1] = 0;
    }
    if (f->job.fd >= 0)
        h.flags |= CONC__TASK_FD;
    /* 1: now running; 0: cancelled while pending; CONC_ESTATE: already
     * running, a task handed back by a worker that died. */
    int s = conc_future_set_running(f);
    if (s == 0)
        return -1;
    if (!conc__ring_put(&w->sh->task, parts, lens, 2)) {
        if (s == 1) /* no one else moves a running future: undo */
            atomic_store(&f->state, CONC_FUTURE_PENDING);
        return 0;
    }
    if (f->job.fd >= 0 && send_fd(w->sock, f->job.fd) < 0)
        send_fd(w->sock, -1); /* unreachable in practice; keeps order */
    push_back(&w->head, &w->tail, f);
    w->nout++;
    w->dispatched++;
    return 1;
}

/* Sends `f` to the least loaded worker that has room (lock held), with
 * send_task's result (0 when no worker has room). */
static int
dispatch_locked(struct pengine *e, conc_future *f)
{
    struct worker *best = NULL;
    size_t cap = e->ex.opts.max_tasks_per_child;
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->alive || w->nout >= e->depth || (cap && w->dispatched >= cap))
            continue;
        if (!best || w->nout < best->nout)
            best = w;
    }
    return best ? send_task(e, best, f) : 0;
}

/* Moves backlog into the rings (lock held). Returns how many moved. */
static size_t
refill_locked(struct pengine *e)
{
    size_t moved = 0;
    while (e->bl_head) {
        conc_future *f = e->bl_head;
        conc_future *next = f->job.next;
        int r = dispatch_locked(e, f);
        if (r == 0)
            break;
        e->bl_head = next;
        if (!next)
            e->bl_tail = NULL;
        e->backlog--;
        moved++;
        if (r < 0) { /* cancelled: the engine's reference goes */
            if (f->job.shared)
                conc_arena_dealloc(e->arena, f->job.shared);
            if (f->job.fd >= 0)
                close(f->job.fd);
            conc_future_free(f);
        }
    }
    return moved;
}

static void
signal_room(struct pengine *e)
{
    if (!e->ex.opts.max_pending)
        return;
    atomic_fetch_add_explicit(&e->room, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&e->room_sleepers, memory_order_seq_cst))
        conc__futex_wake(&e->room, INT32_MAX, 0);
}

/* ---- Completing futures ------------------------------------------------- */

/* Releases what the engine held for a finished job and completes it. */
static void
complete(struct pengine *e, conc_future *f, int code, const char *msg)
{
    if (f->job.shared) {
        conc_arena_dealloc(e->arena, f->job.shared);
        f->job.shared = NULL;
    }
    if (f->job.fd >= 0) {
        close(f->job.fd);
        f->job.fd = -1;
    }
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
        conc_future *next = f->job.next;
        f->job.next = NULL;
        complete(e, f, code, msg);
        f = next;
    }
}

/* Takes the head of w's outstanding list (lock held inside). */
static conc_future *
pop_outstanding(struct pengine *e, struct worker *w)
{
    lock(e);
    conc_future *f = w->head;
    if (f) {
        w->head = f->job.next;
        if (!w->head)
            w->tail = NULL;
        f->job.next = NULL;
        w->nout--;
    }
    unlock(e);
    return f;
}

/* Marks the engine broken by a failed initializer. */
static void
break_engine(struct pengine *e, int code, const char *msg, size_t mlen)
{
    lock(e);
    if (!e->broken) {
        e->broken = 1;
        snprintf(e->broken_msg, sizeof e->broken_msg,
                 "a worker's initializer failed (%s: %.*s): the pool is broken",
                 conc_err_name(code), (int)mlen, msg);
    }
    conc_future *bl = e->bl_head;
    e->bl_head = e->bl_tail = NULL;
    e->backlog = 0;
    unlock(e);
    fail_list(e, bl, CONC_EBROKEN, e->broken_msg);
    signal_room(e);
}

/* Adapts the queue depth to the running average task time. */
static void
learn(struct pengine *e, uint64_t run_ns)
{
    e->avg_ns =
        e->avg_ns ? (7 * e->avg_ns + (int64_t)run_ns) / 8 : (int64_t)run_ns;
    size_t d = e->avg_ns ? (size_t)(200000 / (e->avg_ns + 1)) : DEPTH_MAX;
    d = d < DEPTH_MIN ? DEPTH_MIN : d > DEPTH_MAX ? DEPTH_MAX : d;
    lock(e);
    e->depth = d;
    unlock(e);
}

/* Handles one result frame of w. */
static void
take_frame(struct pengine *e, struct worker *w, int64_t len)
{
    struct conc__res_hdr h;
    struct conc__ring *r = &w->sh->res;
    conc__ring_read(r, 0, &h, sizeof h);
    size_t off = sizeof h;
    if (h.flags & CONC__RES_INIT) {
        char msg[1024];
        size_t m = h.msglen < sizeof msg ? h.msglen : sizeof msg;
        conc__ring_read(r, off, msg, m);
        conc__ring_pop(r);
        break_engine(e, h.code, msg, m);
        return;
    }
    conc_future *f = w->partial;
    if (!(h.flags & CONC__RES_CONT)) {
        f = pop_outstanding(e, w);
        CONC__ASSERT(f && f->job.seq == h.seq);
        learn(e, h.run_ns);
    }
    char msg[1025] = "";
    if (h.msglen) {
        size_t m = h.msglen < 1024 ? h.msglen : 1024;
        conc__ring_read(r, off, msg, m);
        msg[m] = 0;
        off += h.msglen;
    }
    size_t piece = (size_t)len - off;
    if (!(h.flags & CONC__RES_CONT)) {
        f->code = h.code;
        w->partial_total = h.total;
        w->partial_got = 0;
        w->partial_nomem = 0;
        w->partial_msg[0] = 0;
        if (h.msglen)
            memcpy(w->partial_msg, msg, sizeof msg);
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
    int code = w->partial_nomem ? CONC_ENOMEM : f->code;
    complete(e, f, code, code < 0 ? w->partial_msg : NULL);
}

/* Reads every result w has written. Returns how many frames. */
static size_t
drain(struct pengine *e, struct worker *w)
{
    size_t n = 0;
    int64_t len;
    while ((len = conc__ring_peek(&w->sh->res)) >= 0) {
        take_frame(e, w, len);
        n++;
    }
    return n;
}

/* ---- Workers' lives ----------------------------------------------------- */

static int
pidfd_open(int pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Starts worker i (lock not held: fork may take a while). */
static int
start_worker(struct pengine *e, size_t i)
{
    struct worker *w = &e->w[i];
    memset(w, 0, sizeof *w);
    w->pidfd = w->sock = -1;
    int sv[2] = {-1, -1};
    w->sh = mmap(NULL, sizeof *w->sh, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w->sh == MAP_FAILED) {
        w->sh = NULL;
        return CONC_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        goto fail_errno;
    struct conc__worker_arg a = {
        .sh = w->sh,
        .parent_sleeping = e->parent_sleeping,
        .wake_fd = e->wake_fd,
        .sock = sv[1],
        .arena = e->arena,
        .initializer = e->ex.opts.initializer,
        .initarg = e->ex.initarg,
        .initarg_len = e->ex.opts.initarg_len,
        .max_tasks = e->ex.opts.max_tasks_per_child,
    };
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
        goto fail;
    w->pid = conc_process_pid(w->proc);
    w->pidfd = pidfd_open(w->pid);
    if (w->pidfd < 0) {
        r = -errno;
        conc_process_kill(w->proc);
        conc_process_join(w->proc, CONC_FOREVER);
        goto fail;
    }
    lock(e);
    w->alive = 1;
    unlock(e);
    return 0;
fail_errno:
    r = -errno;
fail:
    conc_process_free(w->proc);
    w->proc = NULL;
    if (w->sock >= 0)
        close(w->sock);
    w->sock = -1;
    munmap(w->sh, sizeof *w->sh);
    w->sh = NULL;
    return r;
}

/* Reaps a worker that has ended and releases its resources. Returns its
 * exit code (minus a signal number). */
static int
reap_worker(struct worker *w)
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

/* Handles the end of worker i: its written results first, then its
 * outstanding tasks, then a replacement. */
static void
worker_ended(struct pengine *e, size_t i)
{
    struct worker *w = &e->w[i];
    drain(e, w);
    uint64_t started = atomic_load(&w->sh->started);
    if (w->partial) { /* died half-way through a result */
        started = w->partial->job.seq;
        push_back(&w->head, &w->tail, w->partial); /* failed below */
    }
    int pid = w->pid;
    uint64_t killed = w->killed_seq;
    lock(e);
    w->alive = 0;
    conc_future *f = w->head;
    w->head = w->tail = NULL;
    w->nout = 0;
    unlock(e);
    int code = reap_worker(w);
    char msg[160];
    if (code < 0)
        snprintf(msg, sizeof msg, "worker pid %d died: signal %d (%s)", pid,
                 -code, strsignal(-code));
    else
        snprintf(msg, sizeof msg, "worker pid %d exited with status %d", pid,
                 code);
    conc_future *requeue = NULL, *rq_tail = NULL;
    while (f) {
        conc_future *next = f->job.next;
        if (f->job.seq == started && started == killed && killed)
            complete(e, f, CONC_ETIMEDOUT,
                     "the task ran past its time limit "
                     "and its worker was killed");
        else if (f->job.seq == started)
            complete(e, f, CONC_EBROKEN, msg);
        else
            push_back(&requeue, &rq_tail, f);
        f = next;
    }
    lock(e);
    if (rq_tail) {
        for (conc_future *q = requeue; q; q = q->job.next)
            e->backlog++; /* counted before the old backlog is appended */
        rq_tail->job.next = e->bl_head;
        e->bl_head = requeue;
        if (!e->bl_tail)
            e->bl_tail = rq_tail;
    }
    int replace = !e->terminating && !e->broken;
    unlock(e);
    if (replace && start_worker(e, i) < 0) {
        /* No replacement now: the next death check retries. */
    }
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

/* ---- The result thread -------------------------------------------------- */

/* Whether any worker has results waiting. */
static int
any_results(struct pengine *e)
{
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive && conc__ring_peek(&e->w[i].sh->res) >= 0)
            return 1;
    return 0;
}

/* Sleeps until a worker writes, a worker ends, or `timeout_ms` passes;
 * marks the ended workers in `ended`. */
static void
sleep_poll(struct pengine *e, int timeout_ms, unsigned char *ended)
{
    struct pollfd pf[4097];
    size_t n = 0, idx[4096];
    pf[n++] = (struct pollfd){.fd = e->wake_fd, .events = POLLIN};
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive) {
            idx[n - 1] = i;
            pf[n++] = (struct pollfd){.fd = e->w[i].pidfd, .events = POLLIN};
        }
    if (timeout_ms) {
        atomic_store_explicit(e->parent_sleeping, 1, memory_order_seq_cst);
        if (any_results(e))
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
            ended[idx[j - 1]] = 1;
}

/* Whether the result thread may leave: shut down and nothing left. */
static int
finished_locked(struct pengine *e)
{
    if (e->terminating)
        return 1;
    if (!e->stopping || e->backlog)
        return 0;
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].nout)
            return 0;
    return 1;
}

/* How long the thread may sleep, in ms: until the nearest time limit. */
static int
sleep_ms(struct pengine *e)
{
    if (e->ex.opts.task_timeout <= 0)
        return -1;
    int ms = (int)(e->ex.opts.task_timeout * 1000 / 4);
    return ms < 1 ? 1 : ms > 1000 ? 1000 : ms;
}

/* One round: results, deaths, limits, refill. Returns 1 if it did work. */
static int
round_once(struct pengine *e, unsigned char *ended)
{
    size_t got = 0;
    for (size_t i = 0; i < e->ex.workers; i++)
        if (e->w[i].alive)
            got += drain(e, &e->w[i]);
    for (size_t i = 0; i < e->ex.workers; i++) {
        if (ended[i]) {
            ended[i] = 0;
            worker_ended(e, i);
            got++;
        } else if (!e->w[i].alive && !e->terminating && !e->broken &&
                   !e->w[i].proc) {
            if (start_worker(e, i) == 0)
                got++;
        }
    }
    if (e->ex.opts.task_timeout > 0)
        enforce_limits(e, conc__now_ns());
    lock(e);
    size_t moved = refill_locked(e);
    unlock(e);
    if (moved)
        signal_room(e);
    return got || moved;
}

/* Tells every live worker to leave, and reaps them all. */
static void
stop_workers(struct pengine *e, int kill_them)
{
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->proc)
            continue;
        if (kill_them) {
            conc_process_kill(w->proc);
        } else {
            struct conc__task_hdr h = {.flags = CONC__TASK_EXIT};
            const void *p[1] = {&h};
            size_t l[1] = {sizeof h};
            if (!conc__ring_put_wait(&w->sh->task, p, l, 1,
                                     conc__now_ns() + 1000000000))
                conc_process_kill(w->proc);
        }
    }
    for (size_t i = 0; i < e->ex.workers; i++) {
        struct worker *w = &e->w[i];
        if (!w->proc)
            continue;
        drain(e, w);
        lock(e);
        w->alive = 0;
        conc_future *f = w->head;
        w->head = w->tail = NULL;
        w->nout = 0;
        unlock(e);
        fail_list(e, f, CONC_ECLOSED, "the pool was terminated");
        reap_worker(w);
    }
}

static int
result_main(void *arg)
{
    struct pengine *e = arg;
    conc__executor_set_current(&e->ex); /* callbacks may not join the pool */
    unsigned char *ended = conc__calloc(e->ex.workers, 1);
    CONC__ASSERT(ended);
    int idle_rounds = 0;
    for (;;) {
        int worked = round_once(e, ended);
        lock(e);
        int done = finished_locked(e);
        unlock(e);
        if (done)
            break;
        if (worked) {
            idle_rounds = 0;
            continue;
        }
        /* Spin briefly (results of tiny tasks come in microseconds), then
         * sleep; a poll with no wait also notices ended workers. */
        if (++idle_rounds < 64) {
            for (int i = 0; i < 64; i++)
                conc__cpu_relax();
            if (idle_rounds % 16 == 0)
                sleep_poll(e, 0, ended);
            continue;
        }
        sleep_poll(e, sleep_ms(e), ended);
    }
    lock(e);
    int killing = e->terminating;
    conc_future *bl = e->bl_head;
    e->bl_head = e->bl_tail = NULL;
    e->backlog = 0;
    unlock(e);
    fail_list(e, bl, CONC_ECLOSED, "the pool was terminated");
    stop_workers(e, killing);
    conc__free(ended);
    return 0;
}

/* ---- The engine's operations -------------------------------------------- */

static int
refuse_locked(struct pengine *e)
{
    if (e->broken)
        return conc_fail(CONC_EBROKEN, "%s", e->broken_msg);
    if (e->stopping)
        return conc_fail(CONC_ECLOSED,
                         "cannot schedule new futures after shutdown");
    return 0;
}

/* Waits for room in the backlog (lock held on entry and exit). */
static int
wait_room_locked(struct pengine *e, int64_t deadline)
{
    while (e->backlog >= e->ex.opts.max_pending && !refuse_locked(e)) {
        if (e->ex.opts.submit_mode == CONC_SUBMIT_FAIL)
            return conc_fail(CONC_EFULL,
                             "the executor's submission queue is full "
                             "(%zu pending)",
                             e->backlog);
        uint32_t seen = atomic_load(&e->room);
        unlock(e);
        atomic_fetch_add_explicit(&e->room_sleepers, 1, memory_order_seq_cst);
        int r = 0;
        if (atomic_load_explicit(&e->room, memory_order_seq_cst) == seen)
            r = conc__futex_wait(&e->room, seen, deadline, 0);
        atomic_fetch_sub_explicit(&e->room_sleepers, 1, memory_order_relaxed);
        lock(e);
        if (r == -ETIMEDOUT && e->backlog >= e->ex.opts.max_pending)
            return conc_fail(CONC_ETIMEDOUT, "no room in the executor's "
                                             "submission queue in time");
    }
    return 0;
}

/* Copies a large argument into the arena. */
static int
share_arg(struct pengine *e, conc_future *f)
{
    if (f->job.len <= INLINE_MAX)
        return 0;
    void *p;
    if (conc_arena_alloc(e->arena, f->job.len, &p) < 0)
        return conc_fail(CONC_ENOMEM,
                         "no room for a %zu-byte argument in the "
                         "pool's shared memory",
                         f->job.len);
    memcpy(p, f->job.arg, f->job.len);
    f->job.shared = p;
    return 0;
}

static int
engine_submit(struct conc_executor *ex, conc_future *f)
{
    struct pengine *e = (struct pengine *)ex;
    int64_t deadline = CONC__FOREVER;
    if (ex->opts.max_pending && ex->opts.submit_mode == CONC_SUBMIT_TIMEOUT)
        conc__deadline(ex->opts.submit_timeout, &deadline);
    int r = share_arg(e, f);
    if (r < 0)
        return r;
    lock(e);
    r = refuse_locked(e);
    if (r < 0) {
        unlock(e);
        goto undo;
    }
    f->job.seq = ++e->seq;
    if (!e->bl_head && dispatch_locked(e, f) == 1) {
        unlock(e);
        return 0;
    }
    if (ex->opts.max_pending && ((r = wait_room_locked(e, deadline)) < 0 ||
                                 (r = refuse_locked(e)) < 0)) {
        unlock(e);
        goto undo;
    }
    push_back(&e->bl_head, &e->bl_tail, f);
    e->backlog++;
    unlock(e);
    return 0;
undo:
    if (f->job.shared)
        conc_arena_dealloc(e->arena, f->job.shared);
    f->job.shared = NULL;
    return r;
}

static int
engine_shutdown(struct conc_executor *ex, int wait, int cancel)
{
    struct pengine *e = (struct pengine *)ex;
    if (wait && conc__executor_in_task(ex))
        return conc_fail(CONC_EDEADLK, "shutdown(wait) from the executor's "
                                       "own callback would wait for itself");
    lock(e);
    e->stopping = 1;
    conc_future *keep = NULL, *keep_tail = NULL, *gone = NULL;
    if (cancel) {
        conc_future *f = e->bl_head;
        e->bl_head = e->bl_tail = NULL;
        e->backlog = 0;
        while (f) {
            conc_future *next = f->job.next;
            if (conc__future_cancel_pending(f)) {
                f->job.next = gone;
                gone = f;
            } else {
                push_back(&keep, &keep_tail, f);
                e->backlog++;
            }
            f = next;
        }
        e->bl_head = keep;
        e->bl_tail = keep_tail;
    }
    unlock(e);
    while (gone) {
        conc_future *next = gone->job.next;
        if (gone->job.shared)
            conc_arena_dealloc(e->arena, gone->job.shared);
        if (gone->job.fd >= 0)
            close(gone->job.fd);
        if (ex->on_done)
            ex->on_done(gone, CONC_ECANCELED, "cancelled");
        conc_future_free(gone);
        gone = next;
    }
    signal_room(e);
    atomic_fetch_add(&e->room, 1);
    conc__futex_wake(&e->room, INT32_MAX, 0);
    wake_thread(e);
    if (wait && e->thread)
        conc_thread_join(e->thread, CONC_FOREVER, NULL);
    return 0;
}

static int
engine_terminate(struct conc_executor *ex)
{
    struct pengine *e = (struct pengine *)ex;
    lock(e);
    e->stopping = 1;
    e->terminating = 1;
    unlock(e);
    wake_thread(e);
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
            reap_worker(&e->w[i]);
    conc__free(e->w);
    if (e->arena)
        conc_arena_free(e->arena);
    if (e->parent_sleeping)
        munmap((void *)e->parent_sleeping, 4096);
    if (e->wake_fd >= 0)
        close(e->wake_fd);
    conc__executor_fini(ex);
    conc__free(e);
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
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return CONC_ENOMEM;
    e->parent_sleeping = page;
    e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->wake_fd < 0)
        return -errno;
    e->w = conc__calloc(e->ex.workers, sizeof *e->w);
    if (!e->w)
        return CONC_ENOMEM;
    for (size_t i = 0; i < e->ex.workers; i++)
        e->w[i].pidfd = e->w[i].sock = -1;
    return conc_arena_new(ARENA_SIZE, &e->arena);
}

int
conc__process_engine_new(const conc_executor_opts *opts,
                         conc__job_done_fn on_done, conc_executor **out)
{
    struct pengine *e = conc__calloc(1, sizeof *e);
    if (!e)
        return CONC_ENOMEM;
    e->wake_fd = -1;
    int r = conc__executor_init(&e->ex, opts, 1);
    if (r < 0) {
        conc__free(e);
        return r;
    }
    e->ex.ops = &process_ops;
    e->ex.on_done = on_done;
    e->depth = DEPTH_MIN;
    if ((r = engine_setup(e)) < 0)
        goto fail;
    for (size_t i = 0; i < e->ex.workers; i++)
        if ((r = start_worker(e, i)) < 0)
            goto fail;
    conc_thread_opts to = {.name = "PoolResultHandler",
                           .daemon = CONC_DAEMON_YES};
    if ((r = conc_thread_start(result_main, e, &to, &e->thread)) < 0)
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
