/* Internal core: allocation through the replaceable hook, deadlines,
 * invariant failures, and small helpers shared by every module. */
#ifndef CONC_CORE_INTERNAL_H
#define CONC_CORE_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "conc/common.h"
#include "conc/error.h"

/* ---- Allocation (all of conc's memory goes through these) ------------- */
void *conc__malloc(size_t size);
void *conc__calloc(size_t count, size_t size);
void *conc__realloc(void *ptr, size_t size);
void conc__free(void *ptr);
char *conc__strdup(const char *s);
/* A zeroed block of `size` bytes at a multiple of `align` (a power of two
 * of at most 4096), for structures laid out by cache line; freed with
 * conc__free_aligned. NULL without memory. */
void *conc__calloc_aligned(size_t align, size_t size);
void conc__free_aligned(void *ptr);

/* ---- Deadlines --------------------------------------------------------
 * Absolute times in nanoseconds on CLOCK_MONOTONIC. CONC__FOREVER never
 * expires; CONC__POLL is already past, for calls that must not block. */
#define CONC__FOREVER INT64_MAX
#define CONC__POLL    ((int64_t)0)

/* Converts a public relative timeout to a deadline. Returns 0, or
 * CONC_EINVAL for NaN. Negative means forever, 0 means poll. */
int conc__deadline(double timeout, int64_t *deadline);

/* Monotonic now, in ns. */
int64_t conc__now_ns(void);

/* ---- Invariants -------------------------------------------------------- */
_Noreturn void conc__panic(const char *fmt, ...) CONC_PRINTF(1, 2);

#define CONC__ASSERT(cond)                                                     \
    do {                                                                       \
        if (!(cond))                                                           \
            conc__panic("%s:%d: assertion failed: %s", __FILE__, __LINE__,     \
                        #cond);                                                \
    } while (0)

#define CONC__UNUSED(x)   ((void)(x))
#define CONC__LIKELY(x)   __builtin_expect(!!(x), 1)
#define CONC__UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
