/* Waiting for descriptors until an absolute deadline: the one poll loop
 * every module uses (pipes, connections, pidfds, the fork server socket). */
#ifndef CONC_UNIX_FDWAIT_H
#define CONC_UNIX_FDWAIT_H

#include <poll.h>
#include <stdint.h>

/* Polls `fds` until one is ready or the absolute monotonic `deadline` (ns;
 * CONC__FOREVER for none, CONC__POLL to look once) passes. A signal does
 * not cut the wait short: it resumes with the time left. Returns the number
 * of ready descriptors, 0 at the deadline, or a negated errno. */
int conc__poll_until(struct pollfd *fds, unsigned n, int64_t deadline);

/* conc__poll_until for one descriptor and the given events. */
int conc__poll_fd(int fd, short events, int64_t deadline);

#endif
