/* Every loop of the process, for dumps and the watchdog.
 *
 * Lock order: the registry's lock, then a loop's lock. Neither is held
 * while a loop runs a callback or a task. */
#include <pthread.h>

#include "aio/aio_internal.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static conc_aio_loop *loops;

void
conc__aio_registry_add(conc_aio_loop *loop)
{
    pthread_mutex_lock(&registry_lock);
    loop->reg_prev = NULL;
    loop->reg_next = loops;
    if (loops)
        loops->reg_prev = loop;
    loops = loop;
    pthread_mutex_unlock(&registry_lock);
}

void
conc__aio_registry_remove(conc_aio_loop *loop)
{
    pthread_mutex_lock(&registry_lock);
    if (loop->reg_prev)
        loop->reg_prev->reg_next = loop->reg_next;
    else
        loops = loop->reg_next;
    if (loop->reg_next)
        loop->reg_next->reg_prev = loop->reg_prev;
    pthread_mutex_unlock(&registry_lock);
}

int
conc__aio_registry_each(void (*fn)(conc_aio_loop *loop, void *arg), void *arg)
{
    int running = 0;
    pthread_mutex_lock(&registry_lock);
    for (conc_aio_loop *l = loops; l; l = l->reg_next) {
        running += conc_aio_loop_is_running(l) == 1;
        if (fn)
            fn(l, arg);
    }
    pthread_mutex_unlock(&registry_lock);
    return running;
}
