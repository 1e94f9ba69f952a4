/* Sockets below the streams, from the inside (sock.c, resolve.c,
 * datagram.c, server_group.c): the shared wait and address helpers.
 * Everything runs in the calling loop's thread. */
#ifndef CONC_AIO_NET_INTERNAL_H
#define CONC_AIO_NET_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>

#include "conc/buf.h"

#define CONC__NET_MAX_PORT 65535

/* One resolved address, as conc__net_resolve's buffer holds them. */
struct conc__net_addr {
    int family;
    socklen_t len;
    struct sockaddr_storage ss;
};

/* Suspends the calling task until `fd` is ready for `events` (POLLIN,
 * POLLOUT) or the absolute deadline passes; `what` names the wait in
 * dumps. Returns 0, CONC_ETIMEDOUT (also at once for CONC__POLL),
 * CONC_ECANCELED, CONC_ESTATE (not inside a task), a negated errno. */
int conc__net_wait(int fd, short events, int64_t deadline, const char *what);

/* The addresses of host:port for `socktype` as struct conc__net_addr
 * records appended to *recs: a numeric host at once, a name through
 * getaddrinfo in the loop's default thread executor until the absolute
 * deadline. Returns 0, CONC_ENOENT (no address), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_ESTATE, CONC_EINVAL (name too long), CONC_ENOMEM. */
int conc__net_resolve(const char *host, int port, int socktype,
                      int64_t deadline, conc_buf *recs);

/* The numeric host:port (host NULL: the wildcard of `family`, AF_UNSPEC
 * meaning IPv4) as one address in *a. Returns 0 or CONC_EINVAL. */
int conc__net_numeric(const char *host, int port, int family,
                      struct conc__net_addr *a);

/* Appends the address as text, "1.2.3.4:80" or "[::1]:80", to *out.
 * Returns 0, CONC_EVALUE (another family), CONC_ENOMEM. */
int conc__net_addr_text(const struct sockaddr_storage *ss, conc_buf *out);

/* The port a socket is bound to (0 for none or a Unix socket). */
int conc__net_bound_port(int fd);

#endif
