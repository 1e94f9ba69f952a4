/* conc/ipc.h: pipes and connections between processes
 * (multiprocessing.Pipe and multiprocessing.connection.Connection).
 *
 * conc_pipe makes two connected conc_conn objects. Fork after making them
 * and each process uses one end (and usually frees the other): what one end
 * sends, the other receives, as whole messages of bytes in the order sent.
 * Any size goes, from 0 bytes up; the library copies the bytes, so the
 * payload must not hold pointers. A duplex connection (the default, as in
 * Python) carries messages both ways and can also carry open descriptors;
 * a simplex pipe carries messages one way only.
 *
 * Ends of a connection:
 *   - EOF: once every copy of the other end is closed (in every process)
 *     and the messages already sent have been received, a receive returns
 *     CONC_ECLOSED (Python's EOFError). A fork copies the descriptors, so a
 *     process should free the end it does not use, or it will keep its own
 *     reads from ever seeing EOF.
 *   - A send to an end that has been closed everywhere returns CONC_EPIPE;
 *     SIGPIPE never kills the program. (On a conc_pipe whose receiving
 *     process was killed without closing, sends into the shared ring may
 *     still succeed until the ring is full; then CONC_EPIPE.)
 *   - A connection that was closed with conc_conn_close answers every call
 *     but conc_conn_close and conc_conn_free with CONC_ECLOSED.
 *
 * Threads: a connection is not locked. At any moment one thread may send
 * and one thread may receive (conc_conn_recv_*, conc_conn_poll) on it; two
 * senders or two receivers at once mix up messages, as in Python. The same
 * holds across processes for copies of one end made by fork. Closing or
 * freeing a connection that another thread is using is a bug.
 *
 * Descriptors: every descriptor conc opens here is close-on-exec. */
#ifndef CONC_IPC_H
#define CONC_IPC_H

#include "buf.h"
#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_conn conc_conn;

typedef struct conc_pipe_opts {
    /* 0: duplex, both ends send and receive (Pipe(), Python's default);
     * nonzero: one-way, like Pipe(duplex=False): the first end only
     * receives and the second only sends. */
    int simplex;
    /* The largest message either end accepts; a larger incoming message
     * fails the receive with CONC_EMSGSIZE (see conc_conn_recv_bytes).
     * 0: no limit. */
    size_t max_message;
} conc_pipe_opts;

typedef struct conc_conn_opts {
    size_t max_message; /* as in conc_pipe_opts; 0: no limit */
} conc_conn_opts;

/* Creates a connected pair, Python's `a, b = Pipe(duplex)`. `opts` may be
 * NULL for Python's defaults (duplex, no size limit). A duplex pair is a
 * Unix stream socket pair; a simplex pair is a pipe, `a` its reading end and
 * `b` its writing end. Both ends also share memory (one ring per
 * direction, inherited by fork) through which messages of up to 16 KiB
 * travel without a system call once the receiving end has received once;
 * the descriptor still carries descriptors, larger messages and the end
 * of the stream (docs/pipes.md, "Speed"). To hand an end to a process, use
 * conc_conn_share (below), which loses nothing. An end handed on as a
 * descriptor (conc_conn_send_fd, then conc_conn_from_fd there) works
 * without the ring; hand it on before it receives, or only once the
 * messages sent to it so far are received, as messages left in its ring
 * stay there. Returns 0 and two new connections in *a
 * and *b, each freed with conc_conn_free; CONC_ENOMEM; or a system error such
 * as -EMFILE when no descriptor is left. On failure nothing is left open. Any
 * thread. */
CONC_EXTERN int conc_pipe(const conc_pipe_opts *opts, conc_conn **a,
                          conc_conn **b);

/* Wraps an open descriptor in a connection, so a socket accepted by a
 * server, a descriptor received with conc_conn_recv_fd or one inherited
 * from a parent can carry messages. The other side must speak conc's
 * framing (another conc_conn). A stream socket is used both ways (and
 * carries descriptors when it is a Unix socket); any other descriptor
 * (a pipe, a FIFO, a file) is readable or writable as its open mode says.
 * `opts` may be NULL. Takes ownership of `fd` on success (conc_conn_close
 * closes it); on failure the caller keeps it. Returns 0 and a new
 * connection in *out, freed with conc_conn_free; CONC_EBADF if `fd` is not
 * open; CONC_EINVAL for a socket that is not a stream socket, or a
 * descriptor open neither for reading nor for writing; CONC_ENOMEM. Any
 * thread. */
CONC_EXTERN int conc_conn_from_fd(int fd, const conc_conn_opts *opts,
                                  conc_conn **out);

/* Closes the connection (Connection.close): its descriptor, any received
 * descriptor not yet taken with conc_conn_recv_fd, and buffered input. The
 * object stays valid until freed; every later call on it returns
 * CONC_ECLOSED, except conc_conn_close again, which does nothing (as in
 * Python). Affects only this process's copy. Returns 0.
 * Any thread, while no other thread uses the connection. */
CONC_EXTERN int conc_conn_close(conc_conn *c);

