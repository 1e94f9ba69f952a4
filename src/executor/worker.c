/* A process pool's worker: reads tasks from its ring, runs them, writes
 * the results back (procs_internal.h). It claims each task before it
 * runs it, so that if it dies the parent knows which task to fail and
 * which to hand to another worker, and skips the tasks the parent took
 * back. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/wait.h"
#include "executor/procs_internal.h"
#include "unix/platform.h"

#define NO_FD_MSG "the task's descriptor could not be passed to its worker"

/* How long an idle worker watches its ring before it sleeps: longer than
 * core/wait.h's budget for a task (20 us), because a worker asleep costs
 * more to wake than a thread: the parent's wake of a process-shared futex
 * on its submit path, and a switch into another address space. Measured
 * against 20 us (paired runs of bench_executor and bench_pool at load 8
 * to 9 on 2 CPUs), 50 us made executor_process 1.36 times as fast as
 * before this policy where 20 us made it 0.68 to 0.90 times. */
#define IDLE_SPIN_NS 50000

/* Wakes the parent's result thread if it sleeps. The first waker takes
 * the flag, so that one sleep costs one write, whatever the number of
 * results and workers. */
static void
wake_parent(struct conc__worker_arg *w)
{
    if (atomic_load_explicit(w->parent_sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(w->parent_sleeping, 0, memory_order_seq_cst))
        conc__eventfd_signal(w->wake_fd);
}

/* Leaves at once, after telling the parent why: the shared region no
 * longer makes sense (a task wrote over it), and nothing read from it or
 * written to it now can be trusted. */
static _Noreturn void
corrupt(struct conc__worker_arg *w, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    n = n < 0 ? 0 : n >= (int)sizeof why ? (int)sizeof why - 1 : n;
    ssize_t k = send(w->sock, why, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    CONC__UNUSED(k);
    fflush(NULL); /* what earlier tasks printed is theirs to keep */
    _exit(CONC__EXIT_CORRUPT);
}

/* Writes one result frame, after checking that the ring's tail is where
 * this worker, its only writer, left it. */
static void
put_frame(struct conc__worker_arg *w, const void *const *parts,
          const size_t *lens, int n)
{
    struct conc__ring *ring = &w->sh->res;
    if (atomic_load_explicit(&ring->tail, memory_order_relaxed) != w->res_tail)
        corrupt(w, "the result ring's tail moved from %llu to %llu",
                (unsigned long long)w->res_tail,
                (unsigned long long)atomic_load(&ring->tail));
    conc__ring_put_wait(ring, parts, lens, n, CONC__FOREVER);
    w->res_tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
}

/* Writes the result of task `seq`, in several frames if it is large. */
static void
send_result(struct conc__worker_arg *w, uint64_t seq, int code, const char *msg,
            const conc_buf *data, uint32_t flags, int64_t run_ns)
{
    size_t mlen = code < 0 ? strnlen(msg, CONC__RES_MSG_MAX) : 0;
    size_t total = code < 0 ? 0 : data->len;
    size_t room = CONC__RING_MAX_FRAME - sizeof(struct conc__res_hdr) - mlen;
    size_t first = total < room ? total : room;
    struct conc__res_hdr h = {.seq = seq,
                              .total = total,
                              .code = code,
                              .msglen = (uint32_t)mlen,
                              .flags = flags,
                              .run_ns = (uint64_t)run_ns};
    if (first < total)
        h.flags |= CONC__RES_MORE;
    const void *parts[3] = {&h, msg, data->data};
    size_t lens[3] = {sizeof h, mlen, first};
    put_frame(w, parts, lens, 3);
    wake_parent(w);
    for (size_t off = first; off < total;) {
        size_t n = total - off;
        room = CONC__RING_MAX_FRAME - sizeof h;
        n = n < room ? n : room;
        struct conc__res_hdr c = {.seq = seq, .flags = CONC__RES_CONT};
        const void *cp[2] = {&c, data->data + off};
        size_t cl[2] = {sizeof c, n};
        put_frame(w, cp, cl, 2);
        wake_parent(w);
        off += n;
    }
}

/* Receives the descriptor that goes with a task: -1 when the parent could
 * not pass it (then its byte comes alone) or the socket failed. */
static int
recv_fd(int sock)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    int fd = -1;
    size_t n;
    if (conc__fd_recv(sock, &iov, 1, &fd, 1, &n, 0) <= 0)
        return -1;
    return n ? fd : -1;
}

/* Claims the task whose header is at the head of the ring, or finds that
 * the parent revoked it. `started` is set first, for the time limit. */
static int
claim(struct conc__worker_arg *w, const struct conc__task_hdr *h)
{
    atomic_store_explicit(&w->sh->started_ns, conc__now_ns(),
                          memory_order_relaxed);
    atomic_store_explicit(&w->sh->started, h->seq, memory_order_seq_cst);
    uint64_t want = conc__claim_word(h->wseq, CONC__CLAIM_QUEUED);
    if (atomic_compare_exchange_strong(
            &w->sh->claim[h->wseq % CONC__SLOTS], &want,
            conc__claim_word(h->wseq, CONC__CLAIM_TAKEN)))
        return 1;
    if (want !=
        conc__claim_word(h->wseq, CONC__CLAIM_REVOKED)) /* not the parent's */
        corrupt(w, "the claim word of task %llu reads %#llx",
                (unsigned long long)h->wseq, (unsigned long long)want);
    atomic_store_explicit(&w->sh->started, 0, memory_order_relaxed);
    return 0;
}

/* Marks a claimed task whose result is written DONE, unless the parent
 * has begun to kill this worker to cancel it (KILLING): then the worker
 * takes no other task, so that the kill ends this one alone. */
static void
finish_claim(struct conc__worker_arg *w, const struct conc__task_hdr *h)
{
    uint64_t want = conc__claim_word(h->wseq, CONC__CLAIM_TAKEN);
    if (atomic_compare_exchange_strong(
            &w->sh->claim[h->wseq % CONC__SLOTS], &want,
            conc__claim_word(h->wseq, CONC__CLAIM_DONE)))
        return;
    if (want != conc__claim_word(h->wseq, CONC__CLAIM_KILLING))
        corrupt(w, "the claim word of task %llu reads %#llx",
                (unsigned long long)h->wseq, (unsigned long long)want);
    for (;;) /* until the SIGKILL, which is on its way */
        conc__poll_until(NULL, 0, CONC__FOREVER);
}

/* Drops the head task frame. */
static void
consume(struct conc__worker_arg *w)
{
    conc__ring_pop(&w->sh->task);
    w->task_head =
        atomic_load_explicit(&w->sh->task.head, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&w->sh->popped, 1, memory_order_release) !=
        w->popped)
        corrupt(w, "the count of consumed tasks was overwritten");
    w->popped++;
}

