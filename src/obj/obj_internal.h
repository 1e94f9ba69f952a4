/* The layout of conc_obj values, shared by src/obj/'s files.
 *
 * Every value starts with the common header: an atomic reference count,
 * the type, flags and the nesting depth the pickle reader bounds. Each
 * type then has its own struct that begins with the header. An int that
 * fits in int64_t lives inline (`small`, nlimbs 0); a larger one keeps its
 * magnitude as 32-bit limbs, least significant first, with no leading zero
 * limb, so that every int has one representation and equality is a
 * comparison of fields. Dicts, sets and frozensets share one open-
 * addressing table that keeps insertion order (dict.c). */
#ifndef CONC_OBJ_INTERNAL_H
#define CONC_OBJ_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "conc/obj.h"
#include "core/internal.h"

/* Flags in the header. */
#define CONC__OBJ_IMMORTAL 0x01 /* a static singleton: never counted */
#define CONC__OBJ_SHARED   0x02 /* the pickle reader fetched it from its memo */

struct conc_obj {
    uint32_t refcount; /* atomic */
    uint8_t type;      /* conc_obj_type */
    uint8_t flags;
    uint16_t depth; /* containers nested inside, as the reader counts it */
};

struct conc__int {
    conc_obj h;
    int sign;        /* -1, 0 or 1 for a big int; unused when small */
    uint32_t nlimbs; /* 0: the value is `small` */
    int64_t small;
    uint32_t limbs[]; /* magnitude, least significant first */
};

struct conc__float {
    conc_obj h;
    double v;
};

/* str and bytes: len bytes and a NUL after them. */
struct conc__str {
    conc_obj h;
    size_t len;
    char data[];
};

/* tuple and list. */
struct conc__seq {
    conc_obj h;
    size_t len, cap;
    conc_obj **items;
};

struct conc__entry {
    int64_t hash;
    conc_obj *key; /* NULL: deleted */
    conc_obj *value;
};

/* dict, set and frozenset (value NULL in every entry of a set). */
struct conc__table {
    conc_obj h;
    size_t used;     /* live entries */
    size_t nentries; /* entries appended, deleted ones included */
    size_t cap;      /* room in entries */
    size_t mask;     /* slots - 1 */
    int32_t *slots;  /* entry index, or SLOT_EMPTY / SLOT_DUMMY */
    struct conc__entry *entries;
};

struct conc__foreign {
    conc_obj h;
    char *module, *name;
    conc_obj *args;  /* tuple, or NULL for the bare global */
    conc_obj *state; /* NULL for none */
    int newobj;
};

#define CONC__INT(o)     ((struct conc__int *)(o))
#define CONC__FLOAT(o)   ((struct conc__float *)(o))
#define CONC__STR(o)     ((struct conc__str *)(o))
#define CONC__SEQ(o)     ((struct conc__seq *)(o))
#define CONC__TABLE(o)   ((struct conc__table *)(o))
#define CONC__FOREIGN(o) ((struct conc__foreign *)(o))

/* ---- obj.c ------------------------------------------------------------- */

/* A new object of `size` bytes with its header set (refcount 1). */
conc_obj *conc__obj_alloc(conc_obj_type type, size_t size);

/* A str or bytes of `len` uninitialized bytes (NUL after them). */
conc_obj *conc__str_alloc(conc_obj_type type, size_t len);

/* Whether `len` bytes at `s` are well-formed UTF-8 without surrogates. */
bool conc__utf8_valid(const uint8_t *s, size_t len);

/* Decodes one code point of valid UTF-8 at s, returning its length. */
size_t conc__utf8_decode(const uint8_t *s, uint32_t *cp);

/* Appends to a sequence without type checks: steals item. */
int conc__seq_push(conc_obj *seq, conc_obj *item);

/* A tuple or list of `n` items taken (stolen) from items[]. */
conc_obj *conc__seq_from(conc_obj_type type, conc_obj **items, size_t n);

/* ---- int.c ------------------------------------------------------------- */

/* A big int from `n` bytes of little-endian two's complement (pickle's
 * LONG1/LONG4): new reference, or NULL out of memory. */
conc_obj *conc__int_from_le(const uint8_t *p, size_t n);

/* Appends the minimal little-endian two's complement of int `o`. */
int conc__int_to_le(const conc_obj *o, conc_buf *b);

/* Appends int `o` in decimal. */
int conc__int_repr(const conc_obj *o, conc_buf *b);

/* Python's hash of an int. */
int64_t conc__int_hash(const conc_obj *o);

/* Whether ints a and b are equal; and int a == float f, exactly. */
bool conc__int_equal(const conc_obj *a, const conc_obj *b);
bool conc__int_equal_double(const conc_obj *a, double f);

/* An int or bool's value as a double (CONC_EOVERFLOW if too large). */
int conc__int_to_double(const conc_obj *o, double *v);

/* ---- dict.c ------------------------------------------------------------ */

/* Python's hash, with `depth` levels of nesting left. */
int conc__hash(const conc_obj *o, int64_t *hash, int depth);

/* Python's ==, as containers compare: 1, 0, or an error. */
int conc__equal(const conc_obj *a, const conc_obj *b, int depth);

/* Inserts into a dict or set without type checks, stealing key and value
 * (value NULL for a set), also on failure. */
int conc__table_insert(conc_obj *t, conc_obj *key, conc_obj *value);

/* Frees a table's entries (the drop of its last reference). */
void conc__table_clear(conc_obj *t);

/* A new dict, set or frozenset, empty. */
conc_obj *conc__table_new(conc_obj_type type);

/* Python's hash of a double (CPython's _Py_HashDouble, NaN aside). */
int64_t conc__hash_double(double v);

/* ---- repr.c ------------------------------------------------------------ */

/* Appends the shortest repr of a double, as Python's float.__repr__. */
int conc__float_repr(double v, conc_buf *b);

#endif
