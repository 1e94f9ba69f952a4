/* conc/aio_net.h: sockets on the event loop below the streams (asyncio's
 * loop.sock_* calls and datagram endpoints) and servers run by one loop per
 * core.
 *
 * The sock_* calls work on a caller's non-blocking socket: each tries the
 * system call first and, if it would block, suspends the calling task until
 * the loop sees the socket ready, then tries again. They take a timeout
 * (relative seconds, CONC_FOREVER, 0 never waits) and are cancellation
 * points. The socket stays the caller's: nothing here closes it.
 *
 * Threads: every call that waits is made from a task of the running loop,
 * in its thread. A server group is driven from any one thread (not one of
 * its loops' threads). */
#ifndef CONC_AIO_NET_H
#define CONC_AIO_NET_H

#include "aio.h"
#include "aio_stream.h"
#include "buf.h"
#include "common.h"
#include "error.h"

CONC_BEGIN_DECLS

/* ---- Sockets (loop.sock_*) ---------------------------------------------- */

/* Receives up to n bytes from the non-blocking socket `fd` (sock_recv) and
 * replaces *out with them; at the end of stream *out is empty. Returns 0,
 * CONC_EINVAL (NULL out, n 0, negative fd, NaN), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_ESTATE (not inside a task), CONC_ENOMEM, the recv
 * error (-ECONNRESET). *out is left unchanged on failure. The loop's
 * thread, from a task. */
CONC_EXTERN int conc_aio_sock_recv(int fd, size_t n, double timeout,
                                   conc_buf *out);

/* Receives up to n bytes into the caller's `buf` (sock_recv_into; borrowed)
 * and stores how many came in *got (0: end of stream). Returns 0,
 * CONC_EINVAL (NULL buf or got, n 0, negative fd, NaN), and the errors of
 * conc_aio_sock_recv. The loop's thread, from a task. */
CONC_EXTERN int conc_aio_sock_recv_into(int fd, void *buf, size_t n,
                                        double timeout, size_t *got);

/* Sends all n bytes of `data` (borrowed) on `fd` (sock_sendall), waiting
 * while the socket's buffer is full. On a timeout or cancellation part of
 * the data may have been sent, as in asyncio. Returns 0, CONC_EINVAL (NULL
 * data, negative fd, NaN), CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ESTATE,
 * the send error (-EPIPE, -ECONNRESET). The loop's thread, from a task. */
CONC_EXTERN int conc_aio_sock_sendall(int fd, const void *data, size_t n,
                                      double timeout);

/* Connects the non-blocking socket `fd` to the `addrlen`-byte socket
 * address `addr` (a struct sockaddr_in, _in6 or _un; borrowed) and waits
 * until the connection is made (sock_connect). Returns 0, CONC_EINVAL
 * (NULL addr, negative fd, NaN), CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_ESTATE, the connect error (-ECONNREFUSED). The loop's thread, from
 * a task. */
CONC_EXTERN int conc_aio_sock_connect(int fd, const void *addr, size_t addrlen,
                                      double timeout);

/* Waits for a connection on the listening non-blocking socket `fd` and
 * accepts it (sock_accept): *conn receives the new socket, non-blocking
 * and close-on-exec, owned by the caller (close it); its peer is
 * getpeername's. Returns 0, CONC_EINVAL (NULL conn, negative fd, NaN),
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ESTATE, the accept error (-EMFILE).
 * The loop's thread, from a task. */
CONC_EXTERN int conc_aio_sock_accept(int fd, double timeout, int *conn);

/* ---- Name resolution ------------------------------------------------------
 */

/* loop.getaddrinfo for TCP: resolves host:port into the numeric addresses
 * "1.2.3.4:80" and "[::1]:80", one per line, appended in the resolver's
 * order to *out, which is replaced. A numeric host is converted at once;
 * a name is resolved in the loop's default thread executor, so the loop
 * never blocks, and the wait ends at `timeout` (the resolver's thread
 * then finishes in the background). Returns 0, CONC_EINVAL (NULL, a port
 * out of 0..65535, NaN), CONC_ENOENT (no address), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_ESTATE (not inside a task, for a name),
 * CONC_ENOMEM. The loop's thread, from a task. */
CONC_EXTERN int conc_aio_getaddrinfo(const char *host, int port, double timeout,
                                     conc_buf *out);

/* ---- Datagram endpoints (create_datagram_endpoint) ------------------------
 */

typedef struct conc_aio_datagram conc_aio_datagram;

typedef struct conc_aio_datagram_opts {
    /* The kernel's receive buffer in bytes (SO_RCVBUF), which bounds the
     * datagrams queued while no task receives; more are dropped, as UDP
     * does. 0: the system's default. */
    int rcvbuf;
    /* 1 sets SO_REUSEPORT (reuse_port); 1 in `broadcast` sets
     * SO_BROADCAST (allow_broadcast). */
    int reuse_port;
    int broadcast;
} conc_aio_datagram_opts;

/* The largest datagram conc_aio_datagram_recvfrom takes whole; a longer
 * one is cut, as recvfrom(2) cuts it. */
#define CONC_AIO_DATAGRAM_MAX 65536

