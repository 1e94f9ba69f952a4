/* The built-in "list" typeid: ListProxy's exposed methods over a conc_obj
 * list behind a lock, indexes counted from the end when negative (insert,
 * reverse and the operators in list_ops.c, slices in list_slice.c, sort
 * in list_sort.c), and 3.14's clear and copy.
 *
 * Lock order: the box's lock only. */
#include "manager/list_ops.h"

/* Appends the items of iterable `from` to list `to`. */
static int
append_items(conc_obj *to, conc_obj *from)
{
    conc_obj *items = NULL;
    int rc = conc__mgr_items(from, &items);
    for (size_t i = 0, n = conc_obj_len(items); rc == 0 && i < n; i++)
        rc = conc_obj_list_append(to, conc_obj_seq_get(items, i));
    conc_obj_decref(items);
    return rc;
}

/* list(iterable=()), with list's own errors for its arguments. */
static int
l_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    size_t n = conc_obj_len(args);
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE, "list() takes no keyword arguments");
    if (n > 1)
        return conc_fail(CONC_ETYPE,
                         "list expected at most 1 argument, got %zu", n);
    conc_obj *l = conc_obj_list();
    int rc = l ? 0 : CONC_ENOMEM;
    if (rc == 0 && n == 1)
        rc = append_items(l, conc_obj_seq_get(args, 0));
    if (rc < 0) {
        conc_obj_decref(l);
        return rc;
    }
    return conc__mgr_box_new(l, self);
}

/* Argument `n` of args as an index into a list of `len` items; `pop`
 * names pop's index in the TypeError, which is not a subscript. */
static int
index_arg(conc_obj *args, size_t n, size_t len, int pop, size_t *out)
{
    int64_t i;
    conc_obj *o = conc_obj_seq_get(args, n);
    conc_obj_type t = conc_obj_typeof(o);
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE,
                         pop ? "'%s' object cannot be interpreted as an "
                               "integer"
                             : "list indices must be integers or slices, "
                               "not %s",
                         conc__mgr_pytype(o));
    if (conc_obj_int_value(o, &i) < 0)
        return conc_fail(CONC_EINDEX,
                         "cannot fit 'int' into an index-sized integer");
    if (i < 0)
        i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len)
        return conc_fail(CONC_EINDEX, "list index out of range");
    *out = (size_t)i;
    return 0;
}

/* l[i] or l[slice] (get), removing it for pop and __delitem__. */
static int
take(struct conc__mgr_box *b, conc_obj *args, int del, int pop,
     conc_obj **result)
{
    size_t i;
    conc_obj *index = conc_obj_seq_get(args, 0);
    int rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    if (!pop && conc__mgr_is_slice(index)) {
        rc = del ? conc__mgr_list_slice_set(b, index, NULL)
                 : conc__mgr_list_slice_get(b->v, index, result);
    } else {
        rc = index_arg(args, 0, conc_obj_len(b->v), pop, &i);
        if (rc == 0 && result)
            *result = conc_obj_incref(conc_obj_seq_get(b->v, i));
        if (rc == 0 && del)
            conc_obj_list_del(b->v, i);
    }
    conc_lock_release(b->lock);
    return rc;
}

static int
l_getitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    return take(self, args, 0, 0, result);
}

static int
l_delitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    (void)result;
    return take(self, args, 1, 0, NULL);
}

static int
l_pop(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    struct conc__mgr_box *b = self;
    if (conc_obj_len(args) > 0)
        return take(b, args, 1, 1, result);
    conc_obj *last = conc_obj_tuple(1);
    if (!last)
        return CONC_ENOMEM;
    conc_obj_tuple_set_new(last, 0, conc_obj_int(-1));
    int rc = take(b, last, 1, 1, result);
    conc_obj_decref(last);
    return rc == CONC_EINDEX ? conc_fail(rc, "pop from empty list") : rc;
}

static int
l_setitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    size_t i;
    (void)kwds;
    (void)result;
    if (conc_obj_len(args) != 2)
        return conc_fail(CONC_ETYPE, "__setitem__ takes an index and a value");
    conc_obj *index = conc_obj_seq_get(args, 0), *v = conc_obj_seq_get(args, 1);
    int rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    if (conc__mgr_is_slice(index))
        rc = conc__mgr_list_slice_set(b, index, v);
    else if ((rc = index_arg(args, 0, conc_obj_len(b->v), 0, &i)) == 0)
        rc = conc_obj_list_set_new(b->v, i, conc_obj_incref(v));
    conc_lock_release(b->lock);
    return rc == CONC_EINDEX
               ? conc_fail(rc, "list assignment index out of range")
               : rc;
}

static int
l_append(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)kwds;
    (void)result;
    if (conc_obj_len(args) != 1)
        return conc_fail(CONC_ETYPE, "append() takes exactly one argument");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_list_append(b->v, conc_obj_seq_get(args, 0));
    conc_lock_release(b->lock);
    return rc;
}

static int
l_extend(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *items = NULL;
    (void)result;
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE,
                         "list.extend() takes no keyword arguments");
    if (conc_obj_len(args) != 1)
        return conc_fail(CONC_ETYPE,
                         "list.extend() takes exactly one argument (%zu given)",
                         conc_obj_len(args));
    /* The items first, outside the lock: a range may be long. */
    int rc = conc__mgr_items(conc_obj_seq_get(args, 0), &items);
    if (rc < 0)
        return rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    for (size_t i = 0, n = conc_obj_len(items); i < n && rc == 0; i++)
        rc = conc_obj_list_append(b->v, conc_obj_seq_get(items, i));
    conc_lock_release(b->lock);
    conc_obj_decref(items);
    return rc;
}

