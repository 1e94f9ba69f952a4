#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "unix/sigpipe.h"

void
conc__sigpipe_block(struct conc__sigpipe_guard *g)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    g->was_blocked = sigismember(&g->old, SIGPIPE) == 1;
    g->was_pending = 0;
    /* A thread that did not block SIGPIPE cannot have one pending: asking
     * costs a system call only when the answer can be yes. */
    if (g->was_blocked) {
        sigset_t pending;
        sigpending(&pending);
        g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    }
}

void
conc__sigpipe_restore(struct conc__sigpipe_guard *g, int got_epipe)
{
    if (got_epipe && !g->was_pending) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!g->was_blocked)
        pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
