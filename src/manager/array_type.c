/* The "Array" typeid: multiprocessing.managers.Array(typecode, sequence,
 * lock=True), an array.array in the server, as ArrayProxy reaches it:
 * __len__, __getitem__ (an index, or a slice, which comes back as an
 * array.array) and __setitem__ of one index. Items are checked against
 * the typecode as array.array checks them (TypeError, OverflowError).
 * The items live in a list behind a lock (a conc__mgr_box).
 *
 * Lock order: the box's lock only. */
#include <math.h>

#include "manager/sync_types.h"

/* A typecode's range of ints; floats for 'f' and 'd', one character for
 * 'u' and 'w' (min and max unused). */
static const struct {
    char code;
    int64_t min, max;
    const char *name;
} codes[] = {
    {'b', INT8_MIN, INT8_MAX, "signed char"},
    {'B', 0, UINT8_MAX, "unsigned byte integer"},
    {'h', INT16_MIN, INT16_MAX, "signed short integer"},
    {'H', 0, UINT16_MAX, "unsigned short"},
    {'i', INT32_MIN, INT32_MAX, "signed integer"},
    {'I', 0, UINT32_MAX, "unsigned int"},
    {'l', INT64_MIN, INT64_MAX, "signed long integer"},
    {'L', 0, INT64_MAX, "unsigned long"},
    {'q', INT64_MIN, INT64_MAX, "signed long long integer"},
    {'Q', 0, INT64_MAX, "unsigned long long"},
    {'f', 0, 0, NULL},
    {'d', 0, 0, NULL},
    {'u', 0, 0, NULL},
    {'w', 0, 0, NULL},
};

#define N_CODES (sizeof codes / sizeof codes[0])

static int
find_code(conc_obj *typecode)
{
    const char *tc = conc_obj_str_value(typecode);
    for (size_t i = 0; tc && strlen(tc) == 1 && i < N_CODES; i++)
        if (codes[i].code == tc[0])
            return (int)i;
    return conc_fail(CONC_EVALUE, "bad typecode (must be b, B, u, h, H, i, "
                                  "I, l, L, q, Q, f or d)");
}

/* Checks `item` for typecode number c, as array.array's setitem. */
static int
check_item(int c, conc_obj *item)
{
    conc_obj_type t = conc_obj_typeof(item);
    if (codes[c].code == 'u' || codes[c].code == 'w') {
        const char *s = conc_obj_str_value(item);
        size_t chars = 0;
        for (const char *p = s; p && *p; p++)
            chars += (*p & 0xc0) != 0x80; /* not a continuation byte */
        if (chars == 1)
            return 0;
        return conc_fail(CONC_ETYPE, "array item must be a unicode character");
    }
    if (codes[c].code == 'f' || codes[c].code == 'd') {
        double v;
        if (t == CONC_OBJ_BOOL || conc_obj_float_value(item, &v) < 0)
            return conc_fail(CONC_ETYPE, "must be real number");
        return 0;
    }
    int64_t v;
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE, "object cannot be interpreted as an "
                                     "integer");
    if (conc_obj_int_value(item, &v) < 0 || v < codes[c].min ||
        v > codes[c].max)
        return conc_fail(CONC_EOVERFLOW, "%s is out of range", codes[c].name);
    return 0;
}

/* The array: [typecode, items] in a box. */
static int
array_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    conc_obj *tc = conc__mgr_arg(args, kwds, 0, "typecode");
    conc_obj *seq = conc__mgr_arg(args, kwds, 1, "sequence");
    int c = find_code(tc);
    if (c < 0)
        return c;
    conc_obj_type t = conc_obj_typeof(seq);
    if (seq && t != CONC_OBJ_LIST && t != CONC_OBJ_TUPLE)
        return conc_fail(CONC_ETYPE, "the sequence must be a list or tuple");
    conc_obj *items = conc_obj_list(), *v = conc_obj_list();
    int rc = items && v ? 0 : CONC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < conc_obj_len(seq); i++)
        if ((rc = check_item(c, conc_obj_seq_get(seq, i))) == 0)
            rc = conc_obj_list_append(items, conc_obj_seq_get(seq, i));
    if (rc == 0 && (rc = conc_obj_list_append(v, tc)) == 0)
        rc = conc_obj_list_append(v, items);
    conc_obj_decref(items);
    if (rc < 0) {
        conc_obj_decref(v);
        return rc;
    }
    return conc__mgr_box_new(v, self);
}

static conc_obj *
items_of(struct conc__mgr_box *b)
{
    return conc_obj_seq_get(b->v, 1);
}

static int
array_len(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct conc__mgr_box *b = self;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    size_t n = conc_obj_len(items_of(b));
    conc_lock_release(b->lock);
    *result = conc_obj_int((int64_t)n);
    return *result ? 0 : CONC_ENOMEM;
}

