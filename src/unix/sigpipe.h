/* Writing to a pipe whose reader is gone without SIGPIPE killing the
 * program. Sockets use MSG_NOSIGNAL; pipes have no such flag, so the
 * writing thread blocks SIGPIPE around its writes and, after an EPIPE,
 * takes the signal its write raised (never one the caller already had
 * pending) before restoring its mask. */
#ifndef CONC_UNIX_SIGPIPE_H
#define CONC_UNIX_SIGPIPE_H

#include <signal.h>

struct conc__sigpipe_guard {
    sigset_t old;    /* the thread's mask before the guard */
    int was_blocked; /* the caller already blocked SIGPIPE */
    int was_pending; /* and one was pending: not ours to take */
};

/* Blocks SIGPIPE in the calling thread. */
void conc__sigpipe_block(struct conc__sigpipe_guard *g);

/* Restores the thread's mask; `got_epipe` says whether a write failed with
 * EPIPE, so that its SIGPIPE is pending and must be taken first. */
void conc__sigpipe_restore(struct conc__sigpipe_guard *g, int got_epipe);

#endif
