/* Coroutine tasks: a conc_task_fn on a stack of its own, and its future.
 *
 * A task is its future (the future is the task block's first member, with
 * producer hooks for cancel and release), so every waiter of futures
 * waits on tasks too. The loop holds one reference from creation until
 * the task is done: a task nobody references still runs to its end.
 *
 * A step is one stretch of the task on its stack: the loop runs the task's
 * embedded step handle, which switches to the task's fiber; the task runs
 * until it suspends (conc__aio_suspend) or returns, and switches back. The
 * fiber (and its stack, from the thread's pool) is taken at the first
 * step, so a task cancelled before it ever ran costs no stack, and it is
 * given back as soon as the function returns. Around each switch into a
 * task the loop installs the task as the thread's coroutine (what the
 * platform's choke points consult) and its own failure-message buffer.
 *
 * Cancellation is asyncio's: a request counts (cancelling()), marks the
 * task to be cancelled, and resumes it if it is suspended; the suspension
 * then returns CONC_ECANCELED. A function that returns CONC_ECANCELED ends
 * its task cancelled; one that returns anything else ends normally, even
 * if cancellation was requested (debug loops report that it swallowed it).
 * Requests from another thread (conc_future_cancel is any-thread) travel
 * to the loop through call_soon_threadsafe. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aio/aio_internal.h"

#define STACK_MAX ((size_t)1 << 30)

static _Thread_local struct conc__aio_task *current;
static _Atomic uint64_t task_counter; /* asyncio's Task-N, process-wide */

struct conc__aio_task *
conc__aio_task_self(void)
{
    return current;
}

void
conc__aio_task_atfork_child(void)
{
    current = NULL;
}

static void task_release(conc_future *f);
static int task_cancel_hook(conc_future *f);

static const struct conc__future_ops task_ops = {
    .cancel = task_cancel_hook,
    .release = task_release,
};

struct conc__aio_task *
conc__aio_task_of(conc_future *f)
{
    return f && f->ops == &task_ops ? (struct conc__aio_task *)f : NULL;
}

/* ---- The coroutine as the platform sees it ------------------------------ */

#define TASK_OF_CORO(c)                                                        \
    ((struct conc__aio_task *)((char *)(c)-offsetof(struct conc__aio_task,     \
                                                    coro)))

/* The platform's waits (a lock, a queue, a future's result through the
 * futex word, a descriptor) are cancellable inside a public blocking call
 * (its cancellation scope, unix/coro.h) and not elsewhere, so that the
 * library's own short waits always finish. */
static int
coro_suspend(struct conc__coro *c, int64_t deadline, int cancellable)
{
    struct conc__aio_task *t = TASK_OF_CORO(c);
    t->what = "a futex word (a lock, queue, event, future...)";
    return conc__aio_suspend(t, deadline, cancellable);
}

static void
coro_recancel(struct conc__coro *c)
{
    TASK_OF_CORO(c)->must_cancel = 1;
}

/* Runs in the loop: a wake another thread sent. */
static void
remote_wake(void *arg)
{
    struct conc__aio_task *t = arg;
    atomic_store_explicit(&t->remote_queued, 0, memory_order_seq_cst);
    uint64_t token =
        atomic_load_explicit(&t->remote_token, memory_order_seq_cst);
    if (t->suspended && t->coro.token == token)
        conc__aio_wake(t, 0);
    conc_future_free(&t->future);
}

void
conc__aio_remote_wake_drop(conc_aio_handle *h)
{
    struct conc__aio_task *t = h->arg;
    atomic_store_explicit(&t->remote_queued, 0, memory_order_seq_cst);
    conc_future_free(&t->future); /* the reference coro_wake took */
}

static void
coro_wake(struct conc__coro *c, uint64_t token)
{
    struct conc__aio_task *t = TASK_OF_CORO(c);
    if (conc__aio_running == t->loop) {
        if (t->suspended && t->coro.token == token)
            conc__aio_wake(t, 0);
        return;
    }
    atomic_store_explicit(&t->remote_token, token, memory_order_seq_cst);
    if (atomic_exchange_explicit(&t->remote_queued, 1, memory_order_seq_cst))
        return; /* already on its way; the loop reads the newest token */
    conc_future_ref(&t->future);
    conc__aio_remote_push(t->loop, &t->remote);
}

