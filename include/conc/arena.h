/* conc/arena.h: a shared-memory arena inherited by child processes.
 *
 * An arena is one anonymous shared mapping. Memory allocated from it before
 * a fork is at the same address in the child, and writes on either side are
 * seen by the other. Process-shared synchronization objects (a Lock passed
 * `.arena`) and process queues live in an arena. The arena's bookkeeping is
 * itself in shared memory, so any process that inherited the arena may
 * allocate and free; any thread of those processes may call the functions
 * below except conc_arena_free. */
#ifndef CONC_ARENA_H
#define CONC_ARENA_H

#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_arena conc_arena;

/* Creates an arena able to hold about `size` bytes (rounded up to whole
 * pages). Pages take memory only once touched. Returns 0 and a new arena in
 * *out, freed with conc_arena_free; CONC_EINVAL for a size of 0 or over
 * 1 TiB; CONC_ENOMEM.
 * Any thread. */
CONC_EXTERN int conc_arena_new(size_t size, conc_arena **out);

/* Unmaps the arena in the calling process (other processes keep theirs);
 * in the creator it also closes the descriptor that conc_arena_open uses.
 * Every pointer into it becomes invalid here. NULL does nothing. Any
 * thread, once no thread of this process uses the arena. */
CONC_EXTERN void conc_arena_free(conc_arena *a);

/* The process-wide default arena (64 MiB), created on first use. Create it
 * before forking the processes that are to share it. Returns 0 and a
 * borrowed pointer, valid until exit, or CONC_ENOMEM.
 * Any thread. */
CONC_EXTERN int conc_arena_default(conc_arena **out);

/* Allocates `size` zeroed bytes aligned to 64 bytes (a cache line). Returns
 * 0 and the block in *out, freed with conc_arena_dealloc; CONC_EINVAL for a
 * NULL argument or a size of 0; CONC_ENOMEM when the arena has no free
 * block that large; CONC_EBROKEN when the arena's bookkeeping was found
 * corrupt (another process wrote over it; conc_failure_message says what
 * was found), after which every call on the arena fails so. A process
 * killed inside an allocation or a free, even holding the arena's lock,
 * does not stop the others: the next one repairs what it left half done.
 * Any thread of any process that inherited the arena. */
CONC_EXTERN int conc_arena_alloc(conc_arena *a, size_t size, void **out);

/* Returns a block to the arena. Returns 0, also for a NULL ptr (which
 * does nothing); CONC_EINVAL for a NULL arena, or a pointer that is not a
 * block allocated from this arena and not yet freed (a pointer the
 * arena cannot tell from one is the caller's bug, as with free); or
 * CONC_EBROKEN as for conc_arena_alloc. Any thread of any process. */
CONC_EXTERN int conc_arena_dealloc(conc_arena *a, void *ptr);

/* ---- Handing an arena to a process ---------------------------------------
 * A process forked from the creator inherits the arena at the same address.
 * A process that did not (one started by the fork server, which begins from
 * a fresh image of the program) opens it from a conc_arena_ref: plain bytes,
 * to put in the argument of conc_process_new (or of a pool's initializer),
 * that name the arena. conc_arena_open maps it at the creator's address, so
 * every pointer into it is valid there as well: a Lock, Event, Semaphore,
 * Condition, Value or Array made in the arena is handed over as its
 * pointer, next to the arena's ref. Opening works the same after a fork (it
 * finds the inherited mapping), so one child function serves both start
 * methods. docs/processes.md shows it. */
typedef struct conc_arena_ref {
    uint64_t magic;
    uint64_t base; /* the arena's address in every process */
    uint64_t size;
    int32_t pid; /* the creator, which must still run when it is opened */
    int32_t fd;  /* the creator's descriptor of the arena's memory */
} conc_arena_ref;

/* Fills *ref with the bytes that name `a`. Returns 0; CONC_EINVAL for a
 * NULL argument; -ENOSYS when the system refused memfd and the arena can
 * only reach forked children; CONC_EBROKEN for a corrupt arena. Borrows
 * `a`. Any thread of any process that has the arena. */
CONC_EXTERN int conc_arena_share(conc_arena *a, conc_arena_ref *ref);

/* The arena that `ref` names, mapped in the calling process if it is not
 * already (it is in the creator and its forked children). Returns 0 and a
 * borrowed pointer in *out, which this process may unmap with
 * conc_arena_free once it no longer uses the arena; CONC_EINVAL for a
 * NULL argument or bytes that are no ref; CONC_EEXIST when the creator's
 * addresses are taken in this process; a negated errno when the creator's
 * memory cannot be opened (-ENOENT: the creator ended). Any thread. */
CONC_EXTERN int conc_arena_open(const conc_arena_ref *ref, conc_arena **out);

/* Whether `ptr` points into the arena: 1 or 0 (0 for a NULL ptr);
 * CONC_EINVAL for a NULL arena. Any thread. */
CONC_EXTERN int conc_arena_contains(const conc_arena *a, const void *ptr);

/* Total and currently free bytes, for diagnostics and leak checks (0 for
 * a NULL arena, and free bytes 0 for a broken one). Any thread. */
CONC_EXTERN size_t conc_arena_capacity(const conc_arena *a);
CONC_EXTERN size_t conc_arena_available(conc_arena *a);

CONC_END_DECLS

#endif
