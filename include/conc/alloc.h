/* conc/alloc.h: the replaceable allocator.
 *
 * Every allocation conc makes goes through these four functions, so a
 * program can route conc's memory to its own allocator and tests can inject
 * failures. */
#ifndef CONC_ALLOC_H
#define CONC_ALLOC_H

#include "common.h"

CONC_BEGIN_DECLS

typedef void *(*conc_malloc_fn)(size_t size);
typedef void *(*conc_realloc_fn)(void *ptr, size_t size);
typedef void *(*conc_calloc_fn)(size_t count, size_t size);
typedef void (*conc_free_fn)(void *ptr);

/* Replaces the allocator. All four must be given and must behave as their
 * C standard counterparts; memory conc already holds is later freed with the
 * free function installed at that time, so replace the allocator before
 * creating any conc object, or with functions compatible with the previous
 * ones (a counting or failing wrapper around malloc is). Returns 0, or
 * CONC_EINVAL if any is NULL. Call it while no other thread uses conc. */
CONC_EXTERN int conc_replace_allocator(conc_malloc_fn malloc_fn,
                                       conc_realloc_fn realloc_fn,
                                       conc_calloc_fn calloc_fn,
                                       conc_free_fn free_fn);

/* Frees memory that a conc function returned to the caller as a plain block
 * (a name list, a byte string). NULL does nothing. Any thread. */
CONC_EXTERN void conc_free(void *ptr);

CONC_END_DECLS

#endif
