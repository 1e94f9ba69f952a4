/* The "Barrier" typeid: threading.Barrier(parties, action=None,
 * timeout=None) as BarrierProxy reaches it: wait(timeout) returning the
 * caller's index, abort, reset, and the attributes parties, n_waiting
 * and broken through __getattribute__. A timeout, an abort, a reset or a
 * waiting client that hangs up (dies) breaks it for the waiters, who get
 * BrokenBarrierError (CONC_EBROKEN).
 * The action is C's, given when the typeid is registered (a
 * conc_manager_barrier_action as the registration's argument): a Python
 * callable sent as `action` does not unpickle in conc's server (a
 * '#TRACEBACK' for the create), and any other value than None is a
 * TypeError. threading's states: filling, draining (the last party
 * arrived), resetting, broken.
 *
 * Lock order: the barrier's monitor only. */
#include <math.h>

#include "manager/sync_types.h"

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

struct mgr_barrier {
    struct conc__mgr_mon mon;
    int64_t parties;
    int64_t count; /* parties inside wait() */
    int state;
    int has_timeout;
    double timeout;                            /* the default of wait() */
    const conc_manager_barrier_action *action; /* NULL: none */
};

static const char *const barrier_params[] = {"parties", "action", "timeout",
                                             NULL};
static const struct conc__mgr_sig barrier_sig = {"Barrier.__init__", 1,
                                                 barrier_params, 1};

static int
barrier_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    int rc = conc__mgr_check_args(&barrier_sig, args, kwds);
    if (rc < 0)
        return rc;
    conc_obj *p = conc__mgr_arg(args, kwds, 0, "parties");
    conc_obj *a = conc__mgr_arg(args, kwds, 1, "action");
    conc_obj *t = conc__mgr_arg(args, kwds, 2, "timeout");
    int64_t parties;
    if (!p || conc_obj_int_value(p, &parties) < 0)
        return conc_fail(CONC_ETYPE, "parties must be an int");
    if (parties < 1)
        return conc_fail(CONC_EVALUE, "parties must be > 0");
    if (a && conc_obj_typeof(a) != CONC_OBJ_NONE)
        return conc_fail(CONC_ETYPE,
                         "conc's manager cannot call a %s as a "
                         "Barrier's action: its action is the C "
                         "function the typeid was registered "
                         "with",
                         conc__mgr_pytype(a));
    double timeout = 0;
    int has = t && conc_obj_typeof(t) != CONC_OBJ_NONE;
    if (has && (conc_obj_float_value(t, &timeout) < 0 || isnan(timeout)))
        return conc_fail(CONC_ETYPE, "timeout must be a number");
    struct mgr_barrier *b = conc__calloc(1, sizeof *b);
    if (!b || conc__mgr_mon_init(&b->mon) < 0) {
        conc__free(b);
        return CONC_ENOMEM;
    }
    b->parties = parties;
    b->action = arg;
    b->has_timeout = has;
    b->timeout = timeout;
    *self = b;
    return 0;
}

static void
barrier_release_obj(void *self)
{
    struct mgr_barrier *b = self;
    conc__mgr_mon_fini(&b->mon);
    conc__free(b);
}

static void
barrier_stop(void *self)
{
    struct mgr_barrier *b = self;
    conc__mgr_mon_stop(&b->mon);
}

static int
broken(void)
{
    return conc_fail(CONC_EBROKEN, "the barrier is broken");
}

static void
set_state(struct mgr_barrier *b, int state)
{
    b->state = state;
    conc_cond_notify_all(b->mon.cond);
}

/* Waits for the others once this party is in: the last one to arrive
 * runs the action and lets them all go; a timeout, or the action's
 * failure, breaks the barrier. */
