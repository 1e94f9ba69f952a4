/* Receiving on a connection: byte messages, descriptors, and poll.
 *
 * Design. Bytes arrive in an input buffer (CONC__CONN_INBUF bytes) with as
 * few system calls as possible: one read may bring several small messages
 * and the next receives take them from the buffer. A frame is taken only
 * once it is whole, so a receive that times out in the middle of a small
 * message just leaves its bytes in the buffer for the next call.
 *
 * A frame too large for the buffer ("big") is read straight into the
 * destination instead. Its header is consumed when it starts, and from
 * then on `big`/`big_len` describe it and `big_buf` holds what arrived of
 * its payload: recv_bytes reads into big_buf and hands its memory to the
 * caller's conc_buf only once the message is whole (no copy, and the
 * caller's buffer is untouched by a receive that fails);
 * recv_bytes_into copies the part out of, and back into, big_buf.
 *
 * Descriptors (Unix sockets only) come attached to the bytes of
 * their frame's header, so by the time a KIND_FD header is whole its
 * descriptor is in `fds`, a FIFO that may run ahead of the frames. Every
 * socket read leaves room for CONC__CONN_MAXFDS more, so a read never has
 * to drop a descriptor for want of memory.
 *
 * Errors after which the stream cannot be followed (end of stream inside
 * a message, bad framing, a message above max_message) shut the receiving
 * side: they are reported once, and later receives return CONC_ECLOSED. */
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/ipc_internal.h"
#include "unix/platform.h"
#include "unix/coro.h"

static int
shut(conc_conn *c, int err)
{
    c->rshut = 1;
    return err;
}

int
conc__conn_shut(conc_conn *c, int err)
{
    return shut(c, err);
}

/* Makes room for the descriptors one recvmsg may bring. */
static int
reserve_fds(conc_conn *c)
{
    if (c->nfds + CONC__CONN_MAXFDS <= c->fds_cap)
        return 0;
    size_t cap = c->fds_cap * 2;
    int *p = conc__realloc(c->fds, cap * sizeof *p);
    if (!p)
        return CONC_ENOMEM;
    c->fds = p;
    c->fds_cap = cap;
    return 0;
}

/* One read system call from the descriptor: bytes read, 0 at end of
 * stream, or -errno. Descriptors that arrive with the bytes go to `fds`;
 * if some were cut off the receiving side shuts with CONC_EPROTO, since a
 * later frame would miss its own. */
static ssize_t
read_once(conc_conn *c, void *dst, size_t cap, int nonblock)
{
    ssize_t n;
    if (!(c->flags & CONC__CONN_SOCKET)) {
        n = read(c->fd, dst, cap);
        return n < 0 ? -errno : n;
    }
    int flags = nonblock ? MSG_DONTWAIT : 0;
    if (!(c->flags & CONC__CONN_FDS)) {
        n = recv(c->fd, dst, cap, flags);
        return n < 0 ? -errno : n;
    }
    int r = reserve_fds(c);
    if (r)
        return r;
    struct iovec iov = {dst, cap};
    size_t got = 0;
    n = conc__fd_recv(c->fd, &iov, 1, c->fds + c->nfds, CONC__CONN_MAXFDS, &got,
                      flags);
    if (n == -EPROTO)
        return shut(c, CONC_EPROTO);
    c->nfds += got;
    return n;
}

/* The outcome of one read: 0 and the count in *got, CONC_ECLOSED at end
 * of stream, -EAGAIN when nothing was there, -EINTR, or an error. */
static int
read_outcome(ssize_t n, size_t *got)
{
    if (n > 0) {
        *got = (size_t)n;
        return 0;
    }
    if (n == 0)
        return CONC_ECLOSED;
    if (n == -EWOULDBLOCK)
        return -EAGAIN;
    return n == -ECONNRESET ? CONC_ECLOSED : (int)n;
}

/* A socket read that may wait: a spin (recv_spin.c) whose looks are
 * reads with MSG_DONTWAIT, then a wait until the deadline, in a blocking
 * read when there is none (outside coroutines, whose waits go through the
 * loop), else in the descriptor wait. Without a spin, a read that may
 * block is the first look, so that a sleeping reader makes one system
 * call per message. */