/* create_datagram_endpoint over UDP: a socket bound to local_host:local_port
 * (NULL host: the wildcard of remote_host's family, or IPv4's; port 0: a
 * free one) and, if remote_host is not NULL, connected to
 * remote_host:remote_port, so that sends need no address and only its
 * datagrams arrive. Hosts are numeric ("127.0.0.1", "::1"; borrowed).
 * `opts` may be NULL (borrowed). *out: a new endpoint freed with
 * conc_aio_datagram_free. Returns 0, CONC_EINVAL (NULL out, both hosts
 * NULL, a port out of range, a host that is not numeric, hosts of two
 * families), CONC_ENOMEM, the socket, bind or connect error. Any thread;
 * the endpoint binds to a loop at its first wait. */
CONC_EXTERN int conc_aio_datagram_open(const char *local_host, int local_port,
                                       const char *remote_host, int remote_port,
                                       const conc_aio_datagram_opts *opts,
                                       conc_aio_datagram **out);

/* Sends one datagram of n bytes (borrowed) to host:port (numeric;
 * borrowed), or to the connected peer when host is NULL (sendto). Waits
 * only while the socket's buffer is full. Returns 0, CONC_EINVAL (NULL d,
 * NULL data with n > 0, a host that is not numeric, a port out of range,
 * no host on an endpoint not connected, NaN), CONC_ECLOSED,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ESTATE (must wait, not inside a
 * task), the send error: an ICMP error the kernel reported for an earlier
 * datagram comes back here or from recvfrom (-ECONNREFUSED, asyncio's
 * error_received), and the endpoint stays usable. The loop's thread. */
CONC_EXTERN int conc_aio_datagram_sendto(conc_aio_datagram *d, const void *data,
                                         size_t n, const char *host, int port,
                                         double timeout);

/* Waits for one datagram (datagram_received) and replaces *data with its
 * bytes and, if `addr` is not NULL, *addr with the sender as text
 * ("1.2.3.4:53", "[::1]:53"). Returns 0, CONC_EINVAL (NULL d or data,
 * NaN), CONC_ECLOSED, CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ESTATE (not
 * inside a task), CONC_ENOMEM, an ICMP error reported for a datagram sent
 * before (-ECONNREFUSED; the endpoint stays usable). The buffers are left
 * unchanged on failure. The loop's thread, from a task. */
CONC_EXTERN int conc_aio_datagram_recvfrom(conc_aio_datagram *d, double timeout,
                                           conc_buf *data, conc_buf *addr);

/* The port the endpoint is bound to, or CONC_EINVAL (NULL), CONC_ECLOSED.
 * The loop's thread. */
CONC_EXTERN int conc_aio_datagram_port(conc_aio_datagram *d);

/* Closes the socket (transport.close); a task waiting in recvfrom gets
 * CONC_ECLOSED. Returns 0, CONC_EINVAL (NULL). Closing twice is a no-op.
 * The loop's thread. */
CONC_EXTERN int conc_aio_datagram_close(conc_aio_datagram *d);

/* Closes and frees the endpoint; NULL does nothing. No task may be waiting
 * on it. The loop's thread. */
CONC_EXTERN void conc_aio_datagram_free(conc_aio_datagram *d);

/* ---- Servers on every core -----------------------------------------------
 *
 * The same server run by `loops` loops, each in a thread of its own, each
 * listening on the same host:port with SO_REUSEPORT so that the kernel
 * spreads the connections over them. With no GIL each loop uses a core. */

typedef struct conc_aio_server_group conc_aio_server_group;

/* Starts the group: `loops` threads (0: one per online CPU), each running
 * a loop with conc_aio_start_server(host, port, fn, arg, opts) and
 * SO_REUSEPORT; with port 0 the first picks a free port and the others
 * share it. Returns once every loop listens, or stops them all on the
 * first failure. The threads are conc threads that exit() waits for, as
 * for any thread that is not a daemon: stop the group before the program
 * ends. `arg` is borrowed until the group is freed and is used
 * from every loop's thread at once; `opts` (may be NULL) is copied. *out:
 * a new group freed with conc_aio_server_group_free. Returns 0,
 * CONC_EINVAL (NULL fn or out, a port out of range, a host that is not
 * numeric, loops over 1024), CONC_ENOMEM, the thread, bind or listen
 * error. Any thread but one running a loop. */
CONC_EXTERN int conc_aio_server_group_start(
    const char *host, int port, unsigned loops, conc_aio_stream_handler fn,
    void *arg, const conc_aio_stream_opts *opts, conc_aio_server_group **out);

/* The port every loop of the group listens on, or CONC_EINVAL (NULL). Any
 * thread. */
CONC_EXTERN int conc_aio_server_group_port(conc_aio_server_group *g);

/* The number of loops in the group, or CONC_EINVAL (NULL). Any thread. */
CONC_EXTERN int conc_aio_server_group_loops(conc_aio_server_group *g);

/* Stops the group as one: every loop stops listening, waits up to
 * `timeout` for its handlers to return, cancels the ones left, and its
 * thread ends; returns after every thread was joined. Returns 0,
 * CONC_ETIMEDOUT (some handler had to be cancelled), CONC_EINVAL (NULL,
 * NaN). Stopping twice is a no-op. Any thread but the group's own. */
CONC_EXTERN int conc_aio_server_group_stop(conc_aio_server_group *g,
                                           double timeout);

/* Stops the group (timeout 0 if it still runs) and frees it; NULL does
 * nothing. Any thread but the group's own. */
CONC_EXTERN void conc_aio_server_group_free(conc_aio_server_group *g);

CONC_END_DECLS

#endif
