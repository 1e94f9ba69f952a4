/* The "list" typeid's insert, reverse and operators, as CPython's server
 * answers them by calling the list's own method: __add__ and __mul__
 * return a new list, __imul__ changes the list in place and returns it
 * (pickled: a copy), __reversed__ a list_reverseiterator, which pickles
 * as reversed(copy) with its position as state. Errors carry list's
 * own texts.
 *
 * Lock order: the box's lock only. */
#include "manager/list_ops.h"

/* The most items __mul__ and __imul__ make: beyond it MemoryError, as
 * CPython gives for a repetition it cannot allocate, rather than a server
 * thread appending for minutes. */
#define LIST_MAX_ITEMS ((int64_t)1 << 27)

/* CPython's complaint about a method's argument count. */
static int
want_args(conc_obj *args, conc_obj *kwds, const char *name, size_t n)
{
    size_t got = conc_obj_len(args);
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE, "list.%s() takes no keyword arguments",
                         name);
    if (got == n)
        return 0;
    if (n == 0)
        return conc_fail(CONC_ETYPE, "list.%s() takes no arguments (%zu given)",
                         name, got);
    return conc_fail(CONC_ETYPE, "%sexpected %zu argument%s, got %zu",
                     strcmp(name, "insert") ? "" : "insert ", n,
                     n == 1 ? "" : "s", got);
}

/* An integer argument as list's methods take it (__index__). */
static int
int_arg(conc_obj *o, int64_t *out)
{
    conc_obj_type t = conc_obj_typeof(o);
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE,
                         "'%s' object cannot be interpreted as an integer",
                         conc__mgr_pytype(o));
    if (conc_obj_int_value(o, out) < 0)
        return conc_fail(CONC_EOVERFLOW,
                         "Python int too large to convert to C ssize_t");
    return 0;
}

/* Appends `times` copies of from's first n items to `to`. */
static int
repeat(conc_obj *to, conc_obj *from, size_t n, int64_t times)
{
    int rc = 0;
    for (int64_t k = 0; rc == 0 && k < times; k++)
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = conc_obj_list_append(to, conc_obj_seq_get(from, i));
    return rc;
}

int
conc__mgr_list_insert(void *self, conc_obj *args, conc_obj *kwds,
                      conc_obj **result)
{
    struct conc__mgr_box *b = self;
    int64_t at;
    (void)result;
    int rc = want_args(args, kwds, "insert", 2);
    if (rc == 0)
        rc = int_arg(conc_obj_seq_get(args, 0), &at);
    if (rc < 0)
        return rc;
    conc_obj *x = conc_obj_seq_get(args, 1);
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int64_t n = (int64_t)conc_obj_len(b->v);
    at = at < 0 ? (at + n < 0 ? 0 : at + n) : (at > n ? n : at);
    /* Append, then move each item after `at` one place up. */
    rc = conc_obj_list_append(b->v, x);
    for (int64_t k = n; rc == 0 && k > at; k--)
        conc_obj_list_set_new(
            b->v, (size_t)k,
            conc_obj_incref(conc_obj_seq_get(b->v, (size_t)k - 1)));
    if (rc == 0)
        conc_obj_list_set_new(b->v, (size_t)at, conc_obj_incref(x));
    conc_lock_release(b->lock);
    return rc;
}

int
conc__mgr_list_reverse(void *self, conc_obj *args, conc_obj *kwds,
                       conc_obj **result)
{
    struct conc__mgr_box *b = self;
    (void)result;
    int rc = want_args(args, kwds, "reverse", 0);
    if (rc < 0)
        return rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    size_t n = conc_obj_len(b->v);
    for (size_t i = 0; n > 0 && i < n - 1 - i; i++) {
        conc_obj *lo = conc_obj_incref(conc_obj_seq_get(b->v, i));
        conc_obj *hi = conc_obj_incref(conc_obj_seq_get(b->v, n - 1 - i));
        conc_obj_list_set_new(b->v, i, hi);
        conc_obj_list_set_new(b->v, n - 1 - i, lo);
    }
    conc_lock_release(b->lock);
    return 0;
}

