/* The I/O binding's shared state: one conc_ws per connection, over a
 * conc_aio_stream, read by the receiving task or a background reader
 * (read.c), opened and ended in io.c, kept alive by timers
 * (keepalive.c); client.c and server.c do the opening handshakes,
 * broadcast.c the fan-out.
 *
 * Everything runs in the one thread of the connection's loop, so nothing
 * here takes a thread lock. Senders are serialized by `send_lock` (an
 * asyncio lock held for a whole message, drains included); control
 * frames go out between fragments without it. */
#ifndef CONC_WS_IO_H
#define CONC_WS_IO_H

#include "conc/aio_sync.h"
#include "conc/ws.h"
#include "ws/proto.h"

/* python websockets' defaults. */
#define CONC__WS_MAX_QUEUE_DEFAULT     16
#define CONC__WS_WRITE_LIMIT_DEFAULT   (32 * 1024)
#define CONC__WS_PING_INTERVAL_DEFAULT 20.0
#define CONC__WS_PING_TIMEOUT_DEFAULT  20.0
#define CONC__WS_CLOSE_TIMEOUT_DEFAULT 10.0
#define CONC__WS_OPEN_TIMEOUT_DEFAULT  10.0
/* What the reader asks the stream for at once. */
#define CONC__WS_READ_CHUNK (64 * 1024)
/* Seconds after a recv ends until the parked reader checks whether it
 * should read again (no recv outstanding): how late a connection nobody
 * receives on answers a ping or sees a close, at most. */
#define CONC__WS_KICK_DELAY 0.001
/* Read buffers larger than this are released between reads. */
#define CONC__WS_IDLE_BUF 4096

/* A ping waiting for its pong. */
struct conc__ws_ping {
    struct conc__ws_ping *next;
    conc_future *pong;
    size_t n;
    uint8_t data[CONC__WS_CONTROL_MAX];
};

/* A message received and not yet taken by recv. */
struct conc__ws_msg {
    conc_ws_kind kind;
    int more; /* more pieces of the same message follow */
    conc_buf data;
};

/* Who holds the read side of a connection (read.c). */
enum conc__ws_reader_side {
    CONC__WS_RD_NONE,
    CONC__WS_RD_RECV,   /* a recv reads on its own task */
    CONC__WS_RD_READER, /* the background reader */
};

/* Why reading ended (read.c): the reader then ends the connection. */
enum conc__ws_read_end {
    CONC__WS_END_NONE,
    CONC__WS_END_CUT,    /* end of stream, an error: close at once */
    CONC__WS_END_CLOSED, /* a server's completed close handshake */
};

struct conc_ws {
    conc_aio_loop *loop;
    conc_aio_stream *stream;
    int own_stream; /* a client's: freed with the connection */
    int server_owned;
    struct conc_ws *srv_prev, *srv_next; /* a server's open connections */
    conc__ws_conn *conn;
    enum conc__ws_role role;
    conc_aio_queue *inbox; /* struct conc__ws_msg *, bounded by max_queue */
    conc_aio_lock *send_lock;
    conc_aio_event *closed; /* set once the reader has finished */
    conc_future *reader;
    conc_aio_event *rd_wake;  /* wakes the reader while it is parked */
    conc_aio_handle *rd_kick; /* the pending check that may wake it */
    enum conc__ws_reader_side rd_owner;
    enum conc__ws_read_end rd_end;
    int rd_parked;
    size_t rd_queued;          /* messages the reader has queued */
    conc_buf in;               /* the read side's buffer */
    conc_aio_handle *ka_timer; /* the next ping, or the pong's deadline */
    conc_future *ka_pong;      /* the keepalive ping's, while it waits */
    conc_aio_handle *close_timer;
    struct conc__ws_ping *pings; /* oldest first */
    size_t write_limit;
    double ping_interval, ping_timeout, close_timeout;
    int err;         /* the connection's end for callers; 0 while open */
    int close_local; /* 1 once this side started the close handshake */
    unsigned peer_code;
    conc_buf peer_reason;
    char *subprotocol;
    int compressed;
    int receiving;
    /* A whole-message recv that timed out between pieces keeps what it
     * had here, for the next recv. */
    int partial_open;
    conc_ws_kind partial_kind;
    conc_buf partial;
    int discard; /* no one receives any more: drop messages */
    int refs;
    conc_buf out; /* the engine's output, swapped on each flush */
};