static int
coro_poll(struct conc__coro *c, struct pollfd *fds, unsigned n,
          int64_t deadline)
{
    if (c->scope && c->cancel_seen)
        return CONC_ECANCELED; /* the call is unwinding */
    TASK_OF_CORO(c)->what = "a descriptor";
    int r = conc__aio_poll(TASK_OF_CORO(c), fds, n, deadline, c->scope);
    if (r == CONC_ECANCELED)
        c->cancel_seen = 1;
    return r;
}

static const struct conc__coro_ops coro_ops = {
    .suspend = coro_suspend,
    .recancel = coro_recancel,
    .wake = coro_wake,
    .poll = coro_poll,
};

/* ---- Suspending and waking -------------------------------------------- */

static void
timer_fired(void *arg)
{
    conc__aio_wake(arg, CONC_ETIMEDOUT);
}

void
conc__aio_wake(struct conc__aio_task *t, int code)
{
    if (!t->suspended || t->step.queued)
        return;
    t->wake_code = code;
    t->step.queued = 1;
    conc__aio_ready_push(t->loop, &t->step);
}

int
conc__aio_suspend(struct conc__aio_task *t, int64_t deadline, int cancellable)
{
    if (cancellable && t->must_cancel) {
        t->must_cancel = 0;
        return CONC_ECANCELED;
    }
    conc_aio_loop *loop = t->loop;
    t->suspended = 1;
    t->cancellable = cancellable;
    t->wake_code = 0;
    if (deadline == CONC__POLL) { /* a plain yield: run again next turn */
        conc__aio_wake(t, 0);
    } else if (deadline != CONC__FOREVER) {
        t->timer.when = deadline;
        if (conc__aio_timer_add(&loop->timers, &t->timer) < 0) {
            t->suspended = 0;
            return CONC_ENOMEM;
        }
    }
    conc__fiber_switch(loop->fiber);
    t->suspended = 0;
    conc__aio_timer_remove(&loop->timers, &t->timer);
    if (cancellable && t->must_cancel) {
        t->must_cancel = 0;
        return CONC_ECANCELED;
    }
    return t->wake_code;
}

/* ---- Running ------------------------------------------------------------ */

static void
task_main(void *arg)
{
    struct conc__aio_task *t = arg;
    conc_clear_failure();
    t->code = t->fn(t->arg, t->len, conc__future_result_buf(&t->future));
    t->finished = 1;
    conc__fiber_exit(t->loop->fiber);
}

