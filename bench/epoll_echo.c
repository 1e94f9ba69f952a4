/* The raw C twin of the stream benchmarks (epoll_echo.h): plain epoll,
 * level-triggered, non-blocking sockets, TCP_NODELAY, no conc.
 *
 * With one thread, the server's and the clients' ends of every connection
 * sit on one epoll, as conc's one-loop benchmark puts server and clients
 * on one loop. With N threads, N server threads each accept from a
 * listening socket of their own on one port (SO_REUSEPORT, so the kernel
 * spreads the connections) and echo; N client threads each drive their
 * share of the connections; the servers stop when a pipe they all watch
 * becomes readable. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, accept4 */
#endif
#include "epoll_echo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define BUF         (64 * 1024)
#define EVENTS      256
#define STOP_TAG    UINT32_MAX
#define LISTEN_TAG  (UINT32_MAX - 1)

#define EE_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "epoll_echo: %s failed: %s\n", #cond,              \
                    strerror(errno));                                          \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

static const unsigned char msg[EE_MSG];

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void
watch(int epfd, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
    EE_ASSERT(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0);
}

/* A listening socket on 127.0.0.1:*port (0: a free one, stored back). */
static int
listener(int *port, int reuse_port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    EE_ASSERT(l >= 0);
    if (reuse_port)
        setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)*port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    EE_ASSERT(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    EE_ASSERT(listen(l, EE_MAX_CONNS) == 0);
    EE_ASSERT(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
    *port = ntohs(a.sin_port);
    return l;
}

static int
connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    EE_ASSERT(fd >= 0);
    EE_ASSERT(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    tune(fd);
    return fd;
}

/* Echoes what one server-side socket holds. Returns 1 at its end (the
 * caller closes it), else 0. */
static int
echo_once(int fd)
{
    static __thread unsigned char buf[BUF];
    ssize_t k = recv(fd, buf, sizeof buf, 0);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
        return 1;
    for (ssize_t sent = 0; k > 0 && sent < k;) {
        ssize_t s = send(fd, buf + sent, (size_t)(k - sent), MSG_NOSIGNAL);
        EE_ASSERT(s >= 0 || errno == EAGAIN || errno == EINTR);
        sent += s > 0 ? s : 0;
    }
    return 0;
}

/* ---- The clients' side ------------------------------------------------- */

struct clients {
    int epfd, n;
    int fd[EE_MAX_CONNS];
    long left[EE_MAX_CONNS]; /* round trips still to start */
    size_t got[EE_MAX_CONNS];
    long done, total;
};

/* A client's socket is readable: counts a round trip once all came. */
static void
client_ready(struct clients *c, int i)
{
    static __thread unsigned char buf[BUF];
    ssize_t k = recv(c->fd[i], buf, sizeof buf, 0);
    EE_ASSERT(k > 0 || (k < 0 && (errno == EAGAIN || errno == EINTR)));
    c->got[i] += k > 0 ? (size_t)k : 0;
    if (c->got[i] < EE_MSG)
        return;
    c->got[i] = 0;
    c->done++;
    if (c->left[i]-- > 0)
        EE_ASSERT(send(c->fd[i], msg, EE_MSG, MSG_NOSIGNAL) == EE_MSG);
}

static void
clients_start(struct clients *c, long per)
{
    c->total = per * c->n;
    for (int i = 0; i < c->n; i++) {
        c->left[i] = per - 1;
        EE_ASSERT(send(c->fd[i], msg, EE_MSG, MSG_NOSIGNAL) == EE_MSG);
    }
}

/* ---- One thread --------------------------------------------------------- */

static double
run_single(int conns, long per)
{
    static struct clients c;
    int port = 0, l = listener(&port, 0), sfd[EE_MAX_CONNS];
    c = (struct clients){.epfd = epoll_create1(EPOLL_CLOEXEC), .n = conns};
    for (int i = 0; i < conns; i++) {
        c.fd[i] = connect_to(port);
        sfd[i] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        EE_ASSERT(sfd[i] >= 0);
        tune(sfd[i]);
        watch(c.epfd, c.fd[i], (uint32_t)i);
        watch(c.epfd, sfd[i], (uint32_t)(i + EE_MAX_CONNS));
    }
    close(l);
    double t0 = now_s();
    clients_start(&c, per);
    struct epoll_event ev[EVENTS];
    while (c.done < c.total) {
        int k = epoll_wait(c.epfd, ev, EVENTS, -1);
        for (int j = 0; j < k; j++) {
            uint32_t id = ev[j].data.u32;
            if (id >= EE_MAX_CONNS)
                (void)echo_once(sfd[id - EE_MAX_CONNS]);
            else
                client_ready(&c, (int)id);
        }
    }
    double secs = now_s() - t0;
    for (int i = 0; i < conns; i++) {
        close(c.fd[i]);
        close(sfd[i]);
    }
    close(c.epfd);
    return secs;
}

/* ---- N threads ------------------------------------------------------------
 */

struct server {
    pthread_t th;
    int l, stop;             /* the listener, the stop pipe's read end */
    int fd[EE_MAX_CONNS], n; /* accepted; -1 once closed */
};

static void
server_accept(struct server *s, int epfd)
{
    int fd;
    while (s->n < EE_MAX_CONNS &&
           (fd = accept4(s->l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        tune(fd);
        s->fd[s->n] = fd;
        watch(epfd, fd, (uint32_t)s->n++);
    }
}

static void *
server_main(void *arg)
{
    struct server *s = arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    EE_ASSERT(epfd >= 0);
    fcntl(s->l, F_SETFL, fcntl(s->l, F_GETFL) | O_NONBLOCK);
    watch(epfd, s->l, LISTEN_TAG);
    watch(epfd, s->stop, STOP_TAG);
    struct epoll_event ev[EVENTS];
    for (;;) {
        int k = epoll_wait(epfd, ev, EVENTS, -1);
        for (int j = 0; j < k; j++) {
            uint32_t id = ev[j].data.u32;
            if (id == STOP_TAG) {
                for (int i = 0; i < s->n; i++)
                    if (s->fd[i] >= 0)
                        close(s->fd[i]);
                close(epfd);
                return NULL;
            }
            if (id == LISTEN_TAG) {
                server_accept(s, epfd);
            } else if (s->fd[id] >= 0 && echo_once(s->fd[id])) {
                close(s->fd[id]);
                s->fd[id] = -1;
            }
        }
    }
}

struct client_thread {
    pthread_t th;
    struct clients c;
    long per;
    pthread_barrier_t *go;
};

static void *
client_main(void *arg)
{
    struct client_thread *t = arg;
    struct epoll_event ev[EVENTS];
    pthread_barrier_wait(t->go);
    clients_start(&t->c, t->per);
    while (t->c.done < t->c.total) {
        int k = epoll_wait(t->c.epfd, ev, EVENTS, -1);
        for (int j = 0; j < k; j++)
            client_ready(&t->c, (int)ev[j].data.u32);
    }
    return NULL;
}

/* Connects the clients, spread over the client threads. */
static void
connect_clients(struct client_thread *ct, int threads, int conns, int port,
                long per)
{
    for (int t = 0; t < threads; t++)
        ct[t].c = (struct clients){.epfd = epoll_create1(EPOLL_CLOEXEC)};
    for (int i = 0; i < conns; i++) {
        struct clients *c = &ct[i % threads].c;
        c->fd[c->n] = connect_to(port);
        watch(c->epfd, c->fd[c->n], (uint32_t)c->n);
        c->n++;
    }
    for (int t = 0; t < threads; t++)
        ct[t].per = per;
}

static double
run_threads(int conns, int threads, long per)
{
    static struct server sv[MAX_THREADS];
    static struct client_thread ct[MAX_THREADS];
    int port = 0, stop[2];
    pthread_barrier_t go;
    EE_ASSERT(pipe2(stop, O_CLOEXEC) == 0);
    for (int t = 0; t < threads; t++) {
        sv[t] = (struct server){.l = listener(&port, 1), .stop = stop[0]};
        EE_ASSERT(pthread_create(&sv[t].th, NULL, server_main, &sv[t]) == 0);
    }
    connect_clients(ct, threads, conns, port, per);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        ct[t].go = &go;
        EE_ASSERT(pthread_create(&ct[t].th, NULL, client_main, &ct[t]) == 0);
    }
    pthread_barrier_wait(&go);
    double t0 = now_s();
    for (int t = 0; t < threads; t++)
        pthread_join(ct[t].th, NULL);
    double secs = now_s() - t0;
    for (int t = 0; t < threads; t++) {
        for (int i = 0; i < ct[t].c.n; i++)
            close(ct[t].c.fd[i]);
        close(ct[t].c.epfd);
    }
    EE_ASSERT(write(stop[1], "x", 1) == 1);
    for (int t = 0; t < threads; t++) {
        pthread_join(sv[t].th, NULL);
        close(sv[t].l);
    }
    close(stop[0]);
    close(stop[1]);
    pthread_barrier_destroy(&go);
    return secs;
}

double
epoll_echo_run(int conns, int threads, long n, long *ops)
{
    EE_ASSERT(conns > 0 && conns <= EE_MAX_CONNS && threads >= 0 &&
              threads <= MAX_THREADS);
    long per = n / conns > 0 ? n / conns : 1;
    *ops = per * conns;
    return threads ? run_threads(conns, threads, per) : run_single(conns, per);
}
