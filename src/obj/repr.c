/* Python's repr of values, byte for byte.
 *
 * Floats: Python prints the shortest decimal string that reads back as the
 * same double (David Gay's dtoa, mode 0). conc finds it the way several C
 * libraries do (jansson, Redis): the first precision p from 1
 * to 17 at which printf's correctly rounded "%.{p-1}e" reads back equal.
 * That is the shortest, except at a power of two, where the gap below the
 * value is half the gap above: there the nearest p-digit string may miss
 * while the next one up, farther but inside the wider gap, reads back; so
 * at a power of two the next string up is tried too. Python then writes
 * the digits in fixed notation when the decimal point falls between 4
 * places left of the first digit and 16 right of it, and in exponent
 * notation otherwise ('1e+16', '1e-05').
 *
 * str: Python picks single quotes unless the text holds a single quote and
 * no double quote, escapes \\, the quote, \t, \n, \r, and every character
 * str.isprintable() refuses (\xNN, \uNNNN or \UNNNNNNNN); printable.h
 * holds those ranges above U+00FF, generated from Python. bytes: the same
 * quotes, and \xNN for anything outside printable ASCII. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj/obj_internal.h"
#include "obj/printable.h"

/* Digits of a double: 17 significant ones always suffice. */
#define DBL_MAX_DIGITS 17
/* Python's repr switches to exponent notation outside this window of the
 * decimal point's position (format_float_short, 'r' mode). */
#define FIXED_MIN_DECPT (-3)
#define FIXED_MAX_DECPT 16

/* ---- Floats -------------------------------------------------------------- */

/* Splits printf's "%.Ne" text into its digits and returns its exponent. */
static int
split_exp(const char *s, char *digits, size_t *n)
{
    *n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[(*n)++] = *s;
    return atoi(s + 1);
}

/* The p-digit string after digits[0..n) (one unit up in the last place),
 * read back as a double: whether it equals v. */
static bool
next_up_reads_back(double v, char *digits, size_t n, int *exp)
{
    char up[DBL_MAX_DIGITS + 2], text[64];
    memcpy(up, digits, n);
    size_t i = n;
    while (i > 0 && up[i - 1] == '9')
        up[--i] = '0';
    int e = *exp;
    if (i == 0) {
        up[0] = '1'; /* 99..9 + 1 = 100..0: one more in the exponent */
        e++;
    } else {
        up[i - 1]++;
    }
    snprintf(text, sizeof text, "%c.%.*se%d", up[0], (int)n - 1, up + 1, e);
    if (strtod(text, NULL) != v)
        return false;
    memcpy(digits, up, n);
    *exp = e;
    return true;
}

/* The shortest digits of |v| > 0 that read back as v; returns the decimal
 * exponent of the first digit. */
static int
shortest_digits(double v, char *digits, size_t *n)
{
    char text[64];
    int m;
    bool pow2 = frexp(v, &m) == 0.5;
    for (int p = 1; p <= DBL_MAX_DIGITS; p++) {
        snprintf(text, sizeof text, "%.*e", p - 1, v);
        int exp = split_exp(text, digits, n);
        if (strtod(text, NULL) == v)
            return exp;
        if (pow2 && strtod(text, NULL) < v &&
            next_up_reads_back(v, digits, *n, &exp))
            return exp;
    }
    return 0; /* not reached: 17 digits always read back */
}

int
conc__float_repr(double v, conc_buf *b)
{
    if (isnan(v))
        return conc_buf_appendf(b, "nan");
    if (isinf(v))
        return conc_buf_appendf(b, v > 0 ? "inf" : "-inf");
    char digits[DBL_MAX_DIGITS + 2];
    size_t n = 1;
    int decpt = 1;
    digits[0] = '0';
    if (v != 0)
        decpt = shortest_digits(fabs(v), digits, &n) + 1;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    const char *sign = signbit(v) ? "-" : "";
    if (decpt < FIXED_MIN_DECPT || decpt > FIXED_MAX_DECPT) {
        int e = decpt - 1;
        return conc_buf_appendf(b, "%s%c%s%.*se%c%02d", sign, digits[0],
                                n > 1 ? "." : "", (int)n - 1, digits + 1,
                                e < 0 ? '-' : '+', abs(e));
    }
    int r = conc_buf_appendf(b, "%s", sign);
    if (!r && decpt <= 0)
        r = conc_buf_appendf(b, "0.");
    for (int z = decpt; !r && z < 0; z++)
        r = conc_buf_append(b, "0", 1);
    if (r || decpt <= 0)
        return r ? r : conc_buf_appendf(b, "%s", digits);
    if ((size_t)decpt < n)
        return conc_buf_appendf(b, "%.*s.%s", decpt, digits, digits + decpt);
    r = conc_buf_appendf(b, "%s", digits);
    for (size_t z = n; !r && z < (size_t)decpt; z++)
        r = conc_buf_append(b, "0", 1);
    return r ? r : conc_buf_appendf(b, ".0");
}

/* ---- str and bytes ------------------------------------------------------- */

