/* The "Array" typeid: multiprocessing.managers.Array(typecode, sequence,
 * lock=True), an array.array in the server, as ArrayProxy reaches it:
 * __len__, __getitem__ (an index, or a slice, which comes back as an
 * array.array) and __setitem__ (an index, or a slice given an array of
 * the same typecode, which may change the length as array.array's
 * does). Items are checked against the typecode as array.array checks
 * them, with its errors (array_codes.c). The items live in a list behind
 * a lock (a conc__mgr_box holding [typecode, items]).
 *
 * Lock order: the box's lock only. */
#include "manager/array_codes.h"
#include "manager/slice.h"

/* The items array.array(typecode, sequence) starts with: a str's
 * characters for 'u' and 'w', the items of bytes or a bytearray in this
 * machine's format (frombytes), any other iterable's items
 * (iterable.c). */
static int
initial_items(const struct conc__mgr_code *c, conc_obj *seq, conc_obj **out)
{
    conc_obj_type t = conc_obj_typeof(seq);
    conc_obj *from = NULL;
    if (t == CONC_OBJ_STR && (c->code == 'u' || c->code == 'w'))
        return conc__mgr_chars(seq, out);
    if (t == CONC_OBJ_STR)
        return conc_fail(CONC_ETYPE,
                         "cannot use a str to initialize an "
                         "array with typecode '%c'",
                         c->code);
    conc_obj *fargs = conc_obj_foreign_args(seq);
    const char *fname = conc_obj_foreign_name(seq);
    int rc;
    if (t == CONC_OBJ_BYTES) /* frombytes, as array.array reads bytes */
        rc = conc__mgr_code_frombytes(c, seq, &from);
    else if (fname && !strcmp(fname, "bytearray") &&
             conc_obj_typeof(conc_obj_seq_get(fargs, 0)) == CONC_OBJ_BYTES)
        rc = conc__mgr_code_frombytes(c, conc_obj_seq_get(fargs, 0), &from);
    else
        rc = conc__mgr_items(seq, &from);
    if (rc < 0)
        return rc;
    conc_obj *items = from ? conc_obj_list() : NULL;
    rc = items ? 0 : CONC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < conc_obj_len(from); i++)
        if ((rc = conc__mgr_code_check(c, conc_obj_seq_get(from, i))) == 0)
            rc = conc_obj_list_append(items, conc_obj_seq_get(from, i));
    conc_obj_decref(from);
    if (rc < 0) {
        conc_obj_decref(items);
        return rc;
    }
    *out = items;
    return 0;
}

/* managers.Array(typecode, sequence, lock=True). */
static const char *const array_params[] = {"typecode", "sequence", "lock",
                                           NULL};
static const struct conc__mgr_sig array_sig = {"Array", 0, array_params, 2};

/* The array: [typecode, items] in a box. */
static int
array_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    int checked = conc__mgr_check_args(&array_sig, args, kwds);
    if (checked < 0)
        return checked;
    conc_obj *tc = conc__mgr_arg(args, kwds, 0, "typecode");
    conc_obj *seq = conc__mgr_arg(args, kwds, 1, "sequence");
    const struct conc__mgr_code *c = conc__mgr_code_find(tc);
    conc_obj *items = NULL, *v = NULL;
    int rc = c ? initial_items(c, seq, &items) : CONC_EVALUE;
    if (rc == 0)
        rc = (v = conc_obj_list()) ? 0 : CONC_ENOMEM;
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

/* An index into n items, negative counting from the end; `what` names
 * the operation in the IndexError ("index", "assignment index"). */
static int
index_of(conc_obj *index, size_t n, const char *what, size_t *i)
{
    int64_t k;
    conc_obj_type t = conc_obj_typeof(index);
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE, "array indices must be integers");
    if (conc_obj_int_value(index, &k) < 0)
        return conc_fail(CONC_EINDEX,
                         "cannot fit 'int' into an index-sized integer");
    if (k < 0)
        k += (int64_t)n;
    if (k < 0 || k >= (int64_t)n)
        return conc_fail(CONC_EINDEX, "array %s out of range", what);
    *i = (size_t)k;
    return 0;
}

