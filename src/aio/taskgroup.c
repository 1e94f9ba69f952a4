/* TaskGroup: structured concurrency over tasks and any other futures.
 *
 * asyncio's rules (taskgroups.py): the first member that fails makes the
 * group abort (cancel every member not done) and cancels the owner task
 * once; exit waits for every member; if the group cancelled its owner, the
 * owner's request is withdrawn at exit so the failure, not a cancellation,
 * is what the owner sees. Beyond asyncio, members may be futures of thread
 * or process executors and pools; aborting cancels them as well (pending
 * ones never run; running thread tasks see conc_task_cancelled; running
 * process tasks are killed with their worker).
 *
 * A member's completion reaches the group in the loop's thread: directly
 * for tasks of this loop, through call_soon_threadsafe for futures
 * completed elsewhere. The group counts completions not yet seen, and
 * exit waits until that count is 0, so no callback outlives the group. */
#include "aio/aio_internal.h"

struct conc_aio_taskgroup {
    struct conc__aio_task *owner;
    conc_aio_loop *loop;
    conc_future **errors;
    size_t nerrors, errcap;
    conc_future **members;
    size_t nmembers, memcap;
    size_t unseen; /* members whose completion the group has not seen */
    int waiting, aborting, exited, owner_cancelled;
};

struct arrival {
    conc_aio_taskgroup *tg;
    conc_future *f;
};

static int
push(conc_future ***a, size_t *n, size_t *cap, conc_future *f)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        conc_future **na = conc__realloc(*a, c * sizeof *na);
        if (!na)
            return CONC_ENOMEM;
        *a = na;
        *cap = c;
    }
    (*a)[(*n)++] = f;
    return 0;
}

static void
abort_members(conc_aio_taskgroup *tg)
{
    tg->aborting = 1;
    for (size_t i = 0; i < tg->nmembers; i++) {
        conc_future *f = tg->members[i];
        if (conc_future_done(f))
            continue;
        if (conc__aio_task_of(f))
            conc_aio_task_cancel(f, NULL);
        else /* a running process task is killed with its worker */
            conc__future_cancel_hard(f);
    }
}

/* A member completed (loop thread). */
static void
arrived(conc_aio_taskgroup *tg, conc_future *f)
{
    tg->unseen--;
    int code = 0;
    int r = conc_future_exception(f, 0, &code);
    if (r == 0 && code < 0 &&
        push(&tg->errors, &tg->nerrors, &tg->errcap, conc_future_ref(f)) < 0)
        conc_future_free(f); /* no room to record it: the code is lost */
    if (r == 0 && code < 0 && !tg->aborting && !tg->owner_cancelled) {
        abort_members(tg);
        tg->owner_cancelled = 1;
        conc_aio_task_cancel(&tg->owner->future, NULL);
    }
    if (tg->waiting)
        conc__aio_wake(tg->owner, 0);
}

static void
arrived_from_afar(void *arg)
{
    struct arrival *a = arg;
    arrived(a->tg, a->f);
    conc__free(a);
}

static int
member_done(void *arg, conc_future *f)
{
    conc_aio_taskgroup *tg = arg;
    if (conc__aio_running == tg->loop) {
        arrived(tg, f);
        return 0;
    }
    struct arrival *a = conc__malloc(sizeof *a);
    /* Without memory the group would wait forever: fail loudly instead. */
    if (!a)
        conc__panic("no memory to report a TaskGroup member's completion");
    *a = (struct arrival){tg, f};
    if (conc_aio_call_soon_threadsafe(tg->loop, arrived_from_afar, a, NULL))
        conc__panic("cannot reach the loop of a TaskGroup");
    return 0;
}

int
conc_aio_taskgroup_new(conc_aio_taskgroup **out)
{
    if (!out)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t)
        return conc_fail(CONC_ESTATE, "TaskGroup used outside a task");
    conc_aio_taskgroup *tg = conc__calloc(1, sizeof *tg);
    if (!tg)
        return CONC_ENOMEM;
    tg->owner = t;
    tg->loop = t->loop;
    *out = tg;
    return 0;
}

int
conc_aio_taskgroup_add(conc_aio_taskgroup *tg, conc_future *f)
{
    if (!tg || !f)
        return CONC_EINVAL;
    if (tg->exited || tg->aborting)
        return conc_fail(CONC_ESTATE, "TaskGroup is shutting down");
    if (push(&tg->members, &tg->nmembers, &tg->memcap, f) < 0)
        return CONC_ENOMEM;
    conc_future_ref(f);
    tg->unseen++;
    int r = conc_future_add_done_callback(f, member_done, tg);
    if (r < 0) {
        tg->unseen--;
        tg->nmembers--;
        conc_future_free(f);
    }
    return r;
}

int
conc_aio_taskgroup_create_task(conc_aio_taskgroup *tg, conc_task_fn fn,
                               const void *arg, size_t len,
                               const conc_aio_task_opts *opts,
                               conc_future **out)
{
    if (!tg || !fn || (!arg && len))
        return CONC_EINVAL;
    if (tg->exited || tg->aborting)
        return conc_fail(CONC_ESTATE, "TaskGroup is shutting down");
    conc_future *f;
    int r = conc_aio_loop_create_task(tg->loop, fn, arg, len, opts, &f);
    if (r < 0)
        return r;
    if ((r = conc_aio_taskgroup_add(tg, f)) < 0) {
        conc_future_cancel(f);
        conc_future_free(f);
        return r;
    }
    if (out)
        *out = f;
    else
        conc_future_free(f);
    return 0;
}

int
conc_aio_taskgroup_exit(conc_aio_taskgroup *tg, int code)
{
    if (!tg)
        return CONC_EINVAL;
    if (tg->exited)
        return conc_fail(CONC_ESTATE, "TaskGroup already exited");
    struct conc__aio_task *t = tg->owner;
    int propagate_cancel = code == CONC_ECANCELED;
    if (code < 0 && !tg->aborting)
        abort_members(tg);
    while (tg->unseen) {
        tg->waiting = 1;
        t->what = "its TaskGroup's members";
        int r = conc__aio_suspend(t, CONC__FOREVER, 1);
        tg->waiting = 0;
        if (r == CONC_ECANCELED && !tg->aborting) {
            propagate_cancel = 1;
            abort_members(tg);
        }
    }
    tg->exited = 1;
    /* Withdraw the group's own request (asyncio 3.13 does it here, after
     * the wait, so a member failing during the wait is covered too). */
    if (tg->owner_cancelled && conc_aio_task_uncancel(&t->future) == 0)
        propagate_cancel = 0;
    if (tg->nerrors) {
        int c = 0;
        conc_future_exception(tg->errors[0], 0, &c);
        return c;
    }
    if (code < 0 && code != CONC_ECANCELED)
        return code;
    return propagate_cancel ? CONC_ECANCELED : 0;
}

int
conc_aio_taskgroup_errors(conc_aio_taskgroup *tg, conc_future *const **fs,
                          size_t *n)
{
    if (!tg || !fs || !n)
        return CONC_EINVAL;
    *fs = tg->errors;
    *n = tg->nerrors;
    return 0;
}

void
conc_aio_taskgroup_free(conc_aio_taskgroup *tg)
{
    if (!tg)
        return;
    if (!tg->exited)
        conc_aio_taskgroup_exit(tg, 0);
    for (size_t i = 0; i < tg->nerrors; i++)
        conc_future_free(tg->errors[i]);
    for (size_t i = 0; i < tg->nmembers; i++)
        conc_future_free(tg->members[i]);
    conc__free(tg->errors);
    conc__free(tg->members);
    conc__free(tg);
}
