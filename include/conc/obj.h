/* conc/obj.h: conc_obj, the value model of managers, and its pickle codec.
 *
 * A conc_obj is a reference-counted value of one of Python's plain types:
 * None, bool, int (any size), float, str (UTF-8, validated), bytes, tuple,
 * list, dict, set, frozenset, or a foreign record that stands, inert, for
 * an object of another type (a Python exception, a manager's Token, a
 * proxy to rebuild): its module, its qualified name, the arguments it is
 * rebuilt from and an optional state. Nothing about a foreign record is
 * ever imported or run.
 *
 * The API follows jansson's: a constructor returns a new reference, which
 * the caller drops with conc_obj_decref; a getter returns a borrowed
 * reference, valid while its container holds it; a setter whose name ends
 * in _new steals the reference it is given (even when it fails), the
 * others take one of their own. The singletons None, True and False need
 * no allocation and their references are never counted.
 *
 * Python's equality and hashing hold for dict keys and set members:
 * 1 == 1.0 == True and they hash alike, big ints and integral floats
 * compare exactly, -0.0 == 0.0, and a NaN equals only itself (the same
 * object), as in Python's containers. Dicts keep insertion order; a list,
 * dict or set used as a key is CONC_ETYPE (unhashable).
 *
 * Threads: reference counts are atomic, so any thread may incref or decref
 * a value, and any number of threads may read one that nobody changes. A
 * value being changed belongs to one thread at a time (or to the caller's
 * lock). A container must not contain itself: a cycle is never freed (the
 * pickle reader refuses the recursive structures that would make one). */
#ifndef CONC_OBJ_H
#define CONC_OBJ_H

#include "buf.h"
#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_obj conc_obj;

/* The type of a value; 0 stands for no value (a NULL pointer). */
typedef enum conc_obj_type {
    CONC_OBJ_NONE = 1,
    CONC_OBJ_BOOL,
    CONC_OBJ_INT,
    CONC_OBJ_FLOAT,
    CONC_OBJ_STR,
    CONC_OBJ_BYTES,
    CONC_OBJ_TUPLE,
    CONC_OBJ_LIST,
    CONC_OBJ_DICT,
    CONC_OBJ_SET,
    CONC_OBJ_FROZENSET,
    CONC_OBJ_FOREIGN
} conc_obj_type;

/* Python's recursion limit, which the calls that walk a value (equality,
 * hashing, repr, dumps) share: a value nested deeper is CONC_EOVERFLOW. */
#define CONC_OBJ_MAX_DEPTH 1000

/* ---- References ------------------------------------------------------- */

/* The type of `o`, or 0 for NULL. Any thread. */
CONC_EXTERN conc_obj_type conc_obj_typeof(const conc_obj *o);

/* Takes one more reference to `o` and returns it (NULL gives NULL). The
 * caller owns the new reference. Any thread. */
CONC_EXTERN conc_obj *conc_obj_incref(conc_obj *o);

/* Drops one reference; the last one frees the value and drops those it
 * holds. NULL does nothing. Any thread. */
CONC_EXTERN void conc_obj_decref(conc_obj *o);

/* ---- Constructors: each returns a new reference (freed with
 * conc_obj_decref), or NULL when out of memory. Any thread. ------------- */

/* None, True, False, and the bool of `v` (0 is False). Never NULL: the
 * singletons are static, owned by conc, and need no decref (one is
 * harmless). Any thread. */
CONC_EXTERN conc_obj *conc_obj_none(void);
CONC_EXTERN conc_obj *conc_obj_true(void);
CONC_EXTERN conc_obj *conc_obj_false(void);
CONC_EXTERN conc_obj *conc_obj_bool(int v);

/* An int. New reference, or NULL out of memory. Any thread. */
CONC_EXTERN conc_obj *conc_obj_int(int64_t v);

/* An int of any size from its decimal text ("-123", with an optional sign
 * and '_' between digits, as Python's int() reads it) into *out, a new
 * reference the caller owns. Returns 0, CONC_EVALUE for text that is not
 * an int (or longer than 100,000 digits), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_obj_int_parse(const char *text, conc_obj **out);

/* A float. New reference, or NULL out of memory. Any thread. */
CONC_EXTERN conc_obj *conc_obj_float(double v);

/* A str from NUL-terminated UTF-8, or from `len` bytes of UTF-8 (which may
 * hold NULs). New reference; NULL for a NULL or ill-formed string (not
 * UTF-8, or a surrogate), or out of memory. Borrows s. Any thread. */
