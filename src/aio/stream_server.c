/* Servers (asyncio.start_server): listening sockets registered with the
 * loop; each accepted connection becomes a stream and a task running the
 * handler. The server counts its handler tasks, so wait_closed can wait
 * for the last one, and each task holds a reference, so freeing the
 * server while connections are open is safe.
 *
 * A full descriptor table (EMFILE, ENFILE) or a lack of kernel memory makes
 * accept fail while the connection stays in the backlog, so the
 * level-triggered listening socket would fire again at once and the loop
 * would spin. The server leaves epoll instead and tries again after
 * ACCEPT_RETRY, as asyncio does. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aio/stream.h"
#include "tls/tls_internal.h"

#define MAX_PORT        65535
#define MAX_SOCKS       4   /* one per address family, with room */
#define DEFAULT_BACKLOG 100 /* asyncio's */
#define ACCEPT_BATCH    64  /* connections taken per callback at most */
#define ACCEPT_RETRY    0.1 /* seconds before accepting again after EMFILE */

struct lsock {
    struct conc__aio_io io; /* first: the loop's record */
    conc_aio_server *srv;
};

struct conc_aio_server {
    conc_aio_loop *loop;
    conc_aio_stream_handler fn;
    void *arg;
    conc_aio_stream_opts opts;
    struct lsock socks[MAX_SOCKS];
    int nsocks;
    int port;
    int tcp;
    char *path; /* a Unix server's socket file, removed on close */
    int closed;
    size_t active;          /* handler tasks not yet returned */
    size_t refs;            /* the caller's, plus one per handler task */
    conc_aio_handle *retry; /* set while accepting is backed off */
    struct conc__aio_waitq closers;
};

/* What a handler task receives, as its argument bytes. */
struct conn {
    conc_aio_server *srv;
    conc_aio_stream *stream;
};

static void
server_unref(conc_aio_server *srv)
{
    if (--srv->refs)
        return;
    conc_tls_context_free(srv->opts.ssl);
    conc__free(srv->path);
    conc__free(srv);
}

static int
conn_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct conn c;
    memcpy(&c, arg, sizeof c);
    /* A failed handshake is the client's problem: no handler runs. */
    int r = c.srv->opts.ssl ? conc__stream_tls_open(c.stream, &c.srv->opts,
                                                    NULL, CONC__FOREVER)
                            : 0;
    r = r < 0 ? 0 : c.srv->fn(c.srv->arg, c.stream);
    conc_aio_stream_free(c.stream);
    if (--c.srv->active == 0 && c.srv->closed)
        conc__aio_waitq_wake(&c.srv->closers, SIZE_MAX);
    server_unref(c.srv);
    return r;
}

/* Starts the handler task of one accepted descriptor. */
static void
serve(conc_aio_server *srv, int fd)
{
    if (srv->tcp && !srv->opts.delay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct conn c = {srv, conc__stream_new(fd, &srv->opts)};
    if (!c.stream) {
        close(fd);
        return;
    }
    c.stream->loop = srv->loop;
    if (conc_aio_loop_create_task(srv->loop, conn_task, &c, sizeof c, NULL,
                                  NULL) < 0) {
        conc_aio_stream_free(c.stream);
        return;
    }
    srv->active++;
    srv->refs++;
}

/* Accepting again after a back-off: the sockets rejoin epoll. */
static void
resume_accept(void *arg)
{
    conc_aio_server *srv = arg;
    conc_aio_handle_free(srv->retry);
    srv->retry = NULL;
    for (int i = 0; i < srv->nsocks && !srv->closed; i++)
        (void)conc__aio_io_add(srv->loop, &srv->socks[i].io, EPOLLIN, 0);
}

/* Out of descriptors or memory: stops watching the sockets until
 * ACCEPT_RETRY has passed. */
static void
back_off(conc_aio_server *srv)
{
    if (srv->retry)
        return;
    if (conc_aio_call_later(srv->loop, ACCEPT_RETRY, resume_accept, srv,
                            &srv->retry) < 0)
        return; /* no memory for the timer: the next event retries */
    for (int i = 0; i < srv->nsocks; i++)
        conc__aio_io_del(srv->loop, &srv->socks[i].io);
}

/* The loop's callback for a listening socket. */
static void
on_accept(struct conc__aio_io *io, uint32_t events)
{
    (void)events;
    struct lsock *ls = (struct lsock *)io;
    for (int i = 0; i < ACCEPT_BATCH && !ls->srv->closed; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                back_off(ls->srv);
            return;
        }
        serve(ls->srv, fd);
    }
}

