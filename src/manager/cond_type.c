/* The "Condition" typeid: threading.Condition(lock=None) as
 * ConditionProxy reaches it: acquire, release, wait(timeout), notify(n),
 * notify_all, and 3.14's locked. Without a lock it has an RLock of its
 * own; Condition(lock_proxy) uses that very Lock or RLock object of the
 * manager (a proxy arrives as a RebuildProxy record), its monitor and
 * state, so the lock's own proxies and the Condition's acquire the same
 * lock. An RLock belongs to the client that acquired it; a Lock is the
 * caller's as soon as anybody holds it, as threading.Condition's
 * _is_owned decides for a lock with no owner. A wait releases the lock
 * fully and takes it back before returning, as threading's does. Waiters
 * are woken in the order they began to wait. A client that leaves
 * holding the lock releases it (the lock object's own give-back for a
 * lock given).
 *
 * Lock order: the registry of holders (holds.c), then the monitor (the
 * given lock's). */
#include "manager/sync_types.h"

/* A client blocked in wait(), on its serving thread's stack. */
struct waiter {
    int notified;
    struct conc__mgr_watch *watch; /* its client's, to skip a dead one */
    struct waiter *next;
};

struct mgr_cond {
    struct conc__mgr_holder holder; /* first: give_back's pointer */
    struct conc__mgr_mon own_mon;   /* without a lock given */
    struct conc__mgr_lockstate own_lock;
    struct conc__mgr_mon *mon; /* own_mon, or the given lock's */
    struct conc__mgr_lockstate *lock;
    struct waiter *head, **tail; /* oldest first */
};

static void
cond_give_back(struct conc__mgr_holder *h, uint64_t client)
{
    struct mgr_cond *c = (struct mgr_cond *)h;
    conc_cond_acquire(c->mon->cond, CONC_FOREVER);
    if (c->lock->count > 0 && c->lock->owner == client) {
        c->lock->count = 0;
        c->lock->owner = 0;
        conc_cond_notify_all(c->mon->cond);
    }
    conc_cond_release(c->mon->cond);
}

/* Condition(lock): the monitor and state of the lock a proxy stands for,
 * which must be a Lock or RLock of the manager `m` (the registration's
 * argument). */
static int
given_lock(conc_manager *m, conc_obj *lock, struct mgr_cond *c)
{
    const char *ident = conc__mgr_rebuild_ident(lock);
    if (conc_obj_typeof(lock) != CONC_OBJ_FOREIGN) /* as threading finds */
        return conc_fail(CONC__MGR_EATTR,
                         "'%s' object has no attribute 'acquire'",
                         conc__mgr_pytype(lock));
    if (!ident || !m)
        return conc_fail(CONC_ETYPE,
                         "a Condition's lock must be a proxy of a Lock or "
                         "RLock of this manager, not %s",
                         conc__mgr_pytype(lock));
    return conc__mgr_lock_parts(m, ident, &c->mon, &c->lock);
}

static const char *const cond_params[] = {"lock", NULL};
static const struct conc__mgr_sig cond_sig = {"Condition.__init__", 1,
                                              cond_params, 0};

static int
cond_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    conc_obj *lock = conc__mgr_arg(args, kwds, 0, "lock");
    int checked = conc__mgr_check_args(&cond_sig, args, kwds);
    if (checked < 0)
        return checked;
    struct mgr_cond *c = conc__calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    int rc = 0;
    if (lock && conc_obj_typeof(lock) != CONC_OBJ_NONE)
        rc = given_lock(arg, lock, c);
    else if ((rc = conc__mgr_mon_init(&c->own_mon)) == 0) {
        c->own_lock.recursive = 1;
        c->mon = &c->own_mon;
        c->lock = &c->own_lock;
        c->holder.give_back = cond_give_back;
        conc__mgr_holder_add(&c->holder);
    }
    if (rc < 0) {
        conc__free(c);
        return rc;
    }
    c->tail = &c->head;
    *self = c;
    return 0;
}

static void
cond_release_obj(void *self)
{
    struct mgr_cond *c = self;
    if (c->mon == &c->own_mon) { /* a given lock is its object's */
        conc__mgr_holder_remove(&c->holder);
        conc__mgr_mon_fini(&c->own_mon);
    }
    conc__free(c);
}

static void
cond_stop(void *self)
{
    struct mgr_cond *c = self;
    conc__mgr_mon_stop(c->mon);
}

static int
cond_acquire(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_cond *c = self;
    int64_t deadline;
    int rc = conc__mgr_acquire_deadline(args, kwds, 0, &deadline);
    if (rc < 0)
        return rc;
    conc_cond_acquire(c->mon->cond, CONC_FOREVER);
    rc = conc__mgr_lock_take(c->mon, c->lock, deadline);
    conc_cond_release(c->mon->cond);
    return rc < 0 ? rc : conc__mgr_bool(rc, result);
}