CONC_EXTERN conc_obj *conc_obj_str(const char *s);
CONC_EXTERN conc_obj *conc_obj_strn(const char *s, size_t len);

/* A bytes object holding a copy of `len` bytes at `data`. New reference,
 * or NULL for NULL data or out of memory. Any thread. */
CONC_EXTERN conc_obj *conc_obj_bytes(const void *data, size_t len);

/* A tuple of `n` Nones, to be filled with conc_obj_tuple_set_new before
 * anyone else sees it (a tuple is immutable once shared or hashed). New
 * reference, or NULL out of memory. Any thread. */
CONC_EXTERN conc_obj *conc_obj_tuple(size_t n);

/* Empty containers. New reference, or NULL out of memory. Any thread. */
CONC_EXTERN conc_obj *conc_obj_list(void);
CONC_EXTERN conc_obj *conc_obj_dict(void);
CONC_EXTERN conc_obj *conc_obj_set(void);

/* A frozenset of the members of `items` (a list, tuple, set or frozenset,
 * borrowed). Returns 0, CONC_ETYPE if items is not one of those or holds
 * an unhashable member, CONC_ENOMEM; *out receives the new reference,
 * which the caller owns. Any thread. */
CONC_EXTERN int conc_obj_frozenset(const conc_obj *items, conc_obj **out);

/* A foreign record: `module`.`name` (copied), called with `args` (a tuple,
 * or NULL for the bare global itself, such as a class), and `state` (NULL
 * for none) as pickle's BUILD would set it. `newobj` 1 records that it is
 * made by cls.__new__(cls, *args) (pickle's NEWOBJ, as a Token is) rather
 * than by calling it. Borrows args and state (takes references of its
 * own). New reference, or NULL for a NULL name or module, args not a
 * tuple, or out of memory. Any thread. */
CONC_EXTERN conc_obj *conc_obj_foreign(const char *module, const char *name,
                                       conc_obj *args, conc_obj *state,
                                       int newobj);

/* ---- Reading values (borrowed results; any thread) --------------------- */

/* Python's truth value of `o`: 1 or 0, CONC_EINVAL for NULL. Any thread. */
CONC_EXTERN int conc_obj_truth(const conc_obj *o);

/* The value of an int or bool into *v. Returns 0, CONC_ETYPE for another
 * type, CONC_EOVERFLOW for an int beyond int64_t. Any thread. */
CONC_EXTERN int conc_obj_int_value(const conc_obj *o, int64_t *v);

/* The value of a float, int or bool as a double into *v. Returns 0,
 * CONC_ETYPE for another type, CONC_EOVERFLOW for an int too large for a
 * double. Any thread. */
CONC_EXTERN int conc_obj_float_value(const conc_obj *o, double *v);

/* The UTF-8 of a str, NUL-terminated (it may hold NULs: conc_obj_len gives
 * its length in bytes), or NULL if `o` is not a str. Borrowed from o.
 * Any thread. */
CONC_EXTERN const char *conc_obj_str_value(const conc_obj *o);

/* The content of a bytes object (conc_obj_len bytes), or NULL if `o` is
 * not bytes. Borrowed from o. Any thread. */
CONC_EXTERN const uint8_t *conc_obj_bytes_value(const conc_obj *o);

/* The length: bytes of a str or bytes, items of a tuple, list, dict, set
 * or frozenset; 0 for anything else or NULL. Any thread. */
CONC_EXTERN size_t conc_obj_len(const conc_obj *o);

/* Item `i` of a tuple or list, borrowed from it; NULL if out of range or
 * `o` is not a tuple or list. Any thread. */
CONC_EXTERN conc_obj *conc_obj_seq_get(const conc_obj *o, size_t i);

/* ---- Changing lists and tuples (one thread at a time per value) -------- */

/* Appends `item` to a list. _append takes a reference of its own;
 * _append_new steals the caller's, also on failure. Returns 0, CONC_ETYPE
 * if `list` is not a list, CONC_ENOMEM. One thread at a time per list. */
CONC_EXTERN int conc_obj_list_append(conc_obj *list, conc_obj *item);
CONC_EXTERN int conc_obj_list_append_new(conc_obj *list, conc_obj *item);

