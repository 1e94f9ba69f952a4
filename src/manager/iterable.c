/* The items a Python iterable gives, for the methods that take "any
 * iterable" (list's extend and __iadd__, list(iterable), a slice's new
 * items, set's update and named operations, array.array's initial
 * items, dict's pairs): every iterable that can arrive by value. A list or
 * tuple gives its items, a str its characters, bytes and bytearray their ints,
 * a dict its keys, a set or frozenset its members, a range its ints and
 * an array.array its items; anything else is CPython's TypeError.
 *
 * A range arrives as builtins.range(start, stop, step), a few bytes that
 * may stand for billions of items: it is expanded here, up to
 * MAX_RANGE_ITEMS, beyond which it is a MemoryError rather than a server
 * thread appending for minutes.
 *
 * No locks: pure functions of their arguments. */
#include "manager/array_codes.h"

#define MAX_RANGE_ITEMS ((int64_t)1 << 27)

/* A set's, frozenset's or dict's keys, as a new list. */
static int
keys_of(conc_obj *o, conc_obj **out)
{
    conc_obj *l = conc_obj_list(), *key;
    int rc = l ? 0 : CONC_ENOMEM;
    for (size_t pos = 0; rc == 0 && conc_obj_next(o, &pos, &key, NULL) == 1;)
        rc = conc_obj_list_append(l, key);
    if (rc < 0) {
        conc_obj_decref(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* The number of ints range(start, stop, step) gives. */
static int64_t
range_len(int64_t start, int64_t stop, int64_t step)
{
    /* In unsigned arithmetic: stop - start may not fit int64_t. */
    if (step > 0 && start < stop)
        return (int64_t)(((uint64_t)stop - (uint64_t)start - 1) /
                             (uint64_t)step +
                         1);
    if (step < 0 && start > stop)
        return (int64_t)(((uint64_t)start - (uint64_t)stop - 1) /
                             (0 - (uint64_t)step) +
                         1);
    return 0;
}

/* builtins.range(start, stop, step) as pickled, as a new list. */
static int
range_items(conc_obj *args, conc_obj **out)
{
    int64_t v[3] = {0, 0, 1};
    size_t n = conc_obj_len(args);
    if (n != 3)
        return conc_fail(CONC_EVALUE, "a range pickled with %zu arguments", n);
    for (size_t i = 0; i < n; i++)
        if (conc_obj_int_value(conc_obj_seq_get(args, i), &v[i]) < 0)
            return conc_fail(CONC_EOVERFLOW,
                             "a range beyond 64-bit ints is too long to "
                             "expand");
    if (v[2] == 0)
        return conc_fail(CONC_EVALUE, "range() arg 3 must not be zero");
    int64_t len = range_len(v[0], v[1], v[2]);
    if (len > MAX_RANGE_ITEMS)
        return conc_fail(CONC_ENOMEM,
                         "a range of %lld items is too long to "
                         "expand in conc's manager server",
                         (long long)len);
    conc_obj *l = conc_obj_list();
    int rc = l ? 0 : CONC_ENOMEM;
    for (int64_t k = 0; rc == 0 && k < len; k++) {
        conc_obj *i = conc_obj_int(v[0] + k * v[2]);
        rc = i ? conc_obj_list_append_new(l, i) : CONC_ENOMEM;
    }
    if (rc < 0) {
        conc_obj_decref(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* A foreign record that is an iterable by value: a bytearray, a range or
 * an array.array. 1 for another. */
static int
foreign_items(conc_obj *o, conc_obj **out)
{
    const char *m = conc_obj_foreign_module(o), *n = conc_obj_foreign_name(o);
    conc_obj *args = conc_obj_foreign_args(o), *tc;
    if (!strcmp(m, "builtins") && !strcmp(n, "bytearray") && args) {
        conc_obj *b = conc_obj_seq_get(args, 0);
        if (conc_obj_len(args) == 0)
            return (*out = conc_obj_list()) ? 0 : CONC_ENOMEM;
        return conc_obj_typeof(b) == CONC_OBJ_BYTES ? conc__mgr_chars(b, out)
                                                    : 1;
    }
    if (!strcmp(m, "builtins") && !strcmp(n, "range") && args)
        return range_items(args, out);
    return conc__mgr_array_of(o, &tc, out);
}

int
conc__mgr_items(conc_obj *o, conc_obj **out)
{
    int rc = 1;
    switch (conc_obj_typeof(o)) {
    case CONC_OBJ_LIST:
    case CONC_OBJ_TUPLE:
        *out = conc_obj_incref(o);
        return 0;
    case CONC_OBJ_STR:
    case CONC_OBJ_BYTES:
        return conc__mgr_chars(o, out);
    case CONC_OBJ_DICT:
    case CONC_OBJ_SET:
    case CONC_OBJ_FROZENSET:
        return keys_of(o, out);
    case CONC_OBJ_FOREIGN:
        rc = foreign_items(o, out);
        break;
    default:
        break;
    }
    if (rc == 1)
        return conc_fail(CONC_ETYPE, "'%s' object is not iterable",
                         conc__mgr_pytype(o));
    return rc;
}
