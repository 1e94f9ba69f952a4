/* Signal handlers on a loop (add_signal_handler).
 *
 * One process-wide handler notes the signal's arrival in a flag and wakes
 * the loop that asked for it through that loop's eventfd (write is
 * async-signal-safe); the loop then runs the callback as an ordinary
 * callback, in its own thread. That works whichever thread the kernel
 * picks to deliver a process-directed signal. (A signalfd would see the
 * signal only if every thread of the program blocked it, which a library
 * cannot promise: a thread that did not would die of SIGINT's default
 * action.) */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "aio/aio_internal.h"
#include "unix/platform.h"

#define NSIGNALS 65 /* Linux's signals are 1..64 */

struct slot {
    conc_aio_loop *_Atomic loop;
    conc_aio_cb fn;
    void *arg;
    struct sigaction old;
    _Atomic uint32_t pending;
};

static struct slot slots[NSIGNALS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static void
on_signal(int sig)
{
    if (sig <= 0 || sig >= NSIGNALS)
        return;
    conc_aio_loop *loop = atomic_load(&slots[sig].loop);
    if (!loop)
        return;
    atomic_store(&slots[sig].pending, 1);
    atomic_store(&loop->sig_pending, 1);
    conc__eventfd_signal(loop->evfd);
}

void
conc__aio_signals_dispatch(conc_aio_loop *loop)
{
    if (!atomic_exchange(&loop->sig_pending, 0))
        return;
    for (int sig = 1; sig < NSIGNALS; sig++) {
        struct slot *s = &slots[sig];
        if (atomic_load(&s->loop) == loop && atomic_exchange(&s->pending, 0))
            conc_aio_call_soon(loop, s->fn, s->arg, NULL);
    }
}

static int
valid(int sig)
{
    return sig > 0 && sig < NSIGNALS && sig != SIGKILL && sig != SIGSTOP &&
           sig != SIGURG;
}

void
conc__aio_signals_fork_lock(int take)
{
    if (take)
        pthread_mutex_lock(&slots_lock);
    else
        pthread_mutex_unlock(&slots_lock);
}

int
conc_aio_add_signal_handler(conc_aio_loop *loop, int sig, conc_aio_cb fn,
                            void *arg)
{
    if (!loop || !fn || !valid(sig))
        return CONC_EINVAL;
    if (loop->closed)
        return CONC_ECLOSED;
    int r = 0;
    pthread_mutex_lock(&slots_lock);
    struct slot *s = &slots[sig];
    conc_aio_loop *owner = atomic_load(&s->loop);
    if (owner && owner != loop) {
        r = conc_fail(CONC_ESTATE, "signal %d is handled by another loop", sig);
    } else {
        s->fn = fn;
        s->arg = arg;
        if (!owner) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            atomic_store(&s->pending, 0);
            atomic_store(&s->loop, loop);
            if (sigaction(sig, &sa, &s->old) < 0) {
                r = -errno;
                atomic_store(&s->loop, NULL);
            }
        }
    }
    pthread_mutex_unlock(&slots_lock);
    return r;
}

int
conc_aio_remove_signal_handler(conc_aio_loop *loop, int sig)
{
    if (!loop || sig <= 0 || sig >= NSIGNALS)
        return CONC_EINVAL;
    int removed = 0;
    pthread_mutex_lock(&slots_lock);
    struct slot *s = &slots[sig];
    if (atomic_load(&s->loop) == loop) {
        sigaction(sig, &s->old, NULL);
        atomic_store(&s->loop, NULL);
        removed = 1;
    }
    pthread_mutex_unlock(&slots_lock);
    return removed;
}

void
conc__aio_signals_close(conc_aio_loop *loop)
{
    for (int sig = 1; sig < NSIGNALS; sig++)
        conc_aio_remove_signal_handler(loop, sig);
}
