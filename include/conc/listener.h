/* conc/listener.h: servers and clients that speak CPython's
 * multiprocessing.connection protocol (Listener, Client).
 *
 * A conc_listener listens on a TCP or Unix socket; conc_listener_accept
 * returns each connection as a conc_conn (ipc.h), and conc_client_connect
 * connects to a listener, conc's or Python's. Those connections use
 * CPython's framing (a 4-byte big-endian length, or -1 and an 8-byte one
 * past 2^31 - 1 bytes), so the peer may be Python's
 * multiprocessing.connection.Listener or Client, or conc on both sides.
 * conc_conn_send_bytes, conc_conn_recv_bytes, conc_conn_recv_bytes_into,
 * conc_conn_poll, conc_conn_fileno, conc_conn_close and conc_conn_free
 * work on them as on a pipe; descriptors cannot travel (conc_conn_send_fd
 * and conc_conn_recv_fd return CONC_EINVAL). Python's Connection.send and
 * recv carry pickles: conc_conn_send_obj and conc_conn_recv_obj send and
 * receive conc_obj values (conc/obj.h) that way.
 *
 * Addresses are strings: "host:port" for TCP ("127.0.0.1:5000",
 * "[::1]:5000", "localhost:0"; port 0 asks for a free port, see
 * conc_listener_address), "@name" for a Linux abstract Unix socket, and
 * anything else, such as "/tmp/app.sock" or "app.sock", for a Unix socket
 * at that path. Write "./a:1" for a Unix path that looks like host:port.
 * A host name is resolved with getaddrinfo, which may block beyond a
 * timeout; IPv4 is tried first, as Python's Client uses AF_INET.
 *
 * The authkey handshake. With an authkey both sides prove they know it
 * before any message travels, exactly as CPython does: the server
 * challenges first, then the client. Both CPython forms are spoken: a
 * listener sends 3.12's "{sha256}" challenge by default and accepts 3.11's
 * MD5 reply to it; a client answers a 3.11 listener's bare challenge with
 * MD5 and a 3.12 one's in the digest it names. A wrong key gives
 * CONC_EAUTH on both sides; the key never travels, and conc tells the peer
 * only "#FAILURE#". There is no encryption and no integrity after the
 * handshake: use these connections on trusted networks or through a
 * tunnel.
 *
 * TCP connections turn Nagle's algorithm off (TCP_NODELAY) at both ends,
 * and a listener asks for immediate acknowledgements during the handshake
 * (TCP_QUICKACK), so that connecting with the handshake costs well under a
 * millisecond on loopback, with a conc or an unmodified Python client,
 * instead of CPython's 44 ms.
 *
 * Coroutines: conc_listener_accept and conc_client_connect, like the
 * sends and receives of conc_conn, suspend only the calling task when a
 * coroutine makes them, and are cancellation points (a cancelled task's
 * call returns CONC_ECANCELED and leaves no connection behind).
 *
 * Descriptors: every descriptor conc opens here is close-on-exec. */
#ifndef CONC_LISTENER_H
#define CONC_LISTENER_H

#include "buf.h"
#include "common.h"
#include "ipc.h"
#include "obj.h"

CONC_BEGIN_DECLS

typedef struct conc_listener conc_listener;

typedef struct conc_listener_opts {
    /* The authkey: `authkey_len` bytes at `authkey`, copied. NULL: no
     * handshake, as Python's Listener(authkey=None). An empty key (any
     * non-NULL pointer with length 0) is a key, as b"" is in Python. */
    const void *authkey;
    size_t authkey_len;
    /* The listen backlog. 0: 128 (Python's Listener defaults to 1, which
     * makes a burst of clients wait a second for a SYN retry; 3.12's
     * managers use 128). */
    int backlog;
    /* The largest message an accepted connection receives; larger ones
     * fail with CONC_EMSGSIZE (see conc_conn_recv_bytes). 0: no limit. */
    size_t max_message;
    /* The challenge this listener sends: NULL or "sha256" for CPython
     * 3.12's form, another allowed digest ("md5", "sha384", "sha3_256",
     * "sha3_384") with its prefix, or "" for 3.11's bare 20-byte MD5
     * challenge. Replies in either form are accepted whatever it is. */
    const char *digest;
} conc_listener_opts;

typedef struct conc_client_opts {
    /* As in conc_listener_opts: NULL, no handshake (Python's Client with
     * authkey=None). */
    const void *authkey;
    size_t authkey_len;
    size_t max_message; /* as in conc_listener_opts; 0: no limit */
    /* The challenge this client sends after answering the server's, as in
     * conc_listener_opts; NULL: "sha256". */
    const char *digest;
} conc_client_opts;

/* Listens on `address` (see the top of this file), Python's
 * Listener(address, backlog=..., authkey=...). A TCP listener sets
 * SO_REUSEADDR as Python does; a Unix socket's path must not exist yet,
 * and is removed again by conc_listener_close. `opts` may be NULL (no
 * authkey). Borrows `address` and `opts` (the key is copied). Returns 0
 * and a new listener in *out, freed with conc_listener_free; CONC_EINVAL
 * for a NULL pointer, an empty address, a port above 65535, a Unix path
 * too long for a socket, a negative backlog or an unknown digest;
 * CONC_ENOENT (with a failure message) when the host does not resolve;
 * CONC_ENOMEM; system errors negated (-EADDRINUSE, -EACCES, ...). Any
 * thread. */
