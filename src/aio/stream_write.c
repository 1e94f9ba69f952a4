/* Writing a stream (StreamWriter): write never waits; what the socket does
 * not take at once goes into the write buffer, which the loop's callback
 * sends as the socket drains, and drain suspends a writer until the
 * buffer is down to the low-water mark. The buffer is bounded: past the
 * write limit, write says CONC_EFULL instead of growing. */
#include <errno.h>
#include <sys/socket.h>

#include "aio/stream.h"

void
conc__stream_sent(conc_aio_stream *s)
{
    if (s->wbuf.len || s->io.fd < 0 || !(s->eof_asked || s->closing))
        return;
    if (!s->ended) {
        s->ended = 1;
        s->ops->end(s);
        ssize_t k = s->ops->send(s, NULL, 0);
        if (k < 0) {
            conc__stream_fail(s, (int)k);
            return;
        }
    }
    if (s->ops->pending(s)) {
        int r = conc__stream_update(s);
        if (r < 0)
            conc__stream_fail(s, r);
        return;
    }
    if (s->eof_asked && !s->eof_sent) {
        shutdown(s->io.fd, SHUT_WR);
        s->eof_sent = 1;
    }
    if (s->closing)
        conc__stream_shut(s);
}

/* After bytes were sent: wakes the drainers at the low-water mark, and
 * once everything is out, sends the end of stream or closes as asked. */
static void
after_send(conc_aio_stream *s)
{
    if (s->wbuf.len <= s->low)
        conc__aio_waitq_wake(&s->drainers, SIZE_MAX);
    conc__stream_sent(s);
}

/* The plain socket's send: what it takes of data[0..n). Returns the
 * count sent, or a negated errno for a broken connection. */
static ssize_t
send_some(conc_aio_stream *s, const uint8_t *data, size_t n)
{
    int fd = s->io.fd;
    size_t sent = 0;
    while (sent < n) {
        ssize_t k = send(fd, data + sent, n - sent, MSG_NOSIGNAL);
        if (k >= 0) {
            sent += (size_t)k;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        return -errno;
    }
    return (ssize_t)sent;
}

/* The plain socket's recv (conc__stream_ops). */
static ssize_t
recv_some(conc_aio_stream *s, uint8_t *dst, size_t n)
{
    ssize_t k = recv(s->io.fd, dst, n, 0);
    return k < 0 ? -errno : k;
}

static int
plain_pending(conc_aio_stream *s)
{
    (void)s;
    return 0;
}

static void
plain_end(conc_aio_stream *s)
{
    (void)s;
}

static int
plain_holds(conc_aio_stream *s)
{
    (void)s;
    return 0; /* all it has is in the socket */
}

const struct conc__stream_ops conc__stream_plain = {
    recv_some, send_some, plain_pending, plain_end, plain_holds};

void
conc__stream_flush(conc_aio_stream *s)
{
    ssize_t k = s->ops->send(s, s->wbuf.data, s->wbuf.len);
    if (k < 0) {
        conc__stream_fail(s, (int)k);
        return;
    }
    conc_buf_consume(&s->wbuf, (size_t)k);
    after_send(s);
}

int
conc_aio_stream_write(conc_aio_stream *s, const void *data, size_t n)
{
    if (!s || !data)
        return CONC_EINVAL;
    if (s->closing || s->eof_asked || s->io.fd < 0)
        return conc_fail(CONC_ECLOSED, "the stream is closed for writing");
    if (s->error)
        return conc__stream_error(s);
    int r = conc__aio_bind(&s->loop);
    if (r < 0 || !n)
        return r;
    if (s->wbuf.len && s->wbuf.len + n > s->write_limit)
        return conc_fail(CONC_EFULL,
                         "the write buffer holds %zu bytes: drain first",
                         s->wbuf.len);
    size_t sent = 0;
    if (!s->wbuf.len) {
        ssize_t k = s->ops->send(s, data, n);
        if (k < 0) {
            conc__stream_fail(s, (int)k);
            return (int)k;
        }
        sent = (size_t)k;
    }
    if (sent < n) {
        if ((r = conc_buf_append(&s->wbuf, (const uint8_t *)data + sent,
                                 n - sent)) < 0)
            return r; /* the part sent is gone; the rest is refused */
        if ((r = conc__stream_update(s)) < 0) {
            conc__stream_fail(s, r);
            return r;
        }
    }
    return 0;
}

int
conc_aio_stream_drain(conc_aio_stream *s, double timeout)
{
    int64_t deadline;
    if (!s || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&s->loop, &t);
    while (r == 0) {
        if (s->error)
            return conc__stream_error(s);
        if (s->wbuf.len <= s->low)
            return 0;
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
        struct conc__aio_waiter w;
        t->what = "stream drain";
        r = conc__aio_waitq_wait(&s->drainers, &w, t, deadline);
    }
    return r;
}

int
conc_aio_stream_write_eof(conc_aio_stream *s)
{
    if (!s)
        return CONC_EINVAL;
    if (s->closing || s->io.fd < 0)
        return conc_fail(CONC_ECLOSED, "the stream is closed");
    if (s->error)
        return conc__stream_error(s);
    int r = conc__aio_bind(&s->loop);
    if (r < 0 || s->eof_asked)
        return r;
    s->eof_asked = 1;
    conc__stream_sent(s);
    return conc__stream_error(s);
}
