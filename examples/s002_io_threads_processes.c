/* s002_io_threads_processes: seed 002, section 6.2, waiting work on
 * threads and on processes.
 *
 * The Python submits random_sleep(2) thirty times to ThreadPoolExecutor(3)
 * and then to ProcessPoolExecutor(3); random_sleep sleeps n seconds and
 * returns n. Main prints 'exe result: 2' for each future from as_completed
 * and 'last time is: T': about 20 s either way, ten rounds of three, and
 * the seed concludes that I/O work wants threads, which cost less.
 *
 * The same task runs in both executors, which differ by one call. A second
 * is 20 ms, so each run takes about 0.4 s; the times vary a little, and
 * both kinds take the same time here too: the workers only wait.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 30

static int
random_sleep(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep((double)*n * SECOND);
    if (rc != 0)
        return rc;
    return conc_buf_append(result, n, sizeof *n);
}

/* The seed's with-block on three threads or processes. */
static void
run(int processes)
{
    CONC_EXECUTOR_SCOPED conc_executor *executor = NULL;
    conc_executor_opts opts = {.max_workers = 3};
    if (processes)
        check(conc_process_executor_new(&opts, &executor),
              "conc_process_executor_new");
    else
        check(conc_thread_executor_new(&opts, &executor),
              "conc_thread_executor_new");
    conc_future *all_task[N_TASKS];
    int64_t num = 2;
    for (int i = 0; i < N_TASKS; i++)
        check(conc_executor_submit(executor, random_sleep, &num, sizeof num,
                                   &all_task[i]),
              "conc_executor_submit");
    double start_time = conc_monotonic();
    conc_as_completed_iter *it;
    check(conc_as_completed(all_task, N_TASKS, CONC_FOREVER, &it),
          "conc_as_completed");
    conc_future *future;
    int rc;
    while ((rc = conc_as_completed_next(it, &future)) == 0) {
        const void *data;
        size_t len;
        check(conc_future_result(future, 0, &data, &len), "random_sleep");
        int64_t r;
        check(len == sizeof r ? 0 : CONC_EVALUE, "result size");
        memcpy(&r, data, sizeof r);
        printf("exe result: %" PRId64 "\n", r);
    }
    check(rc == CONC_ECLOSED ? 0 : rc, "conc_as_completed_next");
    printf("last time is: %.3f\n", conc_monotonic() - start_time);
    conc_as_completed_free(it);
    for (int i = 0; i < N_TASKS; i++)
        conc_future_free(all_task[i]);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    run(0);                           /* 多线程 */
    run(1);                           /* 多进程 */
    return 0;
}
