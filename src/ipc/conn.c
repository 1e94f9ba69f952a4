/* Connections: making them (conc_pipe, conc_conn_from_fd), closing them,
 * and the small queries. Sending is in send.c, receiving in recv.c. */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc_internal.h"
#include "unix/fdwait.h"

/* Allocates a connection around `fd` with the given flags. Does not close
 * `fd` on failure. */
static int
conn_new(int fd, unsigned flags, size_t max_message, conc_conn **out)
{
    conc_conn *c = conc__calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    c->fd = fd;
    c->flags = flags;
    c->max_message = max_message;
    conc__conn_spin_init(&c->spin);
    conc_buf_init(&c->big_buf);
    if (flags & CONC__CONN_READ) {
        c->in = conc__malloc(CONC__CONN_INBUF);
        if (!c->in)
            goto fail;
    }
    if (flags & CONC__CONN_FDS) {
        c->fds = conc__malloc(CONC__CONN_MAXFDS * sizeof *c->fds);
        if (!c->fds)
            goto fail;
        c->fds_cap = CONC__CONN_MAXFDS;
    }
    *out = c;
    return 0;
fail:
    conc__free(c->in);
    conc__free(c);
    return CONC_ENOMEM;
}

int
conc__conn_wrap(int fd, unsigned flags, size_t max_message, conc_conn **out)
{
    return conn_new(fd, flags, max_message, out);
}

int
conc_pipe(const conc_pipe_opts *opts, conc_conn **a, conc_conn **b)
{
    if (!a || !b)
        return CONC_EINVAL;
    int simplex = opts && opts->simplex;
    size_t max = opts ? opts->max_message : 0;
    int fds[2];
    unsigned fa, fb;
    if (simplex) {
        if (pipe2(fds, O_CLOEXEC) < 0)
            return -errno;
        fa = CONC__CONN_READ; /* Python: conn1 receives, conn2 sends */
        fb = CONC__CONN_WRITE;
    } else {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
            return -errno;
        fa = fb = CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET |
                  CONC__CONN_FDS;
    }
    conc_conn *ca, *cb;
    int r = conn_new(fds[0], fa, max, &ca);
    if (r)
        goto fail1;
    r = conn_new(fds[1], fb, max, &cb);
    if (r)
        goto fail2;
    conc__ring_pair(ca, cb, simplex);
    *a = ca;
    *b = cb;
    return 0;
fail2:
    conc_conn_free(ca); /* closes fds[0] */
    close(fds[1]);
    return r;
fail1:
    close(fds[0]);
    close(fds[1]);
    return r;
}

/* Flags for a socket: only stream sockets keep a byte stream whose reads
 * may be split anywhere, which the framing needs. */
static int
socket_flags(int fd, unsigned *flags)
{
    int type, domain;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    if (type != SOCK_STREAM)
        return CONC_EINVAL;
    len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return -errno;
    *flags = CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET;
    if (domain == AF_UNIX)
        *flags |= CONC__CONN_FDS;
    return 0;
}

/* Flags for any other descriptor, from the mode it was opened with. */
static int
file_flags(int fd, unsigned *flags)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (fl & O_PATH)
        return CONC_EINVAL;
    switch (fl & O_ACCMODE) {
    case O_RDONLY:
        *flags = CONC__CONN_READ;
        return 0;
    case O_WRONLY:
        *flags = CONC__CONN_WRITE;
        return 0;
    case O_RDWR:
        *flags = CONC__CONN_READ | CONC__CONN_WRITE;
        return 0;
    default:
        return CONC_EINVAL;
    }
}

int
conc_conn_from_fd(int fd, const conc_conn_opts *opts, conc_conn **out)
{
    if (!out)
        return CONC_EINVAL;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return CONC_EBADF;
    unsigned flags = 0;
    int r = S_ISSOCK(st.st_mode) ? socket_flags(fd, &flags)
                                 : file_flags(fd, &flags);
    if (r)
        return r;
    return conn_new(fd, flags, opts ? opts->max_message : 0, out);
}

int
conc_conn_close(conc_conn *c)
{
    if (!c)
        return CONC_EINVAL;
    if (c->closed)
        return 0;
    c->closed = 1;
    /* Linux releases the descriptor even when close reports EINTR, so a
     * retry could close a descriptor another thread just opened. */
    close(c->fd);
    c->fd = -1;
    conc__ring_unmap(c); /* after the close, which the woken side looks for */
    for (size_t i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
    conc__free(c->fds);
    c->fds = NULL;
    c->fds_cap = 0;
    conc__free(c->in);
    c->in = NULL;
    c->in_head = c->in_tail = 0;
    conc_buf_free(&c->big_buf);
    c->big = 0;
    return 0;
}

void
conc_conn_free(conc_conn *c)
{
    if (!c)
        return;
    conc_conn_close(c);
    conc__free(c);
}

int
conc_conn_fileno(const conc_conn *c, int *fd)
{
    if (!c || !fd)
        return CONC_EINVAL;
    if (c->closed)
        return CONC_ECLOSED;
    conc__ring_refuse(c); /* the descriptor must show every message */
    *fd = c->fd;
    return 0;
}

int
conc_conn_closed(const conc_conn *c)
{
    if (!c)
        return CONC_EINVAL;
    return c->closed != 0;
}

int
conc_conn_readable(const conc_conn *c)
{
    if (!c)
        return CONC_EINVAL;
    return !c->closed && !c->rshut && (c->flags & CONC__CONN_READ);
}

int
conc_conn_writable(const conc_conn *c)
{
    if (!c)
        return CONC_EINVAL;
    return !c->closed && (c->flags & CONC__CONN_WRITE);
}

int
conc__conn_check_recv(const conc_conn *c)
{
    if (c->closed)
        return CONC_ECLOSED;
    if (!(c->flags & CONC__CONN_READ))
        return CONC_EBADF;
    return 0;
}

int
conc__conn_wait_fd(int fd, short events, int64_t deadline)
{
    int n = conc__poll_fd(fd, events, deadline);
    return n > 0 ? 0 : n == 0 ? CONC_ETIMEDOUT : n;
}