/* Replaces item `i` of a list, or of a tuple being built, dropping the old
 * one's reference and stealing `item`'s (also on failure). Returns 0,
 * CONC_ETYPE for another type, CONC_EINDEX if i >= its length. One thread
 * at a time per value. */
CONC_EXTERN int conc_obj_list_set_new(conc_obj *list, size_t i, conc_obj *item);
CONC_EXTERN int conc_obj_tuple_set_new(conc_obj *tuple, size_t i,
                                       conc_obj *item);

/* Removes item `i` of a list (Python's `del l[i]`, i counted from 0).
 * Returns 0, CONC_ETYPE if not a list, CONC_EINDEX if out of range. One
 * thread at a time per list. */
CONC_EXTERN int conc_obj_list_del(conc_obj *list, size_t i);

/* ---- Dicts and sets (one thread at a time per value) ------------------- */

/* Sets d[key] = value, keeping the key's place when it is already there
 * (the first key object stays, as in Python). _set takes references of
 * its own; _set_new steals both of the caller's, also on failure. Returns
 * 0, CONC_ETYPE if d is not a dict or key is unhashable, CONC_EOVERFLOW
 * for a key nested too deep, CONC_ENOMEM. One thread at a time per dict. */
CONC_EXTERN int conc_obj_dict_set(conc_obj *d, conc_obj *key, conc_obj *value);
CONC_EXTERN int conc_obj_dict_set_new(conc_obj *d, conc_obj *key,
                                      conc_obj *value);

/* d[key] into *value, borrowed from d. Returns 0, CONC_EKEY if absent,
 * CONC_ETYPE if d is not a dict or key unhashable, CONC_EOVERFLOW. Any
 * thread, while nobody changes d. */
CONC_EXTERN int conc_obj_dict_get(const conc_obj *d, const conc_obj *key,
                                  conc_obj **value);

/* d[key] for a str key given as UTF-8: the value borrowed from d, or NULL
 * if absent or d is not a dict. Any thread, while nobody changes d. */
CONC_EXTERN conc_obj *conc_obj_dict_get_str(const conc_obj *d, const char *key);

/* del d[key]. Returns 0, CONC_EKEY if absent, CONC_ETYPE if d is not a
 * dict or key unhashable, CONC_EOVERFLOW. One thread at a time per dict. */
CONC_EXTERN int conc_obj_dict_del(conc_obj *d, const conc_obj *key);

/* Iterates a dict in insertion order, or a set or frozenset (value then
 * gets NULL). Start with *pos = 0; each call gives the next entry,
 * borrowed, and moves *pos on. Returns 1 for an entry, 0 at the end,
 * CONC_ETYPE if d is not a dict, set or frozenset. `value` may be NULL.
 * Any thread, while nobody changes d. */
CONC_EXTERN int conc_obj_next(const conc_obj *d, size_t *pos, conc_obj **key,
                              conc_obj **value);

/* Adds `item` to a set. _add takes a reference of its own; _add_new steals
 * the caller's, also on failure. Returns 0, CONC_ETYPE if s is not a set
 * or item is unhashable, CONC_EOVERFLOW, CONC_ENOMEM. One thread at a time
 * per set. */
CONC_EXTERN int conc_obj_set_add(conc_obj *s, conc_obj *item);
CONC_EXTERN int conc_obj_set_add_new(conc_obj *s, conc_obj *item);

/* Python's `item in c` for a dict (its keys), set, frozenset, list or
 * tuple: 1 or 0. Returns CONC_ETYPE for another container, or an
 * unhashable item with a dict or set; CONC_EOVERFLOW. Any thread, while
 * nobody changes c. */
CONC_EXTERN int conc_obj_contains(const conc_obj *c, const conc_obj *item);

/* ---- Comparing, hashing, printing ------------------------------------- */

/* Python's a == b, as containers compare (a value is equal to itself, NaN
 * included): 1 or 0. Returns CONC_EOVERFLOW past CONC_OBJ_MAX_DEPTH.
 * Foreign records are equal only to themselves. Any thread, while nobody
 * changes a or b. */
CONC_EXTERN int conc_obj_equal(const conc_obj *a, const conc_obj *b);

/* Python's hash(o) into *hash: equal values hash alike; ints, floats and
 * bools give CPython's own numbers; str and bytes use a key drawn at
 * random once per process. Returns 0, CONC_ETYPE for a list, dict, set or
 * a tuple holding one, CONC_EOVERFLOW. Any thread. */
