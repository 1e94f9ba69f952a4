/* The typecodes of the manager's "Array" typeid (array_codes.c). */
#ifndef CONC_MANAGER_ARRAY_CODES_H
#define CONC_MANAGER_ARRAY_CODES_H

#include "manager/sync_types.h"

/* A typecode: its letter, CPython's machine format code of its
 * little-endian items, the range of the ints of the smaller ones, how
 * array.array converts an item, and the C type's name in its errors. */
struct conc__mgr_code {
    char code;
    int fmt;
    int64_t min, max;
    int conv;
    const char *name;
};

/* The typecode `typecode` (a str of one letter), or NULL with
 * array.array's ValueError as the failure. */
const struct conc__mgr_code *conc__mgr_code_find(conc_obj *typecode);

/* Checks an item for typecode c as array.array's setitem does: 0, or
 * CONC_ETYPE / CONC_EOVERFLOW with array.array's text. */
int conc__mgr_code_check(const struct conc__mgr_code *c, conc_obj *item);

/* The items of bytes `raw` in this machine's format for typecode c, as
 * array.array(typecode, bytes) reads them (frombytes), as a new list.
 * Returns 0, CONC_EVALUE for a length that is not a multiple of the
 * item size, CONC_ENOMEM. */
int conc__mgr_code_frombytes(const struct conc__mgr_code *c, conc_obj *raw,
                             conc_obj **items);

/* The typecode (borrowed) and items (a new list) of an array.array that
 * arrived pickled (either of CPython's forms): 0, 1 when o is not an
 * array, CONC_EVALUE for a bad typecode or a machine format conc does
 * not read, CONC_ETYPE for items neither a list nor bytes. */
int conc__mgr_array_of(conc_obj *o, conc_obj **typecode, conc_obj **items);

#endif
