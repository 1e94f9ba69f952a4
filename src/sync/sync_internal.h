/* Internal to the sync module: object headers shared by its files, and how
 * an object finds its memory (malloc, or a shared arena). */
#ifndef CONC_SYNC_INTERNAL_H
#define CONC_SYNC_INTERNAL_H

#include "conc/sync.h"
#include "core/internal.h"
#include "core/lockword.h"

/* Allocates `size` zeroed bytes from `arena`, or from the heap when it is
 * NULL. Returns NULL when out of memory. */
void *conc__sync_alloc(conc_arena *arena, size_t size);

/* Frees memory from conc__sync_alloc. */
void conc__sync_dealloc(conc_arena *arena, void *p);

struct conc_lock {
    conc__lockword word;
    uint32_t shared; /* 1 when in an arena: process-shared futex */
    conc_arena *arena;
};

#endif
