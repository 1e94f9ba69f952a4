/* Sending on a connection: byte messages and descriptors.
 *
 * A message goes out as one writev (pipes, files) or sendmsg (sockets) of
 * header and payload, repeated only for what a partial write left over, so
 * a small message costs one system call.
 *
 * SIGPIPE. A socket write takes MSG_NOSIGNAL. A pipe has no such flag, so
 * around a pipe write the calling thread blocks SIGPIPE, and if the write
 * failed with EPIPE it takes the signal the kernel queued for it with a
 * zero-timeout sigtimedwait before restoring its mask. A SIGPIPE that was
 * already pending (because the caller blocks it) is left alone.
 *
 * Timeouts. Descriptors stay blocking (they are shared with other
 * processes, so their flags are not ours to change). A send with a finite
 * timeout writes to a socket with MSG_DONTWAIT and waits for room with
 * poll; to a pipe it first waits for room, then writes at most PIPE_BUF
 * bytes, which a pipe with room takes without blocking. A timeout that
 * strikes after part of a message went out leaves the stream cut inside a
 * frame: the sending side is then shut (CONC_EPROTO from later sends). */
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h> /* MSG_DONTWAIT, a flag of conc__fd_send */
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc_internal.h"
#include "unix/platform.h"
#include "unix/sigpipe.h"
#include "unix/coro.h"

/* Caps one system call's share of a huge payload below SSIZE_MAX. */
#define WRITE_CHUNK ((size_t)1 << 30)

/* One write system call of the vector; returns bytes written or -errno. */
static ssize_t
write_once(const conc_conn *c, struct iovec *iov, int n, int *cmsg_fd,
           int flags)
{
    if (!(c->flags & CONC__CONN_SOCKET)) {
        ssize_t w = writev(c->fd, iov, n);
        return w < 0 ? -errno : w;
    }
    size_t nfds = cmsg_fd && *cmsg_fd >= 0;
    ssize_t w = conc__fd_send(c->fd, iov, n, cmsg_fd, nfds, flags);
    if (nfds && w > 0)
        *cmsg_fd = -1; /* the descriptor went with the first bytes */
    return w;
}

/* Drops `w` written bytes from the front of the two-part vector. */
static void
advance(struct iovec *iov, size_t w)
{
    for (int i = 0; i < 2 && w > 0; i++) {
        size_t k = w < iov[i].iov_len ? w : iov[i].iov_len;
        iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
        iov[i].iov_len -= k;
        w -= k;
    }
}

/* Copies the unwritten part of the vector into `call`, each part capped
 * at `cap` bytes in all; returns the number of parts. */
static int
next_call(const struct iovec *iov, struct iovec *call, size_t cap)
{
    int n = 0;
    for (int i = 0; i < 2 && cap > 0; i++) {
        if (iov[i].iov_len == 0)
            continue;
        call[n] = iov[i];
        if (call[n].iov_len > cap)
            call[n].iov_len = cap;
        cap -= call[n].iov_len;
        n++;
    }
    return n;
}

/* Writes all of the two-part vector, attaching *cmsg_fd (if any) to the
 * first bytes, waiting for room until `deadline` (see the top of the
 * file). *sent counts the bytes written. */
static int
write_all(const conc_conn *c, struct iovec *iov, int *cmsg_fd, int64_t deadline,
          size_t *sent)
{
    /* In a coroutine the wait goes through the loop, never a blocking write. */
    int timed = deadline != CONC__FOREVER || conc__coro_self;
    int sock = (c->flags & CONC__CONN_SOCKET) != 0;
    while (iov[0].iov_len + iov[1].iov_len > 0) {
        if (timed && !sock) {
            int r = conc__conn_wait_fd(c->fd, POLLOUT, deadline);
            if (r)
                return r;
        }
        struct iovec call[2];
        int n = next_call(iov, call, timed && !sock ? PIPE_BUF : WRITE_CHUNK);
        ssize_t w = write_once(c, call, n, cmsg_fd, timed ? MSG_DONTWAIT : 0);
        if (w >= 0) {
            advance(iov, (size_t)w);
            *sent += (size_t)w;
            continue;
        }
        if (w == -EINTR)
            continue;
        if (w == -EAGAIN) { /* a full socket, or a non-blocking descriptor */
            int r = conc__conn_wait_fd(c->fd, POLLOUT, deadline);
            if (r)
                return r;
            continue;
        }
        if (w == -EPIPE || w == -ECONNRESET)
            return CONC_EPIPE;
        return (int)w;
    }
    return 0;
}

/* Sends one frame, guarding pipes against SIGPIPE. */
int
conc__conn_send_frame(conc_conn *c, unsigned kind, const void *data, size_t len,
                      int *cmsg_fd, int64_t deadline)
{
    uint8_t hdr[CONC__HDR_MAX];
    size_t hlen = CONC__FRAME_HDR;
    if (c->flags & CONC__CONN_PYWIRE)
        hlen = conc__pyframe_put(hdr, len);
    else
        conc__frame_put(hdr, kind, len);
    struct iovec iov[2] = {{hdr, hlen}, {(void *)data, len}};
    size_t sent = 0;
    int r;
    if (c->flags & CONC__CONN_SOCKET) {
        r = write_all(c, iov, cmsg_fd, deadline, &sent);
    } else {
        struct conc__sigpipe_guard g;
        conc__sigpipe_block(&g);
        r = write_all(c, iov, cmsg_fd, deadline, &sent);
        conc__sigpipe_restore(&g, r == CONC_EPIPE);
    }
    if (r == CONC_ETIMEDOUT && sent > 0)
        c->wshut = 1; /* cut inside a frame */
    return r;
}

static int
check_send(const conc_conn *c)
{
    if (c->closed)
        return CONC_ECLOSED;
    if (!(c->flags & CONC__CONN_WRITE))
        return CONC_EBADF;
    if (c->wshut)
        return CONC_EPROTO;
    return 0;
}

static int
conn_send_bytes_uncancelled(conc_conn *c, const void *data, size_t len,
                            double timeout)
{
    if (!c || (!data && len > 0))
        return CONC_EINVAL;
    int r = check_send(c);
    if (r)
        return r;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if ((uint64_t)len > CONC__FRAME_MAX)
        return CONC_EMSGSIZE;
    if (c->tx)
        return conc__ring_send(c, CONC__KIND_BYTES, data, len, NULL, deadline);
    return conc__conn_send_frame(c, CONC__KIND_BYTES, data, len, NULL,
                                 deadline);
}

int
conc_conn_send_bytes(conc_conn *c, const void *data, size_t len, double timeout)
{
    CONC__CANCEL_POINT(conn_send_bytes_uncancelled(c, data, len, timeout));
}

static int
conn_send_fd_uncancelled(conc_conn *c, int fd, double timeout)
{
    if (!c)
        return CONC_EINVAL;
    if (c->closed)
        return CONC_ECLOSED;
    if (!(c->flags & CONC__CONN_FDS))
        return CONC_EINVAL;
    int r = check_send(c);
    if (r)
        return r;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (fd < 0)
        return CONC_EBADF;
    if (c->tx)
        return conc__ring_send(c, CONC__KIND_FD, NULL, 0, &fd, deadline);
    return conc__conn_send_frame(c, CONC__KIND_FD, NULL, 0, &fd, deadline);
}

int
conc_conn_send_fd(conc_conn *c, int fd, double timeout)
{
    CONC__CANCEL_POINT(conn_send_fd_uncancelled(c, fd, timeout));
}
