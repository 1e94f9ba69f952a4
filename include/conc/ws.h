/* conc/ws.h: WebSocket clients and servers on conc's streams (python
 * websockets' asyncio API: connect, serve, recv, send, ping, close,
 * broadcast).
 *
 * A conc_ws is one connection after its opening handshake, over a
 * conc_aio_stream: whatever the stream carries (TCP, a Unix socket, and
 * TLS (wss://) through conc_aio_stream_opts) carries the
 * WebSocket too. A receive that finds no message waiting reads the
 * stream on its own task; while no receive is outstanding, the
 * connection's reader task reads instead (it feeds the protocol engine,
 * answers pings and stops reading when `max_queue` messages wait to be
 * received). A keepalive task pings every
 * `ping_interval` seconds and fails the connection (1011) when no pong
 * comes within `ping_timeout`.
 *
 * Threads: a connection belongs to the loop it was opened or accepted
 * on; every call is made in that loop's thread, and the calls that wait
 * are made from one of its tasks. Any number of tasks may send at once:
 * each message (fragmented or not) goes out whole, never interleaved with
 * another. One task at a time may receive.
 *
 * Errors after the connection ended: CONC_ECLOSED once a close frame was
 * received or the close handshake finished (conc_ws_close_code tells the
 * codes), CONC_EBROKEN if the transport ended without a close frame,
 * CONC_ETIMEDOUT if the keepalive failed it, and CONC_EPROTO, CONC_EVALUE
 * or CONC_EMSGSIZE if the peer broke the protocol (closed with 1002, 1007
 * or 1009). */
#ifndef CONC_WS_H
#define CONC_WS_H

#include "aio.h"
#include "aio_stream.h"
#include "buf.h"
#include "common.h"
#include "error.h"
#include "future.h"

CONC_BEGIN_DECLS

typedef struct conc_ws conc_ws;
typedef struct conc_ws_server conc_ws_server;

/* The two kinds of data message. */
typedef enum conc_ws_kind {
    CONC_WS_TEXT = 1,
    CONC_WS_BINARY = 2,
} conc_ws_kind;

/* A request as the server read it, given to the process_request hook:
 * the target ("/path?query") and the whole head, NUL-terminated. */
typedef struct conc_ws_request {
    const char *path;
    const char *head;
    size_t head_len;
} conc_ws_request;

/* A plain HTTP answer the process_request hook fills in: status, reason
 * (NULL: a standard one), extra header lines ("Name: value\r\n" each,
 * may be NULL) and a body. The server copies them before the hook's
 * caller goes on, so they may point into the hook's own storage. */
typedef struct conc_ws_response {
    unsigned status;
    const char *reason;
    const char *headers;
    const void *body;
    size_t body_len;
} conc_ws_response;

/* Server hook (python websockets' process_request): returns 0 to go on
 * with the upgrade, 1 to answer with *resp instead (a health check, a
 * page, a 403), a negative code to drop the connection. Its context
 * argument comes first. Runs in the connection's task. */
typedef int (*conc_ws_process_request_fn)(void *arg, const conc_ws_request *req,
                                          conc_ws_response *resp);

/* A server's connection handler: runs as a task of the server's loop
 * with a connection the server owns, closes (1000) and frees once the
 * handler returns. The return value is the task's code. */
typedef int (*conc_ws_handler)(void *arg, conc_ws *ws);

/* Options; zero fields give python websockets' defaults. NULL options
 * are all defaults. */
typedef struct conc_ws_opts {
    /* Subprotocols: the client offers them, the server picks the first of
     * its own list that the client offered. */
    const char *const *subprotocols;
    size_t nsubprotocols;
    /* Extra header lines sent with the handshake, each "Name: value\r\n". */
    const char *extra_headers;
    /* Client: the Origin header to send (NULL: none). */
    const char *origin;
    /* Server: the Origin values accepted (NULL: any); "" accepts a
     * request without Origin. Others are refused with 403. */
    const char *const *origins;
    size_t norigins;
    /* 1 turns permessage-deflate off (on by default, window bits 12 and
     * memLevel 5). */
    int no_compression;
    /* Largest message received, after decompression; 0: 1 MiB; SIZE_MAX:
     * no limit. A larger one fails the connection with 1009. */
    size_t max_size;
    /* Messages received and not yet taken by recv before reading stops;
     * 0: 16. */
    size_t max_queue;
    /* Bytes buffered for sending past which send waits for the buffer to
     * drain to a quarter of it; 0: 32 KiB. */
    size_t write_limit;
    /* Keepalive, in seconds: 0 gives 20 and 20; a negative value turns
     * pings (or their timeout) off. */
    double ping_interval;
    double ping_timeout;
    /* Seconds the close handshake may take before the transport is closed
     * anyway; 0: 10. */
    double close_timeout;
    /* Server: seconds a client has to complete its opening handshake;
     * 0: 10. */
    double open_timeout;
    /* Server: see conc_ws_process_request_fn; NULL: none. */
    conc_ws_process_request_fn process_request;
    void *process_request_arg;
    /* The stream's options (TLS among them where the streams offer it);
     * NULL: defaults. The write buffer marks are set from write_limit. */
    const conc_aio_stream_opts *stream;
} conc_ws_opts;