static int
pass(struct mgr_barrier *b, int64_t index, int64_t deadline)
{
    if (index + 1 == b->parties) {
        int rc = b->action ? b->action->fn(b->action->arg) : 0;
        set_state(b, rc < 0 ? BROKEN : DRAINING);
        return rc < 0 ? rc : 0;
    }
    int rc = 0;
    while (b->state == FILLING && rc == 0)
        rc = conc__mgr_mon_wait(&b->mon, deadline);
    if (rc == CONC_ETIMEDOUT || rc == CONC_ECANCELED) {
        /* A party that timed out or whose client hung up breaks it, as
         * threading's Barrier breaks for a party that fails in wait. */
        set_state(b, BROKEN);
        return rc == CONC_ETIMEDOUT ? broken() : rc;
    }
    return rc < 0 ? rc : b->state < 0 ? broken() : 0;
}

static int
wait_locked(struct mgr_barrier *b, int64_t deadline, int64_t *index)
{
    int rc = 0;
    while ((b->state == DRAINING || b->state == RESETTING) && rc == 0)
        rc = conc__mgr_mon_wait(&b->mon, CONC__FOREVER);
    if (rc < 0)
        return rc;
    if (b->state < 0)
        return broken();
    *index = b->count++;
    rc = pass(b, *index, deadline);
    if (--b->count == 0 && (b->state == DRAINING || b->state == RESETTING))
        set_state(b, FILLING);
    return rc;
}

static int
barrier_wait(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_barrier *b = self;
    conc_obj *t = conc__mgr_arg(args, kwds, 0, "timeout");
    int64_t deadline;
    int rc = (!t || conc_obj_typeof(t) == CONC_OBJ_NONE) && b->has_timeout
                 ? conc__deadline(b->timeout < 0 ? 0 : b->timeout, &deadline)
                 : conc__mgr_wait_deadline(args, kwds, &deadline);
    if (rc < 0)
        return rc;
    int64_t index = 0;
    conc_cond_acquire(b->mon.cond, CONC_FOREVER);
    rc = wait_locked(b, deadline, &index);
    conc_cond_release(b->mon.cond);
    if (rc < 0)
        return rc;
    *result = conc_obj_int(index);
    return *result ? 0 : CONC_ENOMEM;
}

static int
barrier_abort(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct mgr_barrier *b = self;
    conc_cond_acquire(b->mon.cond, CONC_FOREVER);
    set_state(b, BROKEN);
    conc_cond_release(b->mon.cond);
    return 0;
}

static int
barrier_reset(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct mgr_barrier *b = self;
    conc_cond_acquire(b->mon.cond, CONC_FOREVER);
    if (b->count > 0 && (b->state == FILLING || b->state == BROKEN))
        set_state(b, RESETTING);
    else if (b->count == 0)
        set_state(b, FILLING);
    conc_cond_release(b->mon.cond);
    return 0;
}

/* parties, n_waiting, broken: the attributes BarrierProxy reads. */
static int
barrier_getattr(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_barrier *b = self;
    const char *name = conc_obj_str_value(conc__mgr_arg(args, kwds, 0, "name"));
    if (!name)
        return conc_fail(CONC_ETYPE, "attribute name must be a string");
    conc_cond_acquire(b->mon.cond, CONC_FOREVER);
    int64_t parties = b->parties, state = b->state;
    int64_t waiting = state == FILLING ? b->count : 0;
    conc_cond_release(b->mon.cond);
    if (!strcmp(name, "broken"))
        return conc__mgr_bool(state == BROKEN, result);
    if (strcmp(name, "parties") && strcmp(name, "n_waiting"))
        return conc_fail(CONC__MGR_EATTR,
                         "'Barrier' object has no attribute '%s'", name);
    *result = conc_obj_int(!strcmp(name, "parties") ? parties : waiting);
    return *result ? 0 : CONC_ENOMEM;
}

/* BarrierProxy's exposed names. */
static const conc_manager_method barrier_methods[] = {
    {"__getattribute__", barrier_getattr},
    {"wait", barrier_wait},
    {"abort", barrier_abort},
    {"reset", barrier_reset},
};

static const conc_manager_type barrier_type = {
    .create = barrier_create,
    .release = barrier_release_obj,
    .stop = barrier_stop,
    .methods = barrier_methods,
    .n_methods = sizeof barrier_methods / sizeof barrier_methods[0],
};

const conc_manager_type *
conc_manager_barrier_type(void)
{
    return &barrier_type;
}
