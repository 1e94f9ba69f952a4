/* conc/aio_stream.h: TCP and Unix streams on the event loop (asyncio's
 * open_connection, start_server, StreamReader and StreamWriter).
 *
 * A conc_aio_stream is both halves of asyncio's pair: a bounded read
 * buffer (reading stops once it holds twice `limit` bytes and starts again
 * at `limit`) and a write buffer that never blocks the caller (write
 * queues, drain suspends until the buffer falls to the low-water mark).
 * Every call that waits takes a timeout (relative seconds, CONC_FOREVER,
 * 0 never waits) and is a cancellation point of the calling task.
 *
 * Threads: a stream belongs to the loop of the first task that uses it;
 * every call is made in that loop's thread, and the calls that wait are
 * made from one of its tasks. Only one task may wait to read at a time;
 * any number may drain at once. */
#ifndef CONC_AIO_STREAM_H
#define CONC_AIO_STREAM_H

#include "aio.h"
#include "buf.h"
#include "common.h"
#include "error.h"
#include "tls.h"

CONC_BEGIN_DECLS

typedef struct conc_aio_stream conc_aio_stream;
typedef struct conc_aio_server conc_aio_server;

/* read(n) with this n reads until end of stream (asyncio's read(-1)). */
#define CONC_AIO_READ_ALL SIZE_MAX

typedef struct conc_aio_stream_opts {
    /* The reader's limit (asyncio's `limit`): readline and readuntil fail
     * with CONC_ELIMIT past it; reading pauses at twice it. 0: 64 KiB. */
    size_t limit;
    /* drain returns once the write buffer holds at most `low_water` bytes;
     * `high_water` is asyncio's mark above which a writer should drain.
     * 0: 64 KiB and high_water / 4. */
    size_t high_water;
    size_t low_water;
    /* write refuses (CONC_EFULL) to queue bytes past this many while the
     * buffer is not empty, so a writer that never drains is told rather
     * than growing memory. 0: 4 * high_water. */
    size_t write_limit;
    /* Servers: the listen backlog. 0: 100, asyncio's. */
    int backlog;
    /* 1 keeps Nagle's algorithm on TCP (conc sets TCP_NODELAY otherwise,
     * as asyncio does). */
    int delay;
    /* TLS (asyncio's ssl=): open_connection runs a client handshake and
     * start_server a server handshake on each connection before its
     * handler runs (a connection whose handshake fails is closed and
     * never reaches the handler). Borrowed: the server and each stream
     * keep a reference. NULL: plain TCP. */
    conc_tls_context *ssl;
    /* The name sent as SNI and checked against the server's certificate
     * (server_hostname=). NULL: the host of open_connection. */
    const char *server_hostname;
    /* Seconds the TLS handshake may take (ssl_handshake_timeout). 0: 60,
     * asyncio's. */
    double ssl_handshake_timeout;
    /* Servers: 1 sets SO_REUSEPORT (start_server's reuse_port), so that
     * several sockets, in this process or others, share the port. */
    int reuse_port;
} conc_aio_stream_opts;

/* A server's per-connection handler: runs as a task of the server's loop
 * with a stream the server owns and closes once the handler returns. Its
 * context argument comes first. The return value is the task's code. */
typedef int (*conc_aio_stream_handler)(void *arg, conc_aio_stream *stream);

/* ---- Opening ------------------------------------------------------------ */

/* asyncio.open_connection: connects to host:port over TCP (IPv4 or IPv6;
 * a name that is not numeric is resolved in the loop's default thread
 * executor, so the loop never blocks) and hands back a new stream in *out,
 * freed with conc_aio_stream_free. `opts` may be NULL (borrowed). Returns
 * 0, CONC_EINVAL (NULL host or out, a port out of 0..65535, NaN timeout),
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ENOENT (the name did not resolve),
 * CONC_ESTATE (not inside a task), CONC_ENOMEM, or the connect error
 * (-ECONNREFUSED...). The loop's thread, from a task. */
CONC_EXTERN int conc_aio_open_connection(const char *host, int port,
                                         const conc_aio_stream_opts *opts,
                                         double timeout, conc_aio_stream **out);

