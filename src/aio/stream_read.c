/* Reading a stream (StreamReader): read, readexactly, readuntil, readline.
 *
 * The loop's callback fills the read buffer; a reader takes from it and,
 * when it needs more, first tries one recv itself (the bytes are often in
 * the kernel already; not when the last recv found the socket empty, see
 * more()), then suspends until the callback brings some. A
 * reader that finds what it needs consumes it and lets the callback read
 * again if the buffer had reached its pause mark. On failure nothing is
 * consumed: the bytes stay buffered for the next read. */
#include <string.h>

#include "aio/stream.h"

/* Checks the arguments and binds the stream to the caller's loop. */
static int
begin(conc_aio_stream *s, double timeout, conc_buf *out,
      struct conc__aio_task **t, int64_t *deadline)
{
    if (!s || !out || conc__deadline(timeout, deadline) < 0)
        return CONC_EINVAL;
    int r = conc__aio_bind_task(&s->loop, t);
    if (r < 0)
        return r;
    if (s->reading)
        return conc_fail(CONC_ESTATE,
                         "another task is already waiting to read");
    return 0;
}

/* Gets more bytes or the end of stream: one recv, else a suspension until
 * the callback brings some. Returns 0 when something may have changed.
 *
 * The recv is skipped when the last one drained the socket (it came back
 * short): in a request-response exchange the answer is not there yet, and
 * a recv that fails with EAGAIN was a quarter of the system calls of an
 * echo (epoll_wait, recv, send, recv). The loop is asked to look at epoll
 * (level-triggered) within two iterations even when it has other work
 * ready, and one epoll_wait answers for every reader that skipped. A read
 * that must not wait (timeout 0) always tries the recv. What a TLS session
 * holds (records read ahead, bytes that came with the handshake) the
 * socket does not show, so a session holding any is read. */
static int
more(conc_aio_stream *s, struct conc__aio_task *t, int64_t deadline)
{
    if (s->closing || s->io.fd < 0)
        return conc_fail(CONC_ECLOSED, "the stream is closed");
    if (s->error)
        return conc__stream_error(s);
    if (s->drained && s->loop && deadline != CONC__POLL && !s->ops->holds(s))
        s->loop->poll_soon = 1;
    else if (conc__stream_fill(s))
        return 0;
    s->reading = 1; /* set first: a paused stream resumes for a reader */
    int r = conc__stream_update(s);
    if (r == 0 && deadline == CONC__POLL)
        r = CONC_ETIMEDOUT;
    if (r == 0) {
        struct conc__aio_waiter w;
        t->what = "stream read";
        r = conc__aio_waitq_wait(&s->readers, &w, t, deadline);
    }
    s->reading = 0;
    return r;
}

/* Moves the first n buffered bytes into out. */
static int
take(conc_aio_stream *s, size_t n, conc_buf *out)
{
    int r = conc__buf_set(out, s->rbuf.len ? s->rbuf.data : (void *)"", n);
    if (r < 0)
        return r;
    conc_buf_consume(&s->rbuf, n);
    r = conc__stream_update(s);
    if (r < 0)
        conc__stream_fail(s, r);
    return 0;
}

/* read(-1): everything until the end of stream. The buffer is emptied as
 * it fills, so reading never pauses; on failure what was taken goes back. */
static int
read_all(conc_aio_stream *s, struct conc__aio_task *t, int64_t deadline,
         conc_buf *out)
{
    conc_buf acc = CONC_BUF_INIT;
    int r = 0;
    for (;;) {
        if (s->rbuf.len) {
            if ((r = conc_buf_append(&acc, s->rbuf.data, s->rbuf.len)) < 0)
                break;
            conc_buf_consume(&s->rbuf, s->rbuf.len);
        }
        if (s->eof || (r = more(s, t, deadline)) < 0)
            break;
    }
    if (r == 0) {
        conc_buf_free(out);
        *out = acc;
        return 0;
    }
    if (conc_buf_append(&acc, s->rbuf.data, s->rbuf.len) == 0) {
        conc_buf_free(&s->rbuf);
        s->rbuf = acc;
    } else {
        conc_buf_free(&acc); /* out of memory twice: the bytes are lost */
    }
    return r;
}

