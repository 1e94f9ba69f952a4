/* Internal to the shm module: the exit-time clean-up of named segments
 * (tracker.c), used by segment.c. */
#ifndef CONC_SHM_INTERNAL_H
#define CONC_SHM_INTERNAL_H

#include <limits.h>
#include <sys/types.h>

#include "conc/shm.h"
#include "core/internal.h"

/* A segment this process created and has not unlinked. */
struct conc__shm_tracked {
    struct conc__shm_tracked *next; /* guarded by the tracker's lock */
    pid_t pid;                      /* the creating process */
    dev_t dev;                      /* identify the segment itself, not */
    ino_t ino;                      /* just its name */
    char path[NAME_MAX + 2];        /* "/name" */
};

/* Allocates an entry, before creating the segment, so that tracking it
 * cannot fail afterwards. Returns NULL when out of memory. */
struct conc__shm_tracked *conc__shm_track_alloc(void);

/* Records the segment created at `path` (dev and ino from fstat) for
 * unlinking at exit; takes ownership of `t`. */
void conc__shm_track(struct conc__shm_tracked *t, const char *path, dev_t dev,
                     ino_t ino);

/* Forgets `path` if this process created it (it was unlinked). */
void conc__shm_untrack(const char *path);

#endif
