/* TLS under a stream's buffers (asyncio's SSLProtocol): a sans-I/O
 * session (src/tls) between the socket and the plaintext buffers, behind
 * the stream's transport ops, so reading, writing, drain, write_eof and
 * close are the same calls as on a plain stream.
 *
 * The handshake runs first, straight-line in the calling task: the
 * stream leaves epoll, and the task waits on the socket through the
 * loop's descriptor wait (conc__aio_poll) until the session is ready.
 * Only then do the TLS ops replace the plain ones, so the loop's callback
 * never sees a half-made session.
 *
 * After it, a recv decrypts what the session already holds before it
 * reads the socket (at most the session's input buffer per read), and a
 * send first pushes out the ciphertext the session holds, so the bytes
 * between socket and buffers never pass the session's fixed buffers.
 * Ciphertext a read produces (alerts) goes out with it; what the socket
 * does not take keeps EPOLLOUT on through ops->pending. */
#include <errno.h>
#include <sys/socket.h>

#include "aio/stream.h"
#include "tls/tls_internal.h"

#define HANDSHAKE_TIMEOUT 60.0 /* seconds: asyncio's ssl_handshake_timeout */

/* Sends the session's ciphertext. Returns 0 when all of it went, 1 when
 * the socket is full, or a negated errno. */
static int
push(conc_aio_stream *s)
{
    for (;;) {
        const uint8_t *p;
        size_t n = conc__tls_out_data(s->tls, &p);
        if (!n)
            return 0;
        ssize_t k = send(s->io.fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno == EAGAIN ? 1 : -errno;
        conc__tls_out_consume(s->tls, (size_t)k);
    }
}

/* Reads the socket into the session's input buffer. Returns the count
 * (0 at the end of stream, which it feeds), or a negated errno. */
static ssize_t
pull(conc_aio_stream *s)
{
    uint8_t *p;
    size_t room = conc__tls_in_space(s->tls, &p);
    if (!room)
        return -EAGAIN;
    ssize_t k;
    do
        k = recv(s->io.fd, p, room, 0);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return -errno;
    if (k == 0)
        conc_tls_session_feed_eof(s->tls);
    else
        conc__tls_in_commit(s->tls, (size_t)k);
    return k;
}

static ssize_t
tls_recv(conc_aio_stream *s, uint8_t *dst, size_t n)
{
    for (;;) {
        size_t got = 0;
        int r = conc_tls_session_read(s->tls, dst, n, &got);
        int w = push(s);
        if (r == 0)
            return (ssize_t)got;
        if (r != CONC_EAGAIN)
            return r;
        if (w < 0)
            return w;
        ssize_t k = pull(s);
        if (k < 0)
            return k;
    }
}

static ssize_t
tls_send(conc_aio_stream *s, const uint8_t *src, size_t n)
{
    size_t done = 0;
    for (;;) {
        int w = push(s);
        if (w < 0)
            return w;
        if (w > 0 || done == n)
            return (ssize_t)done;
        size_t took = 0;
        int r = conc_tls_session_write(s->tls, src + done, n - done, &took);
        if (r == CONC_EAGAIN)
            return (ssize_t)done;
        if (r < 0)
            return r;
        done += took;
    }
}

static int
tls_pending(conc_aio_stream *s)
{
    size_t n = 0;
    conc_tls_session_pending(s->tls, &n);
    return n > 0;
}

static void
tls_end(conc_aio_stream *s)
{
    conc_tls_session_close(s->tls);
}

static int
tls_holds(conc_aio_stream *s)
{
    return conc__tls_in_holds(s->tls);
}

static const struct conc__stream_ops tls_ops = {tls_recv, tls_send, tls_pending,
                                                tls_end, tls_holds};

/* Waits for the socket to be readable or writable. */
static int
wait_fd(conc_aio_stream *s, struct conc__aio_task *t, short ev,
        int64_t deadline)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct pollfd p = {.fd = s->io.fd, .events = ev};
    t->what = "TLS handshake";
    int r = conc__aio_poll(t, &p, 1, deadline, 1);
    return r == 0  ? conc_fail(CONC_ETIMEDOUT, "the TLS handshake timed out")
           : r > 0 ? 0
                   : r;
}

/* Sends what the write buffer holds, in plain, before the handshake. */
static int
flush_plain(conc_aio_stream *s, struct conc__aio_task *t, int64_t deadline)
{
    while (s->wbuf.len && !s->error && s->io.fd >= 0) {
        int r = wait_fd(s, t, POLLOUT, deadline);
        if (r < 0)
            return r;
        conc__stream_flush(s);
    }
    return s->error;
}

