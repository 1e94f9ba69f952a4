/* An async subprocess from the inside (subprocess.c: starting, waiting,
 * signals, freeing; subprocess_communicate.c: communicate).
 *
 * The child itself is a conc_popen of the subprocess module, which starts
 * it, reaps it and signals it; this object adds the streams and the state
 * of communicate. The popen's pidfd is opened as soon as the child runs,
 * so that every wait in a task suspends on it through the loop's epoll
 * (the descriptor wait of src/unix is coroutine-aware). */
#ifndef CONC_AIO_SUBPROCESS_INTERNAL_H
#define CONC_AIO_SUBPROCESS_INTERNAL_H

#include "conc/aio_subprocess.h"
#include "conc/buf.h"

struct conc_aio_subprocess {
    conc_popen *popen;
    conc_aio_stream *stream[3]; /* the pipes' streams, NULL where none */
    int kill_on_timeout;

    /* communicate's state, used in the loop's thread only. */
    int communicating; /* a communicate runs: another is refused */
    int comm_started;  /* input may no longer be given */
    conc_buf pending;  /* input not yet handed to the stdin stream */
    conc_buf got[2];   /* stdout and stderr read so far, handed over (and
                          emptied) when a communicate succeeds */
};

/* Waits for the child until the absolute `deadline`; at the deadline,
 * with kill_on_timeout, kills it (its group if it leads one) and reaps it.
 * Returns 0 and *returncode (may be NULL), CONC_ETIMEDOUT, CONC_ECHILD. */
int conc__aio_subprocess_wait_until(conc_aio_subprocess *p, int64_t deadline,
                                    int *returncode);

#endif