/* items[span] of the typecode tc, as array.array(tc, [...]). */
static int
get_slice(conc_obj *tc, conc_obj *items, const struct conc__mgr_span *sp,
          conc_obj **result)
{
    conc_obj *out = conc_obj_list(), *t = conc_obj_tuple(2);
    int rc = out && t ? 0 : CONC_ENOMEM;
    for (int64_t k = 0, i = sp->start; rc == 0 && k < sp->len;
         k++, i += sp->step)
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
array_getitem(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_box *b = self;
    conc_obj *index = conc__mgr_arg(args, kwds, 0, "index");
    size_t i = 0;
    struct conc__mgr_span sp;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    conc_obj *items = items_of(b);
    int64_t n = (int64_t)conc_obj_len(items);
    int rc = conc__mgr_is_slice(index)
                 ? conc__mgr_span_of(index, n, &sp)
                 : index_of(index, (size_t)n, "index", &i);
    if (rc == 0 && conc__mgr_is_slice(index))
        rc = get_slice(conc_obj_seq_get(b->v, 0), items, &sp, result);
    else if (rc == 0)
        *result = conc_obj_incref(conc_obj_seq_get(items, i));
    conc_lock_release(b->lock);
    return rc;
}

/* The items of `value` for a slice assignment to an array of typecode tc:
 * an array of the same typecode, as array.array demands. */
static int
slice_items(const struct conc__mgr_code *c, conc_obj *tc, conc_obj *value,
            conc_obj **out)
{
    conc_obj *vtc = NULL, *items = NULL;
    int rc = conc__mgr_array_of(value, &vtc, &items);
    if (rc == 1)
        return conc_fail(CONC_ETYPE,
                         "can only assign array (not \"%s\") to array slice",
                         conc__mgr_pytype(value));
    if (rc == 0 && !conc_obj_equal(vtc, tc))
        rc = conc_fail(CONC_ETYPE, "bad argument type for built-in operation");
    for (size_t i = 0; rc == 0 && i < conc_obj_len(items); i++)
        rc = conc__mgr_code_check(c, conc_obj_seq_get(items, i));
    if (rc < 0) {
        conc_obj_decref(items);
        return rc;
    }
    *out = items;
    return 0;
}

/* items[span] = from: a step of 1 replaces the span by all of `from`
 * (the length may change), another step needs as many items as it
 * selects. */
static int
set_slice(struct conc__mgr_box *b, const struct conc__mgr_span *sp,
          conc_obj *from)
{
    conc_obj *items = items_of(b);
    int64_t n = (int64_t)conc_obj_len(from);
    if (sp->step != 1 && n != sp->len)
        return conc_fail(CONC_EVALUE,
                         "attempt to assign array of size %lld to extended "
                         "slice of size %lld",
                         (long long)n, (long long)sp->len);
    int rc = 0;
    if (sp->step != 1) {
        for (int64_t k = 0, i = sp->start; rc == 0 && k < n; k++, i += sp->step)
            rc = conc_obj_list_set_new(
                items, (size_t)i, conc_obj_incref(conc_obj_seq_get(from, k)));
        return rc;
    }
    int64_t stop = sp->stop < sp->start ? sp->start : sp->stop;
    size_t len = conc_obj_len(items);
    conc_obj *next = conc_obj_list();
    rc = next ? 0 : CONC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < (size_t)sp->start; i++)
        rc = conc_obj_list_append(next, conc_obj_seq_get(items, i));
    for (size_t i = 0; rc == 0 && i < (size_t)n; i++)
        rc = conc_obj_list_append(next, conc_obj_seq_get(from, i));
    for (size_t i = (size_t)stop; rc == 0 && i < len; i++)
        rc = conc_obj_list_append(next, conc_obj_seq_get(items, i));
    if (rc < 0) {
        conc_obj_decref(next);
        return rc;
    }
    return conc_obj_list_set_new(b->v, 1, next);
}

/* a[index] = item, or a[slice] = array. */
static int
assign(struct conc__mgr_box *b, conc_obj *index, conc_obj *v)
{
    conc_obj *tc = conc_obj_seq_get(b->v, 0), *items = items_of(b);
    const struct conc__mgr_code *c = conc__mgr_code_find(tc);
    if (!c)
        return CONC_EVALUE;
    if (conc__mgr_is_slice(index)) {
        struct conc__mgr_span sp;
        conc_obj *from = NULL;
        int rc = slice_items(c, tc, v, &from); /* first, as array.array */
        if (rc == 0 && (rc = conc__mgr_span_of(
                            index, (int64_t)conc_obj_len(items), &sp)) == 0)
            rc = set_slice(b, &sp, from);
        conc_obj_decref(from);
        return rc;
    }
    size_t i;
    int rc = index_of(index, conc_obj_len(items), "assignment index", &i);
    if (rc == 0)
        rc = conc__mgr_code_check(c, v);
    if (rc == 0)
        rc = conc_obj_list_set_new(items, i, conc_obj_incref(v));
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
    conc_lock_acquire(b->lock, CONC_FOREVER);
    int rc = assign(b, index, v);
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