/* ---- Opening ------------------------------------------------------------ */

/* websockets.connect: opens the stream to `url` ("ws://host[:port]/path",
 * "wss://...", over TLS with opts->stream->ssl, or with a default client
 * context (the system's CAs, the host name checked) made for this call
 * when that is NULL; a TLS context with "ws://" is CONC_EINVAL; or
 * "ws+unix:///socket/path", the request target then being "/"), does
 * the opening handshake within `timeout` and hands back a new connection
 * in *out, freed with conc_ws_free. `url` and `opts` are borrowed.
 * Returns 0, CONC_EINVAL (NULL, a URL it cannot read, NaN), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EPROTO (the server refused the upgrade or answered
 * something else than a valid 101), the errors of
 * conc_aio_open_connection, CONC_ESTATE (not inside a task), CONC_ENOMEM.
 * The loop's thread, from a task. */
CONC_EXTERN int conc_ws_connect(const char *url, const conc_ws_opts *opts,
                                double timeout, conc_ws **out);

/* websockets.serve: listens on host:port (port 0 picks a free one,
 * conc_ws_server_port reads it) on `loop`, and for each connection that
 * completes the handshake runs fn(arg, ws) as a task. `arg` is borrowed
 * until the server is freed and its last handler returned; `opts` is
 * copied (the arrays and strings it points to are borrowed as long).
 * *out: a new server freed with conc_ws_server_free. Returns 0,
 * CONC_EINVAL (NULL loop, fn or out), the errors of conc_aio_start_server.
 * The loop's thread. */
CONC_EXTERN int conc_ws_serve(conc_aio_loop *loop, const char *host, int port,
                              conc_ws_handler fn, void *arg,
                              const conc_ws_opts *opts, conc_ws_server **out);

/* websockets.unix_serve: as conc_ws_serve on the Unix socket `path`
 * (borrowed). Returns 0, CONC_EINVAL, the errors of
 * conc_aio_start_unix_server. The loop's thread. */
CONC_EXTERN int conc_ws_unix_serve(conc_aio_loop *loop, const char *path,
                                   conc_ws_handler fn, void *arg,
                                   const conc_ws_opts *opts,
                                   conc_ws_server **out);

/* The server's port (0 for a Unix socket), or CONC_EINVAL for NULL. The
 * loop's thread. */
CONC_EXTERN int conc_ws_server_port(conc_ws_server *srv);

/* Stops accepting and starts closing the open connections with 1001
 * (going away), as python websockets' Server.close does; their handlers'
 * recv then return CONC_ECLOSED. Never waits: conc_ws_server_wait_closed
 * does. Returns 0, CONC_EINVAL. The loop's thread. */
CONC_EXTERN int conc_ws_server_close(conc_ws_server *srv);

/* Waits until the server is closed and every handler returned. Returns
 * 0, CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EINVAL (NULL, NaN), CONC_ESTATE
 * (not in a task of the loop). The loop's thread, from a task. */
CONC_EXTERN int conc_ws_server_wait_closed(conc_ws_server *srv, double timeout);

/* Closes the server (conc_ws_server_close) and drops the caller's
 * reference; handlers still running keep the server alive until they
 * return. NULL does nothing. The loop's thread, before the loop is
 * freed. */
CONC_EXTERN void conc_ws_server_free(conc_ws_server *srv);

/* ---- Messages ------------------------------------------------------------ */

/* Receives the next whole message into *out (replaced) and its kind in
 * *kind (may be NULL), waiting up to `timeout`. Messages received before
 * the connection ended are still handed out. Returns 0, CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_ESTATE (another task is receiving), CONC_EINVAL
 * (NULL ws or out, NaN), the connection's end as described at the top.
 * *out is unchanged on failure. The loop's thread, from a task. */