CONC_EXTERN int conc_listener_new(const char *address,
                                  const conc_listener_opts *opts,
                                  conc_listener **out);

/* Waits up to `timeout` for a client and returns its connection, after
 * the handshake when the listener has an authkey (the server's side:
 * challenge the client, then answer its challenge). The timeout covers
 * the handshake too. Returns 0 and a new connection in *out, freed with
 * conc_conn_free; CONC_ETIMEDOUT when no client came, or one did not
 * finish the handshake, in time; CONC_EAUTH when a client failed the
 * handshake (wrong key, or not the protocol; a failure message says
 * which); CONC_ECLOSED when the client went away during the handshake,
 * or after conc_listener_close; CONC_EINVAL for a NULL pointer or a NaN
 * timeout; CONC_ENOMEM; -EMFILE and other system errors negated. After
 * any failure the listener is as before, ready for the next client.
 * CONC_ECANCELED in a cancelled coroutine.
 * Any thread; several threads may accept at once (each client goes to
 * one of them). */
CONC_EXTERN int conc_listener_accept(conc_listener *l, double timeout,
                                     conc_conn **out);

/* The address the listener is bound to (Listener.address), as a string
 * in the form of the top of this file, with the port the system chose
 * for port 0 and a numeric host ("127.0.0.1:41235", "[::1]:41235",
 * "/tmp/app.sock", "@name"). Replaces the content of `out` (followed by
 * a NUL not counted in out->len) on success; leaves it unchanged on
 * failure. Returns 0, CONC_EINVAL for a NULL pointer, CONC_ECLOSED after
 * conc_listener_close, CONC_ENOMEM. Borrows `out`. Any thread. */
CONC_EXTERN int conc_listener_address(const conc_listener *l, conc_buf *out);

/* The TCP port the listener is bound to, in *port. Returns 0;
 * CONC_EINVAL for a NULL pointer or a listener on a Unix socket;
 * CONC_ECLOSED after conc_listener_close. Any thread. */
CONC_EXTERN int conc_listener_port(const conc_listener *l, int *port);

/* The listening descriptor (for poll or epoll: readable when a client
 * waits) in *fd, borrowed: do not close it. Returns 0, CONC_EINVAL for a
 * NULL pointer, CONC_ECLOSED after conc_listener_close. Any thread. */
CONC_EXTERN int conc_listener_fileno(const conc_listener *l, int *fd);

/* Stops listening (Listener.close): closes the socket and removes a Unix
 * socket's path. Connections already accepted stay open. Later calls but
 * conc_listener_close and conc_listener_free return CONC_ECLOSED.
 * Returns 0 (also when already closed), CONC_EINVAL for NULL. Any thread,
 * while no other thread is inside conc_listener_accept. */
CONC_EXTERN int conc_listener_close(conc_listener *l);

/* Closes the listener if it is open and frees it. NULL does nothing.
 * Any thread, once no other thread uses the listener. */
CONC_EXTERN void conc_listener_free(conc_listener *l);

/* Connects to a listener at `address` (see the top of this file), conc's
 * or Python's, Python's Client(address, authkey=...), and does the
 * client's side of the handshake when `opts` has an authkey (answer the
 * server's challenge, then challenge it). Waits up to `timeout` for the
 * connection and the handshake. `opts` may be NULL (no authkey). Borrows
 * `address` and `opts`. Returns 0 and a new connection in *out, freed with
 * conc_conn_free; CONC_ETIMEDOUT; CONC_EAUTH when the handshake failed
 * (wrong key, or the server is not speaking the protocol; a failure
 * message says which); CONC_ECLOSED when the server closed the connection
 * during the handshake; CONC_EINVAL for a NULL pointer, a bad address,
 * an unknown digest or a NaN timeout; CONC_ENOENT (with a failure
 * message) when the host does not resolve; -ECONNREFUSED, -ENOENT (no
 * such Unix socket) and other system errors negated; CONC_ENOMEM;
 * CONC_ECANCELED in a cancelled coroutine. Any thread. */
CONC_EXTERN int conc_client_connect(const char *address,
                                    const conc_client_opts *opts,
                                    double timeout, conc_conn **out);

/* Sends `o` pickled at protocol 4 as one message (Python's
 * Connection.send), for a peer's recv() or conc_conn_recv_obj. Works on
 * any conc_conn. Borrows c and o. Returns 0; CONC_EOVERFLOW for a value
 * nested deeper than CONC_OBJ_MAX_DEPTH; CONC_EINVAL for a NULL pointer;
 * CONC_ENOMEM; conc_conn_send_bytes's errors (`timeout` is its).
 * Any thread (one sender at a time per connection). */
CONC_EXTERN int conc_conn_send_obj(conc_conn *c, const conc_obj *o,
                                   double timeout);

/* Receives one message and unpickles it (Python's Connection.recv) into
 * *out, a new reference the caller owns, through conc_obj_loads's
 * allowlist with its default limits: nothing is imported or run.
 * Borrows c. Returns 0; conc_conn_recv_bytes's errors (CONC_ETIMEDOUT,
 * CONC_ECLOSED at the end, ...); conc_obj_loads's (CONC_EPROTO for what
 * is not a pickle of the subset, the message consumed); CONC_EINVAL for a
 * NULL pointer; CONC_ENOMEM. *out is unchanged on failure. Any thread
 * (one receiver at a time per connection). */
CONC_EXTERN int conc_conn_recv_obj(conc_conn *c, double timeout,
                                   conc_obj **out);

CONC_END_DECLS

#endif
