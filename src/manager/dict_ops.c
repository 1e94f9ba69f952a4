/* The "dict" typeid's 3.14 methods, as CPython's server answers them by
 * calling the dict's own: __or__ and __ror__ return a new dict (by
 * value), or NotImplemented for an operand that is not a dict (the
 * client then tries the other side, and raises TypeError); __ior__
 * merges in place what dict.update takes and returns the dict (pickled:
 * a copy); __reversed__ a dict_reversekeyiterator, which pickles as
 * iter([keys, last first]); fromkeys, a classmethod called through the
 * instance, a new dict. Errors carry dict's own texts.
 *
 * Lock order: the box's lock only. */
#include "manager/dict_ops.h"

/* The items iterating v gives, as a new list or tuple (iterable.c): 1
 * for a type that is not iterable. */
static int
items_of(conc_obj *v, conc_obj **out)
{
    int rc = conc__mgr_items(v, out);
    return rc == CONC_ETYPE ? 1 : rc;
}

/* d[key] = value, with dict's TypeError for an unhashable key. */
static int
set_item(conc_obj *d, conc_obj *key, conc_obj *value)
{
    int rc = conc_obj_dict_set(d, key, value);
    if (rc == CONC_ETYPE)
        return conc_fail(rc, "unhashable type: '%s'", conc__mgr_pytype(key));
    return rc;
}

/* Element `i` of an update's sequence, a pair, into d. */
static int
merge_pair(conc_obj *d, conc_obj *elem, size_t i)
{
    conc_obj *pair = NULL;
    int rc = items_of(elem, &pair);
    if (rc == 1)
        return conc_fail(CONC_ETYPE,
                         "cannot convert dictionary update sequence element "
                         "#%zu to a sequence",
                         i);
    if (rc == 0 && conc_obj_len(pair) != 2)
        rc = conc_fail(CONC_EVALUE,
                       "dictionary update sequence element #%zu has length "
                       "%zu; 2 is required",
                       i, conc_obj_len(pair));
    if (rc == 0)
        rc = set_item(d, conc_obj_seq_get(pair, 0), conc_obj_seq_get(pair, 1));
    conc_obj_decref(pair);
    return rc;
}

int
conc__mgr_dict_merge(conc_obj *d, conc_obj *from)
{
    conc_obj *k, *v, *items = NULL;
    int rc;
    if (conc_obj_typeof(from) == CONC_OBJ_DICT) {
        size_t pos = 0;
        while ((rc = conc_obj_next(from, &pos, &k, &v)) == 1)
            if ((rc = conc_obj_dict_set(d, k, v)) < 0)
                return rc;
        return rc;
    }
    rc = items_of(from, &items);
    if (rc == 1)
        return conc_fail(CONC_ETYPE, "'%s' object is not iterable",
                         conc__mgr_pytype(from));
    for (size_t i = 0; rc == 0 && i < conc_obj_len(items); i++)
        rc = merge_pair(d, conc_obj_seq_get(items, i), i);
    conc_obj_decref(items);
    return rc;
}

/* A new dict: a copy of `first` with `second` merged in (either may be
 * the box's, read under its lock). */
static int
merged(struct conc__mgr_box *b, conc_obj *other, int box_first,
       conc_obj **result)
{
    conc_obj *d = conc_obj_dict();
    if (!d)
        return CONC_ENOMEM;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc__mgr_dict_merge(d, box_first ? b->v : other);
    if (rc == 0)
        rc = conc__mgr_dict_merge(d, box_first ? other : b->v);
    conc_lock_release(b->lock);
    if (rc < 0) {
        conc_obj_decref(d);
        return rc;
    }
    *result = d;
    return 0;
}

/* d | other (box_first) or other | d: NotImplemented unless other is a
 * dict, as dict's nb_or answers. */
static int
dict_or(void *self, conc_obj *args, conc_obj *kwds, int box_first,
        conc_obj **result)
{
    int rc =
        conc__mgr_wrapper_args(args, kwds, box_first ? "__or__" : "__ror__", 1);
    if (rc < 0)
        return rc;
    conc_obj *other = conc_obj_seq_get(args, 0);
    if (conc_obj_typeof(other) != CONC_OBJ_DICT) {
        *result = conc_obj_foreign("builtins", "NotImplemented", NULL, NULL, 0);
        return *result ? 0 : CONC_ENOMEM;
    }
    return merged(self, other, box_first, result);
}

