/* One connection to Redis: hiredis in non-blocking mode, every wait through
 * the platform's descriptor wait with a deadline (no unbounded read), and
 * reconnection with a doubling backoff (dist_internal.h).
 *
 * hiredis is given a socket this file connects itself (redisConnectFd), so
 * the connect, too, waits in conc__poll_fd; the context's REDIS_BLOCK flag
 * is cleared so that its reads return at EAGAIN instead of blocking, and
 * this file polls before it calls them again. hiredis only parses replies:
 * commands are formatted into the connection's own buffer and sent with
 * send(MSG_NOSIGNAL), since hiredis's write() raises SIGPIPE on a socket
 * the server has reset, which kills a process that did not ignore it (two
 * pipelined writes after redis-server died did). */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/dist_internal.h"
#include "unix/platform.h"

/* Reconnection backoff: the first retry after 50 ms, doubling up to 2 s
 * (a restarting Redis loads its append-only file in about that). */
#define RECONNECT_MIN_NS (50 * 1000 * 1000LL)
#define RECONNECT_MAX_NS (2000 * 1000 * 1000LL)
#define NS_PER_S         1e9

int
conc__rconn_init(struct conc__rconn *c, const char *address,
                 const char *password, double connect_timeout)
{
    memset(c, 0, sizeof *c);
    char *pw = NULL;
    int r = conc__dist_parse_address(address, &c->host, &c->port, &pw);
    if (r < 0)
        return r;
    if (password) {
        conc__free(pw);
        if (!(pw = conc__strdup(password))) {
            conc__free(c->host);
            c->host = NULL; /* conc__rconn_fini may follow */
            return CONC_ENOMEM;
        }
    }
    c->password = pw;
    c->connect_timeout =
        connect_timeout > 0 ? connect_timeout : CONC__DIST_CONNECT_TIMEOUT;
    c->backoff_ns = RECONNECT_MIN_NS;
    return 0;
}

void
conc__rconn_close(struct conc__rconn *c)
{
    if (c->ctx)
        redisFree(c->ctx); /* closes the socket */
    c->ctx = NULL;
    /* Commands not sent are dropped with their connection. */
    c->out.len = 0;
    c->out_sent = 0;
}

void
conc__rconn_fail(struct conc__rconn *c, int err)
{
    conc__rconn_close(c);
    c->last_err = err;
    c->next_attempt_ns = conc__now_ns() + c->backoff_ns;
    c->backoff_ns *= 2;
    if (c->backoff_ns > RECONNECT_MAX_NS)
        c->backoff_ns = RECONNECT_MAX_NS;
}

void
conc__rconn_fini(struct conc__rconn *c)
{
    conc__rconn_close(c);
    conc_buf_free(&c->out);
    conc__free(c->host);
    conc__free(c->password);
    c->host = c->password = NULL;
}

/* The deadline a call given `deadline` keeps under c's limit. */
static int64_t
limited(const struct conc__rconn *c, int64_t deadline)
{
    if (!c->limit)
        return deadline;
    int64_t end = atomic_load(c->limit);
    int64_t late = conc__now_ns() + CONC__DIST_LATE_NS;
    if (end < late)
        end = late;
    return deadline < end ? deadline : end;
}

/* Connects one socket of `ai` by `deadline`. Returns it or an error. */
static int
connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
    if (r == -EINPROGRESS) {
        r = conc__poll_fd(fd, POLLOUT, deadline);
        int err = 0;
        socklen_t len = sizeof err;
        if (r == 0)
            r = CONC_ETIMEDOUT;
        else if (r > 0)
            r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno
                                                                     : -err;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* A connected socket to host:port by `deadline`, or an error. */
static int
tcp_connect(const char *host, int port, int64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return CONC_EINVAL; /* a name that does not resolve */
    int fd = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if ((fd = connect_one(ai, deadline)) >= 0)
            break;
    freeaddrinfo(res);
    return fd;
}

int
conc__reply_error_is(const struct redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, prefix, strlen(prefix)) == 0;
}

