/* The "list" typeid's sort(key=None, reverse=False): a stable merge sort
 * by Python's `<`, which is all list.sort uses: numbers (int of any size,
 * float, bool) by value, str by code point, bytes by byte, tuples and
 * lists item by item (the first unequal pair decides, then the length),
 * sets by inclusion; any other pair is CPython's TypeError. A key
 * function cannot be called in conc's server: a key other than None is
 * a TypeError that names the function (wire.c reads a request with one
 * as an inert record for this). As CPython's sort, the comparisons ask
 * whether the later item is less than the earlier one, so a failure
 * names the same pair of types; on a failure the list is left as it
 * was.
 *
 * Lock order: the box's lock only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/list_ops.h"

/* Room for a key function's name in sort's TypeError. */
#define FUNCTION_NAME_MAX 200

/* A number as `<` sees it: an int64_t, a double, or the decimal digits of
 * an int beyond int64_t (its sign apart). */
struct num {
    int is_float, big, negative;
    int64_t i;
    double d;
    conc_buf digits;
};

static int
num_of(const conc_obj *o, struct num *n)
{
    conc_obj_type t = conc_obj_typeof(o);
    memset(n, 0, sizeof *n);
    if (t == CONC_OBJ_FLOAT) {
        n->is_float = 1;
        return conc_obj_float_value(o, &n->d);
    }
    if (conc_obj_int_value(o, &n->i) == 0)
        return 0;
    n->big = 1;
    int rc = conc_obj_repr(o, &n->digits);
    n->negative = rc == 0 && n->digits.data[0] == '-';
    return rc;
}

static int
sign_of(double d)
{
    return d < 0 ? -1 : d > 0;
}

/* int64_t i against double d exactly: -1, 0, 1, or 2 for a NaN. */
static int
cmp_int_float(int64_t i, double d)
{
    const double two63 = 9223372036854775808.0;
    if (isnan(d))
        return 2;
    if (d >= two63)
        return -1;
    if (d < -two63)
        return 1;
    int64_t t = (int64_t)d; /* in range: exact, toward zero */
    if (i != t)
        return i < t ? -1 : 1;
    return -sign_of(d - (double)t);
}

/* Two ints beyond int64_t: by sign, then number of digits, then digits. */
static int
cmp_big(const struct num *a, const struct num *b)
{
    if (a->negative != b->negative)
        return a->negative ? -1 : 1;
    int c =
        a->digits.len != b->digits.len
            ? (a->digits.len < b->digits.len ? -1 : 1)
            : sign_of(memcmp(a->digits.data, b->digits.data, a->digits.len));
    return a->negative ? -c : c;
}

/* An int beyond int64_t against an int64_t or a double. */
static int
cmp_big_other(const struct num *a, const struct num *b)
{
    if (!b->is_float)
        return a->negative ? -1 : 1;
    if (isnan(b->d))
        return 2;
    double d = strtod((const char *)a->digits.data, NULL);
    return d < b->d ? -1 : d > b->d;
}

static int
cmp_num(const struct num *a, const struct num *b)
{
    if (a->big && b->big)
        return cmp_big(a, b);
    if (a->big || b->big) {
        int c = a->big ? cmp_big_other(a, b) : cmp_big_other(b, a);
        return c == 2 || a->big ? c : -c;
    }
    if (a->is_float && b->is_float)
        return isnan(a->d) || isnan(b->d) ? 2 : sign_of(a->d - b->d);
    if (a->is_float) {
        int c = cmp_int_float(b->i, a->d);
        return c == 2 ? c : -c;
    }
    if (b->is_float)
        return cmp_int_float(a->i, b->d);
    return a->i < b->i ? -1 : a->i > b->i;
}

static int
num_lt(const conc_obj *a, const conc_obj *b)
{
    struct num x = {0}, y = {0};
    int rc = num_of(a, &x);
    if (rc == 0)
        rc = num_of(b, &y);
    if (rc == 0)
        rc = cmp_num(&x, &y) == -1;
    conc_buf_free(&x.digits);
    conc_buf_free(&y.digits);
    return rc;
}