/* asyncio.open_unix_connection: as conc_aio_open_connection, to the Unix
 * socket at `path` (borrowed). Returns 0, CONC_EINVAL (NULL, a path too
 * long, NaN), the errors of conc_aio_open_connection. The loop's thread,
 * from a task. */
CONC_EXTERN int conc_aio_open_unix_connection(const char *path,
                                              const conc_aio_stream_opts *opts,
                                              double timeout,
                                              conc_aio_stream **out);

/* A stream over `fd`, a connected stream socket (open_connection(sock=)),
 * made non-blocking. Takes ownership of fd on success only. *out: a new
 * stream freed with conc_aio_stream_free. Returns 0, CONC_EINVAL (NULL
 * out, negative fd), CONC_ENOMEM. Any thread; the stream binds to a loop
 * at its first use. */
CONC_EXTERN int conc_aio_stream_from_fd(int fd,
                                        const conc_aio_stream_opts *opts,
                                        conc_aio_stream **out);

/* ---- Reading (StreamReader) -------------------------------------------- */

/* Reads up to n bytes: waits until at least one byte or the end of stream
 * came, then replaces *out with what is buffered, up to n
 * (CONC_AIO_READ_ALL: everything until the end of stream; 0: nothing, at
 * once). At the end of stream *out is empty. Returns 0, CONC_EINVAL (NULL,
 * NaN), CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ESTATE (another task waits
 * to read, not inside a task of the stream's loop), CONC_ENOMEM, the
 * connection's error (-ECONNRESET). *out is left unchanged on failure.
 * The loop's thread, from a task. */
CONC_EXTERN int conc_aio_stream_read(conc_aio_stream *s, size_t n,
                                     double timeout, conc_buf *out);

/* Reads exactly n bytes into *out (readexactly). Returns 0,
 * CONC_EINCOMPLETE if the stream ended first (IncompleteReadError: the
 * partial bytes stay buffered, for conc_aio_stream_read), and the errors
 * of conc_aio_stream_read. The loop's thread, from a task. */
CONC_EXTERN int conc_aio_stream_readexactly(conc_aio_stream *s, size_t n,
                                            double timeout, conc_buf *out);

/* Reads through the first `seplen`-byte separator `sep` (borrowed) and
 * replaces *out with the bytes including it (readuntil). Returns 0,
 * CONC_ELIMIT (LimitOverrunError: the separator is not within the limit;
 * the bytes stay buffered), CONC_EINCOMPLETE (the stream ended before a
 * separator; the partial bytes stay buffered), CONC_EINVAL (NULL, seplen
 * 0), and the errors of conc_aio_stream_read. The loop's thread, from a
 * task. */
CONC_EXTERN int conc_aio_stream_readuntil(conc_aio_stream *s, const void *sep,
                                          size_t seplen, double timeout,
                                          conc_buf *out);

/* Reads a line, "\n" included (readline): at the end of stream the last
 * partial line, or nothing. Returns 0; CONC_ELIMIT for a line longer than
 * the limit, which is dropped (through its "\n" if it came, else the
 * buffer) as asyncio does; the errors of conc_aio_stream_read. The loop's
 * thread, from a task. */
CONC_EXTERN int conc_aio_stream_readline(conc_aio_stream *s, double timeout,
                                         conc_buf *out);

/* 1 if the end of stream came and nothing is left buffered (at_eof), else
 * 0; CONC_EINVAL for NULL. The loop's thread. */
CONC_EXTERN int conc_aio_stream_at_eof(conc_aio_stream *s);

/* ---- Writing (StreamWriter) -------------------------------------------- */

/* Queues n bytes of `data` (borrowed, copied) for sending, sending at
 * once what the socket takes; never waits. Returns 0, CONC_EFULL (the
 * buffer is not empty and would pass the write limit: nothing was
 * queued; drain and write again), CONC_ECLOSED (closed or write_eof
 * called), the connection's error (-EPIPE, -ECONNRESET), CONC_EINVAL
 * (NULL), CONC_ESTATE (no running loop, or another loop's stream),
 * CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_aio_stream_write(conc_aio_stream *s, const void *data,
                                      size_t n);

/* Queues the n buffers of `parts` (borrowed, copied) one after the other
 * (writelines), all or nothing: if the whole would pass the write limit
 * nothing is queued. Returns 0, CONC_EINVAL (NULL s, NULL parts with n >
 * 0), and the errors of conc_aio_stream_write. The loop's thread. */
