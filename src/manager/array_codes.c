/* The typecodes of the "Array" typeid (array.array's): which items each
 * takes, with array.array's own errors and their texts, and the items of
 * an array that arrives pickled: array.array(typecode, bytes) as
 * multiprocessing's own reducer sends it (the items in the sender's
 * machine format, read as this machine's, as CPython does),
 * array.array(typecode, list) of protocol 2 and of conc's writer, or
 * array._array_reconstructor(cls, typecode, format, bytes) of plain
 * pickles of protocol 3 and later, in any of CPython's machine formats
 * (ints and floats of either byte order, UTF-16 and UTF-32 of either). Ints of
 * any size: 'L' and 'Q' hold values up to 2**64 - 1.
 *
 * No locks: pure functions of their arguments. */
#include <stdio.h>

#include "manager/array_codes.h"

/* The unsigned ints up to 2**64 - 1, for 'L' and 'Q'. */
#define U64_MAX_TEXT "18446744073709551615"

/* How an int out of a typecode's range fails: the C conversion that
 * array.array uses for it, each with its own texts. */
enum conv {
    CONV_LONG,  /* PyLong_AsLong, then a range check of the C type */
    CONV_UINT,  /* 'I': unsigned long, then the unsigned int range */
    CONV_ULONG, /* 'L' */
    CONV_LL,    /* 'q' */
    CONV_ULL,   /* 'Q' */
    CONV_REAL,  /* 'f', 'd' */
    CONV_CHAR   /* 'u', 'w' */
};

/* CPython's machine format codes (enum machine_format_code) of this
 * machine's little-endian items; the big-endian code is one more. */
enum {
    MF_U8 = 0,
    MF_S8 = 1,
    MF_U16 = 2,
    MF_S16 = 4,
    MF_U32 = 6,
    MF_S32 = 8,
    MF_U64 = 10,
    MF_S64 = 12,
    MF_F32 = 14,
    MF_F64 = 16,
    MF_UTF16 = 18,
    MF_UTF32 = 20,
    MF_LAST = 21 /* UTF-32 big-endian, the last code CPython defines */
};

/* The typecodes with the sizes of Linux's C types on 64-bit machines. */
static const struct conc__mgr_code codes[] = {
    {'b', MF_S8, INT8_MIN, INT8_MAX, CONV_LONG, "signed char"},
    {'B', MF_U8, 0, UINT8_MAX, CONV_LONG, "unsigned byte integer"},
    {'h', MF_S16, INT16_MIN, INT16_MAX, CONV_LONG, "signed short integer"},
    {'H', MF_U16, 0, UINT16_MAX, CONV_LONG, "unsigned short"},
    {'i', MF_S32, INT32_MIN, INT32_MAX, CONV_LONG, "signed integer"},
    {'I', MF_U32, 0, UINT32_MAX, CONV_UINT, "unsigned int"},
    {'l', MF_S64, INT64_MIN, INT64_MAX, CONV_LONG, "signed long integer"},
    {'L', MF_U64, 0, 0, CONV_ULONG, "unsigned long"},
    {'q', MF_S64, INT64_MIN, INT64_MAX, CONV_LL, "signed long long integer"},
    {'Q', MF_U64, 0, 0, CONV_ULL, "unsigned long long"},
    {'f', MF_F32, 0, 0, CONV_REAL, NULL},
    {'d', MF_F64, 0, 0, CONV_REAL, NULL},
    {'u', MF_UTF32, 0, 0, CONV_CHAR, NULL},
    {'w', MF_UTF32, 0, 0, CONV_CHAR, NULL},
};

#define N_CODES (sizeof codes / sizeof codes[0])

const struct conc__mgr_code *
conc__mgr_code_find(conc_obj *typecode)
{
    const char *tc = conc_obj_str_value(typecode);
    for (size_t i = 0; tc && strlen(tc) == 1 && i < N_CODES; i++)
        if (codes[i].code == tc[0])
            return &codes[i];
    conc_fail(CONC_EVALUE, "bad typecode (must be b, B, u, h, H, i, I, l, L, "
                           "q, Q, f or d)");
    return NULL;
}

