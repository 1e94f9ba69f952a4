/* Robust process-shared mutexes (pmutex.h). */
#include "core/pmutex.h"

int
conc__robust_init(pthread_mutex_t *m, int errorcheck)
{
    pthread_mutexattr_t attr;
    int e = pthread_mutexattr_init(&attr);
    if (e)
        return -e;
    e = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!e)
        e = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (!e)
        e = pthread_mutexattr_settype(&attr, errorcheck
                                                 ? PTHREAD_MUTEX_ERRORCHECK
                                                 : PTHREAD_MUTEX_NORMAL);
    if (!e)
        e = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return -e;
}
