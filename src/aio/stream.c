/* A stream's life: its options, its epoll registration, the loop callback
 * that reads into the buffer and sends from it, closing, and its names.
 * Reading is in stream_read.c, writing in stream_write.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aio/stream.h"

void
conc__stream_opts(const conc_aio_stream_opts *opts, conc_aio_stream_opts *out)
{
    *out = opts ? *opts : (conc_aio_stream_opts){0};
    if (!out->limit)
        out->limit = STREAM_LIMIT;
    if (!out->high_water)
        out->high_water = STREAM_HIGH_WATER;
    if (!out->low_water)
        out->low_water = out->high_water / 4;
    if (out->low_water > out->high_water)
        out->low_water = out->high_water;
    if (!out->write_limit)
        out->write_limit = 4 * out->high_water;
}

conc_aio_stream *
conc__stream_new(int fd, const conc_aio_stream_opts *opts)
{
    conc_aio_stream *s = conc__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    conc_aio_stream_opts o;
    conc__stream_opts(opts, &o);
    s->io.fd = fd;
    s->limit = o.limit;
    s->high = o.high_water;
    s->low = o.low_water;
    s->write_limit = o.write_limit;
    conc_buf_init(&s->rbuf);
    conc_buf_init(&s->wbuf);
    s->io.ready = conc__stream_ready;
    s->ops = &conc__stream_plain;
    return s;
}

int
conc_aio_stream_from_fd(int fd, const conc_aio_stream_opts *opts,
                        conc_aio_stream **out)
{
    if (!out || fd < 0)
        return CONC_EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    conc_aio_stream *s = conc__stream_new(fd, opts);
    if (!s)
        return CONC_ENOMEM;
    *out = s;
    return 0;
}

/* Reading stops once the buffer holds this much (asyncio: 2 * limit), or
 * the n bytes a readexactly waits for. */
static size_t
pause_mark(const conc_aio_stream *s)
{
    return s->want > 2 * s->limit ? s->want : 2 * s->limit;
}

/* asyncio's hysteresis: reading pauses once the buffer reaches the pause
 * mark and resumes once a reader brings it back to the limit, or waits
 * for more than is buffered (StreamReader._wait_for_data resumes too). */
static int
reading_wanted(conc_aio_stream *s)
{
    if (s->rbuf.len >= pause_mark(s))
        s->paused = 1;
    else if (s->rbuf.len <= s->limit || s->reading)
        s->paused = 0;
    return !s->paused;
}

int
conc__stream_update(conc_aio_stream *s)
{
    if (!s->loop || s->io.fd < 0)
        return 0;
    uint32_t want = 0;
    if (!s->eof && !s->error && !s->closing && reading_wanted(s))
        want |= EPOLLIN;
    if ((s->wbuf.len || s->ops->pending(s)) && !s->error)
        want |= EPOLLOUT;
    if (want == s->events)
        return 0;
    if (!want) {
        conc__aio_io_del(s->loop, &s->io);
        s->events = 0;
        return 0;
    }
    int r = conc__aio_io_add(s->loop, &s->io, want, s->events != 0);
    if (r < 0)
        return r;
    s->events = want;
    return 0;
}

static void
wake_all(conc_aio_stream *s)
{
    conc__aio_waitq_wake(&s->readers, SIZE_MAX);
    conc__aio_waitq_wake(&s->drainers, SIZE_MAX);
}

void
conc__stream_shut(conc_aio_stream *s)
{
    if (s->io.fd >= 0) {
        if (s->events)
            conc__aio_io_del(s->loop, &s->io);
        close(s->io.fd);
        s->io.fd = -1;
        s->events = 0;
    }
    wake_all(s);
    conc__aio_waitq_wake(&s->closers, SIZE_MAX);
}

void
conc__stream_fail(conc_aio_stream *s, int err)
{
    if (!s->error)
        s->error = err;
    conc_buf_free(&s->wbuf);
    if (s->closing)
        conc__stream_shut(s);
    else if (conc__stream_update(s) < 0)
        conc__stream_shut(s);
    wake_all(s);
}

int
conc__stream_fill(conc_aio_stream *s)
{
    if (s->eof || s->error || s->io.fd < 0 || s->rbuf.len >= pause_mark(s))
        return 0;
    if (conc_buf_reserve(&s->rbuf, STREAM_CHUNK) < 0) {
        conc__stream_fail(s, CONC_ENOMEM);
        return 1;
    }
    ssize_t k = s->ops->recv(s, s->rbuf.data + s->rbuf.len, STREAM_CHUNK);
    s->drained = k < (ssize_t)STREAM_CHUNK;
    if (k == -EAGAIN || k == -EINTR)
        return 0;
    if (k < 0) {
        conc__stream_fail(s, (int)k);
        return 1;
    }
    if (k == 0)
        s->eof = 1;
    s->rbuf.len += (size_t)k;
    conc__aio_waitq_wake(&s->readers, SIZE_MAX);
    return 1;
}

