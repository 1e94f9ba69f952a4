/* Every loop of the process, for dumps and the watchdog.
 *
 * Lock order: the registry's lock, then a loop's lock. Neither is held
 * while a loop runs a callback or a task. */
#include <pthread.h>

#include "aio/aio_internal.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static conc_aio_loop *loops;

/* The child of a fork has one thread, which runs no loop and no task:
 * a process forked from a task (a process pool made in a coroutine)
 * carries on as a plain program. The parent's loops stay listed (their
 * memory is the child's too) but no thread of the child runs them. */
/* Lock order for the fork: the watchdog's, the registry's, the signal
 * table's, the parking lot's buckets; all are taken before the fork and
 * released on both sides after it, so the child finds none held by a
 * thread it does not have. */
static void
atfork_prepare(void)
{
    conc__aio_watchdog_fork_lock(1);
    pthread_mutex_lock(&registry_lock);
    conc__aio_signals_fork_lock(1);
    conc__park_fork_lock(1);
}

static void
atfork_parent(void)
{
    conc__park_fork_lock(0);
    conc__aio_signals_fork_lock(0);
    pthread_mutex_unlock(&registry_lock);
    conc__aio_watchdog_fork_lock(0);
}

void
conc__aio_atfork_child(void)
{
    atfork_parent();
    conc__aio_running = NULL;
    conc__park_atfork_child();
    conc__aio_task_atfork_child();
    conc__aio_watchdog_atfork_child();
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
atfork_register_once(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, conc__aio_atfork_child);
}

void
conc__aio_atfork_register(void)
{
    pthread_once(&atfork_once, atfork_register_once);
}

void
conc__aio_registry_add(conc_aio_loop *loop)
{
    conc__aio_atfork_register();
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