/* Tells the parent that this worker touches the claim word of its last
 * task no more (skipped, or marked DONE): the word may serve another. */
static void
settle(struct conc__worker_arg *w)
{
    if (atomic_load_explicit(&w->sh->settled, memory_order_relaxed) !=
        w->settled)
        corrupt(w, "the count of ended tasks was overwritten");
    atomic_store_explicit(&w->sh->settled, ++w->settled, memory_order_release);
}

/* Reads the header of the task frame at the head of the ring, checking
 * that the head is where this worker left it and the frame what the parent
 * writes (conc__task_check). Returns 1 for a task, 0 for the exit frame. */
static int
read_task(struct conc__worker_arg *w, struct conc__task_hdr *h)
{
    struct conc__ring *r = &w->sh->task;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head != w->task_head)
        corrupt(w, "the task ring's head moved from %llu to %llu",
                (unsigned long long)w->task_head, (unsigned long long)head);
    int64_t len = conc__ring_peek(r);
    struct conc__task_hdr raw = {0};
    if (len > 0)
        conc__ring_read(r, 0, &raw,
                        (uint64_t)len < sizeof raw ? (size_t)len : sizeof raw);
    char why[160];
    int k = conc__task_check(&raw, len, w->wseq + 1, CONC__ARENA_SIZE, h, why,
                             sizeof why);
    if (k < 0)
        corrupt(w, "%s", why);
    if (k == 1)
        w->wseq = h->wseq;
    return k;
}