/* The loop's callback for the socket. */
void
conc__stream_ready(struct conc__aio_io *io, uint32_t events)
{
    conc_aio_stream *s = (conc_aio_stream *)io;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (s->events & EPOLLIN))
        conc__stream_fill(s);
    if (s->io.fd >= 0 && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
        (s->wbuf.len || s->ops->pending(s)))
        conc__stream_flush(s);
    if (s->io.fd >= 0) {
        int r = conc__stream_update(s);
        if (r < 0)
            conc__stream_fail(s, r);
    }
}

int
conc_aio_stream_close(conc_aio_stream *s)
{
    if (!s)
        return CONC_EINVAL;
    if (s->closing)
        return 0;
    s->closing = 1;
    if (s->error || !s->loop)
        conc__stream_shut(s);
    else if (conc__stream_sent(s), s->io.fd >= 0 && conc__stream_update(s) < 0)
        conc__stream_shut(s);
    wake_all(s);
    return 0;
}

int
conc_aio_stream_is_closing(conc_aio_stream *s)
{
    return s ? s->closing : CONC_EINVAL;
}

int
conc_aio_stream_wait_closed(conc_aio_stream *s, double timeout)
{
    int64_t deadline;
    if (!s || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    if (!s->closing)
        return conc_fail(CONC_ESTATE, "the stream is not closing");
    if (s->io.fd < 0)
        return 0;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&s->loop, &t);
    while (r == 0 && s->io.fd >= 0) {
        struct conc__aio_waiter w;
        r = deadline == CONC__POLL
                ? CONC_ETIMEDOUT
                : conc__aio_waitq_wait(&s->closers, &w, t, deadline);
    }
    return r;
}

int
conc_aio_stream_buffered(conc_aio_stream *s, size_t *rd, size_t *wr)
{
    if (!s || !rd || !wr)
        return CONC_EINVAL;
    *rd = s->rbuf.len;
    *wr = s->wbuf.len;
    return 0;
}

/* Writes addr as text into out: "1.2.3.4:80", "[::1]:80", or a path. */
static int
addr_text(const struct sockaddr_storage *ss, socklen_t len, conc_buf *out)
{
    char host[INET6_ADDRSTRLEN], text[sizeof host + 16];
    const struct sockaddr_in *in4 = (const void *)ss;
    const struct sockaddr_in6 *in6 = (const void *)ss;
    const struct sockaddr_un *un = (const void *)ss;
    int n;
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        n = snprintf(text, sizeof text, "%s:%d", host, ntohs(in4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        n = snprintf(text, sizeof text, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t plen = len > off ? strnlen(un->sun_path, len - off) : 0;
        return conc__buf_set(out, un->sun_path, plen);
    } else {
        return conc_fail(CONC_EVALUE, "unknown address family %d",
                         ss->ss_family);
    }
    return conc__buf_set(out, text, (size_t)n);
}

static int
name_of(conc_aio_stream *s, conc_buf *out, int peer)
{
    if (!s || !out)
        return CONC_EINVAL;
    if (s->io.fd < 0)
        return CONC_ECLOSED;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    int r = peer ? getpeername(s->io.fd, (struct sockaddr *)&ss, &len)
                 : getsockname(s->io.fd, (struct sockaddr *)&ss, &len);
    if (r < 0)
        return -errno;
    return addr_text(&ss, len, out);
}

int
conc_aio_stream_peername(conc_aio_stream *s, conc_buf *out)
{
    return name_of(s, out, 1);
}

int
conc_aio_stream_sockname(conc_aio_stream *s, conc_buf *out)
{
    return name_of(s, out, 0);
}

void
conc_aio_stream_free(conc_aio_stream *s)
{
    if (!s)
        return;
    if (s->io.fd >= 0 && !s->error) {
        if (!s->ended)
            s->ops->end(s);
        (void)s->ops->send(s, s->wbuf.data, s->wbuf.len);
    }
    conc__stream_shut(s);
    conc_tls_session_free(s->tls);
    conc_buf_free(&s->rbuf);
    conc_buf_free(&s->wbuf);
    conc__free(s);
}
