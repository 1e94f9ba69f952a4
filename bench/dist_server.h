/* A redis-server of the benchmark's own for bench_dist.c and dist_cost.c:
 * Debian's redis-server on a free loopback port, without persistence (no
 * RDB, no append-only file: the numbers are the queue's, not the disk's),
 * in a temporary directory, stopped after. */
#ifndef BENCH_DIST_SERVER_H
#define BENCH_DIST_SERVER_H

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "conc.h"

/* The server has this long to start accepting connections. */
#define DIST_SERVER_START_S 10.0

static char dist_url[64];
static int dist_port;
static char dist_dir[64] = "/tmp/conc-bench-redis-XXXXXX";
static pid_t dist_server_pid;

/* A free loopback port (bound, read, released: the server binds it next;
 * a race with another program is possible and would show as a failed
 * start). */
static int
dist_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    BENCH_ASSERT(fd >= 0);
    BENCH_ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    BENCH_ASSERT(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts redis-server for `queue`; returns 0 once it answers, -1 if there
 * is none. */
static int
dist_start_server(const char *queue)
{
    char ports[16];
    dist_port = dist_free_port();
    snprintf(ports, sizeof ports, "%d", dist_port);
    snprintf(dist_url, sizeof dist_url, "redis://127.0.0.1:%d", dist_port);
    BENCH_ASSERT(mkdtemp(dist_dir) != NULL);
    dist_server_pid = fork();
    BENCH_ASSERT(dist_server_pid >= 0);
    if (dist_server_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", ports, "--bind",
               "127.0.0.1", "--dir", dist_dir, "--save", "", "--appendonly",
               "no", (char *)NULL);
        _exit(127);
    }
    conc_dist_status st;
    double end = conc_monotonic() + DIST_SERVER_START_S;
    while (conc_monotonic() < end) {
        if (conc_dist_status_get(dist_url, NULL, queue, 1, &st) == 0)
            return 0;
        if (waitpid(dist_server_pid, NULL, WNOHANG) == dist_server_pid)
            break; /* no redis-server, or it failed */
        conc_sleep(0.05);
    }
    dist_server_pid = 0;
    return -1;
}

static void
dist_stop_server(void)
{
    if (dist_server_pid > 0) {
        kill(dist_server_pid, SIGKILL);
        waitpid(dist_server_pid, NULL, 0);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/dump.rdb", dist_dir);
    unlink(path);
    rmdir(dist_dir);
}

/* The task both programs run: squares a long. */
static int
dist_square(const void *arg, size_t len, conc_buf *result)
{
    long v = 0;
    if (len == sizeof v)
        memcpy(&v, arg, sizeof v);
    v *= v;
    return conc_buf_append(result, &v, sizeof v);
}

static conc_dist_worker *dist_worker;

static void
dist_on_term(int sig)
{
    (void)sig;
    conc_dist_worker_stop(dist_worker);
}

/* A worker process serving `queue` with one thread until SIGTERM. */
static pid_t
dist_start_worker(const char *queue)
{
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid > 0)
        return pid;
    conc_dist_register("square", dist_square);
    conc_dist_worker_opts o = {.threads = 1};
    if (conc_dist_worker_new(dist_url, NULL, queue, &o, &dist_worker) < 0)
        _exit(1);
    signal(SIGTERM, dist_on_term);
    conc_dist_worker_run(dist_worker, CONC_FOREVER);
    conc_dist_worker_free(dist_worker);
    _exit(0);
}

#endif
