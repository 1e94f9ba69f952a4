/* Opening a stream: open_connection over TCP and Unix sockets.
 *
 * A numeric host is turned into addresses at once; a name goes through
 * getaddrinfo in the loop's default thread executor (conc__net_resolve,
 * resolve.c) within the caller's deadline, since the resolver blocks and
 * the loop must not. Each address is tried
 * in turn, as asyncio does; the connect waits through the loop
 * (conc__aio_poll) with the caller's deadline, as a cancellation point. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aio/net.h"
#include "aio/stream.h"

#define MAX_PORT 65535

/* Connects a new non-blocking socket to one address. Returns the
 * descriptor or an error. */
static int
connect_one(struct conc__aio_task *t, int family, const void *sa, socklen_t len,
            int64_t deadline)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r = 0;
    if (connect(fd, sa, len) < 0) {
        r = errno == EINPROGRESS ? CONC_ETIMEDOUT : -errno;
        if (r == CONC_ETIMEDOUT && deadline != CONC__POLL) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            t->what = "stream connect";
            r = conc__aio_poll(t, &p, 1, deadline, 1);
            r = r == 0 ? CONC_ETIMEDOUT : r > 0 ? 0 : r;
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0)
            r = -err;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* Wraps a connected descriptor; closes it on failure. */
static int
wrap(int fd, int tcp, const conc_aio_stream_opts *opts, conc_aio_stream **out)
{
    if (tcp && !(opts && opts->delay)) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    conc_aio_stream *s = conc__stream_new(fd, opts);
    if (!s) {
        close(fd);
        return CONC_ENOMEM;
    }
    *out = s;
    return 0;
}

int
conc_aio_open_connection(const char *host, int port,
                         const conc_aio_stream_opts *opts, double timeout,
                         conc_aio_stream **out)
{
    int64_t deadline;
    if (!host || !out || port < 0 || port > MAX_PORT ||
        conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t)
        return conc_fail(CONC_ESTATE, "not inside a task");
    conc_buf recs = CONC_BUF_INIT;
    int r = conc__net_resolve(host, port, SOCK_STREAM, deadline, &recs);
    size_t n = recs.len / sizeof(struct conc__net_addr);
    if (r >= 0 && !n)
        r = conc_fail(CONC_ENOENT, "%s: no address", host);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        struct conc__net_addr rec;
        memcpy(&rec, recs.data + i * sizeof rec, sizeof rec);
        r = connect_one(t, rec.family, &rec.ss, rec.len, deadline);
        if (r >= 0 || r == CONC_ECANCELED || r == CONC_ETIMEDOUT)
            break;
        if (i + 1 < n)
            r = 0; /* the next address, as asyncio tries them all */
    }
    conc_buf_free(&recs);
    conc_aio_stream *s = NULL;
    if (r >= 0)
        r = wrap(r, 1, opts, &s);
    if (r == 0 && opts && opts->ssl &&
        (r = conc__stream_tls_open(s, opts, host, deadline)) < 0)
        conc_aio_stream_free(s);
    if (r == 0)
        *out = s;
    return r;
}

int
conc_aio_open_unix_connection(const char *path,
                              const conc_aio_stream_opts *opts, double timeout,
                              conc_aio_stream **out)
{
    int64_t deadline;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!path || !out || strlen(path) >= sizeof sun.sun_path ||
        conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t)
        return conc_fail(CONC_ESTATE, "not inside a task");
    strcpy(sun.sun_path, path);
    int fd = connect_one(t, AF_UNIX, &sun, sizeof sun, deadline);
    conc_aio_stream *s = NULL;
    int r = fd < 0 ? fd : wrap(fd, 0, opts, &s);
    if (r == 0 && opts && opts->ssl &&
        (r = conc__stream_tls_open(s, opts, NULL, deadline)) < 0)
        conc_aio_stream_free(s);
    if (r == 0)
        *out = s;
    return r;
}
