/* s004_asyncio_wait: seed 004, 四 协程异步IO(asyncio), async基础实例并获取
 * 返回值: three tasks under asyncio.wait, then their results.
 *
 * The Python creates three tasks of coroutine_example('wzy_0'..'wzy_2'),
 * each printing 'doing_name:', sleeping 2 s, printing 'done_name:' and
 * returning "wzy"; it runs the loop until asyncio.wait(tasks) is done,
 * prints each task's result and closes the loop. The three sleep at once,
 * so the whole takes 2 s, not 6:
 *
 *     doing_name: wzy_0
 *     doing_name: wzy_1
 *     doing_name: wzy_2
 *     done_name: wzy_0
 *     done_name: wzy_1
 *     done_name: wzy_2
 *     wxh_result: wzy
 *     wxh_result: wzy
 *     wxh_result: wzy
 *
 * asyncio.wait(tasks) is a coroutine; its C twin is a task that calls
 * conc_wait, the call concurrent.futures.wait has in conc. Inside a task
 * conc_wait suspends only that task, so the three run while it waits:
 * the same call serves thread pools, process pools and coroutines. Its
 * done flags are Python's done set. Two seconds are 40 ms here.
 */
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 3

static int
coroutine_example(const void *arg, size_t len, conc_buf *result)
{
    printf("doing_name: %.*s\n", (int)len, (const char *)arg);
    int rc = conc_aio_sleep(2 * SECOND);
    if (rc != 0)
        return rc;
    printf("done_name: %.*s\n", (int)len, (const char *)arg);
    return conc_buf_append(result, "wzy", 3);
}

/* asyncio.wait(tasks): the argument is the array of futures, copied. */
static int
wait_all(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    conc_future *const *tasks = arg;
    size_t n = len / sizeof *tasks;
    unsigned char done[N_TASKS];
    if (n > N_TASKS)
        return conc_fail(CONC_EINVAL, "too many tasks");
    int rc = conc_wait(tasks, n, CONC_ALL_COMPLETED, CONC_FOREVER, done);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (!done[i])
            return conc_fail(CONC_ESTATE, "task %zu not done", i);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_aio_loop *loop;
    check(conc_aio_loop_new(NULL, &loop), "conc_aio_loop_new");
    conc_future *tasks[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "wzy_%d", i);
        check(conc_aio_loop_create_task(loop, coroutine_example, name,
                                        (size_t)n, NULL, &tasks[i]),
              "conc_aio_loop_create_task");
    }
    conc_future *wait_core;
    check(conc_aio_loop_create_task(loop, wait_all, tasks, sizeof tasks, NULL,
                                    &wait_core),
          "conc_aio_loop_create_task");
    check(conc_aio_loop_run_until_complete(loop, wait_core),
          "conc_aio_loop_run_until_complete");

    for (int i = 0; i < N_TASKS; i++) {
        const void *data;
        size_t len;
        check(conc_future_result(tasks[i], 0, &data, &len),
              "conc_future_result");
        printf("wxh_result: %.*s\n", (int)len, (const char *)data);
        conc_future_free(tasks[i]);
    }
    conc_future_free(wait_core);
    check(conc_aio_loop_close(loop), "conc_aio_loop_close");
    conc_aio_loop_free(loop);
    return 0;
}
