/* s000_pool_apply_async: seed 000, section 2, Pool: 用进程池批量创建子进程.
 *
 * The Python prints the parent's pid, creates Pool(4) and hands it five
 * long_time_task(i) with apply_async, prints 'Waiting for all subprocesses
 * done...', then calls close() and join() and prints 'All subprocesses
 * done.'. Each task prints 'Run task i (pid)...', sleeps random.random() * 3
 * seconds and prints how long it ran. Only four tasks run at once: the
 * fifth starts in the worker that finishes first.
 *
 * conc_pool_new forks the four workers at once; a task is
 * int fn(arg, len, result), here with the task's number as its argument and
 * no result. The random sleeps are fixed (0.9, 2.7, 0.7, 1.8 and 1.0 of the
 * seed's seconds) and a second is 20 ms. The Python drops the AsyncResults;
 * here they are kept to check, after join, that every task succeeded. The
 * pids and the order of the lines vary from run to run.
 */
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 5

static const double sleeps[N_TASKS] = {0.9, 2.7, 0.7, 1.8, 1.0};

static int
long_time_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    const int *name = arg;
    if (len != sizeof *name || *name < 0 || *name >= N_TASKS)
        return conc_fail(CONC_EINVAL, "bad task number");
    printf("Run task %d (%d)...\n", *name, (int)getpid());
    double start = conc_monotonic();
    int rc = conc_sleep(sleeps[*name] * SECOND);
    if (rc != 0)
        return rc;
    printf("Task %d runs %0.2f seconds.\n", *name, conc_monotonic() - start);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    printf("Parent process %d.\n", (int)getpid());
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = 4}, &p),
          "conc_pool_new");
    conc_async_result *res[N_TASKS];
    for (int i = 0; i < N_TASKS; i++)
        check(conc_pool_apply_async(p, long_time_task, &i, sizeof i, NULL,
                                    &res[i]),
              "conc_pool_apply_async");
    printf("Waiting for all subprocesses done...\n");
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    printf("All subprocesses done.\n");
    for (int i = 0; i < N_TASKS; i++) {
        check(conc_async_result_get(res[i], 0, NULL, NULL), "long_time_task");
        conc_async_result_free(res[i]);
    }
    conc_pool_free(p);
    return 0;
}