/* Skips a revoked task: its descriptor, sent in order, still comes. */
static void
skip_one(struct conc__worker_arg *w, const struct conc__task_hdr *h)
{
    if (h->flags & CONC__TASK_FD) {
        int fd = recv_fd(w->sock);
        if (fd >= 0)
            close(fd);
    }
    consume(w);
}

/* Fails a claimed task without running it. */
static void
fail_task(struct conc__worker_arg *w, const struct conc__task_hdr *h, int code,
          const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conc_buf none = CONC_BUF_INIT;
    send_result(w, h->seq, code, msg, &none, 0, 0);
    atomic_store_explicit(&w->sh->started, 0, memory_order_release);
}

/* Runs one claimed task whose header is at the head of the ring. */
static void
run_one(struct conc__worker_arg *w, const struct conc__task_hdr *h,
        conc_buf *arg, conc_buf *out)
{
    arg->len = 0;
    const void *a = NULL;
    int nomem = 0;
    if (h->flags & CONC__TASK_ARENA) {
        a = (const uint8_t *)w->arena + h->arena_off;
    } else if (h->len && conc_buf_reserve(arg, (size_t)h->len) < 0) {
        nomem = 1;
    } else if (h->len) {
        conc__ring_read(&w->sh->task, sizeof *h, arg->data, (size_t)h->len);
        a = arg->data;
    }
    struct conc__task_ctx ctx = {.fd = -1};
    if (h->flags & CONC__TASK_FD && (ctx.fd = recv_fd(w->sock)) < 0) {
        consume(w);
        send_result(w, h->seq, CONC_EBADF, NO_FD_MSG, out, 0, 0);
        atomic_store_explicit(&w->sh->started, 0, memory_order_release);
        return;
    }
    consume(w);
    if (nomem) { /* the task never sees a truncated argument */
        if (ctx.fd >= 0)
            close(ctx.fd);
        fail_task(w, h, CONC_ENOMEM,
                  "no memory in worker pid %d for the "
                  "task's %llu-byte argument",
                  (int)getpid(), (unsigned long long)h->len);
        return;
    }
    conc_task_fn fn = (conc_task_fn)(uintptr_t)h->fn;
    out->len = 0;
    conc_clear_failure();
    conc__task_enter(&ctx);
    int64_t t0 = conc__now_ns();
    int r = fn(a, (size_t)h->len, out);
    int64_t t1 = conc__now_ns();
    conc__task_leave();
    send_result(w, h->seq, r < 0 ? r : 0, r < 0 ? conc_failure_message() : "",
                out, 0, t1 - t0);
    atomic_store_explicit(&w->sh->started, 0, memory_order_release);
}

int
conc__worker_main(const void *argp, size_t len)
{
    struct conc__worker_arg w;
    if (len != sizeof w)
        return 1;
    memcpy(&w, argp, sizeof w);
    /* The parent's unwritten output was copied by the fork: it is the
     * parent's to write, not ours (a replacement worker is forked at any
     * moment, with whatever the parent had buffered). */
    __fpurge(stdout);
    __fpurge(stderr);
    conc_buf arg = CONC_BUF_INIT, out = CONC_BUF_INIT;
    if (w.initializer) {
        conc_clear_failure();
        int r = w.initializer(w.initarg, w.initarg_len, &out);
        if (r < 0) {
            send_result(&w, 0, r, conc_failure_message(), &out, CONC__RES_INIT,
                        0);
            return 0;
        }
    }
    for (size_t done = 0; !w.max_tasks || done < w.max_tasks;) {
        conc__ring_wait(&w.sh->task, CONC__FOREVER, IDLE_SPIN_NS);
        struct conc__task_hdr h;
        if (!read_task(&w, &h))
            break;
        if (!claim(&w, &h)) {
            skip_one(&w, &h);
            settle(&w);
            continue;
        }
        run_one(&w, &h, &arg, &out);
        finish_claim(&w, &h);
        settle(&w);
        done++;
    }
    conc_buf_free(&arg);
    conc_buf_free(&out);
    return 0;
}