static int
read_sock(conc_conn *c, void *dst, size_t cap, int64_t deadline, size_t *got)
{
    struct conc__conn_spin w;
    int r;
    conc__conn_spin_begin(c, deadline, &w);
    int forever = deadline == CONC__FOREVER && !conc__coro_self;
    if (w.budget || !forever) {
        do {
            r = read_outcome(read_once(c, dst, cap, 1), got);
            if (r != -EAGAIN && r != -EINTR) {
                conc__conn_spin_end(c, &w, w.budget != 0, 1);
                return r;
            }
        } while (r == -EINTR || conc__conn_spin_more(&w));
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
    }
    int empty = !forever; /* a blocking read needs no wait first */
    for (;;) {
        if (empty && (r = conc__conn_wait_fd(c->fd, POLLIN, deadline))) {
            conc__conn_spin_end(c, &w, 0, 0);
            return r;
        }
        r = read_outcome(read_once(c, dst, cap, !forever), got);
        empty = r == -EAGAIN;
        if (r != -EAGAIN && r != -EINTR) {
            conc__conn_spin_end(c, &w, 0, 1);
            return r;
        }
    }
}

/* Reads at least one byte into dst (at most cap), waiting until the
 * deadline. Returns 0 and the count in *got, CONC_ECLOSED at end of
 * stream, CONC_ETIMEDOUT, or an error. A socket is read as read_sock
 * says; a pipe with a deadline is polled first, since its reads cannot be
 * made non-blocking one at a time. */
static int
read_some(conc_conn *c, void *dst, size_t cap, int64_t deadline, size_t *got)
{
    if (c->flags & CONC__CONN_SOCKET)
        return read_sock(c, dst, cap, deadline, got);
    /* In a coroutine the wait goes through the loop, never a blocking read. */
    int forever = deadline == CONC__FOREVER && !conc__coro_self;
    int r;
    if (!forever && (r = conc__conn_wait_fd(c->fd, POLLIN, deadline)))
        return r;
    for (;;) {
        r = read_outcome(read_once(c, dst, cap, 0), got);
        if (r != -EAGAIN && r != -EINTR)
            return r;
        if (r == -EAGAIN && (r = conc__conn_wait_fd(c->fd, POLLIN, deadline)))
            return r;
    }
}

/* Reads more bytes into the input buffer, first moving what is left of a
 * partial frame to its front. */
static int
fill_in(conc_conn *c, int64_t deadline)
{
    if (c->in_head > 0) {
        size_t have = c->in_tail - c->in_head;
        memmove(c->in, c->in + c->in_head, have);
        c->in_head = 0;
        c->in_tail = have;
    }
    size_t got;
    int r = read_some(c, c->in + c->in_tail, CONC__CONN_INBUF - c->in_tail,
                      deadline, &got);
    if (r)
        return r;
    c->in_tail += got;
    return 0;
}

/* The end of the stream reached a receive: clean between frames, an
 * error inside one. */
static int
at_eof(conc_conn *c)
{
    if (c->in_tail > c->in_head || c->big)
        return shut(c, CONC_EPROTO);
    return CONC_ECLOSED;
}

/* Checks the header of the next frame against the connection and the
 * sink. Returns 0 to go on, or the error for this receive. */
static int
check_header(conc_conn *c, const struct conc__sink *s, unsigned kind,
             uint64_t len)
{
    if (kind != CONC__KIND_BYTES && kind != CONC__KIND_FD)
        return shut(c, CONC_EPROTO);
    if (kind == CONC__KIND_FD && (len != 0 || !(c->flags & CONC__CONN_FDS)))
        return shut(c, CONC_EPROTO);
    if (kind != s->kind)
        return CONC_EPROTO; /* the frame stays for the other call */
    if (kind == CONC__KIND_FD)
        return 0;
    if (len > SIZE_MAX - CONC__HDR_MAX)
        return shut(c, CONC_EMSGSIZE);
    if (c->max_message && len > c->max_message)
        return shut(c, CONC_EMSGSIZE);
    if (!s->out && len > s->cap) {
        *s->len = (size_t)len; /* stays pending */
        return CONC_EMSGSIZE;
    }
    return 0;
}