/* Completes the future of a task whose function returned (loop stack). */
static void
task_complete(struct conc__aio_task *t)
{
    conc_aio_loop *loop = t->loop;
    conc__fiber_free(t->fiber);
    t->fiber = NULL;
    if (t->code == CONC_ECANCELED) {
        conc__future_cancel_running(&t->future);
    } else {
        if (t->ncancel > 0 && loop->debug)
            fprintf(stderr,
                    "conc: task '%s' swallowed its cancellation "
                    "(returned %d)\n",
                    t->name, t->code);
        conc__future_finish(&t->future, t->code < 0 ? t->code : 0,
                            t->code < 0 && t->msg[0] ? t->msg : NULL);
    }
    pthread_mutex_lock(&loop->lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        loop->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    loop->ntasks--;
    pthread_mutex_unlock(&loop->lock);
    conc_future_free(&t->future); /* the loop's reference */
}

static void
task_step(void *arg)
{
    struct conc__aio_task *t = arg;
    if (!t->fiber && t->must_cancel) { /* cancelled before it ever ran */
        conc_future_set_running(&t->future);
        t->code = CONC_ECANCELED;
        task_complete(t);
        return;
    }
    if (!t->fiber) {
        int r = conc__fiber_new(t->stack_size, task_main, t, &t->fiber);
        if (r < 0) {
            conc_future_set_running(&t->future);
            t->code = r;
            snprintf(t->msg, sizeof t->msg, "no memory for the task's stack");
            task_complete(t);
            return;
        }
        conc__fiber_set_name(t->fiber, t->name);
        conc_future_set_running(&t->future);
    }
    struct conc__aio_task *outer = current;
    current = t;
    conc_aio_loop *loop = t->loop;
    atomic_store_explicit(
        &loop->steps,
        atomic_load_explicit(&loop->steps, memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(&loop->in_step, t, memory_order_release);
    conc__coro_self = &t->coro;
    char *saved = conc__failure_buffer_swap(t->msg);
    conc__fiber_switch(t->fiber);
    atomic_store_explicit(&loop->in_step, outer, memory_order_relaxed);
    conc__failure_buffer_swap(saved);
    conc__coro_self = outer ? &outer->coro : NULL;
    current = outer;
    if (t->finished)
        task_complete(t);
}

/* asyncio's "Task-N", written without printf: it is made for every task. */
static char *
auto_name(char *buf, uint64_t n)
{
    char digits[24];
    int k = 0;
    do
        digits[k++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    memcpy(buf, "Task-", 5);
    for (int i = 0; i < k; i++)
        buf[5 + i] = digits[k - 1 - i];
    buf[5 + k] = '\0';
    return buf;
}

static void
free_name(struct conc__aio_task *t)
{
    if (t->name != t->autoname)
        conc__free(t->name);
}

/* ---- Creating ------------------------------------------------------------ */

int
conc_aio_loop_create_task(conc_aio_loop *loop, conc_task_fn fn, const void *arg,
                          size_t len, const conc_aio_task_opts *opts,
                          conc_future **out)
{
    if (!loop || !fn || (!arg && len) || (opts && opts->stack_size > STACK_MAX))
        return CONC_EINVAL;
    if (loop->closed)
        return CONC_ECLOSED;
    struct conc__aio_task *t = conc__calloc(1, sizeof *t);
    if (!t)
        return CONC_ENOMEM;
    if (opts && opts->name)
        t->name = conc__strdup(opts->name);
    else
        t->name =
            auto_name(t->autoname, atomic_fetch_add(&task_counter, 1) + 1);
    t->arg = len ? conc__malloc(len) : NULL;
    if (!t->name || (len && !t->arg)) {
        free_name(t);
        conc__free(t->arg);
        conc__free(t);
        return CONC_ENOMEM;
    }
    if (len)
        memcpy(t->arg, arg, len);
    t->len = len;
    t->fn = fn;
    t->loop = loop;
    t->stack_size = opts ? opts->stack_size : 0;
    t->coro.ops = &coro_ops;
    t->step = (conc_aio_handle){.fn = task_step,
                                .arg = t,
                                .loop = loop,
                                .heap_index = SIZE_MAX,
                                .flags = HANDLE_EMBEDDED};
    t->timer = (conc_aio_handle){.fn = timer_fired,
                                 .arg = t,
                                 .loop = loop,
                                 .heap_index = SIZE_MAX,
                                 .flags = HANDLE_EMBEDDED | HANDLE_TIMER};
    t->remote = (conc_aio_handle){.fn = remote_wake,
                                  .arg = t,
                                  .loop = loop,
                                  .heap_index = SIZE_MAX,
                                  .flags = HANDLE_EMBEDDED | HANDLE_REMOTE};
    conc__future_reset(&t->future, &task_ops, out ? 2 : 1);
    pthread_mutex_lock(&loop->lock);
    t->next = loop->tasks;
    if (loop->tasks)
        loop->tasks->prev = t;
    loop->tasks = t;
    loop->ntasks++;
    pthread_mutex_unlock(&loop->lock);
    t->step.queued = 1;
    conc__aio_ready_push(loop, &t->step);
    if (out)
        *out = &t->future;
    return 0;
}

int
conc_aio_create_task(conc_task_fn fn, const void *arg, size_t len,
                     const conc_aio_task_opts *opts, conc_future **out)
{
    if (!fn || (!arg && len))
        return CONC_EINVAL;
    if (!conc__aio_running)
        return conc_fail(CONC_ESTATE, "no running event loop");
    return conc_aio_loop_create_task(conc__aio_running, fn, arg, len, opts,
                                     out);
}

static void
task_release(conc_future *f)
{
    struct conc__aio_task *t = (struct conc__aio_task *)f;
    free_name(t);
    conc__free(t->arg);
    conc__free(t->cancel_msg);
    conc__free(t);
}

/* ---- Cancelling ------------------------------------------------------------
 */

/* The request itself, in the loop's thread. */
static int
request_cancel(struct conc__aio_task *t, const char *msg)
{
    if (t->finished || conc_future_done(&t->future))
        return 0;
    if (msg) {
        char *copy = conc__strdup(msg);
        if (!copy)
            return CONC_ENOMEM;
        conc__free(t->cancel_msg);
        t->cancel_msg = copy;
    }
    t->ncancel++;
    t->must_cancel = 1;
    if (t->suspended && t->cancellable)
        conc__aio_wake(t, CONC_ECANCELED);
    return 1;
}

static void
cancel_from_afar(void *arg)
{
    struct conc__aio_task *t = arg;
    request_cancel(t, NULL);
    conc_future_free(&t->future);
}

static int
task_cancel_hook(conc_future *f)
{
    struct conc__aio_task *t = (struct conc__aio_task *)f;
    if (conc__aio_running == t->loop)
        return request_cancel(t, NULL) > 0 ? 1 : -1;
    conc_future_ref(f);
    if (conc_aio_call_soon_threadsafe(t->loop, cancel_from_afar, t, NULL)) {
        conc_future_free(f);
        return -1;
    }
    return 1;
}

int
conc_aio_task_cancel(conc_future *f, const char *msg)
{
    struct conc__aio_task *t = conc__aio_task_of(f);
    if (!t)
        return CONC_EINVAL;
    return request_cancel(t, msg);
}

int
conc_aio_task_cancelling(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_of(f);
    return t ? t->ncancel : 0;
}

int
conc_aio_task_uncancel(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_of(f);
    if (!t)
        return 0;
    if (t->ncancel > 0 && --t->ncancel == 0)
        t->must_cancel = 0;
    return t->ncancel;
}

void
conc__aio_cancel_all(conc_aio_loop *loop)
{
    for (struct conc__aio_task *t = loop->tasks; t; t = t->next)
        request_cancel(t, NULL);
    while (loop->ntasks)
        conc__aio_run_once(loop);
}

/* ---- Looking at tasks
 * -------------------------------------------------------- */

int
conc_aio_current_task(conc_future **out)
{
    if (!out)
        return CONC_EINVAL;
    if (!current)
        return conc_fail(CONC_ESTATE, "not inside a task");
    *out = &current->future;
    return 0;
}

const char *
conc_aio_task_name(conc_future *f)
{
    struct conc__aio_task *t = conc__aio_task_of(f);
    return t ? t->name : NULL;
}

int
conc_aio_task_set_name(conc_future *f, const char *name)
{
    struct conc__aio_task *t = conc__aio_task_of(f);
    if (!t || !name)
        return CONC_EINVAL;
    char *copy = conc__strdup(name);
    if (!copy)
        return CONC_ENOMEM;
    pthread_mutex_lock(&t->loop->lock);
    free_name(t);
    t->name = copy;
    pthread_mutex_unlock(&t->loop->lock);
    if (t->fiber)
        conc__fiber_set_name(t->fiber, t->name);
    return 0;
}

int
conc_aio_all_tasks(conc_aio_loop *loop, conc_future ***tasks, size_t *n)
{
    if (!tasks || !n)
        return CONC_EINVAL;
    if (!loop && !(loop = conc__aio_running))
        return conc_fail(CONC_ESTATE, "no running event loop");
    conc_future **a =
        conc__malloc((loop->ntasks ? loop->ntasks : 1) * sizeof *a);
    if (!a)
        return CONC_ENOMEM;
    size_t i = 0;
    for (struct conc__aio_task *t = loop->tasks; t; t = t->next)
        a[i++] = conc_future_ref(&t->future);
    *tasks = a;
    *n = i;
    return 0;
}

void
conc_aio_tasks_free(conc_future **tasks, size_t n)
{
    if (!tasks)
        return;
    for (size_t i = 0; i < n; i++)
        conc_future_free(tasks[i]);
    conc__free(tasks);
}