/* An index into n items, negative counting from the end. */
static int
index_of(conc_obj *index, size_t n, size_t *i)
{
    int64_t k;
    conc_obj_type t = conc_obj_typeof(index);
    if ((t != CONC_OBJ_INT && t != CONC_OBJ_BOOL) ||
        conc_obj_int_value(index, &k) < 0)
        return conc_fail(CONC_ETYPE, "array indices must be integers");
    if (k < 0)
        k += (int64_t)n;
    if (k < 0 || k >= (int64_t)n)
        return conc_fail(CONC_EINDEX, "array index out of range");
    *i = (size_t)k;
    return 0;
}

/* One bound of a slice (None: the default), clipped as slice.indices. */
static int
bound(conc_obj *o, int64_t n, int64_t step, int64_t dflt, int64_t *out)
{
    if (!o || conc_obj_typeof(o) == CONC_OBJ_NONE) {
        *out = dflt;
        return 0;
    }
    if (conc_obj_int_value(o, out) < 0)
        return conc_fail(CONC_ETYPE, "slice indices must be integers");
    if (*out < 0)
        *out += n;
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    *out = *out < lo ? lo : *out > hi ? hi : *out;
    return 0;
}

/* items[start:stop:step] of a builtins.slice record, as array.array. */
static int
get_slice(conc_obj *tc, conc_obj *items, conc_obj *sl, conc_obj **result)
{
    conc_obj *a = conc_obj_foreign_args(sl);
    int64_t n = (int64_t)conc_obj_len(items), step = 1, start, stop;
    conc_obj *st = conc_obj_seq_get(a, 2);
    if (st && conc_obj_typeof(st) != CONC_OBJ_NONE &&
        conc_obj_int_value(st, &step) < 0)
        return conc_fail(CONC_ETYPE, "slice indices must be integers");
    if (step == 0)
        return conc_fail(CONC_EVALUE, "slice step cannot be zero");
    int rc =
        bound(conc_obj_seq_get(a, 0), n, step, step < 0 ? n - 1 : 0, &start);
    if (rc == 0)
        rc = bound(conc_obj_seq_get(a, 1), n, step, step < 0 ? -1 : n, &stop);
    conc_obj *out = conc_obj_list(), *t = conc_obj_tuple(2);
    rc = rc < 0 ? rc : out && t ? 0 : CONC_ENOMEM;
    for (int64_t i = start; rc == 0 && (step > 0 ? i < stop : i > stop);
         i += step)
        rc = conc_obj_list_append(out, conc_obj_seq_get(items, (size_t)i));
    if (rc == 0) {
        conc_obj_tuple_set_new(t, 0, conc_obj_incref(tc));
        conc_obj_tuple_set_new(t, 1, conc_obj_incref(out));
        *result = conc_obj_foreign("array", "array", t, NULL, 0);
        rc = *result ? 0 : CONC_ENOMEM;
    }
    conc_obj_decref(out);
    conc_obj_decref(t);
    return rc;
}

static int
is_slice(conc_obj *o)
{
    const char *m = conc_obj_foreign_module(o), *n = conc_obj_foreign_name(o);
    return m && n && !strcmp(m, "builtins") && !strcmp(n, "slice");
}

static int
array_getitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *index = conc__mgr_arg(args, kwds, 0, "index");
    size_t i = 0;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    conc_obj *items = items_of(b);
    int rc = is_slice(index)
                 ? get_slice(conc_obj_seq_get(b->v, 0), items, index, result)
                 : index_of(index, conc_obj_len(items), &i);
    if (rc == 0 && !is_slice(index))
        *result = conc_obj_incref(conc_obj_seq_get(items, i));
    conc_lock_release(b->lock);
    return rc;
}

static int
array_setitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    struct conc__mgr_box *b = self;
    conc_obj *index = conc__mgr_arg(args, kwds, 0, "index");
    conc_obj *v = conc__mgr_arg(args, kwds, 1, "value");
    if (!v)
        return conc_fail(CONC_ETYPE, "__setitem__ needs an index and a value");
    size_t i;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    conc_obj *items = items_of(b);
    int rc = find_code(conc_obj_seq_get(b->v, 0));
    if (rc >= 0)
        rc = check_item(rc, v);
    if (rc >= 0)
        rc = index_of(index, conc_obj_len(items), &i);
    if (rc >= 0)
        rc = conc_obj_list_set_new(items, i, conc_obj_incref(v));
    conc_lock_release(b->lock);
    return rc < 0 ? rc : 0;
}

/* ArrayProxy's exposed names. */
static const conc_manager_method array_methods[] = {
    {"__len__", array_len},
    {"__getitem__", array_getitem},
    {"__setitem__", array_setitem},
};

static const conc_manager_type array_type = {
    .create = array_create,
    .release = conc__mgr_box_free,
    .methods = array_methods,
    .n_methods = sizeof array_methods / sizeof array_methods[0],
};

const conc_manager_type *
conc_manager_array_type(void)
{
    return &array_type;
}