CONC_EXTERN int conc_ws_recv(conc_ws *ws, double timeout, conc_ws_kind *kind,
                             conc_buf *out);

/* The streaming form of conc_ws_recv, for messages too large to hold at
 * once: replaces *out with the next piece of the current message (the
 * end of each fragment, or 64 KiB of a long one) and sets *fin to 1 on
 * its last piece; *kind (may be NULL) is the message's kind. A text
 * piece may end in the middle of a character; the whole message is
 * checked as UTF-8. max_size still bounds the whole message. Returns as
 * conc_ws_recv, and CONC_EINVAL for a NULL fin. The loop's thread, from a
 * task. */
CONC_EXTERN int conc_ws_recv_stream(conc_ws *ws, double timeout,
                                    conc_ws_kind *kind, conc_buf *out,
                                    int *fin);

/* Sends one message of `kind` (n bytes of data, borrowed; text must be
 * UTF-8), then waits up to `timeout` for the write buffer to drain if it
 * holds more than write_limit. A message another task is sending goes
 * out first (the wait for it counts against `timeout`). Returns 0,
 * CONC_EVALUE (text that is not UTF-8), CONC_EINVAL (NULL, a bad kind,
 * NaN), CONC_ETIMEDOUT (either nothing was sent because another task's
 * message held the connection all along, or the message is queued but
 * did not drain: the peer reads too slowly), CONC_ECANCELED, CONC_ENOMEM,
 * the connection's end. The loop's thread, from a task. */
CONC_EXTERN int conc_ws_send(conc_ws *ws, conc_ws_kind kind, const void *data,
                             size_t n, double timeout);

/* One part of a fragmented message. */
typedef struct conc_ws_part {
    const void *data;
    size_t len;
} conc_ws_part;

/* Sends one message of `kind` made of n parts (borrowed), one frame each,
 * draining between frames; no other message goes out until it ends. A
 * message that cannot be finished once begun (the timeout or a cancel
 * while it drains between frames) fails the connection with 1011, as
 * conc_ws_send_stream describes. Returns as conc_ws_send, and CONC_EINVAL
 * for n == 0 or a NULL part with a length. The loop's thread, from a
 * task. */
CONC_EXTERN int conc_ws_send_parts(conc_ws *ws, conc_ws_kind kind,
                                   const conc_ws_part *parts, size_t n,
                                   double timeout);

/* The producer of a message that conc_ws_send_stream sends, part by part
 * (python websockets' send(async_iterable)). It is called for each part
 * in turn, in the sending task, so it may wait (on a queue, a stream,
 * another task) as a coroutine does. `part` is a buffer the call owns and
 * empties before each call: the producer appends the part's bytes (any
 * number, 0 included). *last is 0 on entry; the producer sets it to 1 on
 * the part that ends the message, or, when it learns of the end only
 * later, on an empty part then. It returns 0, or a negative code
 * (CONC_E*, its own wait's CONC_ECANCELED among them) that abandons the
 * message. Its context argument comes first. */
typedef int (*conc_ws_producer)(void *arg, conc_buf *part, int *last);

/* Sends one message of `kind` whose parts come from fn(arg, ...) as they
 * are produced, one frame each, draining past write_limit between frames,
 * as conc_ws_send_parts does for parts known in advance. The message
 * holds the connection's send side from its first part to its last:
 * other senders wait for it and conc_ws_broadcast skips the connection,
 * while pings, pongs and a close may go out between its frames. Text is
 * checked as UTF-8 across parts (a character may be split between two).
 *
 * A message once begun can be neither completed nor taken back: when
 * the producer fails, the text is not UTF-8, the task is cancelled or
 * the timeout runs out after the first frame went out, the connection is
 * failed with 1011 (the close handshake starts, as python websockets does
 * when the iterator raises) and the call returns the error. Before the
 * first frame, the connection stays as it was. A timeout that runs out
 * after the last frame leaves the message queued, as with conc_ws_send.
 *
 * `timeout` bounds the whole call, the producer's waits included, as
 * asyncio.timeout would: when it runs out, the wait in progress (the
 * producer's too) returns CONC_ECANCELED and the call CONC_ETIMEDOUT.
 * `arg` (may be NULL) is borrowed for the call and passed to fn as it
 * is. Returns 0, the producer's error, CONC_EVALUE (text that is not
 * UTF-8), CONC_EINVAL (NULL ws or fn, a bad kind, NaN), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_ENOMEM, CONC_ESTATE (not inside a task), the
 * connection's end. The loop's thread, from a task. */
