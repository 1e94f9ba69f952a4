/* s004_threadpool_map: seed 004, 二 线程,多线程,线程池, ThreadPool.map.
 *
 * The Python creates multiprocessing.pool.ThreadPool(5) and runs
 * pool.map(long_time_task, range(9)): each task prints os.getpid() (the
 * same pid every time: threads share the process), sleeps i seconds and
 * prints '结果:8**20'; then close(), join() and '总用时:T'. Five threads
 * share the nine tasks, so the run takes about 12 s rather than 36.
 *
 * conc_threadpool_new gives the Pool API over threads; the task is the
 * same kind of function a process pool runs. Python's default chunksize
 * for nine items on five workers is 1, and so is conc's. A second is 20 ms;
 * the order of the lines and the time vary a little.
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 9

static int
long_time_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    const int *i = arg;
    if (len != sizeof *i)
        return conc_fail(CONC_EINVAL, "bad argument");
    printf("%d\n", (int)getpid());
    int rc = conc_sleep(*i * SECOND);
    if (rc != 0)
        return rc;
    printf("结果:%" PRId64 "\n", (int64_t)1 << 60);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    double start = conc_monotonic();
    conc_pool *pool;
    check(conc_threadpool_new(&(conc_pool_opts){.processes = 5}, &pool),
          "conc_threadpool_new");
    static const int numbers[N_TASKS] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    check(conc_pool_map(pool, long_time_task, &CONC_ITEMS(numbers, N_TASKS),
                        NULL, 0, NULL, CONC_FOREVER),
          "conc_pool_map");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    double end = conc_monotonic();
    printf("总用时:%.3f\n", end - start);
    conc_pool_free(pool);
    return 0;
}
