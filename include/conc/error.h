/* conc/error.h: error codes, their names and messages.
 *
 * Every conc function that can fail returns an int: 0 for success or a
 * negative code. System errors keep their errno value, negated (CONC_ENOMEM
 * is -ENOMEM). The library's own codes, named after the Python exceptions
 * they stand for, lie below -10000 so they never collide with an errno. */
#ifndef CONC_ERROR_H
#define CONC_ERROR_H

#include <errno.h>

#include "common.h"

CONC_BEGIN_DECLS

/* X(NAME, value, message): the one table from which the enum, conc_strerror
 * and conc_err_name are generated. */
#define CONC_ERRNO_MAP(X)                                                      \
    X(EINVAL, -EINVAL, "invalid argument")                                     \
    X(ENOMEM, -ENOMEM, "out of memory")                                        \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                     \
    X(EPERM, -EPERM, "operation not permitted")                                \
    X(EDEADLK, -EDEADLK, "the call would deadlock")                            \
    X(EOVERFLOW, -EOVERFLOW, "value too large")                                \
    X(ETIMEDOUT, -ETIMEDOUT, "timed out")                                      \
    X(ECANCELED, -ECANCELED, "cancelled")                                      \
    X(EPROTO, -EPROTO, "protocol error")                                       \
    X(EOWNERDEAD, -EOWNERDEAD, "the lock's owner died while holding it")       \
    X(ENOTRECOVERABLE, -ENOTRECOVERABLE,                                       \
      "the lock is unusable: its owner "                                       \
      "died and it was not recovered")                                         \
    X(EMSGSIZE, -EMSGSIZE, "message too long")                                 \
    X(EBADF, -EBADF, "bad file descriptor")                                    \
    X(EPIPE, -EPIPE, "broken pipe")                                            \
    X(ESRCH, -ESRCH, "no such process")                                        \
    X(ECHILD, -ECHILD, "no child process to wait for")                         \
    X(ENOENT, -ENOENT, "no such file or directory")                            \
    X(EEXIST, -EEXIST, "already exists")                                       \
    X(EACCES, -EACCES, "permission denied")                                    \
    X(EBUSY, -EBUSY, "resource busy")                                          \
    X(EINTR, -EINTR, "interrupted by a signal")                                \
    X(EEMPTY, -10001, "the queue is empty (queue.Empty)")                      \
    X(EFULL, -10002, "the queue is full (queue.Full)")                         \
    X(EBROKEN, -10003, "broken: a worker died or a barrier was broken")        \
    X(ECLOSED, -10004, "closed: end of stream, or shut down")                  \
    X(EVALUE, -10005, "invalid value (ValueError)")                            \
    X(ETASK, -10006, "the task failed; see its message")                       \
    X(EAUTH, -10007, "authentication failed")                                  \
    X(ENOTLOCKED, -10008, "release of a lock that is not locked")              \
    X(ENOTOWNER, -10009, "the lock is not owned by the calling thread")        \
    X(ESTATE, -10010, "not valid in the object's current state")               \
    X(EPROCESS, -10011,                                                        \
      "the program exited with a non-zero status (CalledProcessError)")        \
    X(EKEY, -10012, "no such key (KeyError)")                                  \
    X(EINDEX, -10013, "index out of range (IndexError)")                       \
    X(ETYPE, -10014, "wrong type (TypeError)")                                 \
    X(EINCOMPLETE, -10015,                                                     \
      "the stream ended before the bytes asked for (IncompleteReadError)")     \
    X(ELIMIT, -10016,                                                          \
      "the data passed the reader's limit (LimitOverrunError)")                \
    X(ETLS, -10017, "TLS failed: handshake, certificate or record (SSLError)")

/* The codes as an enum: CONC_EINVAL, CONC_EEMPTY, ... */
enum conc_errno {
#define CONC_X_(name, value, msg) CONC_##name = (value),
    CONC_ERRNO_MAP(CONC_X_)
#undef CONC_X_
};

/* Returns a static, human-readable message for `err` (a negative conc code or
 * negated errno; 0 gives "success"). Never NULL; unknown codes give
 * "unknown error". Any thread may call it. */
CONC_EXTERN const char *conc_strerror(int err);

/* Returns the static name of `err`, such as "CONC_EEMPTY" or, for a system
 * error outside the table, its errno name ("ECONNRESET"). Never NULL. Any
 * thread may call it. */
CONC_EXTERN const char *conc_err_name(int err);

/* ---- Failure messages ---------------------------------------------------
 * A thread function or task fails by returning a negative code; it may also
 * leave a message that travels with that code to whoever reports or waits on
 * the result (Python's exception text). The message is per thread. */

/* Records a printf-style failure message for the calling thread and returns
 * `err` unchanged, so a task can write
 *     return conc_fail(CONC_EVALUE, "bad row %d", row);
 * The message is cut at 255 bytes. Any thread. */
CONC_EXTERN int conc_fail(int err, const char *fmt, ...) CONC_PRINTF(2, 3);

/* The calling thread's last failure message, or "" if none was recorded
 * since the last conc_clear_failure. Valid until that thread's next
 * conc_fail or conc_clear_failure.
 * The string is static storage of the calling thread, owned by conc. */
CONC_EXTERN const char *conc_failure_message(void);

/* Forgets the calling thread's failure message. */
CONC_EXTERN void conc_clear_failure(void);

CONC_END_DECLS

#endif