/* count (first < 0), index (the first position) and remove of a value. */
static int
find(struct conc__mgr_box *b, conc_obj *item, int remove, int64_t *found)
{
    int64_t count = 0, first = -1;
    int rc = 0;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    for (size_t i = 0; i < conc_obj_len(b->v) && rc >= 0; i++) {
        rc = conc_obj_equal(conc_obj_seq_get(b->v, i), item);
        if (rc == 1 && first < 0)
            first = (int64_t)i;
        count += rc == 1;
    }
    if (rc >= 0 && remove > 0 && first >= 0)
        conc_obj_list_del(b->v, (size_t)first);
    conc_lock_release(b->lock);
    *found = remove >= 0 ? first : count;
    return rc < 0 ? rc : 0;
}

static int
l_count(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    int64_t n;
    (void)kwds;
    int rc = find(self, conc_obj_seq_get(args, 0), -1, &n);
    if (rc == 0 && !(*result = conc_obj_int(n)))
        rc = CONC_ENOMEM;
    return rc;
}

static int
index_or_remove(void *self, conc_obj *args, int remove, conc_obj **result)
{
    int64_t at;
    int rc = find(self, conc_obj_seq_get(args, 0), remove, &at);
    if (rc == 0 && at < 0)
        return conc_fail(CONC_EVALUE, "%s",
                         remove ? "list.remove(x): x not "
                                  "in list"
                                : "value is not in list");
    if (rc == 0 && !remove && !(*result = conc_obj_int(at)))
        rc = CONC_ENOMEM;
    return rc;
}

static int
l_index(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    return index_or_remove(self, args, 0, result);
}

static int
l_remove(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    return index_or_remove(self, args, 1, result);
}

static int
l_contains(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    int64_t n;
    (void)kwds;
    int rc = find(self, conc_obj_seq_get(args, 0), -1, &n);
    if (rc == 0)
        *result = conc_obj_bool(n > 0);
    return rc;
}

static int
l_len(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)args;
    (void)kwds;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    *result = conc_obj_int((int64_t)conc_obj_len(b->v));
    conc_lock_release(b->lock);
    return *result ? 0 : CONC_ENOMEM;
}

/* Python's #GETVALUE: a copy of the whole list (also list(proxy) and
 * proxy[:]'s stand-in in C). */
static int
l_getvalue(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)args;
    (void)kwds;
    conc_obj *out = conc_obj_list();
    int rc = out ? 0 : CONC_ENOMEM;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    for (size_t i = 0; rc == 0 && i < conc_obj_len(b->v); i++)
        rc = conc_obj_list_append(out, conc_obj_seq_get(b->v, i));
    conc_lock_release(b->lock);
    if (rc < 0)
        conc_obj_decref(out);
    else
        *result = out;
    return rc;
}

/* list's complaint about a method that takes no arguments. */
static int
no_args(conc_obj *args, conc_obj *kwds, const char *name)
{
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE, "list.%s() takes no keyword arguments",
                         name);
    if (conc_obj_len(args) > 0)
        return conc_fail(CONC_ETYPE, "list.%s() takes no arguments (%zu given)",
                         name, conc_obj_len(args));
    return 0;
}

/* copy() (3.14): a new list, as '#GETVALUE'. */
static int
l_copy(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    int rc = no_args(args, kwds, "copy");
    return rc < 0 ? rc : l_getvalue(self, args, kwds, result);
}

/* clear() (3.14): the list emptied, its old items dropped outside the
 * lock. */
static int
l_clear(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)result;
    int rc = no_args(args, kwds, "clear");
    conc_obj *fresh = rc == 0 ? conc_obj_list() : NULL;
    if (rc < 0 || !fresh)
        return rc < 0 ? rc : CONC_ENOMEM;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    conc_obj *old = b->v;
    b->v = fresh;
    conc_lock_release(b->lock);
    conc_obj_decref(old);
    return 0;
}

static const conc_manager_method list_methods[] = {
    {"__add__", conc__mgr_list_add},
    {"__contains__", l_contains},
    {"__delitem__", l_delitem},
    {"__getitem__", l_getitem},
    {"__imul__", conc__mgr_list_imul},
    {"__len__", l_len},
    {"__mul__", conc__mgr_list_mul},
    {"__reversed__", conc__mgr_list_reversed},
    {"__rmul__", conc__mgr_list_mul},
    {"__setitem__", l_setitem},
    {"append", l_append},
    {"clear", l_clear},
    {"copy", l_copy},
    {"count", l_count},
    {"extend", l_extend},
    {"index", l_index},
    {"insert", conc__mgr_list_insert},
    {"pop", l_pop},
    {"remove", l_remove},
    {"reverse", conc__mgr_list_reverse},
    {"sort", conc__mgr_list_sort},
    {"#GETVALUE", l_getvalue},
};

static const conc_manager_type list_type = {
    .create = l_create,
    .release = conc__mgr_box_free,
    .methods = list_methods,
    .n_methods = sizeof list_methods / sizeof list_methods[0],
};

const conc_manager_type *
conc_manager_list_type(void)
{
    return &list_type;
}