/* Takes a descriptor frame whose header is at in_head. */
static int
take_fd(conc_conn *c, const struct conc__sink *s)
{
    if (c->nfds == 0)
        return shut(c, CONC_EPROTO);
    *s->fd = c->fds[0];
    c->nfds--;
    memmove(c->fds, c->fds + 1, c->nfds * sizeof *c->fds);
    c->in_head += CONC__FRAME_HDR;
    return 0;
}

/* Delivers a whole small frame from the input buffer. */
static int
take_small(conc_conn *c, const struct conc__sink *s, size_t hdr, size_t len)
{
    const uint8_t *p = c->in + c->in_head + hdr;
    if (s->out) {
        /* Grown first, so that a failure leaves the caller's content. */
        if (len > s->out->len) {
            int r = conc_buf_reserve(s->out, len - s->out->len);
            if (r)
                return r;
        }
        if (len)
            memcpy(s->out->data, p, len);
        s->out->len = len;
    } else {
        if (len)
            memcpy(s->buf, p, len);
        *s->len = len;
    }
    c->in_head += hdr + len;
    return 0;
}

/* Starts a big frame whose header is at in_head: moves the part of its
 * payload already in the input buffer into big_buf, grown to the whole
 * message (recv_bytes). For recv_bytes_into the part is copied straight to
 * the caller and *pre says how much. */
static int
start_big(conc_conn *c, const struct conc__sink *s, size_t hdr, size_t len,
          size_t *pre)
{
    size_t have = c->in_tail - c->in_head - hdr;
    const uint8_t *p = c->in + c->in_head + hdr;
    *pre = 0;
    if (s->out) {
        conc_buf_free(&c->big_buf);
        int r = conc_buf_reserve(&c->big_buf, len);
        if (r)
            return r; /* nothing consumed */
        memcpy(c->big_buf.data, p, have);
        c->big_buf.len = have;
    } else {
        memcpy(s->buf, p, have);
        *pre = have;
    }
    c->in_head = c->in_tail = 0;
    c->big = 1;
    c->big_len = len;
    return 0;
}

/* Continues a big frame into big_buf, and hands big_buf's memory to `out`
 * once the message is whole: until then the caller's buffer is untouched,
 * so a receive that fails leaves it as it was. */
static int
big_into_buf(conc_conn *c, conc_buf *out, int64_t deadline)
{
    conc_buf *b = &c->big_buf;
    int r = conc_buf_reserve(b, c->big_len - b->len);
    if (r)
        return r; /* kept for a later try */
    while (b->len < c->big_len) {
        size_t got;
        r = read_some(c, b->data + b->len, c->big_len - b->len, deadline, &got);
        if (r == CONC_ECLOSED) {
            conc_buf_free(b);
            return at_eof(c);
        }
        if (r)
            return r;
        b->len += got;
    }
    conc_buf_free(out);
    *out = *b;
    conc_buf_init(b);
    c->big = 0;
    return 0;
}

/* Continues a big frame into the caller's buffer, which holds `got` bytes
 * of it already. What arrived in this call is saved in big_buf if the call
 * stops early. */
static int
big_into_user(conc_conn *c, const struct conc__sink *s, size_t got,
              int64_t deadline)
{
    if (c->big_len > s->cap) {
        *s->len = c->big_len;
        return CONC_EMSGSIZE;
    }
    if (got < c->big_buf.len) { /* resuming: bring back what was kept */
        memcpy(s->buf, c->big_buf.data, c->big_buf.len);
        got = c->big_buf.len;
    }
    while (got < c->big_len) {
        size_t n;
        int r = read_some(c, s->buf + got, c->big_len - got, deadline, &n);
        if (r == CONC_ECLOSED)
            return at_eof(c);
        if (r) {
            size_t kept = c->big_buf.len;
            if (conc_buf_append(&c->big_buf, s->buf + kept, got - kept))
                return shut(c, CONC_ENOMEM);
            return r;
        }
        got += n;
    }
    conc_buf_free(&c->big_buf);
    c->big = 0;
    *s->len = got;
    return 0;
}

