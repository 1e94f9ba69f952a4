/* Internal to the arena (core/arena.c): a consistency check and a hook
 * for tests that stop a process at chosen points inside an allocation,
 * with the arena's lock held, so that it can be killed there. */
#ifndef CONC_CORE_ARENA_INTERNAL_H
#define CONC_CORE_ARENA_INTERNAL_H

#include "conc/arena.h"

/* The points where conc__arena_hook is called, in the order a split, an
 * allocation and a merge reach them. */
enum conc__arena_point {
    CONC__ARENA_SPLIT_WRITTEN, /* the new free block's tag is written */
    CONC__ARENA_SPLIT_DONE,    /* the old block is shrunk to its part */
    CONC__ARENA_ALLOC_TAKEN,   /* the block is marked allocated */
    CONC__ARENA_MERGED,        /* a block grew over its free neighbour */
    CONC__ARENA_POINTS
};

/* Called, when not NULL, at each point above with the lock held. Only for
 * tests: set it in a child process before the call to stop in. */
extern void (*conc__arena_hook)(enum conc__arena_point point);

/* Runs the repair that follows an owner's death (rebuilding the free
 * list and counts from the chain of blocks), for tests and the fuzz
 * target. Returns 0 or CONC_EBROKEN. Any thread. */
int conc__arena_recover(conc_arena *a);

/* Walks the whole arena and checks that its chain of blocks, free list and
 * free byte count agree. Returns 0 or CONC_EBROKEN (the arena is then
 * marked broken). Any thread. */
int conc__arena_check(conc_arena *a);

#endif
