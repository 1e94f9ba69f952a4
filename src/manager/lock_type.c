/* The "Lock" and "RLock" typeids: threading.Lock and threading.RLock as
 * AcquirerProxy reaches them (acquire, release, and 3.14's locked). An
 * RLock belongs to the client (connection) that acquired it, as CPython's
 * belongs to the thread serving that connection; a Lock may be released
 * by any client. Either is released by the server when the client
 * holding it leaves.
 *
 * Lock order: the registry of holders (holds.c), then the lock's monitor. */
#include "manager/sync_types.h"

struct mgr_lock {
    struct conc__mgr_holder holder; /* first: give_back's pointer */
    struct conc__mgr_mon mon;
    struct conc__mgr_lockstate state;
};

static void
lock_give_back(struct conc__mgr_holder *h, uint64_t client)
{
    struct mgr_lock *l = (struct mgr_lock *)h;
    conc_cond_acquire(l->mon.cond, CONC_FOREVER);
    if (l->state.count > 0 && l->state.owner == client) {
        l->state.count = 0;
        l->state.owner = 0;
        conc_cond_notify_all(l->mon.cond);
    }
    conc_cond_release(l->mon.cond);
}

static int
lock_new(int recursive, void **self)
{
    struct mgr_lock *l = conc__calloc(1, sizeof *l);
    if (!l)
        return CONC_ENOMEM;
    if (conc__mgr_mon_init(&l->mon) < 0) {
        conc__free(l);
        return CONC_ENOMEM;
    }
    l->state.recursive = recursive;
    l->holder.give_back = lock_give_back;
    conc__mgr_holder_add(&l->holder);
    *self = l;
    return 0;
}

/* threading.Lock(), which is _thread.allocate_lock and takes nothing
 * (RLock takes and ignores any arguments, as CPython's does). */
static int
lock_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE, "_thread.allocate_lock() takes no "
                                     "keyword arguments");
    if (conc_obj_len(args) > 0)
        return conc_fail(CONC_ETYPE,
                         "_thread.allocate_lock() takes no arguments (%zu "
                         "given)",
                         conc_obj_len(args));
    return lock_new(0, self);
}

static int
rlock_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    (void)args;
    (void)kwds;
    return lock_new(1, self);
}

static void
lock_release_obj(void *self)
{
    struct mgr_lock *l = self;
    conc__mgr_holder_remove(&l->holder);
    conc__mgr_mon_fini(&l->mon);
    conc__free(l);
}

static void
lock_stop(void *self)
{
    struct mgr_lock *l = self;
    conc__mgr_mon_stop(&l->mon);
}

static int
lock_acquire(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_lock *l = self;
    int64_t deadline;
    int rc = conc__mgr_acquire_deadline(args, kwds, 0, &deadline);
    if (rc < 0)
        return rc;
    conc_cond_acquire(l->mon.cond, CONC_FOREVER);
    rc = conc__mgr_lock_take(&l->mon, &l->state, deadline);
    conc_cond_release(l->mon.cond);
    return rc < 0 ? rc : conc__mgr_bool(rc, result);
}

static int
lock_release(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct mgr_lock *l = self;
    conc_cond_acquire(l->mon.cond, CONC_FOREVER);
    int rc = conc__mgr_lock_give(&l->mon, &l->state);
    conc_cond_release(l->mon.cond);
    return rc;
}

static int
lock_locked(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct mgr_lock *l = self;
    conc_cond_acquire(l->mon.cond, CONC_FOREVER);
    int held = l->state.count > 0;
    conc_cond_release(l->mon.cond);
    return conc__mgr_bool(held, result);
}

/* AcquirerProxy's exposed names, with 3.14's locked. */
static const conc_manager_method lock_methods[] = {
    {"acquire", lock_acquire},
    {"release", lock_release},
    {"locked", lock_locked},
};

static const conc_manager_type lock_type = {
    .create = lock_create,
    .release = lock_release_obj,
    .stop = lock_stop,
    .methods = lock_methods,
    .n_methods = sizeof lock_methods / sizeof lock_methods[0],
};

static const conc_manager_type rlock_type = {
    .create = rlock_create,
    .release = lock_release_obj,
    .stop = lock_stop,
    .methods = lock_methods,
    .n_methods = sizeof lock_methods / sizeof lock_methods[0],
};

const conc_manager_type *
conc_manager_lock_type(void)
{
    return &lock_type;
}

const conc_manager_type *
conc_manager_rlock_type(void)
{
    return &rlock_type;
}

int
conc__mgr_lock_parts(conc_manager *m, const char *ident,
                     struct conc__mgr_mon **mon,
                     struct conc__mgr_lockstate **state)
{
    struct conc__mgr_obj *o = conc__mgr_obj_get(m, ident);
    if (!o)
        return conc_fail(CONC_EKEY, "%s", ident);
    int is_lock = o->type == &lock_type || o->type == &rlock_type;
    if (is_lock) {
        struct mgr_lock *l = o->self;
        conc__mgr_obj_pin(m, ident); /* lives as long as the manager */
        *mon = &l->mon;
        *state = &l->state;
    }
    conc__mgr_obj_put(m, o);
    return is_lock ? 0
                   : conc_fail(CONC_ETYPE, "a Condition's lock must be a Lock "
                                           "or RLock of this manager");
}
