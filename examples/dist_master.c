/* Seed 000 §9's master, over Redis instead of a manager: puts ten tasks
 * on the queue "seed000" and prints each result as it comes back, from
 * whichever worker ran it (examples/dist_worker.c, dist_worker.py). Any
 * worker may be killed meanwhile: its task is run again elsewhere once it
 * has been idle for the workers' reclaim time.
 *
 * The server's address comes from REDIS_URL (default
 * redis://127.0.0.1:6379), its password, if any, from REDIS_PASSWORD. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "conc.h"
#include "example_util.h"

#define NTASKS 10
/* How long the master waits for all the results (the seed's 10 s per
 * result, for ten). */
#define RESULTS_TIMEOUT 100.0

int
main(void)
{
    const char *url = getenv("REDIS_URL");
    if (!url)
        url = "redis://127.0.0.1:6379";
    conc_dist_executor *dx;
    check(conc_dist_executor_new(url, getenv("REDIS_PASSWORD"), "seed000", NULL,
                                 &dx),
          "conc_dist_executor_new");
    conc_future *fs[NTASKS];
    srand((unsigned)time(NULL));
    for (int i = 0; i < NTASKS; i++) {
        char arg[16];
        int n = rand() % 10001;
        int len = snprintf(arg, sizeof arg, "%d", n);
        printf("Put task %d...\n", n);
        check(conc_dist_submit(dx, "square_text", arg, (size_t)len,
                               CONC_FOREVER, &fs[i]),
              "conc_dist_submit");
    }
    printf("Try get results...\n");
    fflush(stdout);
    conc_as_completed_iter *it;
    check(conc_as_completed(fs, NTASKS, RESULTS_TIMEOUT, &it),
          "conc_as_completed");
    conc_future *f;
    int got = 0, rc;
    while ((rc = conc_as_completed_next(it, &f)) == 0) {
        const void *data;
        size_t len;
        check(conc_future_result(f, 0, &data, &len), "a task");
        printf("Result:%.*s\n", (int)len, (const char *)data);
        fflush(stdout);
        got++;
    }
    conc_as_completed_free(it);
    for (int i = 0; i < NTASKS; i++)
        conc_future_free(fs[i]);
    conc_dist_executor_free(dx);
    if (got != NTASKS) {
        fprintf(stderr, "%d results of %d: %s\n", got, NTASKS,
                conc_err_name(rc));
        return 1;
    }
    printf("Master Exit.\n");
    return 0;
}
