/* s001_pool_tcp_echo: seed 001, 五 进程池, 详解:apply_async和apply, a TCP
 * server whose connections a Pool(4) serves, and its client.
 *
 * The seed's server binds 127.0.0.1:8080, creates Pool(4), and for each
 * accepted connection calls p.apply_async(talk, args=(conn,)): talk prints
 * '进程pid: PID' and sends back each message in upper case until the
 * client leaves. Its comments: with six clients, two wait until a worker is
 * free, and only four pids ever appear. The seed's client reads lines from
 * input(), sends each and prints the reply.
 *
 * A socket cannot travel as bytes: conc_apply_opts.has_fd and .fd hand the
 * accepted socket to the task (the worker gets its own copy, which the pool
 * closes when talk returns), and talk finds it with conc_task_fd(). Here
 * one program holds both sides: the server listens on a free port of
 * 127.0.0.1 (port 0) and six client threads each send three lines, a
 * "second" (20 ms) apart, then leave. talk returns its pid, so main can
 * count the workers that served the six clients: four. The order of the
 * lines and the pids vary from run to run.
 */
#define _POSIX_C_SOURCE 200809L /* the socket calls */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND     0.02 /* one second of the seed, scaled down */
#define N_WORKERS  4
#define N_CLIENTS  6
#define N_MESSAGES 3

typedef struct client_args {
    int number;
    uint16_t port;
} client_args;

/* The server side of one connection, in a worker process. */
static int
talk(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    int conn = conc_task_fd(); /* the pool closes it when talk returns */
    int pid = (int)getpid();
    printf("进程pid: %d\n", pid);
    for (;;) {
        char msg[1024];
        ssize_t n = recv(conn, msg, sizeof msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* the client left (or the connection broke) */
            break;
        for (ssize_t i = 0; i < n; i++)
            msg[i] = (char)toupper((unsigned char)msg[i]);
        if (send_all(conn, msg, (size_t)n) != 0)
            break;
    }
    return conc_buf_append(result, &pid, sizeof pid);
}

/* Reads exactly len bytes: TCP may split a reply. */
static int
recv_all(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? CONC_ECLOSED : -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
connect_local(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    check(sys(fd), "socket");
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(sys(connect(fd, (struct sockaddr *)&addr, sizeof addr)), "connect");
    return fd;
}

/* The seed's client, with three lines instead of input(). */
static int
client(void *arg)
{
    const client_args *c = arg;
    int fd = connect_local(c->port);
    for (int j = 0; j < N_MESSAGES; j++) {
        char msg[64], reply[64];
        int n = snprintf(msg, sizeof msg, "hello from client %d, line %d",
                         c->number, j);
        check(send_all(fd, msg, (size_t)n), "send");
        check(recv_all(fd, reply, (size_t)n), "recv");
        printf("%.*s\n", n, reply);
        check(conc_sleep(SECOND), "conc_sleep");
    }
    close(fd);
    return 0;
}

/* socket, bind to a free port of 127.0.0.1, listen(5). */
static int
listen_local(uint16_t *port)
{
    int server = socket(AF_INET, SOCK_STREAM, 0);
    check(sys(server), "socket");
    int one = 1;
    check(sys(setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)),
          "setsockopt");
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(sys(bind(server, (struct sockaddr *)&addr, sizeof addr)), "bind");
    check(sys(listen(server, 5)), "listen");
    socklen_t len = sizeof addr;
    check(sys(getsockname(server, (struct sockaddr *)&addr, &len)),
          "getsockname");
    *port = ntohs(addr.sin_port);
    return server;
}

/* How many different pids served the clients. */
static int
count_workers(conc_async_result **res)
{
    int pids[N_CLIENTS], n = 0;
    for (int i = 0; i < N_CLIENTS; i++) {
        const void *data;
        size_t len;
        check(conc_async_result_get(res[i], CONC_FOREVER, &data, &len), "talk");
        check(len == sizeof pids[0] ? 0 : CONC_EVALUE, "result size");
        memcpy(&pids[n], data, sizeof pids[n]);
        int seen = 0;
        for (int k = 0; k < n; k++)
            seen |= pids[k] == pids[n];
        n += !seen;
        conc_async_result_free(res[i]);
    }
    return n;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    /* The pool first: its workers are forked now, before any thread or
     * socket exists that they would inherit. */
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = N_WORKERS}, &p),
          "conc_pool_new");
    uint16_t port;
    int server = listen_local(&port);

    client_args args[N_CLIENTS];
    conc_thread *clients[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        args[i] = (client_args){.number = i + 1, .port = port};
        check(conc_thread_start(client, &args[i], NULL, &clients[i]),
              "conc_thread_start");
    }
    conc_async_result *res[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        int conn = accept(server, NULL, NULL);
        check(sys(conn), "accept");
        conc_apply_opts hand = {.has_fd = 1, .fd = conn};
        check(conc_pool_apply_async(p, talk, NULL, 0, &hand, &res[i]),
              "conc_pool_apply_async");
        close(conn); /* the pool holds its own copy now */
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        int status;
        check(conc_thread_join(clients[i], CONC_FOREVER, &status),
              "conc_thread_join");
        check(status, "client");
        conc_thread_free(clients[i]);
    }
    close(server);
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    printf("%d clients served by %d worker processes\n", N_CLIENTS,
           count_workers(res));
    conc_pool_free(p);
    return 0;
}
