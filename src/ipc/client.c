/* Clients (conc/listener.h): Python's multiprocessing.connection.Client,
 * connecting in CPython's framing and running the client's side of the
 * authkey handshake.
 *
 * The connect is non-blocking so that it keeps to the deadline: TCP waits
 * for the socket to become writable; a Unix socket whose listener's
 * backlog is full refuses with EAGAIN and is retried after a short nap,
 * since nothing announces room in a backlog. The socket is made blocking
 * again before it becomes a conc_conn. */
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "ipc/listener_internal.h"
#include "unix/coro.h"
#include "unix/platform.h"

/* The nap between connects to a Unix listener whose backlog is full. */
#define BACKLOG_RETRY_NS ((int64_t)1000000)

/* Copies the options, checking the digest. */
static int
check_opts(const conc_client_opts *o, struct conc__auth_key *key,
           const char **digest, int *auth)
{
    *digest = o && o->digest ? o->digest : "sha256";
    if (!conc__auth_digest_ok(*digest))
        return conc_fail(CONC_EINVAL, "conc_client_connect: unknown digest");
    *auth = o && o->authkey;
    if (*auth)
        *key = (struct conc__auth_key){o->authkey, o->authkey_len};
    return 0;
}

/* Waits for a connect in progress; returns 0 or its error. */
static int
finish_connect(int fd, int64_t deadline)
{
    int n = conc__poll_fd(fd, POLLOUT, deadline);
    if (n == 0)
        return CONC_ETIMEDOUT;
    if (n < 0)
        return n;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/* Connects a new socket to `sa` by the deadline; *fd is blocking. */
static int
connect_socket(const struct conc__sockaddr *sa, int64_t deadline, int *fd)
{
    int s = socket(sa->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    int r;
    for (;;) {
        r = connect(s, (const struct sockaddr *)&sa->ss, sa->len) < 0 ? -errno
                                                                      : 0;
        if (r == -EINPROGRESS)
            r = finish_connect(s, deadline);
        if (r != -EAGAIN || sa->family != AF_UNIX)
            break;
        int64_t now = conc__now_ns();
        if (now >= deadline) {
            r = CONC_ETIMEDOUT;
            break;
        }
        int64_t nap = now + BACKLOG_RETRY_NS;
        conc__poll_until(NULL, 0, nap < deadline ? nap : deadline);
    }
    if (r == 0 && fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK) < 0)
        r = -errno;
    if (r) {
        close(s);
        return r;
    }
    *fd = s;
    return 0;
}

static int
connect_uncancelled(const char *address, const conc_client_opts *opts,
                    double timeout, conc_conn **out)
{
    if (!address || !out)
        return CONC_EINVAL;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    struct conc__auth_key key = {NULL, 0};
    const char *digest;
    int auth = 0;
    int r = check_opts(opts, &key, &digest, &auth);
    struct conc__sockaddr sa;
    if (r == 0)
        r = conc__sockaddr_parse(address, 0, &sa);
    int fd = -1;
    if (r == 0)
        r = connect_socket(&sa, deadline, &fd);
    if (r)
        return r;
    if (sa.family != AF_UNIX)
        conc__sock_nodelay(fd);
    unsigned flags = CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET |
                     CONC__CONN_PYWIRE;
    conc_conn *c;
    r = conc__conn_wrap(fd, flags, 0, &c);
    if (r) {
        close(fd);
        return r;
    }
    if (auth && (r = conc__auth_client(c, key, digest, deadline)) != 0) {
        conc_conn_free(c);
        return r;
    }
    /* The handshake reads up to its own bound whatever the limit. */
    c->max_message = opts ? opts->max_message : 0;
    *out = c;
    return 0;
}

int
conc_client_connect(const char *address, const conc_client_opts *opts,
                    double timeout, conc_conn **out)
{
    CONC__CANCEL_POINT(connect_uncancelled(address, opts, timeout, out));
}