CONC_EXTERN int conc_obj_hash(const conc_obj *o, int64_t *hash);

/* Replaces *out's content with Python's repr(o), byte for byte for the
 * plain types (shortest round-trip floats, str and bytes quoting, `set()`,
 * nested containers). A foreign record reads as an exception does,
 * `KeyError('x')`; a manager's Token, Value and Namespace as they print
 * themselves; a bare global as `<class 'mod.name'>`. Returns 0,
 * CONC_EOVERFLOW past CONC_OBJ_MAX_DEPTH, CONC_ENOMEM; on failure *out is
 * unchanged. Borrows o; the caller owns *out. Any thread, while nobody
 * changes o. */
CONC_EXTERN int conc_obj_repr(const conc_obj *o, conc_buf *out);

/* ---- Foreign records --------------------------------------------------- */

/* A foreign record's module and qualified name (borrowed from o), or NULL
 * if o is not a foreign record. Any thread. */
CONC_EXTERN const char *conc_obj_foreign_module(const conc_obj *o);
CONC_EXTERN const char *conc_obj_foreign_name(const conc_obj *o);

/* A foreign record's arguments tuple and state, borrowed from o: NULL for
 * a bare global (args), for no state, or if o is not a foreign record.
 * Any thread. */
CONC_EXTERN conc_obj *conc_obj_foreign_args(const conc_obj *o);
CONC_EXTERN conc_obj *conc_obj_foreign_state(const conc_obj *o);

/* ---- Pickle ------------------------------------------------------------ */

/* Limits of conc_obj_loads; 0 in a field takes its default. */
typedef struct conc_obj_load_opts {
    size_t max_size;      /* bytes of input (default 64 MiB): CONC_EMSGSIZE */
    size_t max_depth;     /* nesting of containers (default 200) */
    size_t max_items;     /* objects and items in all (default 4 Mi) */
    size_t max_memo;      /* memo entries (default 1 Mi) */
    size_t max_int_bytes; /* bytes of one LONG4 int (default 4096) */
    int any_global;       /* 1: a global not on the allowlist becomes a
                             foreign record instead of an error (for an
                             #ERROR reply's exception); nothing is imported
                             either way */
} conc_obj_load_opts;

/* Where and why conc_obj_loads refused its input. */
typedef struct conc_obj_load_error {
    size_t offset;     /* of the opcode at fault */
    int opcode;        /* its byte, or -1 past the end of the input */
    char message[160]; /* "pickle: ... (opcode 0x93 STACK_GLOBAL at 40)" */
} conc_obj_load_error;

/* Reads a pickle of protocol 2 to 5 (CPython's pickle.loads) from `len`
 * bytes at `data` into *out, a new reference the caller owns. Only the
 * types above are read; globals only through the allowlist of
 * docs/values.md (builtins.list, set, frozenset, bytes, bytearray, slice,
 * complex, _codecs.encode, exceptions, multiprocessing.managers' Token,
 * RebuildProxy and proxy classes, ...), made into values or foreign
 * records, never imported or run. `opts` NULL takes the defaults; `err`,
 * which may be NULL, receives the offset, opcode and message of a
 * refusal, which also becomes the thread's failure message. Returns 0;
 * CONC_EPROTO for a malformed pickle, an opcode outside the subset, a
 * global off the allowlist, a recursive structure or invalid UTF-8;
 * CONC_ETYPE for an unhashable dict key or set member; CONC_EMSGSIZE for
 * input over max_size; CONC_EOVERFLOW past another limit; CONC_ENOMEM.
 * On failure *out is unchanged. Borrows data. Any thread. */
CONC_EXTERN int conc_obj_loads(const void *data, size_t len,
                               const conc_obj_load_opts *opts, conc_obj **out,
                               conc_obj_load_error *err);

/* Replaces *out's content with the pickle of `o` at protocol 4, as
 * CPython's pickle.dumps(o, 4) would read it (no FRAME, no memo: a value
 * reached twice is written twice). A foreign record is written as its
 * global called with its args (REDUCE, or NEWOBJ) and its state (BUILD).
 * Returns 0, CONC_EOVERFLOW past CONC_OBJ_MAX_DEPTH, CONC_ENOMEM; on
 * failure *out is unchanged. Borrows o; the caller owns *out. Any thread,
 * while nobody changes o. */
CONC_EXTERN int conc_obj_dumps(const conc_obj *o, conc_buf *out);

CONC_END_DECLS

#endif
