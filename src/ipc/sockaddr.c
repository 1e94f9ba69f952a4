/* Addresses of listeners and clients (conc/listener.h): "host:port" for
 * TCP, "@name" for an abstract Unix socket, a path otherwise. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>

#include "ipc/listener_internal.h"

#define MAX_PORT 65535
#define MAX_HOST 255 /* a DNS name's longest text form */

static int
parse_unix(const char *address, struct conc__sockaddr *out)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    int abstract = address[0] == '@';
    const char *name = address + abstract;
    size_t n = strlen(name);
    /* A path needs its NUL; an abstract name its leading NUL. */
    if (n + 1 > sizeof un->sun_path)
        return conc_fail(CONC_EINVAL, "address %s: too long for a Unix socket",
                         address);
    memset(out, 0, sizeof *out);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path + abstract, name, n);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    out->family = AF_UNIX;
    out->abstract = abstract;
    return 0;
}

/* Whether `s` is a port: 1 to 5 digits. */
static int
is_port(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Resolves host (NULL: any or loopback) and port in `family`. */
static int
resolve(const char *host, const char *port, int family, int passive,
        struct conc__sockaddr *out)
{
    struct addrinfo hints = {.ai_family = family,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags =
                                 AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return CONC_ENOENT;
    memset(out, 0, sizeof *out);
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    out->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

static int
parse_tcp(const char *address, const char *colon, int passive,
          struct conc__sockaddr *out)
{
    if (atoi(colon + 1) > MAX_PORT)
        return conc_fail(CONC_EINVAL, "address %s: port above %d", address,
                         MAX_PORT);
    char host[MAX_HOST + 1];
    size_t n = (size_t)(colon - address);
    int v6 = n >= 2 && address[0] == '[' && address[n - 1] == ']';
    if (v6) {
        address++;
        n -= 2;
    }
    if (n > MAX_HOST)
        return conc_fail(CONC_EINVAL, "address: host name too long");
    memcpy(host, address, n);
    host[n] = '\0';
    const char *h = n ? host : NULL;
    int r = resolve(h, colon + 1, v6 ? AF_INET6 : AF_INET, passive, out);
    if (r && !v6)
        r = resolve(h, colon + 1, AF_INET6, passive, out);
    if (r)
        return conc_fail(r, "address: cannot resolve host \"%s\"", host);
    return 0;
}

int
conc__sockaddr_parse(const char *address, int passive,
                     struct conc__sockaddr *out)
{
    if (address[0] == '\0')
        return conc_fail(CONC_EINVAL, "address: empty");
    const char *colon = strrchr(address, ':');
    if (address[0] != '@' && !strchr(address, '/') && colon &&
        is_port(colon + 1))
        return parse_tcp(address, colon, passive, out);
    return parse_unix(address, out);
}

int
conc__sockaddr_format(const struct conc__sockaddr *sa, conc_buf *b)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&sa->ss;
        size_t n = sa->len - offsetof(struct sockaddr_un, sun_path);
        const char *name = un->sun_path + sa->abstract;
        n = strnlen(name, n - sa->abstract);
        if (sa->abstract && conc_buf_append(b, "@", 1))
            return CONC_ENOMEM;
        return conc_buf_append(b, name, n);
    }
    if (sa->family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa->ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return conc_buf_appendf(b, "%s:%u", host, ntohs(in->sin_port));
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa->ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return conc_buf_appendf(b, "[%s]:%u", host, ntohs(in6->sin6_port));
}

void
conc__sock_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
