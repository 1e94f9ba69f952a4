/* What a tiny task costs the redis-server, in numbers that depend far less
 * on how loaded the machine is than a rate does: the server's CPU time per
 * task and the commands it runs per task (INFO commandstats, which counts the
 * commands a Lua script calls too), for submit + run + result + notice + ack of
 * a batch of tiny tasks through conc's Redis executor and two conc worker
 * processes (bench_dist's dist_tasks row, measured by cost, not time).
 *
 * Usage: dist_cost [TASKS [REPS]]: REPS batches of TASKS tasks (50000
 * and 1 by default), reporting the batch that cost the server least CPU
 * (the machine's load adds to it, never takes away). Needs redis-server
 * and redis-cli (Debian's redis-tools). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "conc.h"
#include "dist_server.h"

#define QUEUE   "cost"
#define WORKERS 2
#define TASKS   50000
#define WARMUP  2000
#define WAIT_S  300.0
/* The commands listed at most. */
#define CMDS_MAX 64

struct cmdstat {
    char name[48];
    double calls, usec;
};

/* Runs `redis-cli -p PORT ARGS` and returns its output (free), or NULL. */
static char *
cli(const char *args)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d %s", dist_port, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16;
    char *out = malloc(cap);
    BENCH_ASSERT(out);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    pclose(p);
    return out;
}

/* The server's user + system CPU seconds (INFO cpu). */
static double
server_cpu(void)
{
    char *s = cli("INFO cpu");
    double user = 0, sys = 0;
    char *u = s ? strstr(s, "used_cpu_user:") : NULL;
    char *y = s ? strstr(s, "used_cpu_sys:") : NULL;
    if (u)
        user = atof(u + strlen("used_cpu_user:"));
    if (y)
        sys = atof(y + strlen("used_cpu_sys:"));
    free(s);
    return user + sys;
}

/* Parses INFO commandstats into cs; returns how many commands. */
static size_t
command_stats(struct cmdstat *cs, size_t max)
{
    char *s = cli("INFO commandstats");
    size_t n = 0;
    for (char *line = s ? strtok(s, "\r\n") : NULL; line && n < max;
         line = strtok(NULL, "\r\n")) {
        double calls, usec;
        char name[48];
        if (sscanf(line, "cmdstat_%47[^:]:calls=%lf,usec=%lf", name, &calls,
                   &usec) != 3)
            continue;
        snprintf(cs[n].name, sizeof cs[n].name, "%s", name);
        cs[n].calls = calls;
        cs[n].usec = usec;
        n++;
    }
    free(s);
    return n;
}

/* Submits n tasks pipelined and waits for every result. */
static void
run_tasks(conc_dist_executor *dx, long n)
{
    long *in = malloc((size_t)n * sizeof *in);
    conc_future **fs = malloc((size_t)n * sizeof *fs);
    BENCH_ASSERT(in && fs);
    for (long i = 0; i < n; i++)
        in[i] = i;
    conc_items items = CONC_ITEMS(in, (size_t)n);
    size_t done = 0;
    BENCH_CHECK(conc_dist_submit_many(dx, "square", &items, WAIT_S, fs, &done));
    BENCH_CHECK(conc_wait(fs, (size_t)n, CONC_ALL_COMPLETED, WAIT_S, NULL));
    for (long i = 0; i < n; i++) {
        const void *data;
        size_t len;
        long v;
        BENCH_CHECK(conc_future_result(fs[i], 0, &data, &len));
        BENCH_ASSERT(len == sizeof v);
        memcpy(&v, data, sizeof v);
        BENCH_ASSERT(v == i * i);
        conc_future_free(fs[i]);
    }
    free(in);
    free(fs);
}

static void
report(long n, double cpu, const struct cmdstat *cs, size_t ncs)
{
    double calls = 0;
    for (size_t i = 0; i < ncs; i++)
        if (strcmp(cs[i].name, "info") != 0)
            calls += cs[i].calls;
    printf("tasks %ld per batch, %d workers of one thread\n", n, WORKERS);
    printf("redis-server CPU: %.2f us per task (%.3f s in all)\n",
           cpu * 1e6 / (double)n, cpu);
    printf("commands per task: %.3f (script calls included)\n",
           calls / (double)n);
    printf("%-14s %12s %10s %12s\n", "command", "calls/task", "usec/call",
           "usec/task");
    for (size_t i = 0; i < ncs; i++)
        if (strcmp(cs[i].name, "info") != 0)
            printf("%-14s %12.4f %10.2f %12.3f\n", cs[i].name,
                   cs[i].calls / (double)n, cs[i].usec / cs[i].calls,
                   cs[i].usec / (double)n);
    printf("(a script's usec includes the commands it calls)\n");
}

/* One measured batch: the server's CPU seconds for n tasks, and its
 * commands in cs (how many in *ncs). */
static double
measure(conc_dist_executor *dx, long n, struct cmdstat *cs, size_t *ncs)
{
    free(cli("CONFIG RESETSTAT"));
    double cpu0 = server_cpu();
    run_tasks(dx, n);
    double cpu = server_cpu() - cpu0;
    *ncs = command_stats(cs, CMDS_MAX);
    return cpu;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : TASKS;
    long reps = argc > 2 ? atol(argv[2]) : 1;
    pid_t workers[WORKERS];
    if (n <= 0 || reps <= 0) {
        fprintf(stderr, "usage: %s [TASKS [REPS]]\n", argv[0]);
        return 2;
    }
    if (dist_start_server(QUEUE) < 0) {
        fprintf(stderr, "no redis-server could be started\n");
        dist_stop_server();
        return 1;
    }
    for (int i = 0; i < WORKERS; i++)
        workers[i] = dist_start_worker(QUEUE);
    conc_dist_executor *dx = NULL;
    BENCH_CHECK(conc_dist_executor_new(dist_url, NULL, QUEUE, NULL, &dx));
    run_tasks(dx, WARMUP);
    /* On a loaded machine the CPU time of a batch varies: the least of
     * several is the one least disturbed; its commands are reported. */
    struct cmdstat cs[CMDS_MAX], best[CMDS_MAX];
    size_t ncs, nbest = 0;
    double min_cpu = -1;
    for (long i = 0; i < reps; i++) {
        double cpu = measure(dx, n, cs, &ncs);
        if (reps > 1)
            printf("batch %ld: %.2f us per task\n", i + 1,
                   cpu * 1e6 / (double)n);
        if (min_cpu < 0 || cpu < min_cpu) {
            min_cpu = cpu;
            memcpy(best, cs, ncs * sizeof *cs);
            nbest = ncs;
        }
    }
    report(n, min_cpu, best, nbest);
    conc_dist_executor_free(dx);
    for (int i = 0; i < WORKERS; i++) {
        kill(workers[i], SIGTERM);
        waitpid(workers[i], NULL, 0);
    }
    dist_stop_server();
    return 0;
}
