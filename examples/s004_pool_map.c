/* s004_pool_map: seed 004, 一 进程,多进程,进程池, Pool.map.
 *
 * The Python prints the CPU count and its pid, creates Pool(8) and runs
 * p.map(long_time_task, range(5)): each task prints
 * '子进程: PID - 任务i', sleeps 2 s and prints '结果: 8**20'. map returns
 * once all five are done; main prints '等待所有子进程完成。', calls close()
 * and join(), and prints the time taken: about 2 s, as the five run at
 * once.
 *
 * conc_pool_map runs the task on each element of a C array (CONC_ITEMS);
 * with out_size 0 it keeps no results. 8**20 is 2**60, which fits an
 * int64_t. Two seconds are 40 ms here; the pids, the order of the lines
 * and the time vary.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 5

static int
long_time_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    const int *i = arg;
    if (len != sizeof *i)
        return conc_fail(CONC_EINVAL, "bad argument");
    printf("子进程: %d - 任务%d\n", (int)getpid(), *i);
    int rc = conc_sleep(2 * SECOND);
    if (rc != 0)
        return rc;
    printf("结果: %" PRId64 "\n", (int64_t)1 << 60);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    printf("CPU内核数:%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("当前母进程: %d\n", (int)getpid());
    double start = conc_monotonic();
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = 8}, &p),
          "conc_pool_new");
    static const int numbers[N_TASKS] = {0, 1, 2, 3, 4}; /* range(5) */
    check(conc_pool_map(p, long_time_task, &CONC_ITEMS(numbers, N_TASKS), NULL,
                        0, NULL, CONC_FOREVER),
          "conc_pool_map");
    printf("等待所有子进程完成。\n");
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    double end = conc_monotonic();
    printf("总共用时%.3f秒\n", end - start);
    conc_pool_free(p);
    return 0;
}