int
conc__reply_transient(const struct redisReply *r)
{
    if (conc__reply_error_is(r, "NOAUTH") ||
        conc__reply_error_is(r, "WRONGPASS"))
        return CONC_EAUTH;
    if (conc__reply_error_is(r, "LOADING") ||
        conc__reply_error_is(r, "MASTERDOWN") ||
        conc__reply_error_is(r, "TRYAGAIN"))
        return CONC_EAGAIN;
    return 0;
}

/* Why hiredis gave up on the context: its error as a negative code. */
static int
ctx_error(const redisContext *ctx)
{
    if (ctx->err == REDIS_ERR_EOF)
        return -ECONNRESET;
    if (ctx->err == REDIS_ERR_OOM)
        return CONC_ENOMEM;
    if (ctx->err == REDIS_ERR_PROTOCOL)
        return CONC_EPROTO;
    return -ECONNRESET;
}

/* Sends the commands appended, polling while the socket is full. */
static int
flush(struct conc__rconn *c, int64_t deadline)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->ctx->fd, c->out.data + c->out_sent,
                         c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n >= 0) {
            c->out_sent += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int r = conc__poll_fd(c->ctx->fd, POLLOUT, deadline);
        if (r <= 0)
            return r == 0 ? CONC_ETIMEDOUT : r;
    }
    c->out.len = 0;
    c->out_sent = 0;
    return 0;
}

/* Appends a command formatted by hiredis (`len` bytes at cmd). */
static int
append_formatted(struct conc__rconn *c, const char *cmd, int len)
{
    if (len < 0)
        return CONC_ENOMEM;
    if (!c->ctx)
        return -ENOTCONN;
    return conc_buf_append(&c->out, cmd, (size_t)len);
}

/* Reads one reply, polling while none is complete. */
static int
read_reply(struct conc__rconn *c, int64_t deadline, redisReply **out)
{
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c->ctx, &reply) != REDIS_OK)
            return ctx_error(c->ctx);
        if (reply) {
            *out = reply;
            return 0;
        }
        int r = conc__poll_fd(c->ctx->fd, POLLIN, deadline);
        if (r <= 0)
            return r == 0 ? CONC_ETIMEDOUT : r;
        if (redisBufferRead(c->ctx) != REDIS_OK)
            return ctx_error(c->ctx);
    }
}

/* Sends AUTH (or PING without a password) on a new connection and checks
 * the server accepts us. */
static int
handshake(struct conc__rconn *c, int64_t deadline)
{
    int r = c->password ? conc__rconn_appendf(c, "AUTH %s", c->password)
                        : conc__rconn_appendf(c, "PING");
    redisReply *rep = NULL;
    if (r == 0)
        r = flush(c, deadline);
    if (r == 0)
        r = read_reply(c, deadline, &rep);
    if (r == 0 && rep->type == REDIS_REPLY_ERROR)
        r = conc__reply_error_is(rep, "LOADING") ? CONC_EAGAIN : CONC_EAUTH;
    if (rep)
        freeReplyObject(rep);
    return r;
}

/* One connection attempt by `deadline`. */
static int
attempt(struct conc__rconn *c, int64_t deadline)
{
    int64_t end = conc__now_ns() + (int64_t)(c->connect_timeout * NS_PER_S);
    if (end > deadline)
        end = deadline;
    int fd = tcp_connect(c->host, c->port, end);
    if (fd < 0)
        return fd;
    if (!(c->ctx = redisConnectFd(fd))) {
        close(fd);
        return CONC_ENOMEM;
    }
    c->ctx->flags &= ~REDIS_BLOCK;
    int r = handshake(c, end);
    if (r < 0)
        conc__rconn_close(c);
    return r;
}