/* Binds, listens on and registers one socket for the address. */
static int
listen_one(conc_aio_server *srv, int family, const void *sa, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, r = 0;
    if (family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family != AF_UNIX && srv->opts.reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    int backlog = srv->opts.backlog > 0 ? srv->opts.backlog : DEFAULT_BACKLOG;
    if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
        r = -errno;
    struct lsock *ls = &srv->socks[srv->nsocks];
    *ls = (struct lsock){.io = {.fd = fd, .ready = on_accept}, .srv = srv};
    if (r == 0)
        r = conc__aio_io_add(srv->loop, &ls->io, EPOLLIN, 0);
    if (r < 0) {
        close(fd);
        return r;
    }
    srv->nsocks++;
    return 0;
}

/* The port a socket is bound to. */
static int
bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Listens on every address of host:port; with port 0 the later sockets
 * take the first one's port. An address family the machine lacks is
 * skipped. */
static int
listen_tcp(conc_aio_server *srv, const char *host, int port)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags =
                                 AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return conc_fail(CONC_EINVAL, "%s: not a numeric address", host);
    int r = 0;
    for (struct addrinfo *a = res; a && srv->nsocks < MAX_SOCKS;
         a = a->ai_next) {
        struct sockaddr_storage ss;
        memcpy(&ss, a->ai_addr, a->ai_addrlen);
        if (srv->port && a->ai_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->port);
        if (srv->port && a->ai_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port =
                htons((uint16_t)srv->port);
        r = listen_one(srv, a->ai_family, &ss, a->ai_addrlen);
        if (r == -EAFNOSUPPORT) {
            r = 0;
            continue;
        }
        if (r < 0)
            break;
        if (!srv->port)
            srv->port = bound_port(srv->socks[srv->nsocks - 1].io.fd);
    }
    freeaddrinfo(res);
    return r;
}

static int
server_new(conc_aio_loop *loop, conc_aio_stream_handler fn, void *arg,
           const conc_aio_stream_opts *opts, conc_aio_server **srv)
{
    if (conc_aio_loop_is_closed(loop) == 1)
        return conc_fail(CONC_ECLOSED, "the loop is closed");
    *srv = conc__calloc(1, sizeof **srv);
    if (!*srv)
        return CONC_ENOMEM;
    (*srv)->loop = loop;
    (*srv)->fn = fn;
    (*srv)->arg = arg;
    (*srv)->refs = 1;
    conc__stream_opts(opts, &(*srv)->opts);
    (*srv)->opts.server_hostname = NULL;
    if ((*srv)->opts.ssl)
        conc__tls_context_ref((*srv)->opts.ssl);
    return 0;
}

int
conc_aio_start_server(conc_aio_loop *loop, const char *host, int port,
                      conc_aio_stream_handler fn, void *arg,
                      const conc_aio_stream_opts *opts, conc_aio_server **out)
{
    if (!loop || !fn || !out || port < 0 || port > MAX_PORT)
        return CONC_EINVAL;
    conc_aio_server *srv = NULL;
    int r = server_new(loop, fn, arg, opts, &srv);
    if (r < 0)
        return r;
    srv->tcp = 1;
    if ((r = listen_tcp(srv, host, port)) == 0 && !srv->nsocks)
        r = conc_fail(CONC_EINVAL, "no address to listen on");
    if (r < 0) {
        conc_aio_server_free(srv);
        return r;
    }
    *out = srv;
    return 0;
}

int
conc_aio_start_unix_server(conc_aio_loop *loop, const char *path,
                           conc_aio_stream_handler fn, void *arg,
                           const conc_aio_stream_opts *opts,
                           conc_aio_server **out)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!loop || !path || !fn || !out || strlen(path) >= sizeof sun.sun_path)
        return CONC_EINVAL;
    strcpy(sun.sun_path, path);
    conc_aio_server *srv = NULL;
    int r = server_new(loop, fn, arg, opts, &srv);
    if (r < 0)
        return r;
    unlink(path); /* a stale socket file from an earlier run */
    r = listen_one(srv, AF_UNIX, &sun, sizeof sun);
    if (r == 0 && !(srv->path = conc__strdup(path)))
        r = CONC_ENOMEM;
    if (r < 0) {
        conc_aio_server_free(srv);
        return r;
    }
    *out = srv;
    return 0;
}

int
conc_aio_server_port(conc_aio_server *srv)
{
    return srv ? srv->port : CONC_EINVAL;
}

int
conc_aio_server_socket(conc_aio_server *srv, size_t i)
{
    if (!srv)
        return CONC_EINVAL;
    if (srv->closed)
        return CONC_ECLOSED;
    return i < (size_t)srv->nsocks ? srv->socks[i].io.fd : CONC_ENOENT;
}

int
conc_aio_server_is_serving(conc_aio_server *srv)
{
    return srv ? !srv->closed : CONC_EINVAL;
}

int
conc_aio_server_serve_forever(conc_aio_server *srv)
{
    if (!srv)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t || t->loop != srv->loop)
        return conc_fail(CONC_ESTATE, "not inside a task of the loop");
    int r = 0;
    while (r == 0 && !srv->closed) {
        struct conc__aio_waiter w;
        t->what = "server serve_forever";
        r = conc__aio_waitq_wait(&srv->closers, &w, t, CONC__FOREVER);
    }
    if (r == CONC_ECANCELED)
        conc_aio_server_close(srv);
    return r;
}

int
conc_aio_server_close(conc_aio_server *srv)
{
    if (!srv)
        return CONC_EINVAL;
    if (srv->closed)
        return 0;
    srv->closed = 1;
    if (srv->retry) {
        conc_aio_handle_cancel(srv->retry);
        conc_aio_handle_free(srv->retry);
        srv->retry = NULL;
    }
    for (int i = 0; i < srv->nsocks; i++) {
        conc__aio_io_del(srv->loop, &srv->socks[i].io);
        close(srv->socks[i].io.fd);
    }
    if (srv->path)
        unlink(srv->path);
    /* serve_forever returns now; wait_closed looks again and goes on
     * waiting while handlers run. */
    conc__aio_waitq_wake(&srv->closers, SIZE_MAX);
    return 0;
}

int
conc_aio_server_wait_closed(conc_aio_server *srv, double timeout)
{
    int64_t deadline;
    if (!srv || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t || t->loop != srv->loop)
        return conc_fail(CONC_ESTATE, "not inside a task of the loop");
    int r = 0;
    while (r == 0 && (!srv->closed || srv->active)) {
        struct conc__aio_waiter w;
        t->what = "server wait_closed";
        r = deadline == CONC__POLL
                ? CONC_ETIMEDOUT
                : conc__aio_waitq_wait(&srv->closers, &w, t, deadline);
    }
    return r;
}

void
conc_aio_server_free(conc_aio_server *srv)
{
    if (!srv)
        return;
    conc_aio_server_close(srv);
    server_unref(srv);
}