/* The resolved options: a copy of the caller's with the defaults filled. */
void conc__ws_opts_resolve(const conc_ws_opts *in, conc_ws_opts *out);

/* Stream options for a connection: the caller's, with the write buffer
 * marks taken from write_limit and the stream's own write limit lifted
 * (the binding applies write_limit itself). */
void conc__ws_stream_opts(const conc_ws_opts *o, conc_aio_stream_opts *out);

/* Makes a connection over `stream` after a successful handshake, with
 * the agreed deflate parameters (NULL: none) and subprotocol (copied;
 * NULL: none), and starts its reader task and keepalive. Takes
 * ownership of the stream if own_stream. Returns 0, CONC_ENOMEM,
 * CONC_EINVAL, CONC_ESTATE (no running loop). The loop's thread. */
int conc__ws_open(conc_aio_stream *stream, int own_stream,
                  enum conc__ws_role role, const conc_ws_opts *o,
                  const struct conc__ws_deflate_params *deflate,
                  const char *subprotocol, conc_ws **out);

/* Writes what the engine has queued to the stream without waiting.
 * Returns 0 or the stream's error. */
int conc__ws_flush(conc_ws *ws);

/* The code callers get once the connection has ended (or is ending). */
int conc__ws_end_error(const conc_ws *ws);

/* conc__ws_end_error, also left as the thread's failure message. */
int conc__ws_fail_end(const conc_ws *ws);

/* Starts the close handshake (if not started) with `code` and arms the
 * close timer that closes the transport after close_timeout. Never waits.
 * Returns 0 or CONC_EINVAL for a bad code or reason. */
int conc__ws_start_close(conc_ws *ws, unsigned code, const char *reason,
                         size_t n);

/* Closes the transport now and makes the reader finish. */
void conc__ws_abort(conc_ws *ws);

/* Arms the timer that closes the transport after close_timeout, once. */
void conc__ws_arm_close_timer(conc_ws *ws);

/* The background reader's task body (read.c): `arg` holds a conc_ws *. */
int conc__ws_reader_main(const void *arg, size_t len, conc_buf *result);

/* The next message or piece for recv, by `deadline` (loop time; negative:
 * none): from the inbox, else read on the caller's task when the read
 * side is free, else waited for in the inbox. Fills *m (its data then
 * belongs to the caller). Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_ENOMEM, or the connection's end (conc__ws_fail_end). The loop's
 * thread, from the task that holds ws->receiving. */
int conc__ws_next_message(conc_ws *ws, double deadline, struct conc__ws_msg *m);

/* After a recv: CONC__WS_KICK_DELAY later, wakes the parked reader if no
 * recv is outstanding by then. Never waits. */
void conc__ws_reader_kick(conc_ws *ws);

/* Wakes the parked reader now (the connection is ending). */
void conc__ws_reader_wake(conc_ws *ws);

/* Drops one reference; the last frees everything. */
void conc__ws_unref(conc_ws *ws);

/* Resolves the pings up to the one whose payload matches (python
 * websockets: a pong acknowledges every earlier ping too). */
void conc__ws_pong_received(conc_ws *ws, const uint8_t *p, size_t n);

/* Fails every waiting ping with the connection's end. */
void conc__ws_pings_fail(conc_ws *ws);

/* Keepalive (keepalive.c): arms the first ping (if ping_interval > 0),
 * and stops it for good. */
void conc__ws_keepalive_start(conc_ws *ws);
void conc__ws_keepalive_stop(conc_ws *ws);

#endif
