/* conc_aio_dump: every task of every loop, with its stack.
 *
 * A suspended task's stack may be read only while it stays suspended, so
 * each loop writes its own part, in its own thread, between two callbacks
 * (when no task runs): the dump sends it a call_soon_threadsafe request
 * and waits a bounded time for the answer. A loop that does not answer is
 * stuck in a task, and is reported as such; the request, which it may
 * still run later, is shared by both sides and freed by the last. A loop
 * that no thread runs, and the caller's own loop, are written directly. */
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h> /* free: backtrace_symbols uses malloc */
#include <string.h>

#include "aio/aio_internal.h"
#include "unix/fdwait.h"
#include "unix/futex.h"

#define ANSWER_NS (200 * 1000000LL)
#define FRAMES    24

struct request {
    conc_buf text;
    _Atomic uint32_t done;
    _Atomic uint32_t refs;
};

static void
request_unref(struct request *q)
{
    if (atomic_fetch_sub(&q->refs, 1) == 1) {
        conc_buf_free(&q->text);
        conc__free(q);
    }
}

static const char *
state_of(const struct conc__aio_task *t)
{
    if (t == conc__aio_task_self())
        return "running";
    if (t->step.queued)
        return "ready";
    return t->suspended ? "suspended" : "pending";
}

static void
write_frames(conc_buf *out, void *const *pcs, int n)
{
    char **names = backtrace_symbols(pcs, n);
    for (int i = 0; i < n; i++)
        conc_buf_appendf(out, "      #%d %s\n", i, names ? names[i] : "?");
    free(names);
}

/* Writes loop's part; in its thread, or with no thread running it. */
static void
write_loop(conc_aio_loop *loop, conc_buf *out)
{
    pthread_mutex_lock(&loop->lock);
    conc_buf_appendf(out, "loop %p (%s, thread %u): %zu task(s)\n",
                     (void *)loop,
                     conc_aio_loop_is_running(loop) ? "running" : "stopped",
                     loop->tid, loop->ntasks);
    for (struct conc__aio_task *t = loop->tasks; t; t = t->next) {
        conc_buf_appendf(out, "  task '%s' [%s]", t->name, state_of(t));
        if (t->suspended && t->what)
            conc_buf_appendf(out, " waiting for %s", t->what);
        conc_buf_appendf(out, "\n");
        void *pcs[FRAMES];
        int n = t->fiber && t->suspended
                    ? conc__fiber_backtrace(t->fiber, pcs, FRAMES)
                    : 0;
        write_frames(out, pcs, n);
    }
    pthread_mutex_unlock(&loop->lock);
}

static void
answer(void *arg)
{
    struct request *q = arg;
    write_loop(conc__aio_running, &q->text);
    atomic_store_explicit(&q->done, 1, memory_order_release);
    conc__futex_wake(&q->done, 1, 0);
    request_unref(q);
}

/* Asks a loop running in another thread for its part. */
static void
ask_loop(conc_aio_loop *loop, conc_buf *out)
{
    struct request *q = conc__calloc(1, sizeof *q);
    if (!q)
        return;
    conc_buf_init(&q->text);
    atomic_init(&q->refs, 2);
    if (conc_aio_call_soon_threadsafe(loop, answer, q, NULL) < 0) {
        conc__free(q);
        return;
    }
    int64_t deadline = conc__now_ns() + ANSWER_NS;
    /* In the kernel even in a task: the registry's lock is held. */
    while (!atomic_load_explicit(&q->done, memory_order_acquire) &&
           conc__futex_wait_bits(&q->done, 0, deadline, 0,
                                 ~CONC__FUTEX_PROXY_BIT) != -ETIMEDOUT)
        ;
    if (atomic_load_explicit(&q->done, memory_order_acquire)) {
        conc_buf_append(out, q->text.data, q->text.len);
    } else {
        pthread_mutex_lock(&loop->lock);
        struct conc__aio_task *t = atomic_load(&loop->in_step);
        conc_buf_appendf(out,
                         "loop %p (running, thread %u): blocked, task '%s' "
                         "has not suspended for %.1f s\n",
                         (void *)loop, loop->tid, t ? t->name : "?",
                         (double)ANSWER_NS / 1e9);
        pthread_mutex_unlock(&loop->lock);
    }
    request_unref(q);
}

static void
dump_one(conc_aio_loop *loop, void *arg)
{
    conc_buf *out = arg;
    if (loop == conc__aio_running || !conc_aio_loop_is_running(loop))
        write_loop(loop, out);
    else
        ask_loop(loop, out);
}

int
conc_aio_dump(conc_buf *out)
{
    if (!out)
        return CONC_EINVAL;
    size_t before = out->len;
    conc__aio_registry_each(dump_one, out);
    return out->len > before || conc_buf_appendf(out, "no loop\n") == 0
               ? 0
               : CONC_ENOMEM;
}
