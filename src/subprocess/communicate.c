/* Python's Popen.communicate: feed stdin while draining stdout and stderr.
 *
 * Design. A child blocks when it writes to a full pipe, and so do we; if
 * each side waits for the other to read, both hang. So the parent never
 * blocks on one pipe while another could make progress: one poll(2) covers
 * the stdin pipe (writable), stdout and stderr (readable or hung up), and
 * each ready descriptor gets one non-blocking step. stdin is switched to
 * O_NONBLOCK on our side only (the child's end is a separate open file), so
 * a write takes what fits and returns. Reads need no such switch: a read
 * on a pipe poll called readable returns what is there without waiting.
 *
 * Timeouts keep everything: output read so far is already in the caller's
 * buffers, and input not yet written is copied into the popen, so a later
 * call picks up exactly where this one stopped, as in Python.
 *
 * SIGPIPE. Writing to a pipe whose reader has gone raises SIGPIPE, which
 * kills a program by default. A library may not change the process's
 * disposition, so while writing, the calling thread blocks SIGPIPE; the
 * write then fails with EPIPE (the child exited without reading all its
 * input, which Python ignores too), and the SIGPIPE it left pending on the
 * thread is taken back with sigtimedwait before the mask is restored,
 * unless one was already pending before we started. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "subprocess/subprocess_internal.h"
#include "unix/fdwait.h"
#include "unix/sigpipe.h"
#include "unix/coro.h"

#define CONC__WRITE_CHUNK    ((size_t)1 << 20)
#define CONC__READ_ROOM      ((size_t)16384)
#define CONC__DRAIN_GRACE_NS ((int64_t)1000000000)
#define CONC__DRAIN_QUICK_NS ((int64_t)10000000)

struct comm {
    conc_popen *p;
    const uint8_t *in; /* the input being written */
    size_t in_len, in_off;
    int from_pending; /* `in` is p->pending, not the caller's memory */
    conc_buf *out, *err;
    int epipe; /* a write met a closed reader */
};

/* One non-blocking write to stdin; closes it when all is written or the
 * reader has gone. */
static int
write_step(struct comm *c)
{
    conc_popen *p = c->p;
    size_t n = c->in_len - c->in_off;
    if (n > CONC__WRITE_CHUNK)
        n = CONC__WRITE_CHUNK;
    ssize_t w = write(p->in_fd, c->in + c->in_off, n);
    if (w >= 0) {
        c->in_off += (size_t)w;
        if (c->in_off == c->in_len)
            conc__popen_close_fd(&p->in_fd);
        return 0;
    }
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    if (errno == EPIPE) {
        c->epipe = 1;
        conc__popen_close_fd(&p->in_fd);
        return 0;
    }
    return -errno;
}

/* One read from *fd into b (or dropped when b is NULL); closes *fd at its
 * end. */
static int
read_step(int *fd, conc_buf *b)
{
    uint8_t scratch[CONC__READ_ROOM];
    uint8_t *dst = scratch;
    size_t room = sizeof scratch;
    if (b) {
        int r = conc_buf_reserve(b, CONC__READ_ROOM);
        if (r)
            return r;
        dst = b->data + b->len;
        room = b->cap - b->len;
    }
    ssize_t n = read(*fd, dst, room);
    if (n > 0) {
        if (b)
            b->len += (size_t)n;
        return 0;
    }
    if (n == 0)
        conc__popen_close_fd(fd);
    else if (errno != EAGAIN && errno != EINTR)
        return -errno;
    return 0;
}

static int
dispatch(struct comm *c, int which, short revents)
{
    if (revents & POLLNVAL)
        return CONC_EBADF; /* the caller closed one of our descriptors */
    if (which == 0)
        return write_step(c);
    if (which == 1)
        return read_step(&c->p->out_fd, c->out);
    return read_step(&c->p->err_fd, c->err);
}

/* Moves data until every pipe is closed or the deadline passes (checked
 * after each pass too, so a child that never stops writing cannot hold us
 * past it). Returns 0, CONC_ETIMEDOUT, or an error of a step. */
static int
comm_loop(struct comm *c, int64_t deadline)
{
    conc_popen *p = c->p;
    for (int pass = 0;; pass++) {
        struct pollfd fds[3];
        int which[3], n = 0;
        int want[3] = {p->in_fd, p->out_fd, p->err_fd};
        for (int i = 0; i < 3; i++) {
            if (want[i] < 0)
                continue;
            fds[n] = (struct pollfd){want[i], i == 0 ? POLLOUT : POLLIN, 0};
            which[n++] = i;
        }
        if (n == 0)
            return 0;
        if (pass > 0 && deadline != CONC__FOREVER && conc__now_ns() >= deadline)
            return CONC_ETIMEDOUT;
        int r = conc__poll_until(fds, (unsigned)n, deadline);
        if (r < 0)
            return r;
        if (r == 0)
            return CONC_ETIMEDOUT;
        for (int i = 0; i < n; i++) {
            int e = fds[i].revents ? dispatch(c, which[i], fds[i].revents) : 0;
            if (e)
                return e;
        }
    }
}