CONC_EXTERN int conc_aio_stream_writelines(conc_aio_stream *s,
                                           const conc_buf *parts, size_t n);

/* Suspends until the write buffer holds at most the low-water mark
 * (drain); returns at once if it does. Many tasks may drain at once.
 * Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED, the connection's error,
 * CONC_EINVAL (NULL, NaN), CONC_ESTATE (not inside a task of the loop).
 * The loop's thread, from a task. */
CONC_EXTERN int conc_aio_stream_drain(conc_aio_stream *s, double timeout);

/* Half-closes: sends the end of stream once the buffer is sent
 * (write_eof; over TLS, close_notify and then the socket's end); reading
 * goes on. Returns 0, CONC_EINVAL (NULL), CONC_ESTATE
 * as write, CONC_ECLOSED. The loop's thread. */
CONC_EXTERN int conc_aio_stream_write_eof(conc_aio_stream *s);

/* Upgrades the open stream to TLS (StreamWriter.start_tls): waits until
 * its write buffer is sent, then runs the handshake of a session of `ctx`
 * (borrowed; the stream keeps a reference) over the socket; bytes already
 * buffered for reading are taken as the start of the peer's handshake.
 * A client passes the server's name in server_hostname (borrowed, copied;
 * NULL only with a context that does not verify). Every stream call then
 * works over TLS; close sends close_notify first. No other task may use
 * the stream meanwhile. Returns 0; CONC_ETLS (the handshake failed: the
 * message says why; the stream is then unusable and only close and free
 * are left); CONC_ETIMEDOUT; CONC_ECANCELED; CONC_ESTATE (already TLS,
 * another task waits to read, not inside a task of the stream's loop);
 * CONC_ECLOSED; the connection's error; CONC_EINVAL (NULL s or ctx, NaN);
 * CONC_ENOMEM. The loop's thread, from a task. */
CONC_EXTERN int conc_aio_stream_start_tls(conc_aio_stream *s,
                                          conc_tls_context *ctx,
                                          const char *server_hostname,
                                          double timeout);

/* The stream's TLS session in *out (get_extra_info("ssl_object")),
 * borrowed until the stream is freed: read its ALPN protocol, peer
 * certificate subject and version through tls.h. Returns 0, CONC_ESTATE
 * (a plain stream), CONC_EINVAL (NULL). The loop's thread. */
CONC_EXTERN int conc_aio_stream_ssl_object(conc_aio_stream *s,
                                           conc_tls_session **out);

/* The bytes buffered for reading in *rd and for writing in *wr. Returns
 * 0, CONC_EINVAL (NULL). The loop's thread. */
CONC_EXTERN int conc_aio_stream_buffered(conc_aio_stream *s, size_t *rd,
                                         size_t *wr);

/* ---- Closing and names ----------------------------------------------------
 */

/* Closes the stream (close): the buffered bytes are still sent (then, over
 * TLS, close_notify), then the socket is closed; a task waiting to read gets
 * CONC_ECLOSED. Returns 0, CONC_EINVAL (NULL). Closing twice is a no-op. The
 * loop's thread. */
CONC_EXTERN int conc_aio_stream_close(conc_aio_stream *s);

/* 1 once close was called (is_closing), else 0; CONC_EINVAL for NULL.
 * The loop's thread. */
CONC_EXTERN int conc_aio_stream_is_closing(conc_aio_stream *s);

/* Suspends until the closed stream's socket is closed (wait_closed).
 * Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ESTATE (not closing,
 * not inside a task of the loop), CONC_EINVAL (NULL, NaN). The loop's
 * thread, from a task. */
CONC_EXTERN int conc_aio_stream_wait_closed(conc_aio_stream *s, double timeout);

/* The peer's address as text in *out (get_extra_info("peername")):
 * "127.0.0.1:80", "[::1]:80", or a Unix socket's path. Returns 0,
 * CONC_EINVAL (NULL), CONC_ECLOSED, the getpeername error, CONC_ENOMEM.
 * The loop's thread. */
CONC_EXTERN int conc_aio_stream_peername(conc_aio_stream *s, conc_buf *out);