int
conc__mgr_dict_or(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    return dict_or(self, args, kwds, 1, result);
}

int
conc__mgr_dict_ror(void *self, conc_obj *args, conc_obj *kwds,
                   conc_obj **result)
{
    return dict_or(self, args, kwds, 0, result);
}

int
conc__mgr_dict_ior(void *self, conc_obj *args, conc_obj *kwds,
                   conc_obj **result)
{
    struct conc__mgr_box *b = self;
    int rc = conc__mgr_wrapper_args(args, kwds, "__ior__", 1);
    conc_obj *copy = rc == 0 ? conc_obj_dict() : NULL;
    if (rc == 0 && !copy)
        rc = CONC_ENOMEM;
    if (rc < 0)
        return rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    rc = conc__mgr_dict_merge(b->v, conc_obj_seq_get(args, 0));
    if (rc == 0)
        rc = conc__mgr_dict_merge(copy, b->v);
    conc_lock_release(b->lock);
    if (rc < 0) {
        conc_obj_decref(copy);
        return rc;
    }
    *result = copy; /* CPython's server pickles the dict it returns */
    return 0;
}

/* dict's complaint about a method that takes no arguments. */
static int
no_args(conc_obj *args, conc_obj *kwds, const char *name)
{
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE, "dict.%s() takes no keyword arguments",
                         name);
    if (conc_obj_len(args) > 0)
        return conc_fail(CONC_ETYPE, "dict.%s() takes no arguments (%zu given)",
                         name, conc_obj_len(args));
    return 0;
}

int
conc__mgr_dict_reversed(void *self, conc_obj *args, conc_obj *kwds,
                        conc_obj **result)
{
    struct conc__mgr_box *b = self;
    int rc = no_args(args, kwds, "__reversed__");
    if (rc < 0)
        return rc;
    conc_obj *keys = NULL, *all = conc_obj_list();
    conc_lock_acquire(b->lock, CONC_FOREVER);
    rc = all ? items_of(b->v, &keys) : CONC_ENOMEM;
    conc_lock_release(b->lock);
    for (size_t n = conc_obj_len(keys); rc == 0 && n > 0; n--)
        rc = conc_obj_list_append(all, conc_obj_seq_get(keys, n - 1));
    conc_obj *call = rc == 0 ? conc_obj_tuple(1) : NULL;
    if (call) { /* iter([...]): dictiter_reduce's form */
        conc_obj_tuple_set_new(call, 0, conc_obj_incref(all));
        *result = conc_obj_foreign("builtins", "iter", call, NULL, 0);
    }
    if (rc == 0 && (!call || !*result))
        rc = CONC_ENOMEM;
    conc_obj_decref(call);
    conc_obj_decref(keys);
    conc_obj_decref(all);
    return rc;
}

/* dict.fromkeys(iterable, value=None): a new dict; the instance's own
 * items play no part. */
int
conc__mgr_dict_fromkeys(void *self, conc_obj *args, conc_obj *kwds,
                        conc_obj **result)
{
    (void)self;
    size_t n = conc_obj_len(args);
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE,
                         "dict.fromkeys() takes no keyword arguments");
    if (n < 1 || n > 2)
        return conc_fail(CONC_ETYPE,
                         "fromkeys expected at %s %d argument%s, "
                         "got %zu",
                         n < 1 ? "least" : "most", n < 1 ? 1 : 2,
                         n < 1 ? "" : "s", n);
    conc_obj *keys = NULL, *value = conc_obj_seq_get(args, 1);
    int rc = items_of(conc_obj_seq_get(args, 0), &keys);
    if (rc == 1)
        return conc_fail(CONC_ETYPE, "'%s' object is not iterable",
                         conc__mgr_pytype(conc_obj_seq_get(args, 0)));
    conc_obj *d = rc == 0 ? conc_obj_dict() : NULL;
    if (rc == 0 && !d)
        rc = CONC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < conc_obj_len(keys); i++)
        rc = set_item(d, conc_obj_seq_get(keys, i),
                      value ? value : conc_obj_none());
    conc_obj_decref(keys);
    if (rc < 0) {
        conc_obj_decref(d);
        return rc;
    }
    *result = d;
    return 0;
}