CONC_EXTERN int conc_ws_send_stream(conc_ws *ws, conc_ws_kind kind,
                                    conc_ws_producer fn, void *arg,
                                    double timeout);

/* Sends a ping with `n` bytes (at most 125; NULL and 0 pick 4 random
 * bytes) and hands back in *pong a new future resolved (result: empty)
 * when the matching pong comes, or failed with the connection's end;
 * free it with conc_future_free. The future may be awaited with
 * conc_aio_await or conc_aio_wait_for. Returns 0, CONC_EINVAL (NULL, n >
 * 125), CONC_EEXIST (a ping with this payload is still waiting),
 * CONC_ENOMEM, the connection's end. The loop's thread. */
CONC_EXTERN int conc_ws_ping(conc_ws *ws, const void *data, size_t n,
                             conc_future **pong);

/* Sends a pong (unsolicited, as a one-way heartbeat). Returns 0,
 * CONC_EINVAL (NULL, n > 125), CONC_ENOMEM, the connection's end. The
 * loop's thread. */
CONC_EXTERN int conc_ws_pong(conc_ws *ws, const void *data, size_t n);

/* Starts the close handshake with `code` (1000, 1001, 1003... or 0 for no
 * code) and a UTF-8 `reason` (NULL or at most 123 bytes) and waits until
 * the connection has ended: the peer's answer, then the transport's close,
 * each bounded by close_timeout. Closing an ended connection returns 0.
 * Returns 0, CONC_EINVAL (NULL ws, an invalid code or reason),
 * CONC_ECANCELED. The loop's thread, from a task. */
CONC_EXTERN int conc_ws_close(conc_ws *ws, unsigned code, const char *reason);

/* Waits up to `timeout` until the connection has ended. Returns 0,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EINVAL (NULL, NaN). The loop's
 * thread, from a task. */
CONC_EXTERN int conc_ws_wait_closed(conc_ws *ws, double timeout);

/* The close code and reason the peer sent (*code 1005 if its close frame
 * had none, 1006 if none came, 0 while open) and, into *reason (may be
 * NULL; replaced), its reason. Returns 0, CONC_EINVAL (NULL ws or code),
 * CONC_ENOMEM. The loop's thread. */
CONC_EXTERN int conc_ws_close_code(conc_ws *ws, unsigned *code,
                                   conc_buf *reason);

/* 1 while the connection is open (data may be sent), else 0; CONC_EINVAL
 * for NULL. The loop's thread. */
CONC_EXTERN int conc_ws_is_open(conc_ws *ws);

/* The subprotocol agreed in the handshake (borrowed for the connection's
 * life), or NULL for none or a NULL ws. The loop's thread. */
CONC_EXTERN const char *conc_ws_subprotocol(conc_ws *ws);

/* 1 if permessage-deflate was agreed, else 0; CONC_EINVAL for NULL. The
 * loop's thread. */
CONC_EXTERN int conc_ws_compressed(conc_ws *ws);

/* The underlying stream (borrowed; peername, sockname), or NULL for a
 * NULL ws. The loop's thread. */
CONC_EXTERN conc_aio_stream *conc_ws_stream(conc_ws *ws);

/* websockets.broadcast: sends one message of `kind` to each of the n
 * connections without waiting. A connection that is not open, or is in
 * the middle of a message of another task (a fragmented one, or one
 * waiting for drain), is skipped; so is one whose write
 * buffer holds more than its write_limit, or, when `slow_code` is a close
 * code (1008, 1011...), it is closed with that code instead. *sent (may
 * be NULL) counts the connections the message was queued for. Returns 0,
 * CONC_EINVAL (NULL conns with n > 0, a NULL connection, a bad kind or
 * code), CONC_EVALUE (text that is not UTF-8). The loop's thread. */
CONC_EXTERN int conc_ws_broadcast(conc_ws *const *conns, size_t n,
                                  conc_ws_kind kind, const void *data,
                                  size_t len, unsigned slow_code, size_t *sent);

/* Closes the transport if the connection is still open (no handshake),
 * and drops the caller's reference; the reader and keepalive tasks end on
 * their own. No other task may be waiting on the connection. NULL, and a
 * server's connection (the server frees it after its handler returns),
 * do nothing. The loop's thread. */
CONC_EXTERN void conc_ws_free(conc_ws *ws);

CONC_END_DECLS

#endif