static bool
printable(uint32_t cp)
{
    if (cp < 0x100)
        return (cp >= 0x20 && cp < 0x7f) || (cp > 0xa0 && cp != 0xad);
    size_t lo = 0, hi = sizeof conc__nonprintable / sizeof *conc__nonprintable;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < conc__nonprintable[mid][0])
            hi = mid;
        else if (cp > conc__nonprintable[mid][1])
            lo = mid + 1;
        else
            return false;
    }
    return true;
}

/* Python's choice of quote for text holding these bytes. */
static char
pick_quote(const char *s, size_t len)
{
    return memchr(s, '\'', len) && !memchr(s, '"', len) ? '"' : '\'';
}

/* Appends the escape of a special character, or returns 1 if it has
 * none. */
static int
append_special(conc_buf *b, uint32_t c, char quote)
{
    switch (c) {
    case '\t':
        return conc_buf_append(b, "\\t", 2);
    case '\n':
        return conc_buf_append(b, "\\n", 2);
    case '\r':
        return conc_buf_append(b, "\\r", 2);
    case '\\':
        return conc_buf_append(b, "\\\\", 2);
    default:
        if (c == (uint32_t)quote)
            return conc_buf_appendf(b, "\\%c", quote);
        return 1;
    }
}

static int
str_repr(const struct conc__str *s, conc_buf *b)
{
    char quote = pick_quote(s->data, s->len);
    int r = conc_buf_append(b, &quote, 1);
    const uint8_t *p = (const uint8_t *)s->data, *end = p + s->len;
    while (!r && p < end) {
        uint32_t cp;
        size_t k = conc__utf8_decode(p, &cp);
        r = append_special(b, cp, quote);
        if (r == 1) {
            if (printable(cp))
                r = conc_buf_append(b, p, k);
            else if (cp < 0x100)
                r = conc_buf_appendf(b, "\\x%02x", cp);
            else if (cp < 0x10000)
                r = conc_buf_appendf(b, "\\u%04x", cp);
            else
                r = conc_buf_appendf(b, "\\U%08x", cp);
        }
        p += k;
    }
    return r ? r : conc_buf_append(b, &quote, 1);
}

static int
bytes_repr(const struct conc__str *s, conc_buf *b)
{
    char quote = pick_quote(s->data, s->len);
    int r = conc_buf_appendf(b, "b%c", quote);
    for (size_t i = 0; !r && i < s->len; i++) {
        uint8_t c = (uint8_t)s->data[i];
        r = append_special(b, c, quote);
        if (r == 1)
            r = c >= 0x20 && c < 0x7f ? conc_buf_append(b, &c, 1)
                                      : conc_buf_appendf(b, "\\x%02x", c);
    }
    return r ? r : conc_buf_append(b, &quote, 1);
}

/* ---- Containers ---------------------------------------------------------- */

static int repr(const conc_obj *o, conc_buf *b, int depth);

static int
seq_repr(const struct conc__seq *s, const char *open, const char *close,
         conc_buf *b, int depth)
{
    int r = conc_buf_appendf(b, "%s", open);
    for (size_t i = 0; !r && i < s->len; i++) {
        if (i)
            r = conc_buf_append(b, ", ", 2);
        if (!r)
            r = repr(s->items[i], b, depth - 1);
    }
    return r ? r : conc_buf_appendf(b, "%s", close);
}

static int
table_repr(const conc_obj *o, conc_buf *b, int depth)
{
    bool dict = o->type == CONC_OBJ_DICT, fs = o->type == CONC_OBJ_FROZENSET;
    if (!dict && conc_obj_len(o) == 0)
        return conc_buf_appendf(b, fs ? "frozenset()" : "set()");
    int r = conc_buf_appendf(b, fs ? "frozenset({" : "{");
    size_t pos = 0, i = 0;
    conc_obj *k, *v;
    while (!r && conc_obj_next(o, &pos, &k, &v) == 1) {
        if (i++)
            r = conc_buf_append(b, ", ", 2);
        if (!r)
            r = repr(k, b, depth - 1);
        if (!r && dict)
            r = conc_buf_append(b, ": ", 2);
        if (!r && dict)
            r = repr(v, b, depth - 1);
    }
    return r ? r : conc_buf_appendf(b, fs ? "})" : "}");
}

/* "label=repr, ..." (or bare reprs where label is NULL), closing with
 * ")". */
static int
fields_repr(conc_buf *b, const char *const *labels, conc_obj *const *vals,
            size_t n, int depth)
{
    int r = 0;
    for (size_t i = 0; !r && i < n; i++) {
        if (i)
            r = conc_buf_append(b, ", ", 2);
        if (!r && labels && labels[i])
            r = conc_buf_appendf(b, "%s=", labels[i]);
        if (!r)
            r = repr(vals[i], b, depth - 1);
    }
    return r ? r : conc_buf_append(b, ")", 1);
}