/* str or bytes: by bytes (UTF-8 keeps code point order), then length. */
static int
text_lt(const conc_obj *a, const conc_obj *b, int str)
{
    const void *x = str ? (const void *)conc_obj_str_value(a)
                        : (const void *)conc_obj_bytes_value(a);
    const void *y = str ? (const void *)conc_obj_str_value(b)
                        : (const void *)conc_obj_bytes_value(b);
    size_t m = conc_obj_len(a), n = conc_obj_len(b);
    int c = memcmp(x, y, m < n ? m : n);
    return c != 0 ? c < 0 : m < n;
}

static int lt(const conc_obj *a, const conc_obj *b);

/* Tuples or lists: the first pair that is not equal decides. */
static int
seq_lt(const conc_obj *a, const conc_obj *b)
{
    size_t m = conc_obj_len(a), n = conc_obj_len(b);
    for (size_t i = 0; i < m && i < n; i++) {
        conc_obj *x = conc_obj_seq_get(a, i), *y = conc_obj_seq_get(b, i);
        int eq = conc_obj_equal(x, y);
        if (eq < 0)
            return eq;
        if (!eq)
            return lt(x, y);
    }
    return m < n;
}

/* Sets: a proper subset. */
static int
set_lt(const conc_obj *a, const conc_obj *b)
{
    conc_obj *key;
    int rc = 1;
    if (conc_obj_len(a) >= conc_obj_len(b))
        return 0;
    for (size_t pos = 0; rc == 1 && conc_obj_next(a, &pos, &key, NULL) == 1;)
        rc = conc_obj_contains(b, key);
    return rc;
}

static int
is_number(conc_obj_type t)
{
    return t == CONC_OBJ_INT || t == CONC_OBJ_BOOL || t == CONC_OBJ_FLOAT;
}

static int
is_set(conc_obj_type t)
{
    return t == CONC_OBJ_SET || t == CONC_OBJ_FROZENSET;
}

/* Python's a < b: 1, 0, or CONC_ETYPE where CPython raises. */
static int
lt(const conc_obj *a, const conc_obj *b)
{
    conc_obj_type s = conc_obj_typeof(a), t = conc_obj_typeof(b);
    if (is_number(s) && is_number(t))
        return num_lt(a, b);
    if (s == t && (s == CONC_OBJ_STR || s == CONC_OBJ_BYTES))
        return text_lt(a, b, s == CONC_OBJ_STR);
    if (s == t && (s == CONC_OBJ_TUPLE || s == CONC_OBJ_LIST))
        return seq_lt(a, b);
    if (is_set(s) && is_set(t))
        return set_lt(a, b);
    return conc_fail(CONC_ETYPE,
                     "'<' not supported between instances of '%s' and '%s'",
                     conc__mgr_pytype(a), conc__mgr_pytype(b));
}

/* Merges the sorted runs v[lo, mid) and v[mid, hi) through tmp, taking
 * the later run's item first only when it is less (stable). */
static int
merge(conc_obj **v, conc_obj **tmp, size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        int less = lt(v[j], v[i]);
        if (less < 0)
            return less;
        tmp[k++] = less ? v[j++] : v[i++];
    }
    while (i < mid)
        tmp[k++] = v[i++];
    while (j < hi)
        tmp[k++] = v[j++];
    memcpy(v + lo, tmp + lo, (hi - lo) * sizeof *v);
    return 0;
}

/* Bottom-up merge sort of n items. */
static int
merge_sort(conc_obj **v, conc_obj **tmp, size_t n)
{
    int rc = 0;
    for (size_t w = 1; rc == 0 && w < n; w *= 2)
        for (size_t lo = 0; rc == 0 && lo + w < n; lo += 2 * w)
            rc = merge(v, tmp, lo, lo + w, lo + 2 * w < n ? lo + 2 * w : n);
    return rc;
}

static void
flip(conc_obj **v, size_t n)
{
    for (size_t i = 0; n > 0 && i < n - 1 - i; i++) {
        conc_obj *x = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = x;
    }
}

/* Sorts the list in place; unchanged on failure. The caller holds the
 * lock. */