/* The sign of an int beyond int64_t, and whether it is at most
 * 2**64 - 1, from its decimal text. */
static int
big_int(const conc_obj *v, int *negative, int *fits_u64)
{
    conc_buf text = CONC_BUF_INIT;
    int rc = conc_obj_repr(v, &text);
    if (rc == 0 && (rc = conc_buf_append(&text, "", 1)) == 0) {
        const char *s = (const char *)text.data;
        size_t n = strlen(s), max = strlen(U64_MAX_TEXT);
        *negative = s[0] == '-';
        *fits_u64 = !*negative &&
                    (n < max || (n == max && strcmp(s, U64_MAX_TEXT) <= 0));
    }
    conc_buf_free(&text);
    return rc;
}

/* An int beyond int64_t: the error of the typecode's conversion, or 0
 * for 'L' and 'Q' values up to 2**64 - 1. */
static int
check_big(const struct conc__mgr_code *c, const conc_obj *v)
{
    int negative = 0, fits = 0, rc = big_int(v, &negative, &fits);
    if (rc < 0)
        return rc;
    switch (c->conv) {
    case CONV_UINT:
        return conc_fail(CONC_EOVERFLOW,
                         negative ? "can't convert negative value to unsigned "
                                    "int"
                                  : "Python int too large to convert to C "
                                    "unsigned long");
    case CONV_ULONG:
        if (fits)
            return 0;
        return conc_fail(CONC_EOVERFLOW,
                         negative ? "can't convert negative value to unsigned "
                                    "int"
                                  : "Python int too large to convert to C "
                                    "unsigned long");
    case CONV_LL:
        return conc_fail(CONC_EOVERFLOW, "int too big to convert");
    case CONV_ULL:
        if (fits)
            return 0;
        return conc_fail(CONC_EOVERFLOW,
                         negative ? "can't convert negative int to unsigned"
                                  : "int too big to convert");
    default:
        return conc_fail(CONC_EOVERFLOW,
                         "Python int too large to convert to C long");
    }
}

/* An int that fits int64_t against the typecode's range. */
static int
check_small(const struct conc__mgr_code *c, int64_t v)
{
    if (v < 0 && c->conv == CONV_ULL)
        return conc_fail(CONC_EOVERFLOW,
                         "can't convert negative int to unsigned");
    if (v < 0 && (c->conv == CONV_UINT || c->conv == CONV_ULONG))
        return conc_fail(CONC_EOVERFLOW,
                         "can't convert negative value to unsigned int");
    if (c->conv != CONV_LONG && c->conv != CONV_UINT)
        return 0; /* 'l', 'L', 'q', 'Q': all of int64_t's non-negatives */
    if (v < c->min)
        return conc_fail(CONC_EOVERFLOW, "%s is less than minimum", c->name);
    if (v > c->max)
        return conc_fail(CONC_EOVERFLOW, "%s is greater than maximum", c->name);
    return 0;
}

int
conc__mgr_code_check(const struct conc__mgr_code *c, conc_obj *item)
{
    conc_obj_type t = conc_obj_typeof(item);
    if (c->conv == CONV_CHAR) {
        const char *s = conc_obj_str_value(item);
        size_t chars = 0;
        for (size_t i = 0; s && i < conc_obj_len(item); i++)
            chars += (s[i] & 0xc0) != 0x80; /* not a continuation byte */
        if (chars == 1)
            return 0;
        return conc_fail(CONC_ETYPE, "array item must be unicode character");
    }
    if (c->conv == CONV_REAL) {
        double v;
        if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL && t != CONC_OBJ_FLOAT)
            return conc_fail(CONC_ETYPE, "must be real number, not %s",
                             conc__mgr_pytype(item));
        if (conc_obj_float_value(item, &v) < 0)
            return conc_fail(CONC_EOVERFLOW, "int too large to convert to "
                                             "float");
        return 0;
    }
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE,
                         "'%s' object cannot be interpreted as an integer",
                         conc__mgr_pytype(item));
    int64_t v;
    if (conc_obj_int_value(item, &v) < 0)
        return check_big(c, item);
    return check_small(c, v);
}