int
conc__rconn_ensure(struct conc__rconn *c, int64_t deadline)
{
    deadline = limited(c, deadline);
    while (!c->ctx) {
        int64_t now = conc__now_ns();
        if (c->next_attempt_ns > now) {
            if (c->next_attempt_ns > deadline) {
                /* Waits out the caller's time, so that a caller that loops
                 * on its own deadline never spins. */
                conc__poll_until(NULL, 0, deadline);
                return c->last_err ? c->last_err : CONC_ETIMEDOUT;
            }
            conc__poll_until(NULL, 0, c->next_attempt_ns);
        }
        int r = attempt(c, deadline);
        if (r == 0) {
            c->backoff_ns = RECONNECT_MIN_NS;
            c->next_attempt_ns = 0;
            c->connects++;
            return 0;
        }
        conc__rconn_fail(c, r);
        if (r == CONC_EAUTH || r == CONC_EINVAL || r == CONC_ENOMEM ||
            conc__now_ns() >= deadline)
            return r;
    }
    return 0;
}

/* Sends what was appended and reads one reply; drops the connection on
 * failure. NOAUTH and WRONGPASS become CONC_EAUTH, LOADING CONC_EAGAIN. */
static int
round_trip(struct conc__rconn *c, int64_t deadline, redisReply **out)
{
    redisReply *rep = NULL;
    int r = flush(c, deadline);
    if (r == 0)
        r = read_reply(c, deadline, &rep);
    if (r < 0) {
        conc__rconn_close(c);
        return r;
    }
    if ((r = conc__reply_transient(rep)) < 0) {
        freeReplyObject(rep);
        conc__rconn_close(c);
        return r;
    }
    *out = rep;
    return 0;
}

int
conc__rconn_cmd(struct conc__rconn *c, int64_t deadline, int retry,
                redisReply **out, int argc, const char **argv,
                const size_t *lens)
{
    deadline = limited(c, deadline);
    for (;;) {
        int r = conc__rconn_ensure(c, deadline);
        if (r < 0)
            return r;
        if ((r = conc__rconn_append(c, argc, argv, lens)) == 0)
            r = round_trip(c, deadline, out);
        if (r == 0 || r == CONC_EAUTH || !retry || conc__now_ns() >= deadline)
            return r;
        conc__rconn_fail(c, r);
    }
}

int
conc__rconn_cmdf(struct conc__rconn *c, int64_t deadline, int retry,
                 redisReply **out, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return CONC_ENOMEM;
    deadline = limited(c, deadline);
    int r;
    for (;;) {
        r = conc__rconn_ensure(c, deadline);
        if (r < 0)
            break;
        if ((r = append_formatted(c, cmd, len)) == 0)
            r = round_trip(c, deadline, out);
        if (r == 0 || r == CONC_EAUTH || !retry || conc__now_ns() >= deadline)
            break;
        conc__rconn_fail(c, r);
    }
    redisFreeCommand(cmd);
    return r;
}

int
conc__rconn_append(struct conc__rconn *c, int argc, const char **argv,
                   const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    int r = append_formatted(c, cmd, len);
    redisFreeCommand(cmd);
    return r;
}

int
conc__rconn_appendf(struct conc__rconn *c, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    int r = append_formatted(c, cmd, len);
    redisFreeCommand(cmd);
    return r;
}

int
conc__rconn_send(struct conc__rconn *c, int64_t deadline)
{
    if (!c->ctx)
        return -ENOTCONN;
    int r = flush(c, limited(c, deadline));
    if (r < 0)
        conc__rconn_close(c);
    return r;
}

int
conc__rconn_pipeline(struct conc__rconn *c, int64_t deadline, size_t n,
                     redisReply **out)
{
    if (!c->ctx)
        return -ENOTCONN;
    deadline = limited(c, deadline);
    int r = flush(c, deadline);
    size_t got = 0;
    while (r == 0 && got < n)
        if ((r = read_reply(c, deadline, &out[got])) == 0)
            got++;
    if (r < 0) {
        while (got)
            freeReplyObject(out[--got]);
        conc__rconn_close(c);
    }
    return r;
}