int
conc_aio_stream_read(conc_aio_stream *s, size_t n, double timeout,
                     conc_buf *out)
{
    struct conc__aio_task *t;
    int64_t deadline;
    int r = begin(s, timeout, out, &t, &deadline);
    if (r < 0)
        return r;
    if (n == CONC_AIO_READ_ALL)
        return read_all(s, t, deadline, out);
    while (n && !s->rbuf.len && !s->eof)
        if ((r = more(s, t, deadline)) < 0)
            return r;
    return take(s, n < s->rbuf.len ? n : s->rbuf.len, out);
}

int
conc_aio_stream_readexactly(conc_aio_stream *s, size_t n, double timeout,
                            conc_buf *out)
{
    struct conc__aio_task *t;
    int64_t deadline;
    int r = begin(s, timeout, out, &t, &deadline);
    if (r < 0)
        return r;
    s->want = n;
    while (s->rbuf.len < n && !s->eof)
        if ((r = more(s, t, deadline)) < 0)
            break;
    s->want = 0;
    if (r < 0)
        return r;
    if (s->rbuf.len < n)
        return conc_fail(CONC_EINCOMPLETE, "%zu bytes read on %zu expected",
                         s->rbuf.len, n);
    return take(s, n, out);
}

/* readuntil's search: the offset just past the separator in *end. Returns
 * 0, CONC_ELIMIT, CONC_EINCOMPLETE or a wait's error. */
static int
until(conc_aio_stream *s, struct conc__aio_task *t, int64_t deadline,
      const void *sep, size_t seplen, size_t *end)
{
    size_t from = 0;
    for (;;) {
        const uint8_t *hit =
            s->rbuf.len > from
                ? memmem(s->rbuf.data + from, s->rbuf.len - from, sep, seplen)
                : NULL;
        if (hit) {
            size_t off = (size_t)(hit - s->rbuf.data);
            if (off > s->limit)
                return conc_fail(CONC_ELIMIT, "separator found past the "
                                              "limit");
            *end = off + seplen;
            return 0;
        }
        if (s->rbuf.len > s->limit)
            return conc_fail(CONC_ELIMIT,
                             "separator not found within the limit");
        if (s->eof)
            return conc_fail(CONC_EINCOMPLETE,
                             "the stream ended after %zu bytes without "
                             "a separator",
                             s->rbuf.len);
        from = s->rbuf.len >= seplen ? s->rbuf.len - seplen + 1 : 0;
        int r = more(s, t, deadline);
        if (r < 0)
            return r;
    }
}

int
conc_aio_stream_readuntil(conc_aio_stream *s, const void *sep, size_t seplen,
                          double timeout, conc_buf *out)
{
    struct conc__aio_task *t;
    int64_t deadline;
    if (!sep || !seplen)
        return CONC_EINVAL;
    int r = begin(s, timeout, out, &t, &deadline);
    size_t end = 0;
    if (r == 0)
        r = until(s, t, deadline, sep, seplen, &end);
    return r < 0 ? r : take(s, end, out);
}

int
conc_aio_stream_readline(conc_aio_stream *s, double timeout, conc_buf *out)
{
    struct conc__aio_task *t;
    int64_t deadline;
    int r = begin(s, timeout, out, &t, &deadline);
    size_t end = 0;
    if (r == 0)
        r = until(s, t, deadline, "\n", 1, &end);
    if (r == CONC_EINCOMPLETE)
        return take(s, s->rbuf.len, out); /* the last, partial line */
    if (r == CONC_ELIMIT) {
        /* asyncio drops the long line, through its end if it came. */
        const uint8_t *nl = memchr(s->rbuf.data, '\n', s->rbuf.len);
        conc_buf_consume(&s->rbuf,
                         nl ? (size_t)(nl - s->rbuf.data) + 1 : s->rbuf.len);
        int u = conc__stream_update(s);
        if (u < 0)
            conc__stream_fail(s, u);
        return r;
    }
    return r < 0 ? r : take(s, end, out);
}

int
conc_aio_stream_at_eof(conc_aio_stream *s)
{
    if (!s)
        return CONC_EINVAL;
    return s->eof && !s->rbuf.len;
}
