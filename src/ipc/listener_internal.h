/* Internals shared by the listener and the client (src/ipc/listener.c,
 * client.c, sockaddr.c). */
#ifndef CONC_LISTENER_INTERNAL_H
#define CONC_LISTENER_INTERNAL_H

#include <sys/socket.h>
#include <sys/un.h>

#include "conc/listener.h"
#include "ipc/auth.h"

/* A parsed address (conc/listener.h's forms). */
struct conc__sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;   /* AF_INET, AF_INET6 or AF_UNIX */
    int abstract; /* AF_UNIX in the abstract namespace ("@name") */
};

/* Parses `address`, resolving a host name; `passive` for a listener (an
 * empty host then means every interface, and loopback for a client).
 * Returns 0, CONC_EINVAL (with a failure message), or CONC_ENOENT when
 * the host does not resolve. */
int conc__sockaddr_parse(const char *address, int passive,
                         struct conc__sockaddr *out);

/* Appends the address `sa` in conc/listener.h's form to `b`. */
int conc__sockaddr_format(const struct conc__sockaddr *sa, conc_buf *b);

/* Sets TCP_NODELAY on a TCP socket (best effort: a failure costs only
 * time). */
void conc__sock_nodelay(int fd);

/* The handshake of either side over a new connection: a server delivers
 * first, a client answers first (handshake.c). */
int conc__auth_server(conc_conn *c, struct conc__auth_key key,
                      const char *digest, int quickack, int64_t deadline);
int conc__auth_client(conc_conn *c, struct conc__auth_key key,
                      const char *digest, int64_t deadline);

/* Closes this process's copy of the listening socket without removing a
 * Unix socket's path: a forked child serves it now (the manager's
 * start_process). Later calls see a closed listener. */
void conc__listener_detach(conc_listener *l);

#endif
