/* Seed 000 §9's worker, over Redis: serves the queue "seed000" with two
 * threads until Ctrl-C (or SIGTERM). Start several, on any machines; kill
 * any of them at any moment: what it was running is taken over by another
 * worker after 2 s, the short reclaim time this example sets so that the
 * take-over is visible.
 *
 * The server's address comes from REDIS_URL (default
 * redis://127.0.0.1:6379), its password, if any, from REDIS_PASSWORD. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define RECLAIM_IDLE 2.0

static conc_dist_worker *worker;

static void
on_signal(int sig)
{
    (void)sig;
    conc_dist_worker_stop(worker); /* async-signal-safe */
}

/* "n" -> "n * n = n*n", after a second's work as in the seed. */
static int
square_text(const void *arg, size_t len, conc_buf *result)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return conc_fail(CONC_EVALUE, "want a number, got %zu bytes", len);
    memcpy(buf, arg, len);
    buf[len] = '\0';
    long long n = atoll(buf);
    printf("Run task %lld * %lld...\n", n, n);
    fflush(stdout);
    conc_sleep(1);
    return conc_buf_appendf(result, "%lld * %lld = %lld", n, n, n * n);
}

int
main(void)
{
    const char *url = getenv("REDIS_URL");
    if (!url)
        url = "redis://127.0.0.1:6379";
    printf("Connect to server %s...\n", url);
    check(conc_dist_register("square_text", square_text), "conc_dist_register");
    conc_dist_worker_opts o = {.threads = 2, .reclaim_idle = RECLAIM_IDLE};
    check(conc_dist_worker_new(url, getenv("REDIS_PASSWORD"), "seed000", &o,
                               &worker),
          "conc_dist_worker_new");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    check(conc_dist_worker_run(worker, CONC_FOREVER), "conc_dist_worker_run");
    conc_dist_worker_free(worker);
    printf("Worker Exit.\n");
    return 0;
}
