/* Blocking sockets around the sans-I/O WebSocket engine (src/ws/proto.h),
 * for the peers of the conformance and browser tests.
 *
 * These peers exercise the engine itself against foreign implementations
 * (the Autobahn-style fuzzer, Chromium, libwebsockets), independently of
 * the coroutine binding: one thread per connection, blocking reads with a
 * receive timeout, so nothing here can hang a test for longer than
 * WSP_IO_TIMEOUT. Not part of the library. */
#ifndef CONC_WS_CONFORMANCE_IO_H
#define CONC_WS_CONFORMANCE_IO_H

#include "conc/buf.h"
#include "ws/proto.h"

/* Seconds a peer waits for bytes before it gives the connection up. */
#define WSP_IO_TIMEOUT 60

/* Largest message the peers accept: Autobahn's group 9 sends 16 MiB. */
#define WSP_MAX_MESSAGE ((size_t)64 << 20)

struct wsp {
    int fd;
    conc__ws_conn *conn;
    conc_buf in; /* bytes read past the handshake's head */
    int deflate; /* 1 when permessage-deflate was agreed */
    int server;  /* 1 on the accepting side */
};

/* Answers a plain HTTP request (not an upgrade) by replacing `out` with a
 * whole response. Returns 0, or an error to send 404. */
typedef int (*wsp_http_fn)(void *arg, const struct conc__ws_http *req,
                           conc_buf *out);

/* A listening TCP socket on 127.0.0.1:port (0 for any); *bound is the
 * port. Returns the descriptor, or -1 with a message on stderr. */
int wsp_listen(int port, int *bound);

/* Reads a request from the accepted socket fd. An upgrade is answered
 * with 101 (permessage-deflate accepted when offered and `deflate` is 1,
 * subprotocol `proto` when the client lists it) and *p is filled: returns
 * 1. A plain request is answered through `http` (or 404) and fd closed:
 * returns 0. A broken request gets 400 and returns -1. Takes fd. */
int wsp_accept(int fd, int deflate, const char *proto, wsp_http_fn http,
               void *arg, struct wsp *p);

/* Connects to ws://host:port/path, offering permessage-deflate when
 * `deflate` is 1 and subprotocol `proto` when it is not NULL. Returns 0
 * with *p, or -1 with a message on stderr. */
int wsp_connect(const char *url, int deflate, const char *proto, struct wsp *p);

/* Writes every byte the engine queued. Returns 0 or -1. */
int wsp_flush(struct wsp *p);

/* Waits for the next event, reading as needed and sending what the engine
 * answers (pongs, the close reply). Returns 1 with *ev (free its data), 0
 * when the connection is over (*code set to its close code). */
int wsp_next(struct wsp *p, struct conc__ws_event *ev, unsigned *code);

/* Echoes every message (text as text, binary as binary) until the
 * connection ends; returns its close code. */
unsigned wsp_echo(struct wsp *p);

/* Closes the socket and frees the engine. */
void wsp_free(struct wsp *p);

#endif