/* Looks at the frame at in_head. Returns 1 if the receive must read more
 * first, 0 when the frame was delivered, or an error. */
static int
take_frame(conc_conn *c, const struct conc__sink *s, int64_t deadline)
{
    size_t have = c->in_tail - c->in_head, hdr;
    unsigned kind;
    uint64_t len;
    int h =
        conc__conn_frame_get(c, c->in + c->in_head, have, &kind, &len, &hdr);
    if (h)
        return h == 1 ? 1 : shut(c, h);
    int m = conc__conn_take_marker(c);
    if (m)
        return m == CONC__RING_SWITCH ? m : take_frame(c, s, deadline);
    int r = check_header(c, s, kind, len);
    if (r)
        return r;
    if (kind == CONC__KIND_FD)
        return take_fd(c, s);
    if (hdr + len <= have)
        return take_small(c, s, hdr, (size_t)len);
    if (hdr + len <= CONC__CONN_INBUF)
        return 1;
    size_t pre;
    r = start_big(c, s, hdr, (size_t)len, &pre);
    if (r)
        return r;
    if (s->out)
        return big_into_buf(c, s->out, deadline);
    return big_into_user(c, s, pre, deadline);
}

/* The descriptor side of the receive loop (see ipc_internal.h). */
int
conc__conn_recv_sock(conc_conn *c, const struct conc__sink *s, int64_t deadline)
{
    if (c->big) {
        if (s->kind != CONC__KIND_BYTES)
            return CONC_EPROTO;
        if (s->out)
            return big_into_buf(c, s->out, deadline);
        return big_into_user(c, s, 0, deadline);
    }
    for (;;) {
        int r = take_frame(c, s, deadline);
        if (r <= 0 || r == CONC__RING_SWITCH)
            return r;
        r = fill_in(c, deadline);
        if (r == CONC_ECLOSED)
            return at_eof(c);
        if (r)
            return r;
    }
}

/* The receive loop shared by recv_bytes, recv_bytes_into and recv_fd. */
static int
recv_frame(conc_conn *c, const struct conc__sink *s, double timeout)
{
    int r = conc__conn_check_recv(c);
    if (r)
        return r;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (c->rshut)
        return CONC_ECLOSED;
    if (c->rx)
        return conc__ring_recv(c, s, deadline);
    return conc__conn_recv_sock(c, s, deadline);
}

static int
conn_recv_bytes_uncancelled(conc_conn *c, double timeout, conc_buf *out)
{
    if (!c || !out)
        return CONC_EINVAL;
    struct conc__sink s = {.kind = CONC__KIND_BYTES, .out = out};
    return recv_frame(c, &s, timeout);
}

int
conc_conn_recv_bytes(conc_conn *c, double timeout, conc_buf *out)
{
    CONC__CANCEL_POINT(conn_recv_bytes_uncancelled(c, timeout, out));
}

static int
conn_recv_bytes_into_uncancelled(conc_conn *c, void *buf, size_t cap,
                                 double timeout, size_t *len)
{
    if (!c)
        return CONC_EINVAL;
    if (!len || (!buf && cap > 0))
        return CONC_EINVAL;
    *len = 0;
    struct conc__sink s = {
        .kind = CONC__KIND_BYTES, .buf = buf, .cap = cap, .len = len};
    return recv_frame(c, &s, timeout);
}

int
conc_conn_recv_bytes_into(conc_conn *c, void *buf, size_t cap, double timeout,
                          size_t *len)
{
    CONC__CANCEL_POINT(
        conn_recv_bytes_into_uncancelled(c, buf, cap, timeout, len));
}

static int
conn_recv_fd_uncancelled(conc_conn *c, double timeout, int *fd)
{
    if (!c)
        return CONC_EINVAL;
    if (!fd)
        return CONC_EINVAL;
    int r = conc__conn_check_recv(c);
    if (r)
        return r;
    if (!(c->flags & CONC__CONN_FDS))
        return CONC_EINVAL;
    struct conc__sink s = {.kind = CONC__KIND_FD, .fd = fd};
    return recv_frame(c, &s, timeout);
}