/* A str of one code point, or NULL for a surrogate or beyond U+10FFFF
 * (conc_obj_strn refuses them). */
static conc_obj *
code_point(uint32_t cp)
{
    char s[4];
    size_t n;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xc0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xe0 | cp >> 12);
        s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else if (cp < 0x110000) {
        s[0] = (char)(0xf0 | cp >> 18);
        s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        s[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        s[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    } else {
        return NULL;
    }
    return conc_obj_strn(s, n);
}

/* One item of `size` bytes at p in machine format `fmt` (CPython's
 * enum machine_format_code: 0-13 ints, 14-17 floats, 20-21 UTF-32). */
static conc_obj *
decode_one(int fmt, const uint8_t *p, size_t size)
{
    int big_endian = fmt >= 2 && (fmt & 1);
    uint64_t u = 0;
    for (size_t i = 0; i < size; i++)
        u |= (uint64_t)p[big_endian ? size - 1 - i : i] << (8 * i);
    if (fmt >= 20)
        return code_point((uint32_t)u);
    if (fmt >= 14) {
        if (size == 4) {
            float f;
            uint32_t w = (uint32_t)u;
            memcpy(&f, &w, sizeof f);
            return conc_obj_float(f);
        }
        double d;
        memcpy(&d, &u, sizeof d);
        return conc_obj_float(d);
    }
    int is_signed = fmt < 2 ? fmt == 1 : (fmt - 2) / 2 % 2 == 1;
    if (is_signed && size < 8 && (u >> (8 * size - 1)) & 1)
        u |= ~UINT64_C(0) << (8 * size); /* sign extension */
    if (is_signed || u <= INT64_MAX)
        return conc_obj_int((int64_t)u);
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)u);
    conc_obj *o = NULL;
    return conc_obj_int_parse(text, &o) == 0 ? o : NULL;
}

/* The size of one item in machine format `fmt` (a UTF-16 one's code
 * unit), 0 for one CPython does not define. */
static size_t
format_size(int64_t fmt)
{
    static const unsigned char sizes[] = {1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8,
                                          8, 8, 8, 4, 4, 8, 8, 2, 2, 4, 4};
    return fmt >= 0 && fmt <= MF_LAST ? sizes[fmt] : 0;
}

/* One UTF-16 code unit at p, little- or big-endian. */
static uint32_t
utf16_unit(const uint8_t *p, int big_endian)
{
    return big_endian ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

/* The characters of UTF-16 text (machine formats 18 and 19, what a
 * Windows peer's 'u' array sends), surrogate pairs joined; a lone
 * surrogate is UnicodeDecodeError's ValueError, as CPython's strict
 * decoding gives. */
static int
decode_utf16(int64_t fmt, const uint8_t *p, size_t n, conc_obj *l)
{
    int big_endian = fmt & 1, rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i += 2) {
        uint32_t u = utf16_unit(p + i, big_endian), lo = 0;
        size_t start = i;
        if (u >= 0xd800 && u < 0xdc00 && i + 2 < n)
            lo = utf16_unit(p + i + 2, big_endian);
        if (lo >= 0xdc00 && lo < 0xe000) {
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            i += 2;
        }
        if (u >= 0xd800 && u < 0xe000)
            return conc_fail(CONC_EVALUE,
                             "'utf-16-%s' codec can't decode bytes in "
                             "position %zu-%zu: illegal UTF-16 surrogate",
                             big_endian ? "be" : "le", start, start + 1);
        conc_obj *c = code_point(u);
        rc = c ? conc_obj_list_append_new(l, c) : CONC_ENOMEM;
    }
    return rc;
}