/* One step of the handshake's input: bytes the stream already read
 * (start_tls after plain reads), else the socket's. */
static int
take_input(conc_aio_stream *s, struct conc__aio_task *t, int64_t deadline)
{
    if (s->rbuf.len) {
        size_t k = 0;
        conc_tls_session_feed(s->tls, s->rbuf.data, s->rbuf.len, &k);
        conc_buf_consume(&s->rbuf, k);
        return 0;
    }
    ssize_t k = pull(s);
    return k != -EAGAIN ? (k < 0 ? (int)k : 0)
                        : wait_fd(s, t, POLLIN, deadline);
}

/* A connection the peer dropped during the handshake is a failed
 * handshake, whichever side noticed first. */
static int
lost(int r)
{
    if (r != -EPIPE && r != -ECONNRESET)
        return r;
    return conc_fail(CONC_ETLS,
                     "TLS handshake failed: the peer closed the connection "
                     "during the handshake (%s)",
                     conc_err_name(r));
}

/* Drives the handshake to its end. */
static int
handshake(conc_aio_stream *s, struct conc__aio_task *t, int64_t deadline)
{
    for (;;) {
        int r = conc_tls_session_handshake(s->tls);
        size_t out = 0;
        conc_tls_session_pending(s->tls, &out);
        int w = push(s);
        if (w < 0)
            return lost(w);
        if (w > 0) {
            if ((w = wait_fd(s, t, POLLOUT, deadline)) < 0)
                return w;
            continue;
        }
        if (r != CONC_EAGAIN)
            return r;
        if (out)
            continue; /* it may have more to say before it listens */
        if ((r = take_input(s, t, deadline)) < 0)
            return lost(r);
    }
}

int
conc__stream_tls(conc_aio_stream *s, conc_tls_context *ctx,
                 const char *server_hostname, int64_t deadline)
{
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&s->loop, &t);
    if (r < 0)
        return r;
    if (s->tls)
        return conc_fail(CONC_ESTATE, "the stream is already TLS");
    if (s->reading)
        return conc_fail(CONC_ESTATE, "another task is waiting to read");
    if (s->closing || s->eof_asked || s->io.fd < 0)
        return conc_fail(CONC_ECLOSED, "the stream is closed");
    if (s->error)
        return s->error;
    if ((r = flush_plain(s, t, deadline)) < 0)
        return r;
    if (s->events)
        conc__aio_io_del(s->loop, &s->io);
    s->events = 0;
    if ((r = conc_tls_session_new(ctx, server_hostname, &s->tls)) < 0)
        return r;
    r = handshake(s, t, deadline);
    if (r == 0 && s->rbuf.len)
        r = take_input(s, t, deadline);
    if (r == 0 && s->rbuf.len) /* ciphertext must not pass as plaintext */
        r = conc_fail(CONC_ETLS, "too many bytes before the TLS handshake");
    if (r < 0) {
        if (!s->error)
            s->error = r; /* half a handshake: only close is left */
        return r;
    }
    s->ops = &tls_ops;
    if ((r = conc__stream_update(s)) < 0)
        conc__stream_fail(s, r);
    return r;
}

int
conc_aio_stream_start_tls(conc_aio_stream *s, conc_tls_context *ctx,
                          const char *server_hostname, double timeout)
{
    int64_t deadline;
    if (!s || !ctx || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    return conc__stream_tls(s, ctx, server_hostname, deadline);
}

int
conc__stream_tls_open(conc_aio_stream *s, const conc_aio_stream_opts *o,
                      const char *host, int64_t deadline)
{
    double budget = o->ssl_handshake_timeout > 0 ? o->ssl_handshake_timeout
                                                 : HANDSHAKE_TIMEOUT;
    int64_t own = conc__now_ns() + (int64_t)(budget * 1e9);
    if (own < deadline)
        deadline = own;
    const char *name = o->server_hostname ? o->server_hostname : host;
    return conc__stream_tls(s, o->ssl, name, deadline);
}

int
conc__stream_error(conc_aio_stream *s)
{
    if (s->error == CONC_ETLS && s->tls)
        return conc__tls_refail(s->tls);
    return s->error;
}

int
conc_aio_stream_ssl_object(conc_aio_stream *s, conc_tls_session **out)
{
    if (!s || !out)
        return CONC_EINVAL;
    if (!s->tls || s->ops != &tls_ops)
        return conc_fail(CONC_ESTATE, "not a TLS stream");
    *out = s->tls;
    return 0;
}
