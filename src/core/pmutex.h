/* A robust process-shared pthread mutex, set up in one place: the arena's
 * lock (core) and the mutex under process-shared Locks and RLocks (sync)
 * are both this. */
#ifndef CONC_CORE_PMUTEX_H
#define CONC_CORE_PMUTEX_H

#include <pthread.h>

/* Initializes a robust process-shared mutex, of the error-checking type
 * when `errorcheck`, else the normal type. Returns 0 or a negated errno. */
int conc__robust_init(pthread_mutex_t *m, int errorcheck);

#endif