/* The socket's own address as text in *out ("sockname"), as peername.
 * Returns 0, CONC_EINVAL (NULL), CONC_ECLOSED, the getsockname error,
 * CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_aio_stream_sockname(conc_aio_stream *s, conc_buf *out);

/* Sends what it can of the buffer (and, over TLS, close_notify) without
 * waiting, closes the socket and frees the stream; NULL does nothing. No task
 * may be waiting on it. The loop's thread, before the loop is freed. */
CONC_EXTERN void conc_aio_stream_free(conc_aio_stream *s);

/* ---- Servers ------------------------------------------------------------- */

/* asyncio.start_server on `loop` (running or not): listens on host:port
 * (host numeric, or NULL for every interface; port 0 picks a free one,
 * conc_aio_server_port reads it) with SO_REUSEADDR, and runs fn(arg,
 * stream) as a new task for each connection. `arg` is borrowed until the
 * server is freed and its last handler has returned; `opts` may be NULL
 * (borrowed, also applied to each connection). *out: a new server freed with
 * conc_aio_server_free. Returns 0, CONC_EINVAL (NULL loop, fn or out, a port
 * out of range, a host that is not numeric), CONC_ECLOSED (loop closed),
 * CONC_ENOMEM, the bind or listen error (-EADDRINUSE). The loop's thread. */
CONC_EXTERN int conc_aio_start_server(conc_aio_loop *loop, const char *host,
                                      int port, conc_aio_stream_handler fn,
                                      void *arg,
                                      const conc_aio_stream_opts *opts,
                                      conc_aio_server **out);

/* asyncio.start_unix_server: as conc_aio_start_server on the Unix socket
 * `path` (borrowed; a stale socket file there is replaced). Returns 0,
 * CONC_EINVAL (NULL, a path too long), the errors of
 * conc_aio_start_server. The loop's thread. */
CONC_EXTERN int conc_aio_start_unix_server(
    conc_aio_loop *loop, const char *path, conc_aio_stream_handler fn,
    void *arg, const conc_aio_stream_opts *opts, conc_aio_server **out);

/* The port the server's first socket is bound to (0 for a Unix server),
 * or CONC_EINVAL for NULL. The loop's thread. */
CONC_EXTERN int conc_aio_server_port(conc_aio_server *srv);

/* The i-th listening socket of the server (Server.sockets; one per
 * address family it listens on), borrowed: the server closes it. Returns
 * the descriptor, CONC_EINVAL (NULL), CONC_ENOENT (no i-th socket),
 * CONC_ECLOSED. The loop's thread. */
CONC_EXTERN int conc_aio_server_socket(conc_aio_server *srv, size_t i);

/* 1 while the server accepts connections (is_serving), 0 once closed;
 * CONC_EINVAL for NULL. The loop's thread. */
CONC_EXTERN int conc_aio_server_is_serving(conc_aio_server *srv);

/* Suspends the calling task for as long as the server serves
 * (serve_forever): returns 0 once another task closed it; cancelling the
 * calling task closes the server and returns CONC_ECANCELED, as asyncio
 * does. Returns also CONC_EINVAL (NULL), CONC_ESTATE (not inside a task
 * of the server's loop). The loop's thread, from a task. */
CONC_EXTERN int conc_aio_server_serve_forever(conc_aio_server *srv);

/* Stops listening (Server.close): no new connection is accepted; the
 * connections open go on. Returns 0, CONC_EINVAL (NULL). Closing twice is
 * a no-op. The loop's thread. */
CONC_EXTERN int conc_aio_server_close(conc_aio_server *srv);

/* Suspends until the server is closed and every handler task has
 * returned (Server.wait_closed). Returns 0, CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EINVAL (NULL, NaN), CONC_ESTATE (not inside a task
 * of the server's loop). The loop's thread, from a task. */
CONC_EXTERN int conc_aio_server_wait_closed(conc_aio_server *srv,
                                            double timeout);

/* Closes the server and drops the caller's reference; handler tasks
 * still running keep their own until they return. NULL does nothing. The
 * loop's thread, before the loop is freed. */
CONC_EXTERN void conc_aio_server_free(conc_aio_server *srv);

CONC_END_DECLS

#endif