/* Closes the connection if it is open and frees the object. NULL does
 * nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_conn_free(conc_conn *c);

/* Sends `len` bytes from `data` as one message (send_bytes). Copies the
 * bytes; `data` may be NULL when len is 0. Waits up to `timeout` while the
 * other side leaves no room (a message larger than the system's buffer
 * goes through as the other side reads it). Returns 0 once the whole
 * message is handed to the system; CONC_ETIMEDOUT when room did not come
 * in time: if part of the message had gone out, the stream is cut inside
 * it, the other side reads CONC_EPROTO once the connection ends, and
 * later sends return CONC_EPROTO; CONC_EPIPE (also for a reset
 * connection) when the other end is closed everywhere; CONC_EBADF on the
 * receiving end of a simplex pipe, or a descriptor not open for writing;
 * CONC_ECLOSED after conc_conn_close; CONC_EMSGSIZE above 2^56 - 1 bytes;
 * CONC_EINVAL for a NULL connection, NULL data with a nonzero length or a
 * NaN timeout; other system errors negated. Borrows `data`. Any thread
 * (one sender at a time, see above). A failure in the middle of a message
 * leaves the stream unusable for the other side (it reads CONC_EPROTO). */
CONC_EXTERN int conc_conn_send_bytes(conc_conn *c, const void *data, size_t len,
                                     double timeout);

/* Receives the next message into `out` (recv_bytes), replacing its content:
 * on success out->len is the message's length, and out's memory is reused
 * when it is large enough. Waits up to `timeout`. Returns:
 *   0;
 *   CONC_ETIMEDOUT when no whole message came in time. Part of a message
 *     that did arrive is kept by the connection, and the next receive
 *     continues it, so nothing is lost or corrupted;
 *   CONC_ECLOSED at end of stream between messages (EOFError), also on
 *     every later call;
 *   CONC_EPROTO when the stream ends in the middle of a message, or the
 *     other side sent something that is not conc's framing; the receiving
 *     side is then shut and later receives return CONC_ECLOSED;
 *   CONC_EPROTO, without consuming anything, when the next message is a
 *     descriptor (take it with conc_conn_recv_fd);
 *   CONC_EMSGSIZE when the message is larger than the connection's
 *     max_message; as in Python the receiving side is then shut (later
 *     receives return CONC_ECLOSED) while sending still works;
 *   CONC_ENOMEM when out cannot grow to the message's size (the message is
 *     kept for a later try);
 *   CONC_EBADF on the sending end of a simplex pipe, CONC_ECLOSED after
 *     conc_conn_close, CONC_EINVAL for a NaN timeout or NULL out, other
 *     system errors negated.
 * On failure `out` is unchanged (content and memory).
 * One receiving thread at a time (see the top of this file). */
CONC_EXTERN int conc_conn_recv_bytes(conc_conn *c, double timeout,
                                     conc_buf *out);

/* Receives the next message into the caller's buffer of `cap` bytes
 * (recv_bytes_into) and stores its length in *len. Returns what
 * conc_conn_recv_bytes returns, except that a message longer than `cap`
 * fails with CONC_EMSGSIZE *and stays pending*, whole, for a later receive
 * with a larger buffer or with conc_conn_recv_bytes; *len then holds the
 * message's length, so the caller knows how much room it needs (Python's
 * BufferTooShort hands over the message instead). `buf` may be NULL when
 * cap is 0. CONC_ENOMEM only if the connection must keep part of a long
 * message across a timeout and cannot; the receiving side is then shut.
 * One receiving thread at a time (see the top of this file). */
CONC_EXTERN int conc_conn_recv_bytes_into(conc_conn *c, void *buf, size_t cap,
                                          double timeout, size_t *len);

/* Waits up to `timeout` for something to receive (poll). Returns 1 when a
 * receive will return at once: a whole message (or descriptor) is buffered,
 * the stream has ended, or the receiving side is shut; also when part of a
 * message too large for the connection's buffer has arrived (the receive
 * then waits for the rest). Returns 0 if nothing came in time (timeout 0
 * just looks), CONC_EBADF on the sending end of a simplex pipe,
 * CONC_ECLOSED after conc_conn_close, CONC_EINVAL for a NaN timeout, other
 * system errors negated. Note that Python's poll() defaults to a timeout of
 * 0; here it is always given.
 * One receiving thread at a time (see the top of this file). */
CONC_EXTERN int conc_conn_poll(conc_conn *c, double timeout);

/* Sends an open descriptor to the other side as a message of its own,
 * ordered with the byte messages. Borrows `fd`: the caller may close it
 * once the call returns; the other side receives its own descriptor for
 * the same open file. Needs a connection over a Unix socket (a duplex
 * pipe, or conc_conn_from_fd on a Unix stream socket): CONC_EINVAL on a
 * simplex pipe or another kind of descriptor. Returns 0, CONC_EBADF if
 * `fd` is not open, and otherwise the errors of conc_conn_send_bytes
 * (CONC_ETIMEDOUT when no room came within `timeout`).
 * One sending thread at a time (see the top of this file). */
