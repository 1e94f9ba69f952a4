/* The "Value" typeid: multiprocessing.managers.Value(typecode, value,
 * lock=True) as ValueProxy reaches it (get, set), and '#GETVALUE', a copy
 * pickled as CPython's Value object (_getvalue()). As in CPython the
 * typecode is kept but not enforced, and get returns a copy: the value is
 * replaced, never changed in place, and pickled after the lock is let go.
 *
 * Lock order: the value's lock only. */
#include "manager/sync_types.h"

struct mgr_value {
    conc_lock *lock;
    conc_obj *typecode;
    conc_obj *v;
};

/* managers.Value(typecode, value, lock=True). */
static const char *const value_params[] = {"typecode", "value", "lock", NULL};
static const struct conc__mgr_sig value_sig = {"Value.__init__", 1,
                                               value_params, 2};

static int
value_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    int rc = conc__mgr_check_args(&value_sig, args, kwds);
    if (rc < 0)
        return rc;
    conc_obj *tc = conc__mgr_arg(args, kwds, 0, "typecode");
    conc_obj *v = conc__mgr_arg(args, kwds, 1, "value");
    struct mgr_value *x = conc__calloc(1, sizeof *x);
    if (!x || conc_lock_new(NULL, &x->lock) < 0) {
        conc__free(x);
        return CONC_ENOMEM;
    }
    x->typecode = conc_obj_incref(tc);
    x->v = conc_obj_incref(v);
    *self = x;
    return 0;
}

static void
value_release_obj(void *self)
{
    struct mgr_value *x = self;
    conc_lock_free(x->lock);
    conc_obj_decref(x->typecode);
    conc_obj_decref(x->v);
    conc__free(x);
}

static int
value_get(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct mgr_value *x = self;
    conc_lock_acquire(x->lock, CONC_FOREVER);
    *result = conc_obj_incref(x->v);
    conc_lock_release(x->lock);
    return 0;
}

static int
value_set(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    struct mgr_value *x = self;
    conc_obj *v = conc__mgr_arg(args, kwds, 0, "value");
    if (!v)
        return conc_fail(CONC_ETYPE, "set() missing 'value'");
    conc_lock_acquire(x->lock, CONC_FOREVER);
    conc_obj *old = x->v;
    x->v = conc_obj_incref(v);
    conc_lock_release(x->lock);
    conc_obj_decref(old);
    return 0;
}

/* A copy as CPython pickles a managers.Value: the class called with no
 * arguments (NEWOBJ), then its __dict__, {'_typecode', '_value'}
 * (BUILD). */
static int
value_getvalue(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct mgr_value *x = self;
    conc_obj *state = conc_obj_dict(), *none = conc_obj_tuple(0);
    int rc = state && none ? 0 : CONC_ENOMEM;
    conc_lock_acquire(x->lock, CONC_FOREVER);
    conc_obj *tc = conc_obj_incref(x->typecode), *v = conc_obj_incref(x->v);
    conc_lock_release(x->lock);
    conc_obj *k1 = conc_obj_str("_typecode"), *k2 = conc_obj_str("_value");
    if (rc == 0 && (!k1 || !k2))
        rc = CONC_ENOMEM;
    if (rc == 0 && (rc = conc_obj_dict_set(state, k1, tc)) == 0)
        rc = conc_obj_dict_set(state, k2, v);
    if (rc == 0)
        *result = conc_obj_foreign("multiprocessing.managers", "Value", none,
                                   state, 1);
    conc_obj_decref(k1);
    conc_obj_decref(k2);
    conc_obj_decref(tc);
    conc_obj_decref(v);
    conc_obj_decref(state);
    conc_obj_decref(none);
    return rc < 0 ? rc : *result ? 0 : CONC_ENOMEM;
}

/* ValueProxy's exposed names, and the copy every object gives. */
static const conc_manager_method value_methods[] = {
    {"get", value_get},
    {"set", value_set},
    {"#GETVALUE", value_getvalue},
};

static const conc_manager_type value_type = {
    .create = value_create,
    .release = value_release_obj,
    .methods = value_methods,
    .n_methods = sizeof value_methods / sizeof value_methods[0],
};

const conc_manager_type *
conc_manager_value_type(void)
{
    return &value_type;
}
