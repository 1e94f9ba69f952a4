/* The "Namespace" typeid: multiprocessing.managers.Namespace(**kwds) as
 * NamespaceProxy reaches it: __getattribute__, __setattr__ and
 * __delattr__ of one name (a missing one is AttributeError), and
 * '#GETVALUE', a copy pickled as CPython's Namespace object. The
 * attributes live in a dict behind a lock (a conc__mgr_box); values are
 * replaced, never changed in place, so results are copies.
 *
 * Lock order: the box's lock only. */
#include "manager/sync_types.h"

static int
ns_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    static const char *const no_params[] = {NULL};
    static const struct conc__mgr_sig sig = {"Namespace.__init__", 1, no_params,
                                             0};
    int checked = conc__mgr_check_args(&sig, args, NULL); /* any keyword */
    if (checked < 0)
        return checked;
    conc_obj *d = conc_obj_dict();
    size_t pos = 0;
    conc_obj *k, *v;
    int rc = d ? 0 : CONC_ENOMEM;
    while (rc == 0 && conc_obj_next(kwds, &pos, &k, &v) == 1)
        rc = conc_obj_dict_set(d, k, v);
    if (rc < 0) {
        conc_obj_decref(d);
        return rc;
    }
    return conc__mgr_box_new(d, self);
}

static int
missing(const char *name)
{
    return conc_fail(CONC__MGR_EATTR,
                     "'Namespace' object has no attribute '%s'", name);
}

static conc_obj *
name_arg(conc_obj *args, conc_obj *kwds)
{
    conc_obj *name = conc__mgr_arg(args, kwds, 0, "name");
    return conc_obj_str_value(name) ? name : NULL;
}

static int
ns_getattr(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *name = name_arg(args, kwds), *v = NULL;
    if (!name)
        return conc_fail(CONC_ETYPE, "attribute name must be a string");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_dict_get(b->v, name, &v);
    if (rc == 0)
        *result = conc_obj_incref(v);
    conc_lock_release(b->lock);
    return rc == CONC_EKEY ? missing(conc_obj_str_value(name)) : rc;
}

static int
ns_setattr(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    struct conc__mgr_box *b = self;
    conc_obj *name = name_arg(args, kwds);
    conc_obj *v = conc__mgr_arg(args, kwds, 1, "value");
    if (!name || !v)
        return conc_fail(CONC_ETYPE, "__setattr__ needs a name and a value");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_dict_set(b->v, name, v);
    conc_lock_release(b->lock);
    return rc;
}

static int
ns_delattr(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    struct conc__mgr_box *b = self;
    conc_obj *name = name_arg(args, kwds);
    if (!name)
        return conc_fail(CONC_ETYPE, "attribute name must be a string");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_dict_del(b->v, name);
    conc_lock_release(b->lock);
    return rc == CONC_EKEY ? missing(conc_obj_str_value(name)) : rc;
}

/* A copy of the attributes, as CPython pickles a Namespace: the class
 * called with no arguments (NEWOBJ), then its __dict__ (BUILD). */
static int
ns_getvalue(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct conc__mgr_box *b = self;
    conc_obj *state = conc_obj_dict(), *none = conc_obj_tuple(0);
    size_t pos = 0;
    conc_obj *k, *v;
    int rc = state && none ? 0 : CONC_ENOMEM;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    while (rc == 0 && conc_obj_next(b->v, &pos, &k, &v) == 1)
        rc = conc_obj_dict_set(state, k, v);
    conc_lock_release(b->lock);
    if (rc == 0)
        *result = conc_obj_foreign("multiprocessing.managers", "Namespace",
                                   none, state, 1);
    conc_obj_decref(state);
    conc_obj_decref(none);
    return rc < 0 ? rc : *result ? 0 : CONC_ENOMEM;
}

/* NamespaceProxy's exposed names, and the copy every object gives. */
static const conc_manager_method ns_methods[] = {
    {"__getattribute__", ns_getattr},
    {"__setattr__", ns_setattr},
    {"__delattr__", ns_delattr},
    {"#GETVALUE", ns_getvalue},
};

static const conc_manager_type ns_type = {
    .create = ns_create,
    .release = conc__mgr_box_free,
    .methods = ns_methods,
    .n_methods = sizeof ns_methods / sizeof ns_methods[0],
};

const conc_manager_type *
conc_manager_namespace_type(void)
{
    return &ns_type;
}
