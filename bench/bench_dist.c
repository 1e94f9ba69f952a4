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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "conc.h"
#include "dist_server.h"

#define QUEUE "bench"
/* Round trips measured for the p50 (a smoke run: a few). */
#define ROUNDTRIPS       2000
#define ROUNDTRIPS_SMOKE 20
#define WAIT_S           120.0
#define WORKERS          2

static pid_t workers[WORKERS];

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

#ifdef CONC_DIST_TRACE
/* In a build with per-stage timestamps (src/dist/trace.h): when the
 * caller had its result, a line of the same trace with no task id (the
 * caller does not see it); bench/dist_trace.py pairs it with the task
 * completed last before it, as one task is in flight at a time. */
static void
trace_woke(void)
{
    long long now = bench_now_ns(); /* before the file's open */
    const char *path = getenv("CONC_DIST_TRACE");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%lld woke -\n", now);
        fclose(f);
    }
}
#else
#define trace_woke() ((void)0)
#endif

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
        trace_woke();
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
    if (dist_start_server(QUEUE) < 0) {
        printf("INFO dist_tasks conc no redis-server could be started "
               "(Debian's redis-server)\n");
        dist_stop_server();
        return 1;
    }
    for (int i = 0; i < WORKERS; i++)
        workers[i] = dist_start_worker(QUEUE);
    conc_dist_executor *dx = NULL;
    BENCH_CHECK(conc_dist_executor_new(dist_url, NULL, QUEUE, NULL, &dx));
    bench_impl impl = {"conc", run_tasks, dx};
    bench_row(&o, "dist_tasks", &impl, 1, 1, 200);
    roundtrip_row(dx, o.smoke ? ROUNDTRIPS_SMOKE : ROUNDTRIPS);
    conc_dist_executor_free(dx);
    for (int i = 0; i < WORKERS; i++) {
        kill(workers[i], SIGTERM);
        waitpid(workers[i], NULL, 0);
    }
    dist_stop_server();
    return 0;
}
