/* A worker process for the scale-out tests: registers the test tasks and
 * serves a queue until SIGTERM or until killed.
 *
 * usage: dist_peer URL PASSWORD QUEUE THREADS RECLAIM_IDLE MAX_DELIVERIES
 *                  [PROCESSES]
 * (PASSWORD "-" for none; PROCESSES: run the tasks in worker processes).
 * Exits 0 after a stop, 2 on bad usage, or with the negated error of
 * conc_dist_worker_new / _run (CONC_EAUTH: 10007 & 255). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"

static conc_dist_worker *worker;

static void
on_term(int sig)
{
    (void)sig;
    conc_dist_worker_stop(worker);
}

static int
square(const void *arg, size_t len, conc_buf *result)
{
    long v;
    if (len != sizeof v)
        return conc_fail(CONC_EVALUE, "square wants a long, got %zu bytes",
                         len);
    memcpy(&v, arg, sizeof v);
    v *= v;
    return conc_buf_append(result, &v, sizeof v);
}

/* square after a nap: keeps a worker busy long enough to be killed. */
static int
slow_square(const void *arg, size_t len, conc_buf *result)
{
    conc_sleep(0.02);
    return square(arg, len, result);
}

static int
fail(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)result;
    return conc_fail(CONC_EVALUE, "bad input of %zu bytes", len);
}

static int
crash(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    abort();
}

/* Runs up to the given seconds (a double), until cancelled. */
static int
nap(const void *arg, size_t len, conc_buf *result)
{
    double s = 0;
    if (len == sizeof s)
        memcpy(&s, arg, sizeof s);
    double end = conc_monotonic() + s;
    while (conc_monotonic() < end) {
        if (conc_task_cancelled())
            return CONC_ECANCELED;
        conc_sleep(0.01);
    }
    return conc_buf_append(result, "slept", 5);
}

int
main(int argc, char **argv)
{
    if (argc != 7 && argc != 8)
        return 2;
    conc_dist_register("square", square);
    conc_dist_register("slow_square", slow_square);
    conc_dist_register("fail", fail);
    conc_dist_register("crash", crash);
    conc_dist_register("nap", nap);
    conc_dist_worker_opts o = {.threads = (size_t)atoi(argv[4]),
                               .reclaim_idle = atof(argv[5]),
                               .max_deliveries = (unsigned)atoi(argv[6]),
                               .processes =
                                   argc == 8 ? (size_t)atoi(argv[7]) : 0};
    const char *pw = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
    int r = conc_dist_worker_new(argv[1], pw, argv[3], &o, &worker);
    if (r < 0) {
        fprintf(stderr, "dist_peer: %s\n", conc_err_name(r));
        return -r & 255;
    }
    signal(SIGTERM, on_term);
    r = conc_dist_worker_run(worker, CONC_FOREVER);
    conc_dist_worker_free(worker);
    return -r & 255;
}
