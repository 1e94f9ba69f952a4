/* Scale-out on Redis: tiny tasks through a redis-server, and one future's
 * round trip, with conc's Redis executor and two conc workers.
 *
 * Rows:
 *   dist_tasks      tasks per second: n tasks of 8 bytes submitted with
 *                   conc_dist_submit_many (pipelined), run by two worker
 *                   processes of one serving thread each, every result
 *                   back in its future
 *   dist_roundtrip  the median (p50) of one submit -> worker -> result
 *                   round trip, one task in flight at a time
 *
 * The program starts its own redis-server (Debian's) on a free loopback
 * port, without persistence (no RDB, no append-only file: the row measures
 * the queue, not the disk), in a temporary directory, and stops it after.
 * bench_dist.py measures the same rows with redis-py, Celery and RQ against
 * a server started the same way. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "bench_common.h"
#include "conc.h"

#define QUEUE "bench"
/* The server has this long to start accepting connections. */
#define SERVER_START_S 10.0
/* Round trips measured for the p50 (a smoke run: a few). */
#define ROUNDTRIPS       2000
#define ROUNDTRIPS_SMOKE 20
#define WAIT_S           120.0
#define WORKERS          2

static char url[64];
static char dir[64] = "/tmp/conc-bench-redis-XXXXXX";
static pid_t server_pid, workers[WORKERS];

static int
square(const void *arg, size_t len, conc_buf *result)
{
    long v = 0;
    if (len == sizeof v)
        memcpy(&v, arg, sizeof v);
    v *= v;
    return conc_buf_append(result, &v, sizeof v);
}

/* A free loopback port (bound, read, released: the server binds it next;
 * a race with another program is possible and would show as a failed
 * start). */
static int
free_port(void)
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

/* Starts redis-server; returns 0 once it answers, -1 if there is none. */
static int
start_server(void)
{
    int port = free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    BENCH_ASSERT(mkdtemp(dir) != NULL);
    server_pid = fork();
    BENCH_ASSERT(server_pid >= 0);
    if (server_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", ports, "--bind",
               "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
               (char *)NULL);
        _exit(127);
    }
    conc_dist_status st;
    double end = conc_monotonic() + SERVER_START_S;
    while (conc_monotonic() < end) {
        if (conc_dist_status_get(url, NULL, QUEUE, 1, &st) == 0)
            return 0;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid)
            break; /* no redis-server, or it failed */
        conc_sleep(0.05);
    }
    server_pid = 0;
    return -1;
}

static void
stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/dump.rdb", dir);
    unlink(path);
    rmdir(dir);
}

static conc_dist_worker *worker;

static void
on_term(int sig)
{
    (void)sig;
    conc_dist_worker_stop(worker);
}

/* A worker process: one serving thread until SIGTERM. */
static pid_t
start_worker(void)
{
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid > 0)
        return pid;
    conc_dist_register("square", square);
    conc_dist_worker_opts o = {.threads = 1};
    if (conc_dist_worker_new(url, NULL, QUEUE, &o, &worker) < 0)
        _exit(1);
    signal(SIGTERM, on_term);
    conc_dist_worker_run(worker, CONC_FOREVER);
    conc_dist_worker_free(worker);
    _exit(0);
}

/* dist_tasks: n tasks submitted pipelined, all results back. */
static double
run_tasks(void *ctx, long n, long *ops)
{
    conc_dist_executor *dx = ctx;
    long *in = malloc((size_t)n * sizeof *in);
    conc_future **fs = malloc((size_t)n * sizeof *fs);
    BENCH_ASSERT(in && fs);
    for (long i = 0; i < n; i++)
        in[i] = i;
    conc_items items = CONC_ITEMS(in, (size_t)n);
    size_t done = 0;
    long long t0 = bench_now_ns();
    BENCH_CHECK(conc_dist_submit_many(dx, "square", &items, WAIT_S, fs, &done));
    BENCH_CHECK(conc_wait(fs, (size_t)n, CONC_ALL_COMPLETED, WAIT_S, NULL));
    double secs = bench_seconds_since(t0);
    for (long i = 0; i < n; i++) {
        BENCH_CHECK(conc_future_result(fs[i], 0, NULL, NULL));
        conc_future_free(fs[i]);
    }
    free(in);
    free(fs);
    *ops = n;
    return secs;
}

static int
cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* dist_roundtrip: the p50 of n round trips, one at a time. */
static void
roundtrip_row(conc_dist_executor *dx, long n)
{
    long long *lat = malloc((size_t)n * sizeof *lat);
    BENCH_ASSERT(lat);
    for (long i = 0; i < n; i++) {
        conc_future *f = NULL;
        long long t0 = bench_now_ns();
        BENCH_CHECK(conc_dist_submit(dx, "square", &i, sizeof i, WAIT_S, &f));
        BENCH_CHECK(conc_future_result(f, WAIT_S, NULL, NULL));
        lat[i] = bench_now_ns() - t0;
        conc_future_free(f);
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_ll);
    printf("RESULT dist_roundtrip conc %lld ns\n", lat[n / 2]);
    printf("INFO dist_roundtrip conc p99 %.0f us over %ld round trips\n",
           (double)lat[n * 99 / 100] / 1e3, n);
    fflush(stdout);
    free(lat);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    if (start_server() < 0) {
        printf("INFO dist_tasks conc no redis-server could be started "
               "(Debian's redis-server)\n");
        stop_server();
        return 1;
    }
    for (int i = 0; i < WORKERS; i++)
        workers[i] = start_worker();
    conc_dist_executor *dx = NULL;
    BENCH_CHECK(conc_dist_executor_new(url, NULL, QUEUE, NULL, &dx));
    bench_impl impl = {"conc", run_tasks, dx};
    bench_row(&o, "dist_tasks", &impl, 1, 1, 200);
    roundtrip_row(dx, o.smoke ? ROUNDTRIPS_SMOKE : ROUNDTRIPS);
    conc_dist_executor_free(dx);
    for (int i = 0; i < WORKERS; i++) {
        kill(workers[i], SIGTERM);
        waitpid(workers[i], NULL, 0);
    }
    stop_server();
    return 0;
}