/* After a timeout or an error with input left, keeps that input in the
 * popen so that a later call can go on without the caller's memory. */
static int
keep_input(struct comm *c)
{
    conc_popen *p = c->p;
    if (c->from_pending) {
        p->pending_off += c->in_off;
        return 0;
    }
    if (p->in_fd < 0 || c->in_off == c->in_len)
        return 0;
    int r =
        conc_buf_append(&p->pending, c->in + c->in_off, c->in_len - c->in_off);
    p->pending_off = 0;
    if (r)
        conc__popen_close_fd(&p->in_fd); /* that input is lost */
    return r;
}

/* The kill_on_timeout ending: kill and reap the child (and its group),
 * then read what the pipes still hold until their end. */
static void
kill_and_drain(struct comm *c)
{
    conc_popen *p = c->p;
    conc__popen_kill_reap(p);
    conc__popen_close_fd(&p->in_fd);
    /* With the group dead the pipes end at once; stray descendants
     * outside the group get a bounded grace. Without a group, surviving
     * grandchildren may hold the pipes for ever: take only what comes at
     * once. */
    int64_t grace = p->leader ? CONC__DRAIN_GRACE_NS : CONC__DRAIN_QUICK_NS;
    comm_loop(c, conc__now_ns() + grace);
    conc__popen_close_fd(&p->out_fd);
    conc__popen_close_fd(&p->err_fd);
}

/* Picks the input of this call: the caller's on the first call, the kept
 * remainder on later ones. */
static int
take_input(struct comm *c, const void *input, size_t len)
{
    conc_popen *p = c->p;
    if (!input && len)
        return CONC_EINVAL;
    if (p->comm_started) {
        if (input && len)
            return CONC_ESTATE;
        c->from_pending = 1;
        if (p->pending.len > p->pending_off) {
            c->in = p->pending.data + p->pending_off;
            c->in_len = p->pending.len - p->pending_off;
        }
        return 0;
    }
    if (input && len && p->in_fd < 0)
        return CONC_EINVAL;
    p->comm_started = 1;
    c->in = input;
    c->in_len = len;
    return 0;
}

static int
move_data(struct comm *c, int64_t deadline)
{
    conc_popen *p = c->p;
    if (c->in_len == 0)
        conc__popen_close_fd(&p->in_fd);
    if (p->in_fd < 0)
        return comm_loop(c, deadline);
    if (!p->in_nonblock) {
        int fl = fcntl(p->in_fd, F_GETFL);
        if (fl < 0 || fcntl(p->in_fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
        p->in_nonblock = 1;
    }
    struct conc__sigpipe_guard g;
    conc__sigpipe_block(&g);
    int r = comm_loop(c, deadline);
    conc__sigpipe_restore(&g, c->epipe);
    return r;
}

int
conc__popen_communicate_until(conc_popen *p, const void *input, size_t len,
                              int64_t deadline, conc_buf *out, conc_buf *err)
{
    struct comm c = {.p = p, .out = out, .err = err};
    int r = take_input(&c, input, len);
    if (r)
        return r;
    r = move_data(&c, deadline);
    if (r == 0) {
        conc_buf_free(&p->pending);
        p->pending_off = 0;
        r = conc__popen_wait_until(p, deadline, NULL);
    }
    if (r == CONC_ETIMEDOUT && p->kill_on_timeout) {
        kill_and_drain(&c);
        conc_buf_free(&p->pending);
        p->pending_off = 0;
        return r;
    }
    if (r) {
        int k = keep_input(&c);
        if (k)
            r = k;
    }
    return r;
}

/* Replaces `dst`'s content with what `got` holds, moving the memory. */
static void
hand_over(conc_buf *got, conc_buf *dst)
{
    if (!dst)
        return;
    conc_buf_free(dst);
    *dst = *got;
    conc_buf_init(got);
}

/* The output read goes to the popen's own buffers first, so that a call
 * that fails leaves the caller's buffers as they were (conc_buf's rule)
 * while nothing read is lost: the call that succeeds hands all of it
 * over, as Python's communicate does after a TimeoutExpired. */
static int
popen_communicate_uncancelled(conc_popen *p, const void *input, size_t len,
                              double timeout, conc_buf *out, conc_buf *err)
{
    int64_t deadline;
    if (!p || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    int r = conc__popen_communicate_until(p, input, len, deadline,
                                          out ? &p->got_out : NULL,
                                          err ? &p->got_err : NULL);
    if (r)
        return r;
    hand_over(&p->got_out, out);
    hand_over(&p->got_err, err);
    return 0;
}

int
conc_popen_communicate(conc_popen *p, const void *input, size_t len,
                       double timeout, conc_buf *out, conc_buf *err)
{
    CONC__CANCEL_POINT(
        popen_communicate_uncancelled(p, input, len, timeout, out, err));
}