CONC_EXTERN int conc_conn_send_fd(conc_conn *c, int fd, double timeout);

/* Receives a descriptor sent with conc_conn_send_fd, waiting up to
 * `timeout`. On success *fd is a new, close-on-exec descriptor the caller
 * owns. Returns the errors of conc_conn_recv_bytes, with CONC_EPROTO,
 * consuming nothing, when the next message is bytes rather than a
 * descriptor, and CONC_EINVAL on a connection that cannot carry
 * descriptors (a simplex pipe).
 * One receiving thread at a time (see the top of this file). */
CONC_EXTERN int conc_conn_recv_fd(conc_conn *c, double timeout, int *fd);

/* The connection's descriptor (fileno), for waiting on it with poll or
 * epoll: returns 0 and stores it in *fd; CONC_ECLOSED after
 * conc_conn_close, CONC_EINVAL for a NULL pointer. The descriptor is
 * borrowed: do not close it or read from it. A message may already sit in
 * the connection's buffer while the descriptor shows nothing: check
 * conc_conn_poll(c, 0) before waiting on the descriptor. On an end made by
 * conc_pipe, the first call also gives up the shared ring for the messages
 * this end receives, so that every later message makes the descriptor
 * readable. Any thread. */
CONC_EXTERN int conc_conn_fileno(const conc_conn *c, int *fd);

/* Python's `closed`, `readable` and `writable`: 1 or 0. A closed
 * connection is neither readable nor writable; the ends of a simplex pipe
 * are one each; a connection whose receiving side was shut after an error
 * (see conc_conn_recv_bytes) is no longer readable. Call them from the
 * thread that receives, or while no thread receives.
 * CONC_EINVAL for a NULL connection. */
CONC_EXTERN int conc_conn_closed(const conc_conn *c);
CONC_EXTERN int conc_conn_readable(const conc_conn *c);
CONC_EXTERN int conc_conn_writable(const conc_conn *c);

/* ---- Handing an end to a process ----------------------------------------
 * Python's Process(target=f, args=(conn,)). A forked child inherits the
 * parent's ends; a process started by the fork server inherits nothing.
 * conc_conn_share names an end in a conc_conn_ref, plain bytes to put in
 * the argument of conc_process_new (or of a pool's initializer), and the
 * process opens a handle of its own with conc_conn_open. Opening works
 * after a fork too, so one child function serves both start methods.
 *
 * The opened handle reads and writes the creator's descriptor and never
 * the shared rings of a conc_pipe: conc_conn_share sets the end (in every
 * process) to take every later message from the descriptor, and tells the
 * other end to wait on its descriptor. So what the other end sends after
 * the share reaches the opened handle, in order. Messages sent before the
 * share are never lost: an end that holds any (received but not yet taken,
 * or waiting in its ring), or whose ring the other end already writes to
 * because it received before, is refused with CONC_ESTATE, and stays
 * usable as it was. Hand an end on before its first receive, as Python's
 * programs do. */
typedef struct conc_conn_ref {
    uint32_t magic;
    int32_t pid;          /* the process that shared it, which must still run */
    int32_t fd;           /* that process's descriptor of the end */
    uint32_t flags;       /* what the end may do (readable, writable...) */
    uint64_t max_message; /* as in conc_conn_opts */
    uint64_t dev, ino;    /* which open file the descriptor is */
} conc_conn_ref;

/* Fills *ref with the bytes that name the end `c` (see above), and from
 * now on sends what the other end sends to `c` through the descriptor.
 * The caller usually frees its own `c` once the process has opened the
 * ref (as Python's parent closes its copy after start); until then it
 * must not receive on it, or the two handles share the messages. Returns 0;
 * CONC_EINVAL for a NULL argument; CONC_ECLOSED after conc_conn_close;
 * CONC_ESTATE (with a failure message saying why) when `c` holds
 * messages not yet received, its receiving side has switched to the
 * shared ring or has been shut after an error, or a timed-out send cut
 * the stream. Borrows `c`. The thread that receives on `c`, or any thread
 * while none does. */
CONC_EXTERN int conc_conn_share(conc_conn *c, conc_conn_ref *ref);

/* Opens the end that `ref` names: a new descriptor of this process for
 * the same socket or pipe (the one inherited, when the sharing process is
 * this process's parent and this process was forked from it; otherwise
 * obtained from the sharing process with pidfd_getfd, which needs Linux
 * 5.6 and the right to trace that process). Returns 0 and a new
 * connection in *out, freed with conc_conn_free (which closes only this
 * process's descriptor); CONC_EINVAL for a NULL argument or bytes that
 * name no end; CONC_ESRCH when the sharing process has ended; CONC_EBADF
 * when it no longer has that descriptor (or one of another file there);
 * CONC_EPERM when it may not be traced; -ENOSYS without pidfds when the
 * descriptor was not inherited from the parent; CONC_ENOMEM; other system
 * errors negated. Each failure leaves a message (conc_failure_message).
 * Any thread. */
CONC_EXTERN int conc_conn_open(const conc_conn_ref *ref, conc_conn **out);

CONC_END_DECLS

#endif