static int
cond_release(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct mgr_cond *c = self;
    conc_cond_acquire(c->mon->cond, CONC_FOREVER);
    int rc = conc__mgr_lock_give(c->mon, c->lock);
    conc_cond_release(c->mon->cond);
    return rc;
}

static int
cond_locked(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct mgr_cond *c = self;
    conc_cond_acquire(c->mon->cond, CONC_FOREVER);
    int held = c->lock->count > 0;
    conc_cond_release(c->mon->cond);
    return conc__mgr_bool(held, result);
}

static int
owned_locked(struct mgr_cond *c, const char *what)
{
    /* A Lock has no owner: threading.Condition takes it as the caller's
     * while anybody holds it. */
    if (c->lock->count > 0 &&
        (!c->lock->recursive || c->lock->owner == conc__mgr_client()))
        return 0;
    return conc_fail(CONC_ENOTOWNER, "cannot %s on un-acquired lock", what);
}

static void
unlink_waiter(struct mgr_cond *c, struct waiter *w)
{
    struct waiter **pp = &c->head;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = w->next;
    if (c->tail == &w->next)
        c->tail = pp;
}

/* Wakes the n oldest waiters (all for n < 0), the monitor held. A
 * waiter whose client hung up is dropped from the line without counting
 * (its thread leaves on its own). */
static void
notify_locked(struct mgr_cond *c, int64_t n)
{
    while (c->head && n != 0) {
        struct waiter *w = c->head;
        c->head = w->next;
        if (conc__mgr_watch_gone(w->watch))
            continue;
        w->notified = 1;
        n--;
    }
    if (!c->head)
        c->tail = &c->head;
    conc_cond_notify_all(c->mon->cond);
}

/* Waits with the lock given up, then takes it back as the caller held
 * it (even after a timeout, as threading does); 1 notified, 0 not. A
 * waiter whose client hung up passes a notify it got on to a live one. */
static int
wait_locked(struct mgr_cond *c, int64_t deadline)
{
    struct waiter w = {0, conc__mgr_watch_current(), NULL};
    *c->tail = &w;
    c->tail = &w.next;
    long count = c->lock->count;
    c->lock->count = 0;
    c->lock->owner = 0;
    conc_cond_notify_all(c->mon->cond);
    int rc = 0;
    while (!w.notified && rc == 0)
        rc = conc__mgr_mon_wait(c->mon, deadline);
    if (!w.notified)
        unlink_waiter(c, &w);
    int got = conc__mgr_lock_take(c->mon, c->lock, CONC__FOREVER);
    if (w.notified && (rc == CONC_ECANCELED || got == CONC_ECANCELED))
        notify_locked(c, 1);
    if (got < 0)
        return got;
    c->lock->count = count;
    return rc == CONC_ETIMEDOUT || rc == 0 ? w.notified : rc;
}

static int
cond_wait(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_cond *c = self;
    int64_t deadline;
    int rc = conc__mgr_wait_deadline(args, kwds, &deadline);
    if (rc < 0)
        return rc;
    conc_cond_acquire(c->mon->cond, CONC_FOREVER);
    rc = owned_locked(c, "wait");
    if (rc == 0)
        rc = wait_locked(c, deadline);
    conc_cond_release(c->mon->cond);
    return rc < 0 ? rc : conc__mgr_bool(rc, result);
}

/* Wakes the n oldest waiters (all for n < 0). */
static int
notify(struct mgr_cond *c, int64_t n)
{
    conc_cond_acquire(c->mon->cond, CONC_FOREVER);
    int rc = owned_locked(c, "notify");
    if (rc == 0)
        notify_locked(c, n);
    conc_cond_release(c->mon->cond);
    return rc;
}

static int
cond_notify(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    conc_obj *no = conc__mgr_arg(args, kwds, 0, "n");
    int64_t n = 1;
    if (no && conc_obj_int_value(no, &n) < 0)
        return conc_fail(CONC_ETYPE, "n must be an int");
    return notify(self, n < 0 ? 0 : n);
}

static int
cond_notify_all(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    return notify(self, -1);
}

/* ConditionProxy's exposed names, with 3.14's locked. */
static const conc_manager_method cond_methods[] = {
    {"acquire", cond_acquire}, {"release", cond_release},
    {"locked", cond_locked},   {"wait", cond_wait},
    {"notify", cond_notify},   {"notify_all", cond_notify_all},
};

static const conc_manager_type cond_type = {
    .create = cond_create,
    .release = cond_release_obj,
    .stop = cond_stop,
    .methods = cond_methods,
    .n_methods = sizeof cond_methods / sizeof cond_methods[0],
};

const conc_manager_type *
conc_manager_condition_type(void)
{
    return &cond_type;
}