/* The items of `raw` (bytes) in machine format `fmt`. */
static int
decode_items(int64_t fmt, conc_obj *raw, conc_obj **items)
{
    size_t size = format_size(fmt), n = conc_obj_len(raw);
    const uint8_t *p = conc_obj_bytes_value(raw);
    if (!size || !p || n % size)
        return conc_fail(CONC_EVALUE, "bytes length not a multiple of item "
                                      "size");
    int utf16 = fmt == MF_UTF16 || fmt == MF_UTF16 + 1;
    conc_obj *l = conc_obj_list();
    int rc = l ? 0 : CONC_ENOMEM;
    if (rc == 0 && utf16)
        rc = decode_utf16(fmt, p, n, l);
    for (size_t i = 0; rc == 0 && !utf16 && i < n; i += size) {
        conc_obj *o = decode_one((int)fmt, p + i, size);
        rc = o ? conc_obj_list_append_new(l, o)
               : conc_fail(CONC_EVALUE, "an array's item is not a character");
    }
    if (rc < 0) {
        conc_obj_decref(l);
        return rc;
    }
    *items = l;
    return 0;
}

int
conc__mgr_code_frombytes(const struct conc__mgr_code *c, conc_obj *raw,
                         conc_obj **items)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return decode_items(c->fmt + (c->fmt >= MF_U16), raw, items);
#else
    return decode_items(c->fmt, raw, items);
#endif
}

/* array.array(typecode, list or bytes). */
static int
array_call(conc_obj *args, conc_obj **typecode, conc_obj **items)
{
    conc_obj *tc = conc_obj_seq_get(args, 0), *from = conc_obj_seq_get(args, 1);
    const struct conc__mgr_code *c = conc__mgr_code_find(tc);
    if (!c)
        return CONC_EVALUE;
    *typecode = tc;
    if (conc_obj_typeof(from) == CONC_OBJ_LIST) {
        *items = conc_obj_incref(from);
        return 0;
    }
    if (conc_obj_typeof(from) != CONC_OBJ_BYTES)
        return conc_fail(CONC_ETYPE, "an array of %s", conc__mgr_pytype(from));
    return conc__mgr_code_frombytes(c, from, items);
}

int
conc__mgr_array_of(conc_obj *o, conc_obj **typecode, conc_obj **items)
{
    const char *m = conc_obj_foreign_module(o), *n = conc_obj_foreign_name(o);
    conc_obj *args = conc_obj_foreign_args(o);
    if (!m || strcmp(m, "array") || !args)
        return 1;
    if (!strcmp(n, "array") && conc_obj_len(args) == 2)
        return array_call(args, typecode, items);
    if (strcmp(n, "_array_reconstructor") || conc_obj_len(args) != 4)
        return 1;
    /* array._array_reconstructor(cls, typecode, format, bytes), with its
     * own errors. */
    int64_t fmt = -1;
    conc_obj *raw = conc_obj_seq_get(args, 3);
    *typecode = conc_obj_seq_get(args, 1);
    conc_obj_int_value(conc_obj_seq_get(args, 2), &fmt);
    if (!conc__mgr_code_find(*typecode))
        return conc_fail(CONC_EVALUE,
                         "second argument must be a valid type code");
    if (!format_size(fmt))
        return conc_fail(CONC_EVALUE,
                         "third argument must be a valid machine format "
                         "code.");
    if (conc_obj_typeof(raw) != CONC_OBJ_BYTES)
        return conc_fail(CONC_ETYPE, "fourth argument should be bytes, not %s",
                         conc__mgr_pytype(raw));
    if (conc_obj_len(raw) % format_size(fmt))
        return conc_fail(CONC_EVALUE,
                         "string length not a multiple of item size");
    return decode_items(fmt, raw, items);
}
