/* UDP datagram endpoints (loop.create_datagram_endpoint) with coroutine
 * calls in place of asyncio's protocol callbacks: sendto, and recvfrom
 * that waits for one datagram.
 *
 * The queue of datagrams nobody has received yet is the kernel's receive
 * buffer (SO_RCVBUF): bounded, and past it datagrams are dropped, as UDP
 * drops them; the endpoint itself holds nothing between calls, so a task
 * that stops receiving costs no memory. An ICMP error the kernel reports
 * for an earlier datagram (port unreachable: ECONNREFUSED) comes back from
 * the next send or receive, where asyncio calls error_received, and the
 * endpoint stays usable. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio/aio_internal.h"
#include "aio/net.h"
#include "conc/aio_net.h"

struct conc_aio_datagram {
    int fd;
    int connected;
    int family;
    int closed;
    int waiting; /* tasks waiting on the socket: close wakes them */
};

/* After a wait: a close that came meanwhile shut the socket down to wake
 * the waiters, and the last one out closes it (the loop's registration of
 * a descriptor must not outlive it). */
static int
after_wait(conc_aio_datagram *d, int r)
{
    d->waiting--;
    if (!d->closed)
        return r;
    if (!d->waiting && d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
    return CONC_ECLOSED;
}

static void
set_opts(int fd, const conc_aio_datagram_opts *o)
{
    int one = 1;
    if (!o)
        return;
    if (o->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof o->rcvbuf);
    if (o->reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (o->broadcast)
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
}

/* The local and remote addresses; the family comes from whichever host is
 * given. */
static int
addresses(const char *lhost, int lport, const char *rhost, int rport,
          struct conc__net_addr *local, struct conc__net_addr *remote)
{
    int r = 0;
    if (rhost)
        r = conc__net_numeric(rhost, rport, AF_UNSPEC, remote);
    if (r == 0)
        r = conc__net_numeric(lhost, lport, rhost ? remote->family : AF_UNSPEC,
                              local);
    if (r == 0 && rhost && local->family != remote->family)
        r = conc_fail(CONC_EINVAL, "local and remote of two families");
    return r;
}

int
conc_aio_datagram_open(const char *local_host, int local_port,
                       const char *remote_host, int remote_port,
                       const conc_aio_datagram_opts *opts,
                       conc_aio_datagram **out)
{
    struct conc__net_addr local, remote;
    if (!out || (!local_host && !remote_host))
        return CONC_EINVAL;
    int r = addresses(local_host, local_port, remote_host, remote_port, &local,
                      &remote);
    if (r < 0)
        return r;
    int fd = socket(local.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    set_opts(fd, opts);
    if (bind(fd, (struct sockaddr *)&local.ss, local.len) < 0 ||
        (remote_host &&
         connect(fd, (struct sockaddr *)&remote.ss, remote.len) < 0)) {
        r = -errno;
        close(fd);
        return r;
    }
    conc_aio_datagram *d = conc__calloc(1, sizeof *d);
    if (!d) {
        close(fd);
        return CONC_ENOMEM;
    }
    *d = (conc_aio_datagram){
        .fd = fd, .connected = remote_host != NULL, .family = local.family};
    *out = d;
    return 0;
}

int
conc_aio_datagram_sendto(conc_aio_datagram *d, const void *data, size_t n,
                         const char *host, int port, double timeout)
{
    int64_t deadline;
    struct conc__net_addr to = {0};
    if (!d || (!data && n) || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    if (d->closed)
        return CONC_ECLOSED;
    if (!host && !d->connected)
        return conc_fail(CONC_EINVAL, "no address: the endpoint is not "
                                      "connected");
    int r = host ? conc__net_numeric(host, port, d->family, &to) : 0;
    while (r == 0) {
        ssize_t k =
            sendto(d->fd, data, n, MSG_NOSIGNAL,
                   host ? (struct sockaddr *)&to.ss : NULL, host ? to.len : 0);
        if (k >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        d->waiting++;
        r = conc__net_wait(d->fd, POLLOUT, deadline, "datagram sendto");
        r = after_wait(d, r);
    }
    return r;
}

/* The size of the next queued datagram (MSG_TRUNC gives its real
 * length), so the buffer is allocated to fit; 1 if none is queued, or an
 * error (an ICMP error shows here first). */
static int
next_size(int fd, size_t *n)
{
    ssize_t k = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (k < 0)
        return errno == EAGAIN || errno == EINTR ? 1 : -errno;
    *n = (size_t)k < CONC_AIO_DATAGRAM_MAX ? (size_t)k : CONC_AIO_DATAGRAM_MAX;
    return 0;
}

/* One datagram into the buffers; 1 if none is queued. */
static int
take(conc_aio_datagram *d, conc_buf *data, conc_buf *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    conc_buf b = CONC_BUF_INIT;
    size_t n = 0;
    int r = next_size(d->fd, &n);
    if (r != 0)
        return r;
    if (conc_buf_reserve(&b, n ? n : 1) < 0)
        return CONC_ENOMEM;
    ssize_t k = recvfrom(d->fd, b.data, n, 0, (struct sockaddr *)&ss, &sl);
    r = k >= 0 ? 0 : errno == EAGAIN || errno == EINTR ? 1 : -errno;
    conc_buf text = CONC_BUF_INIT;
    if (r == 0 && addr)
        r = conc__net_addr_text(&ss, &text);
    if (r != 0) {
        conc_buf_free(&b);
        return r;
    }
    b.len = (size_t)k;
    conc_buf_free(data);
    *data = b;
    if (addr) {
        conc_buf_free(addr);
        *addr = text;
    }
    return 0;
}

int
conc_aio_datagram_recvfrom(conc_aio_datagram *d, double timeout, conc_buf *data,
                           conc_buf *addr)
{
    int64_t deadline;
    if (!d || !data || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    if (d->closed)
        return CONC_ECLOSED;
    if (!conc__aio_task_self())
        return conc_fail(CONC_ESTATE, "not inside a task");
    int r;
    while ((r = take(d, data, addr)) == 1) {
        d->waiting++;
        r = conc__net_wait(d->fd, POLLIN, deadline, "datagram recvfrom");
        if ((r = after_wait(d, r)) < 0)
            break;
    }
    return r;
}

int
conc_aio_datagram_port(conc_aio_datagram *d)
{
    if (!d)
        return CONC_EINVAL;
    return d->closed ? CONC_ECLOSED : conc__net_bound_port(d->fd);
}

int
conc_aio_datagram_close(conc_aio_datagram *d)
{
    if (!d)
        return CONC_EINVAL;
    if (d->closed)
        return 0;
    d->closed = 1;
    /* Shutting the socket down makes the waiters' polls fire (even on a
     * socket not connected); the last of them closes it. */
    if (d->waiting) {
        shutdown(d->fd, SHUT_RDWR);
        return 0;
    }
    close(d->fd);
    d->fd = -1;
    return 0;
}

void
conc_aio_datagram_free(conc_aio_datagram *d)
{
    if (!d)
        return;
    conc_aio_datagram_close(d);
    if (d->fd >= 0)
        close(d->fd); /* a waiter left behind, against the contract */
    conc__free(d);
}