static int
compare_text(const void *a, const void *b)
{
    const conc_buf *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Namespace's own repr: its public attributes as name=repr, sorted as
 * those strings. */
static int
namespace_repr(const conc_obj *dict, conc_buf *b, int depth)
{
    size_t n = conc_obj_len(dict), k = 0, pos = 0;
    conc_buf *items = conc__calloc(n ? n : 1, sizeof *items);
    conc_obj *key, *val;
    int r = items ? conc_buf_appendf(b, "Namespace(") : CONC_ENOMEM;
    while (!r && conc_obj_next(dict, &pos, &key, &val) == 1) {
        const char *name = conc_obj_str_value(key);
        if (!name || name[0] == '_')
            continue;
        r = conc_buf_appendf(&items[k], "%s=", name);
        r = r ? r : repr(val, &items[k], depth - 1);
        k++;
    }
    if (!r)
        qsort(items, k, sizeof *items, compare_text);
    for (size_t i = 0; !r && i < k; i++) {
        r = i ? conc_buf_append(b, ", ", 2) : 0;
        r = r ? r : conc_buf_append(b, items[i].data, items[i].len);
    }
    for (size_t i = 0; i < k; i++)
        conc_buf_free(&items[i]);
    conc__free(items);
    return r ? r : conc_buf_append(b, ")", 1);
}

/* A foreign record reads as Python prints the objects it stands for: a
 * class as <class 'mod.name'>; a manager's Token, Value and Namespace as
 * they print themselves; anything else as an exception does,
 * Name(arg, ...). */
static int
foreign_repr(const struct conc__foreign *f, conc_buf *b, int depth)
{
    static const char *const token_fields[] = {"typeid", "address", "id"};
    if (!f->args)
        return conc_buf_appendf(b, "<class '%s.%s'>", f->module, f->name);
    const char *dot = strrchr(f->name, '.');
    const char *name = dot ? dot + 1 : f->name;
    const conc_obj *st = f->state;
    bool mgr = !strcmp(f->module, "multiprocessing.managers");
    int r = 0;
    if (mgr && !strcmp(name, "Token") && conc_obj_len(st) == 3 &&
        st->type == CONC_OBJ_TUPLE) {
        r = conc_buf_appendf(b, "Token(");
        return r ? r
                 : fields_repr(b, token_fields, CONC__SEQ(st)->items, 3, depth);
    }
    conc_obj *vals[2] = {conc_obj_dict_get_str(st, "_typecode"),
                         conc_obj_dict_get_str(st, "_value")};
    if (mgr && !strcmp(name, "Value") && vals[0] && vals[1]) {
        r = conc_buf_appendf(b, "Value(");
        return r ? r : fields_repr(b, NULL, vals, 2, depth);
    }
    if (mgr && !strcmp(name, "Namespace") &&
        conc_obj_typeof(st) == CONC_OBJ_DICT)
        return namespace_repr(st, b, depth);
    r = conc_buf_appendf(b, "%s(", name);
    return r ? r
             : fields_repr(b, NULL, CONC__SEQ(f->args)->items,
                           CONC__SEQ(f->args)->len, depth);
}

static int
repr(const conc_obj *o, conc_buf *b, int depth)
{
    if (depth <= 0)
        return CONC_EOVERFLOW;
    switch (o->type) {
    case CONC_OBJ_NONE:
        return conc_buf_appendf(b, "None");
    case CONC_OBJ_BOOL:
        return conc_buf_appendf(b, CONC__INT(o)->small ? "True" : "False");
    case CONC_OBJ_INT:
        return conc__int_repr(o, b);
    case CONC_OBJ_FLOAT:
        return conc__float_repr(CONC__FLOAT(o)->v, b);
    case CONC_OBJ_STR:
        return str_repr(CONC__STR(o), b);
    case CONC_OBJ_BYTES:
        return bytes_repr(CONC__STR(o), b);
    case CONC_OBJ_TUPLE:
        if (CONC__SEQ(o)->len == 1) {
            int r = conc_buf_appendf(b, "(");
            if (!r)
                r = repr(CONC__SEQ(o)->items[0], b, depth - 1);
            return r ? r : conc_buf_appendf(b, ",)");
        }
        return seq_repr(CONC__SEQ(o), "(", ")", b, depth);
    case CONC_OBJ_LIST:
        return seq_repr(CONC__SEQ(o), "[", "]", b, depth);
    case CONC_OBJ_FOREIGN:
        return foreign_repr(CONC__FOREIGN(o), b, depth);
    default:
        return table_repr(o, b, depth);
    }
}

int
conc_obj_repr(const conc_obj *o, conc_buf *out)
{
    if (!o || !out)
        return CONC_EINVAL;
    conc_buf tmp = CONC_BUF_INIT;
    int r = repr(o, &tmp, CONC_OBJ_MAX_DEPTH);
    /* The text goes out with a NUL after it, as conc_buf_appendf leaves. */
    if (!r)
        r = conc_buf_append(&tmp, "", 1);
    if (!r)
        r = conc__buf_set(out, tmp.data, tmp.len);
    if (!r)
        out->len--;
    conc_buf_free(&tmp);
    return r;
}
