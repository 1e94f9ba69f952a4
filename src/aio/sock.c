/* The loop's low-level socket calls (loop.sock_recv, sock_recv_into,
 * sock_sendall, sock_connect, sock_accept) on a caller's non-blocking
 * socket.
 *
 * Each call tries the system call first, as asyncio does, and only when it
 * would block waits for the socket through the loop (conc__aio_poll: a
 * one-shot registration for the length of the wait, through a duplicate
 * descriptor if the loop already watches this one), so the task suspends
 * and the wait is a cancellation point with the caller's deadline. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "aio/aio_internal.h"
#include "aio/net.h"
#include "conc/aio_net.h"

int
conc__net_wait(int fd, short events, int64_t deadline, const char *what)
{
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t)
        return conc_fail(CONC_ESTATE, "not inside a task");
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    t->what = what;
    int r = conc__aio_poll(t, &p, 1, deadline, 1);
    return r == 0 ? CONC_ETIMEDOUT : r > 0 ? 0 : r;
}

/* Whether errno says "try again once the socket is ready". */
static int
would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Checks the arguments every call shares; the deadline into *deadline. */
static int
begin(int fd, double timeout, int64_t *deadline)
{
    if (fd < 0 || conc__deadline(timeout, deadline) < 0)
        return CONC_EINVAL;
    if (!conc__aio_task_self())
        return conc_fail(CONC_ESTATE, "not inside a task");
    return 0;
}

int
conc_aio_sock_recv_into(int fd, void *buf, size_t n, double timeout,
                        size_t *got)
{
    int64_t deadline;
    if (!buf || !got || !n)
        return CONC_EINVAL;
    int r = begin(fd, timeout, &deadline);
    while (r == 0) {
        ssize_t k = recv(fd, buf, n, 0);
        if (k >= 0) {
            *got = (size_t)k;
            return 0;
        }
        if (!would_block())
            return -errno;
        r = conc__net_wait(fd, POLLIN, deadline, "sock_recv");
    }
    return r;
}

int
conc_aio_sock_recv(int fd, size_t n, double timeout, conc_buf *out)
{
    if (!out || !n)
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    if (conc_buf_reserve(&b, n) < 0)
        return CONC_ENOMEM;
    size_t got = 0;
    int r = conc_aio_sock_recv_into(fd, b.data, n, timeout, &got);
    if (r < 0) {
        conc_buf_free(&b);
        return r;
    }
    b.len = got;
    conc_buf_free(out);
    *out = b;
    return 0;
}

int
conc_aio_sock_sendall(int fd, const void *data, size_t n, double timeout)
{
    int64_t deadline;
    if (!data)
        return CONC_EINVAL;
    int r = begin(fd, timeout, &deadline);
    const char *p = data;
    while (r == 0 && n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k >= 0) {
            p += k;
            n -= (size_t)k;
        } else if (!would_block()) {
            return -errno;
        } else {
            r = conc__net_wait(fd, POLLOUT, deadline, "sock_sendall");
        }
    }
    return r;
}

int
conc_aio_sock_connect(int fd, const void *addr, size_t addrlen, double timeout)
{
    int64_t deadline;
    if (!addr)
        return CONC_EINVAL;
    int r = begin(fd, timeout, &deadline);
    if (r < 0)
        return r;
    if (connect(fd, addr, (socklen_t)addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    r = conc__net_wait(fd, POLLOUT, deadline, "sock_connect");
    int err = 0;
    socklen_t el = sizeof err;
    if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        return -errno;
    return r < 0 ? r : -err;
}

int
conc_aio_sock_accept(int fd, double timeout, int *conn)
{
    int64_t deadline;
    if (!conn)
        return CONC_EINVAL;
    int r = begin(fd, timeout, &deadline);
    while (r == 0) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            *conn = c;
            return 0;
        }
        if (!would_block() && errno != ECONNABORTED)
            return -errno;
        r = conc__net_wait(fd, POLLIN, deadline, "sock_accept");
    }
    return r;
}
