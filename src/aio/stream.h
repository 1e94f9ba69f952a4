/* A stream from the inside (stream.c, stream_read.c, stream_write.c,
 * stream_connect.c, stream_server.c).
 *
 * The socket is registered with the loop's epoll, level-triggered, only
 * while the stream wants something of it: EPOLLIN while the read buffer is
 * under its pause mark and the end of stream has not come, EPOLLOUT while
 * bytes wait to be sent. Level-triggered because pausing is then simply
 * "stop asking for EPOLLIN" and a callback may read one chunk and leave
 * the rest in the kernel; with edge triggering every callback would have
 * to read until EAGAIN, which defeats the bounded buffer. When the stream
 * wants nothing the descriptor leaves epoll, so a reset or hang-up on a
 * paused stream cannot make the loop spin on EPOLLERR/EPOLLHUP.
 *
 * Everything here runs in the loop's thread: no locks. */
#ifndef CONC_AIO_STREAM_INTERNAL_H
#define CONC_AIO_STREAM_INTERNAL_H

#include "aio/aio_internal.h"
#include "aio/waiters.h"
#include "conc/aio_stream.h"
#include "conc/buf.h"

#define STREAM_LIMIT      (64u * 1024) /* asyncio's _DEFAULT_LIMIT */
#define STREAM_HIGH_WATER (64u * 1024) /* asyncio's transport default */
#define STREAM_CHUNK      (64u * 1024) /* one recv at most */

/* What carries the stream's bytes under its buffers: the socket itself,
 * or a TLS session over it (stream_tls.c). */
struct conc__stream_ops {
    /* Reads up to n bytes of the stream's data: the count, 0 at the end
     * of stream, -EAGAIN for nothing now, or an error. */
    ssize_t (*recv)(conc_aio_stream *s, uint8_t *dst, size_t n);
    /* Sends the transport's own pending bytes, then up to n of src: the
     * count of src taken (0 is fine), or an error. */
    ssize_t (*send)(conc_aio_stream *s, const uint8_t *src, size_t n);
    /* 1 while the transport holds bytes of its own to send. */
    int (*pending)(conc_aio_stream *s);
    /* Ends the data for close and write_eof (TLS's close_notify). */
    void (*end)(conc_aio_stream *s);
    /* 1 while the transport holds received bytes of its own that the
     * socket's readiness does not show (a TLS session's records). */
    int (*holds)(conc_aio_stream *s);
};

struct conc_aio_stream {
    struct conc__aio_io io; /* first: the ready callback's record */
    conc_aio_loop *loop;    /* bound at first use */
    size_t limit, high, low, write_limit;
    size_t want; /* readexactly's n: the pause mark grows to it */
    conc_buf rbuf, wbuf;
    uint32_t events; /* what epoll watches for now (0: not registered) */
    int eof;         /* the peer's end of stream came */
    int error;       /* the connection's error (a negated errno), sticky */
    int closing;     /* close was called */
    int eof_asked;   /* write_eof was called; shut down once sent */
    int eof_sent;
    int reading; /* a task waits to read */
    int ended;   /* ops->end was called */
    const struct conc__stream_ops *ops;
    conc_tls_session *tls; /* NULL for a plain stream */
    int paused;  /* reading stopped at the pause mark, until the limit */
    int drained; /* the last recv came back short */
    struct conc__aio_waitq readers, drainers, closers;
};

/* The loop's callback for the socket's events. */
void conc__stream_ready(struct conc__aio_io *io, uint32_t events);
/* Fills in the options' defaults. */
void conc__stream_opts(const conc_aio_stream_opts *opts,
                       conc_aio_stream_opts *out);
/* A stream over a non-blocking socket; NULL without memory. */
conc_aio_stream *conc__stream_new(int fd, const conc_aio_stream_opts *opts);
/* Brings the epoll registration in line with what the stream wants.
 * Returns 0 or a negated errno. */
int conc__stream_update(conc_aio_stream *s);
/* One non-blocking recv into the read buffer. Returns 1 if it changed
 * something a reader waits for (bytes, end of stream, an error), else 0. */
int conc__stream_fill(conc_aio_stream *s);
/* Sends what the socket takes of the write buffer; wakes the drainers and
 * finishes a close or write_eof once it is empty. */
void conc__stream_flush(conc_aio_stream *s);
/* Closes the socket now and wakes every waiter. */
void conc__stream_shut(conc_aio_stream *s);
/* Sets the connection's error, drops the write buffer, wakes everyone. */
void conc__stream_fail(conc_aio_stream *s, int err);
/* Once the write buffer is empty: ends the data, and shuts down or
 * closes as asked once the transport has sent everything. */
void conc__stream_sent(conc_aio_stream *s);
/* The connection's error for a caller, with its message recorded again
 * for the calling thread (a TLS failure's reason). */
int conc__stream_error(conc_aio_stream *s);
/* The plain socket's ops. */
extern const struct conc__stream_ops conc__stream_plain;
/* Runs the TLS handshake of a new session on s (start_tls). */
int conc__stream_tls(conc_aio_stream *s, conc_tls_context *ctx,
                     const char *server_hostname, int64_t deadline);
/* The handshake of the options' ssl context on a new stream, within
 * their ssl_handshake_timeout; host is the default server_hostname. */
int conc__stream_tls_open(conc_aio_stream *s, const conc_aio_stream_opts *o,
                          const char *host, int64_t deadline);

#endif