/* A new list of list's items followed by `tail`'s (NULL: none), the
 * whole repeated `times` times. The caller holds the box's lock. */
static int
copy_items(conc_obj *list, conc_obj *tail, int64_t times, conc_obj **result)
{
    size_t n = conc_obj_len(list) + (tail ? conc_obj_len(tail) : 0);
    if (times > 0 && n > 0 && times > LIST_MAX_ITEMS / (int64_t)n)
        return conc_fail(CONC_ENOMEM, "list too long to repeat");
    conc_obj *out = conc_obj_list();
    int rc = out ? 0 : CONC_ENOMEM;
    for (int64_t k = 0; rc == 0 && k < times; k++) {
        rc = repeat(out, list, conc_obj_len(list), 1);
        if (rc == 0 && tail)
            rc = repeat(out, tail, conc_obj_len(tail), 1);
    }
    if (rc < 0) {
        conc_obj_decref(out);
        return rc;
    }
    *result = out;
    return 0;
}

static int
copy_of(struct conc__mgr_box *b, conc_obj *tail, int64_t times,
        conc_obj **result)
{
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = copy_items(b->v, tail, times, result);
    conc_lock_release(b->lock);
    return rc;
}

int
conc__mgr_list_add(void *self, conc_obj *args, conc_obj *kwds,
                   conc_obj **result)
{
    int rc = want_args(args, kwds, "__add__", 1);
    if (rc < 0)
        return rc;
    conc_obj *other = conc_obj_seq_get(args, 0);
    if (conc_obj_typeof(other) != CONC_OBJ_LIST)
        return conc_fail(CONC_ETYPE,
                         "can only concatenate list (not \"%s\") to list",
                         conc__mgr_pytype(other));
    return copy_of(self, other, 1, result);
}

int
conc__mgr_list_mul(void *self, conc_obj *args, conc_obj *kwds,
                   conc_obj **result)
{
    int64_t times;
    int rc = want_args(args, kwds, "__mul__", 1);
    if (rc == 0)
        rc = int_arg(conc_obj_seq_get(args, 0), &times);
    return rc < 0 ? rc : copy_of(self, NULL, times, result);
}

int
conc__mgr_list_imul(void *self, conc_obj *args, conc_obj *kwds,
                    conc_obj **result)
{
    struct conc__mgr_box *b = self;
    int64_t times;
    int rc = want_args(args, kwds, "__imul__", 1);
    if (rc == 0)
        rc = int_arg(conc_obj_seq_get(args, 0), &times);
    if (rc < 0)
        return rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    size_t n = conc_obj_len(b->v);
    if (times > 0 && n > 0 && times > LIST_MAX_ITEMS / (int64_t)n)
        rc = conc_fail(CONC_ENOMEM, "list too long to repeat");
    else if (times <= 0)
        while (conc_obj_len(b->v) > 0)
            conc_obj_list_del(b->v, conc_obj_len(b->v) - 1);
    else
        rc = repeat(b->v, b->v, n, times - 1);
    if (rc == 0) /* the list itself, which the reply pickles */
        rc = copy_items(b->v, NULL, 1, result);
    conc_lock_release(b->lock);
    return rc;
}

int
conc__mgr_list_reversed(void *self, conc_obj *args, conc_obj *kwds,
                        conc_obj **result)
{
    conc_obj *copy = NULL;
    int rc = want_args(args, kwds, "__reversed__", 0);
    if (rc == 0)
        rc = copy_of(self, NULL, 1, &copy);
    if (rc < 0)
        return rc;
    conc_obj *t = conc_obj_tuple(1);
    conc_obj *at = conc_obj_int((int64_t)conc_obj_len(copy) - 1);
    if (t && at) {
        conc_obj_tuple_set_new(t, 0, conc_obj_incref(copy));
        *result = conc_obj_foreign("builtins", "reversed", t, at, 0);
    }
    rc = t && at && *result ? 0 : CONC_ENOMEM;
    conc_obj_decref(t);
    conc_obj_decref(at);
    conc_obj_decref(copy);
    return rc;
}
