/* The built-in "dict" typeid: DictProxy's exposed methods (CPython 3.11
 * to 3.14's) over a conc_obj dict behind a lock, __iter__ in
 * dict_iter.c and 3.14's operators and fromkeys in dict_ops.c. Results
 * are copies or values no method changes in place (values are only ever
 * replaced), so they are pickled after the lock is released;
 * '#GETVALUE' is a copy.
 *
 * Lock order: the box's lock only. */
#include "manager/dict_ops.h"

/* dict.popitem()'s KeyError on an empty dict, CPython's text. */
#define POPITEM_EMPTY "popitem(): dictionary is empty"

int
conc__mgr_box_new(conc_obj *v, void **self)
{
    struct conc__mgr_box *b = v ? conc__calloc(1, sizeof *b) : NULL;
    if (!b || conc_lock_new(NULL, &b->lock) < 0) {
        conc__free(b);
        conc_obj_decref(v);
        return CONC_ENOMEM;
    }
    b->v = v;
    atomic_init(&b->refs, 1);
    *self = b;
    return 0;
}

void
conc__mgr_box_free(void *self)
{
    struct conc__mgr_box *b = self;
    if (atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    conc_lock_free(b->lock);
    conc_obj_decref(b->v);
    conc__free(b);
}

conc_obj *
conc__mgr_args1(conc_obj *item)
{
    conc_obj *t = conc_obj_tuple(1);
    if (t)
        conc_obj_tuple_set_new(t, 0, conc_obj_incref(item));
    return t;
}

/* dict(iterable=(), **kwds) and update's arguments (`name` for the
 * count's complaint): a dict, or an iterable of pairs, then the keywords,
 * as dict.update takes them. */
static int
update_args(conc_obj *d, const char *name, conc_obj *args, conc_obj *kwds)
{
    conc_obj *from = conc_obj_seq_get(args, 0);
    int rc = 0;
    if (conc_obj_len(args) > 1)
        return conc_fail(CONC_ETYPE, "%s expected at most 1 argument, got %zu",
                         name, conc_obj_len(args));
    if (from)
        rc = conc__mgr_dict_merge(d, from);
    return rc < 0 || !kwds ? rc : conc__mgr_dict_merge(d, kwds);
}

static int
d_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    conc_obj *d = conc_obj_dict();
    int rc = d ? update_args(d, "dict", args, kwds) : CONC_ENOMEM;
    if (rc < 0) {
        conc_obj_decref(d);
        return rc;
    }
    return conc__mgr_box_new(d, self);
}

static conc_obj *
arg0(conc_obj *args)
{
    return conc_obj_seq_get(args, 0);
}

/* d[key], or `dflt` (a new reference to it) when given and key absent. */
static int
lookup(struct conc__mgr_box *b, conc_obj *key, conc_obj *dflt, int del,
       conc_obj **result)
{
    if (!key)
        return conc_fail(CONC_ETYPE, "missing the key");
    conc_obj *v;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_dict_get(b->v, key, &v);
    if (rc == 0)
        *result = conc_obj_incref(v);
    if (rc == 0 && del)
        conc_obj_dict_del(b->v, key);
    conc_lock_release(b->lock);
    if (rc == CONC_EKEY && dflt) {
        *result = conc_obj_incref(dflt);
        return 0;
    }
    if (rc == CONC_EKEY)
        *result = conc__mgr_args1(key);
    return rc;
}

static int
d_getitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    return lookup(self, arg0(args), NULL, 0, result);
}

static int
d_get(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    conc_obj *dflt = conc_obj_seq_get(args, 1);
    return lookup(self, arg0(args), dflt ? dflt : conc_obj_none(), 0, result);
}

static int
d_pop(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    return lookup(self, arg0(args), conc_obj_seq_get(args, 1), 1, result);
}

static int
d_delitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    conc_obj *v = NULL;
    int rc = lookup(self, arg0(args), NULL, 1, &v);
    (void)kwds;
    if (rc == 0)
        conc_obj_decref(v);
    else
        *result = v;
    return rc;
}

static int
d_setitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)kwds;
    (void)result;
    if (conc_obj_len(args) != 2)
        return conc_fail(CONC_ETYPE, "__setitem__ takes a key and a value");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_dict_set(b->v, arg0(args), conc_obj_seq_get(args, 1));
    conc_lock_release(b->lock);
    return rc;
}

static int
d_setdefault(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *key = arg0(args), *dflt = conc_obj_seq_get(args, 1), *v;
    (void)kwds;
    if (!key)
        return conc_fail(CONC_ETYPE, "setdefault() needs a key");
    dflt = dflt ? dflt : conc_obj_none();
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_dict_get(b->v, key, &v);
    if (rc == CONC_EKEY && (rc = conc_obj_dict_set(b->v, key, dflt)) == 0)
        v = dflt;
    if (rc == 0)
        *result = conc_obj_incref(v);
    conc_lock_release(b->lock);
    return rc;
}

static int
d_update(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)result;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = update_args(b->v, "update", args, kwds);
    conc_lock_release(b->lock);
    return rc;
}

