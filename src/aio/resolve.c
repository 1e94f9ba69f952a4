/* Name resolution that never blocks the loop (loop.getaddrinfo), and the
 * address helpers the socket files share.
 *
 * getaddrinfo blocks for as long as the resolver takes (seconds, for a
 * slow DNS server), so a name that is not numeric is resolved by a task
 * of the loop's default thread executor, and the calling task waits for
 * its future with conc_aio_wait, which never cancels what it waits on:
 * when the deadline passes first, the call returns CONC_ETIMEDOUT and the
 * resolver's thread finishes in the background, its result dropped with
 * the future. A numeric host needs no resolver and is converted at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "aio/aio_internal.h"
#include "aio/net.h"
#include "conc/aio_net.h"

#define NS_PER_S 1e9

/* The resolver task's argument: the query, then host as a string. */
struct query {
    int flags, socktype;
    char port[8];
    char host[NI_MAXHOST];
};

/* getaddrinfo of the query; each address as a record into out. */
static int
resolve_task(const void *arg, size_t len, conc_buf *out)
{
    (void)len;
    const struct query *q = arg;
    struct addrinfo hints = {.ai_socktype = q->socktype, .ai_flags = q->flags};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(q->host, q->port, &hints, &res);
    if (g != 0)
        return conc_fail(CONC_ENOENT, "%s: %s", q->host, gai_strerror(g));
    int r = 0;
    for (struct addrinfo *a = res; a && r == 0; a = a->ai_next) {
        struct conc__net_addr rec = {.family = a->ai_family,
                                     .len = a->ai_addrlen};
        memcpy(&rec.ss, a->ai_addr, a->ai_addrlen);
        r = conc_buf_append(out, &rec, sizeof rec);
    }
    freeaddrinfo(res);
    return r;
}

/* Waits for the resolver's future until the deadline, then takes its
 * records. */
static int
await_resolver(conc_future *f, int64_t deadline, conc_buf *recs)
{
    double left = CONC_FOREVER;
    if (deadline != CONC__FOREVER) {
        left = (double)(deadline - conc__now_ns()) / NS_PER_S;
        left = left > 0 ? left : 0;
    }
    int r = conc_aio_wait(&f, 1, CONC_ALL_COMPLETED, left, NULL);
    if (r == 0) {
        const void *data;
        size_t len;
        r = conc_future_result(f, 0, &data, &len);
        if (r >= 0)
            r = conc_buf_append(recs, data, len);
    } else {
        (void)conc_future_cancel(f); /* stops it if it has not started */
    }
    return r;
}

int
conc__net_resolve(const char *host, int port, int socktype, int64_t deadline,
                  conc_buf *recs)
{
    struct query q = {.flags = AI_NUMERICHOST | AI_NUMERICSERV,
                      .socktype = socktype};
    if (strlen(host) >= sizeof q.host)
        return conc_fail(CONC_EINVAL, "host name too long");
    strcpy(q.host, host);
    snprintf(q.port, sizeof q.port, "%d", port);
    int r = resolve_task(&q, sizeof q, recs);
    if (r != CONC_ENOENT)
        return r;
    conc_clear_failure();
    if (!conc__aio_task_self())
        return conc_fail(CONC_ESTATE, "not inside a task");
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    q.flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    conc_future *f;
    r = conc_aio_run_in_executor(NULL, resolve_task, &q, sizeof q, &f);
    if (r < 0)
        return r;
    r = await_resolver(f, deadline, recs);
    conc_future_free(f);
    return r;
}

int
conc_aio_getaddrinfo(const char *host, int port, double timeout, conc_buf *out)
{
    int64_t deadline;
    if (!host || !out || port < 0 || port > CONC__NET_MAX_PORT ||
        conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    conc_buf recs = CONC_BUF_INIT, text = CONC_BUF_INIT;
    int r = conc__net_resolve(host, port, SOCK_STREAM, deadline, &recs);
    size_t n = recs.len / sizeof(struct conc__net_addr);
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct conc__net_addr a;
        memcpy(&a, recs.data + i * sizeof a, sizeof a);
        if ((r = conc__net_addr_text(&a.ss, &text)) == 0)
            r = conc_buf_append(&text, "\n", 1);
    }
    conc_buf_free(&recs);
    if (r == 0 && !n)
        r = conc_fail(CONC_ENOENT, "%s: no address", host);
    if (r < 0) {
        conc_buf_free(&text);
        return r;
    }
    conc_buf_free(out);
    *out = text;
    return 0;
}

int
conc__net_numeric(const char *host, int port, int family,
                  struct conc__net_addr *a)
{
    if (port < 0 || port > CONC__NET_MAX_PORT)
        return CONC_EINVAL;
    memset(a, 0, sizeof *a);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    if (!host)
        host = family == AF_INET6 ? "::" : "0.0.0.0";
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        a->len = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *in6;
    } else {
        return conc_fail(CONC_EINVAL, "%s: not a numeric address", host);
    }
    a->family = a->ss.ss_family;
    return 0;
}

int
conc__net_addr_text(const struct sockaddr_storage *ss, conc_buf *out)
{
    char host[INET6_ADDRSTRLEN], text[sizeof host + 16];
    const struct sockaddr_in *in4 = (const void *)ss;
    const struct sockaddr_in6 *in6 = (const void *)ss;
    int n;
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        n = snprintf(text, sizeof text, "%s:%d", host, ntohs(in4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        n = snprintf(text, sizeof text, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else {
        return conc_fail(CONC_EVALUE, "unknown address family %d",
                         ss->ss_family);
    }
    return conc_buf_append(out, text, (size_t)n);
}

int
conc__net_bound_port(int fd)
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
