/* The "set" typeid of CPython 3.14: a set as SetProxy reaches it (add,
 * discard, remove, pop, clear, copy, update and the other named set
 * methods, the operators and their in-place and reflected forms, the
 * comparisons, __contains__, __len__, and '#GETVALUE'). Results are new
 * sets, copies; the operands of the named methods may be any iterable
 * that travels (iterable.c: set, frozenset, list, tuple, a dict's keys,
 * a str's characters, a range), those of the operators sets or
 * frozensets, as Python's. __iter__ returns what CPython's server sends for it
 * (3.14 exposes __iter__ with no method_to_typeid): the set's iterator pickled
 * by value, builtins.iter(list of the items), which a Python client
 * unpickles into an iterator over a copy. The set lives behind a lock
 * (a conc__mgr_box).
 *
 * Lock order: the box's lock only. */
#include "manager/sync_types.h"

enum op { OP_OR, OP_AND, OP_SUB, OP_XOR };

/* A new set of the items of an iterable that travels (iterable.c); only
 * a set or frozenset for an operator. */
static int
set_of(conc_obj *o, int operator_form, conc_obj **out)
{
    conc_obj_type t = conc_obj_typeof(o);
    if (operator_form && t != CONC_OBJ_SET && t != CONC_OBJ_FROZENSET)
        return conc_fail(CONC_ETYPE,
                         "unsupported operand type(s) for set: "
                         "'set' and '%s'",
                         conc__mgr_pytype(o));
    conc_obj *items = NULL, *s = NULL;
    int rc = conc__mgr_items(o, &items);
    if (rc == 0)
        rc = (s = conc_obj_set()) ? 0 : CONC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < conc_obj_len(items); i++)
        rc = conc_obj_set_add(s, conc_obj_seq_get(items, i));
    conc_obj_decref(items);
    if (rc < 0) {
        conc_obj_decref(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Adds the items of `from` that pass the test (in `other` or not). */
static int
add_if(conc_obj *to, conc_obj *from, conc_obj *other, int want_in)
{
    size_t pos = 0;
    conc_obj *k;
    int rc;
    while ((rc = conc_obj_next(from, &pos, &k, NULL)) == 1) {
        int in = other ? conc_obj_contains(other, k) : 0;
        if (in < 0)
            return in;
        if (in == want_in && (rc = conc_obj_set_add(to, k)) < 0)
            return rc;
    }
    return rc;
}

/* a <op> b for two sets: a new set. */
static int
combine(enum op op, conc_obj *a, conc_obj *b, conc_obj **out)
{
    conc_obj *s = conc_obj_set();
    if (!s)
        return CONC_ENOMEM;
    int rc;
    switch (op) {
    case OP_OR:
        if ((rc = add_if(s, a, NULL, 0)) == 0)
            rc = add_if(s, b, NULL, 0);
        break;
    case OP_AND:
        rc = add_if(s, a, b, 1);
        break;
    case OP_SUB:
        rc = add_if(s, a, b, 0);
        break;
    default:
        if ((rc = add_if(s, a, b, 0)) == 0)
            rc = add_if(s, b, a, 0);
    }
    if (rc < 0) {
        conc_obj_decref(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Folds op over the arguments (the named methods take any number). A
 * new set in *out. */
static int
fold(conc_obj *self_set, enum op op, conc_obj *args, int operator_form,
     int reflected, conc_obj **out)
{
    conc_obj *acc = conc_obj_incref(self_set);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < conc_obj_len(args); i++) {
        conc_obj *other = NULL, *next = NULL;
        rc = set_of(conc_obj_seq_get(args, i), operator_form, &other);
        if (rc == 0)
            rc = reflected ? combine(op, other, acc, &next)
                           : combine(op, acc, other, &next);
        conc_obj_decref(other);
        if (rc == 0) {
            conc_obj_decref(acc);
            acc = next;
        }
    }
    if (rc < 0) {
        conc_obj_decref(acc);
        return rc;
    }
    *out = acc;
    return 0;
}

/* How a method uses fold: its op, whether it replaces the set, returns
 * it, takes only sets (the operators), or puts the argument first. */
enum { REPLACE = 1, RETURN = 2, OPERATOR = 4, REFLECTED = 8, ONE_ARG = 16 };

static int
apply(struct conc__mgr_box *b, enum op op, int how, conc_obj *args,
      conc_obj **result)
{
    if ((how & ONE_ARG) && conc_obj_len(args) != 1)
        return conc_fail(CONC_ETYPE, "the method takes exactly one argument");
    conc_obj *s = NULL;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = fold(b->v, op, args, how & OPERATOR, how & REFLECTED, &s);
    if (rc == 0 && (how & REPLACE)) {
        conc_obj *old = b->v;
        b->v = conc_obj_incref(s);
        conc_obj_decref(old);
    }
    conc_lock_release(b->lock);
    if (rc == 0 && (how & RETURN))
        *result = s;
    else
        conc_obj_decref(s);
    return rc;
}

#define SET_OP(fn, op, how)                                                    \
    static int fn(void *self, conc_obj *args, conc_obj *kwds,                  \
                  conc_obj **result)                                           \
    {                                                                          \
        (void)kwds;                                                            \
        return apply(self, op, how, args, result);                             \
    }

SET_OP(s_union, OP_OR, RETURN)
SET_OP(s_update, OP_OR, REPLACE)
SET_OP(s_intersection, OP_AND, RETURN)
SET_OP(s_intersection_update, OP_AND, REPLACE)
SET_OP(s_difference, OP_SUB, RETURN)
SET_OP(s_difference_update, OP_SUB, REPLACE)
SET_OP(s_symmetric_difference, OP_XOR, RETURN | ONE_ARG)
SET_OP(s_symmetric_difference_update, OP_XOR, REPLACE | ONE_ARG)
SET_OP(s_or, OP_OR, RETURN | OPERATOR | ONE_ARG)
SET_OP(s_and, OP_AND, RETURN | OPERATOR | ONE_ARG)
SET_OP(s_sub, OP_SUB, RETURN | OPERATOR | ONE_ARG)
SET_OP(s_xor, OP_XOR, RETURN | OPERATOR | ONE_ARG)
SET_OP(s_ror, OP_OR, RETURN | OPERATOR | ONE_ARG | REFLECTED)
SET_OP(s_rand, OP_AND, RETURN | OPERATOR | ONE_ARG | REFLECTED)
SET_OP(s_rsub, OP_SUB, RETURN | OPERATOR | ONE_ARG | REFLECTED)
SET_OP(s_rxor, OP_XOR, RETURN | OPERATOR | ONE_ARG | REFLECTED)
SET_OP(s_ior, OP_OR, RETURN | REPLACE | OPERATOR | ONE_ARG)
SET_OP(s_iand, OP_AND, RETURN | REPLACE | OPERATOR | ONE_ARG)
SET_OP(s_isub, OP_SUB, RETURN | REPLACE | OPERATOR | ONE_ARG)
SET_OP(s_ixor, OP_XOR, RETURN | REPLACE | OPERATOR | ONE_ARG)

static int
set_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    (void)kwds;
    conc_obj *from = conc_obj_seq_get(args, 0), *s = NULL;
    int rc = from                   ? set_of(from, 0, &s)
             : (s = conc_obj_set()) ? 0
                                    : CONC_ENOMEM;
    return rc < 0 ? rc : conc__mgr_box_new(s, self);
}

/* Counts a's items in b: the subset tests. */
static int
count_in(conc_obj *a, conc_obj *b, size_t *n)
{
    size_t pos = 0;
    conc_obj *k;
    int rc;
    *n = 0;
    while ((rc = conc_obj_next(a, &pos, &k, NULL)) == 1) {
        int in = conc_obj_contains(b, k);
        if (in < 0)
            return in;
        *n += (size_t)in;
    }
    return rc;
}

/* Comparisons and is*: which = 'l' (self <= o), 'L' (<), 'g' (>=), 'G'
 * (>), 'd' (isdisjoint). */
static int
compare(struct conc__mgr_box *b, conc_obj *args, int operator_form, char which,
        conc_obj **result)
{
    conc_obj *o = NULL;
    if (conc_obj_len(args) != 1)
        return conc_fail(CONC_ETYPE, "the method takes exactly one argument");
    int rc = set_of(conc_obj_seq_get(args, 0), operator_form, &o);
    if (rc < 0)
        return rc;
    size_t in_o = 0, in_self = 0;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    size_t n_self = conc_obj_len(b->v), n_o = conc_obj_len(o);
    if ((rc = count_in(b->v, o, &in_o)) == 0)
        rc = count_in(o, b->v, &in_self);
    conc_lock_release(b->lock);
    conc_obj_decref(o);
    if (rc < 0)
        return rc;
    int v = which == 'l'   ? in_o == n_self
            : which == 'L' ? in_o == n_self && n_self < n_o
            : which == 'g' ? in_self == n_o
            : which == 'G' ? in_self == n_o && n_o < n_self
                           : in_o == 0;
    return conc__mgr_bool(v, result);
}

#define SET_CMP(fn, operator_form, which)                                      \
    static int fn(void *self, conc_obj *args, conc_obj *kwds,                  \
                  conc_obj **result)                                           \
    {                                                                          \
        (void)kwds;                                                            \
        return compare(self, args, operator_form, which, result);              \
    }

SET_CMP(s_le, 1, 'l')
SET_CMP(s_lt, 1, 'L')
SET_CMP(s_ge, 1, 'g')
SET_CMP(s_gt, 1, 'G')
SET_CMP(s_issubset, 0, 'l')
SET_CMP(s_issuperset, 0, 'g')
SET_CMP(s_isdisjoint, 0, 'd')

static int
s_len(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct conc__mgr_box *b = self;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    size_t n = conc_obj_len(b->v);
    conc_lock_release(b->lock);
    *result = conc_obj_int((int64_t)n);
    return *result ? 0 : CONC_ENOMEM;
}

static int
s_contains(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *item = conc__mgr_arg(args, kwds, 0, "item");
    if (!item)
        return conc_fail(CONC_ETYPE, "__contains__ needs an item");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int in = conc_obj_contains(b->v, item);
    conc_lock_release(b->lock);
    return in < 0 ? in : conc__mgr_bool(in, result);
}

static int
s_add(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    struct conc__mgr_box *b = self;
    conc_obj *item = conc__mgr_arg(args, kwds, 0, "item");
    if (!item)
        return conc_fail(CONC_ETYPE, "add() needs an item");
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = conc_obj_set_add(b->v, item);
    conc_lock_release(b->lock);
    return rc;
}

/* The set without `item` (KeyError when absent and `must`), or the set
 * without an arbitrary item, returned (pop: `item` NULL). */
static int
take(struct conc__mgr_box *b, conc_obj *item, int must, conc_obj **result)
{
    conc_obj *s = conc_obj_set(), *k, *found = NULL;
    if (!s)
        return CONC_ENOMEM;
    size_t pos = 0;
    int rc, eq;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    while ((rc = conc_obj_next(b->v, &pos, &k, NULL)) == 1) {
        eq = found ? 0 : item ? conc_obj_equal(k, item) : 1;
        if (eq == 1)
            found = k;
        else if ((rc = eq < 0 ? eq : conc_obj_set_add(s, k)) < 0)
            break;
    }
    if (rc == 0 && found) {
        if (!item)
            *result = conc_obj_incref(found);
        conc_obj *old = b->v;
        b->v = s;
        s = old;
    }
    conc_lock_release(b->lock);
    conc_obj_decref(s);
    if (rc == 0 && !found && !item)
        return conc_fail(CONC_EKEY, "pop from an empty set");
    if (rc == 0 && !found && must)
        *result = conc__mgr_args1(item);
    return rc == 0 && !found && must ? CONC_EKEY : rc;
}

static int
s_discard(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    conc_obj *item = conc__mgr_arg(args, kwds, 0, "item");
    return item ? take(self, item, 0, result)
                : conc_fail(CONC_ETYPE, "discard() needs an item");
}

static int
s_remove(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    conc_obj *item = conc__mgr_arg(args, kwds, 0, "item");
    return item ? take(self, item, 1, result)
                : conc_fail(CONC_ETYPE, "remove() needs an item");
}

static int
s_pop(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    return take(self, NULL, 0, result);
}

static int
s_clear(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct conc__mgr_box *b = self;
    conc_obj *s = conc_obj_set();
    if (!s)
        return CONC_ENOMEM;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    conc_obj *old = b->v;
    b->v = s;
    conc_lock_release(b->lock);
    conc_obj_decref(old);
    return 0;
}

/* __iter__: an iterator over a copy, as CPython pickles a set's
 * iterator (iter, ([items],)). */
static int
s_iter(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct conc__mgr_box *b = self;
    conc_obj *items = conc_obj_list(), *call = conc_obj_tuple(1), *k;
    int rc = items && call ? 0 : CONC_ENOMEM;
    size_t pos = 0;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    while (rc == 0 && (rc = conc_obj_next(b->v, &pos, &k, NULL)) == 1)
        rc = conc_obj_list_append(items, k);
    conc_lock_release(b->lock);
    if (rc == 0) {
        conc_obj_tuple_set_new(call, 0, conc_obj_incref(items));
        *result = conc_obj_foreign("builtins", "iter", call, NULL, 0);
        rc = *result ? 0 : CONC_ENOMEM;
    }
    conc_obj_decref(items);
    conc_obj_decref(call);
    return rc;
}

/* copy() and '#GETVALUE': a new set. */
static int
s_copy(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    return apply(self, OP_OR, RETURN, NULL, result);
}

/* _BaseSetProxy's exposed names (CPython 3.14), and the copy. */
static const conc_manager_method set_methods[] = {
    {"__and__", s_and},
    {"__contains__", s_contains},
    {"__iand__", s_iand},
    {"__ior__", s_ior},
    {"__isub__", s_isub},
    {"__iter__", s_iter},
    {"__ixor__", s_ixor},
    {"__len__", s_len},
    {"__or__", s_or},
    {"__rand__", s_rand},
    {"__ror__", s_ror},
    {"__rsub__", s_rsub},
    {"__rxor__", s_rxor},
    {"__sub__", s_sub},
    {"__xor__", s_xor},
    {"__ge__", s_ge},
    {"__gt__", s_gt},
    {"__le__", s_le},
    {"__lt__", s_lt},
    {"add", s_add},
    {"clear", s_clear},
    {"copy", s_copy},
    {"difference", s_difference},
    {"difference_update", s_difference_update},
    {"discard", s_discard},
    {"intersection", s_intersection},
    {"intersection_update", s_intersection_update},
    {"isdisjoint", s_isdisjoint},
    {"issubset", s_issubset},
    {"issuperset", s_issuperset},
    {"pop", s_pop},
    {"remove", s_remove},
    {"symmetric_difference", s_symmetric_difference},
    {"symmetric_difference_update", s_symmetric_difference_update},
    {"union", s_union},
    {"update", s_update},
    {"#GETVALUE", s_copy},
};

static const conc_manager_type set_type = {
    .create = set_create,
    .release = conc__mgr_box_free,
    .methods = set_methods,
    .n_methods = sizeof set_methods / sizeof set_methods[0],
};

const conc_manager_type *
conc_manager_set_type(void)
{
    return &set_type;
}