static int
d_contains(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)kwds;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = arg0(args) ? conc_obj_contains(b->v, arg0(args)) : CONC_ETYPE;
    conc_lock_release(b->lock);
    if (rc >= 0)
        *result = conc_obj_bool(rc);
    return rc < 0 ? rc : 0;
}

static int
d_len(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)args;
    (void)kwds;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    *result = conc_obj_int((int64_t)conc_obj_len(b->v));
    conc_lock_release(b->lock);
    return *result ? 0 : CONC_ENOMEM;
}

static int
d_clear(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *fresh = conc_obj_dict();
    (void)args;
    (void)kwds;
    (void)result;
    if (!fresh)
        return CONC_ENOMEM;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    conc_obj *old = b->v;
    b->v = fresh;
    conc_lock_release(b->lock);
    conc_obj_decref(old);
    return 0;
}

/* keys, values, items and copy: what they return, built under the lock. */
enum view { KEYS, VALUES, ITEMS, COPY };

static conc_obj *
view_item(enum view w, conc_obj *k, conc_obj *v)
{
    if (w == KEYS)
        return conc_obj_incref(k);
    if (w == VALUES)
        return conc_obj_incref(v);
    conc_obj *t = conc_obj_tuple(2);
    if (t) {
        conc_obj_tuple_set_new(t, 0, conc_obj_incref(k));
        conc_obj_tuple_set_new(t, 1, conc_obj_incref(v));
    }
    return t;
}

static int
view(struct conc__mgr_box *b, enum view w, conc_obj **result)
{
    conc_obj *out = w == COPY ? conc_obj_dict() : conc_obj_list();
    int rc = out ? 1 : CONC_ENOMEM;
    size_t pos = 0;
    conc_obj *k, *v;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    while (rc == 1 && (rc = conc_obj_next(b->v, &pos, &k, &v)) == 1) {
        if (w == COPY)
            rc = conc_obj_dict_set(out, k, v) < 0 ? CONC_ENOMEM : 1;
        else
            rc = conc_obj_list_append_new(out, view_item(w, k, v)) < 0
                     ? CONC_ENOMEM
                     : 1;
    }
    conc_lock_release(b->lock);
    if (rc < 0) {
        conc_obj_decref(out);
        return rc;
    }
    *result = out;
    return 0;
}

static int
d_keys(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    return view(self, KEYS, result);
}

static int
d_values(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    return view(self, VALUES, result);
}

static int
d_items(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    return view(self, ITEMS, result);
}

static int
d_copy(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    return view(self, COPY, result);
}

/* popitem(): the pair inserted last, removed (LIFO, as dict's). */
static int
d_popitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)kwds;
    if (conc_obj_len(args) != 0)
        return conc_fail(CONC_ETYPE, "popitem() takes no arguments");
    conc_obj *key = NULL, *value = NULL, *k, *v;
    size_t pos = 0;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    while (conc_obj_next(b->v, &pos, &k, &v) == 1)
        key = k, value = v;
    conc_obj *pair = key ? conc_obj_tuple(2) : NULL;
    if (pair) {
        conc_obj_tuple_set_new(pair, 0, conc_obj_incref(key));
        conc_obj_tuple_set_new(pair, 1, conc_obj_incref(value));
        conc_obj_dict_del(b->v, key);
    }
    conc_lock_release(b->lock);
    if (pair) {
        *result = pair;
        return 0;
    }
    if (key)
        return CONC_ENOMEM;
    conc_obj *msg = conc_obj_str(POPITEM_EMPTY);
    *result = msg ? conc__mgr_args1(msg) : NULL;
    conc_obj_decref(msg);
    return conc_fail(CONC_EKEY, POPITEM_EMPTY);
}

static const conc_manager_method dict_methods[] = {
    {"__contains__", d_contains},
    {"__delitem__", d_delitem},
    {"__getitem__", d_getitem},
    {"__ior__", conc__mgr_dict_ior},
    {"__len__", d_len},
    {"__or__", conc__mgr_dict_or},
    {"__reversed__", conc__mgr_dict_reversed},
    {"__ror__", conc__mgr_dict_ror},
    {"__setitem__", d_setitem},
    {"clear", d_clear},
    {"copy", d_copy},
    {"fromkeys", conc__mgr_dict_fromkeys},
    {"get", d_get},
    {"items", d_items},
    {"keys", d_keys},
    {"pop", d_pop},
    {"popitem", d_popitem},
    {"setdefault", d_setdefault},
    {"update", d_update},
    {"values", d_values},
    {"#GETVALUE", d_copy},
};

/* __iter__ answers with an "Iterator" (DictProxy's method_to_typeid). */
static const conc_manager_proxy_method dict_proxy_methods[] = {
    {"__iter__", "Iterator", conc__mgr_dict_iter},
};

static const conc_manager_type dict_type = {
    .create = d_create,
    .release = conc__mgr_box_free,
    .methods = dict_methods,
    .n_methods = sizeof dict_methods / sizeof dict_methods[0],
    .proxy_methods = dict_proxy_methods,
    .n_proxy_methods = 1,
};

const conc_manager_type *
conc_manager_dict_type(void)
{
    return &dict_type;
}
