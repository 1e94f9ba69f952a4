/* The WebSocket engine as an echo peer for ws_conformance.py.
 *
 *   ws_conformance_peer server [PORT] [--no-deflate]
 *       serves ws:// on 127.0.0.1 (PORT 0 or absent: any free port),
 *       prints "listening on PORT" first, and echoes every message of
 *       every connection (text as text, binary as binary) until killed;
 *       permessage-deflate is accepted when offered.
 *   ws_conformance_peer client URL [--no-deflate]
 *       connects to URL (offering permessage-deflate), echoes every
 *       message until the connection ends, prints "closed CODE".
 *
 * It drives src/ws/ over blocking sockets (ws_conformance_io.c), so the
 * conformance suite checks the engine on its own; the suite runs against
 * examples/ws_echo_server too. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws_conformance_io.h"

struct job {
    int fd;
    int deflate;
};

static void *
serve_one(void *arg)
{
    struct job *j = arg;
    struct wsp p;
    if (wsp_accept(j->fd, j->deflate, NULL, NULL, NULL, &p) == 1) {
        wsp_echo(&p);
        wsp_free(&p);
    }
    free(j);
    return NULL;
}

static int
serve(int port, int deflate)
{
    int bound;
    int lfd = wsp_listen(port, &bound);
    if (lfd < 0)
        return 1;
    printf("listening on %d\n", bound);
    fflush(stdout);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        struct job *j = fd >= 0 ? malloc(sizeof *j) : NULL;
        pthread_t t;
        if (!j) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        j->fd = fd;
        j->deflate = deflate;
        if (pthread_create(&t, NULL, serve_one, j)) {
            close(fd);
            free(j);
            continue;
        }
        pthread_detach(t);
    }
}

static int
client(const char *url, int deflate)
{
    struct wsp p;
    if (wsp_connect(url, deflate, NULL, &p))
        return 1;
    unsigned code = wsp_echo(&p);
    wsp_free(&p);
    printf("closed %u\n", code);
    return 0;
}

int
main(int argc, char **argv)
{
    int deflate = !(argc > 2 && strcmp(argv[argc - 1], "--no-deflate") == 0);
    if (!deflate)
        argc--;
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return serve(argc > 2 ? atoi(argv[2]) : 0, deflate);
    if (argc == 3 && strcmp(argv[1], "client") == 0)
        return client(argv[2], deflate);
    fprintf(stderr, "usage: %s server [PORT] | client URL [--no-deflate]\n",
            argv[0]);
    return 2;
}
