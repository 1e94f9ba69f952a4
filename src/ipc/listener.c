/* Listeners (conc/listener.h): Python's multiprocessing.connection
 * Listener, accepting connections in CPython's framing and running the
 * server's side of the authkey handshake.
 *
 * The listening socket is non-blocking so that an accept that lost a
 * client to another thread goes back to waiting, with its deadline,
 * instead of blocking; accepted sockets are blocking, as conc_conn
 * expects (it waits for its timeouts in conc__poll_fd). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "ipc/listener_internal.h"
#include "unix/coro.h"
#include "unix/platform.h"

#define DEFAULT_BACKLOG 128

struct conc_listener {
    int fd;
    int closed;
    struct conc__sockaddr addr; /* as bound, with the chosen port */
    char *path;                 /* a Unix socket's path, removed at close */
    uint8_t *key;               /* NULL: no handshake */
    size_t key_len;
    char digest[16];
    size_t max_message;
};

/* Copies the options into the listener. */
static int
take_opts(conc_listener *l, const conc_listener_opts *o)
{
    const char *digest = o && o->digest ? o->digest : "sha256";
    if (strlen(digest) >= sizeof l->digest || !conc__auth_digest_ok(digest))
        return conc_fail(CONC_EINVAL, "conc_listener_new: unknown digest");
    strcpy(l->digest, digest);
    if (!o)
        return 0;
    if (o->backlog < 0)
        return CONC_EINVAL;
    l->max_message = o->max_message;
    if (!o->authkey)
        return 0;
    l->key = conc__malloc(o->authkey_len ? o->authkey_len : 1);
    if (!l->key)
        return CONC_ENOMEM;
    memcpy(l->key, o->authkey, o->authkey_len);
    l->key_len = o->authkey_len;
    return 0;
}

/* Creates, binds and starts the socket, and reads back its address. */
static int
open_socket(conc_listener *l, int backlog)
{
    l->fd =
        socket(l->addr.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0)
        return -errno;
    if (l->addr.family != AF_UNIX) {
        int one = 1; /* as Python's SocketListener does on POSIX */
        (void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (bind(l->fd, (struct sockaddr *)&l->addr.ss, l->addr.len) < 0)
        return -errno;
    if (listen(l->fd, backlog) < 0) {
        int e = errno;
        if (l->addr.family == AF_UNIX && !l->addr.abstract)
            unlink(((struct sockaddr_un *)&l->addr.ss)->sun_path);
        return -e;
    }
    if (l->addr.family == AF_UNIX)
        return 0;
    l->addr.len = sizeof l->addr.ss;
    if (getsockname(l->fd, (struct sockaddr *)&l->addr.ss, &l->addr.len) < 0)
        return -errno;
    return 0;
}

static void
destroy(conc_listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    conc__free(l->path);
    conc__free(l->key);
    conc__free(l);
}

int
conc_listener_new(const char *address, const conc_listener_opts *opts,
                  conc_listener **out)
{
    if (!address || !out)
        return CONC_EINVAL;
    conc_listener *l = conc__calloc(1, sizeof *l);
    if (!l)
        return CONC_ENOMEM;
    l->fd = -1;
    int r = take_opts(l, opts);
    if (r == 0)
        r = conc__sockaddr_parse(address, 1, &l->addr);
    if (r)
        goto fail;
    int backlog = opts && opts->backlog ? opts->backlog : DEFAULT_BACKLOG;
    r = open_socket(l, backlog);
    if (r == 0 && l->addr.family == AF_UNIX && !l->addr.abstract) {
        l->path = conc__strdup(address);
        if (!l->path) {
            unlink(address);
            r = CONC_ENOMEM;
        }
    }
    if (r)
        goto fail;
    *out = l;
    return 0;
fail:
    destroy(l);
    return r;
}

/* Accepts one socket, waiting until the deadline. */
static int
accept_socket(conc_listener *l, int64_t deadline, int *fd)
{
    for (;;) {
        int s = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (s >= 0) {
            *fd = s;
            return 0;
        }
        int e = errno;
        if (e == EINTR || e == ECONNABORTED)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int n = conc__poll_fd(l->fd, POLLIN, deadline);
        if (n == 0)
            return CONC_ETIMEDOUT;
        if (n < 0)
            return n;
    }
}

static int
accept_uncancelled(conc_listener *l, double timeout, conc_conn **out)
{
    if (!l || !out)
        return CONC_EINVAL;
    if (l->closed)
        return CONC_ECLOSED;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    int fd = -1, tcp = l->addr.family != AF_UNIX;
    int r = accept_socket(l, deadline, &fd);
    if (r)
        return r;
    if (tcp)
        conc__sock_nodelay(fd);
    unsigned flags = CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET |
                     CONC__CONN_PYWIRE;
    conc_conn *c;
    r = conc__conn_wrap(fd, flags, 0, &c);
    if (r) {
        close(fd);
        return r;
    }
    if (l->key) {
        struct conc__auth_key key = {l->key, l->key_len};
        r = conc__auth_server(c, key, l->digest, tcp, deadline);
        if (r) {
            conc_conn_free(c);
            return r;
        }
    }
    /* The handshake reads up to its own bound whatever the limit. */
    c->max_message = l->max_message;
    *out = c;
    return 0;
}

int
conc_listener_accept(conc_listener *l, double timeout, conc_conn **out)
{
    CONC__CANCEL_POINT(accept_uncancelled(l, timeout, out));
}

int
conc_listener_address(const conc_listener *l, conc_buf *out)
{
    if (!l || !out)
        return CONC_EINVAL;
    if (l->closed)
        return CONC_ECLOSED;
    conc_buf b;
    conc_buf_init(&b);
    int r = conc__sockaddr_format(&l->addr, &b);
    if (r == 0)
        r = conc_buf_reserve(&b, 1);
    if (r) {
        conc_buf_free(&b);
        return r;
    }
    b.data[b.len] = '\0';
    conc_buf_free(out);
    *out = b;
    return 0;
}

int
conc_listener_port(const conc_listener *l, int *port)
{
    if (!l || !port)
        return CONC_EINVAL;
    if (l->closed)
        return CONC_ECLOSED;
    if (l->addr.family == AF_INET)
        *port = ntohs(((const struct sockaddr_in *)&l->addr.ss)->sin_port);
    else if (l->addr.family == AF_INET6)
        *port = ntohs(((const struct sockaddr_in6 *)&l->addr.ss)->sin6_port);
    else
        return CONC_EINVAL;
    return 0;
}

int
conc_listener_fileno(const conc_listener *l, int *fd)
{
    if (!l || !fd)
        return CONC_EINVAL;
    if (l->closed)
        return CONC_ECLOSED;
    *fd = l->fd;
    return 0;
}

int
conc_listener_close(conc_listener *l)
{
    if (!l)
        return CONC_EINVAL;
    if (l->closed)
        return 0;
    l->closed = 1;
    close(l->fd);
    l->fd = -1;
    if (l->path)
        unlink(l->path);
    return 0;
}

void
conc__listener_detach(conc_listener *l)
{
    if (l->closed)
        return;
    l->closed = 1;
    close(l->fd);
    l->fd = -1;
}

void
conc_listener_free(conc_listener *l)
{
    if (!l)
        return;
    conc_listener_close(l);
    destroy(l);
}
