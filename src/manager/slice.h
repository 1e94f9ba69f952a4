/* Slices (builtins.slice records) as list and array.array read them:
 * the span of items a slice selects, as slice.indices(n) gives it. */
#ifndef CONC_MANAGER_SLICE_H
#define CONC_MANAGER_SLICE_H

#include "manager/manager_internal.h"

/* A slice's indices into n items, as slice.indices(n) gives them, and
 * the number of items it selects. */
struct conc__mgr_span {
    int64_t start, stop, step, len;
};

/* The span the builtins.slice record `sl` selects out of n items.
 * Returns 0, CONC_ETYPE for a bound that is not an int or None,
 * CONC_EVALUE for a step of 0. */
int conc__mgr_span_of(conc_obj *sl, int64_t n, struct conc__mgr_span *sp);

/* 1 if o is a builtins.slice record, else 0. */
int conc__mgr_is_slice(conc_obj *o);

/* 1 if item i is one the span selects, its place in the span in *k. */
int conc__mgr_span_has(const struct conc__mgr_span *sp, int64_t i, int64_t *k);

#endif
