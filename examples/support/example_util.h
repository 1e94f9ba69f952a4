/* The plumbing every example shares: checking a call, and whole sends and
 * receives on a socket. What an example shows of its seed stays in the
 * example; only these helpers, the same in all of them, live here. */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#include <stddef.h>

#include "conc.h"

/* Does nothing if rc is 0. Otherwise prints "what: NAME: message" to stderr,
 * with the task's failure message if the call left one (else the code's
 * text), and ends the process at once with exit code 1: _Exit, not exit(),
 * which would first wait for the other threads, and one of them may be what
 * went wrong. In a forked child it ends only the child, whose parent then
 * sees exit code 1. Any thread. */
void check(int rc, const char *what);

/* A system call's result: 0 if rc is not negative, else the conc code of
 * errno (-errno). Call it straight on the call's result, before anything
 * else can change errno. */
int sys(int rc);

/* Sends all len bytes of buf on the socket fd, again after EINTR: 0 or
 * -errno. MSG_NOSIGNAL turns a closed peer into -EPIPE instead of a SIGPIPE
 * that would kill the process. */
int send_all(int fd, const void *buf, size_t len);

/* Appends to out what the socket fd sends until the peer closes the
 * connection: 0, -errno, or CONC_ENOMEM. out keeps what arrived either way;
 * the caller frees it. */
int recv_to_end(int fd, conc_buf *out);

#endif
