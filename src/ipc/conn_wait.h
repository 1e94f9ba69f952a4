/* What a module above ipc needs of a connection's receive beyond the
 * public API: waiting for a message or another descriptor, with the
 * connection's spin (recv_spin.c). The manager's server threads wait so
 * for a client's next request or the server's stop. */
#ifndef CONC_IPC_CONN_WAIT_H
#define CONC_IPC_CONN_WAIT_H

#include <stdint.h>

#include "conc/ipc.h"

/* What conc__conn_wait_recv saw. */
#define CONC__CONN_WAIT_MSG 1 /* a receive on the connection goes on at once   \
                               */
#define CONC__CONN_WAIT_FD 2  /* the other descriptor is readable */

/* Waits until a receive on `c` can go on at once (as conc_conn_poll
 * says: a message, its start, the end of the stream or an error to
 * report) or `fd` is readable (fd < 0: none), until the absolute
 * `deadline`. Spins first, by the connection's adaptive budget, then
 * sleeps in the descriptor wait. Returns CONC__CONN_WAIT_MSG,
 * CONC__CONN_WAIT_FD (also when both are ready), 0 at the deadline,
 * CONC_EINVAL for a connection with shared rings (a conc_pipe's end),
 * CONC_ECLOSED once closed, or an error. Borrows both. The thread that
 * receives on `c`. */
int conc__conn_wait_recv(conc_conn *c, int fd, int64_t deadline);

#endif