int
conc_conn_recv_fd(conc_conn *c, double timeout, int *fd)
{
    CONC__CANCEL_POINT(conn_recv_fd_uncancelled(c, timeout, fd));
}

/* Whether the frame at in_head can be received at once (whole, or one the
 * receive will refuse at once). */
static int
frame_ready(const conc_conn *c)
{
    size_t have = c->in_tail - c->in_head, hdr;
    unsigned kind;
    uint64_t len;
    int h =
        conc__conn_frame_get(c, c->in + c->in_head, have, &kind, &len, &hdr);
    if (h)
        return h != 1; /* a bad header is reported at once */
    if (kind != CONC__KIND_BYTES)
        return 1;
    if (c->max_message && len > c->max_message)
        return 1;
    /* Compared so that no length, up to CPython's 2^64 - 1, overflows. */
    return len > CONC__CONN_INBUF - hdr || hdr + len <= have;
}

/* Takes a RING or WAKE frame whole at the front of the input buffer:
 * returns CONC__RING_SWITCH for RING, 1 for WAKE (and for RING on an end
 * without rings, which skips it), 0 if there is none. */
int
conc__conn_take_marker(conc_conn *c)
{
    if (c->flags & CONC__CONN_PYWIRE)
        return 0; /* CPython's framing has no markers */
    if (c->in_tail - c->in_head < CONC__FRAME_HDR)
        return 0;
    unsigned kind;
    uint64_t len;
    conc__frame_get(c->in + c->in_head, &kind, &len);
    if (len == 0 && !c->rx &&
        (kind == CONC__KIND_WAKE || kind == CONC__KIND_RING)) {
        /* An end handed on (conc_conn_share) may find the markers its ring
         * would have needed; the writer sends it nothing else by the ring. */
        c->in_head += CONC__FRAME_HDR;
        return 1;
    }
    if (!c->rx || len != 0 ||
        (kind != CONC__KIND_WAKE && (kind != CONC__KIND_RING || c->rx_ring)))
        return 0;
    c->in_head += CONC__FRAME_HDR;
    if (kind != CONC__KIND_RING)
        return 1;
    c->rx_ring = 1;
    return CONC__RING_SWITCH;
}

/* Whether a receive can go on at once, after taking RING and WAKE frames
 * (CONC__RING_SWITCH when it took RING). */
static int
sock_ready(conc_conn *c)
{
    int m;
    while ((m = conc__conn_take_marker(c)) == 1)
        ;
    return m ? m : frame_ready(c);
}

int
conc__conn_buffered(conc_conn *c)
{
    return c->rshut ? 1 : sock_ready(c);
}

int
conc__conn_poll_sock(conc_conn *c, int64_t deadline)
{
    if (c->rshut)
        return 1;
    int ready = sock_ready(c);
    if (ready)
        return ready;
    if (c->big) {
        int r = conc__conn_wait_fd(c->fd, POLLIN, deadline);
        return r == CONC_ETIMEDOUT ? 0 : r == 0 ? 1 : r;
    }
    for (;;) {
        int r = fill_in(c, deadline);
        if (r == CONC_ETIMEDOUT)
            return 0;
        if (r == CONC_ECLOSED || r == CONC_EPROTO)
            return 1; /* the receive reports it at once */
        if (r)
            return r;
        ready = sock_ready(c);
        if (ready)
            return ready;
    }
}

static int
conn_poll_uncancelled(conc_conn *c, double timeout)
{
    if (!c)
        return CONC_EINVAL;
    int r = conc__conn_check_recv(c);
    if (r)
        return r;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (c->rx && !c->rshut)
        return conc__ring_poll(c, deadline);
    return conc__conn_poll_sock(c, deadline);
}

int
conc_conn_poll(conc_conn *c, double timeout)
{
    CONC__CANCEL_POINT(conn_poll_uncancelled(c, timeout));
}