static int
sort_list(conc_obj *list, int reverse)
{
    size_t n = conc_obj_len(list);
    conc_obj **v = calloc(n ? n : 1, sizeof *v);
    conc_obj **tmp = calloc(n ? n : 1, sizeof *tmp);
    int rc = v && tmp ? 0 : CONC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        v[i] = conc_obj_seq_get(list, i);
    if (rc == 0 && reverse) /* as CPython: stable in reverse too */
        flip(v, n);
    if (rc == 0)
        rc = merge_sort(v, tmp, n);
    if (rc == 0 && reverse)
        flip(v, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        conc_obj_incref(v[i]); /* each kept alive until set in place */
    for (size_t i = 0; rc == 0 && i < n; i++)
        conc_obj_list_set_new(list, i, v[i]);
    free(v);
    free(tmp);
    return rc;
}

/* A Python function as it travels, by name: "builtins.len", or
 * "builtins.str.lower" for a method, which pickles as getattr(str,
 * 'lower'). */
static const char *
function_name(const conc_obj *f, char *buf, size_t size)
{
    const char *module = conc_obj_foreign_module(f);
    const char *name = conc_obj_foreign_name(f);
    conc_obj *args = conc_obj_foreign_args(f);
    conc_obj *owner = conc_obj_seq_get(args, 0);
    const char *attr = conc_obj_str_value(conc_obj_seq_get(args, 1));
    if (!strcmp(module, "builtins") && !strcmp(name, "getattr") &&
        conc_obj_foreign_name(owner) && attr && conc_obj_len(args) == 2)
        snprintf(buf, size, "%s.%s.%s", conc_obj_foreign_module(owner),
                 conc_obj_foreign_name(owner), attr);
    else
        snprintf(buf, size, "%s.%s", module, name);
    return buf;
}

/* A key other than None: conc's server cannot call a Python function,
 * and anything else is not callable, as CPython says. */
static int
refuse_key(const conc_obj *key)
{
    char name[FUNCTION_NAME_MAX];
    if (conc_obj_typeof(key) != CONC_OBJ_FOREIGN)
        return conc_fail(CONC_ETYPE, "'%s' object is not callable",
                         conc__mgr_pytype(key));
    return conc_fail(CONC_ETYPE,
                     "sort key functions cannot be called by conc's manager "
                     "server (key=%s); sort a copy in the client instead",
                     function_name(key, name, sizeof name));
}

/* sort's keyword arguments: key must be None, reverse an int. */
static int
sort_args(conc_obj *args, conc_obj *kwds, int *reverse)
{
    conc_obj *k, *v;
    int64_t r = 0;
    if (conc_obj_len(args) > 0)
        return conc_fail(CONC_ETYPE, "sort() takes no positional arguments");
    for (size_t pos = 0; kwds && conc_obj_next(kwds, &pos, &k, &v) == 1;) {
        const char *name = conc_obj_str_value(k);
        conc_obj_type t = conc_obj_typeof(v);
        if (name && !strcmp(name, "key") && t != CONC_OBJ_NONE)
            return refuse_key(v);
        if (name && !strcmp(name, "reverse") &&
            ((t != CONC_OBJ_INT && t != CONC_OBJ_BOOL) ||
             conc_obj_int_value(v, &r) < 0))
            return conc_fail(CONC_ETYPE,
                             "'%s' object cannot be interpreted as an "
                             "integer",
                             conc__mgr_pytype(v));
        if (!name || (strcmp(name, "key") && strcmp(name, "reverse")))
            return conc_fail(CONC_ETYPE,
                             "'%s' is an invalid keyword argument for sort()",
                             name ? name : "?");
    }
    *reverse = r != 0;
    return 0;
}

int
conc__mgr_list_sort(void *self, conc_obj *args, conc_obj *kwds,
                    conc_obj **result)
{
    struct conc__mgr_box *b = self;
    int reverse = 0;
    (void)result;
    int rc = sort_args(args, kwds, &reverse);
    if (rc < 0)
        return rc;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    rc = sort_list(b->v, reverse);
    conc_lock_release(b->lock);
    return rc;
}
